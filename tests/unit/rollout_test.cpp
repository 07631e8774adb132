// The rollout policy, driven against simulated nodes whose agents report one step after they
// are assigned a generation: batch order and sizes, the canary and its pause, and each
// failure policy. Nodes follow the published rollout (publish, then api::refFor per node), as
// the operator and the agents do: what a node runs is what the rule gives it.
#include <gtest/gtest.h>
#include <set>

#include "operator/rollout.h"

namespace bpfchain::op {
namespace {

using namespace std::chrono_literals;

api::ChainRef refOf(int64_t generation) {
  return {"c", generation, "c-0123abcd-" + std::to_string(generation),
          "sha256:" + std::string(64, static_cast<char>('0' + generation % 10)), 100};
}

struct Cluster {
  std::vector<NodeView> nodes;
  std::set<std::string> failing; // nodes whose agent refuses `target`
  std::set<std::string> idle;    // nodes with nothing to attach the chain to
  int64_t badGeneration = 0;
  RolloutMemory memory;
  Clock::time_point now = Clock::time_point() + 1000h;

  explicit Cluster(int n, std::optional<int64_t> running = 1) {
    for (int i = 0; i < n; ++i) {
      std::string name = "node-" + std::string(i < 10 ? "0" : "") + std::to_string(i);
      nodes.push_back({name, running, running, running ? "Ready" : "", "", ""});
    }
    if (running) {
      memory.stableGeneration = *running;
      memory.published.stable = refOf(*running);
    }
  }

  // One reconcile, which publishes, then every agent catches up with what the published
  // rollout gives its node.
  RolloutDecision step(int64_t target, const RolloutPolicy& policy) {
    RolloutDecision d = planRollout(target, policy, memory, nodes, now);
    std::optional<api::ChainRef> stable;
    if (d.memory.stableGeneration)
      stable = refOf(*d.memory.stableGeneration);
    d.memory.published = publish(memory.published, d, refOf(target), stable);
    memory = d.memory;
    for (auto& n : nodes) {
      auto ref = api::refFor(memory.published, n.node);
      n.assigned = ref ? std::optional(ref->generation) : std::nullopt;
      if (auto it = d.assign.find(n.node); it != d.assign.end()) {
        EXPECT_EQ(n.assigned, it->second) << n.node << ": the published rollout gives another";
      }
      bool refuses = failing.contains(n.node) && n.assigned == badGeneration;
      n.reported = n.assigned;
      n.phase = n.assigned ? (refuses ? "Failed" : (idle.contains(n.node) ? "Idle" : "Ready")) : "";
      n.reason = refuses ? "VerifierRejected" : "";
      n.message = refuses ? "R1 invalid mem access" : "";
    }
    return d;
  }

  // Runs reconciles until nothing changes; returns the batch sizes.
  std::vector<size_t> run(int64_t target, const RolloutPolicy& policy, int maxSteps = 100) {
    std::vector<size_t> batches;
    for (int i = 0; i < maxSteps; ++i) {
      RolloutDecision d = step(target, policy);
      if (d.assign.empty())
        break;
      batches.push_back(d.assign.size());
    }
    return batches;
  }

