// Small file helpers the packages library and bpfchain-pkg share.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <sys/types.h>

#include "system/file.h" // readFile, writeFileAtomic
#include "system/result.h"

namespace bpfchain::packages {

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
