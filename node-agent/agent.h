// The agent's main loop: one thread runs the reconciler whenever the spec source or the
// network namespace's links change, when a failed chain is due for a retry, and every resync
// period; status goes back to the source after each pass (retried until it is accepted), and
// after pod changes at most every 200 ms.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>

#include "node-agent/node_reconciler.h"
#include "node-agent/spec_source.h"

namespace bpfchain::agent {

class AgentMetrics;

class Agent {
public:
  Agent(SpecSource& source, AgentMetrics* metrics, std::chrono::seconds resync)
      : source_(source), metrics_(metrics), resync_(resync) {}

  // Runs `reconciler` until stop(); returns after the pass in progress. The calling thread must
  // be in the network namespace the reconciler manages.
  void run(NodeReconciler& reconciler);
  void stop();
  void trigger();
  // Only links came or went (`links`: all of them now): a cheap pass that leaves running chains
  // alone.
  void triggerLinks(Interfaces links);
  // Only the status changed (pods attached or detached): report it without a reconcile pass.
  void refreshStatus();

  // For /readyz: the first pass with a known spec has run.
  std::optional<std::string> notReady() const;
  // For /healthz: the loop thread is not stuck (a pass never takes this long).
  std::optional<std::string> notAlive(std::chrono::seconds limit) const;

private:
  SpecSource& source_;
  AgentMetrics* metrics_;
  std::chrono::seconds resync_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool triggered_ = true;
  bool statusOnly_ = false;
  bool linksOnly_ = false;
  std::optional<Interfaces> links_; // from the last triggerLinks, for the next Links pass
  bool stopping_ = false;
  uint64_t wakeups_ = 0; // counts the calls above, so that the loop sees each one
  std::atomic<bool> reconciled_{false};
  std::atomic<int64_t> passStartedNs_{0}; // steady clock, 0 when idle
};

} // namespace bpfchain::agent
