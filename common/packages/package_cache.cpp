#include "packages/package_cache.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <fcntl.h>
#include <filesystem>
#include <map>
#include <mutex>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include "packages/archive.h"
#include "packages/digest.h"
#include "packages/fetch.h"
#include "packages/file_util.h"
#include "packages/signature.h"
#include "system/fd.h"
#include "system/time.h"

namespace bpfchain::packages {
namespace fs = std::filesystem;
namespace {

constexpr uint64_t kMaxSignatureBytes = 4096;
constexpr uint64_t kMaxManifestBytes = 1 << 20;
constexpr std::string_view kTmp = ".tmp";
constexpr std::string_view kTree = "tree";
constexpr std::string_view kVerification = "verification.yaml";

// How a cached package was verified (verification.yaml's `signature`).
constexpr std::string_view kSigVerified = "verified";   // by the key in `signer`
constexpr std::string_view kSigAbsent = "absent";       // keys were configured, no .sig existed
constexpr std::string_view kSigUnchecked = "unchecked"; // no keys were configured

PackageError cacheError(Error error) {
  return packageError(kPackageCacheError, std::move(error));
}

PackageError withContext(PackageError e, const std::string& what) {
  e.error = std::move(e.error).context(what);
  return e;
}

bool processAlive(pid_t pid) {
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

// The pid in a .tmp entry's name "<digest>.<pid>.<n>", or 0.
pid_t tmpOwner(const std::string& name) {
  size_t first = name.find('.');
  size_t second = first == std::string::npos ? first : name.find('.', first + 1);
  if (second == std::string::npos)
    return 0;
  pid_t pid = 0;
  auto [end, error] = std::from_chars(name.data() + first + 1, name.data() + second, pid);
  return error == std::errc() && end == name.data() + second ? pid : 0;
}

// Removes a directory tree when it goes out of scope (symlinks inside are not followed).
class RemoveOnExit {
public:
  explicit RemoveOnExit(std::string path) : path_(std::move(path)) {}
  ~RemoveOnExit() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  RemoveOnExit(const RemoveOnExit&) = delete;
  RemoveOnExit& operator=(const RemoveOnExit&) = delete;

private:
  std::string path_;
};

bool isElf(const std::string& path) {
  FD fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd)
    return false;
  char magic[4];
  ssize_t n = ::pread(fd.get(), magic, sizeof magic, 0);
  return n == 4 && magic[0] == 0x7f && magic[1] == 'E' && magic[2] == 'L' && magic[3] == 'F';
}

struct Verification {
  std::string signature; // kSigVerified, kSigAbsent or kSigUnchecked
  std::string signer;    // key fingerprint, for kSigVerified
};

std::string verificationYaml(const std::string& url, const std::string& digest,
                             const Verification& v, const std::string& signerKey) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "url" << YAML::Value << url;
  out << YAML::Key << "sha256" << YAML::Value << digest;
  out << YAML::Key << "signature" << YAML::Value << v.signature;
  if (!v.signer.empty()) {
    out << YAML::Key << "signer" << YAML::Value << v.signer;
    out << YAML::Key << "signerKey" << YAML::Value << signerKey;
  }
  out << YAML::Key << "verifiedAt" << YAML::Value << rfc3339Now();
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::optional<Verification> readVerification(const std::string& path) {
  auto text = readFile(path, uint64_t{64} << 10);
  if (!text)
    return std::nullopt;
  try {
    YAML::Node root = YAML::Load(*text);
    if (!root.IsMap() || !root["signature"] || !root["signature"].IsScalar())
      return std::nullopt;
    Verification v;
    v.signature = root["signature"].Scalar();
    if (root["signer"] && root["signer"].IsScalar())
      v.signer = root["signer"].Scalar();
    return v;
  } catch (const YAML::Exception&) {
    return std::nullopt;
  }
}

struct InFlight {
  std::string url;
  bool done = false;
  std::optional<Result<Package, PackageError>> result;
};

} // namespace

Result<Package, PackageError> loadPackageTree(const std::string& dir, const std::string& digest) {
  Package package;
  package.digest = digest;
  package.dir = dir;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    auto status = it->symlink_status(ec);
    if (ec)
      break;
    if (fs::is_regular_file(status) && isElf(it->path().string()))
      package.objects.push_back(it->path().lexically_relative(dir).string());
  }
  if (ec)
    return cacheError(Error(ec.value(), "read " + dir + ": " + ec.message()));
  std::sort(package.objects.begin(), package.objects.end());

