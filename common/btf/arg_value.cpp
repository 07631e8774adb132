#include "btf/arg_value.h"

#include <yaml-cpp/yaml.h>

namespace bpfchain::btf {

ArgValue ArgValue::text(std::string scalar) {
  ArgValue v;
  v.kind = Kind::Scalar;
  v.scalar = std::move(scalar);
  return v;
}

Result<ArgValue> argValueFromYaml(const YAML::Node& node, const std::string& field) {
  ArgValue v;
  switch (node.Type()) {
  case YAML::NodeType::Undefined:
    return invalidError(field + ": required");
  case YAML::NodeType::Null:
    return v;
  case YAML::NodeType::Scalar:
    return ArgValue::text(node.Scalar());
  case YAML::NodeType::Sequence:
    v.kind = ArgValue::Kind::Sequence;
    for (size_t i = 0; i < node.size(); ++i) {
      auto item = argValueFromYaml(node[i], field + "[" + std::to_string(i) + "]");
      if (!item)
        return item.error();
      v.items.push_back(std::move(*item));
    }
    return v;
  case YAML::NodeType::Map:
    v.kind = ArgValue::Kind::Map;
    for (const auto& kv : node) {
      if (!kv.first.IsScalar())
        return invalidError(field + ": a member name is not a string");
      auto item = argValueFromYaml(kv.second, field + "." + kv.first.Scalar());
      if (!item)
        return item.error();
      v.names.push_back(kv.first.Scalar());
      v.items.push_back(std::move(*item));
    }
    return v;
  }
  return invalidError(field + ": not a YAML value");
}

Result<ArgValue> parseArgValue(const std::string& text, const std::string& field) {
  try {
    return argValueFromYaml(YAML::Load(text), field);
  } catch (const YAML::Exception& e) {
    return invalidError(field + ": not YAML: " + e.msg);
  }
}

YAML::Node argValueToYaml(const ArgValue& value) {
  switch (value.kind) {
  case ArgValue::Kind::Null:
    return YAML::Node(YAML::NodeType::Null);
  case ArgValue::Kind::Scalar:
    return YAML::Node(value.scalar);
  case ArgValue::Kind::Sequence: {
    YAML::Node seq(YAML::NodeType::Sequence);
    for (const auto& item : value.items)
      seq.push_back(argValueToYaml(item));
    return seq;
  }
  case ArgValue::Kind::Map: {
    YAML::Node map(YAML::NodeType::Map);
    // force_insert keeps a name written twice twice, as the parsed document had it.
    for (size_t i = 0; i < value.names.size() && i < value.items.size(); ++i)
      map.force_insert(value.names[i], argValueToYaml(value.items[i]));
    return map;
  }
  }
  return {};
}

} // namespace bpfchain::btf
