// The work queue's client-go semantics: dedup, one worker per key, FIFO, delayed adds, the
// default rate limiter's numbers and the two shutdowns. Time is a FakeClock wherever a delay is
// checked, so the tests neither sleep for the delays nor depend on scheduling.
#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <gtest/gtest.h>
#include <mutex>
#include <random>
#include <thread>

#include "k8s/work_queue.h"

namespace bpfchain::k8s {
namespace {

using namespace std::chrono_literals;

// Waits for the delay thread to queue `n` keys. Bounded, so a bug fails instead of hanging.
bool waitForLen(const WorkQueue& q, size_t n) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (q.len() < n) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(100us);
  }
  return true;
}

bool waitForShuttingDown(const WorkQueue& q) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!q.shuttingDown()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::yield();
  }
  return true;
}

TEST(WorkQueue, WaitingKeyIsQueuedOnce) {
  WorkQueue q;
  q.add("ns/a");
  q.add("ns/a");
  q.add("b");
  q.add("ns/a");
  EXPECT_EQ(q.len(), 2u);
  EXPECT_EQ(q.get(), "ns/a");
  EXPECT_EQ(q.get(), "b");
  EXPECT_EQ(q.len(), 0u);
}

TEST(WorkQueue, DistinctKeysAreFifo) {
  WorkQueue q;
  for (const char* key : {"c", "a", "b", "d"})
    q.add(key);
  for (const char* key : {"c", "a", "b", "d"})
    EXPECT_EQ(q.get(), key);
}

TEST(WorkQueue, KeyAddedWhileProcessingIsQueuedOnDone) {
  WorkQueue q;
  q.add("a");
  ASSERT_EQ(q.get(), "a");
  q.add("a"); // marked dirty, not queued: no second worker may get it
  q.add("a");
  EXPECT_EQ(q.len(), 0u);
  q.add("b");
  EXPECT_EQ(q.get(), "b"); // the next get skips the in-flight key
  q.done("a");
  EXPECT_EQ(q.len(), 1u);
  EXPECT_EQ(q.get(), "a");
  q.done("a");
  q.done("b");
  EXPECT_EQ(q.len(), 0u);
}

TEST(WorkQueue, DoneWithoutReAddDoesNotRequeue) {
  WorkQueue q;
  q.add("a");
  ASSERT_EQ(q.get(), "a");
  q.done("a");
  EXPECT_EQ(q.len(), 0u);
  q.add("a");
  EXPECT_EQ(q.len(), 1u);
}

// 4 workers, 2 producers, 10,000 adds of 10 keys: no key is ever held by two workers, and each
// key's last get comes after its last add (an add is never lost).
TEST(WorkQueue, NoKeyHeldByTwoWorkersAndNoAddLost) {
  constexpr int kKeys = 10;
  constexpr int kAddsPerProducer = 5000;
  WorkQueue q;
  std::array<std::atomic<bool>, kKeys> held{};
  std::array<std::atomic<uint64_t>, kKeys> lastAdd{};
  std::array<std::atomic<uint64_t>, kKeys> lastGet{};
  std::atomic<uint64_t> stamp{0};
  std::atomic<int> overlaps{0};
  std::atomic<int> gets{0};
  auto raise = [](std::atomic<uint64_t>& slot, uint64_t value) {
    uint64_t seen = slot.load();
    while (seen < value && !slot.compare_exchange_weak(seen, value)) {
    }
  };

  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&, w] {
      std::minstd_rand rng(w);
      while (auto key = q.get()) {
        int i = std::stoi(*key);
        if (held[i].exchange(true))
          ++overlaps;
        raise(lastGet[i], ++stamp);
        ++gets;
        if (rng() % 4 == 0)
          std::this_thread::yield(); // hold the key a while so re-adds hit it in flight
        held[i] = false;             // before done(): then another worker may get it
        q.done(*key);
      }
    });
  }
  std::vector<std::thread> producers;
  for (int p = 0; p < 2; ++p) {
    producers.emplace_back([&, p] {
      std::minstd_rand rng(100 + p);
      for (int n = 0; n < kAddsPerProducer; ++n) {
        int i = static_cast<int>(rng() % kKeys);
        raise(lastAdd[i], ++stamp);
        q.add(std::to_string(i));
      }
    });
  }
  for (auto& t : producers)
    t.join();
  q.shutDownWithDrain(); // workers finish every queued key, then get() returns nullopt
  for (auto& t : workers)
    t.join();

  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_LE(gets.load(), 2 * kAddsPerProducer);
  for (int i = 0; i < kKeys; ++i) {
    EXPECT_GT(lastAdd[i].load(), 0u) << "key " << i;
    EXPECT_GT(lastGet[i].load(), lastAdd[i].load()) << "key " << i;
  }
  EXPECT_EQ(q.len(), 0u);
}