  int running(int64_t generation) const {
    int count = 0;
    for (const auto& n : nodes)
      count += n.assigned == generation;
    return count;
  }
};

TEST(Rollout, MaxUnavailableResolvesPercentagesUpAndAtLeastOne) {
  EXPECT_EQ(resolveMaxUnavailable("25%", 10), 3);
  EXPECT_EQ(resolveMaxUnavailable("100%", 100), 100);
  EXPECT_EQ(resolveMaxUnavailable("1%", 5), 1);
  EXPECT_EQ(resolveMaxUnavailable("3", 10), 3);
  EXPECT_EQ(resolveMaxUnavailable("", 10), 1);
}

TEST(Rollout, CanaryFirstThenBatchesOfMaxUnavailableInNodeOrder) {
  Cluster c(10);
  RolloutPolicy policy{.maxUnavailable = 3, .canaryNodes = 1};
  RolloutDecision first = c.step(2, policy);
  ASSERT_EQ(first.assign.size(), 1u);
  EXPECT_EQ(first.assign.begin()->first, "node-00");
  EXPECT_EQ(first.waitingFor, "canary nodes");
  RolloutDecision second = c.step(2, policy);
  std::set<std::string> batch;
  for (const auto& [node, gen] : second.assign)
    batch.insert(node);
  EXPECT_EQ(batch, (std::set<std::string>{"node-01", "node-02", "node-03"}));
  EXPECT_EQ(c.run(2, policy), (std::vector<size_t>{3, 3}));
  RolloutDecision done = c.step(2, policy);
  EXPECT_TRUE(done.complete);
  EXPECT_EQ(done.ready, 10);
  EXPECT_EQ(done.memory.stableGeneration, 2);
}

// A node with no matching interface or pod reports Idle: the rollout goes past it (the canary
// included) and completes, counting it apart from the nodes that run the chain.
TEST(Rollout, IdleNodesFinishTheRolloutButAreNotCountedReady) {
  Cluster c(4);
  c.idle = {"node-00", "node-02"};
  RolloutPolicy policy{.maxUnavailable = 1, .canaryNodes = 1};
  EXPECT_EQ(c.run(2, policy), (std::vector<size_t>{1, 1, 1, 1}));
  RolloutDecision done = c.step(2, policy);
  EXPECT_TRUE(done.complete);
  EXPECT_EQ(done.ready, 2);
  EXPECT_EQ(done.idle, 2);
  EXPECT_EQ(done.failed, 0);
  EXPECT_EQ(done.memory.stableGeneration, 2);
}

TEST(Rollout, ChainPhaseNamesWhereTheRolloutIs) {
  RolloutDecision d;
  EXPECT_EQ(chainPhase(d, false), "RollingOut");
  d.complete = true;
  EXPECT_EQ(chainPhase(d, false), "Ready");
  EXPECT_EQ(chainPhase(d, true), "Degraded");
  d.failed = 1;
  EXPECT_EQ(chainPhase(d, false), "Degraded");
  d.complete = false;
  d.halted = true;
  EXPECT_EQ(chainPhase(d, false), "Halted");
  d.memory.rolledBack = true;
  EXPECT_EQ(chainPhase(d, false), "RolledBack");
}

TEST(Rollout, NeverMoreThanMaxUnavailableApplyingAtOnce) {
  Cluster c(7);
  RolloutPolicy policy{.maxUnavailable = 2, .canaryNodes = 0};
  // Agents that never report: the budget must hold without any progress.
  RolloutDecision d = planRollout(2, policy, c.memory, c.nodes, c.now);
  EXPECT_EQ(d.assign.size(), 2u);
  for (auto& n : c.nodes)
    if (d.assign.contains(n.node))
      n.assigned = 2; // assigned, not yet reported
  RolloutDecision again = planRollout(2, policy, d.memory, c.nodes, c.now);
  EXPECT_TRUE(again.assign.empty());
  EXPECT_EQ(again.updated, 2);
}

TEST(Rollout, PauseAfterTheCanaryBatch) {
  Cluster c(4);
  RolloutPolicy policy{.maxUnavailable = 10, .canaryNodes = 1, .pauseSeconds = 30};
  c.step(2, policy); // canary assigned, reports Ready
  RolloutDecision paused = c.step(2, policy);
  EXPECT_TRUE(paused.assign.empty());
  ASSERT_TRUE(paused.requeueAfter.has_value());
  EXPECT_EQ(*paused.requeueAfter, 30s);
  c.now += 20s;
  EXPECT_EQ(*c.step(2, policy).requeueAfter, 10s);
  c.now += 10s;
  EXPECT_EQ(c.step(2, policy).assign.size(), 3u);
}

TEST(Rollout, HaltKeepsTheRemainingNodesOnThePreviousGeneration) {
  Cluster c(6);
  c.failing = {"node-02"};
  c.badGeneration = 2;
  RolloutPolicy policy{.maxUnavailable = 2, .canaryNodes = 1, .failurePolicy = FailurePolicy::Halt};
  c.run(2, policy);
  RolloutDecision d = c.step(2, policy);
  EXPECT_TRUE(d.halted);
  EXPECT_FALSE(d.complete);
  ASSERT_EQ(d.failures.size(), 1u);
  EXPECT_EQ(d.failures[0].node, "node-02");
  EXPECT_EQ(d.failures[0].reason, "VerifierRejected");
  EXPECT_EQ(c.running(2), 3); // canary, then node-01 and node-02
  EXPECT_EQ(c.running(1), 3);
  EXPECT_EQ(d.memory.stableGeneration, 1);
}

TEST(Rollout, ContinuePassesOverFailures) {
  Cluster c(6);
  c.failing = {"node-00", "node-04"};
  c.badGeneration = 2;
  RolloutPolicy policy{
      .maxUnavailable = 2, .canaryNodes = 1, .failurePolicy = FailurePolicy::Continue};
  c.run(2, policy);
  RolloutDecision d = c.step(2, policy);
  EXPECT_TRUE(d.complete);
  EXPECT_EQ(d.failed, 2);
  EXPECT_EQ(d.ready, 4);
  EXPECT_EQ(c.running(2), 6);
  EXPECT_EQ(d.memory.stableGeneration, 1); // not everywhere Ready
}

TEST(Rollout, RollbackRestoresTheLastStableGenerationWhereTheBadOneWent) {
  Cluster c(6);
  c.failing = {"node-02"};
  c.badGeneration = 2;
  RolloutPolicy policy{
      .maxUnavailable = 2, .canaryNodes = 1, .failurePolicy = FailurePolicy::Rollback};
  c.run(2, policy);
  EXPECT_EQ(c.running(2), 0);
  EXPECT_EQ(c.running(1), 6);
  RolloutDecision after = c.step(2, policy);
  EXPECT_TRUE(after.halted);
  EXPECT_TRUE(after.memory.rolledBack);
  EXPECT_TRUE(after.assign.empty()); // generation 2 is not retried
  // A fixed generation 3 starts a new rollout.
  c.failing.clear();
  c.run(3, policy);
  EXPECT_TRUE(c.step(3, policy).complete);
  EXPECT_EQ(c.running(3), 6);
}

TEST(Rollout, RollbackWithoutAStableGenerationRemovesTheChain) {
  Cluster c(3, std::nullopt);
  c.failing = {"node-00"};
  c.badGeneration = 1;
  RolloutPolicy policy{
      .maxUnavailable = 3, .canaryNodes = 1, .failurePolicy = FailurePolicy::Rollback};
  c.step(1, policy); // canary takes generation 1 and fails
  RolloutDecision d = c.step(1, policy);
  ASSERT_EQ(d.assign.size(), 1u);
  EXPECT_FALSE(d.assign.at("node-00").has_value());
}

TEST(Rollout, EveryNodeAtOnceWithMaxUnavailableAll) {
  Cluster c(100);
  RolloutPolicy policy{.maxUnavailable = resolveMaxUnavailable("100%", 100), .canaryNodes = 0};
  EXPECT_EQ(c.run(2, policy), (std::vector<size_t>{100}));
}

TEST(Rollout, ANewTargetMidRolloutStartsOver) {
  Cluster c(5);
  RolloutPolicy policy{.maxUnavailable = 1, .canaryNodes = 1, .pauseSeconds = 60};
  c.step(2, policy);
  c.step(2, policy); // canary ready; pause starts
  RolloutDecision d = c.step(3, policy);
  EXPECT_EQ(d.memory.generation, 3);
  EXPECT_FALSE(d.memory.canaryReadyAt.has_value());
  ASSERT_EQ(d.assign.size(), 1u);
  EXPECT_EQ(d.assign.begin()->second, 3);
}

TEST(Rollout, ARolledBackGenerationKeepsItsFailuresAndCountsWhatRuns) {
  Cluster c(3);
  c.failing = {"node-01"};
  c.badGeneration = 2;
  RolloutPolicy policy{
      .maxUnavailable = 3, .canaryNodes = 0, .failurePolicy = FailurePolicy::Rollback};
  c.run(2, policy);
  EXPECT_EQ(c.running(1), 3);
  // Every later reconcile of generation 2, here and after a restart (memory from status).
  for (int i = 0; i < 2; ++i) {
    RolloutDecision d = c.step(2, policy);
    EXPECT_TRUE(d.memory.rolledBack);
    ASSERT_EQ(d.failures.size(), 1u);
    EXPECT_EQ(d.failures[0].node, "node-01");
    EXPECT_EQ(d.failures[0].reason, "VerifierRejected");
    EXPECT_EQ(d.failed, 1);
    EXPECT_EQ(d.ready, 3) << "every node runs generation 1 Ready";
  }
  // A new generation supersedes them.
  c.failing.clear();
  RolloutDecision next = c.step(3, policy);
  EXPECT_TRUE(next.failures.empty());
  EXPECT_TRUE(next.memory.rolledBackFailures.empty());
}

TEST(Rollout, NodesThatNeverReportAreNamedPastTheProgressDeadline) {
  Cluster c(3);
  RolloutPolicy policy{.maxUnavailable = 3, .canaryNodes = 0, .progressDeadline = 60s};
  RolloutDecision d = planRollout(2, policy, c.memory, c.nodes, c.now);
  ASSERT_EQ(d.assign.size(), 3u);
  for (auto& n : c.nodes)
    n.assigned = 2;
  c.nodes[0].reported = 2; // node-00 reports; node-01 and node-02 never do
  RolloutDecision waiting = planRollout(2, policy, d.memory, c.nodes, c.now);
  EXPECT_TRUE(waiting.overdue.empty());
  ASSERT_TRUE(waiting.requeueAfter.has_value()) << "woken at the deadline without any event";
  EXPECT_EQ(*waiting.requeueAfter, 60s);
  RolloutDecision late = planRollout(2, policy, waiting.memory, c.nodes, c.now + 61s);
  EXPECT_EQ(late.overdue, (std::vector<std::string>{"node-01", "node-02"}));
  EXPECT_FALSE(late.complete);
  auto events = rolloutEvents(2, waiting.memory, "RollingOut", late);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].warning);
  EXPECT_EQ(events[0].reason, "ProgressDeadlineExceeded");
  EXPECT_NE(events[0].message.find("node-01, node-02"), std::string::npos) << events[0].message;
  // Said once: the condition already carries it.
  EXPECT_TRUE(rolloutEvents(2, late.memory, "ProgressDeadlineExceeded", late).empty());
  // A node that finishes is progress: the clock starts again.
  c.nodes[1].reported = 2;
  RolloutDecision moved = planRollout(2, policy, late.memory, c.nodes, c.now + 62s);
  EXPECT_TRUE(moved.overdue.empty());
}

