// Reading the metadata of an object held as JSON.
#pragma once

#include <cpprest/json.h>
#include <map>
#include <optional>
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
// A resourceVersion as etcd's revision, which orders every write of a cluster. The API
// conventions call it opaque; every apiserver backed by etcd makes it this number, which is how
// the operator tells whether its cache has seen its own write. nullopt when it is not a number.
std::optional<int64_t> revisionOf(const std::string& resourceVersion);
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
