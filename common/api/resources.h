// The API resources bpfchain reads and writes, defined once (operator, agent, benchmarks and
// tests name them from here).
#pragma once

#include "k8s/resource.h"

namespace bpfchain::api {

inline const k8s::Resource kBpfChains{"bpfchain.io", "v1alpha1", "bpfchains", "BpfChain", false};
inline const k8s::Resource kBpfNodeConfigs{"bpfchain.io", "v1alpha1", "bpfnodeconfigs",
                                           "BpfNodeConfig", false};
// The immutable revisions of chain specs that BpfNodeConfigs refer to (chain_ref.h).
inline const k8s::Resource kControllerRevisions{"apps", "v1", "controllerrevisions",
                                                "ControllerRevision", true};

// The label every chain revision carries: the BpfChain's name. Agents watch revisions by it.
inline constexpr const char* kChainLabel = "bpfchain.io/chain";

} // namespace bpfchain::api
