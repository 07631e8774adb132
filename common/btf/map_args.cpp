#include "btf/map_args.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unistd.h>

#include "btf/value.h"

namespace bpfchain::btf {
namespace {

using Bytes = std::vector<uint8_t>;

struct BtfDeleter {
  void operator()(struct btf* btf) const { btf__free(btf); }
};
using BtfPtr = std::unique_ptr<struct btf, BtfDeleter>;

bool isPerCpu(__u32 type) {
  return type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

bool isArray(__u32 type) {
  return type == BPF_MAP_TYPE_ARRAY || type == BPF_MAP_TYPE_PERCPU_ARRAY;
}

bool isLru(__u32 type) {
  return type == BPF_MAP_TYPE_LRU_HASH || type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

bool isSupported(__u32 type) {
  switch (type) {
  case BPF_MAP_TYPE_HASH:
  case BPF_MAP_TYPE_ARRAY:
  case BPF_MAP_TYPE_PERCPU_HASH:
  case BPF_MAP_TYPE_PERCPU_ARRAY:
  case BPF_MAP_TYPE_LRU_HASH:
  case BPF_MAP_TYPE_LRU_PERCPU_HASH:
  case BPF_MAP_TYPE_LPM_TRIE:
    return true;
  default:
    return false;
  }
}

std::string mapTypeName(__u32 type) {
  const char* name = libbpf_bpf_map_type_str(static_cast<enum bpf_map_type>(type));
  return name ? name : "type " + std::to_string(type);
}

std::string hex(const Bytes& bytes) {
  std::string out = "0x";
  for (uint8_t byte : bytes) {
    char buf[3];
    std::snprintf(buf, sizeof buf, "%02x", byte);
    out += buf;
  }
  return out;
}

bool allZero(const Bytes& bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

// How one side of a map (its key or its value) is written and shown: by its BTF type, or for a
// map declared with key_size/value_size only (as every L3AF kernel function's maps are) by its
// size, as l3afd writes them: a 1/2/4/8-byte side is an unsigned little-endian integer (typed
// here by a one-type BTF of our own, so it takes the same forms and range checks as a typed
// __u8/__u16/__u32/__u64), any other size is hex bytes in memory order.
class Side {
public:
  static Side typed(const struct btf* btf, __u32 typeId) { return Side(btf, typeId, 0); }

  static Result<Side> sized(__u32 size) {
    Side side(nullptr, 0, size);
    if (size != 1 && size != 2 && size != 4 && size != 8)
      return side;
    side.own_.reset(btf__new_empty());
    if (!side.own_)
      return systemError(errno, "create a BTF for a " + std::to_string(size) + "-byte integer");
    int id = btf__add_int(side.own_.get(), ("__u" + std::to_string(size * 8)).c_str(),
                          static_cast<int>(size), 0);
    if (id <= 0)
      return systemError(-id, "create a BTF for a " + std::to_string(size) + "-byte integer");
    side.btf_ = side.own_.get();
    side.typeId_ = static_cast<__u32>(id);
    return side;
  }

  Result<Bytes> encode(const ArgValue& text, const std::string& field) const {
    if (btf_)
      return encodeValue(btf_, typeId_, text, field);
    return encodeHex(text, field);
  }

  std::string render(const Bytes& bytes) const {
    if (!btf_)
      return hex(bytes);
    auto text = decodeValue(btf_, typeId_, bytes.data(), bytes.size());
    return text ? *text : hex(bytes);
  }

private:
  Side(const struct btf* btf, __u32 typeId, __u32 size) : btf_(btf), typeId_(typeId), size_(size) {}

  Result<Bytes> encodeHex(const ArgValue& text, const std::string& field) const {
    const size_t digits = size_t{size_} * 2;
    const std::string form = "a " + std::to_string(size_) +
                             "-byte side without BTF type is hex bytes in memory order: 0x and " +
                             std::to_string(digits) + " hex digits";
    if (text.kind != ArgValue::Kind::Scalar)
      return invalidError(field + ": " + form);
    const std::string& s = text.scalar;
    auto notHex = [&] { return invalidError(field + ": \"" + s + "\" is not hex bytes; " + form); };
    if (s.size() < 2 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
      return notHex();
    if (s.size() - 2 != digits)
      return invalidError(field + ": \"" + s + "\" has " + std::to_string(s.size() - 2) +
                          " hex digits; " + form);
    auto digit = [](char c) -> int {
      if (c >= '0' && c <= '9')
        return c - '0';
      if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
      if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
      return -1;
    };
    Bytes bytes(size_);
    for (size_t i = 0; i < size_; ++i) {
      int high = digit(s[2 + 2 * i]);
      int low = digit(s[3 + 2 * i]);
      if (high < 0 || low < 0)
        return notHex();
      bytes[i] = static_cast<uint8_t>(high * 16 + low);
    }
    return bytes;
  }

  BtfPtr own_;
  const struct btf* btf_;
  __u32 typeId_;
  __u32 size_;
};

// The map's writes so far, so that a failing write can take them back.
class Journal {
public:
  Journal(int fd, size_t valueBytes) : fd_(fd), valueBytes_(valueBytes) {}

  // The current value of `key`, or nothing when it has none.
  Result<std::optional<Bytes>> lookup(const Bytes& key) const {
    Bytes value(valueBytes_);
    if (bpf_map_lookup_elem(fd_, key.data(), value.data()) == 0)
      return std::optional<Bytes>(std::move(value));
    if (errno == ENOENT)
      return std::optional<Bytes>();
    return systemError(errno, "look up");
  }

  Result<void> update(const Bytes& key, const Bytes& value, std::optional<Bytes> old) {
    if (bpf_map_update_elem(fd_, key.data(), value.data(), BPF_ANY) != 0)
      return systemError(errno, "update");
    undo_.push_back(Undo{key, std::move(old)});
    return {};
  }

  Result<void> remove(const Bytes& key, Bytes old) {
    if (bpf_map_delete_elem(fd_, key.data()) != 0) {
      if (errno == ENOENT) // gone meanwhile (an LRU eviction, the program itself)
        return {};
      return systemError(errno, "delete");
    }
    undo_.push_back(Undo{key, std::move(old)});
    return {};
  }

  // Takes every write back, newest first. Returns what could not be taken back.
  std::string rollback() {
    std::string failures;
    for (size_t i = undo_.size(); i-- > 0;) {
      const Undo& undo = undo_[i];
      int rc = undo.old ? bpf_map_update_elem(fd_, undo.key.data(), undo.old->data(), BPF_ANY)
                        : bpf_map_delete_elem(fd_, undo.key.data());
      if (rc != 0 && !(errno == ENOENT && !undo.old))
        failures.append(failures.empty() ? "" : ", ")
            .append(hex(undo.key))
            .append(" (")
            .append(std::strerror(errno))
            .append(")");
    }
    undo_.clear();
    return failures;
  }

private:
  struct Undo {
    Bytes key;
    std::optional<Bytes> old; // nothing: the key was new, undo deletes it
  };
  int fd_;
  size_t valueBytes_;
  std::vector<Undo> undo_;
};

// Every key of a hash-like map. Bounded, in case the map changes faster than it is walked.
Result<std::vector<Bytes>> listKeys(int fd, size_t keySize, __u32 maxEntries) {
  std::vector<Bytes> keys;
  Bytes current(keySize);
  Bytes next(keySize);
  const void* previous = nullptr;
  for (size_t i = 0; i <= static_cast<size_t>(maxEntries) * 2 + 16; ++i) {
    if (bpf_map_get_next_key(fd, previous, next.data()) != 0) {
      if (errno == ENOENT)
        return keys;
      return systemError(errno, "list keys");
    }
    keys.push_back(next);
    current = next;
    previous = current.data();
  }
  return keys;
}

// The map applyMapArgs fills: its info, how each side is written, and the bytes of one value
// (per-CPU maps hold one 8-byte aligned slot per possible CPU).
struct Target {
  int fd;
  bpf_map_info info;
  std::string where; // "<field>: map <name>", in front of the map's errors
  BtfPtr btf;        // the map's BTF, when a side is typed by it
  Side key;
  Side value;
  size_t cpus;
  size_t stride;

  size_t valueBytes() const { return stride * cpus; }
};

// The kernel answers a program's or link's descriptor with that object's info, which would be
// read as garbage map info; the descriptor's inode says what it is.
Result<void> checkIsMap(int mapFd, const std::string& field) {
  char target[64] = {};
  std::string link = "/proc/self/fd/" + std::to_string(mapFd);
  if (readlink(link.c_str(), target, sizeof target - 1) < 0)
    return systemError(errno, field + ": descriptor " + std::to_string(mapFd));
  if (std::strcmp(target, "anon_inode:bpf-map") != 0)
    return invalidError(field + ": descriptor " + std::to_string(mapFd) + " is not a BPF map (" +
                        target + ")");
  return {};
}

// The map's BTF when its key or value has a BTF type (nothing otherwise), checked against the
// map's key and value sizes.
Result<BtfPtr> loadTypes(const bpf_map_info& info, const std::string& where) {
  const bool keyTyped = info.btf_id != 0 && info.btf_key_type_id != 0;
  const bool valueTyped = info.btf_id != 0 && info.btf_value_type_id != 0;
  if (!keyTyped && !valueTyped)
    return BtfPtr();
  BtfPtr btf(btf__load_from_kernel_by_id(info.btf_id));
  if (!btf)
    return systemError(errno, where + ": load BTF " + std::to_string(info.btf_id));
  const struct btf* types = btf.get();
  if ((keyTyped && btf__resolve_size(types, info.btf_key_type_id) != info.key_size) ||
      (valueTyped && btf__resolve_size(types, info.btf_value_type_id) != info.value_size))
    return invalidError(
        where + ": its BTF key/value types (" +
        (keyTyped ? typeName(types, info.btf_key_type_id) : std::string("none")) + ", " +
        (valueTyped ? typeName(types, info.btf_value_type_id) : std::string("none")) +
        ") do not match its key/value sizes");
  return btf;
}

// A side without a BTF type (key_size/value_size, L3AF's maps) is written by its size.
Result<Side> sideOf(const struct btf* btf, __u32 typeId, __u32 size) {
  if (btf && typeId != 0)
    return Side::typed(btf, typeId);
  return Side::sized(size);
}

Result<Target> openTarget(int mapFd, const std::string& field) {
  if (auto isMap = checkIsMap(mapFd, field); !isMap)
    return std::move(isMap).error();
  bpf_map_info info{};
  __u32 infoLen = sizeof info;
  if (bpf_obj_get_info_by_fd(mapFd, &info, &infoLen) != 0)
    return systemError(errno, field + ": get map info");
  std::string where = field + ": map " + info.name;
  if (!isSupported(info.type))
    return invalidError(
        where + " is a " + mapTypeName(info.type) +
        " map; mapArgs can fill hash, array and LPM-trie maps (per-CPU and LRU too)");
  auto btf = loadTypes(info, where);
  if (!btf)
    return std::move(btf).error();
  auto keySide = sideOf(btf->get(), info.btf_key_type_id, info.key_size);
  if (!keySide)
    return std::move(keySide).error().context(where);
  auto valueSide = sideOf(btf->get(), info.btf_value_type_id, info.value_size);
  if (!valueSide)
    return std::move(valueSide).error().context(where);

  size_t cpus = 1;
  size_t stride = info.value_size;
  if (isPerCpu(info.type)) {
    int possible = libbpf_num_possible_cpus();
    if (possible <= 0)
      return systemError(-possible, where + ": count possible CPUs");
    cpus = possible;
    stride = (static_cast<size_t>(info.value_size) + 7) / 8 * 8;
  }
  return Target{
      mapFd, info,  std::move(where), std::move(*btf), std::move(*keySide), std::move(*valueSide),
      cpus,  stride};
}

// The entries as the bytes the map holds, in the order listed.
struct Encoded {
  std::vector<std::pair<Bytes, Bytes>> entries;
  std::map<Bytes, size_t> listed; // key -> entry index
};

// Encodes and checks every entry (duplicate keys, array index range, capacity) before the
// first write.
Result<Encoded> encodeEntries(const Target& map, const std::vector<MapArgEntry>& entries,
                              const std::string& field) {
  const bpf_map_info& info = map.info;
  Encoded encoded;
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string entryField = field + ".entries[" + std::to_string(i) + "]";
    auto key = map.key.encode(entries[i].key, entryField + ".key");
    if (!key)
      return std::move(key).error();
    auto value = map.value.encode(entries[i].value, entryField + ".value");
    if (!value)
      return std::move(value).error();
    if (auto [it, inserted] = encoded.listed.emplace(*key, i); !inserted)
      return invalidError(entryField + ".key: same key as entries[" + std::to_string(it->second) +
                          "].key (" + map.key.render(*key) + ")");
    if (isArray(info.type)) {
      __u32 index = 0;
      std::memcpy(&index, key->data(), sizeof index);
      if (index >= info.max_entries)
        return invalidError(entryField + ".key: index " + std::to_string(index) +
                            " is out of range for array map " + info.name + " (max_entries " +
                            std::to_string(info.max_entries) + ")");
    }
    Bytes replicated(map.valueBytes(), 0);
    for (size_t cpu = 0; cpu < map.cpus; ++cpu)
      std::memcpy(replicated.data() + cpu * map.stride, value->data(), value->size());
    encoded.entries.emplace_back(std::move(*key), std::move(replicated));
  }
  if (entries.size() > info.max_entries)
    return invalidError(map.where + ": " + std::to_string(entries.size()) +
                        " entries do not fit (max_entries " + std::to_string(info.max_entries) +
                        ")");
  return encoded;
}

// The writes to one map: each remembers what was there, and a failure takes them all back and
// names the key it failed at.
class Writes {
public:
  explicit Writes(const Target& map) : map_(map), journal_(map.fd, map.valueBytes()) {}

  // Writes `value` under `key`.
  Result<void> write(const Bytes& key, const Bytes& value) {
    failedKey_ = map_.key.render(key);
    auto old = journal_.lookup(key);
    if (!old)
      return std::move(old).error();
    return journal_.update(key, value, std::move(*old));
  }

  // Deletes `key` if the map has it.
  Result<void> remove(const Bytes& key) {
    failedKey_ = map_.key.render(key);
    auto old = journal_.lookup(key);
    if (!old)
      return std::move(old).error();
    if (!*old)
      return {};
    return journal_.remove(key, std::move(**old));
  }

  // Zeroes array slot `index` unless it is zero already (array slots cannot be deleted).
  Result<void> zero(__u32 index) {
    Bytes key(map_.info.key_size, 0);
    std::memcpy(key.data(), &index, sizeof index);
    failedKey_ = std::to_string(index);
    auto old = journal_.lookup(key);
    if (!old)
      return std::move(old).error();
    if (!*old || allZero(**old))
      return {};
    return journal_.update(key, Bytes(map_.valueBytes(), 0), std::move(*old));
  }

  // `error` of the last write, after every write was taken back.
  Error failed(const Error& error) {
    std::string undone = journal_.rollback();
    std::string message = map_.where + ": key " + failedKey_ + ": " + error.message();
    message += undone.empty() ? "; the map was left as it was"
                              : "; restoring the map failed too for keys " + undone;
    return Error(error.code(), message);
  }

private:
  const Target& map_;
  Journal journal_;
  std::string failedKey_;
};

Result<void> fillArray(const Target& map, const Encoded& encoded, MapArgMode mode) {
  Writes writes(map);
  for (const auto& [key, value] : encoded.entries) {
    if (auto done = writes.write(key, value); !done)
      return writes.failed(std::move(done).error());
  }
  if (mode != MapArgMode::Replace)
    return {};
  // Array slots cannot be deleted: an unlisted slot is reset to zero.
  for (__u32 index = 0; index < map.info.max_entries; ++index) {
    Bytes key(map.info.key_size, 0);
    std::memcpy(key.data(), &index, sizeof index);
    if (encoded.listed.count(key) != 0)
      continue;
    if (auto done = writes.zero(index); !done)
      return writes.failed(std::move(done).error());
  }
  return {};
}

Result<void> fillHash(const Target& map, const Encoded& encoded, MapArgMode mode) {
  const bpf_map_info& info = map.info;
  auto existing = listKeys(map.fd, info.key_size, info.max_entries);
  if (!existing)
    return std::move(existing).error().context(map.where);
  std::vector<Bytes> stale;
  size_t added = encoded.entries.size();
  for (const auto& key : *existing) {
    if (encoded.listed.count(key) != 0)
      --added;
    else if (mode == MapArgMode::Replace)
      stale.push_back(key);
  }
  // The listed entries are written first, then the unlisted deleted, so that a key being
  // replaced never goes missing. When the map has no room for that, the unlisted go first; an
  // LRU map has no such limit (it would evict instead), so it is never refused.
  bool staleFirst = false;
  if (!isLru(info.type) && existing->size() + added > info.max_entries) {
    if (existing->size() - stale.size() + added > info.max_entries)
      return invalidError(map.where + ": no room for " + std::to_string(added) +
                          " new entries (it holds " + std::to_string(existing->size()) +
                          ", max_entries " + std::to_string(info.max_entries) + ")");
    staleFirst = true;
  }
  Writes writes(map);
  auto removeStale = [&]() -> Result<void> {
    for (const auto& key : stale) {
      if (auto done = writes.remove(key); !done)
        return done;
    }
    return {};
  };
  if (staleFirst) {
    if (auto done = removeStale(); !done)
      return writes.failed(std::move(done).error());
  }
  for (const auto& [key, value] : encoded.entries) {
    if (auto done = writes.write(key, value); !done)
      return writes.failed(std::move(done).error());
  }
  if (!staleFirst) {
    if (auto done = removeStale(); !done)
      return writes.failed(std::move(done).error());
  }
  return {};
}

} // namespace

Result<void> applyMapArgs(int mapFd, MapArgMode mode, const std::vector<MapArgEntry>& entries,
                          const std::string& field) {
  auto map = openTarget(mapFd, field);
  if (!map)
    return std::move(map).error();
  auto encoded = encodeEntries(*map, entries, field);
  if (!encoded)
    return std::move(encoded).error();
  if (isArray(map->info.type))
    return fillArray(*map, *encoded, mode);
  return fillHash(*map, *encoded, mode);
}

} // namespace bpfchain::btf
