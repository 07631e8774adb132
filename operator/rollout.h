// Rollout of one BpfChain generation across its nodes (DESIGN.md section 2, spec.rollout):
// a pure function from what the cluster shows to what to write next, so the reconciler stays
// level-triggered and the policy is unit-tested without a cluster.
//
// Nodes are taken in name order. The first `canaryNodes` take the target generation first;
// the others wait until every canary reports Ready and `pauseSeconds` have passed, then move
// in batches so that at most `maxUnavailable` nodes are applying at once. A node that reports
// Failed for the target generation stops the rollout (Halt: the remaining nodes keep what
// they run), is passed over (Continue), or makes every node that took the target go back to
// the last generation that was Ready everywhere (Rollback; without one, the chain is removed
// from them).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace bpfchain::op {

enum class FailurePolicy { Halt, Continue, Rollback };

using Clock = std::chrono::system_clock;

struct RolloutPolicy {
  int maxUnavailable = 1; // resolved to a node count (>= 1)
  int canaryNodes = 1;
  int pauseSeconds = 0;
  FailurePolicy failurePolicy = FailurePolicy::Halt;
};

// spec.rollout.maxUnavailable ("25%" or "3") against `matched` nodes: percentages round up,
// and the result is at least 1, as for a DaemonSet.
int resolveMaxUnavailable(const std::string& value, int matched);

// What the operator remembers between reconciles (BpfChain.status.rollout).
struct RolloutMemory {
  int64_t generation = 0;                         // the target these fields are about
  std::optional<Clock::time_point> canaryReadyAt; // when every canary was first Ready
  std::optional<int64_t> stableGeneration;        // last generation Ready on every matched node
  bool rolledBack = false;                        // the target was rolled back: do not re-apply it
};

// One matched node, as its BpfNodeConfig shows it.
struct NodeView {
  std::string node;
  std::optional<int64_t> assigned; // generation in the node's spec; nullopt: chain absent
  std::optional<int64_t> reported; // generation in the node's status
  std::string phase;               // status phase for `reported`: Applying, Ready, Failed
  std::string reason;              // status reason and message, for failures
  std::string message;
};

struct NodeFailure {
  std::string node, reason, message;
};

struct RolloutDecision {
  // Nodes whose assignment changes: generation to write, or nullopt to remove the chain.
  std::map<std::string, std::optional<int64_t>> assign;
  RolloutMemory memory; // to store back
  int matched = 0, updated = 0, ready = 0, failed = 0;
  bool complete = false;  // every matched node runs the target Ready (failures aside for Continue)
  bool halted = false;    // stopped by a failure (Halt, Rollback)
  std::string waitingFor; // why nodes are held back, for the Progressing condition's message
  std::optional<std::chrono::seconds> requeueAfter; // a pause to wait out
  std::vector<NodeFailure> failures;                // in node order
};

RolloutDecision planRollout(int64_t target, const RolloutPolicy& policy,
                            const RolloutMemory& memory, const std::vector<NodeView>& nodes,
                            Clock::time_point now);

} // namespace bpfchain::op
