// A node's reference to a chain revision: the digest does not depend on how the API server
// spells the spec, and a reference is refused whenever the revision is not what it names.
#include <gtest/gtest.h>

#include "api/chain_ref.h"

namespace bpfchain::api {
namespace {

using k8s::Json;

ChainRevision revisionOf(const std::string& text) {
  auto r = chainRevisionFromJson(Json::parse(text));
  EXPECT_TRUE(r) << r.error().message();
  return r ? *r : ChainRevision{};
}

const char* kRevision = R"({"apiVersion":"apps/v1","kind":"ControllerRevision",
  "metadata":{"name":"edge-3f2a9c1e-7","namespace":"bpfchain-system",
    "labels":{"bpfchain.io/chain":"edge"},
    "ownerReferences":[{"apiVersion":"bpfchain.io/v1alpha1","kind":"BpfChain","name":"edge",
                        "uid":"3f2a9c1e-0000","controller":true}]},
  "revision":7,
  "data":{"hook":"xdp","priority":100,"programs":[{"name":"a","entry":"xdp_a"}]}})";

TEST(ChainRef, DigestIgnoresKeyOrderAndSpacing) {
  Json a = Json::parse(R"({"hook":"xdp","programs":[{"name":"a","entry":"x"}],"priority":100})");
  Json b = Json::parse(R"({ "priority": 100, "programs": [ {"entry": "x", "name": "a"} ],
                            "hook": "xdp" })");
  EXPECT_EQ(specDigest(a), specDigest(b));
  EXPECT_EQ(canonicalJson(b),
            R"({"hook":"xdp","priority":100,"programs":[{"entry":"x","name":"a"}]})");
  EXPECT_TRUE(specDigest(a).starts_with("sha256:"));
  EXPECT_EQ(specDigest(a).size(), 7u + 64u);
  // Order in a list is meaning (programs run in it), and so is every value.
  Json c = Json::parse(R"({"hook":"xdp","programs":[{"name":"a","entry":"y"}],"priority":100})");
  EXPECT_NE(specDigest(a), specDigest(c));
}

TEST(ChainRef, RoundTripsAndNamesTheFieldOfAnError) {
  ChainRef ref{"edge", 7, "edge-3f2a9c1e-7", "sha256:" + std::string(64, 'a'), 50};
  auto back = chainRefFromJson(toJson(ref), "spec.chains[0]");
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(*back, ref);
  EXPECT_TRUE(isReference(toJson(ref)));
  EXPECT_FALSE(isReference(Json::parse(R"({"name":"edge","hook":"xdp","programs":[]})")));

  Json bad = toJson(ref);
  bad["digest"] = Json::string("md5:abc");
  auto refused = chainRefFromJson(bad, "spec.chains[3]");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("spec.chains[3].digest"), std::string::npos);
  Json newer = toJson(ref);
  newer["wave"] = Json::number(2);
  refused = chainRefFromJson(newer, "spec.chains[0]");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("spec.chains[0].wave"), std::string::npos);
  Json noGeneration = toJson(ref);
  noGeneration.erase("generation");
  EXPECT_FALSE(chainRefFromJson(noGeneration, "x"));
}

TEST(ChainRef, ARevisionRunsOnlyWhenChainGenerationAndDigestMatch) {
  ChainRevision r = revisionOf(kRevision);
  EXPECT_EQ(r.chain, "edge");
  EXPECT_EQ(r.generation, 7);
  EXPECT_EQ(r.ownerUid, "3f2a9c1e-0000");
  ChainRef ref{"edge", 7, r.name, specDigest(r.spec), 100};
  EXPECT_EQ(mismatch(ref, r), std::nullopt);

  ChainRef otherChain = ref;
  otherChain.name = "core";
  EXPECT_TRUE(mismatch(otherChain, r));
  ChainRef otherGeneration = ref;
  otherGeneration.generation = 6;
  EXPECT_TRUE(mismatch(otherGeneration, r));

  // Edited after the operator made it (revisions are immutable by convention only).
  ChainRevision edited = r;
  edited.spec["programs"][0]["entry"] = Json::string("xdp_evil");
  auto why = mismatch(ref, edited);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("digest"), std::string::npos);
  EXPECT_NE(why->find(ref.digest), std::string::npos);
}

TEST(ChainRef, ARevisionWithoutItsLabelOrDataIsRefusedNamingIt) {
  Json noLabel = Json::parse(kRevision);
  noLabel["metadata"].erase("labels");
  auto r = chainRevisionFromJson(noLabel);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("edge-3f2a9c1e-7"), std::string::npos);
  Json noData = Json::parse(kRevision);
  noData.erase("data");
  EXPECT_FALSE(chainRevisionFromJson(noData));
}

} // namespace
} // namespace bpfchain::api
