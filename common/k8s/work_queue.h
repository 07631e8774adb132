// A rate-limited work queue of object keys with client-go's semantics (util/workqueue): the
// controllers' reconcile loops pull keys ("namespace/name" or "name") from it.
//
// Contract, as client-go's TypedRateLimitingInterface:
//  - Fair: distinct keys are handed out in the order they became ready (FIFO).
//  - Stingy: a key added many times while waiting is queued once.
//  - No concurrent processing of one key: a key handed out by get() and not yet done() is not
//    handed out again; an add() meanwhile marks it dirty and it is queued again on done().
//  - addAfter() delays an add; for a key already waiting for its delay the earlier deadline wins.
//  - addRateLimited() = addAfter(key, limiter.when(key)); forget() resets the key's failures.
//  - Once shutting down, add() and addAfter() are ignored and delayed keys are dropped; done()
//    still works. After shutDown() get() returns nullopt at once (workers stop; keys still queued
//    are abandoned). After shutDownWithDrain() get() goes on handing out the queued keys (and
//    those re-queued by done()) and returns nullopt once none is queued; shutDownWithDrain()
//    returns when no key is queued or being processed, as client-go documents it, or when a
//    shutDown() cancels the drain. Workers must call done() for every key they got.
// Every method is thread-safe; any number of workers may call get()/done() concurrently.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace bpfchain::k8s {

// A wake-up signal for Clock::sleepUntil(): notify() ends the current sleep, or the next one if
// nobody sleeps, so a notification between deciding to sleep and sleeping is not lost.
class Wakeup {
public:
  void notify();
  // Blocks until notified or until the real (steady) deadline; consumes the notification.
  void waitUntil(std::chrono::steady_clock::time_point deadline);
  void wait() { waitUntil(std::chrono::steady_clock::time_point::max()); }

private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false;
};

// The time source of the queue and the rate limiters, injectable so tests control time.
class Clock {
public:
  using Duration = std::chrono::steady_clock::duration;
  using TimePoint = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
  // Returns once now() >= deadline, on wakeup.notify(), or spuriously: callers re-check.
  virtual void sleepUntil(TimePoint deadline, Wakeup& wakeup) = 0;
};

// std::chrono::steady_clock; one shared instance.
std::shared_ptr<Clock> steadyClock();

// A clock that moves only when told to, for deterministic tests. advance() wakes sleepers.
class FakeClock final : public Clock {
public:
  explicit FakeClock(TimePoint start = TimePoint{} + std::chrono::hours(1)) : now_(start) {}

  TimePoint now() const override;
  void sleepUntil(TimePoint deadline, Wakeup& wakeup) override;
  void advance(Duration d);
  // How many threads are in sleepUntil() (client-go's fake clock HasWaiters).
  size_t sleepers() const;

private:
  mutable std::mutex mu_;
  TimePoint now_;
  std::vector<Wakeup*> sleepers_;
};

// Decides how long a failed key waits before its retry. Implementations are thread-safe.
class RateLimiter {
public:
  virtual ~RateLimiter() = default;
  // The delay before `key` is retried; counts one more failure (or one more token taken).
  virtual Clock::Duration when(const std::string& key) = 0;
  // Stops tracking `key`: its next when() starts from scratch. The key's delays so far stand.
  virtual void forget(const std::string& key) = 0;
  // Failures counted for `key` since it was last forgotten.
  virtual int numRequeues(const std::string& key) = 0;
};

// Per key: base * 2^failures, capped at maxDelay (client-go ItemExponentialFailureRateLimiter).
class ItemExponentialFailureRateLimiter final : public RateLimiter {
public:
  ItemExponentialFailureRateLimiter(Clock::Duration base, Clock::Duration maxDelay)
      : base_(base), max_(maxDelay) {}

  Clock::Duration when(const std::string& key) override;
  void forget(const std::string& key) override;
  int numRequeues(const std::string& key) override;

private:
  std::mutex mu_;
  const Clock::Duration base_;
  const Clock::Duration max_;
  std::unordered_map<std::string, int> failures_;
};

// One token bucket for all keys: `qps` tokens a second, at most `burst` saved, starting full; a
// when() without a token reserves a future one (golang.org/x/time/rate Limiter.Reserve, as
// client-go's BucketRateLimiter). Tracks no keys: forget() does nothing, numRequeues() is 0.
class BucketRateLimiter final : public RateLimiter {
public:
  BucketRateLimiter(double qps, int burst, std::shared_ptr<Clock> clock);

  Clock::Duration when(const std::string& key) override;
  void forget(const std::string& /*key*/) override {}
  int numRequeues(const std::string& /*key*/) override { return 0; }

private:
  std::mutex mu_;
  const double qps_;
  const double burst_;
  const std::shared_ptr<Clock> clock_;
  double tokens_;
  Clock::TimePoint last_;
};

