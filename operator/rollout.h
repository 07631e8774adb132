// Rollout of one BpfChain generation across its nodes (DESIGN.md section 2, spec.rollout):
// a pure function from what the cluster shows to what to write next, so the reconciler stays
// level-triggered and the policy is unit-tested without a cluster.
//
// Nodes are taken in name order. The first `canaryNodes` take the target generation first;
// the others wait until every canary reports Ready and `pauseSeconds` have passed, then move
// in batches so that at most `maxUnavailable` nodes are applying at once; a batch goes when at
// least half of maxUnavailable is free (or every node left fits), not whenever one node
// finishes: each batch is one write of the chain's status, which every agent receives. A node that
// reports Failed for the target generation stops the rollout (Halt: the remaining nodes keep what
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

#include "api/published_rollout.h"

namespace bpfchain::op {

enum class FailurePolicy { Halt, Continue, Rollback };

using Clock = std::chrono::system_clock;

struct RolloutPolicy {
  int maxUnavailable = 1; // resolved to a node count (>= 1)
  int canaryNodes = 1;
  int pauseSeconds = 0;
  FailurePolicy failurePolicy = FailurePolicy::Halt;
  // How long nodes may apply without any node finishing (Ready or Failed) before the wait is
  // reported as overdue, naming them (an agent that stopped reporting).
  std::chrono::seconds progressDeadline{600};
  // A node whose agent's heartbeat is older than this is not counted Ready (agentStale).
  std::chrono::seconds agentStale{180};
};

// Whether a node's agent stopped reporting at `now`: its last heartbeat
// (BpfNodeConfig.status.agent.heartbeatTime) is more than `staleAfter` old. No heartbeat at all
// is an agent of a version before heartbeats, or one that never reported: not stale (the
// progress deadline names nodes that never report a generation), so an upgrade of the operator
// before the agents turns no node stale.
bool agentStale(std::optional<Clock::time_point> heartbeat, std::chrono::seconds staleAfter,
                Clock::time_point now);

// spec.rollout.maxUnavailable ("25%" or "3") against `matched` nodes: percentages round up,
// and the result is at least 1, as for a DaemonSet.
int resolveMaxUnavailable(const std::string& value, int matched);

struct NodeFailure {
  std::string node, reason, message;
  bool operator==(const NodeFailure&) const = default;
};

// What the operator remembers between reconciles (BpfChain.status.rollout).
struct RolloutMemory {
  int64_t generation = 0;                         // the target these fields are about
  std::optional<Clock::time_point> canaryReadyAt; // when every canary was first Ready
  std::optional<int64_t> stableGeneration;        // last generation Ready on every matched node
  bool rolledBack = false;                        // the target was rolled back: do not re-apply it
  // The failures that made the rollback: reported until a new generation supersedes them.
  std::vector<NodeFailure> rolledBackFailures;
  std::optional<Clock::time_point> waitingSince; // since when nodes apply and none finished
  int finished = 0;                              // nodes Ready or Failed at the target then
  std::vector<std::string> staleNodes;           // reported Ready, agent not reporting (sorted)
  // Nodes that report `generation` Failed (sorted): a NodeFailed Event was sent as each joined.
  // Kept as it was once the generation is rolled back (its nodes no longer run it).
  std::vector<std::string> failedNodes;
  // What agents follow (BpfChain.status.published): which nodes run which revision.
  api::PublishedRollout published;
};

// One matched node, as its BpfNodeConfig shows it.
struct NodeView {
  std::string node;
  std::optional<int64_t> assigned; // generation in the node's spec; nullopt: chain absent
  std::optional<int64_t> reported; // generation in the node's status
  std::string phase;  // status phase for `reported`: Applying, Ready, Idle (nothing to attach
                      // to on the node: finished, counted apart from Ready), Failed
  std::string reason; // status reason and message, for failures
  std::string message;
  std::optional<Clock::time_point> heartbeat; // the agent's last heartbeat, if it ever wrote one
};

struct RolloutDecision {
  // Nodes whose assignment changes: generation to write, or nullopt to remove the chain.
  std::map<std::string, std::optional<int64_t>> assign;
  RolloutMemory memory; // to store back
  // ready: nodes running the target Ready; once the target was rolled back, nodes running
  // the stable generation Ready (what runs, honestly). failed: with the rolled-back failures.
  // stale: nodes that reported Ready but whose agent stopped reporting (not in ready).
  // idle: nodes that finished the target with nothing to attach it to (neither ready nor
  // failed; a rollout completes with them).
  int matched = 0, updated = 0, ready = 0, idle = 0, failed = 0, stale = 0;
  int canaries = 0, canariesFailed = 0; // the canary batch, once it finished
  bool complete = false;  // every matched node runs the target Ready (failures aside for Continue)
  bool halted = false;    // stopped by a failure (Halt, Rollback)
  std::string waitingFor; // why nodes are held back, for the Progressing condition's message
  // A pause to wait out, or the moment the next Ready node turns stale without a heartbeat.
  std::optional<std::chrono::seconds> requeueAfter;
  std::vector<NodeFailure> failures; // in node order
  // Nodes applying the target past policy.progressDeadline with no node finishing.
  std::vector<std::string> overdue;
};

// An Event about the rollout (on the BpfChain).
struct RolloutEvent {
  bool warning = false;
  std::string reason, message;
  bool operator==(const RolloutEvent&) const = default;
};

// The Events a reconcile's decision calls for, given the memory before it and the reason of
// the Progressing condition last written for this generation ("" if none): each transition
// once, and none that contradicts the facts (a canary that failed is not "Ready", a rollout
// where nodes failed is not a Normal "RolloutComplete").
// A node that starts failing the target (joins memory.failedNodes) gets a Warning NodeFailed
// naming it, the agent's reason and its message (shortened to kNodeFailedMessageMax bytes),
// under every failure policy; past kNodeFailedEvents new failures in one reconcile, one more
// NodeFailed counts and names the rest, so a failure on 1,000 nodes is 11 Events, not 1,000.
inline constexpr size_t kNodeFailedEvents = 10;
inline constexpr size_t kNodeFailedMessageMax = 512;
std::vector<RolloutEvent> rolloutEvents(int64_t target, const RolloutMemory& before,
                                        const std::string& previousProgressingReason,
                                        const RolloutDecision& d);

// "N node(s) whose agent stopped reporting: a, b, c, d, e and 7 more", for conditions.
std::string describeStale(const std::vector<std::string>& nodes);

// BpfChain.status.phase (kubectl's STATUS column): RolledBack, Halted, RollingOut, or once
// complete Ready, or Degraded when nodes failed (Continue), `problem` (cleanup timed out) or
// an agent stopped reporting (stale nodes, also mid-rollout).
std::string chainPhase(const RolloutDecision& d, bool problem);

// The published rollout after decision `d` (api/published_rollout.h), which makes every node
// that `d` moves to the target run it: the target's wave (newest first) grows to the last
// such node in name order (planRollout takes nodes in name order, so the wave covers exactly
// the nodes it moved and those that run the target already). A rollback drops the target's
// wave, so its nodes follow `stable` again: one write, whatever the number of nodes. A rollout
// complete with no failure publishes `stable` (then the target) alone. `stable` is the ref of
// d.memory.stableGeneration (nullopt: none).
api::PublishedRollout publish(const api::PublishedRollout& before, const RolloutDecision& d,
                              const api::ChainRef& target,
                              const std::optional<api::ChainRef>& stable);

// The reports a rollout still waits for: each matched node whose generation after this
// decision (`targets`, by the index in `nodes`; nullopt: the chain leaves the node) it has not
// reported in a finished phase (anything but Applying) yet, with that generation. When the
// last of them reports, the controller reconciles the chain at once rather than after its
// coalescing delay: the last node's report is what turns a chain (or a canary batch) Ready.
std::map<std::string, int64_t> awaitedReports(const std::vector<NodeView>& nodes,
                                              const std::vector<std::optional<int64_t>>& targets);
// Whether a node's report (generation, phase) is the one `awaited` waits for.
bool reportAwaited(int64_t awaited, std::optional<int64_t> reported, const std::string& phase);

RolloutDecision planRollout(int64_t target, const RolloutPolicy& policy,
                            const RolloutMemory& memory, const std::vector<NodeView>& nodes,
                            Clock::time_point now);

} // namespace bpfchain::op
