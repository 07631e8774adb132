// The CRDs in crds/ on the real kube-apiserver: they install, `kubectl explain` teaches the
// API, valid BpfChains apply, and every invalid one is refused by the API server with a
// message naming the offending field (each file's "# expect:" line).
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <thread>

#include "harness/control_plane.h"

namespace bpfchain::testing {
namespace {

[[maybe_unused]] auto* const kControlPlane =
    ::testing::AddGlobalTestEnvironment(new ControlPlaneEnvironment);

const std::string kCrds = std::string(BPFCHAIN_SOURCE_DIR) + "/crds";
const std::string kCases = std::string(BPFCHAIN_TESTDATA_DIR) + "/bpfchains";

std::vector<std::string> yamlFiles(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".yaml")
      files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

class Crds : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    auto installed = ControlPlaneEnvironment::get().installCrds(
        kCrds, {"bpfchains.bpfchain.io", "bpfnodeconfigs.bpfchain.io"});
    ASSERT_TRUE(installed.ok()) << installed.error().message();
  }
  ControlPlane& plane() { return ControlPlaneEnvironment::get(); }
};

TEST_F(Crds, ExplainTeachesTheApi) {
  // The API server publishes a new CRD's OpenAPI schema a few seconds after Established.
  auto explained = plane().kubectl({"explain", "bpfchain.spec.programs.mapArgs.mode"});
  for (int i = 0; i < 60 && !explained.ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    explained = plane().kubectl({"explain", "bpfchain.spec.programs.mapArgs.mode"});
  }
  ASSERT_TRUE(explained.ok()) << explained.error().message();
  EXPECT_NE(explained->out.find("replace: keys not listed are deleted"), std::string::npos)
      << explained->out;
  auto nodeConfig = plane().kubectl({"explain", "bpfnodeconfig.status.chains.reason"});
  ASSERT_TRUE(nodeConfig.ok()) << nodeConfig.error().message();
  EXPECT_NE(nodeConfig->out.find("VerifierRejected"), std::string::npos);
}

TEST_F(Crds, ValidChainsApplyWithShortNamesAndColumns) {
  for (const auto& file : yamlFiles(kCases + "/valid")) {
    auto applied = plane().kubectl({"apply", "-f", file});
    EXPECT_TRUE(applied.ok()) << file << ": " << applied.error().message();
  }
  auto table = plane().kubectl({"get", "bpfc", "host-xdp"});
  ASSERT_TRUE(table.ok()) << table.error().message();
  for (const char* column : {"HOOK", "PROGRAMS", "READY", "AGE", "xdp"})
    EXPECT_NE(table->out.find(column), std::string::npos) << column << " in\n" << table->out;
  for (const char* column : {"STATUS", "IDLE"})
    EXPECT_NE(table->out.find(column), std::string::npos) << column << " in\n" << table->out;
  auto wide = plane().kubectl({"get", "bpfc", "host-xdp", "-o", "wide"});
  ASSERT_TRUE(wide.ok()) << wide.error().message();
  for (const char* column : {"PRIORITY", "GENERATION", "100"})
    EXPECT_NE(wide->out.find(column), std::string::npos) << column << " in\n" << wide->out;
  auto nodeColumns =
      plane().kubectl({"get", "crd", "bpfnodeconfigs.bpfchain.io", "-o",
                       "jsonpath={.spec.versions[0].additionalPrinterColumns[*].jsonPath}"});
  ASSERT_TRUE(nodeColumns.ok()) << nodeColumns.error().message();
  EXPECT_EQ(nodeColumns->out, ".status.chainCount .status.readyCount .status.failedCount "
                              ".status.idleCount .status.agent.version "
                              ".metadata.creationTimestamp");
  // Defaults come from the schema.
  const std::string jsonpath = "jsonpath={.spec.priority} {.spec.programs[0].enabled} "
                               "{.spec.programs[1].mapArgs[0].mode} "
                               "{.spec.programs[0].freshState} {.spec.programs[1].freshState}";
  auto defaults = plane().kubectl({"get", "bpfc", "host-xdp", "-o", jsonpath});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->out, "100 true merge false true");
  // The category lists both kinds. kubectl expands a category from its discovery cache, which
  // can predate the category by a moment after the CRDs became Established: wait (bounded)
  // until fresh discovery (`api-resources` refreshes the cache) lists both kinds under it.
  std::string inCategory;
  for (int i = 0; i < 60; ++i) {
    auto listed = plane().kubectl({"api-resources", "--categories=bpfchain-all", "-o", "name"});
    inCategory = listed.ok() ? listed->out : listed.error().message();
    if (inCategory.find("bpfchains.bpfchain.io") != std::string::npos &&
        inCategory.find("bpfnodeconfigs.bpfchain.io") != std::string::npos)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  EXPECT_NE(inCategory.find("bpfnodeconfigs.bpfchain.io"), std::string::npos) << inCategory;
  auto category = plane().kubectl({"get", "bpfchain-all", "-o", "name"});
  ASSERT_TRUE(category.ok()) << category.error().message();
  EXPECT_NE(category->out.find("bpfchain.bpfchain.io/pods-tc"), std::string::npos);
}

