#include "operator/finalizers.h"

#include "k8s/object.h"

namespace bpfchain::op {
namespace {

const k8s::Json* finalizersOf(const k8s::Json& object) {
  if (!object.is_object() || !object.has_field("metadata"))
    return nullptr;
  const k8s::Json& metadata = object.at("metadata");
  if (!metadata.is_object() || !metadata.has_field("finalizers") ||
      !metadata.at("finalizers").is_array())
    return nullptr;
  return &metadata.at("finalizers");
}

k8s::Json patchSetting(const k8s::Json& object, k8s::Json finalizers) {
  k8s::Json patch = k8s::Json::object();
  patch["metadata"]["resourceVersion"] = k8s::Json::string(k8s::resourceVersionOf(object));
  patch["metadata"]["finalizers"] = std::move(finalizers);
  return patch;
}

} // namespace

bool hasFinalizer(const k8s::Json& object, const std::string& finalizer) {
  if (const k8s::Json* list = finalizersOf(object))
    for (const auto& f : list->as_array())
      if (f.is_string() && f.as_string() == finalizer)
        return true;
  return false;
}

k8s::Json addFinalizerPatch(const k8s::Json& object, const std::string& finalizer) {
  k8s::Json finalizers = k8s::Json::array();
  size_t i = 0;
  if (const k8s::Json* list = finalizersOf(object))
    for (const auto& f : list->as_array())
      finalizers[i++] = f;
  finalizers[i] = k8s::Json::string(finalizer);
  return patchSetting(object, std::move(finalizers));
}

k8s::Json removeFinalizerPatch(const k8s::Json& object, const std::string& finalizer) {
  k8s::Json finalizers = k8s::Json::array();
  size_t i = 0;
  if (const k8s::Json* list = finalizersOf(object))
    for (const auto& f : list->as_array())
      if (!(f.is_string() && f.as_string() == finalizer))
        finalizers[i++] = f;
  return patchSetting(object, std::move(finalizers));
}

} // namespace bpfchain::op
