// Where the agent's desired state comes from and where its status goes: the node's
// BpfNodeConfig (cluster mode) or a local file (standalone mode).
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "node-agent/node_config.h"
#include "node-agent/node_reconciler.h"

namespace bpfchain::agent {

class SpecSource {
public:
  virtual ~SpecSource() = default;
  // Called (from any thread) whenever current() may have changed.
  virtual void start(std::function<void()> changed) = 0;
  virtual void stop() = 0;
  // The spec to run; nullopt while none is known (the data plane is then left as it is).
  virtual std::optional<NodeSpec> current() = 0;
  // Publishes the status of the last reconcile; returns false when it must be retried.
  virtual bool report(const NodeStatus& status) = 0;
  // Which pods a pods chain selects (by the pod's and its namespace's labels). The selector
  // answers from memory: it runs under the reconciler's lock.
  virtual PodSelector podSelector() = 0;
  // Makes sure the selector knows the pod's and its namespace's labels (a CNI ADD can come
  // before the watch shows the pod); says why not when it cannot. May block briefly: call it
  // before taking locks.
  virtual std::optional<std::string> preparePod(const std::string& /*ns*/,
                                                const std::string& /*name*/) {
    return std::nullopt;
  }
  // Pods (namespace, name) expected on this node whose chains should be loaded ahead of their
  // CNI ADD.
  virtual std::vector<std::pair<std::string, std::string>> expectedPods() = 0;
  // Why the agent is not ready yet, or nullopt (for /readyz).
  virtual std::optional<std::string> notReady() const = 0;
};

} // namespace bpfchain::agent
