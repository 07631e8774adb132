// The operator's generic reconcile loop (controller-runtime's controller): workers take keys
// "<kind>/<name>" from one work queue and hand each to the Reconciler of its kind. The loop,
// not the reconcilers, owns what every kind needs alike: queueing (a key is never reconciled
// twice at once), retries with the queue's rate-limited backoff, requeues, metrics
// (bpfchain_operator_reconciles_total, ..._reconcile_duration_seconds) and the log lines of
// failures and slow reconciles.
//
// A reconcile returns an Outcome, or an API error that is retried with backoff. An Outcome
// with `terminal` set is controller-runtime's TerminalError: a spec that can never succeed
// (an invalid selector, a name too long) has been said in the object's status; the loop logs
// it once (again only when it changes) and does not retry it. A new event for the object (a
// new generation) reconciles it again as usual.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "k8s/api_error.h"
#include "k8s/work_queue.h"
#include "operator/metrics.h"

namespace bpfchain::op {

struct Outcome {
  std::optional<std::chrono::milliseconds> requeueAfter; // reconcile again then
  std::optional<std::string> terminal; // why the spec can never succeed; not retried
};

// One kind's reconciler: brings the world in line with the object `name` from the caches,
// whatever events led there (level-triggered).
class Reconciler {
public:
  virtual ~Reconciler() = default;
  // The key prefix and the metrics' controller label: "chain", "node".
  virtual const char* kind() const = 0;
  virtual k8s::ApiResult<Outcome> reconcile(const std::string& name) = 0;
};

// "kind/name".
std::string keyOf(const std::string& kind, const std::string& name);

class ReconcileLoop {
public:
  // `metrics` (optional) must outlive the loop; so must `queue` and every reconciler.
  ReconcileLoop(k8s::WorkQueue& queue, OperatorMetrics* metrics);
  ~ReconcileLoop();
  void add(Reconciler& reconciler); // before start()
  // Starts `workers` threads (at least one).
  void start(int workers);
  // Shuts the queue down and joins the workers (each finishes the key in hand).
  void stop();
  // Reconciles one key from the queue in this thread; false once the queue shut down. For
  // tests, and the workers' loop.
  bool processNext();

private:
  k8s::WorkQueue& queue_;
  OperatorMetrics* metrics_;
  std::map<std::string, Reconciler*> reconcilers_; // by kind
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::map<std::string, std::string> terminal_; // key -> the terminal error last logged
};

} // namespace bpfchain::op
