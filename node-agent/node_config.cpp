#include "node-agent/node_config.h"

#include <filesystem>
#include <set>

namespace bpfchain::agent {

namespace {

const std::regex kDnsLabel("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$");
const std::regex kCIdentifier("^[A-Za-z_][A-Za-z0-9_]*$");
const std::regex kSha256("^[a-f0-9]{64}$");

Error fieldError(const std::string& field, const std::string& what) {
  return invalidError(field + ": " + what);
}

// Refuses fields outside `known`, as the CRD's schema does (a typo must not be ignored).
Result<void> onlyFields(const YAML::Node& node, const std::string& field,
                        std::initializer_list<const char*> known) {
  if (!node.IsMap())
    return fieldError(field, "not a map");
  for (const auto& kv : node) {
    std::string key = kv.first.as<std::string>();
    bool ok = false;
    for (const char* k : known)
      ok = ok || key == k;
    if (!ok)
      return fieldError(field.empty() ? key : (field + '.') += key, "unknown field");
  }
  return {};
}

Result<std::string> stringField(const YAML::Node& node, const std::string& field, bool required,
                                const std::string& fallback = "") {
  if (!node.IsDefined() || node.IsNull()) {
    if (required)
      return fieldError(field, "required");
    return fallback;
  }
  if (!node.IsScalar())
    return fieldError(field, "not a string");
  return node.Scalar();
}

Result<int64_t> intField(const YAML::Node& node, const std::string& field, int64_t fallback,
                         int64_t min, int64_t max) {
  if (!node.IsDefined() || node.IsNull())
    return fallback;
  int64_t v = 0;
  if (!node.IsScalar() || !YAML::convert<int64_t>::decode(node, v))
    return fieldError(field, "\"" + YAML::Dump(node) + "\" is not an integer");
  if (v < min || v > max)
    return fieldError(field, std::to_string(v) + " is out of range " + std::to_string(min) + ".." +
                                 std::to_string(max));
  return v;
}

std::string at(const std::string& field, size_t i) {
  return field + "[" + std::to_string(i) + "]";
}

Result<MonitorMapDecl> parseMonitorMap(const YAML::Node& node, const std::string& field) {
  if (auto ok = onlyFields(node, field, {"map", "key", "aggregator"}); !ok)
    return ok.error();
  MonitorMapDecl m;
  auto map = stringField(node["map"], field + ".map", true);
  auto key = stringField(node["key"], field + ".key", false, "0");
  auto aggregator = stringField(node["aggregator"], field + ".aggregator", false, "scalar");
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

Result<LabelSelectorDecl> parseLabelSelector(const YAML::Node& node, const std::string& field) {
  LabelSelectorDecl selector;
  if (!node.IsDefined() || node.IsNull())
    return selector;
  if (auto ok = onlyFields(node, field, {"matchLabels", "matchExpressions"}); !ok)
    return ok.error();
  if (const YAML::Node& labels = node["matchLabels"]; labels.IsDefined() && !labels.IsNull()) {
    if (!labels.IsMap())
      return fieldError(field + ".matchLabels", "not a map");
    for (const auto& kv : labels) {
      std::string key = kv.first.as<std::string>();
      auto value = stringField(kv.second, (field + ".matchLabels.") += key, true);
      if (!value)
        return value.error();
      selector.matchLabels[key] = *value;
    }
  }
  const YAML::Node& expressions = node["matchExpressions"];
  if (!expressions.IsDefined() || expressions.IsNull())
    return selector;
  if (!expressions.IsSequence())
    return fieldError(field + ".matchExpressions", "not a list");
  for (size_t i = 0; i < expressions.size(); ++i) {
    std::string f = at(field + ".matchExpressions", i);
    if (auto ok = onlyFields(expressions[i], f, {"key", "operator", "values"}); !ok)
      return ok.error();
    LabelRequirementDecl r;
    auto key = stringField(expressions[i]["key"], f + ".key", true);
    auto op = stringField(expressions[i]["operator"], f + ".operator", true);
    for (auto* part : {&key, &op})
      if (!*part)
        return part->error();
    r.key = *key;
    r.op = *op;
    if (const YAML::Node& values = expressions[i]["values"];
        values.IsDefined() && !values.IsNull()) {
      if (!values.IsSequence())
        return fieldError(f + ".values", "not a list");
      for (size_t j = 0; j < values.size(); ++j) {
        auto value = stringField(values[j], at(f + ".values", j), true);
        if (!value)
          return value.error();
        r.values.push_back(*value);
      }
    }
    selector.matchExpressions.push_back(std::move(r));
  }
  return selector;
}

Result<PodsDecl> parsePods(const YAML::Node& node, const std::string& field) {
  if (auto ok = onlyFields(node, field, {"namespaceSelector", "podSelector"}); !ok)
    return ok.error();
  PodsDecl pods;
  auto ns = parseLabelSelector(node["namespaceSelector"], field + ".namespaceSelector");
  if (!ns)
    return ns.error();
  auto pod = parseLabelSelector(node["podSelector"], field + ".podSelector");
  if (!pod)
    return pod.error();
  pods.namespaceSelector = std::move(*ns);
  pods.podSelector = std::move(*pod);
  return pods;
}

Result<dataplane::MapArgSpec> parseMapArg(const YAML::Node& node, const std::string& field) {
  if (auto ok = onlyFields(node, field, {"map", "mode", "entries"}); !ok)
    return ok.error();
  dataplane::MapArgSpec m;
  auto map = stringField(node["map"], field + ".map", true);
  if (!map)
    return map.error();
  m.map = *map;
  auto mode = stringField(node["mode"], field + ".mode", false, "replace");
  if (!mode)
    return mode.error();
  if (*mode == "replace")
    m.mode = btf::MapArgMode::Replace;
  else if (*mode == "merge")
    m.mode = btf::MapArgMode::Merge;
  else
    return fieldError(field + ".mode", "\"" + *mode + "\" is not one of replace, merge");
  const YAML::Node& entries = node["entries"];
  if (entries.IsDefined() && !entries.IsNull()) {
    if (!entries.IsSequence())
      return fieldError(field + ".entries", "not a list");
    for (size_t i = 0; i < entries.size(); ++i) {
      std::string f = at(field + ".entries", i);
      if (auto ok = onlyFields(entries[i], f, {"key", "value"}); !ok)
        return ok.error();
      if (!entries[i]["key"].IsDefined())
        return fieldError(f + ".key", "required");
      if (!entries[i]["value"].IsDefined())
        return fieldError(f + ".value", "required");
      auto key = btf::argValueFromYaml(entries[i]["key"], f + ".key");
      if (!key)
        return key.error();
      auto value = btf::argValueFromYaml(entries[i]["value"], f + ".value");
      if (!value)
        return value.error();
      m.entries.push_back(btf::MapArgEntry{std::move(*key), std::move(*value)});
    }
  }
  return m;
}

Result<void> parsePackage(const YAML::Node& node, const std::string& field, ProgramDecl& p) {
  const YAML::Node& package = node["package"];
  if (!package.IsDefined())
    return fieldError(field + ".package", "required");
  if (auto ok = onlyFields(package, field + ".package", {"url", "sha256"}); !ok)
    return ok.error();
  auto url = stringField(package["url"], field + ".package.url", true);
  auto sha = stringField(package["sha256"], field + ".package.sha256", true);
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

Result<void> parseFreshState(const YAML::Node& node, const std::string& field, ProgramDecl& p) {
  if (const YAML::Node& fresh = node["freshState"]; fresh.IsDefined() && !fresh.IsNull()) {
    if (!fresh.IsScalar() || !YAML::convert<bool>::decode(fresh, p.freshState))
      return fieldError(field + ".freshState", "not true or false");
  }
  if (const YAML::Node& fresh = node["freshMaps"]; fresh.IsDefined() && !fresh.IsNull()) {
    if (!fresh.IsSequence())
      return fieldError(field + ".freshMaps", "not a list");
    std::set<std::string> seen;
    for (size_t i = 0; i < fresh.size(); ++i) {
      std::string f = at(field + ".freshMaps", i);
      if (!fresh[i].IsScalar())
        return fieldError(f, "not a string");
      const std::string& map = fresh[i].Scalar();
      if (map.empty() || map.size() > 128)
        return fieldError(f, "must be 1 to 128 characters");
      if (!seen.insert(map).second)
        return fieldError(f, "\"" + map + "\" is listed twice");
      p.freshMaps.push_back(map);
    }
  }
  return {};
}

// mapArgs and monitorMaps.
Result<void> parseMaps(const YAML::Node& node, const std::string& field, ProgramDecl& p) {
  std::set<std::string> maps;
  if (const YAML::Node& args = node["mapArgs"]; args.IsDefined() && !args.IsNull()) {
    if (!args.IsSequence())
      return fieldError(field + ".mapArgs", "not a list");
    for (size_t i = 0; i < args.size(); ++i) {
      auto m = parseMapArg(args[i], at(field + ".mapArgs", i));
      if (!m)
        return m.error();
      if (!maps.insert(m->map).second)
        return fieldError(at(field + ".mapArgs", i) + ".map", "\"" + m->map + "\" is listed twice");
      p.mapArgs.push_back(std::move(*m));
    }
  }
  if (const YAML::Node& monitors = node["monitorMaps"];
      monitors.IsDefined() && !monitors.IsNull()) {
    if (!monitors.IsSequence())
      return fieldError(field + ".monitorMaps", "not a list");
    for (size_t i = 0; i < monitors.size(); ++i) {
      auto m = parseMonitorMap(monitors[i], at(field + ".monitorMaps", i));
      if (!m)
        return m.error();
      p.monitorMaps.push_back(std::move(*m));
    }
  }
  return {};
}

Result<ProgramDecl> parseProgram(const YAML::Node& node, const std::string& field) {
  if (auto ok = onlyFields(node, field,
                           {"name", "package", "entry", "nextMap", "enabled", "globalData",
                            "freshState", "freshMaps", "mapArgs", "monitorMaps"});
      !ok)
    return ok.error();
  ProgramDecl p;
  auto name = stringField(node["name"], field + ".name", true);
  if (!name)
    return name.error();
  if (!std::regex_match(*name, kDnsLabel) || name->size() > 63)
    return fieldError(field + ".name", "\"" + *name + "\" is not a DNS label");
  p.name = *name;
  if (auto ok = parsePackage(node, field, p); !ok)
    return ok.error();
  for (auto [member, out] : {std::pair{"entry", &p.entry}, std::pair{"nextMap", &p.nextMap}}) {
    auto v = stringField(node[member], field + "." + member, false);
    if (!v)
      return v.error();
    if (!v->empty() && !std::regex_match(*v, kCIdentifier))
      return fieldError(field + "." + member, "\"" + *v + "\" is not a C identifier");
    *out = *v;
  }
  if (const YAML::Node& enabled = node["enabled"]; enabled.IsDefined() && !enabled.IsNull()) {
    if (!enabled.IsScalar() || !YAML::convert<bool>::decode(enabled, p.enabled))
      return fieldError(field + ".enabled", "not true or false");
  }
  if (const YAML::Node& globals = node["globalData"]; globals.IsDefined() && !globals.IsNull()) {
    if (!globals.IsMap())
      return fieldError(field + ".globalData", "not a map");
    for (const auto& kv : globals) {
      std::string key = kv.first.as<std::string>();
      if (!kv.second.IsScalar())
        return fieldError(field + ".globalData." += key, "not a string");
      p.globalData[key] = kv.second.Scalar();
    }
  }
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

Result<ChainDecl> parseChain(const YAML::Node& node, const std::string& field) {
  if (auto ok = onlyFields(node, field,
                           {"name", "generation", "hook", "priority", "placement", "interfaces",
                            "pods", "programs"});
      !ok)
    return ok.error();
  ChainDecl c;
  auto name = stringField(node["name"], field + ".name", true);
  if (!name)
    return name.error();
  if (auto valid = validChainName(*name, field + ".name"); !valid)
    return valid.error();
  c.name = *name;
  // Standalone files may leave the generation out: there is only one.
  auto generation = intField(node["generation"], field + ".generation", 1, 0, INT64_MAX);
  auto priority = intField(node["priority"], field + ".priority", 100, 0, 10000);
  if (!generation)
    return generation.error();
  if (!priority)
    return priority.error();
  c.generation = *generation;
  c.priority = static_cast<int>(*priority);
  auto hook = stringField(node["hook"], field + ".hook", true);
  if (!hook)
    return hook.error();
  auto parsedHook = dataplane::parseHook(*hook);
  if (!parsedHook)
    return fieldError(field + ".hook",
                      "\"" + *hook + "\" is not one of xdp, tc-ingress, tc-egress");
  c.hook = *parsedHook;
  auto placement = stringField(node["placement"], field + ".placement", false, "first");
  if (!placement)
    return placement.error();
  if (*placement != "first" && *placement != "last")
    return fieldError(field + ".placement", "\"" + *placement + "\" is not one of first, last");
  c.placeLast = *placement == "last";
  const YAML::Node& interfaces = node["interfaces"];
  const YAML::Node& pods = node["pods"];
  bool hasInterfaces = interfaces.IsDefined() && !interfaces.IsNull();
  bool hasPods = pods.IsDefined() && !pods.IsNull();
  if (hasInterfaces == hasPods)
    return fieldError(field, "exactly one of interfaces and pods must be set");
  if (hasInterfaces) {
    if (auto ok = onlyFields(interfaces, field + ".interfaces", {"names"}); !ok)
      return ok.error();
    auto selector = InterfaceSelector::parse(interfaces["names"], field + ".interfaces.names");
    if (!selector)
      return selector.error();
    c.interfaces = std::move(*selector);
  } else {
    auto parsed = parsePods(pods, field + ".pods");
    if (!parsed)
      return parsed.error();
    c.pods = std::move(*parsed);
  }
  const YAML::Node& programs = node["programs"];
  if (!programs.IsDefined() || !programs.IsSequence() || programs.size() == 0)
    return fieldError(field + ".programs", "required: a list of 1 to 32 programs");
  if (programs.size() > 32)
    return fieldError(field + ".programs", "more than 32 programs");
  std::set<std::string> names;
  for (size_t i = 0; i < programs.size(); ++i) {
    auto p = parseProgram(programs[i], at(field + ".programs", i));
    if (!p)
      return p.error();
    if (!names.insert(p->name).second)
      return fieldError(at(field + ".programs", i) + ".name",
                        "\"" + p->name + "\" is used twice in the chain");
    c.programs.push_back(std::move(*p));
  }
  return c;
}

// The name of a chain that did not parse, for its status entry: its `name` when that is a
// valid name, else `position` ("chains[3]").
std::string invalidChainName(const YAML::Node& chain, const std::string& position) {
  if (!chain.IsMap() || !chain["name"].IsScalar())
    return position;
  auto name = validChainName(chain["name"].Scalar(), position + ".name");
  return name ? *name : position;
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

Result<InterfaceSelector> InterfaceSelector::parse(const YAML::Node& names,
                                                   const std::string& field) {
  if (!names.IsDefined() || !names.IsSequence() || names.size() == 0)
    return fieldError(field, "required: a list of interface names or /regex/");
  InterfaceSelector s;
  for (size_t i = 0; i < names.size(); ++i) {
    if (!names[i].IsScalar() || names[i].Scalar().empty())
      return fieldError(at(field, i), "not a name");
    const std::string& name = names[i].Scalar();
    if (name.size() >= 2 && name.front() == '/' && name.back() == '/') {
      try {
        s.patterns_.emplace_back(name.substr(1, name.size() - 2), std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        return fieldError(at(field, i), "invalid regular expression " + name + ": " + e.what());
      }
    } else {
      s.exact_.push_back(name);
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

Result<NodeSpec> parseNodeSpec(const YAML::Node& document, const std::string& source) {
  YAML::Node spec = document;
  // A whole BpfNodeConfig object is accepted too: its spec is the config.
  if (spec.IsMap() && spec["kind"].IsDefined())
    spec = document["spec"];
  NodeSpec s;
  if (!spec.IsDefined() || spec.IsNull())
    return s;
  if (auto ok = onlyFields(spec, "", {"chains"}); !ok)
    return ok.error().context(source);
  const YAML::Node& chains = spec["chains"];
  if (!chains.IsDefined() || chains.IsNull())
    return s;
  if (!chains.IsSequence())
    return invalidError(source + ": chains: not a list");
  std::set<std::string> names;
  for (size_t i = 0; i < chains.size(); ++i) {
    auto c = parseChain(chains[i], at("chains", i));
    // The name a status entry can carry: the chain's own when it is one, else its position.
    std::string name = c ? c->name : invalidChainName(chains[i], at("chains", i));
    if (!names.insert(name).second)
      return fieldError(at("chains", i) + ".name", "\"" + name + "\" is used twice")
          .context(source);
    if (!c) {
      auto generation = intField(chains[i].IsMap() ? chains[i]["generation"] : YAML::Node(),
                                 at("chains", i) + ".generation", 1, 0, INT64_MAX);
      s.invalid.push_back(InvalidChain{std::move(name), generation ? *generation : 0,
                                       c.error().context(source).message()});
      continue;
    }
    s.chains.push_back(std::move(*c));
  }
  return s;
}

Result<NodeSpec> loadNodeSpecFile(const std::string& path) {
  std::error_code ec;
  uintmax_t size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxConfigFileBytes)
    return invalidError(path + ": " + std::to_string(size) + " bytes, over the limit of " +
                        std::to_string(kMaxConfigFileBytes) + " bytes for a config file");
  YAML::Node document;
  try {
    document = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return systemError(errno ? errno : ENOENT, "read " + path);
  } catch (const YAML::Exception& e) {
    return invalidError(path + ": line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  // An empty file is what a truncated write or a half-done copy leaves: taking it for "no
  // chains" would drop every chain's protection.
  auto parsed = parseNodeSpec(document, path);
  if (!parsed)
    return parsed;
  YAML::Node spec = document.IsMap() && document["kind"].IsDefined() ? document["spec"] : document;
  if (!spec.IsDefined() || spec.IsNull())
    return invalidError(path + ": empty (no chains: list); write \"chains: []\" to remove every "
                               "chain");
  if (!spec["chains"].IsDefined() || spec["chains"].IsNull())
    return invalidError(path + ": chains: no value; write \"chains: []\" to remove every chain");
  return parsed;
}

} // namespace bpfchain::agent
