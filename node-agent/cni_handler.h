// The agent's side of the CNI socket (DESIGN.md section 5): AttachPod links a pod's host-side
// veth to the chain sets its pod selects (already loaded when the chains were applied),
// DetachPod and GC remove attachments, CheckPod says whether they are still there. Until the
// node's config has been applied once, requests get reason "NotReady" (the plugin's
// failurePolicy decides then). Each request is counted and timed in AgentMetrics by its CNI
// command (AttachPod = ADD, DetachPod = DEL, CheckPod = CHECK, Status = STATUS, GC = GC).
// Status also carries what runs on each interface hook (`bpfchain-agent status`).
#pragma once
#include <functional>
#include <string>

#include "agent_socket/agent_socket.h"
#include "node-agent/node_reconciler.h"
#include "node-agent/spec_source.h"

namespace bpfchain::agent {

class AgentMetrics;

class CniHandler : public AgentHandler {
public:
  // `changed` runs after a pod's attachments changed (the status should show it); `metrics`
  // (optional) must outlive the handler.
  CniHandler(NodeReconciler& reconciler, SpecSource& source, std::string nodeName,
             std::string version, std::function<void()> changed, AgentMetrics* metrics = nullptr)
      : reconciler_(reconciler), source_(source), nodeName_(std::move(nodeName)),
        version_(std::move(version)), changed_(std::move(changed)), metrics_(metrics) {}
  v1::Response attachPod(const v1::AttachPod& request) override;
  v1::Response detachPod(const v1::DetachPod& request) override;
  v1::Response checkPod(const v1::CheckPod& request) override;
  v1::Response status(const v1::StatusRequest& request) override;
  v1::Response gc(const v1::GcRequest& request) override;

private:
  template <typename Serve> v1::Response measured(const char* command, Serve serve);
  v1::Response attach(const v1::AttachPod& request);
  v1::Response check(const v1::CheckPod& request);
  // What runs (NodeReconciler::inspect) and each chain's phase, for `bpfchain-agent status`.
  void fillInspection(v1::StatusResponse& status) const;

  NodeReconciler& reconciler_;
  SpecSource& source_;
  std::string nodeName_;
  std::string version_;
  std::function<void()> changed_;
  AgentMetrics* metrics_;
};

} // namespace bpfchain::agent