TEST(RolloutEvents, AFailedCanaryUnderContinueIsNotCalledReady) {
  Cluster c(3);
  c.failing = {"node-00"};
  c.badGeneration = 2;
  RolloutPolicy policy{
      .maxUnavailable = 1, .canaryNodes = 1, .failurePolicy = FailurePolicy::Continue};
  c.step(2, policy); // the canary takes generation 2 and fails
  RolloutMemory canaryDone = c.memory;
  RolloutDecision d = c.step(2, policy);
  ASSERT_TRUE(d.memory.canaryReadyAt.has_value());
  auto events = rolloutEvents(2, canaryDone, "RollingOut", d);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].reason, "NodeFailed");
  EXPECT_TRUE(events[1].warning);
  EXPECT_EQ(events[1].reason, "CanaryFailed");
  EXPECT_NE(events[1].message.find("1 of 1 canary node(s) failed generation 2"), std::string::npos)
      << events[1].message;
  EXPECT_NE(events[1].message.find("node node-00 failed: VerifierRejected"), std::string::npos);
}

TEST(RolloutEvents, ARolloutWhereEveryNodeFailedIsNotANormalRolloutComplete) {
  Cluster c(2);
  c.failing = {"node-00", "node-01"};
  c.badGeneration = 2;
  RolloutPolicy policy{
      .maxUnavailable = 2, .canaryNodes = 0, .failurePolicy = FailurePolicy::Continue};
  c.run(2, policy);
  RolloutMemory before = c.memory;
  RolloutDecision d = c.step(2, policy);
  ASSERT_TRUE(d.complete);
  auto events = rolloutEvents(2, before, "RollingOut", d);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].warning);
  EXPECT_EQ(events[0].reason, "RolloutFailed");
  EXPECT_NE(events[0].message.find("generation 2 failed on every node (2)"), std::string::npos)
      << events[0].message;
  // Some failed: a Warning too; none failed: the Normal RolloutComplete.
  d.failed = 1;
  d.ready = 1;
  EXPECT_EQ(rolloutEvents(2, before, "RollingOut", d).at(0).reason, "NodesFailed");
  EXPECT_TRUE(rolloutEvents(2, before, "RollingOut", d).at(0).warning);
  Cluster ok(2);
  ok.run(2, policy);
  RolloutMemory okBefore = ok.memory;
  auto okEvents = rolloutEvents(2, okBefore, "RollingOut", ok.step(2, policy));
  ASSERT_EQ(okEvents.size(), 1u);
  EXPECT_EQ(okEvents[0],
            (RolloutEvent{false, "RolloutComplete", "generation 2 runs on 2 node(s), 2 Ready"}));
  EXPECT_TRUE(rolloutEvents(2, okBefore, "RolloutComplete", ok.step(2, policy)).empty());
}

