// The agent's side of the CNI socket (DESIGN.md section 5): AttachPod links a pod's host-side
// veth to the chain sets its pod selects (already loaded when the chains were applied),
// DetachPod and GC remove attachments, CheckPod says whether they are still there. Until the
// node's config has been applied once, requests get reason "NotReady" (the plugin's
// failurePolicy decides then).
#pragma once
#include <functional>
#include <string>

#include "agent_socket/agent_socket.h"
#include "node-agent/node_reconciler.h"
#include "node-agent/spec_source.h"

namespace bpfchain::agent {

class CniHandler : public AgentHandler {
public:
  // `changed` runs after a pod's attachments changed (the status should show it).
  CniHandler(NodeReconciler& reconciler, SpecSource& source, std::string nodeName,
             std::string version, std::function<void()> changed)
      : reconciler_(reconciler), source_(source), nodeName_(std::move(nodeName)),
        version_(std::move(version)), changed_(std::move(changed)) {}
  v1::Response attachPod(const v1::AttachPod& request) override;
  v1::Response detachPod(const v1::DetachPod& request) override;
  v1::Response checkPod(const v1::CheckPod& request) override;
  v1::Response status(const v1::StatusRequest& request) override;
  v1::Response gc(const v1::GcRequest& request) override;

private:
  NodeReconciler& reconciler_;
  SpecSource& source_;
  std::string nodeName_;
  std::string version_;
  std::function<void()> changed_;
};

} // namespace bpfchain::agent
