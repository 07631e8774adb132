// The chain planner's guarantee, checked by simulation: whatever subset of its slot updates a
// packet observes, it runs every program common to the old and new chain exactly once and no
// program twice; with all updates applied it runs exactly the desired chain.
#include <gtest/gtest.h>
#include <map>
#include <random>
#include <set>

#include "dataplane/chain_plan.h"

namespace bpfchain::dataplane {
namespace {

std::vector<ProgramKey> chain(std::initializer_list<const char*> ids, const char* digest = "v1") {
  std::vector<ProgramKey> keys;
  for (const char* id : ids)
    keys.push_back({id, digest});
  return keys;
}

// Instances in the simulation: running ones are 0..R-1, fresh ones R + desired position.
struct Simulation {
  static constexpr int kEnd = -1;
  std::vector<std::string> ids; // by instance
  std::map<int, int> next;      // instance -> next instance (or kEnd); -2 is the head
  static constexpr int kHead = -2;

  Simulation(std::span<const ProgramKey> running, std::span<const ProgramKey> desired) {
    for (const auto& p : running)
      ids.push_back(p.id);
    for (const auto& p : desired)
      ids.push_back(p.id);
    next[kHead] = running.empty() ? kEnd : 0;
    for (size_t i = 0; i < running.size(); ++i)
      next[i] = i + 1 < running.size() ? static_cast<int>(i + 1) : kEnd;
  }

  // Traverses from the head; fails the test on a cycle.
  std::vector<std::string> traverse() const {
    std::vector<std::string> seen;
    for (int at = next.at(kHead); at != kEnd; at = next.at(at)) {
      seen.push_back(ids[at]);
      if (seen.size() > ids.size() + 1) {
        ADD_FAILURE() << "cycle";
        break;
      }
    }
    return seen;
  }
};

int instanceAt(const ChainPlan& plan, size_t running, size_t position) {
  const auto& slot = plan.slots[position];
  return slot.source == SlotSource::Keep ? static_cast<int>(*slot.runningIndex)
                                         : static_cast<int>(running + position);
}

void apply(const ChainPlan& plan, size_t running, const Relink& r, Simulation& sim) {
  int successor = r.successor ? instanceAt(plan, running, *r.successor) : Simulation::kEnd;
  for (size_t j = r.begin; j < r.end; ++j)
    sim.next[instanceAt(plan, running, j)] =
        j + 1 < r.end ? instanceAt(plan, running, j + 1) : successor;
  int first = r.begin < r.end ? instanceAt(plan, running, r.begin) : successor;
  sim.next[r.predecessor ? instanceAt(plan, running, *r.predecessor) : Simulation::kHead] = first;
}

void checkEveryObservableState(std::span<const ProgramKey> running,
                               std::span<const ProgramKey> desired) {
  auto plan = planChain(running, desired);
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  std::set<std::string> inRunning, inDesired;
  for (const auto& p : running)
    inRunning.insert(p.id);
  for (const auto& p : desired)
    inDesired.insert(p.id);

  const size_t n = plan->relinks.size();
  ASSERT_LE(n, 12u);
  for (unsigned mask = 0; mask < (1u << n); ++mask) {
    Simulation sim(running, desired);
    for (size_t k = 0; k < n; ++k)
      if (mask & (1u << k))
        apply(*plan, running.size(), plan->relinks[k], sim);
    std::map<std::string, int> count;
    for (const auto& id : sim.traverse())
      ++count[id];
    for (const auto& [id, times] : count)
      EXPECT_EQ(times, 1) << id << " ran " << times << " times (mask " << mask << ")";
    for (const auto& id : inRunning) {
      if (inDesired.contains(id)) {
        EXPECT_EQ(count[id], 1) << id << " was skipped (mask " << mask << ")";
      }
    }
  }

  Simulation done(running, desired);
  for (const auto& r : plan->relinks)
    apply(*plan, running.size(), r, done);
  std::vector<std::string> want;
  for (const auto& p : desired)
    want.push_back(p.id);
  EXPECT_EQ(done.traverse(), want);
}

TEST(ChainPlan, UnchangedChainNeedsNoStep) {
  auto plan = planChain(chain({"a", "b", "c"}), chain({"a", "b", "c"}));
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(plan->unchanged());
  EXPECT_TRUE(plan->retired.empty());
  for (const auto& slot : plan->slots)
    EXPECT_EQ(slot.source, SlotSource::Keep);
}

TEST(ChainPlan, InsertIsOneStepAfterTheNewProgramPointsAtItsSuccessor) {
  auto plan = planChain(chain({"a", "c"}), chain({"a", "b", "c"}));
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->relinks.size(), 1u);
  const Relink& r = plan->relinks[0];
  EXPECT_EQ(r.predecessor, 0u);
  EXPECT_EQ(r.begin, 1u);
  EXPECT_EQ(r.end, 2u);
  EXPECT_EQ(r.successor, 2u);
  EXPECT_EQ(plan->slots[1].source, SlotSource::Load);
  EXPECT_EQ(plan->slots[1].runningIndex, std::nullopt); // a new program: nothing to carry
  EXPECT_TRUE(plan->retired.empty());
}

TEST(ChainPlan, RemoveIsOneStepThenTheProgramRetires) {
  auto plan = planChain(chain({"a", "b", "c"}), chain({"a", "c"}));
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->relinks.size(), 1u);
  EXPECT_EQ(plan->relinks[0].predecessor, 0u);
  EXPECT_EQ(plan->relinks[0].begin, plan->relinks[0].end);
  EXPECT_EQ(plan->relinks[0].successor, 1u);
  EXPECT_EQ(plan->retired, std::vector<size_t>{1});
}

