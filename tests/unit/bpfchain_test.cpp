// The typed BpfChain (api/bpfchain.h): parsed once, errors naming the field; the status the
// operator writes reads back as written.
#include <gtest/gtest.h>

#include "api/bpfchain.h"

namespace bpfchain::api {
namespace {

using k8s::Json;

Json chainWith(const std::string& spec) {
  return Json::parse(R"({"apiVersion":"bpfchain.io/v1alpha1","kind":"BpfChain",
    "metadata":{"name":"edge","uid":"3f2a9c1e-1","generation":4,"resourceVersion":"17",
                "finalizers":["bpfchain.io/cleanup"]},
    "spec":)" + spec +
                     "}");
}

TEST(BpfChain, ParsesWhatTheOperatorDecidesWith) {
  auto chain = bpfChainFromJson(chainWith(R"({"hook":"xdp","priority":50,
      "nodeSelector":{"matchLabels":{"role":"edge"}},
      "rollout":{"maxUnavailable":"25%","canaryNodes":2,"pauseSeconds":30,
                 "failurePolicy":"Rollback"},
      "programs":[{"name":"a"},{"name":"b","enabled":false},{"name":"c","enabled":true}]})"));
  ASSERT_TRUE(chain) << chain.error().message();
  EXPECT_EQ(chain->metadata.name, "edge");
  EXPECT_EQ(chain->metadata.uid, "3f2a9c1e-1");
  EXPECT_EQ(chain->metadata.generation, 4);
  EXPECT_EQ(chain->metadata.resourceVersion, "17");
  EXPECT_FALSE(chain->metadata.deleting);
  EXPECT_TRUE(chain->metadata.hasFinalizer("bpfchain.io/cleanup"));
  EXPECT_EQ(chain->spec.hook, "xdp");
  EXPECT_EQ(chain->spec.priority, 50);
  EXPECT_EQ(chain->spec.nodeSelector, Json::parse(R"({"matchLabels":{"role":"edge"}})"));
  EXPECT_EQ(chain->spec.rollout.maxUnavailable, "25%");
  EXPECT_EQ(chain->spec.rollout.canaryNodes, 2);
  EXPECT_EQ(chain->spec.rollout.pauseSeconds, 30);
  EXPECT_EQ(chain->spec.rollout.failurePolicy, FailurePolicy::Rollback);
  EXPECT_EQ(chain->spec.enabledPrograms, 2);
  EXPECT_EQ(chain->spec.raw.at("hook").as_string(), "xdp"); // kept as returned
}

TEST(BpfChain, AnIntegerMaxUnavailableIsItsText) {
  auto chain = bpfChainFromJson(chainWith(R"({"rollout":{"maxUnavailable":3}})"));
  ASSERT_TRUE(chain);
  EXPECT_EQ(chain->spec.rollout.maxUnavailable, "3");
  EXPECT_EQ(chain->spec.rollout.failurePolicy, FailurePolicy::Halt); // the default
}

TEST(BpfChain, ErrorsNameTheField) {
  auto error = [](const std::string& spec) {
    auto chain = bpfChainFromJson(chainWith(spec));
    return chain ? std::string("parsed") : chain.error().message();
  };
  EXPECT_EQ(error(R"("x")"), "spec: an object is required");
  EXPECT_EQ(error(R"({"rollout":{"canaryNodes":"2"}})"),
            "spec.rollout.canaryNodes: an integer is required");
  EXPECT_NE(error(R"({"rollout":{"maxUnavailable":"a lot"}})").find("spec.rollout.maxUnavailable"),
            std::string::npos);
  EXPECT_NE(error(R"({"rollout":{"failurePolicy":"Retry"}})").find("spec.rollout.failurePolicy"),
            std::string::npos);
  EXPECT_EQ(error(R"({"priority":1.5})"), "spec.priority: an integer is required");
  auto noName = bpfChainFromJson(Json::parse(R"({"metadata":{},"spec":{}})"));
  ASSERT_FALSE(noName);
  EXPECT_NE(noName.error().message().find("metadata.name"), std::string::npos);
}

TEST(BpfChain, TheStatusReadsBackAsWritten) {
  BpfChainStatus status;
  status.observedGeneration = 4;
  status.phase = "RollingOut";
  status.nodes = {10, 6, 5, 1, 0, 0};
  status.programs = 2;
  status.failures.push_back({"node-3", "VerifierRejected", "R1 invalid mem access"});
  status.rollout.generation = 4;
  status.rollout.stableGeneration = 3;
  status.rollout.canaryReadyTime =
      std::chrono::system_clock::time_point(std::chrono::seconds(1000000000));
  status.rollout.finishedNodes = 6;
  status.rollout.failedNodes = {"node-3"};
  status.conditions.push_back(
      {"Ready", "False", "RollingOut", "5/10 nodes ready", 4, "2001-09-09T01:46:40Z"});
  Json written = statusToJson(status);
  EXPECT_EQ(written.at("ready").as_string(), "5/10");
  Json object = chainWith("{}");
  object["status"] = written;
  BpfChainStatus read = bpfChainStatusFromJson(object);
  EXPECT_EQ(read.observedGeneration, 4);
  EXPECT_EQ(read.phase, "RollingOut");
  EXPECT_EQ(read.nodes, status.nodes);
  EXPECT_EQ(read.programs, 2);
  EXPECT_EQ(read.failures, status.failures);
  EXPECT_EQ(read.rollout, status.rollout);
  EXPECT_EQ(read.conditions, status.conditions);
  ASSERT_NE(read.condition("Ready"), nullptr);
  EXPECT_EQ(read.condition("Progressing"), nullptr);
  EXPECT_TRUE(read.publishedError.empty());
  EXPECT_EQ(statusToJson(read), written);
}

TEST(BpfChain, AStatusOfTheWrongShapeIsReadAsAbsentNotAnError) {
  Json object = chainWith("{}");
  object["status"] = Json::parse(R"({"rollout":{"generation":"x","rolledBack":"yes",
      "staleNodes":[1,"node-2"]},"published":{"waves":"none"}})");
  auto chain = bpfChainFromJson(object);
  ASSERT_TRUE(chain);
  EXPECT_EQ(chain->status.rollout.generation, 0);
  EXPECT_FALSE(chain->status.rollout.rolledBack);
  EXPECT_EQ(chain->status.rollout.staleNodes, std::vector<std::string>{"node-2"});
  EXPECT_FALSE(chain->status.publishedError.empty()); // the operator logs it
}

