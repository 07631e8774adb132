#include "k8s/work_queue.h"

#include <algorithm>
#include <cmath>

namespace bpfchain::k8s {

void Wakeup::notify() {
  {
    std::lock_guard lock(mu_);
    pending_ = true;
  }
  cv_.notify_all();
}

void Wakeup::waitUntil(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mu_);
  auto notified = [this] { return pending_; };
  // wait_until(max) would overflow converting to the system clock's representation.
  if (deadline == std::chrono::steady_clock::time_point::max())
    cv_.wait(lock, notified);
  else
    cv_.wait_until(lock, deadline, notified);
  pending_ = false;
}

namespace {

class SteadyClock final : public Clock {
public:
  TimePoint now() const override { return std::chrono::steady_clock::now(); }
  void sleepUntil(TimePoint deadline, Wakeup& wakeup) override { wakeup.waitUntil(deadline); }
};

} // namespace

std::shared_ptr<Clock> steadyClock() {
  static const auto clock = std::make_shared<SteadyClock>();
  return clock;
}

Clock::TimePoint FakeClock::now() const {
  std::lock_guard lock(mu_);
  return now_;
}

void FakeClock::sleepUntil(TimePoint deadline, Wakeup& wakeup) {
  {
    // Registered before now_ is read, so an advance() after the read notifies this sleeper.
    std::lock_guard lock(mu_);
    if (now_ >= deadline)
      return;
    sleepers_.push_back(&wakeup);
  }
  wakeup.wait();
  std::lock_guard lock(mu_);
  sleepers_.erase(std::find(sleepers_.begin(), sleepers_.end(), &wakeup));
}

void FakeClock::advance(Duration d) {
  // mu_ is held while notifying so a sleeper cannot unregister (and its Wakeup die) meanwhile.
  std::lock_guard lock(mu_);
  now_ += d;
  for (Wakeup* w : sleepers_)
    w->notify();
}

size_t FakeClock::sleepers() const {
  std::lock_guard lock(mu_);
  return sleepers_.size();
}

Clock::Duration ItemExponentialFailureRateLimiter::when(const std::string& key) {
  std::lock_guard lock(mu_);
  int exp = failures_[key]++;
  // In floating point, as client-go, so a large exponent saturates at max_ instead of overflowing.
  double backoff = static_cast<double>(base_.count()) * std::pow(2.0, exp);
  if (backoff >= static_cast<double>(max_.count()))
    return max_;
  return Clock::Duration(static_cast<Clock::Duration::rep>(backoff));
}

void ItemExponentialFailureRateLimiter::forget(const std::string& key) {
  std::lock_guard lock(mu_);
  failures_.erase(key);
}