// The longest delay of its limiters; asks all of them (so each counts the failure).
class MaxOfRateLimiter final : public RateLimiter {
public:
  explicit MaxOfRateLimiter(std::vector<std::unique_ptr<RateLimiter>> limiters)
      : limiters_(std::move(limiters)) {}

  Clock::Duration when(const std::string& key) override;
  void forget(const std::string& key) override;
  int numRequeues(const std::string& key) override;

private:
  std::vector<std::unique_ptr<RateLimiter>> limiters_;
};

inline constexpr Clock::Duration kDefaultBaseDelay = std::chrono::milliseconds(5);
inline constexpr Clock::Duration kDefaultMaxDelay = std::chrono::seconds(1000);
inline constexpr double kDefaultQps = 10;
inline constexpr int kDefaultBurst = 100;

// client-go's DefaultTypedControllerRateLimiter: max of per-key 5 ms * 2^failures (cap 1000 s)
// and a 10 qps / burst 100 bucket.
std::unique_ptr<RateLimiter> defaultControllerRateLimiter(std::shared_ptr<Clock> clock);

// What a queue reports, as client-go's workqueue metrics (queueMetrics with a MetricsProvider)
// and at the same moments: added() when add() makes a key dirty (depth +1, adds +1), taken()
// when get() hands it out (depth -1; seconds since it was added), finished() on done() (seconds
// since get()), retried() on each addAfter()/addRateLimited() while not shutting down. A queue
// installs an in-flight probe while it lives (clearing it in its destructor) so the keys being
// processed are measured when scraped (client-go's unfinished_work and
// longest_running_processor gauges). Implementations are thread-safe; the queue never holds
// its lock while it calls setInFlightProbe().
class WorkQueueMetrics {
public:
  struct InFlight {
    double unfinishedSeconds = 0;     // summed over the keys being processed
    double longestRunningSeconds = 0; // of the key processed longest
  };
  virtual ~WorkQueueMetrics() = default;
  virtual void added() = 0;
  virtual void taken(double queuedSeconds) = 0;
  virtual void finished(double workSeconds) = 0;
  virtual void retried() = 0;
  virtual void setInFlightProbe(std::function<InFlight()> probe) = 0;
};

struct WorkQueueOptions {
  std::shared_ptr<Clock> clock;              // null: steadyClock()
  std::unique_ptr<RateLimiter> rateLimiter;  // null: defaultControllerRateLimiter(clock)
  std::shared_ptr<WorkQueueMetrics> metrics; // null: none
};

class WorkQueue {
public:
  explicit WorkQueue(WorkQueueOptions options = {});
  // Shuts down and stops the delay thread. Workers must have returned from get() by then.
  ~WorkQueue();

  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  void add(std::string key);
  // Blocks until a key is ready; nullopt when shutting down (see above). The caller owns the
  // key until done(key).
  std::optional<std::string> get();
  void done(const std::string& key);

  // Adds `key` once `delay` has passed (at once if delay <= 0).
  void addAfter(std::string key, Clock::Duration delay);
  void addRateLimited(std::string key);
  void forget(const std::string& key);
  int numRequeues(const std::string& key);

  // Keys ready to be handed out (neither those being processed nor those waiting for a delay).
  size_t len() const;
  bool shuttingDown() const;

  void shutDown();
  void shutDownWithDrain();

private:
  void addLocked(std::string key);
  void delayLoop();

  const std::shared_ptr<Clock> clock_;
  const std::unique_ptr<RateLimiter> limiter_;
  const std::shared_ptr<WorkQueueMetrics> metrics_;

  mutable std::mutex mu_;
  std::condition_variable ready_;   // a key was queued, or shutting down
  std::condition_variable drained_; // nothing queued or in flight, or the drain was cancelled
  std::deque<std::string> queue_;
  std::unordered_set<std::string> dirty_;      // needs processing: queued, or re-added in flight
  std::unordered_set<std::string> processing_; // handed out, not yet done()
  bool shuttingDown_ = false;
  bool drain_ = false; // shutting down, but workers finish the queued keys first
  // For metrics_ only: when a key became dirty, and when its processing began.
  std::unordered_map<std::string, Clock::TimePoint> addedAt_;
  std::unordered_map<std::string, Clock::TimePoint> processingSince_;

  // Keys waiting for their delay, by (deadline, arrival) so equal deadlines stay FIFO.
  using WaitOrder = std::map<std::pair<Clock::TimePoint, uint64_t>, std::string>;
  WaitOrder waiting_;
  std::unordered_map<std::string, WaitOrder::iterator> waitingByKey_;
  uint64_t arrivals_ = 0;

  Wakeup wakeup_; // ends the delay thread's sleep: an earlier deadline, or shutdown
  std::thread delayThread_;
};

} // namespace bpfchain::k8s
