// Cluster mode: the spec is the node's own BpfNodeConfig (one watch with
// fieldSelector=metadata.name=<node>, so other nodes' changes never reach this agent); status
// goes back to its status subresource by a PUT (field manager bpfchain-agent) of the version the
// watch showed (read again on a conflict), only when it changed or its heartbeat
// (status.agent.heartbeatTime) is due, and is retried after an API server outage. Until the first
// list, and while the object does not exist, current() is nullopt: the data plane is left as it is.
// The pods on this node (fieldSelector=spec.nodeName=<node>) and the namespaces are watched
// too, for pods chains' label selectors; a label change moves a pod's chains.
// Chain references (api::ChainRef) are resolved by chain_revisions.h from the chain revisions
// of revisionNamespace (one watch on every revision labelled api::kChainLabel: about two per
// chain; only the events of a revision a reference waits for start a pass); a revision the
// watch has not shown yet is read with a GET of at most 1 s (a failed one at most every 5 s). The
// revision each chain last resolved to is kept under <stateDir>/revisions/, so that an agent
// restarted while its revisions cannot be read keeps running what it ran.
// Membership entries follow their chain's published rollout (BpfChain.status.published): one
// watch on the BpfChains; only a change of what a chain publishes starts a pass, not the
// counts the operator writes beside it.
#pragma once
#include <chrono>
#include <memory>
#include <string>

#include "dataplane/features.h"
#include "node-agent/spec_source.h"

namespace bpfchain::agent {

struct ClusterSourceOptions {
  std::string nodeName;
  std::string kubeconfig; // "" = in-cluster config
  std::string agentVersion;
  // status.agent.heartbeatTime is refreshed when older than this, even when nothing changed.
  std::chrono::seconds heartbeat{60};
  std::string revisionNamespace = "bpfchain-system"; // where the chain revisions are
  std::string stateDir;                              // "" = no revisions kept on disk
};

class ClusterSource : public SpecSource {
public:
  static Result<std::unique_ptr<ClusterSource>> create(ClusterSourceOptions options);
  ~ClusterSource() override;
  void start(std::function<void()> changed) override;
  void stop() override;
  std::optional<NodeSpec> current() override;
  bool report(const NodeStatus& status) override;
  std::optional<std::string> notReady() const override;
  PodSelector podSelector() override;
  // A pod (or namespace) the informers do not have yet is read with a GET of at most 1 s and
  // kept until they do.
  std::optional<std::string> preparePod(const std::string& ns, const std::string& name) override;
  // The pods scheduled to this node (the pod informer's cache).
  std::vector<std::pair<std::string, std::string>> expectedPods() override;

private:
  struct Impl;
  explicit ClusterSource(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace bpfchain::agent
