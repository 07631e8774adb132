#include "api/chain_spec.h"

#include <cpprest/json.h>
#include <set>
#include <yaml-cpp/yaml.h>

namespace bpfchain::api {

namespace {

using k8s::Json;

const std::regex kDnsLabel("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$");
const std::regex kCIdentifier("^[A-Za-z_][A-Za-z0-9_]*$");
const std::regex kSha256("^[a-f0-9]{64}$");

// The schema (chain_spec.h): the unknown-field checks below and the CRD test read it.
constexpr FieldSchema kRequirementFields[] = {{"key"}, {"operator"}, {"values", {}, true}};
constexpr FieldSchema kSelectorFields[] = {{"matchLabels"},
                                           {"matchExpressions", kRequirementFields, true}};
constexpr FieldSchema kPodsFields[] = {{"namespaceSelector", kSelectorFields},
                                       {"podSelector", kSelectorFields}};
constexpr FieldSchema kInterfacesFields[] = {{"names", {}, true}};
constexpr FieldSchema kPackageFields[] = {{"url"}, {"sha256"}};
constexpr FieldSchema kEntryFields[] = {{"key"}, {"value"}};
constexpr FieldSchema kMapArgFields[] = {{"map"}, {"mode"}, {"entries", kEntryFields, true}};
constexpr FieldSchema kMonitorMapFields[] = {{"map"}, {"key"}, {"aggregator"}};
constexpr FieldSchema kProgramFields[] = {{"name"},
                                          {"package", kPackageFields},
                                          {"entry"},
                                          {"nextMap"},
                                          {"enabled"},
                                          {"globalData"},
                                          {"freshState"},
                                          {"freshMaps", {}, true},
                                          {"mapArgs", kMapArgFields, true},
                                          {"monitorMaps", kMonitorMapFields, true}};
constexpr FieldSchema kChainFields[] = {{"name"},
                                        {"generation"},
                                        {"hook"},
                                        {"priority"},
                                        {"placement"},
                                        {"interfaces", kInterfacesFields},
                                        {"pods", kPodsFields},
                                        {"programs", kProgramFields, true}};
constexpr const char* kOperatorChainFields[] = {"nodeSelector", "rollout"};

Error fieldError(const std::string& field, const std::string& what) {
  return invalidError(field + ": " + what);
}

// The member `key` of `node`, or nullptr when it has none or is not an object.
const Json* member(const Json& node, const char* key) {
  if (!node.is_object() || !node.has_field(key))
    return nullptr;
  return &node.at(key);
}

// Absent and null are the same: no value.
bool present(const Json* node) {
  return node != nullptr && !node->is_null();
}

// A scalar's text as YAML would give it (a number as written, a boolean as true or false), or
// nullopt for a list, an object or null.
std::optional<std::string> scalarText(const Json& node) {
  if (node.is_string())
    return node.as_string();
  if (node.is_number())
    return node.serialize();
  if (node.is_boolean())
    return std::string(node.as_bool() ? "true" : "false");
  return std::nullopt;
}

// YAML's reading of a scalar as a boolean (true, yes, on, ...): what the file format promised.
bool decodeBool(const std::string& text, bool& out) {
  return YAML::convert<bool>::decode(YAML::Node(text), out);
}

Result<void> boolField(const Json* node, const std::string& field, bool& out) {
  if (!present(node))
    return {};
  auto text = scalarText(*node);
  if (!text || !decodeBool(*text, out))
    return fieldError(field, "not true or false");
  return {};
}

// Refuses fields outside `known`, as the CRD's schema does (a typo must not be ignored).
Result<void> onlyFields(const Json& node, const std::string& field,
                        std::span<const FieldSchema> known) {
  if (!node.is_object())
    return fieldError(field, "not a map");
  for (const auto& kv : node.as_object()) {
    const std::string& key = kv.first;
    bool ok = false;
    for (const auto& k : known)
      ok = ok || key == k.name;
    if (!ok)
      return fieldError(field.empty() ? key : (field + '.') += key, "unknown field");
  }
  return {};
}

Result<std::string> stringField(const Json* node, const std::string& field, bool required,
                                const std::string& fallback = "") {
  if (!present(node)) {
    if (required)
      return fieldError(field, "required");
    return fallback;
  }
  auto text = scalarText(*node);
  if (!text)
    return fieldError(field, "not a string");
  return *text;
}

Result<int64_t> intField(const Json* node, const std::string& field, int64_t fallback, int64_t min,
                         int64_t max) {
  if (!present(node))
    return fallback;
  int64_t v = 0;
  auto text = scalarText(*node);
  if (!text || !YAML::convert<int64_t>::decode(YAML::Node(*text), v))
    return fieldError(field, "\"" + text.value_or(node->serialize()) + "\" is not an integer");
  if (v < min || v > max)
    return fieldError(field, std::to_string(v) + " is out of range " + std::to_string(min) + ".." +
                                 std::to_string(max));
  return v;
}

std::string at(const std::string& field, size_t i) {
  return field + "[" + std::to_string(i) + "]";
}

// A spec's key or value of a map argument: a scalar's text, a list, an object or null.
Result<btf::ArgValue> argValueFromJson(const Json& node, const std::string& field) {
  btf::ArgValue v;
  if (node.is_null())
    return v;
  if (auto text = scalarText(node))
    return btf::ArgValue::text(std::move(*text));
  if (node.is_array()) {
    v.kind = btf::ArgValue::Kind::Sequence;
    const auto& items = node.as_array();
    for (size_t i = 0; i < items.size(); ++i) {
      auto item = argValueFromJson(items.at(i), at(field, i));
      if (!item)
        return item.error();
      v.items.push_back(std::move(*item));
    }
    return v;
  }
  v.kind = btf::ArgValue::Kind::Map;
  for (const auto& kv : node.as_object()) {
    auto item = argValueFromJson(kv.second, field + "." + kv.first);
    if (!item)
      return item.error();
    v.names.push_back(kv.first);
    v.items.push_back(std::move(*item));
  }
  return v;
}

Result<MonitorMapDecl> parseMonitorMap(const Json& node, const std::string& field) {
  if (auto ok = onlyFields(node, field, kMonitorMapFields); !ok)
    return ok.error();
  MonitorMapDecl m;
  auto map = stringField(member(node, "map"), field + ".map", true);
  auto key = stringField(member(node, "key"), field + ".key", false, "0");
  auto aggregator = stringField(member(node, "aggregator"), field + ".aggregator", false, "scalar");
  for (auto* r : {&map, &key, &aggregator})
    if (!r->ok())
      return r->error();
  m.map = *map;
  m.key = *key;
  if (*aggregator == "scalar")
    m.aggregator = Aggregator::Scalar;
  else if (*aggregator == "sum")
    m.aggregator = Aggregator::Sum;
  else if (*aggregator == "max-rate")
    m.aggregator = Aggregator::MaxRate;
  else if (*aggregator == "avg")
    m.aggregator = Aggregator::Avg;
  else
    return fieldError(field + ".aggregator",
                      "\"" + *aggregator + "\" is not one of scalar, sum, max-rate, avg");
  return m;
}

Result<LabelRequirementDecl> parseRequirement(const Json& node, const std::string& f) {
  if (auto ok = onlyFields(node, f, kRequirementFields); !ok)
    return ok.error();
  LabelRequirementDecl r;
  auto key = stringField(member(node, "key"), f + ".key", true);
  auto op = stringField(member(node, "operator"), f + ".operator", true);
  for (auto* part : {&key, &op})
    if (!*part)
      return part->error();
  r.key = *key;
  r.op = *op;
  if (const Json* values = member(node, "values"); present(values)) {
    if (!values->is_array())
      return fieldError(f + ".values", "not a list");
    const auto& list = values->as_array();
    for (size_t j = 0; j < list.size(); ++j) {
      auto value = stringField(&list.at(j), at(f + ".values", j), true);
      if (!value)
        return value.error();
      r.values.push_back(*value);
    }
  }
  return r;
}

Result<LabelSelectorDecl> parseLabelSelector(const Json* node, const std::string& field) {
  LabelSelectorDecl selector;
  if (!present(node))
    return selector;
  if (auto ok = onlyFields(*node, field, kSelectorFields); !ok)
    return ok.error();
  if (const Json* labels = member(*node, "matchLabels"); present(labels)) {
    if (!labels->is_object())
      return fieldError(field + ".matchLabels", "not a map");
    for (const auto& kv : labels->as_object()) {
      auto value = stringField(&kv.second, (field + ".matchLabels.") += kv.first, true);
      if (!value)
        return value.error();
      selector.matchLabels[kv.first] = *value;
    }
  }
  const Json* expressions = member(*node, "matchExpressions");
  if (!present(expressions))
    return selector;
  if (!expressions->is_array())
    return fieldError(field + ".matchExpressions", "not a list");
  const auto& list = expressions->as_array();
  for (size_t i = 0; i < list.size(); ++i) {
    auto r = parseRequirement(list.at(i), at(field + ".matchExpressions", i));
    if (!r)
      return r.error();
    selector.matchExpressions.push_back(std::move(*r));
  }
  return selector;
}

Result<PodsDecl> parsePods(const Json& node, const std::string& field) {
  if (auto ok = onlyFields(node, field, kPodsFields); !ok)
    return ok.error();
  PodsDecl pods;
  auto ns = parseLabelSelector(member(node, "namespaceSelector"), field + ".namespaceSelector");
  if (!ns)
    return ns.error();
  auto pod = parseLabelSelector(member(node, "podSelector"), field + ".podSelector");
  if (!pod)
    return pod.error();
  pods.namespaceSelector = std::move(*ns);
  pods.podSelector = std::move(*pod);
  return pods;
}

Result<btf::MapArgEntry> parseMapArgEntry(const Json& node, const std::string& f) {
  if (auto ok = onlyFields(node, f, kEntryFields); !ok)
    return ok.error();
  const Json* keyNode = member(node, "key");
  const Json* valueNode = member(node, "value");
  if (keyNode == nullptr)
    return fieldError(f + ".key", "required");
  if (valueNode == nullptr)
    return fieldError(f + ".value", "required");
  auto key = argValueFromJson(*keyNode, f + ".key");
  if (!key)
    return key.error();
  auto value = argValueFromJson(*valueNode, f + ".value");
  if (!value)
    return value.error();
  return btf::MapArgEntry{std::move(*key), std::move(*value)};
}

Result<dataplane::MapArgSpec> parseMapArg(const Json& node, const std::string& field) {
  if (auto ok = onlyFields(node, field, kMapArgFields); !ok)
    return ok.error();
  dataplane::MapArgSpec m;
  auto map = stringField(member(node, "map"), field + ".map", true);
  if (!map)
    return map.error();
  m.map = *map;
  auto mode = stringField(member(node, "mode"), field + ".mode", false, "replace");
  if (!mode)
    return mode.error();
  if (*mode == "replace")
    m.mode = btf::MapArgMode::Replace;
  else if (*mode == "merge")
    m.mode = btf::MapArgMode::Merge;
  else
    return fieldError(field + ".mode", "\"" + *mode + "\" is not one of replace, merge");
  if (const Json* entries = member(node, "entries"); present(entries)) {
    if (!entries->is_array())
      return fieldError(field + ".entries", "not a list");
    const auto& list = entries->as_array();
    for (size_t i = 0; i < list.size(); ++i) {
      auto entry = parseMapArgEntry(list.at(i), at(field + ".entries", i));
      if (!entry)
        return entry.error();
      m.entries.push_back(std::move(*entry));
    }
  }
  return m;
}

Result<void> parsePackage(const Json& node, const std::string& field, ProgramDecl& p) {
  const Json* package = member(node, "package");
  if (package == nullptr)
    return fieldError(field + ".package", "required");
  if (auto ok = onlyFields(*package, field + ".package", kPackageFields); !ok)
    return ok.error();
  auto url = stringField(member(*package, "url"), field + ".package.url", true);
  auto sha = stringField(member(*package, "sha256"), field + ".package.sha256", true);
  if (!url)
    return url.error();
  if (!sha)
    return sha.error();
  if (url->rfind("http://", 0) != 0 && url->rfind("https://", 0) != 0 &&
      url->rfind("file://", 0) != 0)
    return fieldError(field + ".package.url", "\"" + *url + "\" is not an http, https or file URL");
  if (!std::regex_match(*sha, kSha256))
    return fieldError(field + ".package.sha256", "not 64 lowercase hex digits");
  p.url = *url;
  p.sha256 = *sha;
  return {};
}

Result<void> parseFreshState(const Json& node, const std::string& field, ProgramDecl& p) {
  if (auto ok = boolField(member(node, "freshState"), field + ".freshState", p.freshState); !ok)
    return ok;
  if (const Json* fresh = member(node, "freshMaps"); present(fresh)) {
    if (!fresh->is_array())
      return fieldError(field + ".freshMaps", "not a list");
    std::set<std::string> seen;
    const auto& list = fresh->as_array();
    for (size_t i = 0; i < list.size(); ++i) {
      std::string f = at(field + ".freshMaps", i);
      auto map = scalarText(list.at(i));
      if (!map)
        return fieldError(f, "not a string");
      if (map->empty() || map->size() > 128)
        return fieldError(f, "must be 1 to 128 characters");
      if (!seen.insert(*map).second)
        return fieldError(f, "\"" + *map + "\" is listed twice");
      p.freshMaps.push_back(*map);
    }
  }
  return {};
}

// mapArgs and monitorMaps.
Result<void> parseMaps(const Json& node, const std::string& field, ProgramDecl& p) {
  std::set<std::string> maps;
  if (const Json* args = member(node, "mapArgs"); present(args)) {
    if (!args->is_array())
      return fieldError(field + ".mapArgs", "not a list");
    const auto& list = args->as_array();
    for (size_t i = 0; i < list.size(); ++i) {
      auto m = parseMapArg(list.at(i), at(field + ".mapArgs", i));
      if (!m)
        return m.error();
      if (!maps.insert(m->map).second)
        return fieldError(at(field + ".mapArgs", i) + ".map", "\"" + m->map + "\" is listed twice");
      p.mapArgs.push_back(std::move(*m));
    }
  }
  if (const Json* monitors = member(node, "monitorMaps"); present(monitors)) {
    if (!monitors->is_array())
      return fieldError(field + ".monitorMaps", "not a list");
    const auto& list = monitors->as_array();
    for (size_t i = 0; i < list.size(); ++i) {
      auto m = parseMonitorMap(list.at(i), at(field + ".monitorMaps", i));
      if (!m)
        return m.error();
      p.monitorMaps.push_back(std::move(*m));
    }
  }
  return {};
}

Result<void> parseGlobalData(const Json& node, const std::string& field, ProgramDecl& p) {
  const Json* globals = member(node, "globalData");
  if (!present(globals))
    return {};
  if (!globals->is_object())
    return fieldError(field + ".globalData", "not a map");
  for (const auto& kv : globals->as_object()) {
    auto text = scalarText(kv.second);
    if (!text)
      return fieldError(field + ".globalData." += kv.first, "not a string");
    p.globalData[kv.first] = *text;
  }
  return {};
}

Result<ProgramDecl> parseProgram(const Json& node, const std::string& field) {
  if (auto ok = onlyFields(node, field, kProgramFields); !ok)
    return ok.error();
  ProgramDecl p;
  auto name = stringField(member(node, "name"), field + ".name", true);
  if (!name)
    return name.error();
  if (!std::regex_match(*name, kDnsLabel) || name->size() > 63)
    return fieldError(field + ".name", "\"" + *name + "\" is not a DNS label");
  p.name = *name;
  if (auto ok = parsePackage(node, field, p); !ok)
    return ok.error();
  for (auto [key, out] : {std::pair{"entry", &p.entry}, std::pair{"nextMap", &p.nextMap}}) {
    auto v = stringField(member(node, key), field + "." + key, false);
    if (!v)
      return v.error();
    if (!v->empty() && !std::regex_match(*v, kCIdentifier))
      return fieldError(field + "." + key, "\"" + *v + "\" is not a C identifier");
    *out = *v;
  }
  if (auto ok = boolField(member(node, "enabled"), field + ".enabled", p.enabled); !ok)
    return ok.error();
  if (auto ok = parseGlobalData(node, field, p); !ok)
    return ok.error();
  if (auto ok = parseFreshState(node, field, p); !ok)
    return ok.error();
  if (auto ok = parseMaps(node, field, p); !ok)
    return ok.error();
  return p;
}

bool validUtf8(const std::string& text) {
  for (size_t i = 0; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || i + n > text.size())
      return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(text[i + k]) >> 6) != 0x2)
        return false;
    i += n;
  }
  return true;
}

