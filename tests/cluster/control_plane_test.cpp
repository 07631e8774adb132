// The test bed's control plane is a real kube-apiserver: it serves CRDs and custom resources,
// enforces their schema, and the machine's kubectl talks to it through the generated kubeconfig.
#include <fstream>
#include <gtest/gtest.h>

#include "harness/control_plane.h"
#include "harness/resources.h"

namespace bpfchain::testing {
namespace {

[[maybe_unused]] auto* const kControlPlane =
    ::testing::AddGlobalTestEnvironment(new ControlPlaneEnvironment);

const std::string kTestdata = BPFCHAIN_TESTDATA_DIR;

std::string run(const std::vector<std::string>& args) {
  auto r = ControlPlaneEnvironment::get().kubectl(args);
  EXPECT_TRUE(r.ok()) << r.error().message();
  return r ? r->out : "";
}

TEST(ControlPlane, AuthenticatesTheAdminClientCertificate) {
  std::string who = run({"auth", "whoami", "-o",
                         "jsonpath={.status.userInfo.username} "
                         "{.status.userInfo.groups}"});
  EXPECT_NE(who.find("admin"), std::string::npos) << who;
  EXPECT_NE(who.find("system:masters"), std::string::npos) << who;
}

TEST(ControlPlane, ServesACustomResourceThatKubectlLists) {
  run({"apply", "-f", kTestdata + "/widget-crd.yaml"});
  run({"wait", "--for=condition=Established", "--timeout=60s", "crd/widgets.testbed.bpfchain.io"});
  run({"apply", "-f", kTestdata + "/widget.yaml"});

  EXPECT_EQ(run({"get", "widgets", "-o", "jsonpath={.items[*].metadata.name}"}), "first-widget");
  std::string table = run({"get", "wdg"}); // short name and printer column
  EXPECT_NE(table.find("first-widget"), std::string::npos) << table;
  EXPECT_NE(table.find("SIZE"), std::string::npos) << table;

  run({"delete", "widget", "first-widget", "--wait=true"});
  EXPECT_EQ(run({"get", "widgets", "-o", "name"}), "");
}

TEST(ControlPlane, RejectsObjectsThatViolateTheSchema) {
  auto installed = ControlPlaneEnvironment::get().installCrds(kTestdata + "/widget-crd.yaml",
                                                              {"widgets.testbed.bpfchain.io"});
  ASSERT_TRUE(installed.ok()) << installed.error().message();
  auto dir = TempDir::create("cluster");
  ASSERT_TRUE(dir.ok()) << dir.error().message();
  std::string bad = dir->path() + "/bad-widget.yaml";
  std::ofstream(bad) << "apiVersion: testbed.bpfchain.io/v1\nkind: Widget\n"
                        "metadata: {name: bad}\nspec: {size: 0}\n";
  auto refused = runCommand(
      {"kubectl", "--kubeconfig", ControlPlaneEnvironment::get().kubeconfig(), "apply", "-f", bad});
  ASSERT_TRUE(refused.ok()) << refused.error().message();
  EXPECT_NE(refused->exitCode, 0);
  EXPECT_NE(refused->err.find("spec.size"), std::string::npos) << refused->err;
}

} // namespace
} // namespace bpfchain::testing