TEST(WorkQueueDelay, NonPositiveDelayAddsAtOnce) {
  auto clock = std::make_shared<FakeClock>();
  WorkQueue q({.clock = clock});
  q.addAfter("a", 0s);
  q.addAfter("b", -1s);
  EXPECT_EQ(q.len(), 2u);
}

TEST(WorkQueueDelay, KeysBecomeReadyInDeadlineOrder) {
  auto clock = std::make_shared<FakeClock>();
  WorkQueue q({.clock = clock});
  q.addAfter("a", 30ms);
  q.addAfter("b", 10ms);
  q.addAfter("c", 20ms);
  q.addAfter("d", 20ms); // same deadline as c, added later
  clock->advance(9ms);
  q.addAfter("sentinel", 1ms); // due at 10 ms, after b
  clock->advance(1ms);
  ASSERT_TRUE(waitForLen(q, 2));
  EXPECT_EQ(q.get(), "b");
  EXPECT_EQ(q.get(), "sentinel");
  EXPECT_EQ(q.len(), 0u); // c, d and a not yet due
  clock->advance(20ms);
  ASSERT_TRUE(waitForLen(q, 3));
  EXPECT_EQ(q.get(), "c");
  EXPECT_EQ(q.get(), "d");
  EXPECT_EQ(q.get(), "a");
}

TEST(WorkQueueDelay, EarlierDeadlineWins) {
  auto clock = std::make_shared<FakeClock>();
  WorkQueue q({.clock = clock});
  q.addAfter("a", 50ms);
  q.addAfter("a", 10ms);
  q.addAfter("sentinel", 50ms);
  clock->advance(10ms);
  ASSERT_TRUE(waitForLen(q, 1));
  EXPECT_EQ(q.get(), "a");
  q.done("a");
  // Had the 50 ms deadline survived, a (added before the sentinel) would come first again.
  clock->advance(40ms);
  ASSERT_TRUE(waitForLen(q, 1));
  EXPECT_EQ(q.get(), "sentinel");
  EXPECT_EQ(q.len(), 0u);
}

TEST(WorkQueueDelay, LaterDeadlineIsIgnored) {
  auto clock = std::make_shared<FakeClock>();
  WorkQueue q({.clock = clock});
  q.addAfter("a", 10ms);
  q.addAfter("a", 50ms);
  clock->advance(10ms);
  ASSERT_TRUE(waitForLen(q, 1));
  EXPECT_EQ(q.get(), "a");
}

TEST(WorkQueueDelay, DelayedKeyInFlightIsQueuedOnDone) {
  auto clock = std::make_shared<FakeClock>();
  WorkQueue q({.clock = clock});
  q.add("a");
  ASSERT_EQ(q.get(), "a");
  q.addAfter("a", 10ms);
  q.addAfter("sentinel", 10ms);
  clock->advance(10ms);
  ASSERT_TRUE(waitForLen(q, 1));
  EXPECT_EQ(q.get(), "sentinel");
  EXPECT_EQ(q.len(), 0u); // a is dirty, not queued
  q.done("a");
  EXPECT_EQ(q.get(), "a");
}

// With the real clock: an earlier deadline must wake the delay thread out of a long sleep.
TEST(WorkQueueDelay, SteadyClockEarlierDeadlineWakesDelayThread) {
  WorkQueue q;
  q.addAfter("late", 1h);
  std::this_thread::sleep_for(2ms); // let the delay thread fall asleep until the hour is up
  auto start = std::chrono::steady_clock::now();
  q.addAfter("soon", 20ms);
  ASSERT_TRUE(waitForLen(q, 1));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
  EXPECT_EQ(q.get(), "soon");
}