// A BpfChain's name is its object name: a DNS subdomain (RFC 1123), as the API server requires
// of metadata.name. The standalone file follows the same rule: the name reaches status, pins
// and metrics labels.
Result<std::string> validChainName(const std::string& name, const std::string& field) {
  static const std::regex kDnsSubdomain(
      "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$");
  if (!validUtf8(name)) // not quoted: the status file and metrics must stay valid UTF-8
    return fieldError(field, "not valid UTF-8");
  if (name.empty() || name.size() > 253)
    return fieldError(field, "must be 1 to 253 characters");
  if (!std::regex_match(name, kDnsSubdomain))
    return fieldError(field, "\"" + name +
                                 "\" is not a DNS subdomain (lowercase letters, digits, '-' and "
                                 "'.', starting and ending with a letter or digit)");
  return name;
}

// hook, priority and placement.
Result<void> parseHookAndOrder(const Json& node, const std::string& field, ChainDecl& c) {
  auto priority = intField(member(node, "priority"), field + ".priority", 100, 0, 10000);
  if (!priority)
    return priority.error();
  c.priority = static_cast<int>(*priority);
  auto hook = stringField(member(node, "hook"), field + ".hook", true);
  if (!hook)
    return hook.error();
  auto parsedHook = dataplane::parseHook(*hook);
  if (!parsedHook)
    return fieldError(field + ".hook",
                      "\"" + *hook + "\" is not one of xdp, tc-ingress, tc-egress");
  c.hook = *parsedHook;
  auto placement = stringField(member(node, "placement"), field + ".placement", false, "first");
  if (!placement)
    return placement.error();
  if (*placement != "first" && *placement != "last")
    return fieldError(field + ".placement", "\"" + *placement + "\" is not one of first, last");
  c.placeLast = *placement == "last";
  return {};
}

