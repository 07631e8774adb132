// Reading the metadata of an object held as JSON.
#pragma once

#include <cpprest/json.h>
#include <map>
#include <string>

namespace bpfchain::k8s {

using Json = web::json::value;

// The string at obj.metadata.<field>, or "" when absent.
std::string metadataString(const Json& obj, const std::string& field);
inline std::string nameOf(const Json& obj) {
  return metadataString(obj, "name");
}
inline std::string namespaceOf(const Json& obj) {
  return metadataString(obj, "namespace");
}
inline std::string resourceVersionOf(const Json& obj) {
  return metadataString(obj, "resourceVersion");
}
// The cache key client-go uses: "namespace/name", or "name" for cluster-scoped objects.
std::string keyOf(const Json& obj);
std::map<std::string, std::string> labelsOf(const Json& obj);
// obj.metadata.generation, or 0.
int64_t generationOf(const Json& obj);
// The uid of the object's controller ownerReference, or "" when it has none.
std::string controllerUidOf(const Json& obj);

// The string at a path of object keys, or "" when any step is missing or not an object.
std::string stringAt(const Json& obj, std::initializer_list<const char*> path);

} // namespace bpfchain::k8s
