#include "node-agent/agent.h"

#include <utility>

#include "node-agent/agent_metrics.h"

namespace bpfchain::agent {

using Clock = std::chrono::steady_clock;

namespace {
constexpr std::chrono::seconds kStatusRetry{5};
// Pod ADDs and DELs come in bursts; their status goes out at most this often (each report is
// a write of the whole node status: a file, or a request to kube-apiserver).
constexpr std::chrono::milliseconds kStatusInterval{200};

const std::string kFull = "full";
const std::string kLinks = "links";
const std::string kStatus = "status";
const std::string kResync = "resync";
const std::string kRetry = "retry";
} // namespace

Agent::Agent(SpecSource& source, AgentMetrics* metrics, std::chrono::seconds resync)
    : source_(source), metrics_(metrics), resync_(resync) {
  queue_.add(kFull); // the first pass
}

void Agent::addAt(const std::string& key, Clock::time_point at) {
  queue_.addAfter(key, at - Clock::now());
}

void Agent::run(NodeReconciler& reconciler) {
  nextResync_ = Clock::now() + resync_;
  addAt(kResync, nextResync_);
  while (auto key = queue_.get()) {
    auto now = Clock::now();
    if (*key == kFull) {
      reconcile(reconciler, Pass::Full, std::nullopt);
    } else if (*key == kLinks) {
      std::optional<Interfaces> links;
      {
        std::lock_guard lock(mu_);
        links = std::exchange(links_, std::nullopt);
      }
      if (links) // not taken by a full pass since
        reconcile(reconciler, Pass::Links, links);
    } else if (*key == kResync || *key == kRetry) {
      // Every wake-up decides afresh: a full pass since may have moved the deadline.
      auto retry = reconciler.nextRetry();
      if (now >= nextResync_ || (retry && *retry <= now))
        reconcile(reconciler, Pass::Full, std::nullopt);
      else if (*key == kResync)
        addAt(kResync, nextResync_);
    } else if (*key == kStatus) {
      if (lastReport_ + kStatusInterval > now)
        addAt(kStatus, lastReport_ + kStatusInterval); // at most every 200 ms
      else
        reportStatus(reconciler);
    }
    if (auto retry = reconciler.nextRetry())
      addAt(kRetry, *retry);
    if (statusPending_)
      addAt(kStatus, lastReport_ + kStatusRetry);
    queue_.done(*key);
  }
}

void Agent::reconcile(NodeReconciler& reconciler, Pass pass,
                      const std::optional<Interfaces>& links) {
  if (pass == Pass::Full) {
    std::lock_guard lock(mu_);
    links_.reset(); // a full pass lists the links from the kernel
  }
  passStartedNs_ = Clock::now().time_since_epoch().count();
  if (auto spec = source_.current()) {
    NodeStatus status = reconciler.reconcile(
        *spec, source_.podSelector(), source_.expectedPods(),
        pass == Pass::Full ? ReconcileScope::Full : ReconcileScope::Links, links);
    reconciled_ = true;
    if (metrics_) {
      std::vector<ChainState> chains;
      chains.reserve(status.chains.size());
      for (const auto& c : status.chains)
        chains.push_back({c.name, c.generation, c.phase, c.reason});
      metrics_->setChains(chains);
    }
    // After a full pass the source always hears (it may have news of its own, such as a
    // config error); otherwise only a changed status is rendered and sent: with many pods,
    // rendering is the costliest part of a pass.
    report(status, pass == Pass::Full);
  } else if (statusPending_) {
    report(lastStatus_, true);
  }
  if (pass == Pass::Full) {
    nextResync_ = Clock::now() + resync_;
    addAt(kResync, nextResync_);
  }
  passStartedNs_ = 0;
}

void Agent::report(const NodeStatus& status, bool always) {
  if (!always && !statusPending_ && status == lastStatus_)
    return;
  lastStatus_ = status;
  statusPending_ = !source_.report(status);
  lastReport_ = Clock::now();
}

void Agent::reportStatus(NodeReconciler& reconciler) {
  if (reconciler.applied())
    report(reconciler.status(), false);
  else if (statusPending_)
    report(lastStatus_, true);
}

void Agent::triggerLinks(Interfaces links) {
  {
    std::lock_guard lock(mu_);
    links_ = std::move(links);
  }
  queue_.add(kLinks);
}

void Agent::stop() {
  queue_.shutDown();
}

void Agent::refreshStatus() {
  queue_.add(kStatus);
}

void Agent::trigger() {
  queue_.add(kFull);
}

std::optional<std::string> Agent::notReady() const {
  if (!reconciled_)
    return "the node's config has not been applied yet";
  return std::nullopt;
}

std::optional<std::string> Agent::notAlive(std::chrono::seconds limit) const {
  int64_t started = passStartedNs_;
  if (started != 0 && Clock::now().time_since_epoch().count() - started >
                          std::chrono::duration_cast<std::chrono::nanoseconds>(limit).count())
    return "a reconcile pass has been running for more than " + std::to_string(limit.count()) +
           " s";
  return std::nullopt;
}

} // namespace bpfchain::agent