// interfaces or pods.
Result<void> parseTarget(const Json& node, const std::string& field, ChainDecl& c) {
  const Json* interfaces = member(node, "interfaces");
  const Json* pods = member(node, "pods");
  bool hasInterfaces = present(interfaces);
  bool hasPods = present(pods);
  if (hasInterfaces == hasPods)
    return fieldError(field, "exactly one of interfaces and pods must be set");
  if (hasInterfaces) {
    if (auto ok = onlyFields(*interfaces, field + ".interfaces", kInterfacesFields); !ok)
      return ok.error();
    static const Json kNone = Json::null();
    const Json* names = member(*interfaces, "names");
    auto selector =
        InterfaceSelector::parse(names != nullptr ? *names : kNone, field + ".interfaces.names");
    if (!selector)
      return selector.error();
    c.interfaces = std::move(*selector);
    return {};
  }
  auto parsed = parsePods(*pods, field + ".pods");
  if (!parsed)
    return parsed.error();
  c.pods = std::move(*parsed);
  return {};
}

Result<void> parsePrograms(const Json& node, const std::string& field, ChainDecl& c) {
  const Json* programs = member(node, "programs");
  if (programs == nullptr || !programs->is_array() || programs->as_array().size() == 0)
    return fieldError(field + ".programs", "required: a list of 1 to 32 programs");
  const auto& list = programs->as_array();
  if (list.size() > 32)
    return fieldError(field + ".programs", "more than 32 programs");
  std::set<std::string> names;
  for (size_t i = 0; i < list.size(); ++i) {
    auto p = parseProgram(list.at(i), at(field + ".programs", i));
    if (!p)
      return p.error();
    if (!names.insert(p->name).second)
      return fieldError(at(field + ".programs", i) + ".name",
                        "\"" + p->name + "\" is used twice in the chain");
    c.programs.push_back(std::move(*p));
  }
  return {};
}

