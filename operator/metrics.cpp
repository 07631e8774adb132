#include "operator/metrics.h"

namespace bpfchain::op {
namespace {

constexpr std::array<const char*, 6> kStates{"matched", "updated", "ready",
                                             "failed",  "pending", "stale"};

const char* resultName(ReconcileResult result) {
  switch (result) {
  case ReconcileResult::Success:
    return "success";
  case ReconcileResult::Error:
    return "error";
  case ReconcileResult::Requeue:
    return "requeue";
  }
  return "error";
}

// controller-runtime's reconcile time buckets, 5 ms to 60 s.
prometheus::Histogram::BucketBoundaries durationBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60};
}

} // namespace

OperatorMetrics::OperatorMetrics(const std::string& version)
    : registry_(std::make_shared<prometheus::Registry>()),
      reconciles_(prometheus::BuildCounter()
                      .Name("bpfchain_operator_reconciles_total")
                      .Help("Reconciles by controller (chain, node) and result (success, error, "
                            "requeue).")
                      .Register(*registry_)),
      duration_(prometheus::BuildHistogram()
                    .Name("bpfchain_operator_reconcile_duration_seconds")
                    .Help("Time one reconcile took, by controller.")
                    .Register(*registry_)),
      rolloutNodes_(prometheus::BuildGauge()
                        .Name("bpfchain_operator_rollout_nodes")
                        .Help("Nodes of a chain's rollout by state: matched by the selector, "
                              "updated to the target generation, ready, failed, pending (not "
                              "yet updated), stale (agent not reporting).")
                        .Register(*registry_)),
      halted_(prometheus::BuildGauge()
                  .Name("bpfchain_operator_rollout_halted")
                  .Help("1 while the chain's rollout is stopped on a failure (Halt, or "
                        "Rollback's return to the last generation Ready everywhere).")
                  .Register(*registry_)),
      rolledBack_(prometheus::BuildGauge()
                      .Name("bpfchain_operator_rollout_rolled_back")
                      .Help("1 while the chain is rolled back to its last generation Ready "
                            "everywhere (failurePolicy Rollback).")
                      .Register(*registry_)),
      statusWrites_(prometheus::BuildCounter()
                        .Name("bpfchain_operator_status_writes_total")
                        .Help("BpfChain status writes sent; unchanged statuses are not written.")
                        .Register(*registry_)
                        .Add({})),
      nodeConfigWrites_(prometheus::BuildCounter()
                            .Name("bpfchain_operator_node_config_writes_total")
                            .Help("BpfNodeConfig spec writes sent: one per node for every chain "
                                  "decided on it meanwhile.")
                            .Register(*registry_)
                            .Add({})),
      leader_(prometheus::BuildGauge()
                  .Name("bpfchain_operator_leader")
                  .Help("1 while this replica leads (always 1 without --leader-elect).")
                  .Register(*registry_)
                  .Add({})),
      queue_(k8s::makeWorkQueueMetrics(registry_, "operator")),
      requests_(k8s::makeRequestMetrics(registry_)) {
  prometheus::BuildGauge()
      .Name("bpfchain_operator_info")
      .Help("Build information of the operator.")
      .Register(*registry_)
      .Add({{"version", version}})
      .Set(1);
  // Every series from the start, so that rate() sees the first increment.
  for (const char* controller : {"chain", "node"}) {
    for (auto result : {ReconcileResult::Success, ReconcileResult::Error, ReconcileResult::Requeue})
      reconciles_.Add({{"controller", controller}, {"result", resultName(result)}});
    duration_.Add({{"controller", controller}}, durationBuckets());
  }
}

void OperatorMetrics::reconciled(const std::string& controller, ReconcileResult result,
                                 double seconds) {
  reconciles_.Add({{"controller", controller}, {"result", resultName(result)}}).Increment();
  duration_.Add({{"controller", controller}}, durationBuckets()).Observe(seconds);
}

void OperatorMetrics::setRollout(const std::string& chain, const RolloutCounts& counts) {
  std::lock_guard lock(mu_);
  auto it = chains_.find(chain);
  if (it == chains_.end()) {
    std::array<prometheus::Gauge*, 8> gauges{};
    for (size_t i = 0; i < kStates.size(); ++i)
      gauges[i] = &rolloutNodes_.Add({{"chain", chain}, {"state", kStates[i]}});
    gauges[kStates.size()] = &halted_.Add({{"chain", chain}});
    gauges[kStates.size() + 1] = &rolledBack_.Add({{"chain", chain}});
    it = chains_.emplace(chain, gauges).first;
  }
  const std::array<int, 8> values{counts.matched,
                                  counts.updated,
                                  counts.ready,
                                  counts.failed,
                                  counts.matched - counts.updated,
                                  counts.stale,
                                  counts.halted ? 1 : 0,
                                  counts.rolledBack ? 1 : 0};
  for (size_t i = 0; i < values.size(); ++i)
    it->second[i]->Set(values[i]);
}

void OperatorMetrics::forgetChain(const std::string& chain) {
  std::lock_guard lock(mu_);
  auto it = chains_.find(chain);
  if (it == chains_.end())
    return;
  for (size_t i = 0; i < kStates.size(); ++i)
    rolloutNodes_.Remove(it->second[i]);
  halted_.Remove(it->second[kStates.size()]);
  rolledBack_.Remove(it->second[kStates.size() + 1]);
  chains_.erase(it);
}

void OperatorMetrics::statusWritten() {
  statusWrites_.Increment();
}

void OperatorMetrics::nodeConfigWritten() {
  nodeConfigWrites_.Increment();
}

void OperatorMetrics::setLeader(bool leading) {
  leader_.Set(leading ? 1 : 0);
}

} // namespace bpfchain::op
