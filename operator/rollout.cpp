#include "operator/rollout.h"

#include <algorithm>
#include <cmath>

namespace bpfchain::op {
namespace {

enum class State { Behind, Applying, Ready, Failed };

State stateOf(const NodeView& n, int64_t target) {
  if (n.assigned != target)
    return State::Behind;
  if (n.reported != target)
    return State::Applying;
  if (n.phase == "Ready")
    return State::Ready;
  if (n.phase == "Failed")
    return State::Failed;
  return State::Applying;
}

} // namespace

int resolveMaxUnavailable(const std::string& value, int matched) {
  int resolved = 1;
  if (!value.empty() && value.back() == '%') {
    int percent = std::stoi(value.substr(0, value.size() - 1));
    resolved = static_cast<int>(std::ceil(matched * percent / 100.0));
  } else if (!value.empty()) {
    resolved = std::stoi(value);
  }
  return std::max(resolved, 1);
}

RolloutDecision planRollout(int64_t target, const RolloutPolicy& policy,
                            const RolloutMemory& memory, const std::vector<NodeView>& nodes,
                            Clock::time_point now) {
  std::vector<NodeView> sorted = nodes;
  std::sort(sorted.begin(), sorted.end(),
            [](const NodeView& a, const NodeView& b) { return a.node < b.node; });

  RolloutDecision d;
  d.memory = memory;
  if (memory.generation != target) // a new target starts a new rollout
    d.memory = {target, std::nullopt, memory.stableGeneration, false};
  d.matched = static_cast<int>(sorted.size());

  std::vector<State> states;
  int applying = 0;
  for (const auto& n : sorted) {
    states.push_back(stateOf(n, target));
    d.updated += n.assigned == target;
    d.ready += states.back() == State::Ready;
    applying += states.back() == State::Applying;
    if (states.back() == State::Failed) {
      ++d.failed;
      d.failures.push_back({n.node, n.reason, n.message});
    }
  }

  if (d.memory.rolledBack) {
    d.halted = true;
    d.waitingFor = "generation " + std::to_string(target) + " was rolled back";
    return d;
  }
  if (d.failed > 0 && policy.failurePolicy == FailurePolicy::Rollback) {
    for (const auto& n : sorted)
      if (n.assigned == target)
        d.assign[n.node] = d.memory.stableGeneration; // nullopt: remove the chain
    d.memory.rolledBack = true;
    d.halted = true;
    d.waitingFor = "rolled back after a failure";
    return d;
  }
  if (d.failed > 0 && policy.failurePolicy == FailurePolicy::Halt) {
    d.halted = true;
    d.waitingFor = "halted after a failure";
    return d;
  }

  int succeeded = d.ready + (policy.failurePolicy == FailurePolicy::Continue ? d.failed : 0);
  if (succeeded == d.matched) {
    d.complete = true;
    if (d.failed == 0)
      d.memory.stableGeneration = target;
    return d;
  }

  // The canary batch goes first, whatever maxUnavailable says.
  size_t canaries = std::min<size_t>(std::max(policy.canaryNodes, 0), sorted.size());
  bool canariesDone = true;
  for (size_t i = 0; i < canaries; ++i) {
    if (states[i] == State::Behind)
      d.assign[sorted[i].node] = target;
    canariesDone = canariesDone &&
                   (states[i] == State::Ready || (states[i] == State::Failed &&
                                                  policy.failurePolicy == FailurePolicy::Continue));
  }
  if (!canariesDone) {
    d.waitingFor = "canary nodes";
    return d;
  }
  if (canaries > 0 && !d.memory.canaryReadyAt)
    d.memory.canaryReadyAt = now; // also what the CanaryReady event is told by
  if (canaries > 0 && policy.pauseSeconds > 0) {
    auto resume = *d.memory.canaryReadyAt + std::chrono::seconds(policy.pauseSeconds);
    if (now < resume) {
      d.requeueAfter = std::chrono::ceil<std::chrono::seconds>(resume - now);
      d.waitingFor = "the pause after the canary batch";
      return d;
    }
  }

  int budget = policy.maxUnavailable - applying;
  for (size_t i = canaries; i < sorted.size() && budget > 0; ++i) {
    if (states[i] != State::Behind)
      continue;
    d.assign[sorted[i].node] = target;
    --budget;
  }
  d.waitingFor = "nodes applying (maxUnavailable " + std::to_string(policy.maxUnavailable) + ")";
  return d;
}

} // namespace bpfchain::op
