// The BpfNodeConfig status the agent writes: the fields a chain does not have (no revision, no
// running generation, no pod) are left out, not written empty. And the forms of a spec entry.
#include <gtest/gtest.h>

#include "api/node_config_types.h"

namespace bpfchain::api {
namespace {

TEST(NodeConfigStatus, WritesEveryFieldAndLeavesOutWhatAChainDoesNotHave) {
  NodeConfigStatus s;
  s.observedGeneration = 7;
  s.agent = {"v1", "6.1.0", "", {{"tcx", true}, {"btf", false}}};
  NodeChainStatus inlineChain{"edge", 3, 0, "", "", "Failed", "VerifierRejected", "no", {}};
  inlineChain.attachments.push_back({"eth0", "xdp", "", {11, 12}});
  NodeChainStatus referenced{"pods", 2, 1, "pods-abc-2", "pods-abc-1", "Ready", "", "", {}};
  referenced.attachments.push_back({"veth1", "tc-ingress", "ns/web", {13}});
  s.chains = {inlineChain, referenced};
  s.chainCount = 2;
  s.readyCount = 1;
  s.failedCount = 1;
  s.conditions.push_back(
      {"Ready", "False", "ChainsFailed", "1 of 2 chains failed", "2026-12-05T00:00:00Z", 7});
  EXPECT_EQ(
      toJson(s).serialize(),
      R"({"agent":{"features":{"btf":false,"tcx":true},"kernel":"6.1.0","version":"v1"},)"
      R"("chainCount":2,"chains":[{"attachments":[{"hook":"xdp","interface":"eth0",)"
      R"("programIDs":[11,12]}],"generation":3,"message":"no","name":"edge","phase":"Failed",)"
      R"("reason":"VerifierRejected"},{"attachments":[{"hook":"tc-ingress","interface":"veth1",)"
      R"("pod":"ns/web","programIDs":[13]}],"generation":2,"name":"pods",)"
      R"("phase":"Ready","revision":"pods-abc-2","runningGeneration":1,)"
      R"("runningRevision":"pods-abc-1"}],"conditions":[{"lastTransitionTime":)"
      R"("2026-12-05T00:00:00Z","message":"1 of 2 chains failed","observedGeneration":7,)"
      R"("reason":"ChainsFailed","status":"False","type":"Ready"}],"failedCount":1,)"
      R"("idleCount":0,"observedGeneration":7,"readyCount":1})");
  s.agent.heartbeatTime = "2026-12-05T00:01:00Z";
  EXPECT_EQ(toJson(s).at("agent").at("heartbeatTime").as_string(), "2026-12-05T00:01:00Z");
}

TEST(NodeConfigStatus, CountsArePhasesOfTheChains) {
  NodeConfigStatus s;
  for (const char* phase : {"Ready", "Ready", "Failed", "Idle", "Applying"})
    s.chains.push_back({"c", 1, 0, "", "", phase, "", "", {}});
  s.readyCount = 9; // stale counts are replaced, not added to
  countPhases(s);
  EXPECT_EQ(s.chainCount, 5);
  EXPECT_EQ(s.readyCount, 2);
  EXPECT_EQ(s.failedCount, 1);
  EXPECT_EQ(s.idleCount, 1);
  EXPECT_EQ(readyCondition(s, "", 1).status, "False");
}

TEST(ChainEntryKind, FollowWithoutARevisionIsMembershipARevisionIsAReference) {
  auto kind = [](const char* text) { return chainEntryKind(k8s::Json::parse(text)); };
  EXPECT_EQ(kind(R"({"name":"c","follow":true})"), ChainEntryKind::Membership);
  EXPECT_EQ(kind(R"({"name":"c","follow":true,"revision":"c-1"})"), ChainEntryKind::Reference);
  EXPECT_EQ(kind(R"({"name":"c","revision":"c-1"})"), ChainEntryKind::Reference);
  EXPECT_EQ(kind(R"({"name":"c","follow":false,"hook":"xdp"})"), ChainEntryKind::Inline);
  EXPECT_EQ(kind(R"({"name":"c","hook":"xdp"})"), ChainEntryKind::Inline);
}

} // namespace
} // namespace bpfchain::api