  std::string manifestPath = dir + "/" + std::string(kManifestFile);
  struct stat st {};
  if (::lstat(manifestPath.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode))
      return packageError(kManifestInvalid,
                          invalidError(std::string(kManifestFile) + ": not a regular file"));
    auto text = readFile(manifestPath, kMaxManifestBytes);
    if (!text)
      return packageError(kManifestInvalid, text.error().context(std::string(kManifestFile)));
    auto manifest = parseManifest(*text, std::string(kManifestFile));
    if (!manifest)
      return manifest.error();
    if (auto c = checkManifestObjects(*manifest, package.objects, std::string(kManifestFile)); !c)
      return c.error();
    package.manifest = std::move(*manifest);
  } else if (errno != ENOENT) {
    return cacheError(systemError(errno, "stat " + manifestPath));
  } else if (package.objects.empty()) {
    return packageError(kManifestInvalid,
                        invalidError("no manifest.yaml and no BPF ELF object in the package"));
  }
  return package;
}

struct PackageCache::Impl {
  std::string dir;
  std::string tmpDir;
  CacheOptions options;
  std::vector<PublicKey> keys;

  std::mutex mutex;
  std::condition_variable done;
  std::map<std::string, std::shared_ptr<InFlight>> inFlight;
  std::atomic<uint64_t> fetches{0};
  std::atomic<uint64_t> cacheHits{0};
  std::atomic<uint64_t> failures{0};
  std::atomic<uint64_t> serial{0};

  std::string tmpName(const std::string& digest) {
    return tmpDir + "/" + digest + "." + std::to_string(::getpid()) + "." +
           std::to_string(serial++);
  }

  // Removes what dead processes left in .tmp.
  void sweepTmp() const {
    std::error_code ec;
    for (fs::directory_iterator it(tmpDir, ec), end; !ec && it != end; it.increment(ec)) {
      pid_t owner = tmpOwner(it->path().filename().string());
      if (owner > 0 && owner != ::getpid() && !processAlive(owner)) {
        std::error_code ignored;
        fs::remove_all(it->path(), ignored);
      }
    }
  }

  // Whether a package verified as `v` may be used under the current policy without fetching.
  bool satisfiesPolicy(const Verification& v) const {
    bool checking = !keys.empty() || options.requireSignatures;
    if (v.signature == kSigVerified)
      return !checking || std::any_of(keys.begin(), keys.end(), [&](const PublicKey& k) {
        return k.fingerprint() == v.signer;
      });
    if (v.signature == kSigAbsent)
      return !options.requireSignatures;
    if (v.signature == kSigUnchecked)
      return !checking;
    return false;
  }