TEST(WorkQueueRateLimiter, ExponentialBackoffDoublesToCap) {
  ItemExponentialFailureRateLimiter limiter(5ms, 1000s);
  Clock::Duration expected = 5ms;
  for (int failures = 0; failures < 30; ++failures) {
    EXPECT_EQ(limiter.numRequeues("a"), failures);
    EXPECT_EQ(limiter.when("a"), std::min<Clock::Duration>(expected, 1000s)) << failures;
    expected *= 2;
  }
  // 5 ms * 2^17 = 655 s, 2^18 = 1311 s: capped from the 19th failure on, and never overflows.
  for (int i = 0; i < 2000; ++i)
    ASSERT_EQ(limiter.when("a"), 1000s);
  EXPECT_EQ(limiter.when("b"), 5ms); // per key
}

TEST(WorkQueueRateLimiter, ForgetResetsBackoff) {
  ItemExponentialFailureRateLimiter limiter(5ms, 1000s);
  EXPECT_EQ(limiter.when("a"), 5ms);
  EXPECT_EQ(limiter.when("a"), 10ms);
  EXPECT_EQ(limiter.when("a"), 20ms);
  EXPECT_EQ(limiter.numRequeues("a"), 3);
  limiter.forget("a");
  EXPECT_EQ(limiter.numRequeues("a"), 0);
  EXPECT_EQ(limiter.when("a"), 5ms);
}

TEST(WorkQueueRateLimiter, BucketDelaysAfterBurst) {
  auto clock = std::make_shared<FakeClock>();
  BucketRateLimiter bucket(10, 100, clock);
  for (int i = 0; i < 100; ++i)
    ASSERT_EQ(bucket.when("k" + std::to_string(i)), 0ns) << i;
  // Each request past the burst reserves the next future token: 100 ms apart at 10 qps.
  EXPECT_EQ(bucket.when("x"), 100ms);
  EXPECT_EQ(bucket.when("y"), 200ms);
  clock->advance(250ms); // 2.5 tokens back: the debt of 2 is paid, half a token left
  EXPECT_EQ(bucket.when("z"), 50ms);
  clock->advance(1000s); // refills to the burst, no further
  for (int i = 0; i < 100; ++i)
    ASSERT_EQ(bucket.when("k"), 0ns) << i;
  EXPECT_EQ(bucket.when("k"), 100ms);
  EXPECT_EQ(bucket.numRequeues("k"), 0);
}

TEST(WorkQueueRateLimiter, DefaultIsMaxOfBackoffAndBucket) {
  auto clock = std::make_shared<FakeClock>();
  auto limiter = defaultControllerRateLimiter(clock);
  for (int i = 0; i < 100; ++i)
    ASSERT_EQ(limiter->when("k" + std::to_string(i)), 5ms) << i; // within the burst
  EXPECT_EQ(limiter->when("k100"), 100ms);                       // the bucket's is longer
  clock->advance(1000s);
  EXPECT_EQ(limiter->when("a"), 5ms);
  EXPECT_EQ(limiter->when("a"), 10ms);
  EXPECT_EQ(limiter->numRequeues("a"), 2);
  limiter->forget("a");
  EXPECT_EQ(limiter->numRequeues("a"), 0);
  EXPECT_EQ(limiter->when("a"), 5ms);
}

TEST(WorkQueueRateLimiter, AddRateLimitedWaitsForBackoff) {
  auto clock = std::make_shared<FakeClock>();
  WorkQueue q({.clock = clock});
  q.addRateLimited("a"); // 5 ms
  EXPECT_EQ(q.numRequeues("a"), 1);
  q.addAfter("sentinel", 4ms);
  clock->advance(4ms);
  ASSERT_TRUE(waitForLen(q, 1));
  EXPECT_EQ(q.get(), "sentinel");
  EXPECT_EQ(q.len(), 0u);
  clock->advance(1ms);
  ASSERT_TRUE(waitForLen(q, 1));
  EXPECT_EQ(q.get(), "a");
  q.done("a");

  q.addRateLimited("a"); // 10 ms
  EXPECT_EQ(q.numRequeues("a"), 2);
  clock->advance(10ms);
  ASSERT_TRUE(waitForLen(q, 1));
  EXPECT_EQ(q.get(), "a");
  q.forget("a");
  EXPECT_EQ(q.numRequeues("a"), 0);
  q.done("a");
}