void appendPaths(std::span<const FieldSchema> schema, const std::string& prefix,
                 std::vector<std::string>& out) {
  for (const auto& f : schema) {
    std::string path = prefix + f.name + (f.list ? "[]" : "");
    if (f.members.empty())
      out.push_back(path);
    else
      appendPaths(f.members, path + ".", out);
  }
}

} // namespace

const char* aggregatorName(Aggregator a) {
  switch (a) {
  case Aggregator::Scalar:
    return "scalar";
  case Aggregator::Sum:
    return "sum";
  case Aggregator::MaxRate:
    return "max-rate";
  case Aggregator::Avg:
    return "avg";
  }
  return "?";
}

Result<InterfaceSelector> InterfaceSelector::parse(const Json& names, const std::string& field) {
  if (!names.is_array() || names.as_array().size() == 0)
    return fieldError(field, "required: a list of interface names or /regex/");
  InterfaceSelector s;
  const auto& list = names.as_array();
  for (size_t i = 0; i < list.size(); ++i) {
    auto name = scalarText(list.at(i));
    if (!name || name->empty())
      return fieldError(at(field, i), "not a name");
    if (name->size() >= 2 && name->front() == '/' && name->back() == '/') {
      try {
        s.patterns_.emplace_back(name->substr(1, name->size() - 2), std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        return fieldError(at(field, i), "invalid regular expression " + *name + ": " + e.what());
      }
    } else {
      s.exact_.push_back(*name);
    }
  }
  return s;
}

bool InterfaceSelector::matches(const std::string& ifname) const {
  for (const auto& e : exact_)
    if (e == ifname)
      return true;
  for (const auto& p : patterns_)
    if (std::regex_match(ifname, p))
      return true;
  return false;
}

Result<ChainDecl> parseChain(const Json& node, const std::string& field) {
  if (auto ok = onlyFields(node, field, kChainFields); !ok)
    return ok.error();
  ChainDecl c;
  auto name = stringField(member(node, "name"), field + ".name", true);
  if (!name)
    return name.error();
  if (auto valid = validChainName(*name, field + ".name"); !valid)
    return valid.error();
  c.name = *name;
  // Standalone files may leave the generation out: there is only one.
  auto generation = intField(member(node, "generation"), field + ".generation", 1, 0, INT64_MAX);
  if (!generation)
    return generation.error();
  c.generation = *generation;
  if (auto ok = parseHookAndOrder(node, field, c); !ok)
    return ok.error();
  if (auto ok = parseTarget(node, field, c); !ok)
    return ok.error();
  if (auto ok = parsePrograms(node, field, c); !ok)
    return ok.error();
  return c;
}

std::string invalidChainName(const Json& chain, const std::string& position) {
  const Json* name = member(chain, "name");
  auto text = name != nullptr ? scalarText(*name) : std::nullopt;
  if (!text)
    return position;
  auto valid = validChainName(*text, position + ".name");
  return valid ? *valid : position;
}

int64_t invalidChainGeneration(const Json& chain, const std::string& position) {
  auto generation =
      intField(member(chain, "generation"), position + ".generation", 1, 0, INT64_MAX);
  return generation ? *generation : 0;
}

std::span<const FieldSchema> chainSchema() {
  return kChainFields;
}

std::vector<std::string> nodeFacingChainFields() {
  std::vector<std::string> fields;
  for (const auto& f : kChainFields)
    if (std::string_view(f.name) != "name" && std::string_view(f.name) != "generation")
      fields.emplace_back(f.name);
  return fields;
}

std::span<const char* const> operatorChainFields() {
  return kOperatorChainFields;
}

std::vector<std::string> fieldPaths(std::span<const FieldSchema> schema) {
  std::vector<std::string> out;
  appendPaths(schema, "", out);
  return out;
}

} // namespace bpfchain::api
