// Cluster mode's chain references resolved into the agent's one model (chain_revisions.h): a
// reference runs only the revision it names, and one that does not resolve fails alone, with
// the reason of its kind and its last good revision still running.
#include <gtest/gtest.h>

#include "api/chain_ref.h"
#include "api/published_rollout.h"
#include "api/resources.h"
#include "node-agent/chain_revisions.h"

using namespace bpfchain;
using namespace bpfchain::agent;
using k8s::Json;

namespace {

const char* kSha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

// A BpfChain spec as the operator copies it into a revision (nodeSelector and rollout too).
Json chainSpec(const std::string& entry) {
  Json spec = Json::parse(R"({"hook":"xdp","priority":50,"interfaces":{"names":["eth0"]},
    "nodeSelector":{"matchLabels":{"role":"edge"}},"rollout":{"maxUnavailable":1},
    "programs":[{"name":"counter","package":{"url":"file:///p.tar.gz","sha256":")" +
                          std::string(kSha) + R"("}}]})");
  spec["programs"][0]["entry"] = Json::string(entry);
  return spec;
}

Json revision(const std::string& chain, int64_t generation, const Json& data) {
  Json r = Json::object();
  r["apiVersion"] = Json::string("apps/v1");
  r["kind"] = Json::string("ControllerRevision");
  r["metadata"]["name"] = Json::string(api::revisionName(chain, "3f2a9c1e-aaaa", generation));
  r["metadata"]["namespace"] = Json::string("bpfchain-system");
  r["metadata"]["labels"][api::kChainLabel] = Json::string(chain);
  r["revision"] = Json::number(generation);
  r["data"] = data;
  return r;
}

api::ChainRef refTo(const std::string& chain, int64_t generation, const Json& data) {
  return {chain, generation, api::revisionName(chain, "3f2a9c1e-aaaa", generation),
          api::specDigest(data), 50};
}

Json specOf(const std::vector<Json>& entries) {
  Json spec = Json::object();
  spec["chains"] = Json::array();
  for (size_t i = 0; i < entries.size(); ++i)
    spec["chains"][i] = entries[i];
  return spec;
}

// A lookup answering from `store` by revision name, else with `missing` (kind + message).
RevisionLookup lookupIn(const std::map<std::string, Json>& store,
                        const std::string& missing = "404 NotFound: not found") {
  return [store, missing](const api::ChainRef& ref) -> Result<std::vector<Json>> {
    if (auto it = store.find(ref.revision); it != store.end())
      return std::vector<Json>{it->second};
    return Error(ErrorKind::RevisionUnavailable, 0,
                 "ControllerRevision bpfchain-system/" + ref.revision + ": " + missing);
  };
}

LastResolved nothingKept() {
  return [](const std::string&) -> std::optional<Json> { return std::nullopt; };
}

const InvalidChain* invalidNamed(const NodeSpec& spec, const std::string& name) {
  for (const auto& bad : spec.invalid)
    if (bad.name == name)
      return &bad;
  return nullptr;
}

const ChainDecl* chainNamed(const NodeSpec& spec, const std::string& name) {
  for (const auto& c : spec.chains)
    if (c.name == name)
      return &c;
  return nullptr;
}

TEST(ChainRevisions, AReferenceRunsItsRevisionsSpecUnderItsNameAndGeneration) {
  Json data = chainSpec("xdp_count");
  api::ChainRef ref = refTo("edge", 7, data);
  auto r = resolveNodeSpec(specOf({api::toJson(ref)}), "node n1",
                           lookupIn({{ref.revision, revision("edge", 7, data)}}), nothingKept());
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->spec.chains.size(), 1u);
  EXPECT_TRUE(r->spec.invalid.empty());
  const ChainDecl& c = r->spec.chains[0];
  EXPECT_EQ(c.name, "edge");
  EXPECT_EQ(c.generation, 7);
  EXPECT_EQ(c.revision, ref.revision);
  EXPECT_EQ(c.priority, 50);
  EXPECT_EQ(c.hook, dataplane::Hook::Xdp);
  ASSERT_EQ(c.programs.size(), 1u);
  EXPECT_EQ(c.programs[0].entry, "xdp_count");
  EXPECT_TRUE(c.interfaces && c.interfaces->matches("eth0"));
  ASSERT_TRUE(r->revisions.contains("edge"));
  EXPECT_EQ(k8s::nameOf(r->revisions.at("edge")), ref.revision);
}

