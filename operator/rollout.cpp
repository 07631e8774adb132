#include "operator/rollout.h"

#include <algorithm>
#include <cmath>

namespace bpfchain::op {
namespace {

// Idle: the node has nothing to attach the chain to (no matching interface or pod): it
// finished the generation like a Ready node, but does not run it. Stale: it reported Ready,
// but its agent stopped reporting.
enum class State { Behind, Applying, Ready, Idle, Stale, Failed };

State stateOf(const NodeView& n, int64_t target, bool stale) {
  if (n.assigned != target)
    return State::Behind;
  if (n.reported != target)
    return State::Applying;
  if (n.phase == "Ready")
    return stale ? State::Stale : State::Ready;
  if (n.phase == "Idle")
    return State::Idle;
  if (n.phase == "Failed")
    return State::Failed;
  return State::Applying;
}

std::string describeFailure(const NodeFailure& f) {
  return "node " + f.node + " failed: " + f.reason + (f.message.empty() ? "" : ": " + f.message);
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names)
    out += (out.empty() ? "" : ", ") + n;
  return out;
}

// The first few of `names`, and how many more: messages stay short with 1,000 nodes.
std::string firstFew(const std::vector<std::string>& names) {
  constexpr size_t kShown = 5;
  std::vector<std::string> shown(names.begin(),
                                 names.begin() + static_cast<long>(std::min(names.size(), kShown)));
  return joined(shown) +
         (names.size() > kShown ? " and " + std::to_string(names.size() - kShown) + " more" : "");
}

// An agent's message for an Event: one line (verifier logs are several), at most
// kNodeFailedMessageMax bytes, keeping its start (what failed) and its end (a verifier log's
// last line says why), cut on UTF-8 character boundaries.
std::string eventMessage(const std::string& message) {
  std::string line = message;
  std::replace(line.begin(), line.end(), '\n', ' ');
  if (line.size() <= kNodeFailedMessageMax)
    return line;
  const std::string gap = " ... ";
  auto continuation = [&](size_t i) {
    return (static_cast<unsigned char>(line[i]) & 0xC0) == 0x80;
  };
  size_t head = (kNodeFailedMessageMax - gap.size()) / 3;
  size_t tail = line.size() - (kNodeFailedMessageMax - gap.size() - head);
  while (head > 0 && continuation(head))
    --head;
  while (tail < line.size() && continuation(tail))
    ++tail;
  return line.substr(0, head) + gap + line.substr(tail);
}

// Once per node and generation: nodes that started failing the target since the last
// reconcile, the first few by name and the rest counted.
void nodeFailedEvents(const std::string& gen, bool sameTarget, const RolloutMemory& before,
                      const RolloutDecision& d, std::vector<RolloutEvent>& events) {
  std::vector<const NodeFailure*> newlyFailed;
  for (const auto& f : d.failures)
    if (std::binary_search(d.memory.failedNodes.begin(), d.memory.failedNodes.end(), f.node) &&
        !(sameTarget &&
          std::binary_search(before.failedNodes.begin(), before.failedNodes.end(), f.node)))
      newlyFailed.push_back(&f);
  for (size_t i = 0; i < newlyFailed.size() && i < kNodeFailedEvents; ++i) {
    const NodeFailure& f = *newlyFailed[i];
    events.push_back({true, "NodeFailed",
                      "node " + f.node + " failed " + gen + ": " + f.reason +
                          (f.message.empty() ? "" : ": " + eventMessage(f.message))});
  }
  if (newlyFailed.size() > kNodeFailedEvents) {
    std::vector<std::string> rest;
    for (size_t i = kNodeFailedEvents; i < newlyFailed.size(); ++i)
      rest.push_back(newlyFailed[i]->node);
    events.push_back({true, "NodeFailed",
                      std::to_string(rest.size()) + " more node(s) failed " + gen + ": " +
                          firstFew(rest) + "; kubectl bpfchain status lists each node's reason"});
  }
}

// Once per transition: nodes that turned stale since the last reconcile, and back.
void staleEvents(const RolloutMemory& before, const RolloutDecision& d,
                 std::vector<RolloutEvent>& events) {
  std::vector<std::string> turnedStale, resumed;
  for (const auto& n : d.memory.staleNodes)
    if (!std::binary_search(before.staleNodes.begin(), before.staleNodes.end(), n))
      turnedStale.push_back(n);
  for (const auto& n : before.staleNodes)
    if (!std::binary_search(d.memory.staleNodes.begin(), d.memory.staleNodes.end(), n))
      resumed.push_back(n);
  if (!turnedStale.empty())
    events.push_back({true, "AgentNotReporting",
                      "no heartbeat from the agent of node(s) " + firstFew(turnedStale) +
                          ": not counted Ready"});
  if (!resumed.empty())
    events.push_back(
        {false, "AgentReporting", "the agent of node(s) " + firstFew(resumed) + " reports again"});
}

// RolloutComplete, or what the failures under Continue make of it.
RolloutEvent completionEvent(const std::string& gen, const RolloutDecision& d) {
  std::string runs = gen + " runs on " + std::to_string(d.matched) + " node(s), " +
                     std::to_string(d.ready) + " Ready";
  if (d.failed == 0)
    return {false, "RolloutComplete", runs};
  if (d.ready == 0)
    return {true, "RolloutFailed",
            gen + " failed on every node (" + std::to_string(d.failed) +
                "): " + describeFailure(d.failures.front())};
  return {true, "NodesFailed",
          runs + ", " + std::to_string(d.failed) +
              " failed: " + describeFailure(d.failures.front())};
}

} // namespace

