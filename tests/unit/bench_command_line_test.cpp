// bench/command_line.h and bench/parallel.h: a benchmark that dies unwinds its stack, so the
// owners of what it set up (control planes, netns, temporary directories) clean up, and exits 1.
#include <atomic>
#include <gtest/gtest.h>
#include <stdexcept>
#include <string>
#include <unistd.h>

#include "bench/command_line.h"
#include "bench/parallel.h"

namespace bpfchain::bench {
namespace {

const CommandLine kCl{"bench-test", ""};

// Sets a flag when it goes out of scope: a stand-in for any owner on the benchmark's stack.
struct Owner {
  bool* cleaned;
  ~Owner() { *cleaned = true; }
};

TEST(BenchCommandLine, RunReturnsTheBodysStatus) {
  EXPECT_EQ(kCl.run([] { return 0; }), 0);
  EXPECT_EQ(kCl.run([] { return 3; }), 3);
}

TEST(BenchCommandLine, DieUnwindsTheStackSaysWhyAndExitsOne) {
  bool cleaned = false;
  ::testing::internal::CaptureStderr();
  int status = kCl.run([&] {
    Owner owner{&cleaned};
    kCl.die("the operator exited");
    return 0;
  });
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(status, 1);
  EXPECT_TRUE(cleaned);
  EXPECT_EQ(err, "bench-test: the operator exited\n");
}

TEST(BenchCommandLine, OtherExceptionsAreNotTakenForADeath) {
  EXPECT_THROW(kCl.run([]() -> int { throw std::logic_error("a bug"); }), std::logic_error);
}

TEST(BenchCommandLine, RunAsRootRunsTheBodyAsRootAndRefusesOtherwise) {
  bool ran = false;
  ::testing::internal::CaptureStderr();
  int status = kCl.runAsRoot("BPF", [&] { ran = true; });
  std::string err = ::testing::internal::GetCapturedStderr();
  if (::geteuid() == 0) {
    EXPECT_EQ(status, 0);
    EXPECT_TRUE(ran);
  } else {
    EXPECT_EQ(status, 1);
    EXPECT_FALSE(ran);
    EXPECT_EQ(err, "bench-test: needs root (BPF)\n");
  }
}

TEST(BenchParallel, RunsEveryIndexOnce) {
  std::atomic<int> sum{0};
  parallel(100, 4, [&](int i) { sum += i; });
  EXPECT_EQ(sum.load(), 4950);
}

TEST(BenchParallel, ADeathInAWorkerReachesRun) {
  ::testing::internal::CaptureStderr();
  int status = kCl.run([&] {
    parallel(1000, 4, [&](int i) {
      if (i == 10)
        kCl.die("create node-10: refused");
    });
    return 0;
  });
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(status, 1);
  EXPECT_EQ(err, "bench-test: create node-10: refused\n");
}

TEST(BenchParallel, ADeathEndsTheLoop) {
  // One worker, so the order is known: indices 0..10 run, 10 dies, none after it starts.
  int ran = 0;
  EXPECT_THROW(parallel(1000, 1,
                        [&](int i) {
                          ++ran;
                          if (i == 10)
                            kCl.die("refused");
                        }),
               CommandLine::Failure);
  EXPECT_EQ(ran, 11);
}

} // namespace
} // namespace bpfchain::bench
