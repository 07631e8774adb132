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
  // Once per node and generation: nodes that started failing the target since the last
  // reconcile, the first few by name and the rest counted.
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
  // Once per transition: nodes that turned stale since the last reconcile, and back.
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
  if (!d.overdue.empty() && was != "ProgressDeadlineExceeded")
    events.push_back({true, "ProgressDeadlineExceeded",
                      gen + ": no report from node(s) " + joined(d.overdue) +
                          " within the progress deadline; still waiting for them"});
  if (d.complete && was != "RolloutComplete") {
    std::string runs = gen + " runs on " + std::to_string(d.matched) + " node(s), " +
                       std::to_string(d.ready) + " Ready";
    if (d.failed == 0)
      events.push_back({false, "RolloutComplete", runs});
    else if (d.ready == 0)
      events.push_back({true, "RolloutFailed",
                        gen + " failed on every node (" + std::to_string(d.failed) +
                            "): " + describeFailure(d.failures.front())});
    else
      events.push_back({true, "NodesFailed",
                        runs + ", " + std::to_string(d.failed) +
                            " failed: " + describeFailure(d.failures.front())});
  }
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

  // Nodes that reported Ready (whatever generation) and whose agent stopped reporting; the
  // others that reported Ready turn stale at their heartbeat's deadline: reconcile then.
  std::vector<bool> stale;
  d.memory.staleNodes.clear();
  std::optional<Clock::time_point> nextStale;
  for (const auto& n : sorted) {
    stale.push_back(n.phase == "Ready" && agentStale(n.heartbeat, policy.agentStale, now));
    if (stale.back())
      d.memory.staleNodes.push_back(n.node);
    else if (n.phase == "Ready" && n.heartbeat)
      nextStale =
          std::min(nextStale.value_or(Clock::time_point::max()), *n.heartbeat + policy.agentStale);
  }
  d.stale = static_cast<int>(d.memory.staleNodes.size());
  if (nextStale) // one second past the deadline: agentStale is strict
    d.requeueAfter =
        std::chrono::ceil<std::chrono::seconds>(*nextStale - now) + std::chrono::seconds(1);
  auto requeue = [&](std::chrono::seconds after) {
    d.requeueAfter = d.requeueAfter ? std::min(*d.requeueAfter, after) : after;
  };

  std::vector<State> states;
  int applying = 0, unavailable = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    const NodeView& n = sorted[i];
    states.push_back(stateOf(n, target, stale[i]));
    d.updated += n.assigned == target;
    d.ready += states.back() == State::Ready;
    unavailable += stale[i] && states.back() != State::Applying; // whatever generation it runs
    d.idle += states.back() == State::Idle;
    applying += states.back() == State::Applying;
    if (states.back() == State::Failed) {
      ++d.failed;
      d.failures.push_back({n.node, n.reason, n.message});
    }
  }
  if (!d.memory.rolledBack) { // once rolled back, its nodes no longer run the target
    d.memory.failedNodes.clear();
    for (const auto& f : d.failures)
      d.memory.failedNodes.push_back(f.node); // sorted: nodes are
  }

  // Once rolled back, what the nodes run is the stable generation (or nothing): READY counts
  // that, and the failures that made the rollback stay until a new generation comes.
  auto stableReady = [&] {
    int ready = 0;
    for (size_t i = 0; i < sorted.size(); ++i) {
      const NodeView& n = sorted[i];
      ready += d.memory.stableGeneration && n.assigned == d.memory.stableGeneration &&
               n.reported == d.memory.stableGeneration && n.phase == "Ready" && !stale[i];
    }
    return ready;
  };
  if (d.memory.rolledBack) {
    d.halted = true;
    d.waitingFor = "generation " + std::to_string(target) + " was rolled back";
    d.ready = stableReady();
    d.failures = d.memory.rolledBackFailures;
    d.failed = static_cast<int>(d.failures.size());
    return d;
  }
  if (d.failed > 0 && policy.failurePolicy == FailurePolicy::Rollback) {
    for (const auto& n : sorted)
      if (n.assigned == target)
        d.assign[n.node] = d.memory.stableGeneration; // nullopt: remove the chain
    d.memory.rolledBack = true;
    d.memory.rolledBackFailures = d.failures;
    d.memory.waitingSince.reset();
    d.halted = true;
    d.waitingFor = "rolled back after a failure";
    d.ready = stableReady();
    return d;
  }
  if (d.failed > 0 && policy.failurePolicy == FailurePolicy::Halt) {
    d.halted = true;
    d.waitingFor = "halted after a failure";
    return d;
  }

  // The progress deadline: nodes applying while none finishes, for longer than allowed.
  int finished = d.ready + d.idle + d.failed;
  if (applying == 0) {
    d.memory.waitingSince.reset();
  } else if (!d.memory.waitingSince || finished != d.memory.finished) {
    d.memory.waitingSince = now;
  }
  d.memory.finished = finished;
  if (d.memory.waitingSince) {
    auto due = *d.memory.waitingSince + policy.progressDeadline;
    if (now >= due) {
      for (size_t i = 0; i < sorted.size(); ++i)
        if (states[i] == State::Applying)
          d.overdue.push_back(sorted[i].node);
    } else {
      requeue(std::chrono::ceil<std::chrono::seconds>(due - now));
    }
  }

  int succeeded =
      d.ready + d.idle + (policy.failurePolicy == FailurePolicy::Continue ? d.failed : 0);
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
    canariesDone =
        canariesDone &&
        (states[i] == State::Ready || states[i] == State::Idle ||
         (states[i] == State::Failed && policy.failurePolicy == FailurePolicy::Continue));
  }
  if (!canariesDone) {
    d.waitingFor = "canary nodes";
    return d;
  }
  d.canaries = static_cast<int>(canaries);
  for (size_t i = 0; i < canaries; ++i)
    d.canariesFailed += states[i] == State::Failed;
  if (canaries > 0 && !d.memory.canaryReadyAt)
    d.memory.canaryReadyAt = now; // also what the CanaryReady event is told by
  if (canaries > 0 && policy.pauseSeconds > 0) {
    auto resume = *d.memory.canaryReadyAt + std::chrono::seconds(policy.pauseSeconds);
    if (now < resume) {
      requeue(std::chrono::ceil<std::chrono::seconds>(resume - now));
      d.waitingFor = "the pause after the canary batch";
      return d;
    }
  }

  // A node whose agent stopped reporting is unavailable, as a DaemonSet counts it.
  int budget = policy.maxUnavailable - applying - unavailable;
  // Batches, not a sliding window: each batch is a write of the chain's status that every
  // agent receives, so the next one waits until half of maxUnavailable is free again (or
  // every node left fits), which bounds a rollout to about 2 x nodes / maxUnavailable writes.
  int behind = 0;
  for (size_t i = canaries; i < sorted.size(); ++i)
    behind += states[i] == State::Behind;
  if (budget < std::min(behind, (policy.maxUnavailable + 1) / 2))
    budget = 0;
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