TEST(ChainPlan, UpgradeLoadsTheNewVersionAndSwapsOneSlot) {
  std::vector<ProgramKey> running = chain({"a", "b", "c"});
  std::vector<ProgramKey> desired = running;
  desired[1].digest = "v2";
  auto plan = planChain(running, desired);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->relinks.size(), 1u);
  EXPECT_EQ(plan->slots[1].source, SlotSource::Load);
  // The running version's maps carry into the new one.
  EXPECT_EQ(plan->slots[1].runningIndex, 1u);
  EXPECT_EQ(plan->retired, std::vector<size_t>{1});
  checkEveryObservableState(running, desired);
}

TEST(ChainPlan, SwappedProgramsAreClonedNotRelinkedInPlace) {
  auto running = chain({"a", "b", "c", "d"});
  auto desired = chain({"a", "c", "b", "d"});
  auto plan = planChain(running, desired);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->slots[0].source, SlotSource::Keep);
  EXPECT_EQ(plan->slots[1].source, SlotSource::Clone);
  EXPECT_EQ(plan->slots[1].runningIndex, 2u);
  EXPECT_EQ(plan->slots[2].source, SlotSource::Clone);
  EXPECT_EQ(plan->slots[3].source, SlotSource::Keep);
  EXPECT_EQ(plan->relinks.size(), 1u);
  checkEveryObservableState(running, desired);
}

TEST(ChainPlan, FromAndToAnEmptyChain) {
  checkEveryObservableState({}, chain({"a", "b"}));
  checkEveryObservableState(chain({"a", "b"}), {});
  auto plan = planChain(chain({"a"}), {});
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->relinks.size(), 1u);
  EXPECT_FALSE(plan->relinks[0].predecessor.has_value()); // the head
  EXPECT_FALSE(plan->relinks[0].successor.has_value());   // the end
}

TEST(ChainPlan, RejectsDuplicateAndEmptyIds) {
  auto dup = planChain({}, chain({"a", "b", "a"}));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().message(), "program 2: id \"a\" is also program 0");
  EXPECT_FALSE(planChain({}, chain({""})).ok());
}

TEST(ChainPlan, RandomChangesKeepTheGuaranteeInEveryObservableState) {
  std::mt19937 rng(1234);
  const std::vector<std::string> pool{"a", "b", "c", "d", "e", "f", "g"};
  for (int round = 0; round < 3000; ++round) {
    auto randomChain = [&] {
      std::vector<std::string> ids = pool;
      std::shuffle(ids.begin(), ids.end(), rng);
      ids.resize(rng() % (pool.size() + 1));
      std::vector<ProgramKey> keys;
      for (const auto& id : ids)
        keys.push_back({id, rng() % 4 == 0 ? "v2" : "v1"});
      return keys;
    };
    auto running = randomChain();
    auto desired = randomChain();
    SCOPED_TRACE("round " + std::to_string(round));
    checkEveryObservableState(running, desired);
    if (::testing::Test::HasFailure())
      return;
  }
}

} // namespace
} // namespace bpfchain::dataplane
