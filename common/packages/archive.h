// Package archives: gzip-compressed tar (ustar, with GNU long names and pax extended headers),
// on zlib. No libarchive: the reader is small enough to audit, and extraction is written for
// hostile input.
//
// Extraction (extractArchive) writes only below the target directory, whatever the archive
// says: every path component is opened relative to a directory descriptor with O_NOFOLLOW,
// files are created with O_EXCL, and
//   - absolute paths, ".." components, device nodes, fifos and unknown entry types are
//     refused (ArchiveUnsafe);
//   - hard links must name an earlier regular file of the archive;
//   - symbolic links are created last, and only when their target, resolved through the
//     archive's own links, stays inside the tree;
//   - modes are 0755 (directories, and files with any execute bit) or 0644; owners, times
//     and extended attributes are not restored;
//   - the entry count and the sum of file sizes are limited (ArchiveUnsafe);
//   - bad gzip, a header checksum that does not add up, or data that ends early is
//     ArchiveCorrupt.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "packages/package_error.h"
#include "system/result.h"

namespace bpfchain::packages {

enum class EntryType { File, Directory, Symlink, Hardlink, CharDevice, BlockDevice, Fifo };

std::string_view entryTypeName(EntryType type);

struct ArchiveEntry {
  std::string path;
  EntryType type = EntryType::File;
  uint32_t mode = 0644;
  std::string data;       // File only
  std::string linkTarget; // Symlink and Hardlink
  uint64_t mtime = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t devMajor = 0; // CharDevice and BlockDevice
  uint32_t devMinor = 0;
};

struct ArchiveLimits {
  uint64_t maxExtractedBytes = 256ull << 20; // sum of regular file sizes
  uint64_t maxEntries = 4096;                // every entry: files, directories, links
};

// How names and link targets that do not fit ustar's fields are written.
enum class LongNames {
  Pax, // a POSIX pax extended header ('x') with path= / linkpath=
  Gnu, // GNU tar's ././@LongLink entries ('L' and 'K')
};

// Low level. The entries as an uncompressed tar stream, in the given order and exactly as
// given: no checks, no normalization (tests craft hostile archives with it). Ends with the two
// zero blocks of end-of-archive.
std::string encodeTar(const std::vector<ArchiveEntry>& entries,
                      LongNames longNames = LongNames::Pax);

// `data` as one gzip member, deterministic (no file name, mtime 0), at the best compression.
std::string gzipCompress(std::string_view data);

// A deterministic package archive at `path` (written to a temporary file, then renamed):
// entries sorted by path, mtime, uid and gid 0, modes 0755/0644. Refuses paths that extraction
// would refuse (absolute, "..", empty), duplicate paths and device or fifo entries.
Result<void> writeArchive(const std::string& path, std::vector<ArchiveEntry> entries);

// Every entry of a .tar.gz, with file contents, as stored (paths are not normalized or checked
// for safety; that is extraction's job). Fails with ArchiveCorrupt or ArchiveUnsafe (limits,
// unsupported entry types).
Result<std::vector<ArchiveEntry>, PackageError> readArchive(const std::string& path,
                                                            const ArchiveLimits& limits = {});

struct ExtractedEntry {
  std::string path; // normalized: relative, no "." or empty components
  EntryType type = EntryType::File;
  uint64_t size = 0; // File only
};

// Extracts a .tar.gz into `targetDir`, an existing empty directory, as described at the top.
// Returns what was created, in archive order. On failure `targetDir` may hold a partial tree:
// extract into a fresh directory and remove it on error. Errors name the archive as
// `displayName` (a URL, say), or as its path when that is empty.
Result<std::vector<ExtractedEntry>, PackageError>
extractArchive(const std::string& archivePath, const std::string& targetDir,
               const ArchiveLimits& limits = {}, const std::string& displayName = "");

} // namespace bpfchain::packages