TEST(ChainRevisions, InlineChainsAreParsedAsTheyAreBesideReferences) {
  Json data = chainSpec("xdp_count");
  api::ChainRef ref = refTo("edge", 2, data);
  Json inlineChain = Json::parse(R"({"name":"local","generation":4,"hook":"tc-ingress",
    "interfaces":{"names":["eth1"]},"programs":[{"name":"p","package":{"url":"file:///q",
    "sha256":")" + std::string(kSha) +
                                 R"("}}]})");
  int lookups = 0;
  auto counting = [&](const api::ChainRef& r) -> Result<std::vector<Json>> {
    ++lookups;
    return lookupIn({{ref.revision, revision("edge", 2, data)}})(r);
  };
  auto r =
      resolveNodeSpec(specOf({inlineChain, api::toJson(ref)}), "node n1", counting, nothingKept());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(lookups, 1); // the inline chain is not looked up
  const ChainDecl* local = chainNamed(r->spec, "local");
  ASSERT_NE(local, nullptr);
  EXPECT_EQ(local->generation, 4);
  EXPECT_EQ(local->revision, "");
  EXPECT_EQ(local->hook, dataplane::Hook::TcIngress);
  EXPECT_FALSE(r->revisions.contains("local"));
  ASSERT_NE(chainNamed(r->spec, "edge"), nullptr);
}

TEST(ChainRevisions, AnUnreadableRevisionFailsItsChainAloneNamingTheRevision) {
  Json data = chainSpec("xdp_count");
  api::ChainRef ok = refTo("edge", 1, data);
  api::ChainRef missing = refTo("other", 3, data);
  for (const std::string why :
       {"404 NotFound: controllerrevisions.apps \"x\" not found",
        "403 Forbidden: controllerrevisions.apps is forbidden: User \"system:serviceaccount:ns:a\" "
        "cannot get resource \"controllerrevisions\"",
        "the request timed out"}) {
    auto r =
        resolveNodeSpec(specOf({api::toJson(ok), api::toJson(missing)}), "node n1",
                        lookupIn({{ok.revision, revision("edge", 1, data)}}, why), nothingKept());
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_NE(chainNamed(r->spec, "edge"), nullptr) << "the other chain still rolls out";
    EXPECT_EQ(chainNamed(r->spec, "other"), nullptr);
    const InvalidChain* bad = invalidNamed(r->spec, "other");
    ASSERT_NE(bad, nullptr);
    EXPECT_EQ(bad->kind, ErrorKind::RevisionUnavailable);
    EXPECT_EQ(bad->generation, 3);
    EXPECT_EQ(bad->revision, missing.revision);
    EXPECT_NE(bad->message.find("bpfchain-system/" + missing.revision), std::string::npos)
        << bad->message;
    EXPECT_NE(bad->message.find(why), std::string::npos) << bad->message;
    EXPECT_STREQ(reasonName(bad->kind), "RevisionUnavailable");
  }
}

TEST(ChainRevisions, ARevisionWhoseDataIsNotTheDigestsIsRefused) {
  Json data = chainSpec("xdp_count");
  api::ChainRef ref = refTo("edge", 5, data);
  Json edited = revision("edge", 5, chainSpec("xdp_other")); // changed after the reference
  auto r = resolveNodeSpec(specOf({api::toJson(ref)}), "node n1",
                           lookupIn({{ref.revision, edited}}), nothingKept());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_TRUE(r->spec.chains.empty()); // never runs a spec whose digest does not match
  const InvalidChain* bad = invalidNamed(r->spec, "edge");
  ASSERT_NE(bad, nullptr);
  EXPECT_EQ(bad->kind, ErrorKind::DigestMismatch);
  EXPECT_EQ(bad->revision, ref.revision);
  EXPECT_NE(bad->message.find(ref.digest), std::string::npos) << bad->message;
  EXPECT_NE(bad->message.find(api::specDigest(chainSpec("xdp_other"))), std::string::npos);
  EXPECT_FALSE(r->revisions.contains("edge"));
}

TEST(ChainRevisions, ARevisionOfAnotherGenerationOrChainIsRefused) {
  Json data = chainSpec("xdp_count");
  api::ChainRef ref = refTo("edge", 5, data);
  for (const Json& wrong : {revision("edge", 4, data), revision("core", 5, data)}) {
    auto r = resolveNodeSpec(specOf({api::toJson(ref)}), "node n1",
                             lookupIn({{ref.revision, wrong}}), nothingKept());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_TRUE(r->spec.chains.empty());
    const InvalidChain* bad = invalidNamed(r->spec, "edge");
    ASSERT_NE(bad, nullptr);
    EXPECT_EQ(bad->kind, ErrorKind::DigestMismatch) << bad->message;
  }
  // A copy that is not a chain revision at all (no data) is not the one named either.
  Json broken = revision("edge", 5, data);
  broken.erase("data");
  auto r = resolveNodeSpec(specOf({api::toJson(ref)}), "node n1",
                           lookupIn({{ref.revision, broken}}), nothingKept());
  ASSERT_TRUE(r);
  ASSERT_NE(invalidNamed(r->spec, "edge"), nullptr);
  EXPECT_EQ(invalidNamed(r->spec, "edge")->kind, ErrorKind::DigestMismatch);
}

