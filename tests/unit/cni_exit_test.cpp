// decideCniExit: an uninstall removes the CNI entry, a restart or an upgrade keeps it, and no
// answer keeps it (cni_exit.h says why).
#include <gtest/gtest.h>

#include "node-agent/cni_exit.h"

namespace bpfchain::agent {
namespace {

const std::string kOwner = "bpfchain-system/bpfchain-agent";

ObjectLookup answered(int status, bool deleting = false) {
  return {status, deleting, status == 200 ? "" : "refused"};
}

TEST(CniExit, WithoutAnOwnerOnlyTheFlagRemovesTheEntry) {
  EXPECT_FALSE(decideCniExit(false, "", std::nullopt, std::nullopt).removeEntry);
  EXPECT_TRUE(decideCniExit(true, "", std::nullopt, std::nullopt).removeEntry);
  EXPECT_TRUE(decideCniExit(true, kOwner, answered(200), answered(200)).removeEntry);
}

TEST(CniExit, AnUninstallRemovesTheEntry) {
  auto gone = decideCniExit(false, kOwner, answered(404), std::nullopt);
  EXPECT_TRUE(gone.removeEntry);
  EXPECT_NE(gone.why.find("DaemonSet " + kOwner + " is gone"), std::string::npos) << gone.why;
  EXPECT_TRUE(decideCniExit(false, kOwner, answered(200, true), std::nullopt).removeEntry);
  EXPECT_TRUE(decideCniExit(false, kOwner, answered(200), answered(200, true)).removeEntry);
  // Helm deletes the ServiceAccount and RBAC after the DaemonSet.
  EXPECT_TRUE(decideCniExit(false, kOwner, answered(401), std::nullopt).removeEntry);
  EXPECT_TRUE(decideCniExit(false, kOwner, answered(403), std::nullopt).removeEntry);
}

TEST(CniExit, ARestartOrAnUpgradeKeepsTheEntry) {
  auto kept = decideCniExit(false, kOwner, answered(200), answered(200));
  EXPECT_FALSE(kept.removeEntry);
  EXPECT_NE(kept.why.find("still exists"), std::string::npos) << kept.why;
  EXPECT_FALSE(decideCniExit(false, kOwner, answered(200), std::nullopt).removeEntry);
}

TEST(CniExit, NoAnswerKeepsTheEntry) {
  auto noAnswer =
      decideCniExit(false, kOwner, ObjectLookup{0, false, "connection refused"}, std::nullopt);
  EXPECT_FALSE(noAnswer.removeEntry);
  EXPECT_NE(noAnswer.why.find("connection refused"), std::string::npos) << noAnswer.why;
  EXPECT_FALSE(decideCniExit(false, kOwner, answered(503), std::nullopt).removeEntry);
  EXPECT_FALSE(decideCniExit(false, kOwner, answered(429), std::nullopt).removeEntry);
  // The namespace's answer alone never removes: its DaemonSet still exists.
  EXPECT_FALSE(decideCniExit(false, kOwner, answered(200), answered(404)).removeEntry);
}

TEST(CniExit, OwnerIsNamespaceSlashName) {
  auto parts = splitOwner(kOwner);
  ASSERT_TRUE(parts);
  EXPECT_EQ(parts->first, "bpfchain-system");
  EXPECT_EQ(parts->second, "bpfchain-agent");
  for (const char* bad : {"", "agent", "/agent", "ns/", "a/b/c"})
    EXPECT_FALSE(splitOwner(bad)) << bad;
}

} // namespace
} // namespace bpfchain::agent
