#include "packages/archive.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <limits>
#include <map>
#include <new>
#include <optional>
#include <set>
#include <stdexcept>
#include <sys/stat.h>
#include <tuple>
#include <unistd.h>
#include <zlib.h>

#include "packages/file_util.h"
#include "system/escape.h"
#include "system/fd.h"

namespace bpfchain::packages {
namespace {

constexpr size_t kBlock = 512;
constexpr uint64_t kMaxMetadataBytes = 1 << 20; // one pax header or GNU long name
constexpr size_t kMaxPathBytes = 4096;
constexpr size_t kMaxNameBytes = 255;
constexpr int kMaxSymlinkHops = 40; // as the kernel's MAXSYMLINKS
constexpr size_t kChunk = size_t{64} << 10;

PackageError corrupt(const std::string& archive, const std::string& what) {
  return packageError(kArchiveCorrupt, invalidError(archive + ": " + what));
}
PackageError unsafe(const std::string& archive, const std::string& what) {
  return packageError(kArchiveUnsafe, invalidError(archive + ": " + what));
}
PackageError localError(const std::string& archive, int code, const std::string& what) {
  return packageError(kPackageCacheError, systemError(code, archive + ": " + what));
}

uint64_t saturatingAdd(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b ? std::numeric_limits<uint64_t>::max()
                                                      : a + b;
}
uint64_t saturatingMul(uint64_t a, uint64_t b) {
  return b != 0 && a > std::numeric_limits<uint64_t>::max() / b
             ? std::numeric_limits<uint64_t>::max()
             : a * b;
}

// ---------------------------------------------------------------------------------------------
// Writing

// Header field offsets and sizes (POSIX ustar).
struct Field {
  size_t offset;
  size_t size;
};
constexpr Field kName{0, 100}, kMode{100, 8}, kUid{108, 8}, kGid{116, 8}, kSize{124, 12},
    kMtime{136, 12}, kChksum{148, 8}, kType{156, 1}, kLinkname{157, 100}, kMagic{257, 6},
    kVersion{263, 2}, kDevMajor{329, 8}, kDevMinor{337, 8}, kPrefix{345, 155};

using Block = std::array<char, kBlock>;

void putString(Block& b, Field f, std::string_view s) {
  if (s.empty())
    return; // an empty view's data() may be null, which memcpy must not get (UBSan)
  std::memcpy(b.data() + f.offset, s.data(), std::min(f.size, s.size()));
}

// Octal with a terminating NUL when it fits, else GNU base-256 (big-endian, high bit set).
void putNumber(Block& b, Field f, uint64_t value) {
  char* p = b.data() + f.offset;
  int digits = static_cast<int>(f.size) - 1;
  if (digits >= 22 || value < (uint64_t{1} << (3 * digits))) {
    std::snprintf(p, f.size, "%0*llo", digits, static_cast<unsigned long long>(value));
    return;
  }
  std::memset(p, 0, f.size);
  p[0] = static_cast<char>(0x80);
  for (size_t i = f.size - 1; i > 0 && value != 0; --i, value >>= 8)
    p[i] = static_cast<char>(value & 0xff);
}

unsigned headerSum(const Block& b) {
  unsigned sum = 0;
  for (size_t i = 0; i < kBlock; ++i)
    sum += (i >= kChksum.offset && i < kChksum.offset + kChksum.size)
               ? ' '
               : static_cast<unsigned char>(b[i]);
  return sum;
}

void finishHeader(Block& b) {
  std::snprintf(b.data() + kChksum.offset, 7, "%06o", headerSum(b));
  b[kChksum.offset + 7] = ' ';
}

char typeFlag(EntryType type) {
  switch (type) {
  case EntryType::File:
    return '0';
  case EntryType::Hardlink:
    return '1';
  case EntryType::Symlink:
    return '2';
  case EntryType::CharDevice:
    return '3';
  case EntryType::BlockDevice:
    return '4';
  case EntryType::Directory:
    return '5';
  case EntryType::Fifo:
    return '6';
  }
  return '0';
}

void appendPadded(std::string& out, std::string_view data) {
  out.append(data);
  out.append((kBlock - data.size() % kBlock) % kBlock, '\0');
}

// A header block with the fields every kind of header shares.
Block baseHeader(std::string_view name, char type, uint64_t size, const ArchiveEntry& e, bool gnu) {
  Block b{};
  putString(b, kName, name);
  putNumber(b, kMode, e.mode & 07777);
  putNumber(b, kUid, e.uid);
  putNumber(b, kGid, e.gid);
  putNumber(b, kSize, size);
  putNumber(b, kMtime, e.mtime);
  b[kType.offset] = type;
  if (gnu) {
    std::memcpy(b.data() + kMagic.offset, "ustar  ", 8); // GNU magic and version: "ustar  \0"
  } else {
    std::memcpy(b.data() + kMagic.offset, "ustar", 6);
    std::memcpy(b.data() + kVersion.offset, "00", 2);
  }
  return b;
}

// ustar's split of a long name into prefix (155) '/' name (100), when one exists.
std::optional<std::pair<std::string_view, std::string_view>> splitUstar(std::string_view path) {
  if (path.size() <= kName.size)
    return std::pair{std::string_view(), path};
  size_t first = path.size() - kName.size - 1;
  for (size_t p = first; p < path.size() && p <= kPrefix.size; ++p)
    if (path[p] == '/' && p + 1 < path.size())
      return std::pair{path.substr(0, p), path.substr(p + 1)};
  return std::nullopt;
}

std::string paxRecord(std::string_view key, std::string_view value) {
  size_t payload = 1 + key.size() + 1 + value.size() + 1; // " key=value\n"
  size_t length = payload + std::to_string(payload).size();
  if (std::to_string(length).size() + payload != length)
    length = payload + std::to_string(length).size();
  return std::to_string(length) + " " + std::string(key) + "=" + std::string(value) + "\n";
}

// ---------------------------------------------------------------------------------------------
// Reading

// Streams the decompressed bytes of a gzip file (several members are read one after another).
class GzipReader {
public:
  GzipReader(int fd, const std::string& name, uint64_t cap) : fd_(fd), name_(name), cap_(cap) {
    if (inflateInit2(&zs_, 15 + 16) != Z_OK) // gzip only
      throw std::bad_alloc();
  }
  ~GzipReader() { inflateEnd(&zs_); }
  GzipReader(const GzipReader&) = delete;
  GzipReader& operator=(const GzipReader&) = delete;

