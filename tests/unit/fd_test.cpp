#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "system/fd.h"

namespace bpfchain {
namespace {

bool isOpen(int fd) {
  return ::fcntl(fd, F_GETFD) != -1;
}

TEST(FD, ClosesOnDestruction) {
  int raw = -1;
  {
    FD fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    raw = fd.get();
    EXPECT_TRUE(isOpen(raw));
  }
  EXPECT_FALSE(isOpen(raw));
}

TEST(FD, MoveTransfersOwnership) {
  FD a(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int raw = a.get();
  FD b(std::move(a));
  EXPECT_FALSE(a.valid()); // NOLINT(bugprone-use-after-move): the moved-from state is the contract
  EXPECT_EQ(b.get(), raw);
  FD c;
  c = std::move(b);
  EXPECT_EQ(c.get(), raw);
  EXPECT_TRUE(isOpen(raw));
}

TEST(FD, ResetClosesThePreviousDescriptor) {
  FD fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int first = fd.get();
  fd.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  // The new descriptor is opened before the old one is closed, so the numbers differ.
  ASSERT_NE(fd.get(), first);
  EXPECT_FALSE(isOpen(first));
  EXPECT_TRUE(isOpen(fd.get()));
}

TEST(FD, ReleaseGivesUpOwnership) {
  FD fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int raw = fd.release();
  EXPECT_FALSE(fd.valid());
  EXPECT_TRUE(isOpen(raw));
  ::close(raw);
}

} // namespace
} // namespace bpfchain
