// Finalizers on any object, written once (controller-runtime's controllerutil
// ContainsFinalizer / AddFinalizer / RemoveFinalizer): the patches are merge patches that carry
// the object's resourceVersion, so a concurrent change of the list fails with a conflict
// instead of being overwritten.
#pragma once

#include <string>

#include "k8s/object.h"

namespace bpfchain::op {

bool hasFinalizer(const k8s::Json& object, const std::string& finalizer);
// A merge patch that sets metadata.finalizers to the object's list plus `finalizer`.
k8s::Json addFinalizerPatch(const k8s::Json& object, const std::string& finalizer);
// A merge patch that sets metadata.finalizers to the object's list less `finalizer`.
k8s::Json removeFinalizerPatch(const k8s::Json& object, const std::string& finalizer);

} // namespace bpfchain::op