  // Up to `size` bytes; 0 only at the end of the last member.
  Result<size_t, PackageError> read(char* out, size_t size) {
    zs_.next_out = reinterpret_cast<Bytef*>(out);
    zs_.avail_out = static_cast<uInt>(size);
    while (zs_.avail_out > 0 && !finished_) {
      if (zs_.avail_in == 0 && !eof_) {
        ssize_t n = ::read(fd_, in_.data(), in_.size());
        if (n < 0) {
          if (errno == EINTR)
            continue;
          return localError(name_, errno, "read");
        }
        if (n == 0)
          eof_ = true;
        zs_.next_in = in_.data();
        zs_.avail_in = static_cast<uInt>(n);
      }
      if (zs_.avail_in == 0 && eof_) {
        if (inMember_)
          return corrupt(name_, "gzip data ends early (truncated)");
        if (!sawMember_)
          return corrupt(name_, "empty file, not gzip data");
        finished_ = true;
        break;
      }
      if (!inMember_) {
        inflateReset(&zs_);
        inMember_ = true;
      }
      int rc = inflate(&zs_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        inMember_ = false;
        sawMember_ = true;
      } else if (rc == Z_MEM_ERROR) {
        throw std::bad_alloc();
      } else if (rc == Z_NEED_DICT) {
        return corrupt(name_, "gzip data needs a preset dictionary");
      } else if (rc == Z_DATA_ERROR || rc == Z_STREAM_ERROR) {
        return corrupt(name_, std::string("not valid gzip data (") +
                                  (zs_.msg != nullptr ? zs_.msg : "inflate failed") + ")");
      }
      // Z_OK, or Z_BUF_ERROR when more input is needed: loop.
    }
    size_t produced = size - zs_.avail_out;
    total_ += produced;
    if (total_ > cap_)
      return unsafe(name_, "decompresses to more than " + std::to_string(cap_) + " bytes");
    return produced;
  }

private:
  int fd_;
  const std::string& name_;
  uint64_t cap_;
  z_stream zs_{};
  std::array<Bytef, kChunk> in_{};
  uint64_t total_ = 0;
  bool eof_ = false;
  bool inMember_ = false;
  bool sawMember_ = false;
  bool finished_ = false;
};

std::string fieldString(const Block& b, Field f) {
  const char* p = b.data() + f.offset;
  return std::string(p, strnlen(p, f.size));
}

std::optional<uint64_t> parseNumber(const Block& b, Field f) {
  const auto* p = reinterpret_cast<const unsigned char*>(b.data() + f.offset);
  if (p[0] & 0x80) {
    if (p[0] != 0x80)
      return std::nullopt; // negative, or more than 64 bits
    uint64_t value = 0;
    for (size_t i = 1; i < f.size; ++i) {
      if (value > (std::numeric_limits<uint64_t>::max() >> 8))
        return std::nullopt;
      value = (value << 8) | p[i];
    }
    return value;
  }
  size_t i = 0;
  while (i < f.size && p[i] == ' ')
    ++i;
  uint64_t value = 0;
  for (; i < f.size && p[i] >= '0' && p[i] <= '7'; ++i) {
    if (value > (std::numeric_limits<uint64_t>::max() >> 3))
      return std::nullopt;
    value = (value << 3) | (p[i] - '0');
  }
  for (; i < f.size; ++i)
    if (p[i] != ' ' && p[i] != '\0')
      return std::nullopt;
  return value;
}

struct PaxValues {
  std::optional<std::string> path;
  std::optional<std::string> linkpath;
  std::optional<uint64_t> size;
};

std::optional<uint64_t> parseDecimal(std::string_view s) {
  if (s.empty() || s.size() > 19)
    return std::nullopt;
  uint64_t value = 0;
  for (char c : s) {
    if (c < '0' || c > '9')
      return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return value;
}

// Streams a tar archive's entries out of a GzipReader.
class TarReader {
public:
  TarReader(GzipReader& in, const std::string& name, const ArchiveLimits& limits)
      : in_(in), name_(name), limits_(limits) {}

  // The next entry (without its data), or nullopt at end-of-archive. What the caller did not
  // read of the previous entry's data is skipped.
  Result<std::optional<ArchiveEntry>, PackageError> next() {
    if (auto s = skip(remaining_ + padding_); !s)
      return s.error();
    remaining_ = padding_ = 0;
    Metadata meta;
    for (;;) {
      Block b;
      uint64_t at = offset_;
      auto r = readExact(b.data(), kBlock, "a header");
      if (!r)
        return r.error();
      if (std::all_of(b.begin(), b.end(), [](char c) { return c == 0; })) {
        if (meta.seen)
          return corrupt(name_, "extended header at offset " + std::to_string(at) +
                                    " is not followed by an entry");
        return std::optional<ArchiveEntry>();
      }
      auto size = checkHeader(b, at);
      if (!size)
        return size.error();
      char type = b[kType.offset];
      if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
        if (auto m = readMetadata(type, *size, at, meta); !m)
          return m.error();
        continue;
      }
      uint64_t dataSize = meta.pax.size ? *meta.pax.size : *size;
      auto e = entryFromHeader(b, meta);
      if (!e)
        return e.error();
      if (auto a = admit(*e, dataSize); !a)
        return a.error();
      return std::optional<ArchiveEntry>(std::move(*e));
    }
  }

  // The size of the current entry's data.
  uint64_t currentSize() const { return currentSize_; }

  // Streams the current entry's data into sink(const char*, size_t) -> Result<void, PackageError>.
  template <typename Sink> Result<void, PackageError> readData(Sink&& sink) {
    std::array<char, kChunk> buf;
    while (remaining_ > 0) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, buf.size()));
      if (auto r = readExact(buf.data(), n, "the data of " + quote(current_)); !r)
        return r.error();
      remaining_ -= n;
      if (auto s = sink(buf.data(), n); !s)
        return s;
    }
    return {};
  }

  // After end-of-archive: reads the rest of the gzip stream, so that its CRC is checked.
  Result<void, PackageError> finish() {
    std::array<char, kChunk> buf;
    for (;;) {
      auto n = in_.read(buf.data(), buf.size());
      if (!n)
        return n.error();
      if (*n == 0)
        return {};
    }
  }

