#include "harness/sweep.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/mount.h>

#include "harness/process.h"
#include "harness/resources.h"

namespace bpfchain::testing {
namespace fs = std::filesystem;
namespace {

bool isStale(const std::string& name) {
  auto owner = resourceOwner(name);
  return owner && !processAlive(*owner);
}

void sweepNetns(SweepReport& report) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/run/netns", ec)) {
    std::string name = entry.path().filename();
    if (!isStale(name))
      continue;
    auto r = checkCommand({"ip", "netns", "delete", name});
    if (r)
      report.removed.push_back("netns " + name);
    else
      report.errors.push_back(r.error().message());
  }
}

// Mount points below stale temporary directories, deepest first.
std::vector<std::string> staleMounts() {
  std::vector<std::string> mounts;
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string line;
  const std::string root = tempRoot() + "/";
  while (std::getline(mountinfo, line)) {
    std::istringstream fields(line);
    std::string id, parent, devices, source, target;
    fields >> id >> parent >> devices >> source >> target;
    if (!target.starts_with(root))
      continue;
    std::string first = target.substr(root.size());
    first = first.substr(0, first.find('/'));
    if (isStale(first))
      mounts.push_back(target);
  }
  std::sort(mounts.rbegin(), mounts.rend());
  return mounts;
}

void sweepTempDirs(SweepReport& report) {
  for (const auto& mount : staleMounts()) {
    if (::umount2(mount.c_str(), MNT_DETACH) == 0)
      report.removed.push_back("mount " + mount);
    else
      report.errors.push_back("umount " + mount + ": " + std::strerror(errno));
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(tempRoot(), ec)) {
    std::string name = entry.path().filename();
    if (!isStale(name))
      continue;
    std::error_code rmError;
    fs::remove_all(entry.path(), rmError);
    if (rmError)
      report.errors.push_back("remove " + entry.path().string() + ": " + rmError.message());
    else
      report.removed.push_back("directory " + entry.path().string());
  }
}

// local-cluster.sh knows which control planes are stale (owner gone, pid reused, processes
// dead, `up` killed half-way), local-node.sh which real nodes are (and undoes what each wrote
// outside its directory: cgroups, chains, bridge); `down --all-stale` prints each one removed.
void sweepStale(SweepReport& report, const std::string& script, const std::string& what) {
  auto r = checkCommand(
      {std::string(BPFCHAIN_SOURCE_DIR) + "/scripts/" + script, "down", "--all-stale"});
  if (!r) {
    report.errors.push_back(r.error().message());
    return;
  }
  std::istringstream lines(r->out);
  for (std::string dir; std::getline(lines, dir);)
    if (!dir.empty())
      report.removed.emplace_back(what).append(" ").append(dir);
}

} // namespace

SweepReport sweepStaleResources() {
  SweepReport report;
  sweepNetns(report);
  sweepStale(report, "local-node.sh", "node");
  sweepTempDirs(report);
  sweepStale(report, "local-cluster.sh", "control plane");
  return report;
}

} // namespace bpfchain::testing