TEST(WorkQueueRateLimiter, CustomLimiter) {
  class Fixed final : public RateLimiter {
  public:
    Clock::Duration when(const std::string& /*key*/) override { return 7ms; }
    void forget(const std::string& /*key*/) override {}
    int numRequeues(const std::string& /*key*/) override { return 42; }
  };
  auto clock = std::make_shared<FakeClock>();
  WorkQueue q({.clock = clock, .rateLimiter = std::make_unique<Fixed>()});
  q.addRateLimited("a");
  EXPECT_EQ(q.numRequeues("a"), 42);
  clock->advance(7ms);
  ASSERT_TRUE(waitForLen(q, 1));
  EXPECT_EQ(q.get(), "a");
}

TEST(WorkQueueShutdown, GetReturnsNulloptToWaiters) {
  WorkQueue q;
  std::optional<std::string> got1 = "unset";
  std::optional<std::string> got2 = "unset";
  std::thread w1([&] { got1 = q.get(); });
  std::thread w2([&] { got2 = q.get(); });
  q.shutDown();
  w1.join();
  w2.join();
  EXPECT_EQ(got1, std::nullopt);
  EXPECT_EQ(got2, std::nullopt);
  EXPECT_TRUE(q.shuttingDown());
}

TEST(WorkQueueShutdown, ShutDownStopsAtOnceAndIgnoresAdds) {
  auto clock = std::make_shared<FakeClock>();
  WorkQueue q({.clock = clock});
  q.add("a");
  q.add("b");
  q.addAfter("c", 10ms);
  EXPECT_FALSE(q.shuttingDown());
  q.shutDown();
  EXPECT_EQ(q.get(), std::nullopt); // queued keys are abandoned
  q.add("d");
  q.addAfter("e", 0s);
  q.addRateLimited("f");
  clock->advance(1s); // the delayed c was dropped
  EXPECT_EQ(q.get(), std::nullopt);
  q.shutDown(); // idempotent
}

TEST(WorkQueueShutdown, DoneWorksAfterShutDown) {
  WorkQueue q;
  q.add("a");
  ASSERT_EQ(q.get(), "a");
  q.add("a");
  q.shutDown();
  q.done("a");
  EXPECT_EQ(q.get(), std::nullopt);
}

TEST(WorkQueueShutdown, DrainHandsOutQueuedKeysAndWaitsForDone) {
  WorkQueue q;
  q.add("a");
  q.add("b");
  ASSERT_EQ(q.get(), "a");
  std::atomic<bool> drained{false};
  std::thread drainer([&] {
    q.shutDownWithDrain();
    drained = true;
  });
  ASSERT_TRUE(waitForShuttingDown(q));
  q.add("c"); // ignored
  EXPECT_EQ(q.get(), "b");
  q.add("b"); // ignored too: b is not re-queued on done
  std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(drained);
  q.done("b");
  std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(drained); // a is still in flight
  q.done("a");
  drainer.join();
  EXPECT_TRUE(drained);
  EXPECT_EQ(q.get(), std::nullopt);
}

TEST(WorkQueueShutdown, DrainWaitsForKeysReQueuedByDone) {
  WorkQueue q;
  q.add("a");
  ASSERT_EQ(q.get(), "a");
  q.add("a"); // dirty before the shutdown
  std::atomic<bool> drained{false};
  std::thread drainer([&] {
    q.shutDownWithDrain();
    drained = true;
  });
  ASSERT_TRUE(waitForShuttingDown(q));
  q.done("a");
  EXPECT_EQ(q.get(), "a"); // handed out again while draining
  std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(drained);
  q.done("a");
  drainer.join();
  EXPECT_EQ(q.get(), std::nullopt);
}

