#include "operator/reconcile_loop.h"

#include <algorithm>

#include "system/log.h"

namespace bpfchain::op {

std::string keyOf(const std::string& kind, const std::string& name) {
  return kind + "/" + name;
}

ReconcileLoop::ReconcileLoop(k8s::WorkQueue& queue, OperatorMetrics* metrics)
    : queue_(queue), metrics_(metrics) {}

ReconcileLoop::~ReconcileLoop() {
  stop();
}

void ReconcileLoop::add(Reconciler& reconciler) {
  reconcilers_[reconciler.kind()] = &reconciler;
}

void ReconcileLoop::start(int workers) {
  for (int i = 0; i < std::max(workers, 1); ++i)
    workers_.emplace_back([this] {
      while (processNext()) {
      }
    });
}

void ReconcileLoop::stop() {
  queue_.shutDown();
  for (auto& worker : workers_)
    if (worker.joinable())
      worker.join();
  workers_.clear();
}

bool ReconcileLoop::processNext() {
  auto key = queue_.get();
  if (!key)
    return false;
  auto slash = key->find('/');
  std::string kind = key->substr(0, slash);
  auto reconciler = reconcilers_.find(kind);
  if (slash == std::string::npos || reconciler == reconcilers_.end()) {
    log::error("no reconciler for this key", {{"key", *key}});
    queue_.forget(*key);
    queue_.done(*key);
    return true;
  }
  auto started = std::chrono::steady_clock::now();
  auto outcome = reconciler->second->reconcile(key->substr(slash + 1));
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ReconcileResult result = ReconcileResult::Success;
  if (!outcome) {
    result = ReconcileResult::Error;
    log::error("reconcile failed", {{"key", *key}, {"error", outcome.error().describe()}});
    queue_.addRateLimited(*key);
  } else {
    queue_.forget(*key);
    std::lock_guard lock(mu_);
    if (outcome->terminal) {
      result = ReconcileResult::Error;
      auto& last = terminal_[*key];
      if (last != *outcome->terminal)
        log::error("reconcile failed for good: not retried until the object changes",
                   {{"key", *key}, {"error", *outcome->terminal}});
      last = *outcome->terminal;
    } else {
      terminal_.erase(*key);
    }
    if (outcome->requeueAfter) {
      result = ReconcileResult::Requeue;
      queue_.addAfter(*key, *outcome->requeueAfter);
    }
  }
  if (seconds >= 1)
    log::info("slow reconcile", {{"key", *key}, {"ms", static_cast<int>(seconds * 1000)}});
  if (metrics_)
    metrics_->reconciled(kind, result, seconds);
  queue_.done(*key);
  return true;
}

} // namespace bpfchain::op
