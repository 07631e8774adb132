// Reading a BpfNodeConfig's spec.chains[] entries and status.chains[] entries into types: each
// entry form, the lenient reads the operator's index uses (an older agent's status), and the
// strict reads whose errors name the field.
#include <gtest/gtest.h>

#include "api/node_config_types.h"
#include "api/published_rollout.h"

namespace bpfchain::api {
namespace {

using k8s::Json;

const std::string kDigest = "sha256:" + std::string(64, 'a');

Json reference() {
  return Json::parse(R"({"name":"edge","generation":7,"revision":"edge-3f2a9c1e-7",)"
                     R"("digest":")" +
                     kDigest + R"(","priority":50})");
}

TEST(NodeChainEntry, ReadsAReference) {
  auto e = nodeChainEntryFromJson(reference(), "spec.chains[0]");
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->kind, ChainEntryKind::Reference);
  EXPECT_EQ(e->name, "edge");
  EXPECT_EQ(e->generation, 7);
  EXPECT_EQ(e->revision, "edge-3f2a9c1e-7");
  ASSERT_TRUE(e->ref);
  EXPECT_EQ(*e->ref, (ChainRef{"edge", 7, "edge-3f2a9c1e-7", kDigest, 50}));
}

TEST(NodeChainEntry, AReferenceWithADefaultedPlacementIsRead) {
  Json entry = reference();
  entry["placement"] = Json::parse(R"({"hook":"xdp"})");
  auto e = nodeChainEntryFromJson(entry, "spec.chains[0]");
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->ref->revision, "edge-3f2a9c1e-7");
}

TEST(NodeChainEntry, ReadsAMembershipEntry) {
  auto e = nodeChainEntryFromJson(membershipEntry("pods"), "spec.chains[1]");
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->kind, ChainEntryKind::Membership);
  EXPECT_EQ(e->name, "pods");
  EXPECT_FALSE(e->generation);
  EXPECT_EQ(e->revision, "");
  EXPECT_FALSE(e->ref);
}

TEST(NodeChainEntry, AnInlineChainIsLeftToTheChainParser) {
  Json entry = Json::parse(R"({"name":"old","generation":3,"placement":{"hook":"xdp"},
                               "programs":[]})");
  auto e = nodeChainEntryFromJson(entry, "spec.chains[2]");
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->kind, ChainEntryKind::Inline);
  EXPECT_EQ(e->name, "old");
  EXPECT_EQ(e->generation, 3);
  EXPECT_FALSE(e->ref);
}

TEST(NodeChainEntry, StrictErrorsNameTheField) {
  Json badDigest = reference();
  badDigest["digest"] = Json::string("md5:00");
  auto e = nodeChainEntryFromJson(badDigest, "spec.chains[2]");
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message().find("spec.chains[2].digest"), std::string::npos)
      << e.error().message();

  Json unknown = reference();
  unknown["canary"] = Json::boolean(true);
  e = nodeChainEntryFromJson(unknown, "spec.chains[0]");
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message().find("spec.chains[0].canary"), std::string::npos)
      << e.error().message();

  e = nodeChainEntryFromJson(Json::parse(R"({"follow":true})"), "spec.chains[4]");
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message().find("spec.chains[4].name"), std::string::npos)
      << e.error().message();
}

TEST(NodeChainEntry, TheLenientReadNeverFails) {
  // What the operator's index reads of an entry it cannot run: the form and what is there.
  Json broken = Json::parse(R"({"name":7,"generation":"x","revision":"r-1"})");
  NodeChainEntry e = chainEntryOf(broken);
  EXPECT_EQ(e.kind, ChainEntryKind::Reference);
  EXPECT_EQ(e.name, "");
  EXPECT_FALSE(e.generation);
  EXPECT_EQ(e.revision, "r-1");
  EXPECT_FALSE(e.ref);
  EXPECT_EQ(chainEntryOf(Json::string("not an entry")).kind, ChainEntryKind::Inline);
}