bool agentStale(std::optional<Clock::time_point> heartbeat, std::chrono::seconds staleAfter,
                Clock::time_point now) {
  return heartbeat && now - *heartbeat > staleAfter;
}

std::string describeStale(const std::vector<std::string>& nodes) {
  return std::to_string(nodes.size()) +
         " node(s) whose agent stopped reporting: " + firstFew(nodes);
}

std::vector<RolloutEvent> rolloutEvents(int64_t target, const RolloutMemory& before,
                                        const std::string& previousProgressingReason,
                                        const RolloutDecision& d) {
  std::vector<RolloutEvent> events;
  std::string gen = "generation " + std::to_string(target);
  bool sameTarget = before.generation == target;
  const std::string& was = previousProgressingReason;
  if (!sameTarget)
    events.push_back({false, "RolloutStarted",
                      "rolling out " + gen + " to " + std::to_string(d.matched) + " node(s)"});
  nodeFailedEvents(gen, sameTarget, before, d, events);
  if (d.memory.canaryReadyAt && !(sameTarget && before.canaryReadyAt)) {
    if (d.canariesFailed == 0)
      events.push_back({false, "CanaryReady",
                        "the canary node(s) run " + gen + " Ready; rolling out to the rest"});
    else
      events.push_back({true, "CanaryFailed",
                        std::to_string(d.canariesFailed) + " of " + std::to_string(d.canaries) +
                            " canary node(s) failed " + gen + " (failurePolicy Continue): " +
                            describeFailure(d.failures.front()) + "; rolling out to the rest"});
  }
  if (d.halted && !d.failures.empty() && was != "Halted" && was != "RolledBack")
    events.push_back(
        {true, "RolloutHalted", gen + " halted: " + describeFailure(d.failures.front())});
  if (d.memory.rolledBack && !(sameTarget && before.rolledBack)) {
    std::string to = d.memory.stableGeneration
                         ? "generation " + std::to_string(*d.memory.stableGeneration)
                         : "no chain (no earlier generation was Ready everywhere)";
    events.push_back(
        {true, "RolledBack",
         gen + " rolled back to " + to + " on " + std::to_string(d.assign.size()) + " node(s)" +
             (d.failures.empty() ? "" : " after " + describeFailure(d.failures.front()))});
  }
  staleEvents(before, d, events);
  if (!d.overdue.empty() && was != "ProgressDeadlineExceeded")
    events.push_back({true, "ProgressDeadlineExceeded",
                      gen + ": no report from node(s) " + joined(d.overdue) +
                          " within the progress deadline; still waiting for them"});
  if (d.complete && was != "RolloutComplete")
    events.push_back(completionEvent(gen, d));
  return events;
}

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