// The NodeFailed Events among `events`.
std::vector<RolloutEvent> nodeFailed(const std::vector<RolloutEvent>& events) {
  std::vector<RolloutEvent> out;
  for (const auto& e : events)
    if (e.reason == "NodeFailed")
      out.push_back(e);
  return out;
}

// One reconcile of `c`, and the NodeFailed Events it calls for.
std::vector<RolloutEvent> failedEventsOfStep(Cluster& c, int64_t target,
                                             const RolloutPolicy& policy) {
  RolloutMemory before = c.memory;
  RolloutDecision d = c.step(target, policy);
  return nodeFailed(rolloutEvents(target, before, "RollingOut", d));
}

TEST(RolloutEvents, ANodeFailureIsAWarningNamingTheNodeOncePerGeneration) {
  Cluster c(3);
  c.failing = {"node-01"};
  c.badGeneration = 2;
  RolloutPolicy policy{
      .maxUnavailable = 3, .canaryNodes = 0, .failurePolicy = FailurePolicy::Continue};
  EXPECT_TRUE(failedEventsOfStep(c, 2, policy).empty()); // assigned; the agents answer after
  auto events = failedEventsOfStep(c, 2, policy);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0], (RolloutEvent{true, "NodeFailed",
                                     "node node-01 failed generation 2: VerifierRejected: R1 "
                                     "invalid mem access"}));
  EXPECT_EQ(c.memory.failedNodes, (std::vector<std::string>{"node-01"}));
  // The same failure at the next reconciles: said already.
  EXPECT_TRUE(failedEventsOfStep(c, 2, policy).empty());
  EXPECT_TRUE(failedEventsOfStep(c, 2, policy).empty());
  // A new generation that fails on the node again is a new failure.
  c.badGeneration = 3;
  EXPECT_TRUE(failedEventsOfStep(c, 3, policy).empty());
  events = failedEventsOfStep(c, 3, policy);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_NE(events[0].message.find("node node-01 failed generation 3"), std::string::npos)
      << events[0].message;
  EXPECT_TRUE(failedEventsOfStep(c, 3, policy).empty());
  // The node recovers (its agent retried), then fails again: each transition once.
  c.failing.clear();
  EXPECT_TRUE(failedEventsOfStep(c, 3, policy).empty());
  EXPECT_TRUE(failedEventsOfStep(c, 3, policy).empty());
  EXPECT_TRUE(c.memory.failedNodes.empty());
  c.failing = {"node-01"};
  c.step(3, policy);
  EXPECT_EQ(failedEventsOfStep(c, 3, policy).size(), 1u);
}