// The commands the docs, examples and demo tell users to type. With a category named like
// the singular ("bpfchain"), kubectl expanded it first and refused `get bpfchain NAME`.
TEST_F(Crds, TheDocumentedKubectlCommandsWork) {
  for (const auto& file : yamlFiles(kCases + "/valid"))
    ASSERT_TRUE(plane().kubectl({"apply", "-f", file}).ok()) << file;
  auto one = plane().kubectl({"get", "bpfchain", "host-xdp"});
  ASSERT_TRUE(one.ok()) << one.error().message();
  EXPECT_NE(one->out.find("host-xdp"), std::string::npos) << one->out;
  EXPECT_EQ(one->out.find("pods-tc"), std::string::npos) << one->out;
  auto described = plane().kubectl({"describe", "bpfchain", "host-xdp"});
  ASSERT_TRUE(described.ok()) << described.error().message();
  EXPECT_NE(described->out.find("Name:         host-xdp"), std::string::npos) << described->out;
  auto all = plane().kubectl({"get", "bpfchains"});
  ASSERT_TRUE(all.ok()) << all.error().message();
  for (const char* name : {"host-xdp", "pods-tc"})
    EXPECT_NE(all->out.find(name), std::string::npos) << name << " in\n" << all->out;
  auto both = plane().kubectl({"get", "bpfchains,bpfnodeconfigs"});
  ASSERT_TRUE(both.ok()) << both.error().message();
}

TEST_F(Crds, InvalidChainsAreRefusedNamingTheField) {
  auto files = yamlFiles(kCases + "/invalid");
  ASSERT_GE(files.size(), 10u);
  for (const auto& file : files) {
    std::ifstream in(file);
    std::string first;
    std::getline(in, first);
    ASSERT_EQ(first.rfind("# expect: ", 0), 0u) << file << " has no # expect: line";
    std::string expected = first.substr(10);
    auto refused = plane().kubectlOutput({"apply", "-f", file});
    ASSERT_TRUE(refused.ok()) << refused.error().message();
    EXPECT_NE(refused->exitCode, 0) << file << " was accepted";
    EXPECT_NE(refused->err.find(expected), std::string::npos)
        << file << ": expected \"" << expected << "\" in:\n"
        << refused->err;
  }
}

// Every phase the agent writes into a node's status is one the schema accepts. Idle was
// missing from the enum, so on a real node every status write of an agent with an idle chain
// (a pods chain before its first pod) was refused and the node's status went stale.
TEST_F(Crds, TheNodeStatusAcceptsEveryPhaseTheAgentWrites) {
  const std::string file = ::testing::TempDir() + "/phases-node.yaml";
  std::ofstream(file) << "apiVersion: bpfchain.io/v1alpha1\nkind: BpfNodeConfig\n"
                         "metadata: {name: phases-node}\nspec: {chains: []}\n";
  auto created = plane().kubectl({"apply", "-f", file});
  ASSERT_TRUE(created.ok()) << created.error().message();
  for (const char* phase : {"Applying", "Ready", "Idle", "Failed", "Removing"}) {
    const std::string patch =
        std::string(R"({"status":{"chains":[{"name":"c","phase":")") + phase + R"("}]}})";
    auto patched = plane().kubectlOutput({"patch", "bpfnodeconfig", "phases-node",
                                          "--subresource=status", "--type=merge", "-p", patch});
    ASSERT_TRUE(patched.ok()) << patched.error().message();
    EXPECT_EQ(patched->exitCode, 0) << phase << ": " << patched->err;
  }
}

TEST_F(Crds, GeneratedFilesAreUpToDate) {
  auto check = runCommand({"/usr/bin/python3", kCrds + "/generate.py", "--check"});
  ASSERT_TRUE(check.ok()) << check.error().message();
  EXPECT_EQ(check->exitCode, 0) << check->err;
}

} // namespace
} // namespace bpfchain::testing
