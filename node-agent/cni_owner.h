// The agent's view of its own DaemonSet and namespace (--cni-owner NAMESPACE/NAME), asked once
// when the agent stops, for decideCniExit (cni_exit.h). The client is made at start, so a bad
// kubeconfig fails the agent at once rather than at exit.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "node-agent/cni_exit.h"
#include "system/result.h"

namespace bpfchain::k8s {
class Client;
}

namespace bpfchain::agent {

class CniOwner {
public:
  static Result<std::unique_ptr<CniOwner>> create(const std::string& kubeconfig,
                                                  const std::string& owner);
  ~CniOwner();
  CniOwner(const CniOwner&) = delete;
  CniOwner& operator=(const CniOwner&) = delete;

  const std::string& owner() const { return owner_; }
  // GETs the DaemonSet (retrying a missing answer for up to ~6 s: the pod's grace period is
  // 30 s), then the namespace.
  ObjectLookup daemonSet();
  ObjectLookup nameSpace();

private:
  CniOwner(std::unique_ptr<k8s::Client> client, std::string owner, std::string ns,
           std::string name);
  std::unique_ptr<k8s::Client> client_;
  std::string owner_, ns_, name_;
};

} // namespace bpfchain::agent