TEST(RolloutEvents, EveryFailurePolicyNamesTheFailedNode) {
  for (auto failurePolicy :
       {FailurePolicy::Halt, FailurePolicy::Continue, FailurePolicy::Rollback}) {
    Cluster c(4);
    c.failing = {"node-00"};
    c.badGeneration = 2;
    RolloutPolicy policy{.maxUnavailable = 1, .canaryNodes = 1, .failurePolicy = failurePolicy};
    std::vector<RolloutEvent> all;
    for (int i = 0; i < 10; ++i)
      for (const auto& e : failedEventsOfStep(c, 2, policy))
        all.push_back(e);
    ASSERT_EQ(all.size(), 1u) << static_cast<int>(failurePolicy);
    EXPECT_NE(all[0].message.find("node node-00 failed generation 2: VerifierRejected"),
              std::string::npos)
        << all[0].message;
  }
}

TEST(RolloutEvents, AFailureOnManyNodesIsTenEventsAndOneThatCountsTheRest) {
  Cluster c(25);
  for (const auto& n : c.nodes)
    c.failing.insert(n.node);
  c.badGeneration = 2;
  RolloutPolicy policy{
      .maxUnavailable = 25, .canaryNodes = 0, .failurePolicy = FailurePolicy::Continue};
  c.step(2, policy);
  auto events = failedEventsOfStep(c, 2, policy);
  ASSERT_EQ(events.size(), kNodeFailedEvents + 1);
  for (size_t i = 0; i < kNodeFailedEvents; ++i)
    EXPECT_EQ(events[i].message.rfind("node " + c.nodes[i].node + " failed generation 2", 0), 0u)
        << events[i].message;
  EXPECT_TRUE(events.back().warning);
  EXPECT_EQ(events.back().message,
            "15 more node(s) failed generation 2: node-10, node-11, node-12, node-13, node-14 and "
            "10 more; kubectl bpfchain status lists each node's reason");
  EXPECT_EQ(c.memory.failedNodes.size(), 25u); // the counted ones are said too
  EXPECT_TRUE(failedEventsOfStep(c, 2, policy).empty());
}

