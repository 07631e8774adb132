// A private bpffs instance for one test: pins made under it are invisible to other tests and
// to the host's /sys/fs/bpf, and disappear with the mount.
#pragma once

#include <string>
#include <utility>

#include "harness/resources.h"
#include "system/result.h"

namespace bpfchain::testing {

class TestBpffs {
public:
  static Result<TestBpffs> mount();
  ~TestBpffs();
  TestBpffs(TestBpffs&& other) noexcept
      : dir_(std::move(other.dir_)), mounted_(std::exchange(other.mounted_, false)) {}
  TestBpffs& operator=(TestBpffs&&) = delete;

  // The mount point.
  std::string path() const { return dir_.path() + "/bpffs"; }

private:
  explicit TestBpffs(TempDir dir) : dir_(std::move(dir)) {}
  TempDir dir_;
  bool mounted_ = false;
};

} // namespace bpfchain::testing
