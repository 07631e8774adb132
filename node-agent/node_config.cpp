#include "node-agent/node_config.h"

#include <cpprest/json.h>
#include <filesystem>
#include <set>

#include "api/yaml_json.h"

namespace bpfchain::agent {

namespace {

using k8s::Json;

std::string at(const std::string& field, size_t i) {
  return field + "[" + std::to_string(i) + "]";
}

// The spec of `document`: the document itself, or a whole BpfNodeConfig object's `spec`
// (nullptr when it has none).
const Json* specOf(const Json& document) {
  if (!document.is_object() || !document.has_field("kind"))
    return &document;
  return document.has_field("spec") ? &document.at("spec") : nullptr;
}

} // namespace

Result<NodeSpec> parseNodeSpec(const Json& document, const std::string& source) {
  const Json* spec = specOf(document);
  NodeSpec s;
  if (spec == nullptr || spec->is_null())
    return s;
  if (!spec->is_object())
    return invalidError(": not a map").context(source);
  for (const auto& kv : spec->as_object())
    if (kv.first != "chains")
      return invalidError(kv.first + ": unknown field").context(source);
  if (!spec->has_field("chains") || spec->at("chains").is_null())
    return s;
  const Json& chains = spec->at("chains");
  if (!chains.is_array())
    return invalidError(source + ": chains: not a list");
  std::set<std::string> names;
  const auto& list = chains.as_array();
  for (size_t i = 0; i < list.size(); ++i) {
    auto c = api::parseChain(list.at(i), at("chains", i));
    // The name a status entry can carry: the chain's own when it is one, else its position.
    std::string name = c ? c->name : api::invalidChainName(list.at(i), at("chains", i));
    if (!names.insert(name).second)
      return invalidError(at("chains", i) + ".name: \"" + name + "\" is used twice")
          .context(source);
    if (!c) {
      s.invalid.push_back(InvalidChain{std::move(name),
                                       api::invalidChainGeneration(list.at(i), at("chains", i)),
                                       c.error().context(source).message()});
      continue;
    }
    s.chains.push_back(std::move(*c));
  }
  return s;
}

Result<NodeSpec> parseNodeSpec(const YAML::Node& document, const std::string& source) {
  auto json = api::jsonFromYaml(document, source);
  if (!json)
    return std::move(json).error();
  return parseNodeSpec(*json, source);
}

Result<NodeSpec> loadNodeSpecFile(const std::string& path) {
  std::error_code ec;
  uintmax_t size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxConfigFileBytes)
    return invalidError(path + ": " + std::to_string(size) + " bytes, over the limit of " +
                        std::to_string(kMaxConfigFileBytes) + " bytes for a config file");
  // The YAML tree is gone before the JSON one is parsed: the two are not held at once longer
  // than the conversion.
  auto document = [&]() -> Result<Json> {
    YAML::Node yaml;
    try {
      yaml = YAML::LoadFile(path);
    } catch (const YAML::BadFile&) {
      return systemError(errno ? errno : ENOENT, "read " + path);
    } catch (const YAML::Exception& e) {
      return invalidError(path + ": line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
    return api::jsonFromYaml(yaml, path);
  }();
  if (!document)
    return std::move(document).error();
  // An empty file is what a truncated write or a half-done copy leaves: taking it for "no
  // chains" would drop every chain's protection.
  auto parsed = parseNodeSpec(*document, path);
  if (!parsed)
    return parsed;
  const Json* spec = specOf(*document);
  if (spec == nullptr || spec->is_null())
    return invalidError(path + ": empty (no chains: list); write \"chains: []\" to remove every "
                               "chain");
  if (!spec->has_field("chains") || spec->at("chains").is_null())
    return invalidError(path + ": chains: no value; write \"chains: []\" to remove every chain");
  return parsed;
}

} // namespace bpfchain::agent
