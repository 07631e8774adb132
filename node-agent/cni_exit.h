// Whether the agent takes bpfchain-cni's entry out of the node's CNI configuration when it
// stops (docs/operations.md, "Uninstalling").
// - Kept for a restart, a rolling update, a pod deletion or an eviction: the next agent serves
//   the socket again, and meanwhile a pod ADD fails (failurePolicy fail; kubelet retries) or
//   starts without its chains (ignore), as for any agent restart.
// - Removed for an uninstall, where nobody would serve it again and every new pod on the node
//   would fail or run unprotected for good.
// An agent cannot see `helm uninstall`; it sees what an uninstall does to the API, which an
// upgrade never does: its DaemonSet gone or being deleted (Helm and `kubectl delete -f
// manifests/` delete it before the pods, which the garbage collector then terminates), its
// namespace being deleted, or its credentials refused (401: the ServiceAccount was deleted; 403:
// its permission to read the DaemonSet was), because Helm deletes RBAC and ServiceAccounts after
// the DaemonSet. When the API gives no answer the entry is kept: a wrong removal during an
// upgrade lets pods start silently without their chains, a wrong keep fails new pods loudly
// until `bpfchain-cni uninstall` runs. Cilium keeps its entry on shutdown by default for the
// same reason (cilium/cilium PR 24009), and has its CLI flip cni.uninstall before uninstalling.
#pragma once

#include <optional>
#include <string>

namespace bpfchain::agent {

// What one GET of an object answered.
struct ObjectLookup {
  int status = 0;        // HTTP status; 0 = no answer (connection, TLS, timeout)
  bool deleting = false; // 200 with metadata.deletionTimestamp set
  std::string message;   // the error's text, for the log
};

struct CniExitDecision {
  bool removeEntry = false;
  std::string why; // for the agent's log line
};

// `uninstallOnExit` is --cni-uninstall-on-exit (always remove). `daemonSet` and `nameSpace` are
// the lookups of the agent's own DaemonSet and namespace, when --cni-owner names them (pure).
CniExitDecision decideCniExit(bool uninstallOnExit, const std::string& owner,
                              const std::optional<ObjectLookup>& daemonSet,
                              const std::optional<ObjectLookup>& nameSpace);

// "NAMESPACE/NAME" -> the two parts; nullopt when either is empty or the separator is missing.
std::optional<std::pair<std::string, std::string>> splitOwner(const std::string& owner);

} // namespace bpfchain::agent