private:
  // What the extended headers before an entry said about it.
  struct Metadata {
    PaxValues pax;
    std::optional<std::string> gnuName, gnuLink;
    bool seen = false; // an extended header must be followed by an entry
  };

  // Counts the header against the entry limit, then checks its checksum (unsigned, or signed
  // as old tars wrote it) and returns its size field.
  Result<uint64_t, PackageError> checkHeader(const Block& b, uint64_t at) {
    if (++headers_ > saturatingAdd(saturatingMul(limits_.maxEntries, 4), 16))
      return unsafe(name_, "more than " + std::to_string(limits_.maxEntries) + " entries");
    auto stored = parseNumber(b, kChksum);
    unsigned sum = headerSum(b);
    int signedSum = 0;
    for (size_t i = 0; i < kBlock; ++i)
      signedSum += (i >= kChksum.offset && i < kChksum.offset + kChksum.size)
                       ? ' '
                       : static_cast<signed char>(b[i]);
    if (!stored || (*stored != sum && static_cast<int64_t>(*stored) != signedSum))
      return corrupt(name_, "tar header checksum mismatch at offset " + std::to_string(at));
    auto size = parseNumber(b, kSize);
    if (!size)
      return corrupt(name_, "invalid size field in the header at offset " + std::to_string(at));
    return *size;
  }

  // Reads a pax ('x', 'g') or GNU long name ('L', 'K') record of at most kMaxMetadataBytes
  // into `meta`, for the entry that follows.
  Result<void, PackageError> readMetadata(char type, uint64_t size, uint64_t at, Metadata& meta) {
    if (size > kMaxMetadataBytes)
      return unsafe(name_, "extended header at offset " + std::to_string(at) + " has " +
                               std::to_string(size) + " bytes (limit " +
                               std::to_string(kMaxMetadataBytes) + ")");
    std::string data(size, '\0');
    if (auto d = readExact(data.data(), data.size(), "an extended header"); !d)
      return d.error();
    if (auto s = skip(pad(size)); !s)
      return s.error();
    meta.seen = true;
    if (type == 'x') {
      if (auto p = parsePax(data, meta.pax, at); !p)
        return p.error();
    } else if (type == 'L') {
      meta.gnuName = data.substr(0, strnlen(data.data(), data.size()));
    } else if (type == 'K') {
      meta.gnuLink = data.substr(0, strnlen(data.data(), data.size()));
    } // 'g': global pax headers carry nothing we restore
    return {};
  }

  // The entry a header describes: its path and link target (pax over GNU over ustar), numeric
  // fields and type.
  Result<ArchiveEntry, PackageError> entryFromHeader(const Block& b, const Metadata& meta) {
    bool posix = std::memcmp(b.data() + kMagic.offset, "ustar", 6) == 0;
    ArchiveEntry e;
    if (meta.pax.path) {
      e.path = *meta.pax.path;
    } else if (meta.gnuName) {
      e.path = *meta.gnuName;
    } else {
      e.path = fieldString(b, kName);
      std::string prefix = posix ? fieldString(b, kPrefix) : "";
      if (!prefix.empty())
        e.path = prefix + "/" + e.path;
    }
    e.linkTarget = meta.pax.linkpath ? *meta.pax.linkpath
                   : meta.gnuLink    ? *meta.gnuLink
                                     : fieldString(b, kLinkname);
    auto mode = parseNumber(b, kMode);
    auto uid = parseNumber(b, kUid);
    auto gid = parseNumber(b, kGid);
    auto mtime = parseNumber(b, kMtime);
    if (!mode || !uid || !gid || !mtime)
      return corrupt(name_, "invalid numeric field in the header of " + quote(e.path));
    e.mode = static_cast<uint32_t>(*mode & 07777);
    e.uid = static_cast<uint32_t>(*uid);
    e.gid = static_cast<uint32_t>(*gid);
    e.mtime = *mtime;
    if (auto t = setEntryType(b, e); !t)
      return t.error();
    return e;
  }

  // The entry type from the header's type flag; any flag not listed is refused.
  Result<void, PackageError> setEntryType(const Block& b, ArchiveEntry& e) {
    char type = b[kType.offset];
    switch (type) {
    case '0':
    case '7':
      e.type = EntryType::File;
      return {};
    case '\0':
      e.type = !e.path.empty() && e.path.back() == '/' ? EntryType::Directory : EntryType::File;
      return {};
    case '1':
      e.type = EntryType::Hardlink;
      return {};
    case '2':
      e.type = EntryType::Symlink;
      return {};
    case '3':
    case '4': {
      e.type = type == '3' ? EntryType::CharDevice : EntryType::BlockDevice;
      auto major = parseNumber(b, kDevMajor);
      auto minor = parseNumber(b, kDevMinor);
      e.devMajor = major ? static_cast<uint32_t>(*major) : 0;
      e.devMinor = minor ? static_cast<uint32_t>(*minor) : 0;
      return {};
    }
    case '5':
      e.type = EntryType::Directory;
      return {};
    case '6':
      e.type = EntryType::Fifo;
      return {};
    default: {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(type));
      return unsafe(name_, quote(e.path) + ": unsupported tar entry type " +
                               (type > 0x20 && type < 0x7f ? std::string("'") + type + "'"
                                                           : std::string(buf)));
    }
    }
  }

  // Counts the entry against the entry and extracted-bytes limits and makes its data the
  // current one.
  Result<void, PackageError> admit(const ArchiveEntry& e, uint64_t dataSize) {
    if (++entries_ > limits_.maxEntries)
      return unsafe(name_, "more than " + std::to_string(limits_.maxEntries) + " entries");
    if (e.type == EntryType::File) {
      fileBytes_ = saturatingAdd(fileBytes_, dataSize);
      if (fileBytes_ > limits_.maxExtractedBytes)
        return unsafe(name_, "files add up to more than " +
                                 std::to_string(limits_.maxExtractedBytes) + " bytes (at " +
                                 quote(e.path) + ", " + std::to_string(dataSize) + " bytes)");
    }
    remaining_ = currentSize_ = dataSize;
    padding_ = pad(dataSize);
    current_ = e.path;
    return {};
  }

  static uint64_t pad(uint64_t size) { return (kBlock - size % kBlock) % kBlock; }

  Result<void, PackageError> readExact(char* out, size_t size, const std::string& what) {
    size_t done = 0;
    while (done < size) {
      auto n = in_.read(out + done, size - done);
      if (!n)
        return n.error();
      if (*n == 0) {
        if (what == "a header")
          return corrupt(name_, "tar data ends at offset " + std::to_string(offset_ + done) +
                                    " without the end-of-archive marker (truncated)");
        return corrupt(name_, "tar data ends in " + what + " (truncated)");
      }
      done += *n;
    }
    offset_ += size;
    return {};
  }

  Result<void, PackageError> skip(uint64_t size) {
    std::array<char, kChunk> buf;
    while (size > 0) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(size, buf.size()));
      if (auto r = readExact(buf.data(), n, "the data of " + quote(current_)); !r)
        return r;
      size -= n;
    }
    return {};
  }

  Result<void, PackageError> parsePax(std::string_view data, PaxValues& pax, uint64_t at) {
    auto bad = [&](const std::string& what) {
      return corrupt(name_, "pax header at offset " + std::to_string(at) + ": " + what);
    };
    while (!data.empty()) {
      size_t space = data.find(' ');
      if (space == std::string_view::npos)
        return bad("record without a length");
      auto length = parseDecimal(data.substr(0, space));
      if (!length || *length < space + 3 || *length > data.size())
        return bad("invalid record length");
      std::string_view record = data.substr(0, *length);
      if (record.back() != '\n')
        return bad("record does not end with a newline");
      std::string_view kv = record.substr(space + 1, record.size() - space - 2);
      size_t eq = kv.find('=');
      if (eq == std::string_view::npos)
        return bad("record without '='");
      std::string_view key = kv.substr(0, eq), value = kv.substr(eq + 1);
      if (key == "path") {
        pax.path = value.empty() ? std::nullopt : std::optional<std::string>(value);
      } else if (key == "linkpath") {
        pax.linkpath = value.empty() ? std::nullopt : std::optional<std::string>(value);
      } else if (key == "size") {
        auto size = parseDecimal(value);
        if (!size)
          return bad("invalid size " + quote(value));
        pax.size = size;
      } else if (key.starts_with("GNU.sparse")) {
        return unsafe(name_, "sparse files are not supported (pax header at offset " +
                                 std::to_string(at) + ")");
      }
      data.remove_prefix(*length);
    }
    return {};
  }

  GzipReader& in_;
  const std::string& name_;
  const ArchiveLimits& limits_;
  uint64_t remaining_ = 0;
  uint64_t currentSize_ = 0;
  uint64_t padding_ = 0;
  uint64_t offset_ = 0;
  uint64_t headers_ = 0;
  uint64_t entries_ = 0;
  uint64_t fileBytes_ = 0;
  std::string current_;
};