TEST(BpfChain, ASpecThatDoesNotParseStillHasItsMetadataAndStatus) {
  // What the operator refuses with SpecInvalid: it still needs the name, the finalizers, the
  // status it wrote and status.programs from the raw spec.
  Json object = chainWith(R"({"rollout":{"canaryNodes":"2"},
      "programs":[{"name":"a"},{"name":"b","enabled":false}]})");
  object["metadata"]["deletionTimestamp"] = Json::string("2026-12-05T06:00:00Z");
  object["status"] = Json::parse(R"({"observedGeneration":3,"phase":"Ready"})");
  ASSERT_FALSE(bpfChainFromJson(object));
  BpfChain chain = bpfChainUncheckedFromJson(object);
  EXPECT_EQ(chain.metadata.name, "edge");
  EXPECT_EQ(chain.metadata.generation, 4);
  EXPECT_TRUE(chain.metadata.deleting);
  EXPECT_TRUE(chain.metadata.deletionTimestamp.has_value());
  EXPECT_TRUE(chain.metadata.hasFinalizer("bpfchain.io/cleanup"));
  EXPECT_EQ(chain.spec.enabledPrograms, 1);
  EXPECT_EQ(chain.spec.raw, object.at("spec"));
  EXPECT_EQ(chain.status.observedGeneration, 3);
  EXPECT_EQ(chain.status.phase, "Ready");
}

TEST(BpfChain, ObjectMetaOfAnyObjectIsLenient) {
  Json revision = Json::parse(R"({"metadata":{"name":"edge-3f2a9c1e-2","uid":7,
      "creationTimestamp":"2026-12-05T06:00:00Z","finalizers":["a",1]}})");
  ObjectMeta meta = objectMetaOf(revision);
  EXPECT_EQ(meta.name, "edge-3f2a9c1e-2");
  EXPECT_EQ(meta.uid, ""); // of another type: absent
  EXPECT_TRUE(meta.creationTimestamp.has_value());
  EXPECT_EQ(meta.finalizers, std::vector<std::string>{"a"});
  EXPECT_EQ(objectMetaOf(Json::parse("[]")).name, "");
}

TEST(BpfChain, PriorityOfARevisionsSpec) {
  EXPECT_EQ(priorityOf(Json::parse(R"({"priority":50})")), 50);
  EXPECT_EQ(priorityOf(Json::parse(R"({"priority":"50"})")), std::nullopt);
  EXPECT_EQ(priorityOf(Json::parse(R"({})")), std::nullopt);
}

} // namespace
} // namespace bpfchain::api
