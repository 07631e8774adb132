// The agent's pin root (--bpffs) must be on a bpffs. Fresh hosts and minimal VMs have none
// mounted at /sys/fs/bpf, so the agent mounts one where needed, as Cilium and bpfman do:
//   - the root, or its nearest existing ancestor, is on a bpffs: nothing to mount;
//   - that ancestor is an empty directory on sysfs (the kernel's /sys/fs/bpf mount point, where
//     mkdir is refused): a bpffs is mounted on it, then the root is made inside;
//   - otherwise the root is made (mkdir -p) and a bpffs is mounted on it.
// The agent never unmounts what it mounted: the pins under it keep programs attached while no
// agent runs, and the next agent adopts them (DESIGN.md section 3). Two agents starting at once
// serialize on a lock of the ancestor directory, so they never stack two mounts.
#pragma once

#include <cstdint>
#include <string>

#include "system/result.h"

namespace bpfchain::agent {

// The nearest existing path at or above the pin root, as statfs and readdir see it.
struct BpffsProbe {
  std::string path;
  int64_t fsType = 0;    // statfs f_type
  bool emptyDir = false; // a directory with no entries
};

struct BpffsPlan {
  // The directory to mount a bpffs on, or "" when the root is already on one.
  std::string mountPoint;
};

// What to do for `root`, given the probe of its nearest existing ancestor (pure).
Result<BpffsPlan> planBpffs(const std::string& root, const BpffsProbe& nearest);

// Makes `root` a directory on a bpffs, mounting one as planned; returns what was mounted.
Result<BpffsPlan> ensureBpffs(const std::string& root);

} // namespace bpfchain::agent