// What the whole decompressed stream may add up to: the files, plus headers and padding.
uint64_t streamCap(const ArchiveLimits& limits) {
  return saturatingAdd(
      saturatingAdd(limits.maxExtractedBytes, saturatingMul(limits.maxEntries, uint64_t{8} << 10)),
      4u << 20);
}

// ---------------------------------------------------------------------------------------------
// Extraction

// A stored path as components: no empty or "." components; absolute paths and ".." refused.
Result<std::vector<std::string>, std::string> splitPath(std::string_view path) {
  if (path.empty())
    return std::string("empty path");
  if (path.size() > kMaxPathBytes)
    return "path longer than " + std::to_string(kMaxPathBytes) + " bytes";
  if (path.find('\0') != std::string_view::npos)
    return std::string("NUL byte in path");
  if (path.front() == '/')
    return std::string("absolute path");
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos)
      end = path.size();
    std::string_view c = path.substr(start, end - start);
    if (c == "..")
      return std::string("\"..\" in path");
    if (c.size() > kMaxNameBytes)
      return "name longer than " + std::to_string(kMaxNameBytes) + " bytes";
    if (!c.empty() && c != ".")
      out.emplace_back(c);
    start = end + 1;
  }
  return out;
}

std::string joinPath(const std::vector<std::string>& parts, size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) {
    if (i > 0)
      out += '/';
    out += parts[i];
  }
  return out;
}