int ItemExponentialFailureRateLimiter::numRequeues(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

BucketRateLimiter::BucketRateLimiter(double qps, int burst, std::shared_ptr<Clock> clock)
    : qps_(qps), burst_(burst), clock_(std::move(clock)), tokens_(burst), last_(clock_->now()) {}

Clock::Duration BucketRateLimiter::when(const std::string& /*key*/) {
  constexpr double kNanosPerSecond = 1e9;
  std::lock_guard lock(mu_);
  Clock::TimePoint now = clock_->now();
  // As x/time/rate's advance(): refill for the time since the last reservation, up to burst.
  if (now > last_) {
    double elapsed = static_cast<double>((now - last_).count());
    tokens_ = std::min(burst_, tokens_ + elapsed * qps_ / kNanosPerSecond);
  }
  last_ = std::max(last_, now);
  tokens_ -= 1;
  if (tokens_ >= 0)
    return Clock::Duration::zero();
  // Tokens may go negative: each reservation past the bucket waits for its own future token.
  return Clock::Duration(static_cast<Clock::Duration::rep>(-tokens_ * kNanosPerSecond / qps_));
}

Clock::Duration MaxOfRateLimiter::when(const std::string& key) {
  Clock::Duration longest = Clock::Duration::zero();
  for (auto& limiter : limiters_)
    longest = std::max(longest, limiter->when(key));
  return longest;
}

void MaxOfRateLimiter::forget(const std::string& key) {
  for (auto& limiter : limiters_)
    limiter->forget(key);
}

int MaxOfRateLimiter::numRequeues(const std::string& key) {
  int most = 0;
  for (auto& limiter : limiters_)
    most = std::max(most, limiter->numRequeues(key));
  return most;
}

std::unique_ptr<RateLimiter> defaultControllerRateLimiter(std::shared_ptr<Clock> clock) {
  std::vector<std::unique_ptr<RateLimiter>> limiters;
  limiters.push_back(
      std::make_unique<ItemExponentialFailureRateLimiter>(kDefaultBaseDelay, kDefaultMaxDelay));
  limiters.push_back(
      std::make_unique<BucketRateLimiter>(kDefaultQps, kDefaultBurst, std::move(clock)));
  return std::make_unique<MaxOfRateLimiter>(std::move(limiters));
}

WorkQueue::WorkQueue(WorkQueueOptions options)
    : clock_(options.clock ? std::move(options.clock) : steadyClock()),
      limiter_(options.rateLimiter ? std::move(options.rateLimiter)
                                   : defaultControllerRateLimiter(clock_)),
      metrics_(std::move(options.metrics)) {
  if (metrics_)
    metrics_->setInFlightProbe([this] {
      std::lock_guard lock(mu_);
      WorkQueueMetrics::InFlight inFlight;
      Clock::TimePoint now = clock_->now();
      for (const auto& [key, since] : processingSince_) {
        double seconds = std::chrono::duration<double>(now - since).count();
        inFlight.unfinishedSeconds += seconds;
        inFlight.longestRunningSeconds = std::max(inFlight.longestRunningSeconds, seconds);
      }
      return inFlight;
    });
  delayThread_ = std::thread([this] { delayLoop(); });
}

WorkQueue::~WorkQueue() {
  if (metrics_)
    metrics_->setInFlightProbe(nullptr);
  shutDown();
  delayThread_.join();
}

void WorkQueue::add(std::string key) {
  std::lock_guard lock(mu_);
  addLocked(std::move(key));
}

void WorkQueue::addLocked(std::string key) {
  if (shuttingDown_ || dirty_.contains(key))
    return;
  dirty_.insert(key);
  if (metrics_) {
    metrics_->added();
    addedAt_.try_emplace(key, clock_->now());
  }
  // In flight: done() queues it, so no second worker gets it meanwhile.
  if (processing_.contains(key))
    return;
  queue_.push_back(std::move(key));
  ready_.notify_one();
}

std::optional<std::string> WorkQueue::get() {
  std::unique_lock lock(mu_);
  ready_.wait(lock, [this] { return !queue_.empty() || shuttingDown_; });
  if (queue_.empty() || (shuttingDown_ && !drain_))
    return std::nullopt;
  std::string key = std::move(queue_.front());
  queue_.pop_front();
  processing_.insert(key);
  dirty_.erase(key);
  if (metrics_) {
    Clock::TimePoint now = clock_->now();
    if (auto it = addedAt_.find(key); it != addedAt_.end()) {
      metrics_->taken(std::chrono::duration<double>(now - it->second).count());
      addedAt_.erase(it);
    }
    processingSince_[key] = now;
  }
  return key;
}

void WorkQueue::done(const std::string& key) {
  std::lock_guard lock(mu_);
  processing_.erase(key);
  if (metrics_) {
    if (auto it = processingSince_.find(key); it != processingSince_.end()) {
      metrics_->finished(std::chrono::duration<double>(clock_->now() - it->second).count());
      processingSince_.erase(it);
    }
  }
  if (dirty_.contains(key)) {
    queue_.push_back(key);
    ready_.notify_one();
  } else if (processing_.empty() && queue_.empty()) {
    drained_.notify_all();
  }
}

void WorkQueue::addAfter(std::string key, Clock::Duration delay) {
  std::lock_guard lock(mu_);
  if (shuttingDown_)
    return;
  if (metrics_)
    metrics_->retried();
  if (delay <= Clock::Duration::zero()) {
    addLocked(std::move(key));
    return;
  }
  Clock::TimePoint deadline = clock_->now() + delay;
  auto known = waitingByKey_.find(key);
  if (known != waitingByKey_.end()) {
    if (known->second->first.first <= deadline)
      return; // already due sooner: the earlier deadline wins
    waiting_.erase(known->second);
    waitingByKey_.erase(known);
  }
  auto it = waiting_.emplace(std::pair(deadline, arrivals_++), key).first;
  waitingByKey_.emplace(std::move(key), it);
  if (it == waiting_.begin())
    wakeup_.notify(); // the delay thread sleeps until a later deadline
}

void WorkQueue::addRateLimited(std::string key) {
  Clock::Duration delay = limiter_->when(key);
  addAfter(std::move(key), delay);
}

void WorkQueue::forget(const std::string& key) {
  limiter_->forget(key);
}

int WorkQueue::numRequeues(const std::string& key) {
  return limiter_->numRequeues(key);
}

size_t WorkQueue::len() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

bool WorkQueue::shuttingDown() const {
  std::lock_guard lock(mu_);
  return shuttingDown_;
}

void WorkQueue::shutDown() {
  {
    std::lock_guard lock(mu_);
    shuttingDown_ = true;
    drain_ = false;
    waiting_.clear();
    waitingByKey_.clear();
  }
  ready_.notify_all();
  drained_.notify_all();
  wakeup_.notify();
}

void WorkQueue::shutDownWithDrain() {
  std::unique_lock lock(mu_);
  // After a plain shutDown() the queued keys are abandoned already; draining would revive them.
  if (!shuttingDown_)
    drain_ = true;
  shuttingDown_ = true;
  waiting_.clear();
  waitingByKey_.clear();
  ready_.notify_all();
  wakeup_.notify();
  drained_.wait(lock, [this] { return (processing_.empty() && queue_.empty()) || !drain_; });
}

void WorkQueue::delayLoop() {
  for (;;) {
    Clock::TimePoint next = Clock::TimePoint::max();
    {
      std::lock_guard lock(mu_);
      if (shuttingDown_)
        return;
      Clock::TimePoint now = clock_->now();
      while (!waiting_.empty() && waiting_.begin()->first.first <= now) {
        auto first = waiting_.begin();
        waitingByKey_.erase(first->second);
        addLocked(std::move(first->second));
        waiting_.erase(first);
      }
      if (!waiting_.empty())
        next = waiting_.begin()->first.first;
    }
    clock_->sleepUntil(next, wakeup_);
  }
}

} // namespace bpfchain::k8s