TEST(WorkQueueShutdown, DrainWithNothingInFlightReturnsAtOnce) {
  WorkQueue q;
  q.shutDownWithDrain();
  EXPECT_TRUE(q.shuttingDown());
  EXPECT_EQ(q.get(), std::nullopt);
}

TEST(WorkQueueShutdown, ShutDownCancelsDrain) {
  WorkQueue q;
  q.add("a");
  q.add("b");
  ASSERT_EQ(q.get(), "a");
  std::thread drainer([&] { q.shutDownWithDrain(); });
  ASSERT_TRUE(waitForShuttingDown(q));
  q.shutDown();
  drainer.join(); // returns although a is in flight and b queued
  EXPECT_EQ(q.get(), std::nullopt);
  q.done("a");
}

} // namespace
} // namespace bpfchain::k8s

namespace bpfchain::k8s {
namespace {

using namespace std::chrono_literals;

// Records what a queue reports, as a Prometheus sink would count it.
class RecordingMetrics final : public WorkQueueMetrics {
public:
  void added() override {
    std::lock_guard lock(mu);
    ++adds;
    ++depth;
  }
  void taken(double seconds) override {
    std::lock_guard lock(mu);
    --depth;
    queued.push_back(seconds);
  }
  void finished(double seconds) override {
    std::lock_guard lock(mu);
    worked.push_back(seconds);
  }
  void retried() override {
    std::lock_guard lock(mu);
    ++retries;
  }
  void setInFlightProbe(std::function<InFlight()> p) override {
    std::lock_guard lock(mu);
    probe = std::move(p);
  }
  InFlight inFlight() {
    std::lock_guard lock(mu);
    return probe ? probe() : InFlight{};
  }

  std::mutex mu;
  int adds = 0, depth = 0, retries = 0;
  std::vector<double> queued, worked;
  std::function<InFlight()> probe;
};

// client-go's queueMetrics: adds and depth count keys made dirty (not duplicates), queue time
// runs from the first add to get(), work time from get() to done(), and the in-flight gauges
// come from the keys being processed when asked.
TEST(WorkQueueMetrics, ReportsAddsDepthLatenciesAndInFlightWorkAsClientGo) {
  auto clock = std::make_shared<FakeClock>();
  auto metrics = std::make_shared<RecordingMetrics>();
  {
    WorkQueue q({.clock = clock, .rateLimiter = nullptr, .metrics = metrics});
    ASSERT_TRUE(metrics->probe);
    q.add("a");
    clock->advance(1s);
    q.add("a"); // a duplicate: neither an add nor depth
    q.add("b");
    EXPECT_EQ(metrics->adds, 2);
    EXPECT_EQ(metrics->depth, 2);
    clock->advance(2s);
    auto a = q.get();
    ASSERT_EQ(a, "a");
    EXPECT_EQ(metrics->depth, 1);
    EXPECT_EQ(metrics->queued, std::vector<double>{3.0}); // from the first add
    clock->advance(4s);
    auto b = q.get();
    ASSERT_EQ(b, "b");
    EXPECT_EQ(metrics->queued, (std::vector<double>{3.0, 6.0}));
    clock->advance(1s);
    auto busy = metrics->inFlight(); // a for 5 s, b for 1 s
    EXPECT_DOUBLE_EQ(busy.unfinishedSeconds, 6.0);
    EXPECT_DOUBLE_EQ(busy.longestRunningSeconds, 5.0);
    q.done(*a);
    EXPECT_EQ(metrics->worked, std::vector<double>{5.0});
    q.addRateLimited("b"); // a retry, even while in flight
    q.addAfter("c", 0s);   // every addAfter counts, as client-go's delaying queue
    EXPECT_EQ(metrics->retries, 2);
    q.done(*b);
    EXPECT_EQ(metrics->worked, (std::vector<double>{5.0, 1.0}));
    busy = metrics->inFlight();
    EXPECT_DOUBLE_EQ(busy.unfinishedSeconds, 0.0);
    EXPECT_DOUBLE_EQ(busy.longestRunningSeconds, 0.0);
  }
  EXPECT_FALSE(metrics->probe) << "a destroyed queue must not stay probed";
}

} // namespace
} // namespace bpfchain::k8s