class Extractor {
public:
  Extractor(const std::string& archive, int root) : archive_(archive), root_(root) {}

  // The directory holding parts[0..count), every component opened with O_NOFOLLOW (so a
  // symbolic link, or a file, in the way is refused); missing ones are created when `create`.
  Result<FD, PackageError> openDir(const std::vector<std::string>& parts, size_t count, bool create,
                                   const std::string& entry) {
    FD cur(::fcntl(root_, F_DUPFD_CLOEXEC, 0));
    if (!cur)
      return localError(archive_, errno, "dup");
    for (size_t i = 0; i < count; ++i) {
      const char* name = parts[i].c_str();
      int fd = ::openat(cur.get(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0 && errno == ENOENT && create) {
        if (::mkdirat(cur.get(), name, 0755) != 0 && errno != EEXIST)
          return localError(archive_, errno, "mkdir " + joinPath(parts, i + 1));
        fd = ::openat(cur.get(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0 && ::fchmod(fd, 0755) != 0) {
          int e = errno;
          ::close(fd);
          return localError(archive_, e, "chmod " + joinPath(parts, i + 1));
        }
      }
      if (fd < 0) {
        if (errno == ELOOP || errno == ENOTDIR || errno == ENOENT)
          return unsafe(archive_, quote(entry) + ": " + quote(joinPath(parts, i + 1)) +
                                      " is not a directory of the archive");
        return localError(archive_, errno, "open " + joinPath(parts, i + 1));
      }
      cur.reset(fd);
    }
    return cur;
  }

  Result<void, PackageError> directory(const std::vector<std::string>& parts,
                                       const std::string& entry) {
    auto parent = openDir(parts, parts.size() - 1, true, entry);
    if (!parent)
      return parent.error();
    const char* leaf = parts.back().c_str();
    if (::mkdirat(parent->get(), leaf, 0755) != 0 && errno != EEXIST)
      return localError(archive_, errno, "mkdir " + joinPath(parts, parts.size()));
    FD dir(::openat(parent->get(), leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir)
      return unsafe(archive_, quote(entry) + ": conflicts with an earlier entry");
    if (::fchmod(dir.get(), 0755) != 0)
      return localError(archive_, errno, "chmod " + entry);
    return {};
  }

  template <typename Source>
  Result<void, PackageError> file(const std::vector<std::string>& parts, uint32_t mode,
                                  const std::string& entry, Source&& readData) {
    auto parent = openDir(parts, parts.size() - 1, true, entry);
    if (!parent)
      return parent.error();
    FD fd(::openat(parent->get(), parts.back().c_str(),
                   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) {
      if (errno == EEXIST)
        return unsafe(archive_, quote(entry) + ": duplicate entry");
      return localError(archive_, errno, "create " + entry);
    }
    auto written = readData([&](const char* data, size_t size) -> Result<void, PackageError> {
      while (size > 0) {
        ssize_t n = ::write(fd.get(), data, size);
        if (n < 0) {
          if (errno == EINTR)
            continue;
          return localError(archive_, errno, "write " + entry);
        }
        data += n;
        size -= static_cast<size_t>(n);
      }
      return {};
    });
    if (!written)
      return written;
    if (::fchmod(fd.get(), (mode & 0111) != 0 ? 0755 : 0644) != 0)
      return localError(archive_, errno, "chmod " + entry);
    return {};
  }

  Result<void, PackageError> hardlink(const std::vector<std::string>& parts,
                                      const std::vector<std::string>& target,
                                      const std::string& entry) {
    auto targetDir = openDir(target, target.size() - 1, false, entry);
    if (!targetDir)
      return targetDir.error();
    auto parent = openDir(parts, parts.size() - 1, true, entry);
    if (!parent)
      return parent.error();
    if (::linkat(targetDir->get(), target.back().c_str(), parent->get(), parts.back().c_str(), 0) !=
        0) {
      if (errno == EEXIST)
        return unsafe(archive_, quote(entry) + ": duplicate entry");
      return localError(archive_, errno, "link " + entry);
    }
    return {};
  }

  Result<void, PackageError> symlink(const std::vector<std::string>& parts,
                                     const std::string& target, const std::string& entry) {
    auto parent = openDir(parts, parts.size() - 1, true, entry);
    if (!parent)
      return parent.error();
    if (::symlinkat(target.c_str(), parent->get(), parts.back().c_str()) != 0) {
      if (errno == EEXIST)
        return unsafe(archive_, quote(entry) + ": conflicts with an earlier entry");
      return localError(archive_, errno, "symlink " + entry);
    }
    return {};
  }

private:
  const std::string& archive_;
  int root_;
};

// Whether the symlink at `link` (components) with `target` resolves inside the tree, following
// the archive's other symlinks as the kernel would. Empty when it does, else why not.
std::string symlinkEscapes(const std::vector<std::string>& link, const std::string& target,
                           const std::map<std::string, std::string>& symlinks) {
  std::vector<std::string> stack(link.begin(), link.end() - 1);
  std::deque<std::string> pending;
  auto push = [&](const std::string& path) {
    std::deque<std::string> parts;
    size_t start = 0;
    while (start <= path.size()) {
      size_t end = path.find('/', start);
      if (end == std::string::npos)
        end = path.size();
      parts.push_back(path.substr(start, end - start));
      start = end + 1;
    }
    pending.insert(pending.begin(), parts.begin(), parts.end());
  };
  push(target);
  int hops = 0;
  while (!pending.empty()) {
    std::string c = std::move(pending.front());
    pending.pop_front();
    if (c.empty() || c == ".")
      continue;
    if (c == "..") {
      if (stack.empty())
        return "points outside the package";
      stack.pop_back();
      continue;
    }
    stack.push_back(std::move(c));
    auto it = symlinks.find(joinPath(stack, stack.size()));
    if (it == symlinks.end())
      continue;
    if (++hops > kMaxSymlinkHops)
      return "is part of a symlink loop";
    if (!it->second.empty() && it->second.front() == '/')
      return "points outside the package (through " + quote(it->first) + ")";
    stack.pop_back();
    push(it->second);
  }
  return "";
}

} // namespace

std::string_view entryTypeName(EntryType type) {
  switch (type) {
  case EntryType::File:
    return "file";
  case EntryType::Directory:
    return "directory";
  case EntryType::Symlink:
    return "symlink";
  case EntryType::Hardlink:
    return "hardlink";
  case EntryType::CharDevice:
    return "character device";
  case EntryType::BlockDevice:
    return "block device";
  case EntryType::Fifo:
    return "fifo";
  }
  return "unknown";
}

std::string encodeTar(const std::vector<ArchiveEntry>& entries, LongNames longNames) {
  std::string out;
  bool gnu = longNames == LongNames::Gnu;
  for (const ArchiveEntry& e : entries) {
    std::string_view name = e.path, prefix;
    bool longName = false;
    if (gnu) {
      longName = name.size() > kName.size;
    } else if (auto split = splitUstar(e.path)) {
      prefix = split->first;
      name = split->second;
    } else {
      longName = true;
    }
    bool longLink = e.linkTarget.size() > kLinkname.size;
    uint64_t size = e.type == EntryType::File ? e.data.size() : 0;
    if (gnu) {
      for (auto [needed, type, value] :
           {std::tuple{longName, 'L', std::string_view(e.path)},
            std::tuple{longLink, 'K', std::string_view(e.linkTarget)}}) {
        if (!needed)
          continue;
        std::string data(value);
        data.push_back('\0');
        ArchiveEntry meta;
        Block b = baseHeader("././@LongLink", type, data.size(), meta, true);
        finishHeader(b);
        out.append(b.data(), b.size());
        appendPadded(out, data);
      }
    } else if (longName || longLink) {
      std::string records;
      if (longName)
        records += paxRecord("path", e.path);
      if (longLink)
        records += paxRecord("linkpath", e.linkTarget);
      ArchiveEntry meta;
      meta.mode = 0644;
      Block b = baseHeader("././@PaxHeader", 'x', records.size(), meta, false);
      finishHeader(b);
      out.append(b.data(), b.size());
      appendPadded(out, records);
    }
    if (longName)
      name = name.substr(0, std::min(name.size(), kName.size));
    Block b = baseHeader(name, typeFlag(e.type), size, e, gnu);
    putString(b, kLinkname, std::string_view(e.linkTarget).substr(0, kLinkname.size));
    if (!gnu)
      putString(b, kPrefix, prefix);
    if (e.type == EntryType::CharDevice || e.type == EntryType::BlockDevice) {
      putNumber(b, kDevMajor, e.devMajor);
      putNumber(b, kDevMinor, e.devMinor);
    }
    finishHeader(b);
    out.append(b.data(), b.size());
    if (e.type == EntryType::File)
      appendPadded(out, e.data);
  }
  out.append(2 * kBlock, '\0');
  return out;
}

std::string gzipCompress(std::string_view data) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::bad_alloc();
  std::string out(deflateBound(&zs, data.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) // deflateBound guarantees the room: a bug otherwise
    throw std::logic_error("deflate did not finish");
  return out;
}

Result<void> writeArchive(const std::string& path, std::vector<ArchiveEntry> entries) {
  std::set<std::string> seen;
  for (ArchiveEntry& e : entries) {
    auto parts = splitPath(e.path);
    if (!parts)
      return invalidError(path + ": entry " + quote(e.path) + ": " + parts.error());
    if (parts->empty())
      return invalidError(path + ": entry " + quote(e.path) + " names the archive root");
    e.path = joinPath(*parts, parts->size());
    if (!seen.insert(e.path).second)
      return invalidError(path + ": duplicate entry " + quote(e.path));
    switch (e.type) {
    case EntryType::File:
      e.mode = (e.mode & 0111) != 0 ? 0755 : 0644;
      break;
    case EntryType::Directory:
      e.mode = 0755;
      break;
    case EntryType::Symlink:
    case EntryType::Hardlink:
      e.mode = 0777;
      if (e.linkTarget.empty())
        return invalidError(path + ": link " + quote(e.path) + " has no target");
      break;
    default:
      return invalidError(path + ": " + quote(e.path) + ": a " +
                          std::string(entryTypeName(e.type)) + " cannot be packaged");
    }
    e.mtime = 0;
    e.uid = e.gid = 0;
    if (e.type != EntryType::File)
      e.data.clear();
  }
  // Hard links name a file of the archive (through other hard links, resolved here) and come
  // after every other entry, so that extraction has created their target.
  std::map<std::string, const ArchiveEntry*> byPath;
  for (const ArchiveEntry& e : entries)
    byPath.emplace(e.path, &e);
  std::map<std::string, std::string> resolved;
  for (const ArchiveEntry& e : entries) {
    if (e.type != EntryType::Hardlink)
      continue;
    auto target = splitPath(e.linkTarget);
    std::string name = target ? joinPath(*target, target->size()) : "";
    for (size_t hops = 0; hops <= entries.size(); ++hops) {
      auto it = byPath.find(name);
      if (it == byPath.end() || it->second->type != EntryType::Hardlink)
        break;
      auto next = splitPath(it->second->linkTarget);
      name = next ? joinPath(*next, next->size()) : "";
    }
    auto it = byPath.find(name);
    if (it == byPath.end() || it->second->type != EntryType::File)
      return invalidError(path + ": hard link " + quote(e.path) + " -> " + quote(e.linkTarget) +
                          ": the target is not a file of the archive");
    resolved[e.path] = name;
  }
  for (ArchiveEntry& e : entries)
    if (e.type == EntryType::Hardlink)
      e.linkTarget = resolved[e.path];
  std::sort(entries.begin(), entries.end(), [](const ArchiveEntry& a, const ArchiveEntry& b) {
    bool aLink = a.type == EntryType::Hardlink, bLink = b.type == EntryType::Hardlink;
    return aLink != bLink ? bLink : a.path < b.path;
  });
  for (ArchiveEntry& e : entries)
    if (e.type == EntryType::Directory)
      e.path += '/';
  return writeFileAtomic(path, gzipCompress(encodeTar(entries)));
}

Result<std::vector<ArchiveEntry>, PackageError> readArchive(const std::string& path,
                                                            const ArchiveLimits& limits) {
  FD fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd)
    return localError(path, errno, "open");
  GzipReader gz(fd.get(), path, streamCap(limits));
  TarReader tar(gz, path, limits);
  std::vector<ArchiveEntry> out;
  for (;;) {
    auto e = tar.next();
    if (!e)
      return e.error();
    if (!*e)
      break;
    ArchiveEntry entry = std::move(**e);
    if (entry.type == EntryType::File) {
      auto r = tar.readData([&](const char* data, size_t size) -> Result<void, PackageError> {
        entry.data.append(data, size);
        return {};
      });
      if (!r)
        return r.error();
    }
    out.push_back(std::move(entry));
  }
  if (auto f = tar.finish(); !f)
    return f.error();
  return out;
}

namespace {

// What extractArchive has placed so far, for the duplicate, hard link and symlink checks.
struct ExtractedTree {
  std::map<std::string, EntryType> created;
  std::map<std::string, std::string> symlinks;
  std::vector<std::pair<std::vector<std::string>, std::string>> symlinkOrder;
};

// The entry's path components after refusing an unsafe path, an entry other than a directory
// at the package's root and a duplicate; nullopt for "./" (the target directory itself).
Result<std::optional<std::vector<std::string>>, PackageError>
admitPath(const std::string& name, const ArchiveEntry& e, ExtractedTree& tree) {
  auto parts = splitPath(e.path);
  if (!parts)
    return unsafe(name, quote(e.path) + ": " + parts.error());
  if (parts->empty()) {
    if (e.type == EntryType::Directory)
      return std::optional<std::vector<std::string>>();
    return unsafe(name, quote(e.path) + ": a " + std::string(entryTypeName(e.type)) +
                            " cannot be the package's root");
  }
  std::string path = joinPath(*parts, parts->size());
  auto [it, inserted] = tree.created.emplace(path, e.type);
  if (!inserted && !(e.type == EntryType::Directory && it->second == EntryType::Directory))
    return unsafe(name, quote(e.path) + ": duplicate entry");
  return std::optional<std::vector<std::string>>(std::move(*parts));
}

// A hard link's target components: it must name an earlier file of the package, not itself.
Result<std::vector<std::string>, PackageError> hardlinkTarget(const std::string& name,
                                                              const ArchiveEntry& e,
                                                              const std::string& path,
                                                              const ExtractedTree& tree) {
  auto target = splitPath(e.linkTarget);
  if (!target)
    return unsafe(name, "hard link " + quote(e.path) + " -> " + quote(e.linkTarget) + ": " +
                            target.error());
  auto t = tree.created.find(joinPath(*target, target->size()));
  if (target->empty() || t == tree.created.end() ||
      (t->second != EntryType::File && t->second != EntryType::Hardlink) ||
      joinPath(*target, target->size()) == path)
    return unsafe(name, "hard link " + quote(e.path) + " -> " + quote(e.linkTarget) +
                            ": the target is not an earlier file of the package");
  return std::move(*target);
}

// Refuses an empty, oversized, NUL-holding or absolute symlink target; the rest is checked
// once every symlink is known (createSymlinks).
Result<void, PackageError> checkSymlinkTarget(const std::string& name, const ArchiveEntry& e) {
  if (e.linkTarget.empty())
    return corrupt(name, "symlink " + quote(e.path) + " has an empty target");
  if (e.linkTarget.size() > kMaxPathBytes || e.linkTarget.find('\0') != std::string::npos)
    return unsafe(name, "symlink " + quote(e.path) + ": invalid target");
  if (e.linkTarget.front() == '/')
    return unsafe(name, "symlink " + quote(e.path) + " -> " + quote(e.linkTarget) +
                            " points outside the package (absolute target)");
  return {};
}

// Places one entry under the target directory; symlinks are only recorded (createSymlinks
// makes them) and device nodes and fifos are refused.
Result<void, PackageError> extractEntry(const std::string& name, const ArchiveEntry& e,
                                        const std::vector<std::string>& parts, TarReader& tar,
                                        Extractor& x, ExtractedTree& tree) {
  std::string path = joinPath(parts, parts.size());
  switch (e.type) {
  case EntryType::CharDevice:
  case EntryType::BlockDevice:
    return unsafe(name, quote(e.path) + ": device nodes are not allowed");
  case EntryType::Fifo:
    return unsafe(name, quote(e.path) + ": fifos are not allowed");
  case EntryType::Directory:
    return x.directory(parts, e.path);
  case EntryType::File:
    return x.file(parts, e.mode, e.path, [&](auto&& sink) { return tar.readData(sink); });
  case EntryType::Hardlink: {
    auto target = hardlinkTarget(name, e, path, tree);
    if (!target)
      return target.error();
    return x.hardlink(parts, *target, e.path);
  }
  case EntryType::Symlink:
    if (auto c = checkSymlinkTarget(name, e); !c)
      return c;
    tree.symlinks.emplace(path, e.linkTarget);
    tree.symlinkOrder.emplace_back(parts, e.linkTarget);
    return {};
  }
  return {};
}

// Symbolic links last: nothing else was created through one, and each is checked against
// all the others (a later link could otherwise redirect an earlier one's target).
Result<void, PackageError> createSymlinks(const std::string& name, const ExtractedTree& tree,
                                          Extractor& x) {
  for (const auto& [parts, target] : tree.symlinkOrder) {
    std::string why = symlinkEscapes(parts, target, tree.symlinks);
    if (!why.empty())
      return unsafe(name, "symlink " + quote(joinPath(parts, parts.size())) + " -> " +
                              quote(target) + " " + why);
  }
  for (const auto& [parts, target] : tree.symlinkOrder) {
    std::string path = joinPath(parts, parts.size());
    if (auto r = x.symlink(parts, target, path); !r)
      return r.error();
  }
  return {};
}

} // namespace

Result<std::vector<ExtractedEntry>, PackageError> extractArchive(const std::string& archivePath,
                                                                 const std::string& targetDir,
                                                                 const ArchiveLimits& limits,
                                                                 const std::string& displayName) {
  FD root(::open(targetDir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root)
    return localError(targetDir, errno, "open");
  FD fd(::open(archivePath.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd)
    return localError(archivePath, errno, "open");
  const std::string& name = displayName.empty() ? archivePath : displayName;
  GzipReader gz(fd.get(), name, streamCap(limits));
  TarReader tar(gz, name, limits);
  Extractor x(name, root.get());

  std::vector<ExtractedEntry> out;
  ExtractedTree tree;
  for (;;) {
    auto next = tar.next();
    if (!next)
      return next.error();
    if (!*next)
      break;
    const ArchiveEntry& e = **next;
    auto parts = admitPath(name, e, tree);
    if (!parts)
      return parts.error();
    if (!*parts)
      continue;
    uint64_t size = e.type == EntryType::File ? tar.currentSize() : 0;
    if (auto r = extractEntry(name, e, **parts, tar, x, tree); !r)
      return r.error();
    out.push_back({joinPath(**parts, (*parts)->size()), e.type, size});
  }
  if (auto f = tar.finish(); !f)
    return f.error();
  if (auto s = createSymlinks(name, tree, x); !s)
    return s.error();
  return out;
}

} // namespace bpfchain::packages
