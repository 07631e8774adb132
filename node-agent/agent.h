// The agent's main loop: one thread runs the reconciler whenever the spec source or the
// network namespace's links change, when a failed chain is due for a retry, and every resync
// period; status goes back to the source after each pass (retried until it is accepted), and
// after pod changes at most every 200 ms.
//
// The work is keys of the controllers' work queue (k8s/work_queue.h: stingy, one worker, delays
// where the earlier deadline wins): "full" (a pass that re-applies everything), "links" (a
// cheap pass that follows links only), "status" (a report without a pass), and the timed
// "resync" and "retry", which turn into a full pass when due and wait again otherwise.
#pragma once
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>

#include "k8s/work_queue.h"
#include "node-agent/node_reconciler.h"
#include "node-agent/spec_source.h"

namespace bpfchain::agent {

class AgentMetrics;

class Agent {
public:
  Agent(SpecSource& source, AgentMetrics* metrics, std::chrono::seconds resync);

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
  enum class Pass { Full, Links };
  // One pass of the reconciler, its status reported.
  void reconcile(NodeReconciler& reconciler, Pass pass, const std::optional<Interfaces>& links);
  // Sends `status` unless it is what the source has already taken (always: after a full pass).
  void report(const NodeStatus& status, bool always);
  void reportStatus(NodeReconciler& reconciler);
  // Queues `key` at `at` (now or in the past: at once).
  void addAt(const std::string& key, std::chrono::steady_clock::time_point at);

  SpecSource& source_;
  AgentMetrics* metrics_;
  std::chrono::seconds resync_;
  k8s::WorkQueue queue_;
  mutable std::mutex mu_;
  std::optional<Interfaces> links_; // from the last triggerLinks, until a pass takes it
  // The run thread's own (no lock).
  bool statusPending_ = false; // the source refused the last report: retry it
  NodeStatus lastStatus_;
  std::chrono::steady_clock::time_point lastReport_{};
  std::chrono::steady_clock::time_point nextResync_{};
  std::atomic<bool> reconciled_{false};
  std::atomic<int64_t> passStartedNs_{0}; // steady clock, 0 when idle
};

} // namespace bpfchain::agent
