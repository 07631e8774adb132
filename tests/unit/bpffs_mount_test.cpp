// Where the agent mounts a bpffs for its pin root (node-agent/bpffs_mount.h).
#include <linux/magic.h>

#include <gtest/gtest.h>

#include "node-agent/bpffs_mount.h"

namespace bpfchain::agent {
namespace {

constexpr int64_t kExt4 = 0xef53;

TEST(PlanBpffs, NothingToMountWhenTheRootIsOnABpffs) {
  auto plan = planBpffs("/sys/fs/bpf/bpfchain", {"/sys/fs/bpf", BPF_FS_MAGIC, true});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->mountPoint, "");
  plan = planBpffs("/sys/fs/bpf/bpfchain", {"/sys/fs/bpf/bpfchain", BPF_FS_MAGIC, false});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->mountPoint, "");
}

TEST(PlanBpffs, MountsOnSysfsEmptyMountPointWhereMkdirIsRefused) {
  auto plan = planBpffs("/sys/fs/bpf/bpfchain", {"/sys/fs/bpf", SYSFS_MAGIC, true});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->mountPoint, "/sys/fs/bpf");
}

TEST(PlanBpffs, NeverCoversAPopulatedPartOfSysfs) {
  auto plan = planBpffs("/sys/fs/pins", {"/sys/fs", SYSFS_MAGIC, false});
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.error().message().find("--bpffs /sys/fs/pins"), std::string::npos);
  EXPECT_NE(plan.error().message().find("/sys/fs is on sysfs"), std::string::npos);
}

TEST(PlanBpffs, MountsOnTheRootItselfElsewhere) {
  auto plan = planBpffs("/run/bpfchain/pins", {"/run", kExt4, false});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->mountPoint, "/run/bpfchain/pins");
  plan = planBpffs("/run/pins", {"/run/pins", kExt4, true});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->mountPoint, "/run/pins");
}

} // namespace
} // namespace bpfchain::agent