  std::optional<Package> cached(const std::string& digest) {
    std::string entry = dir + "/" + digest;
    struct stat st {};
    if (::lstat(entry.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      return std::nullopt;
    auto v = readVerification(entry + "/" + std::string(kVerification));
    if (!v || !satisfiesPolicy(*v))
      return std::nullopt;
    auto package = loadPackageTree(entry + "/" + std::string(kTree), digest);
    if (!package)
      return std::nullopt; // damaged: fetch it again
    return std::move(*package);
  }

  Result<Package, PackageError> download(const std::string& digest, const std::string& url) {
    std::string work = tmpName(digest);
    if (::mkdir(work.c_str(), 0700) != 0)
      return cacheError(systemError(errno, "package " + url + ": mkdir " + work));
    RemoveOnExit cleanup(work);

    std::string archive = work + "/archive.tar.gz";
    if (auto f = fetchArchive(digest, url, archive); !f)
      return std::move(f).error();
    Verification verification{std::string(kSigUnchecked), ""};
    std::string signerKey;
    if (auto s = checkSignature(url, archive, verification, signerKey); !s)
      return std::move(s).error();

    // Extract into <work>/entry/tree, check it, then move <work>/entry to <dir>/<digest>.
    std::string staged = work + "/entry";
    std::string tree = staged + "/" + std::string(kTree);
    if (::mkdir(staged.c_str(), 0755) != 0 || ::mkdir(tree.c_str(), 0755) != 0)
      return cacheError(systemError(errno, "package " + url + ": mkdir " + tree));
    ArchiveLimits limits{options.maxExtractedBytes, options.maxEntries};
    if (auto x = extractArchive(archive, tree, limits, "package " + url); !x)
      return std::move(x).error();
    auto package = loadPackageTree(tree, digest);
    if (!package)
      return withContext(std::move(package).error(), "package " + url);
    if (auto w = writeFileAtomic(staged + "/" + std::string(kVerification),
                                 verificationYaml(url, digest, verification, signerKey));
        !w)
      return cacheError(w.error().context("package " + url));
    if (auto s = durableRename(staged, digest); !s)
      return cacheError(s.error().context("package " + url));
    package->dir = dir + "/" + digest + "/" + std::string(kTree);
    return package;
  }

  // Downloads `url` into `archive`, hashing on the way; its sha256 must be `digest`.
  Result<void, PackageError> fetchArchive(const std::string& digest, const std::string& url,
                                          const std::string& archive) {
    FD out(::open(archive.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!out)
      return cacheError(systemError(errno, "package " + url + ": create " + archive));
    Sha256 hash;
    FetchOptions fetchOptions{options.maxArchiveBytes, options.fetchTimeout};
    auto fetched = fetch(url, fetchOptions, [&](const char* data, size_t size) -> Result<void> {
      hash.update(data, size);
      while (size > 0) {
        ssize_t n = ::write(out.get(), data, size);
        if (n < 0) {
          if (errno == EINTR)
            continue;
          return systemError(errno, "write " + archive);
        }
        data += n;
        size -= static_cast<size_t>(n);
      }
      return {};
    });
    if (!fetched)
      return packageError(kPackageFetchFailed, std::move(fetched).error().error);
    out.reset();
    std::string actual = hash.hexDigest();
    if (actual != digest)
      return packageError(kChecksumMismatch, invalidError("package " + url + ": sha256 is " +
                                                          actual + ", expected " + digest));
    return {};
  }

  // Checks the archive's signature when keys are configured or signatures required, and says
  // what was found in `verification` and `signerKey` (left as they are otherwise).
  Result<void, PackageError> checkSignature(const std::string& url, const std::string& archive,
                                            Verification& verification, std::string& signerKey) {
    if (keys.empty() && !options.requireSignatures)
      return {};
    std::string sigUrl = signatureUrl(url);
    auto sig = fetchToString(sigUrl, FetchOptions{kMaxSignatureBytes, options.fetchTimeout});
    if (!sig && sig.error().notFound) {
      if (options.requireSignatures)
        return packageError(kSignatureMissing,
                            invalidError("package " + url + ": signatures are required and " +
                                         sigUrl + " does not exist"));
      verification.signature = kSigAbsent;
      return {};
    }
    if (!sig)
      return packageError(kPackageFetchFailed, std::move(sig).error().error);
    auto mapped = MappedFile::open(archive);
    if (!mapped)
      return cacheError(mapped.error().context("package " + url));
    auto signer = verifySignature(keys, mapped->data(), *sig);
    if (!signer)
      return packageError(kSignatureInvalid,
                          signer.error().context("package " + url + ": signature " + sigUrl));
    verification = {std::string(kSigVerified), (*signer)->fingerprint()};
    signerKey = (*signer)->source();
    return {};
  }

  // Makes `staged` <dir>/<digest> (swapping out a stale entry), after its contents are on disk.
  Result<void> durableRename(const std::string& staged, const std::string& digest) {
    FD stagedFd(::open(staged.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!stagedFd || ::syncfs(stagedFd.get()) != 0)
      return systemError(errno, "sync " + staged);
    std::string entry = dir + "/" + digest;
    if (::rename(staged.c_str(), entry.c_str()) != 0) {
      if (errno != EEXIST && errno != ENOTEMPTY)
        return systemError(errno, "rename " + staged + " to " + entry);
      // A stale (or damaged) entry: swap atomically; the old one goes with the work directory.
      if (::renameat2(AT_FDCWD, staged.c_str(), AT_FDCWD, entry.c_str(), RENAME_EXCHANGE) != 0)
        return systemError(errno, "exchange " + staged + " and " + entry);
    }
    FD root(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root || ::fsync(root.get()) != 0)
      return systemError(errno, "sync " + dir);
    return {};
  }

  Result<Package, PackageError> resolve(const std::string& digest, const std::string& url) {
    if (auto hit = cached(digest)) {
      ++cacheHits;
      return std::move(*hit);
    }
    ++fetches;
    return download(digest, url);
  }
};

PackageCache::PackageCache(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PackageCache::~PackageCache() = default;
PackageCache::PackageCache(PackageCache&&) noexcept = default;
PackageCache& PackageCache::operator=(PackageCache&&) noexcept = default;

Result<PackageCache> PackageCache::open(const std::string& dir, CacheOptions options) {
  if (dir.empty())
    return invalidError("package cache: no directory given");
  std::error_code ec;
  fs::path root = fs::absolute(dir, ec).lexically_normal();
  if (ec)
    return Error(ec.value(), "package cache " + dir + ": " + ec.message());
  std::string rootText = root.string();
  while (rootText.size() > 1 && rootText.back() == '/')
    rootText.pop_back();
  if (::mkdir(rootText.c_str(), 0700) != 0) {
    if (errno == ENOENT) {
      fs::create_directories(root.parent_path(), ec);
      if (ec)
        return Error(ec.value(),
                     "package cache: create " + root.parent_path().string() + ": " + ec.message());
      if (::mkdir(rootText.c_str(), 0700) != 0 && errno != EEXIST)
        return systemError(errno, "package cache: mkdir " + rootText);
    } else if (errno != EEXIST) {
      return systemError(errno, "package cache: mkdir " + rootText);
    }
  }
  struct stat st {};
  if (::stat(rootText.c_str(), &st) != 0)
    return systemError(errno, "package cache: stat " + rootText);
  if (!S_ISDIR(st.st_mode))
    return invalidError("package cache: " + rootText + " is not a directory");

  auto impl = std::make_unique<Impl>();
  impl->dir = rootText;
  impl->tmpDir = rootText + "/" + std::string(kTmp);
  for (const std::string& file : options.trustedKeyFiles) {
    auto key = PublicKey::load(file);
    if (!key)
      return key.error().context("trusted key");
    impl->keys.push_back(std::move(*key));
  }
  if (options.requireSignatures && impl->keys.empty())
    return invalidError("package cache: signatures are required but no trusted key is "
                        "configured (--trusted-key), so no package could be verified");
  impl->options = std::move(options);
  if (::mkdir(impl->tmpDir.c_str(), 0700) != 0 && errno != EEXIST)
    return systemError(errno, "package cache: mkdir " + impl->tmpDir);
  impl->sweepTmp();
  return PackageCache(std::move(impl));
}

Result<Package, PackageError> PackageCache::get(const PackageRef& ref) {
  Impl& s = *impl_;
  auto digest = parseSha256(ref.sha256);
  if (!digest) {
    ++s.failures;
    return packageError(kChecksumMismatch, invalidError("package " + ref.url + ": sha256 \"" +
                                                        ref.sha256 + "\" is not 64 hex digits"));
  }
  if (!supportedUrl(ref.url)) {
    ++s.failures;
    return packageError(
        kPackageFetchFailed,
        invalidError("fetch " + ref.url + ": unsupported URL (http://, https:// or file:// only)"));
  }

  auto mine = std::make_shared<InFlight>();
  mine->url = ref.url;
  {
    std::unique_lock lock(s.mutex);
    for (;;) {
      auto it = s.inFlight.find(*digest);
      if (it == s.inFlight.end()) {
        s.inFlight.emplace(*digest, mine);
        break;
      }
      std::shared_ptr<InFlight> other = it->second;
      s.done.wait(lock, [&] { return other->done; });
      // Share its outcome, unless it failed for another URL: then try ours.
      if (other->result->ok() || other->url == ref.url) {
        ++(other->result->ok() ? s.cacheHits : s.failures);
        return *other->result;
      }
    }
  }

  auto result = s.resolve(*digest, ref.url);
  if (!result.ok())
    ++s.failures;
  {
    std::lock_guard lock(s.mutex);
    mine->result = result;
    mine->done = true;
    s.inFlight.erase(*digest);
  }
  s.done.notify_all();
  return result;
}

size_t PackageCache::collectGarbage(const std::set<std::string>& keep) {
  Impl& s = *impl_;
  std::set<std::string> keepLower;
  for (const std::string& d : keep)
    if (auto parsed = parseSha256(d))
      keepLower.insert(*parsed);
  std::vector<std::string> doomed;
  {
    std::lock_guard lock(s.mutex);
    std::error_code ec;
    for (fs::directory_iterator it(s.dir, ec), end; !ec && it != end; it.increment(ec)) {
      std::string name = it->path().filename().string();
      auto digest = parseSha256(name);
      if (!digest || *digest != name || keepLower.count(name) != 0 || s.inFlight.count(name) != 0)
        continue;
      // Out of sight first (a rename is atomic), then removed outside the lock.
      std::string moved = s.tmpName(name);
      if (::rename(it->path().c_str(), moved.c_str()) == 0)
        doomed.push_back(moved);
    }
  }
  for (const std::string& path : doomed) {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  s.sweepTmp();
  return doomed.size();
}

PackageCache::Stats PackageCache::stats() const {
  return Stats{impl_->fetches.load(), impl_->cacheHits.load(), impl_->failures.load()};
}

const std::string& PackageCache::dir() const {
  return impl_->dir;
}

std::vector<std::string> PackageCache::cachedDigests() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(impl_->dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    auto digest = parseSha256(name);
    if (digest && *digest == name && it->is_directory(ec))
      out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace bpfchain::packages
