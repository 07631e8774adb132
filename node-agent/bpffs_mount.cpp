#include "node-agent/bpffs_mount.h"

#include <linux/magic.h>

#include <fcntl.h>
#include <filesystem>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "system/fd.h"

namespace bpfchain::agent {
namespace fs = std::filesystem;

Result<BpffsPlan> planBpffs(const std::string& root, const BpffsProbe& nearest) {
  if (nearest.fsType == BPF_FS_MAGIC)
    return BpffsPlan{};
  if (nearest.fsType == SYSFS_MAGIC) {
    // sysfs refuses mkdir: only an empty directory there (a kernel-made mount point such as
    // /sys/fs/bpf) can take the mount; never cover a populated part of sysfs.
    if (!nearest.emptyDir)
      return invalidError("--bpffs " + root + ": " + nearest.path +
                          " is on sysfs and not an empty mount point; mount a bpffs at or above "
                          "the pin root, or choose a --bpffs elsewhere");
    return BpffsPlan{nearest.path};
  }
  return BpffsPlan{root};
}

namespace {

// `root` made absolute, without "." or ".." parts or a trailing '/'.
std::string normalized(const std::string& root) {
  std::error_code ec;
  std::string p = fs::absolute(root, ec).lexically_normal().string();
  while (p.size() > 1 && p.back() == '/')
    p.pop_back();
  return p;
}

// The nearest existing path at or above the absolute path `p`.
std::string nearestExisting(fs::path p) {
  std::error_code ec;
  while (!fs::exists(p, ec) && p != p.root_path())
    p = p.parent_path();
  return p.string();
}

Result<BpffsProbe> probe(const std::string& path) {
  struct statfs st {};
  if (::statfs(path.c_str(), &st) != 0)
    return systemError(errno, "statfs " + path);
  BpffsProbe out{path, static_cast<int64_t>(st.f_type), false};
  std::error_code ec;
  out.emptyDir = fs::is_directory(path, ec) && fs::is_empty(path, ec) && !ec;
  return out;
}

Result<void> makeDirectories(const std::string& root) {
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec)
    return Error(ec.value(), "--bpffs " + root + ": mkdir: " + ec.message());
  return {};
}

} // namespace

Result<BpffsPlan> ensureBpffs(const std::string& root) {
  std::string dir = normalized(root);
  std::string nearest = nearestExisting(dir);
  // Held while probing and mounting: a second agent starting at the same time waits here and
  // then finds the bpffs this one mounted (its path now resolves into that mount).
  FD lock(::open(nearest.c_str(), O_RDONLY | O_CLOEXEC));
  if (!lock)
    return systemError(errno, "--bpffs " + dir + ": open " + nearest);
  if (::flock(lock.get(), LOCK_EX) != 0)
    return systemError(errno, "--bpffs " + dir + ": lock " + nearest);
  auto state = probe(nearestExisting(dir));
  if (!state)
    return std::move(state).error().context("--bpffs " + dir);
  auto plan = planBpffs(dir, *state);
  if (!plan)
    return plan;
  if (plan->mountPoint == dir)
    if (auto made = makeDirectories(dir); !made)
      return made.error();
  // mode=0700 as systemd mounts /sys/fs/bpf: a pin gives whoever opens it the program or map.
  if (!plan->mountPoint.empty() &&
      ::mount("bpf", plan->mountPoint.c_str(), "bpf", 0, "mode=0700") != 0)
    return systemError(errno, "--bpffs " + dir + ": mount a bpffs at " + plan->mountPoint);
  if (auto made = makeDirectories(dir); !made)
    return made.error();
  return plan;
}

} // namespace bpfchain::agent
