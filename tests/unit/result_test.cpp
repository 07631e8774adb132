#include <cerrno>
#include <gtest/gtest.h>
#include <memory>

#include "system/result.h"

namespace bpfchain {
namespace {

Result<int> parsePositive(int value) {
  if (value <= 0)
    return invalidError("value " + std::to_string(value) + " is not positive");
  return value;
}

TEST(Result, HoldsValue) {
  auto r = parsePositive(7);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 7);
}

TEST(Result, HoldsErrorWithContext) {
  auto r = parsePositive(-1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), 0);
  Error wrapped = r.error().context("spec.priority");
  EXPECT_EQ(wrapped.message(), "spec.priority: value -1 is not positive");
  EXPECT_EQ(r.error().message(), "value -1 is not positive"); // the original is unchanged
}

TEST(Result, SystemErrorNamesTheCallAndErrno) {
  Error e = systemError(ENOENT, "open /nonexistent");
  EXPECT_EQ(e.code(), ENOENT);
  EXPECT_EQ(e.message(), "open /nonexistent: No such file or directory");
}

TEST(Result, MoveOnlyValues) {
  Result<std::unique_ptr<int>> r(std::make_unique<int>(3));
  ASSERT_TRUE(r);
  std::unique_ptr<int> taken = std::move(r).value();
  EXPECT_EQ(*taken, 3);
}

TEST(Result, VoidResult) {
  Result<void> good;
  EXPECT_TRUE(good.ok());
  Result<void> bad = systemError(EPERM, "bpf(BPF_PROG_LOAD)");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), EPERM);
}

} // namespace
} // namespace bpfchain
