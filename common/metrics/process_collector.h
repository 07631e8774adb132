// The process_* metrics every long-running bpfchain binary exports, with the names and meaning
// of the Go and Python Prometheus clients' process collectors (read from /proc/self at scrape
// time, so they cost nothing between scrapes):
//   process_cpu_seconds_total        user + system CPU time
//   process_resident_memory_bytes    resident set size
//   process_virtual_memory_bytes     virtual memory size
//   process_open_fds                 open file descriptors
//   process_max_fds                  the soft RLIMIT_NOFILE
//   process_start_time_seconds       start time, seconds since the Unix epoch
// A value that cannot be read is left out of the scrape (never reported as 0).
#pragma once

#include <memory>
#include <string_view>

#include "system/result.h"

namespace prometheus {
class Collectable;
} // namespace prometheus

namespace bpfchain::metrics {

struct ProcessStat {
  double cpuSeconds = 0;
  double residentBytes = 0;
  double virtualBytes = 0;
  double startTimeSeconds = 0;
};

// Parses /proc/<pid>/stat (`stat`; the command name may hold spaces and parentheses) with the
// boot time from /proc/stat (`procStat`, its "btime" line), clock ticks per second and the
// page size. Fails naming what is missing or malformed.
Result<ProcessStat> parseProcessStat(std::string_view stat, std::string_view procStat,
                                     long ticksPerSecond, long pageSize);

// The collector for this process; one instance shared by every caller.
std::shared_ptr<prometheus::Collectable> processCollector();

} // namespace bpfchain::metrics
