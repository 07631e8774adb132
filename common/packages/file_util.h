// Small file helpers the packages library and bpfchain-pkg share.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <sys/types.h>

#include "system/file.h" // readFile
#include "system/result.h"

namespace bpfchain::packages {

// Writes `data` to a temporary file next to `path`, fsyncs it and renames it over `path`, so a
// reader sees the old or the new contents, never a part. The file gets exactly `mode`.
// With exclusive, an existing `path` is an error (EEXIST) and is left alone.
Result<void> writeFileAtomic(const std::string& path, std::string_view data, mode_t mode,
                             bool exclusive = false);

// A read-only, private memory mapping of a whole file (pages are loaded on demand, so a large
// archive does not count against the process's heap).
class MappedFile {
public:
  static Result<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&&) = delete;
  MappedFile(const MappedFile&) = delete;

  std::string_view data() const { return {static_cast<const char*>(addr_), size_}; }

private:
  MappedFile(void* addr, size_t size) : addr_(addr), size_(size) {}
  void* addr_ = nullptr;
  size_t size_ = 0;
};

} // namespace bpfchain::packages
