// Removes what tests left behind when they were killed: network namespaces, bpffs mounts and
// temporary directories named by uniqueResourceName whose owning process is gone, and local
// control planes (scripts/local-cluster.sh) whose owner is gone. Resources of live processes
// are never touched, so a sweep is safe while other tests run.
#pragma once

#include <string>
#include <vector>

namespace bpfchain::testing {

struct SweepReport {
  std::vector<std::string> removed; // one line per resource removed
  std::vector<std::string> errors;  // resources that could not be removed, with the reason
};

SweepReport sweepStaleResources();

} // namespace bpfchain::testing
