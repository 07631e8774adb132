// The operator's generic reconcile loop (operator/reconcile_loop.h): errors are retried with
// the queue's backoff, a terminal error is not, a requeue comes back after its delay, and each
// key goes to the reconciler of its kind. Time is a FakeClock.
#include <chrono>
#include <gtest/gtest.h>
#include <thread>

#include "operator/reconcile_loop.h"

using namespace bpfchain;
using namespace std::chrono_literals;

namespace {

class Scripted final : public op::Reconciler {
public:
  explicit Scripted(const char* kind) : kind_(kind) {}
  const char* kind() const override { return kind_; }
  k8s::ApiResult<op::Outcome> reconcile(const std::string& name) override {
    seen.push_back(name);
    return next;
  }
  k8s::ApiResult<op::Outcome> next = op::Outcome{};
  std::vector<std::string> seen;

private:
  const char* kind_;
};

// Waits (real time) until the queue holds `n` keys; the delay thread moves them in.
bool waitForLen(k8s::WorkQueue& q, size_t n) {
  for (int i = 0; i < 2000 && q.len() < n; ++i)
    std::this_thread::sleep_for(1ms);
  return q.len() >= n;
}

struct Fixture {
  std::shared_ptr<k8s::FakeClock> clock = std::make_shared<k8s::FakeClock>();
  k8s::WorkQueue queue{{.clock = clock}};
  op::ReconcileLoop loop{queue, nullptr};
  Scripted chains{"chain"}, nodes{"node"};
  Fixture() {
    loop.add(chains);
    loop.add(nodes);
  }
};

} // namespace

TEST(ReconcileLoop, EachKeyGoesToTheReconcilerOfItsKind) {
  Fixture f;
  f.queue.add(op::keyOf("chain", "edge"));
  f.queue.add(op::keyOf("node", "node-1"));
  f.queue.add("unknown/x"); // no reconciler: dropped, not retried
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(f.loop.processNext());
  EXPECT_EQ(f.chains.seen, std::vector<std::string>{"edge"});
  EXPECT_EQ(f.nodes.seen, std::vector<std::string>{"node-1"});
  EXPECT_EQ(f.queue.len(), 0u);
  EXPECT_EQ(f.queue.numRequeues("unknown/x"), 0);
}

TEST(ReconcileLoop, AnErrorIsRetriedWithBackoff) {
  Fixture f;
  f.chains.next = k8s::ApiError{503, "ServiceUnavailable", "try later"};
  f.queue.add("chain/edge");
  ASSERT_TRUE(f.loop.processNext());
  EXPECT_EQ(f.queue.numRequeues("chain/edge"), 1);
  f.clock->advance(1s); // past the first backoff step
  ASSERT_TRUE(waitForLen(f.queue, 1));
  f.chains.next = op::Outcome{};
  ASSERT_TRUE(f.loop.processNext());
  EXPECT_EQ(f.chains.seen.size(), 2u);
  EXPECT_EQ(f.queue.numRequeues("chain/edge"), 0); // a success forgets the failures
}

TEST(ReconcileLoop, ATerminalErrorIsNotRetried) {
  Fixture f;
  f.chains.next = op::Outcome{.terminal = "SpecInvalid: spec.nodeSelector: bad"};
  f.queue.add("chain/edge");
  ASSERT_TRUE(f.loop.processNext());
  EXPECT_EQ(f.queue.numRequeues("chain/edge"), 0);
  // Keys become ready in deadline order: had the chain been queued again within the hour, it
  // would come before the sentinel.
  f.queue.addAfter("sentinel/x", 1h);
  f.clock->advance(1h);
  ASSERT_TRUE(waitForLen(f.queue, 1));
  EXPECT_EQ(f.queue.get(), "sentinel/x");
  EXPECT_EQ(f.queue.len(), 0u);
  EXPECT_EQ(f.chains.seen.size(), 1u);
}

TEST(ReconcileLoop, ARequeueComesBackAfterItsDelay) {
  Fixture f;
  f.nodes.next = op::Outcome{.requeueAfter = 5000ms};
  f.queue.add("node/n");
  ASSERT_TRUE(f.loop.processNext());
  EXPECT_EQ(f.queue.len(), 0u);
  f.clock->advance(5s);
  ASSERT_TRUE(waitForLen(f.queue, 1));
  f.nodes.next = op::Outcome{};
  ASSERT_TRUE(f.loop.processNext());
  EXPECT_EQ(f.nodes.seen, (std::vector<std::string>{"n", "n"}));
}

TEST(ReconcileLoop, ProcessNextIsFalseOnceTheQueueShutDown) {
  Fixture f;
  f.loop.stop();
  EXPECT_FALSE(f.loop.processNext());
}
