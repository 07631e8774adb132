// Reading and writing whole files, the one way every directory does it.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <sys/types.h>

#include "system/result.h"

namespace bpfchain {

inline constexpr uint64_t kNoSizeLimit = std::numeric_limits<uint64_t>::max();

// The whole file, or an error when it is larger than maxBytes ("open <path>: <strerror>",
// "read <path>: ...", "<path>: larger than <n> bytes").
Result<std::string> readFile(const std::string& path, uint64_t maxBytes);

// Reads the file from start to end, handing each piece to `chunk` in turn, until the end or
// until `chunk` returns false (for files read once and not kept, such as a digest's input);
// errors as readFile's.
Result<void> readFileChunks(const std::string& path,
                            const std::function<bool(std::string_view chunk)>& chunk);

// Writes all of `data` to `fd` (retrying short writes and EINTR); errors name `what`.
Result<void> writeAll(int fd, std::string_view data, const std::string& what);

struct AtomicWrite {
  mode_t mode = 0644; // exactly this mode, whatever the umask
  // An existing `path` is an error (EEXIST) and is left alone, even against a concurrent writer.
  bool exclusive = false;
  // fsync the file before the rename and its directory after: the new contents survive a
  // power loss. Files that describe kernel state (pins, which a reboot loses too) skip it, so
  // a pod ADD does not wait for the disk.
  bool durable = true;
};

// Writes `data` to a hidden temporary file beside `path` (".<name>.tmp.<pid>.<n>", which no
// CNI runtime or config loader picks up) and renames it over `path`, so a reader sees the old
// contents or the new, never a part. The temporary file is removed on every failure.
Result<void> writeFileAtomic(const std::string& path, std::string_view data,
                             const AtomicWrite& options = {});

} // namespace bpfchain