TEST(ChainRevisions, TheFirstCopyThatMatchesIsRun) {
  // The API server's copy was edited by hand; the copy kept on the node is the one named.
  Json data = chainSpec("xdp_count");
  api::ChainRef ref = refTo("edge", 5, data);
  auto lookup = [&](const api::ChainRef&) -> Result<std::vector<Json>> {
    return std::vector<Json>{revision("edge", 5, chainSpec("xdp_other")),
                             revision("edge", 5, data)};
  };
  auto r = resolveNodeSpec(specOf({api::toJson(ref)}), "node n1", lookup, nothingKept());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->spec.chains.size(), 1u);
  EXPECT_EQ(r->spec.chains[0].programs[0].entry, "xdp_count");
  EXPECT_TRUE(r->spec.invalid.empty());
}

TEST(ChainRevisions, AnUnresolvedChainKeepsItsLastResolvedRevisionRunning) {
  Json v1 = chainSpec("xdp_v1");
  Json v2 = chainSpec("xdp_v2");
  api::ChainRef target = refTo("edge", 2, v2);
  auto kept = [&](const std::string& chain) -> std::optional<Json> {
    if (chain == "edge")
      return revision("edge", 1, v1);
    return std::nullopt;
  };
  auto r = resolveNodeSpec(specOf({api::toJson(target)}), "node n1", lookupIn({}), kept);
  ASSERT_TRUE(r) << r.error().message();
  const InvalidChain* bad = invalidNamed(r->spec, "edge");
  ASSERT_NE(bad, nullptr);
  EXPECT_EQ(bad->generation, 2);
  const ChainDecl* running = chainNamed(r->spec, "edge");
  ASSERT_NE(running, nullptr) << "the kept revision is the chain's last good declaration";
  EXPECT_EQ(running->generation, 1);
  EXPECT_EQ(running->revision, api::revisionName("edge", "3f2a9c1e-aaaa", 1));
  EXPECT_EQ(running->programs[0].entry, "xdp_v1");
  EXPECT_FALSE(r->revisions.contains("edge")); // nothing new to keep
}

TEST(ChainRevisions, DataThatDoesNotParseIsSpecInvalidWithItsRevision) {
  Json data = chainSpec("xdp_count");
  data["programs"][0]["newField"] = Json::boolean(true); // a newer CRD than this agent's
  api::ChainRef ref = refTo("edge", 3, data);
  auto r = resolveNodeSpec(specOf({api::toJson(ref)}), "node n1",
                           lookupIn({{ref.revision, revision("edge", 3, data)}}), nothingKept());
  ASSERT_TRUE(r);
  const InvalidChain* bad = invalidNamed(r->spec, "edge");
  ASSERT_NE(bad, nullptr);
  EXPECT_EQ(bad->kind, ErrorKind::SpecInvalid);
  EXPECT_EQ(bad->generation, 3);
  EXPECT_EQ(bad->revision, ref.revision);
  EXPECT_NE(bad->message.find("newField"), std::string::npos) << bad->message;
}

TEST(ChainRevisions, AMalformedReferenceFailsAloneAndANameUsedTwiceFailsTheSpec) {
  Json data = chainSpec("xdp_count");
  api::ChainRef ok = refTo("edge", 1, data);
  Json bad = api::toJson(refTo("newer", 1, data));
  bad["wave"] = Json::number(3);
  auto r = resolveNodeSpec(specOf({api::toJson(ok), bad}), "node n1",
                           lookupIn({{ok.revision, revision("edge", 1, data)}}), nothingKept());
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_NE(chainNamed(r->spec, "edge"), nullptr);
  ASSERT_NE(invalidNamed(r->spec, "newer"), nullptr);
  EXPECT_EQ(invalidNamed(r->spec, "newer")->kind, ErrorKind::SpecInvalid);
  EXPECT_NE(invalidNamed(r->spec, "newer")->message.find("chains[1].wave"), std::string::npos);

  // What the API server's defaults put into every entry of the shared schema is not refused.
  Json defaulted = api::toJson(ok);
  defaulted["placement"] = Json::string("first");
  auto withDefault =
      resolveNodeSpec(specOf({defaulted}), "node n1",
                      lookupIn({{ok.revision, revision("edge", 1, data)}}), nothingKept());
  ASSERT_TRUE(withDefault);
  EXPECT_TRUE(withDefault->spec.invalid.empty());
  ASSERT_EQ(withDefault->spec.chains.size(), 1u);

  auto twice = resolveNodeSpec(specOf({api::toJson(ok), api::toJson(refTo("edge", 2, data))}),
                               "node n1", lookupIn({}), nothingKept());
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().message().find("chains[1].name"), std::string::npos);
}

