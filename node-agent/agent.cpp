#include "node-agent/agent.h"

#include "node-agent/agent_metrics.h"

namespace bpfchain::agent {

using Clock = std::chrono::steady_clock;

namespace {
constexpr std::chrono::seconds kStatusRetry{5};
}

void Agent::run(NodeReconciler& reconciler) {
  bool statusPending = false;
  NodeStatus lastStatus;
  while (true) {
    ReconcileScope scope = ReconcileScope::Full;
    {
      std::unique_lock lock(mu_);
      auto deadline = Clock::now() + resync_;
      if (auto retry = reconciler.nextRetry(); retry && *retry < deadline)
        deadline = *retry;
      if (statusPending)
        deadline = std::min(deadline, Clock::now() + kStatusRetry);
      wake_.wait_until(lock, deadline,
                       [this] { return triggered_ || statusOnly_ || linksOnly_ || stopping_; });
      if (stopping_)
        return;
      if (statusOnly_ && !triggered_ && !linksOnly_) {
        statusOnly_ = false;
        lock.unlock();
        if (reconciler.applied()) {
          lastStatus = reconciler.status();
          statusPending = !source_.report(lastStatus);
        }
        continue;
      }
      // Woken by links alone (not by the spec, a retry or the resync period): a Links pass.
      if (linksOnly_ && !triggered_)
        scope = ReconcileScope::Links;
      triggered_ = false;
      statusOnly_ = false;
      linksOnly_ = false;
    }
    passStartedNs_ = Clock::now().time_since_epoch().count();
    if (auto spec = source_.current()) {
      lastStatus =
          reconciler.reconcile(*spec, source_.podSelector(), source_.expectedPods(), scope);
      reconciled_ = true;
      if (metrics_) {
        std::map<std::string, int> phases;
        for (const auto& c : lastStatus.chains)
          ++phases[c.phase];
        metrics_->setChainPhases(phases);
      }
      statusPending = !source_.report(lastStatus);
    } else if (statusPending) {
      statusPending = !source_.report(lastStatus);
    }
    passStartedNs_ = 0;
  }
}

void Agent::triggerLinks() {
  {
    std::lock_guard lock(mu_);
    linksOnly_ = true;
  }
  wake_.notify_all();
}

void Agent::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
}

void Agent::refreshStatus() {
  {
    std::lock_guard lock(mu_);
    statusOnly_ = true;
  }
  wake_.notify_all();
}

void Agent::trigger() {
  {
    std::lock_guard lock(mu_);
    triggered_ = true;
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
