#include "node-agent/agent.h"

#include "node-agent/agent_metrics.h"

namespace bpfchain::agent {

using Clock = std::chrono::steady_clock;

namespace {
constexpr std::chrono::seconds kStatusRetry{5};
// Pod ADDs and DELs come in bursts; their status goes out at most this often (each report is
// a write of the whole node status: a file, or a request to kube-apiserver).
constexpr std::chrono::milliseconds kStatusInterval{200};
} // namespace

void Agent::run(NodeReconciler& reconciler) {
  bool statusPending = false; // the source refused the last report: retry it
  NodeStatus lastStatus;
  Clock::time_point lastReport{};
  Clock::time_point nextResync = Clock::now() + resync_;
  // After a full pass the source always hears (it may have news of its own, such as a config
  // error); otherwise only a changed status is rendered and sent: with many pods, rendering is
  // the costliest part of a pass.
  auto report = [&](const NodeStatus& status, bool always) {
    if (!always && !statusPending && status == lastStatus)
      return;
    lastStatus = status;
    statusPending = !source_.report(status);
    lastReport = Clock::now();
  };
  while (true) {
    enum class Work { None, Full, Links, Status } work = Work::None;
    std::optional<Interfaces> links;
    {
      std::unique_lock lock(mu_);
      // Every wake-up (a trigger or a deadline) decides afresh; nothing moves the resync.
      auto deadline = nextResync;
      if (auto retry = reconciler.nextRetry(); retry && *retry < deadline)
        deadline = *retry;
      if (statusPending)
        deadline = std::min(deadline, lastReport + kStatusRetry);
      if (statusOnly_)
        deadline = std::min(deadline, lastReport + kStatusInterval);
      uint64_t seen = wakeups_;
      wake_.wait_until(lock, deadline,
                       [&] { return triggered_ || linksOnly_ || stopping_ || wakeups_ != seen; });
      if (stopping_)
        return;
      auto now = Clock::now();
      auto retry = reconciler.nextRetry();
      if (triggered_ || now >= nextResync || (retry && *retry <= now))
        work = Work::Full;
      else if (linksOnly_)
        work = Work::Links; // woken by links alone: a pass that leaves running chains alone
      else if ((statusOnly_ && now >= lastReport + kStatusInterval) ||
               (statusPending && now >= lastReport + kStatusRetry))
        work = Work::Status;
      if (work == Work::None)
        continue;
      if (work != Work::Status) {
        triggered_ = false;
        linksOnly_ = false;
        if (work == Work::Links)
          links = links_; // a full pass lists the links from the kernel
      }
      statusOnly_ = false;
    }
    if (work == Work::Status) {
      if (reconciler.applied())
        report(reconciler.status(), false);
      else if (statusPending)
        report(lastStatus, true);
      continue;
    }
    passStartedNs_ = Clock::now().time_since_epoch().count();
    if (auto spec = source_.current()) {
      NodeStatus status = reconciler.reconcile(
          *spec, source_.podSelector(), source_.expectedPods(),
          work == Work::Full ? ReconcileScope::Full : ReconcileScope::Links, links);
      reconciled_ = true;
      if (metrics_) {
        std::vector<ChainState> chains;
        chains.reserve(status.chains.size());
        for (const auto& c : status.chains)
          chains.push_back({c.name, c.generation, c.phase, c.reason});
        metrics_->setChains(chains);
      }
      report(status, work == Work::Full);
    } else if (statusPending) {
      report(lastStatus, true);
    }
    if (work == Work::Full)
      nextResync = Clock::now() + resync_;
    passStartedNs_ = 0;
  }
}

void Agent::triggerLinks(Interfaces links) {
  {
    std::lock_guard lock(mu_);
    linksOnly_ = true;
    links_ = std::move(links);
    ++wakeups_;
  }
  wake_.notify_all();
}

void Agent::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    ++wakeups_;
  }
  wake_.notify_all();
}

void Agent::refreshStatus() {
  {
    std::lock_guard lock(mu_);
    statusOnly_ = true;
    ++wakeups_;
  }
  wake_.notify_all();
}

void Agent::trigger() {
  {
    std::lock_guard lock(mu_);
    triggered_ = true;
    ++wakeups_;
  }
  wake_.notify_all();
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
