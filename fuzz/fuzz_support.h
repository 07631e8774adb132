// What the fuzz targets share: a private temporary directory per process (targets that parse
// files write each input there) and the entry point's signature. Every target asserts only what
// must hold for any input: no crash, no leak, no exception escaping (a refused input is an
// Error), and no write outside its own temporary directory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace bpfchain::fuzz {

// A directory of this process's own below $TMPDIR (or /tmp), removed with everything in it
// at exit.
const std::string& scratchDir();
// Writes `data` to `path` (replacing it); aborts when it cannot, as that is no input's fault.
void writeFileOrDie(const std::string& path, std::string_view data);
// Removes everything below `dir`, keeping `dir`.
void emptyDir(const std::string& dir);

inline std::string_view asText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

} // namespace bpfchain::fuzz