std::string chainPhase(const RolloutDecision& d, bool problem) {
  if (d.memory.rolledBack)
    return "RolledBack";
  if (d.halted)
    return "Halted";
  if (d.stale > 0) // nodes whose agent stopped reporting hold the rollout: say so
    return "Degraded";
  if (!d.complete)
    return "RollingOut";
  return d.failed > 0 || problem ? "Degraded" : "Ready";
}

api::PublishedRollout publish(const api::PublishedRollout& before, const RolloutDecision& d,
                              const api::ChainRef& target,
                              const std::optional<api::ChainRef>& stable) {
  api::PublishedRollout p = before;
  p.stable = stable;
  auto isTarget = [&](const api::Wave& w) { return w.target.revision == target.revision; };
  if (d.memory.rolledBack) {
    std::erase_if(p.waves, isTarget);
  } else if (d.complete && d.failed == 0) {
    p.waves.clear(); // stable is the target now
  } else {
    std::optional<std::string> last;
    for (const auto& [node, generation] : d.assign)
      if (generation == target.generation)
        last = node; // std::map: the last one is the greatest name
    if (last) {
      if (p.waves.empty() || !isTarget(p.waves.front())) {
        std::erase_if(p.waves, isTarget);
        p.waves.insert(p.waves.begin(), api::Wave{target, *last});
      } else if (*last > p.waves.front().partition) {
        p.waves.front().partition = *last;
      }
    }
  }
  api::dropShadowed(p);
  return p;
}

namespace {

// One reconcile's view of the nodes, in name order, as planRollout's stages share it.
struct Plan {
  const std::vector<NodeView>& sorted;
  int64_t target;
  const RolloutPolicy& policy;
  Clock::time_point now;
  RolloutDecision& d;
  std::vector<bool> stale;   // by node: reported Ready, agent not reporting
  std::vector<State> states; // by node
  int applying = 0, unavailable = 0;