TEST(RolloutEvents, ALongAgentMessageIsShortenedToOneLineKeepingItsStartAndEnd) {
  // A verifier log: several lines, multi-byte characters where it is cut.
  std::string message = "load xdp_bad from /var/lib/bpfchain/packages/x/bad.o: Permission denied; "
                        "verifier:\n";
  for (int i = 0; i < 200; ++i)
    message += "é";
  message += "\n42: (61) r0 = *(u32 *)(r1 +0)\nR1 invalid mem access 'scalar'";
  RolloutDecision d;
  d.memory.generation = 2;
  d.failures = {{"node-00", "VerifierRejected", message}};
  d.memory.failedNodes = {"node-00"};
  auto events = nodeFailed(rolloutEvents(2, d.memory, "", {}));
  EXPECT_TRUE(events.empty()); // nothing failed
  RolloutMemory before;
  before.generation = 2;
  events = nodeFailed(rolloutEvents(2, before, "RollingOut", d));
  ASSERT_EQ(events.size(), 1u);
  const std::string& m = events[0].message;
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  EXPECT_EQ(m.rfind("node node-00 failed generation 2: VerifierRejected: load xdp_bad from", 0), 0u)
      << m;
  EXPECT_TRUE(m.ends_with("R1 invalid mem access 'scalar'")) << m;
  EXPECT_NE(m.find(" ... "), std::string::npos) << m;
  std::string prefix = "node node-00 failed generation 2: VerifierRejected: ";
  EXPECT_LE(m.size() - prefix.size(), kNodeFailedMessageMax);
  // Cut between characters: every 0xC3 lead byte is followed by its continuation byte.
  for (size_t i = 0; i < m.size(); ++i)
    if (static_cast<unsigned char>(m[i]) == 0xC3) {
      ASSERT_LT(i + 1, m.size());
      EXPECT_EQ(static_cast<unsigned char>(m[i + 1]), 0xA9) << i;
    } else if (static_cast<unsigned char>(m[i]) == 0xA9) {
      EXPECT_EQ(static_cast<unsigned char>(m[i - 1]), 0xC3) << i;
    }
}

TEST(AgentStale, OnlyAHeartbeatOlderThanTheDeadlineIsStale) {
  Clock::time_point now = Clock::time_point() + 1000h;
  EXPECT_FALSE(agentStale(std::nullopt, 180s, now)); // an agent before heartbeats: never
  EXPECT_FALSE(agentStale(now - 180s, 180s, now));   // at the deadline: not yet
  EXPECT_TRUE(agentStale(now - 181s, 180s, now));
  EXPECT_FALSE(agentStale(now + 5s, 180s, now)); // a node clock ahead: fresh
}

TEST(AgentStale, AStaleNodeIsNotReadyIsNamedOnceAndComesBack) {
  Cluster c(3);
  RolloutPolicy policy{.maxUnavailable = 3, .canaryNodes = 0, .agentStale = 180s};
  for (auto& n : c.nodes)
    n.heartbeat = c.now - 10s;
  c.nodes[0].heartbeat.reset(); // a previous agent version: counted Ready, never stale
  RolloutDecision d = planRollout(1, policy, c.memory, c.nodes, c.now);
  EXPECT_TRUE(d.complete);
  EXPECT_EQ(d.ready, 3);
  EXPECT_EQ(d.stale, 0);
  // Re-evaluated without any change: when the oldest Ready heartbeat turns stale.
  ASSERT_TRUE(d.requeueAfter);
  EXPECT_EQ(*d.requeueAfter, 171s);
  RolloutMemory before = d.memory;

  c.now += 171s; // node-01 and node-02 no longer write; node-02 resumes below
  d = planRollout(1, policy, before, c.nodes, c.now);
  EXPECT_FALSE(d.complete);
  EXPECT_EQ(d.ready, 1);
  EXPECT_EQ(d.stale, 2);
  EXPECT_EQ(d.memory.staleNodes, (std::vector<std::string>{"node-01", "node-02"}));
  auto events = rolloutEvents(1, before, "RolloutComplete", d);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].warning);
  EXPECT_EQ(events[0].reason, "AgentNotReporting");
  EXPECT_NE(events[0].message.find("node-01, node-02"), std::string::npos) << events[0].message;
  EXPECT_EQ(describeStale(d.memory.staleNodes),
            "2 node(s) whose agent stopped reporting: node-01, node-02");
  // The same facts again: no second Event.
  before = d.memory;
  d = planRollout(1, policy, before, c.nodes, c.now);
  EXPECT_TRUE(rolloutEvents(1, before, "RollingOut", d).empty());

  c.nodes[2].heartbeat = c.now; // node-02 reports again
  before = d.memory;
  d = planRollout(1, policy, before, c.nodes, c.now);
  EXPECT_EQ(d.ready, 2);
  EXPECT_EQ(d.memory.staleNodes, (std::vector<std::string>{"node-01"}));
  events = rolloutEvents(1, before, "RollingOut", d);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].reason, "AgentReporting");
  EXPECT_FALSE(events[0].warning);
  EXPECT_EQ(*d.requeueAfter, 181s); // node-02's deadline; node-01 is stale already
}

