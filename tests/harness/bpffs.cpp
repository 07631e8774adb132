#include "harness/bpffs.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <utility>

namespace bpfchain::testing {

Result<TestBpffs> TestBpffs::mount() {
  auto dir = TempDir::create("bpffs");
  if (!dir)
    return std::move(dir).error();
  TestBpffs fs(std::move(*dir));
  if (::mkdir(fs.path().c_str(), 0700) != 0)
    return systemError(errno, "mkdir " + fs.path());
  if (::mount("bpf", fs.path().c_str(), "bpf", 0, "mode=0700") != 0)
    return systemError(errno, "mount bpffs at " + fs.path());
  fs.mounted_ = true;
  return fs;
}

TestBpffs::~TestBpffs() {
  // MNT_DETACH: a program still holding a pinned object's fd must not keep the mount busy.
  if (mounted_)
    ::umount2(path().c_str(), MNT_DETACH);
}

} // namespace bpfchain::testing