  void requeue(std::chrono::seconds after) {
    d.requeueAfter = d.requeueAfter ? std::min(*d.requeueAfter, after) : after;
  }
};

// Nodes that reported Ready (whatever generation) and whose agent stopped reporting; the
// others that reported Ready turn stale at their heartbeat's deadline: reconcile then.
void markStale(Plan& p) {
  p.d.memory.staleNodes.clear();
  std::optional<Clock::time_point> nextStale;
  for (const auto& n : p.sorted) {
    p.stale.push_back(n.phase == "Ready" && agentStale(n.heartbeat, p.policy.agentStale, p.now));
    if (p.stale.back())
      p.d.memory.staleNodes.push_back(n.node);
    else if (n.phase == "Ready" && n.heartbeat)
      nextStale = std::min(nextStale.value_or(Clock::time_point::max()),
                           *n.heartbeat + p.policy.agentStale);
  }
  p.d.stale = static_cast<int>(p.d.memory.staleNodes.size());
  if (nextStale) // one second past the deadline: agentStale is strict
    p.d.requeueAfter =
        std::chrono::ceil<std::chrono::seconds>(*nextStale - p.now) + std::chrono::seconds(1);
}

void countStates(Plan& p) {
  RolloutDecision& d = p.d;
  for (size_t i = 0; i < p.sorted.size(); ++i) {
    const NodeView& n = p.sorted[i];
    p.states.push_back(stateOf(n, p.target, p.stale[i]));
    State s = p.states.back();
    d.updated += n.assigned == p.target;
    d.ready += s == State::Ready;
    p.unavailable += p.stale[i] && s != State::Applying; // whatever generation it runs
    d.idle += s == State::Idle;
    p.applying += s == State::Applying;
    if (s == State::Failed) {
      ++d.failed;
      d.failures.push_back({n.node, n.reason, n.message});
    }
  }
  if (!d.memory.rolledBack) { // once rolled back, its nodes no longer run the target
    d.memory.failedNodes.clear();
    for (const auto& f : d.failures)
      d.memory.failedNodes.push_back(f.node); // sorted: nodes are
  }
}

// Once rolled back, what the nodes run is the stable generation (or nothing): READY counts
// that.
int stableReady(const Plan& p) {
  int ready = 0;
  const auto& stable = p.d.memory.stableGeneration;
  for (size_t i = 0; i < p.sorted.size(); ++i) {
    const NodeView& n = p.sorted[i];
    ready +=
        stable && n.assigned == stable && n.reported == stable && n.phase == "Ready" && !p.stale[i];
  }
  return ready;
}

// A rolled-back target stays so; a failure rolls back or halts by the policy. True when the
// decision is made.
bool stopOnFailure(Plan& p) {
  RolloutDecision& d = p.d;
  if (d.memory.rolledBack) { // the failures that made it stay until a new generation comes
    d.halted = true;
    d.waitingFor = "generation " + std::to_string(p.target) + " was rolled back";
    d.ready = stableReady(p);
    d.failures = d.memory.rolledBackFailures;
    d.failed = static_cast<int>(d.failures.size());
    return true;
  }
  if (d.failed > 0 && p.policy.failurePolicy == FailurePolicy::Rollback) {
    for (const auto& n : p.sorted)
      if (n.assigned == p.target)
        d.assign[n.node] = d.memory.stableGeneration; // nullopt: remove the chain
    d.memory.rolledBack = true;
    d.memory.rolledBackFailures = d.failures;
    d.memory.waitingSince.reset();
    d.halted = true;
    d.waitingFor = "rolled back after a failure";
    d.ready = stableReady(p);
    return true;
  }
  if (d.failed > 0 && p.policy.failurePolicy == FailurePolicy::Halt) {
    d.halted = true;
    d.waitingFor = "halted after a failure";
    return true;
  }
  return false;
}

// The progress deadline: nodes applying while none finishes, for longer than allowed.
void trackProgress(Plan& p) {
  RolloutDecision& d = p.d;
  int finished = d.ready + d.idle + d.failed;
  if (p.applying == 0) {
    d.memory.waitingSince.reset();
  } else if (!d.memory.waitingSince || finished != d.memory.finished) {
    d.memory.waitingSince = p.now;
  }
  d.memory.finished = finished;
  if (!d.memory.waitingSince)
    return;
  auto due = *d.memory.waitingSince + p.policy.progressDeadline;
  if (p.now >= due) {
    for (size_t i = 0; i < p.sorted.size(); ++i)
      if (p.states[i] == State::Applying)
        d.overdue.push_back(p.sorted[i].node);
  } else {
    p.requeue(std::chrono::ceil<std::chrono::seconds>(due - p.now));
  }
}

// The canary batch goes first, whatever maxUnavailable says. True while the rest waits for
// it (or for the pause after it).
bool holdForCanaries(Plan& p, size_t canaries) {
  RolloutDecision& d = p.d;
  const RolloutPolicy& policy = p.policy;
  bool canariesDone = true;
  for (size_t i = 0; i < canaries; ++i) {
    if (p.states[i] == State::Behind)
      d.assign[p.sorted[i].node] = p.target;
    canariesDone =
        canariesDone &&
        (p.states[i] == State::Ready || p.states[i] == State::Idle ||
         (p.states[i] == State::Failed && policy.failurePolicy == FailurePolicy::Continue));
  }
  if (!canariesDone) {
    d.waitingFor = "canary nodes";
    return true;
  }
  d.canaries = static_cast<int>(canaries);
  for (size_t i = 0; i < canaries; ++i)
    d.canariesFailed += p.states[i] == State::Failed;
  if (canaries > 0 && !d.memory.canaryReadyAt)
    d.memory.canaryReadyAt = p.now; // also what the CanaryReady event is told by
  if (canaries > 0 && policy.pauseSeconds > 0) {
    auto resume = *d.memory.canaryReadyAt + std::chrono::seconds(policy.pauseSeconds);
    if (p.now < resume) {
      p.requeue(std::chrono::ceil<std::chrono::seconds>(resume - p.now));
      d.waitingFor = "the pause after the canary batch";
      return true;
    }
  }
  return false;
}

// The next batch after the canaries, within maxUnavailable.
void assignBatch(Plan& p, size_t canaries) {
  // A node whose agent stopped reporting is unavailable, as a DaemonSet counts it.
  int budget = p.policy.maxUnavailable - p.applying - p.unavailable;
  // Batches, not a sliding window: each batch is a write of the chain's status that every
  // agent receives, so the next one waits until half of maxUnavailable is free again (or
  // every node left fits), which bounds a rollout to about 2 x nodes / maxUnavailable writes.
  int behind = 0;
  for (size_t i = canaries; i < p.sorted.size(); ++i)
    behind += p.states[i] == State::Behind;
  if (budget < std::min(behind, (p.policy.maxUnavailable + 1) / 2))
    budget = 0;
  for (size_t i = canaries; i < p.sorted.size() && budget > 0; ++i) {
    if (p.states[i] != State::Behind)
      continue;
    p.d.assign[p.sorted[i].node] = p.target;
    --budget;
  }
  p.d.waitingFor =
      "nodes applying (maxUnavailable " + std::to_string(p.policy.maxUnavailable) + ")";
}

} // namespace