TEST(AgentStale, AStaleNodeHoldsTheRolloutAndUsesTheUnavailableBudget) {
  Cluster c(3);
  RolloutPolicy policy{.maxUnavailable = 1, .canaryNodes = 1, .agentStale = 60s};
  c.nodes[2].heartbeat = c.now - 61s; // node-02's agent stopped while it ran generation 1
  RolloutDecision d = c.step(2, policy);
  EXPECT_EQ(d.assign.size(), 1u); // the canary (node-00)
  d = c.step(2, policy);
  // The canary is Ready; node-02 is unavailable already, so maxUnavailable 1 lets none move.
  EXPECT_TRUE(d.assign.empty());
  EXPECT_EQ(d.stale, 1);
  c.nodes[2].heartbeat = c.now;
  d = c.step(2, policy);
  EXPECT_EQ(d.assign.size(), 1u);
  EXPECT_EQ(d.stale, 0);
}

} // namespace
} // namespace bpfchain::op

namespace bpfchain::op {
namespace {

// A whole batch moves by one write of the chain's status: the partition, a node name.
TEST(PublishedRollout, TheCanaryAndEachBatchMoveThePartition) {
  Cluster c(10);
  RolloutPolicy policy{.maxUnavailable = 3, .canaryNodes = 1};
  c.step(2, policy);
  ASSERT_EQ(c.memory.published.waves.size(), 1u);
  EXPECT_EQ(c.memory.published.waves[0].target, refOf(2));
  EXPECT_EQ(c.memory.published.waves[0].partition, "node-00");
  EXPECT_EQ(c.memory.published.stable, refOf(1));
  c.step(2, policy);
  EXPECT_EQ(c.memory.published.waves[0].partition, "node-03");
  c.run(2, policy);
  // Complete: the target is stable, and no wave is left.
  EXPECT_EQ(c.memory.published, (api::PublishedRollout{refOf(2), {}}));
}

TEST(PublishedRollout, HaltKeepsThePartitionAndRollbackIsOneChange) {
  Cluster c(6);
  c.failing = {"node-02"};
  c.badGeneration = 2;
  RolloutPolicy halt{.maxUnavailable = 2, .canaryNodes = 1, .failurePolicy = FailurePolicy::Halt};
  c.run(2, halt);
  api::PublishedRollout halted = c.memory.published;
  ASSERT_EQ(halted.waves.size(), 1u);
  EXPECT_EQ(halted.waves[0].partition, "node-02");
  c.step(2, halt);
  EXPECT_EQ(c.memory.published, halted); // nothing moves
  // The same failure under Rollback: the wave goes, every node follows stable again.
  RolloutPolicy rollback = halt;
  rollback.failurePolicy = FailurePolicy::Rollback;
  RolloutDecision d = c.step(2, rollback);
  EXPECT_TRUE(d.memory.rolledBack);
  EXPECT_EQ(d.assign.size(), 3u);
  EXPECT_EQ(c.memory.published, (api::PublishedRollout{refOf(1), {}}));
  EXPECT_EQ(c.running(1), 6);
}

TEST(PublishedRollout, ContinueMovesThePartitionPastFailedNodes) {
  Cluster c(4);
  c.failing = {"node-01"};
  c.badGeneration = 2;
  RolloutPolicy policy{
      .maxUnavailable = 1, .canaryNodes = 1, .failurePolicy = FailurePolicy::Continue};
  c.run(2, policy);
  EXPECT_TRUE(c.step(2, policy).complete);
  // Not Ready everywhere: generation 1 stays stable, and the wave covers every node.
  ASSERT_EQ(c.memory.published.waves.size(), 1u);
  EXPECT_EQ(c.memory.published.waves[0].partition, "node-03");
  EXPECT_EQ(c.memory.published.stable, refOf(1));
  EXPECT_EQ(c.running(2), 4);
}

// Generation 3 comes while 2 has moved three nodes: those keep 2 until 3 reaches them (they
// do not go back to 1 meanwhile), then 2's wave goes.
TEST(PublishedRollout, ANewGenerationMidRolloutLeavesTheMovedNodesWhereTheyAre) {
  Cluster c(6);
  RolloutPolicy policy{.maxUnavailable = 2, .canaryNodes = 1};
  c.step(2, policy);
  c.step(2, policy);
  EXPECT_EQ(c.running(2), 3);
  c.step(3, policy);
  EXPECT_EQ(c.running(3), 1);
  EXPECT_EQ(c.running(2), 2);
  EXPECT_EQ(c.running(1), 3);
  ASSERT_EQ(c.memory.published.waves.size(), 2u);
  c.run(3, policy);
  EXPECT_EQ(c.running(3), 6);
  EXPECT_EQ(c.memory.published, (api::PublishedRollout{refOf(3), {}}));
}

} // namespace
} // namespace bpfchain::op

