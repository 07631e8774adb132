#include "harness/resources.h"

#include <atomic>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <signal.h>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace bpfchain::testing {

std::string uniqueResourceName(std::string_view tag) {
  static std::atomic<unsigned> next{0};
  return std::string(kResourcePrefix) + std::to_string(::getpid()) + "-" + std::string(tag) +
         std::to_string(next++);
}

std::optional<pid_t> resourceOwner(std::string_view name) {
  if (!name.starts_with(kResourcePrefix))
    return std::nullopt;
  name.remove_prefix(kResourcePrefix.size());
  pid_t pid = 0;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), pid);
  if (ec != std::errc() || end == name.data() || end == name.data() + name.size() || *end != '-')
    return std::nullopt;
  return pid;
}

bool processAlive(pid_t pid) {
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

std::string tempRoot() {
  const char* dir = std::getenv("TMPDIR");
  return dir && *dir ? dir : "/tmp";
}

Result<TempDir> TempDir::create(std::string_view tag) {
  std::string path = tempRoot() + "/" + uniqueResourceName(tag);
  if (::mkdir(path.c_str(), 0700) != 0)
    return systemError(errno, "mkdir " + path);
  return TempDir(path);
}

TempDir::~TempDir() {
  if (path_.empty())
    return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

} // namespace bpfchain::testing