RolloutDecision planRollout(int64_t target, const RolloutPolicy& policy,
                            const RolloutMemory& memory, const std::vector<NodeView>& nodes,
                            Clock::time_point now) {
  // The controller passes them in name order already: no copy of 1,000 views then.
  auto byName = [](const NodeView& a, const NodeView& b) { return a.node < b.node; };
  std::vector<NodeView> copy;
  if (!std::is_sorted(nodes.begin(), nodes.end(), byName)) {
    copy = nodes;
    std::sort(copy.begin(), copy.end(), byName);
  }
  const std::vector<NodeView>& sorted = copy.empty() ? nodes : copy;

  RolloutDecision d;
  d.memory = memory;
  if (memory.generation != target) // a new target starts a new rollout
    d.memory = {.generation = target,
                .stableGeneration = memory.stableGeneration,
                .staleNodes = memory.staleNodes,
                .published = memory.published};
  d.matched = static_cast<int>(sorted.size());
  Plan p{sorted, target, policy, now, d, {}, {}};
  markStale(p);
  countStates(p);
  if (stopOnFailure(p))
    return d;
  trackProgress(p);
  int succeeded =
      d.ready + d.idle + (policy.failurePolicy == FailurePolicy::Continue ? d.failed : 0);
  if (succeeded == d.matched) {
    d.complete = true;
    if (d.failed == 0)
      d.memory.stableGeneration = target;
    return d;
  }
  size_t canaries = std::min<size_t>(std::max(policy.canaryNodes, 0), sorted.size());
  if (!holdForCanaries(p, canaries))
    assignBatch(p, canaries);
  return d;
}

bool reportAwaited(int64_t awaited, std::optional<int64_t> reported, const std::string& phase) {
  return reported == awaited && !phase.empty() && phase != "Applying";
}

std::map<std::string, int64_t> awaitedReports(const std::vector<NodeView>& nodes,
                                              const std::vector<std::optional<int64_t>>& targets) {
  std::map<std::string, int64_t> awaited;
  for (size_t i = 0; i < nodes.size() && i < targets.size(); ++i)
    if (targets[i] && !reportAwaited(*targets[i], nodes[i].reported, nodes[i].phase))
      awaited.emplace(nodes[i].node, *targets[i]);
  return awaited;
}

} // namespace bpfchain::op
