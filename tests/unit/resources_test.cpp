#include <filesystem>
#include <gtest/gtest.h>
#include <unistd.h>

#include "harness/resources.h"

namespace bpfchain::testing {
namespace {

TEST(TestResources, NamesCarryTheOwnerPid) {
  std::string a = uniqueResourceName("ns");
  std::string b = uniqueResourceName("ns");
  EXPECT_NE(a, b);
  ASSERT_TRUE(resourceOwner(a).has_value());
  EXPECT_EQ(*resourceOwner(a), ::getpid());
}

TEST(TestResources, ForeignNamesHaveNoOwner) {
  EXPECT_FALSE(resourceOwner("cni-1234-5678").has_value());
  EXPECT_FALSE(resourceOwner("bpfct-").has_value());
  EXPECT_FALSE(resourceOwner("bpfct-12x-ns0").has_value());
  EXPECT_FALSE(resourceOwner("bpfct-123").has_value());
  EXPECT_EQ(resourceOwner("bpfct-123-ns4"), 123);
}

TEST(TestResources, TempDirIsRemovedWithItsContents) {
  std::string path;
  {
    auto dir = TempDir::create("unit");
    ASSERT_TRUE(dir.ok()) << dir.error().message();
    path = dir->path();
    std::filesystem::create_directories(path + "/a/b");
    EXPECT_TRUE(std::filesystem::exists(path + "/a/b"));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

} // namespace
} // namespace bpfchain::testing
