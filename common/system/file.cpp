#include "system/file.h"

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

#include "system/fd.h"

namespace bpfchain {

Result<std::string> readFile(const std::string& path, uint64_t maxBytes) {
  FD fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd)
    return systemError(errno, "open " + path);
  std::string out;
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return systemError(errno, "read " + path);
    }
    if (n == 0)
      return out;
    if (out.size() + static_cast<size_t>(n) > maxBytes)
      return invalidError(path + ": larger than " + std::to_string(maxBytes) + " bytes");
    out.append(buf, static_cast<size_t>(n));
  }
}

} // namespace bpfchain
