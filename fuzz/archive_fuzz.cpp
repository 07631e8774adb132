// A package archive (.tar.gz) from anywhere: readArchive, then extractArchive into an empty
// directory with small limits. Extraction must never write outside its target directory.
// An input that is not gzip (no 1f 8b magic) is taken as the tar stream and compressed first,
// so that mutations reach the tar reader instead of stopping at gzip's checksum.
#include <cstdlib>
#include <filesystem>

#include "fuzz_support.h"
#include "packages/archive.h"

using namespace bpfchain;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string archive = fuzz::scratchDir() + "/in.tar.gz";
  static const std::string target = fuzz::scratchDir() + "/tree";
  static const std::string outside = fuzz::scratchDir() + "/outside";
  std::string_view input = fuzz::asText(data, size);
  bool gzip = input.size() >= 2 && input[0] == '\x1f' && input[1] == '\x8b';
  fuzz::writeFileOrDie(archive, gzip ? std::string(input) : packages::gzipCompress(input));
  packages::ArchiveLimits limits;
  limits.maxExtractedBytes = 1 << 20;
  limits.maxEntries = 64;
  (void)packages::readArchive(archive, limits);

  std::filesystem::create_directory(target);
  (void)packages::extractArchive(archive, target, limits);
  // The scratch directory holds the archive and the tree, nothing else: an entry that escaped
  // the tree through "..", a link or an absolute path would show up here.
  for (const auto& entry : std::filesystem::directory_iterator(fuzz::scratchDir())) {
    if (entry.path() != archive && entry.path() != target)
      std::abort();
  }
  std::filesystem::remove_all(target);
  return 0;
}
