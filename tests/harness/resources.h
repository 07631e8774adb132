// Names of everything a test creates outside its own memory: network namespaces, bpffs mounts,
// temporary directories. Each name carries the creating process's pid ("bpfct-<pid>-<tag><n>"),
// so the sweeper (bpfchain-test-sweep) can tell what a killed test left behind from what a
// running test still uses.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>

#include "system/result.h"

namespace bpfchain::testing {

inline constexpr std::string_view kResourcePrefix = "bpfct-";

// A new name, unique within this process and tagged with its pid.
std::string uniqueResourceName(std::string_view tag);

// The pid in a name made by uniqueResourceName, or nullopt for any other name.
std::optional<pid_t> resourceOwner(std::string_view name);

bool processAlive(pid_t pid);

// A temporary directory under $TMPDIR (or /tmp) named by uniqueResourceName, removed with
// everything in it when the object goes out of scope.
class TempDir {
public:
  static Result<TempDir> create(std::string_view tag);
  ~TempDir();
  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDir& operator=(TempDir&&) = delete;
  TempDir(const TempDir&) = delete;

  const std::string& path() const { return path_; }

private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// The whole content of a file, or "" when it cannot be read.
std::string readFile(const std::string& path);

// The directory that temporary test resources live in.
std::string tempRoot();

} // namespace bpfchain::testing
