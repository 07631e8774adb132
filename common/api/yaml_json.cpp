#include "api/yaml_json.h"

#include <charconv>
#include <yaml-cpp/yaml.h>

namespace bpfchain::api {

namespace {

// A plain scalar that is an integer as JSON writes it (no sign, leading zero or other base),
// within int64: its number prints as the same text.
std::optional<int64_t> canonicalInteger(const std::string& text) {
  size_t digits = !text.empty() && text[0] == '-' ? 1 : 0;
  if (text.size() == digits || (text[digits] == '0' && text.size() > digits + 1))
    return std::nullopt;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text == "-0")
    return std::nullopt;
  return v;
}

k8s::Json scalarJson(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  if (node.Tag() == "?") { // plain: not quoted, no explicit tag
    if (text == "true" || text == "false")
      return k8s::Json::boolean(text == "true");
    if (auto v = canonicalInteger(text))
      return k8s::Json::number(*v);
  }
  return k8s::Json::string(text);
}

Result<k8s::Json> convert(const YAML::Node& node, const std::string& path) {
  switch (node.Type()) {
  case YAML::NodeType::Undefined:
  case YAML::NodeType::Null:
    return k8s::Json::null();
  case YAML::NodeType::Scalar:
    return scalarJson(node);
  case YAML::NodeType::Sequence: {
    k8s::Json list = k8s::Json::array();
    for (size_t i = 0; i < node.size(); ++i) {
      auto item = convert(node[i], path + "[" + std::to_string(i) + "]");
      if (!item)
        return item;
      list[i] = std::move(*item);
    }
    return list;
  }
  case YAML::NodeType::Map: {
    k8s::Json object = k8s::Json::object(/*keep_order=*/true);
    for (const auto& kv : node) {
      if (!kv.first.IsScalar())
        return invalidError(
            (path.empty() ? std::string("a member name") : path + ": a member name") +
            " is not a string (line " + std::to_string(kv.first.Mark().line + 1) + ")");
      const std::string& key = kv.first.Scalar();
      std::string child = path;
      if (!child.empty())
        child += '.';
      child += key;
      auto item = convert(kv.second, child);
      if (!item)
        return item;
      object[key] = std::move(*item);
    }
    return object;
  }
  }
  return k8s::Json::null();
}

} // namespace

Result<k8s::Json> jsonFromYaml(const YAML::Node& node, const std::string& source) {
  auto json = convert(node, "");
  if (!json)
    return json.error().context(source);
  return json;
}

} // namespace bpfchain::api
