// The operator's Prometheus metrics (DESIGN.md section 7), served by metrics::MetricsServer on
// --metrics-address (default :9451):
//   bpfchain_operator_reconciles_total{controller,result}   controller: chain | node;
//                                                            result: success | error | requeue
//   bpfchain_operator_reconcile_duration_seconds{controller} histogram
//   bpfchain_operator_rollout_nodes{chain,state}             state: matched | updated | ready |
//                                                            failed | pending (matched, not yet
//                                                            given the target generation) |
//                                                            stale (agent not reporting)
//   bpfchain_operator_rollout_halted{chain}                  1 while the chain's rollout is
//                                                            stopped on a failure (Progressing
//                                                            reason Halted or RolledBack)
//   bpfchain_operator_rollout_rolled_back{chain}             1 while it is rolled back
//   bpfchain_operator_status_writes_total                   BpfChain status writes sent (a
//                                                            reconcile that changes nothing
//                                                            writes nothing)
//   bpfchain_operator_leader                                 1 while this replica leads, or
//                                                            always without --leader-elect
//   bpfchain_operator_info{version}                          1
//   bpfchain_workqueue_*{name="operator"}, bpfchain_rest_client_*  (common/k8s/k8s_metrics.h)
// Thread-safe.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <string>

#include "k8s/k8s_metrics.h"

namespace bpfchain::op {

enum class ReconcileResult { Success, Error, Requeue };

struct RolloutCounts {
  int matched = 0, updated = 0, ready = 0, failed = 0;
  bool halted = false;     // the rollout stopped on a failure (Halt, or Rollback)
  bool rolledBack = false; // ... and went back to the last generation Ready everywhere
  int stale = 0;           // reported Ready, agent not reporting (not in ready)
};

class OperatorMetrics {
public:
  explicit OperatorMetrics(const std::string& version);

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }
  // The work queue's in-flight gauges, served beside registry().
  std::shared_ptr<prometheus::Collectable> workQueueInFlight() const { return queue_.inFlight; }
  // For the controller's WorkQueueOptions, and for k8s::setRequestMetrics().
  std::shared_ptr<k8s::WorkQueueMetrics> workQueue() const { return queue_.metrics; }
  std::shared_ptr<k8s::RequestMetrics> requests() const { return requests_; }

  // `controller` is "chain" or "node".
  void reconciled(const std::string& controller, ReconcileResult result, double seconds);
  void setRollout(const std::string& chain, const RolloutCounts& counts);
  // The chain is gone: its series go too.
  void forgetChain(const std::string& chain);
  void statusWritten();
  void nodeConfigWritten();
  void setLeader(bool leading);

private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& reconciles_;
  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Family<prometheus::Gauge>& rolloutNodes_;
  prometheus::Family<prometheus::Gauge>& halted_;
  prometheus::Family<prometheus::Gauge>& rolledBack_;
  prometheus::Counter& statusWrites_;
  prometheus::Counter& nodeConfigWrites_;
  prometheus::Gauge& leader_;
  k8s::QueueMetricsHandle queue_;
  std::shared_ptr<k8s::RequestMetrics> requests_;

  std::mutex mu_;                                                   // guards chains_
  std::map<std::string, std::array<prometheus::Gauge*, 8>> chains_; // 6 states, halted,
                                                                    // rolled back
};

} // namespace bpfchain::op
