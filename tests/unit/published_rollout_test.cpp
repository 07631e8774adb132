// The one rule that says which revision a node runs when its entry follows the chain's
// published rollout (api::refFor), and the published form's round trip.
#include <gtest/gtest.h>

#include "api/published_rollout.h"

namespace bpfchain::api {
namespace {

using k8s::Json;

ChainRef ref(int64_t generation) {
  return {"edge", generation, "edge-3f2a9c1e-" + std::to_string(generation),
          "sha256:" + std::string(64, static_cast<char>('0' + generation)), 100};
}

TEST(PublishedRollout, NodesUpToThePartitionRunTheTargetTheOthersStable) {
  PublishedRollout p{ref(1), {{ref(2), "node-002"}}};
  EXPECT_EQ(refFor(p, "node-000"), ref(2));
  EXPECT_EQ(refFor(p, "node-002"), ref(2));
  EXPECT_EQ(refFor(p, "node-003"), ref(1));
  EXPECT_EQ(refFor(p, "node-0020"), ref(1)); // byte order, as the operator sorts names
  p.stable.reset(); // no generation was ever Ready everywhere: not on the others at all
  EXPECT_EQ(refFor(p, "node-003"), std::nullopt);
  EXPECT_EQ(refFor(p, "node-001"), ref(2));
  EXPECT_EQ(refFor(PublishedRollout{}, "node-001"), std::nullopt);
}

TEST(PublishedRollout, FollowedByPointsAtWhatRefForCopies) {
  PublishedRollout p{ref(1), {{ref(3), "b"}, {ref(2), "d"}}};
  for (const char* node : {"a", "b", "c", "d", "e"}) {
    const ChainRef* followed = followedBy(p, node);
    ASSERT_NE(followed, nullptr) << node;
    EXPECT_EQ(*followed, refFor(p, node)) << node;
  }
  p.stable.reset();
  EXPECT_EQ(followedBy(p, "e"), nullptr);
  EXPECT_EQ(&*followedBy(p, "a"), &p.waves[0].target); // no copy
}

TEST(PublishedRollout, TheNewestWaveDecidesAndShadowedWavesGo) {
  // Generation 3 came while 2 was halfway: 2 keeps the nodes it moved past 3's partition.
  PublishedRollout p{ref(1), {{ref(3), "b"}, {ref(2), "d"}}};
  EXPECT_EQ(refFor(p, "a"), ref(3));
  EXPECT_EQ(refFor(p, "b"), ref(3));
  EXPECT_EQ(refFor(p, "c"), ref(2));
  EXPECT_EQ(refFor(p, "e"), ref(1));
  dropShadowed(p);
  EXPECT_EQ(p.waves.size(), 2u);
  p.waves[0].partition = "d"; // 3 reached every node 2 had moved
  dropShadowed(p);
  ASSERT_EQ(p.waves.size(), 1u);
  EXPECT_EQ(p.waves[0].target, ref(3));
}

TEST(PublishedRollout, RoundTripsAndNamesTheFieldOfAnError) {
  PublishedRollout p{ref(1), {{ref(2), "n-1"}}};
  auto back = publishedFromJson(toJson(p), "status.published");
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(*back, p);
  Json bad = toJson(p);
  bad["waves"][0]["partition"] = Json::string("");
  auto refused = publishedFromJson(bad, "status.published");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("status.published.waves[0].partition"),
            std::string::npos);
  bad = toJson(p);
  bad["stable"].erase("digest");
  refused = publishedFromJson(bad, "status.published");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("status.published.stable.digest"), std::string::npos);
}

TEST(PublishedRollout, AChainWithoutStatusHasNothingPublished) {
  auto none = publishedOf(Json::parse(R"({"metadata":{"name":"edge"},"spec":{}})"));
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
  Json chain = Json::parse(R"({"metadata":{"name":"edge"},"status":{}})");
  chain["status"]["published"] = toJson(PublishedRollout{ref(4), {}});
  auto some = publishedOf(chain);
  ASSERT_TRUE(some && some->has_value());
  EXPECT_EQ((*some)->stable, ref(4));
}

TEST(PublishedRollout, EntryRefTakesReferencesAsTheyAreAndMembershipsFromTheChain) {
  PublishedRollout p{ref(1), {{ref(2), "n-1"}}};
  auto pinned = entryRef(toJson(ref(5)), "n-0", &p, "spec.chains[0]");
  ASSERT_TRUE(pinned && pinned->has_value());
  EXPECT_EQ(**pinned, ref(5));
  Json member = membershipEntry("edge");
  EXPECT_TRUE(isMembership(member));
  EXPECT_FALSE(isReference(member));
  auto moved = entryRef(member, "n-0", &p, "spec.chains[0]");
  ASSERT_TRUE(moved && moved->has_value());
  EXPECT_EQ(**moved, ref(2));
  auto stable = entryRef(member, "n-2", &p, "spec.chains[0]");
  ASSERT_TRUE(stable && stable->has_value());
  EXPECT_EQ(**stable, ref(1));
  auto unknown = entryRef(member, "n-2", nullptr, "spec.chains[0]");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().kind(), ErrorKind::RevisionUnavailable);
  auto inlineChain =
      entryRef(Json::parse(R"({"name":"edge","hook":"xdp"})"), "n-0", &p, "spec.chains[3]");
  ASSERT_FALSE(inlineChain);
  EXPECT_NE(inlineChain.error().message().find("spec.chains[3]"), std::string::npos);
}

} // namespace
} // namespace bpfchain::api
