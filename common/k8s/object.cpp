#include "k8s/object.h"

#include <charconv>

namespace bpfchain::k8s {

std::string stringAt(const Json& obj, std::initializer_list<const char*> path) {
  const Json* at = &obj;
  for (const char* step : path) {
    if (!at->is_object() || !at->has_field(step))
      return "";
    at = &at->at(step);
  }
  return at->is_string() ? at->as_string() : "";
}

std::string metadataString(const Json& obj, const std::string& field) {
  return stringAt(obj, {"metadata", field.c_str()});
}

std::optional<int64_t> revisionOf(const std::string& resourceVersion) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(resourceVersion.data(),
                                   resourceVersion.data() + resourceVersion.size(), value);
  if (ec != std::errc() || end != resourceVersion.data() + resourceVersion.size())
    return std::nullopt;
  return value;
}

std::string keyOf(const Json& obj) {
  std::string ns = namespaceOf(obj);
  return ns.empty() ? nameOf(obj) : ns + "/" + nameOf(obj);
}

std::map<std::string, std::string> labelsOf(const Json& obj) {
  std::map<std::string, std::string> labels;
  if (!obj.is_object() || !obj.has_field("metadata"))
    return labels;
  const Json& metadata = obj.at("metadata");
  if (!metadata.has_field("labels") || !metadata.at("labels").is_object())
    return labels;
  for (const auto& [key, value] : metadata.at("labels").as_object())
    if (value.is_string())
      labels.emplace(key, value.as_string());
  return labels;
}

std::string controllerUidOf(const Json& obj) {
  if (!obj.is_object() || !obj.has_field("metadata") ||
      !obj.at("metadata").has_field("ownerReferences") ||
      !obj.at("metadata").at("ownerReferences").is_array())
    return "";
  for (const auto& o : obj.at("metadata").at("ownerReferences").as_array())
    if (o.has_field("controller") && o.at("controller").is_boolean() &&
        o.at("controller").as_bool())
      return stringAt(o, {"uid"});
  return "";
}

int64_t generationOf(const Json& obj) {
  if (!obj.is_object() || !obj.has_field("metadata"))
    return 0;
  const Json& metadata = obj.at("metadata");
  return metadata.has_field("generation") && metadata.at("generation").is_number()
             ? metadata.at("generation").as_number().to_int64()
             : 0;
}

} // namespace bpfchain::k8s
