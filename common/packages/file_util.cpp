#include "packages/file_util.h"

#include <atomic>
#include <cerrno>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

#include "system/fd.h"

namespace bpfchain::packages {

namespace {

Result<void> writeAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return systemError(errno, "write " + path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

} // namespace

Result<void> writeFileAtomic(const std::string& path, std::string_view data, mode_t mode,
                             bool exclusive) {
  static std::atomic<unsigned> next{0};
  if (exclusive && ::access(path.c_str(), F_OK) == 0)
    return systemError(EEXIST, "create " + path);
  std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(next++);
  FD fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode & 07777));
  if (!fd)
    return systemError(errno, "create " + tmp);
  auto fail = [&](Error e) -> Result<void> {
    ::unlink(tmp.c_str());
    return e;
  };
  if (::fchmod(fd.get(), mode & 07777) != 0)
    return fail(systemError(errno, "chmod " + tmp));
  if (auto w = writeAll(fd.get(), data, tmp); !w)
    return fail(w.error());
  if (::fsync(fd.get()) != 0)
    return fail(systemError(errno, "fsync " + tmp));
  fd.reset();
  if (exclusive) {
    // link(2) fails when the name exists, so a concurrent writer cannot be overwritten.
    if (::link(tmp.c_str(), path.c_str()) != 0)
      return fail(systemError(errno, "create " + path));
    ::unlink(tmp.c_str());
    return {};
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return fail(systemError(errno, "rename " + tmp + " to " + path));
  return {};
}

Result<MappedFile> MappedFile::open(const std::string& path) {
  FD fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd)
    return systemError(errno, "open " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return systemError(errno, "stat " + path);
  if (!S_ISREG(st.st_mode))
    return invalidError(path + ": not a regular file");
  if (st.st_size == 0)
    return MappedFile(nullptr, 0);
  void* addr =
      ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (addr == MAP_FAILED)
    return systemError(errno, "mmap " + path);
  return MappedFile(addr, static_cast<size_t>(st.st_size));
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : addr_(std::exchange(other.addr_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile::~MappedFile() {
  if (addr_ != nullptr)
    ::munmap(addr_, size_);
}

} // namespace bpfchain::packages
