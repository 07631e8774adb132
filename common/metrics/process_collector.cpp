#include "metrics/process_collector.h"

#include <cstdlib>
#include <dirent.h>
#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <string>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

#include "system/file.h"

namespace bpfchain::metrics {
namespace {

// Fields of /proc/<pid>/stat counted from 1 (proc(5)); those after the command name.
constexpr size_t kUtime = 14;
constexpr size_t kStime = 15;
constexpr size_t kStartTime = 22;
constexpr size_t kVsize = 23;
constexpr size_t kRss = 24;
constexpr size_t kFirstAfterComm = 3;

Result<double> number(const std::vector<std::string_view>& fields, size_t field, const char* name) {
  size_t index = field - kFirstAfterComm;
  if (index >= fields.size())
    return invalidError(std::string("/proc/self/stat: no field ") + std::to_string(field) + " (" +
                        name + ")");
  std::string text(fields[index]);
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0')
    return invalidError(std::string("/proc/self/stat: field ") + std::to_string(field) + " (" +
                        name + ") is not a number: \"" + text + "\"");
  return v;
}

// A /proc file's text; "" when it cannot be read (parseProcessStat then names the file).
std::string procText(const char* path) {
  auto text = readFile(path, size_t{1} << 20);
  return text ? std::move(*text) : std::string();
}

double openFds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir)
    return -1;
  double count = 0;
  while (const dirent* e = ::readdir(dir))
    if (e->d_name[0] != '.')
      ++count;
  ::closedir(dir);
  return count - 1; // the directory's own descriptor
}

prometheus::MetricFamily gauge(const char* name, const char* help, double value,
                               prometheus::MetricType type = prometheus::MetricType::Gauge) {
  prometheus::MetricFamily family{name, help, type, {}};
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter)
    m.counter.value = value;
  else
    m.gauge.value = value;
  family.metric.push_back(m);
  return family;
}

class ProcessCollector final : public prometheus::Collectable {
public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> families;
    auto stat = parseProcessStat(procText("/proc/self/stat"), procText("/proc/stat"),
                                 ::sysconf(_SC_CLK_TCK), ::sysconf(_SC_PAGESIZE));
    if (stat) {
      families.push_back(gauge("process_cpu_seconds_total",
                               "Total user and system CPU time spent in seconds.", stat->cpuSeconds,
                               prometheus::MetricType::Counter));
      families.push_back(gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
                               stat->residentBytes));
      families.push_back(gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                               stat->virtualBytes));
      families.push_back(gauge("process_start_time_seconds",
                               "Start time of the process since unix epoch in seconds.",
                               stat->startTimeSeconds));
    }
    if (double fds = openFds(); fds >= 0)
      families.push_back(gauge("process_open_fds", "Number of open file descriptors.", fds));
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
      families.push_back(gauge("process_max_fds", "Maximum number of open file descriptors.",
                               static_cast<double>(limit.rlim_cur)));
    return families;
  }
};

} // namespace

Result<ProcessStat> parseProcessStat(std::string_view stat, std::string_view procStat,
                                     long ticksPerSecond, long pageSize) {
  // The command name is in parentheses and may contain anything, ")" included: the fields
  // start after the last ")".
  auto close = stat.rfind(')');
  if (close == std::string_view::npos)
    return invalidError("/proc/self/stat: no \")\" after the command name");
  std::vector<std::string_view> fields;
  std::string_view rest = stat.substr(close + 1);
  while (!rest.empty()) {
    auto start = rest.find_first_not_of(" \n");
    if (start == std::string_view::npos)
      break;
    rest.remove_prefix(start);
    auto end = rest.find_first_of(" \n");
    fields.push_back(rest.substr(0, end));
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  }
  if (ticksPerSecond <= 0 || pageSize <= 0)
    return invalidError("clock ticks and page size must be positive");
  auto utime = number(fields, kUtime, "utime");
  auto stime = number(fields, kStime, "stime");
  auto start = number(fields, kStartTime, "starttime");
  auto vsize = number(fields, kVsize, "vsize");
  auto rss = number(fields, kRss, "rss");
  for (const auto* r : {&utime, &stime, &start, &vsize, &rss})
    if (!*r)
      return r->error();
  double bootTime = -1;
  for (std::string_view lines = procStat; !lines.empty();) {
    auto eol = lines.find('\n');
    std::string_view line = lines.substr(0, eol);
    lines.remove_prefix(eol == std::string_view::npos ? lines.size() : eol + 1);
    if (line.starts_with("btime ")) {
      std::string text(line.substr(6));
      char* end = nullptr;
      double v = std::strtod(text.c_str(), &end);
      if (end != text.c_str())
        bootTime = v;
    }
  }
  if (bootTime < 0)
    return invalidError("/proc/stat: no btime line");
  auto ticks = static_cast<double>(ticksPerSecond);
  return ProcessStat{.cpuSeconds = (*utime + *stime) / ticks,
                     .residentBytes = *rss * static_cast<double>(pageSize),
                     .virtualBytes = *vsize,
                     .startTimeSeconds = bootTime + *start / ticks};
}

std::shared_ptr<prometheus::Collectable> processCollector() {
  static const auto collector = std::make_shared<ProcessCollector>();
  return collector;
}

} // namespace bpfchain::metrics