TEST(NodeChainStatus, ReadsWhatToJsonWrites) {
  NodeConfigStatus s;
  NodeChainStatus chain{"pods", 2, 1, "pods-abc-2", "pods-abc-1", "Ready", "", "", {}};
  chain.attachments.push_back({"veth1", "tc-ingress", "ns/web", {13, 4294967295U}});
  chain.attachments.push_back({"eth0", "xdp", "", {}});
  s.chains.push_back(chain);
  Json written = toJson(s).at("chains").at(0);
  auto read = nodeChainStatusFromJson(written, "status.chains[0]");
  ASSERT_TRUE(read) << read.error().message();
  EXPECT_EQ(read->name, "pods");
  EXPECT_EQ(read->generation, 2);
  EXPECT_EQ(read->runningGeneration, 1);
  EXPECT_EQ(read->revision, "pods-abc-2");
  EXPECT_EQ(read->runningRevision, "pods-abc-1");
  EXPECT_EQ(read->phase, "Ready");
  ASSERT_EQ(read->attachments.size(), 2U);
  EXPECT_EQ(read->attachments[0].pod, "ns/web");
  EXPECT_EQ(read->attachments[0].programIds, (std::vector<uint32_t>{13, 4294967295U}));
  EXPECT_EQ(read->attachments[1].interface, "eth0");
  EXPECT_EQ(read->attachments[1].pod, "");
}

TEST(NodeChainStatus, AnOlderAgentsEntryIsRead) {
  // An agent before revisions and attachments wrote only these.
  Json old =
      Json::parse(R"({"name":"edge","generation":3,"phase":"Failed","reason":"VerifierRejected",)"
                  R"("message":"no"})");
  auto read = nodeChainStatusFromJson(old, "status.chains[0]");
  ASSERT_TRUE(read) << read.error().message();
  EXPECT_EQ(read->generation, 3);
  EXPECT_EQ(read->runningGeneration, 0);
  EXPECT_EQ(read->revision, "");
  EXPECT_TRUE(read->attachments.empty());
  EXPECT_EQ(read->reason, "VerifierRejected");

  NodeChainReport report = chainReportOf(old);
  EXPECT_EQ(report.name, "edge");
  EXPECT_EQ(report.generation, 3);
  EXPECT_EQ(report.phase, "Failed");
  EXPECT_EQ(report.reason, "VerifierRejected");
  EXPECT_EQ(report.message, "no");
  // Nothing but a name: read, with no generation.
  report = chainReportOf(Json::parse(R"({"name":"edge","phase":7})"));
  EXPECT_EQ(report.name, "edge");
  EXPECT_FALSE(report.generation);
  EXPECT_EQ(report.phase, "");
}

TEST(NodeChainStatus, StrictErrorsNameTheField) {
  auto expectError = [](const char* json, const std::string& field) {
    auto read = nodeChainStatusFromJson(Json::parse(json), "status.chains[1]");
    ASSERT_FALSE(read) << json;
    EXPECT_NE(read.error().message().find(field), std::string::npos) << read.error().message();
  };
  expectError(R"({"generation":1})", "status.chains[1].name");
  expectError(R"({"name":"a","generation":"1"})", "status.chains[1].generation");
  expectError(R"({"name":"a","runningRevision":1})", "status.chains[1].runningRevision");
  expectError(R"({"name":"a","attachments":{}})", "status.chains[1].attachments");
  expectError(R"({"name":"a","attachments":[{"interface":"eth0","hook":3}]})",
              "status.chains[1].attachments[0].hook");
  expectError(R"({"name":"a","attachments":[{},{"programIDs":[1,-2]}]})",
              "status.chains[1].attachments[1].programIDs[1]");
  expectError(R"({"name":"a","attachments":[{"programIDs":[4294967296]}]})",
              "status.chains[1].attachments[0].programIDs[0]");
  expectError(R"([1])", "status.chains[1]");
}

} // namespace
} // namespace bpfchain::api