TEST(ChainRevisions, ASpecWithoutReferencesIsParseNodeSpecs) {
  auto empty = resolveNodeSpec(Json::object(), "node n1", lookupIn({}), nothingKept());
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->spec.chains.empty());
  auto wrong =
      resolveNodeSpec(Json::parse(R"({"chainz":[]})"), "node n1", lookupIn({}), nothingKept());
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message().find("chainz"), std::string::npos);
}

} // namespace

namespace {

using Published = std::map<std::string, std::optional<api::PublishedRollout>>;

// A lookup of published rollouts answering from `chains`; a chain not in it cannot be read.
PublishedLookup publishedIn(const Published& chains) {
  return [chains](const std::string& chain) -> Result<std::optional<api::PublishedRollout>> {
    if (auto it = chains.find(chain); it != chains.end())
      return it->second;
    return Error(ErrorKind::RevisionUnavailable, 0, "BpfChain " + chain + ": 403 Forbidden");
  };
}

} // namespace

// A membership entry runs what the chain's published rollout gives this node: the target up
// to the partition, stable past it, nothing when there is no stable generation.
TEST(ChainRevisions, AMembershipEntryFollowsThePublishedRolloutByNodeName) {
  Json one = chainSpec("xdp_one"), two = chainSpec("xdp_two");
  std::map<std::string, Json> store{{refTo("edge", 1, one).revision, revision("edge", 1, one)},
                                    {refTo("edge", 2, two).revision, revision("edge", 2, two)}};
  api::PublishedRollout rollout{refTo("edge", 1, one), {{refTo("edge", 2, two), "node-b"}}};
  Json spec = specOf({api::membershipEntry("edge")});
  for (const auto& [node, generation, entry] :
       {std::tuple{"node-a", 2, "xdp_two"}, {"node-b", 2, "xdp_two"}, {"node-c", 1, "xdp_one"}}) {
    auto resolved = resolveNodeSpec(spec, "test", lookupIn(store), nothingKept(), node,
                                    publishedIn({{"edge", rollout}}));
    ASSERT_TRUE(resolved) << resolved.error().message();
    const ChainDecl* c = chainNamed(resolved->spec, "edge");
    ASSERT_NE(c, nullptr) << node;
    EXPECT_EQ(c->generation, generation) << node;
    EXPECT_EQ(c->revision, refTo("edge", generation, generation == 1 ? one : two).revision);
    EXPECT_EQ(c->programs.at(0).entry, entry);
    EXPECT_TRUE(resolved->spec.invalid.empty());
  }
  rollout.stable.reset();
  auto absent = resolveNodeSpec(spec, "test", lookupIn(store), nothingKept(), "node-c",
                                publishedIn({{"edge", rollout}}));
  ASSERT_TRUE(absent);
  EXPECT_TRUE(absent->spec.chains.empty());
  EXPECT_TRUE(absent->spec.invalid.empty());
}

// A chain that cannot be read fails alone and keeps its last resolved revision running; one
// that has published nothing yet keeps it too, without a failure.
TEST(ChainRevisions, AMembershipWhoseChainCannotBeReadKeepsItsLastRevision) {
  Json one = chainSpec("xdp_one");
  LastResolved kept = [&](const std::string& chain) -> std::optional<Json> {
    if (chain == "edge")
      return revision("edge", 1, one);
    return std::nullopt;
  };
  Json spec = specOf({api::membershipEntry("edge")});
  auto unreadable = resolveNodeSpec(spec, "test", lookupIn({}), kept, "node-a", publishedIn({}));
  ASSERT_TRUE(unreadable);
  const InvalidChain* bad = invalidNamed(unreadable->spec, "edge");
  ASSERT_NE(bad, nullptr);
  EXPECT_EQ(bad->kind, ErrorKind::RevisionUnavailable);
  EXPECT_NE(bad->message.find("403 Forbidden"), std::string::npos) << bad->message;
  const ChainDecl* running = chainNamed(unreadable->spec, "edge");
  ASSERT_NE(running, nullptr);
  EXPECT_EQ(running->generation, 1);

  auto unpublished = resolveNodeSpec(spec, "test", lookupIn({}), kept, "node-a",
                                     publishedIn({{"edge", std::nullopt}}));
  ASSERT_TRUE(unpublished);
  EXPECT_TRUE(unpublished->spec.invalid.empty());
  ASSERT_NE(chainNamed(unpublished->spec, "edge"), nullptr);
  auto nothing = resolveNodeSpec(spec, "test", lookupIn({}), nothingKept(), "node-a",
                                 publishedIn({{"edge", std::nullopt}}));
  ASSERT_TRUE(nothing);
  EXPECT_TRUE(nothing->spec.chains.empty());
  EXPECT_TRUE(nothing->spec.invalid.empty());
}
