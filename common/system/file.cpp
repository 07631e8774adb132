#include "system/file.h"

#include <atomic>
#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "system/fd.h"

namespace bpfchain {

Result<void> readFileChunks(const std::string& path,
                            const std::function<bool(std::string_view chunk)>& chunk) {
  FD fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd)
    return systemError(errno, "open " + path);
  // On the heap: callers include server threads with small stacks (civetweb's, which serve
  // /metrics: ASan's larger frames overflowed a 64 KiB array there).
  std::vector<char> buf(size_t{64} * 1024);
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return systemError(errno, "read " + path);
    }
    if (n == 0 || !chunk(std::string_view(buf.data(), static_cast<size_t>(n))))
      return {};
  }
}

Result<std::string> readFile(const std::string& path, uint64_t maxBytes) {
  std::string out;
  bool tooLarge = false;
  auto read = readFileChunks(path, [&](std::string_view chunk) {
    tooLarge = out.size() + chunk.size() > maxBytes;
    if (!tooLarge)
      out.append(chunk);
    return !tooLarge;
  });
  if (!read)
    return std::move(read).error();
  if (tooLarge)
    return invalidError(path + ": larger than " + std::to_string(maxBytes) + " bytes");
  return out;
}

Result<void> writeAll(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return systemError(errno, "write " + what);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Result<void> writeFileAtomic(const std::string& path, std::string_view data,
                             const AtomicWrite& options) {
  static std::atomic<unsigned> next{0};
  if (options.exclusive && ::access(path.c_str(), F_OK) == 0)
    return systemError(EEXIST, "create " + path);
  size_t slash = path.rfind('/');
  size_t name = slash == std::string::npos ? 0 : slash + 1;
  std::string dir = name == 0 ? "." : name == 1 ? "/" : path.substr(0, slash);
  std::string tmp = path.substr(0, name) + "." + path.substr(name) + ".tmp." +
                    std::to_string(::getpid()) + "." + std::to_string(next++);
  mode_t mode = options.mode & 07777;
  FD fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
  if (!fd)
    return systemError(errno, "create " + tmp);
  auto fail = [&](Error e) -> Result<void> {
    ::unlink(tmp.c_str());
    return e;
  };
  if (::fchmod(fd.get(), mode) != 0)
    return fail(systemError(errno, "chmod " + tmp));
  if (auto w = writeAll(fd.get(), data, tmp); !w)
    return fail(w.error());
  if (options.durable && ::fsync(fd.get()) != 0)
    return fail(systemError(errno, "fsync " + tmp));
  fd.reset();
  if (options.exclusive) {
    // link(2) fails when the name exists, so a concurrent writer cannot be overwritten.
    if (::link(tmp.c_str(), path.c_str()) != 0)
      return fail(systemError(errno, "create " + path));
    ::unlink(tmp.c_str());
  } else if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return fail(systemError(errno, "rename " + tmp + " to " + path));
  }
  if (options.durable) {
    FD parent(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (parent)
      (void)::fsync(parent.get());
  }
  return {};
}

} // namespace bpfchain
