// The machine-readable reasons a package is refused (they appear in BpfNodeConfig status and in
// metrics labels, so they never change), and PackageError, which pairs one with an Error.
#pragma once

#include <string>
#include <string_view>

#include "system/result.h"

namespace bpfchain::packages {

// Download failed: HTTP status, connection, missing file, timeout, size limit, bad URL.
inline constexpr std::string_view kPackageFetchFailed = "PackageFetchFailed";
// The sha256 of the downloaded archive differs from the one asked for (or that one is not a
// sha256 at all).
inline constexpr std::string_view kChecksumMismatch = "ChecksumMismatch";
// Signatures are required and <url>.sig does not exist.
inline constexpr std::string_view kSignatureMissing = "SignatureMissing";
// A .sig that no trusted key verifies (or that is not a signature).
inline constexpr std::string_view kSignatureInvalid = "SignatureInvalid";
// Not a valid .tar.gz: bad gzip, bad tar header checksum, truncated.
inline constexpr std::string_view kArchiveCorrupt = "ArchiveCorrupt";
// Absolute path, "..", a link out of the package, a device or fifo, a size limit exceeded.
inline constexpr std::string_view kArchiveUnsafe = "ArchiveUnsafe";
// manifest.yaml unparsable, or naming an object that is not in the archive.
inline constexpr std::string_view kManifestInvalid = "ManifestInvalid";

// Not one of the package's faults: the cache directory cannot be written (disk full,
// permissions) or a local file cannot be read.
inline constexpr std::string_view kPackageCacheError = "PackageCacheError";

struct PackageError {
  std::string reason; // one of the k* reasons above
  Error error;        // error.message() names the URL (or file) and what is wrong
};

inline PackageError packageError(std::string_view reason, Error error) {
  return PackageError{std::string(reason), std::move(error)};
}

} // namespace bpfchain::packages
