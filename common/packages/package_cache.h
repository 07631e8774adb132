// The node's package cache (DESIGN.md section 4): content-addressed by the archive's sha256,
// verified (digest, and an Ed25519 signature when keys are configured or required), extracted
// safely (archive.h), and never downloaded again once verified.
//
// Layout under the cache root (0700):
//   <sha256>/tree/              the extracted package (Package::dir)
//   <sha256>/verification.yaml  how it was verified: url, signature (verified/absent/unchecked),
//                               the signer's key fingerprint
//   .tmp/                       downloads and extractions in progress, named
//                               <sha256>.<pid>.<n>; a finished one is renamed to <sha256>/
//
// A cached package is used without any network access when its verification satisfies the
// current policy (a package cached before --require-signatures, or signed by a key no longer
// trusted, is downloaded and verified again).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "packages/manifest.h"
#include "packages/package_error.h"
#include "system/result.h"

namespace bpfchain::packages {

// Reasons (package_error.h): kPackageFetchFailed "PackageFetchFailed", kChecksumMismatch
// "ChecksumMismatch", kSignatureMissing "SignatureMissing", kSignatureInvalid
// "SignatureInvalid", kArchiveCorrupt "ArchiveCorrupt", kArchiveUnsafe "ArchiveUnsafe",
// kManifestInvalid "ManifestInvalid", and kPackageCacheError "PackageCacheError" for local
// failures (the cache directory cannot be written).

struct PackageRef {
  std::string url;    // http://, https://, file:///abs/path
  std::string sha256; // 64 hex digits (either case)
};

struct Package {
  std::string digest;               // lower-case sha256 hex of the archive
  std::string dir;                  // absolute path of the extracted tree (read-only for users)
  std::optional<Manifest> manifest; // nullopt for L3AF artifacts (no manifest.yaml)
  std::vector<std::string> objects; // relative paths of every BPF ELF object, sorted
};

struct CacheOptions {
  std::vector<std::string> trustedKeyFiles;  // PEM ed25519 public keys (--trusted-key)
  bool requireSignatures = false;            // --require-signatures
  uint64_t maxArchiveBytes = 64ull << 20;    // download limit
  uint64_t maxExtractedBytes = 256ull << 20; // sum of file sizes
  uint64_t maxEntries = 4096;
  std::chrono::seconds fetchTimeout{30};
};

class PackageCache {
public:
  // dir: the cache root, e.g. /var/lib/bpfchain/packages (created 0700 if missing). Fails on an
  // unreadable key file, and when signatures are required but no key is trusted.
  static Result<PackageCache> open(const std::string& dir, CacheOptions options = {});

  // Returns the verified, extracted package: from the cache when <dir>/<sha256>/ is complete
  // (never re-downloaded, no network), else downloads, checks sha256 (and the signature when
  // keys are configured or required), extracts safely into a temp dir and renames it into
  // place atomically. Thread-safe; concurrent gets of one digest download once.
  Result<Package, PackageError> get(const PackageRef& ref);

  // Removes cached packages whose digest is not in `keep` (and what dead processes left in
  // .tmp). Returns how many packages were removed.
  size_t collectGarbage(const std::set<std::string>& keep);

  // Counters since open: downloads started, gets served from the cache, gets that failed.
  struct Stats {
    uint64_t fetches = 0;
    uint64_t cacheHits = 0;
    uint64_t failures = 0;
  };
  Stats stats() const;

  // The absolute cache root.
  const std::string& dir() const;
  // The digests of the complete packages in the cache, sorted.
  std::vector<std::string> cachedDigests() const;

  ~PackageCache();
  PackageCache(PackageCache&&) noexcept;
  PackageCache& operator=(PackageCache&&) noexcept;

private:
  struct Impl;
  explicit PackageCache(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The package in an extracted tree: its BPF ELF objects and manifest.yaml, checked (what the
// cache returns; bpfchain-pkg uses it too). `dir` must be absolute.
Result<Package, PackageError> loadPackageTree(const std::string& dir, const std::string& digest);

} // namespace bpfchain::packages
