#include "packages/file_util.h"

#include <cerrno>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

#include "system/fd.h"

namespace bpfchain::packages {

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