namespace bpfchain::op {
namespace {

// One node finishing out of a batch of 4 does not move a fifth: the next batch waits until
// half of maxUnavailable is free, so a rollout is a few status writes, not one per node.
TEST(Rollout, ABatchWaitsUntilHalfOfMaxUnavailableIsFree) {
  Cluster c(10);
  RolloutPolicy policy{.maxUnavailable = 4, .canaryNodes = 0};
  RolloutDecision first = c.step(2, policy);
  EXPECT_EQ(first.assign.size(), 4u);
  // node-00 reports; the other three of the batch are still applying.
  for (auto& n : c.nodes)
    if (n.node != "node-00" && n.assigned == 2) {
      n.reported = 1;
      n.phase = "Ready";
    }
  EXPECT_TRUE(planRollout(2, policy, c.memory, c.nodes, c.now).assign.empty());
  c.nodes[1].reported = 2; // node-01 too: 2 of 4 free
  RolloutDecision next = planRollout(2, policy, c.memory, c.nodes, c.now);
  EXPECT_EQ(next.assign.size(), 2u);
  EXPECT_TRUE(next.assign.contains("node-04") && next.assign.contains("node-05"));
}

TEST(AwaitedReports, NodesNotYetFinishedWithTheirTargetAreAwaited) {
  std::vector<NodeView> nodes{
      {.node = "a", .assigned = 2, .reported = 2, .phase = "Ready"},       // done
      {.node = "b", .assigned = 2, .reported = 2, .phase = "Applying"},    // still applying
      {.node = "c", .assigned = 1, .reported = 1, .phase = "Ready"},       // moved to 2 now
      {.node = "d", .assigned = 2, .reported = 2, .phase = "Failed"},      // finished: failed
      {.node = "e", .assigned = 2, .reported = std::nullopt, .phase = ""}, // never reported
      {.node = "f", .assigned = 1, .reported = 1, .phase = "Ready"},       // leaves the chain
  };
  std::vector<std::optional<int64_t>> targets{2, 2, 2, 2, 2, std::nullopt};
  EXPECT_EQ(awaitedReports(nodes, targets),
            (std::map<std::string, int64_t>{{"b", 2}, {"c", 2}, {"e", 2}}));
}

TEST(AwaitedReports, OnlyAFinishedReportOfTheAwaitedGenerationCounts) {
  EXPECT_TRUE(reportAwaited(3, 3, "Ready"));
  EXPECT_TRUE(reportAwaited(3, 3, "Idle"));
  EXPECT_TRUE(reportAwaited(3, 3, "Failed"));
  EXPECT_FALSE(reportAwaited(3, 3, "Applying"));
  EXPECT_FALSE(reportAwaited(3, 2, "Ready")); // the previous generation
  EXPECT_FALSE(reportAwaited(3, std::nullopt, ""));
}

} // namespace
} // namespace bpfchain::op
