// mapArgs and globalData against real maps: the maps of testdata/btf_types.bpf.c, created by
// libbpf with their BTF, filled by applyMapArgs from the map fd alone and read back with the
// raw syscalls; and globals set before load, seen by the loaded XDP program.
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/types.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <gtest/gtest.h>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>
#include <yaml-cpp/yaml.h>

#include "btf/global_data.h"
#include "btf/map_args.h"
#include "harness/bpffs.h"
#include "system/fd.h"

namespace bpfchain::btf {
namespace {

using Bytes = std::vector<uint8_t>;
using Contents = std::map<Bytes, Bytes>;

struct ObjectDeleter {
  void operator()(struct bpf_object* obj) const { bpf_object__close(obj); }
};
using Object = std::unique_ptr<struct bpf_object, ObjectDeleter>;

Object openTestObject() {
  Object obj(bpf_object__open_file(BTF_TYPES_OBJECT, nullptr));
  EXPECT_TRUE(obj) << BTF_TYPES_OBJECT << ": " << std::strerror(errno);
  return obj;
}

Object loadTestObject() {
  auto obj = openTestObject();
  if (obj && bpf_object__load(obj.get()) != 0) {
    ADD_FAILURE() << "load " << BTF_TYPES_OBJECT << ": " << std::strerror(errno);
    obj.reset();
  }
  return obj;
}

int mapFd(const Object& obj, const char* name) {
  int fd = bpf_object__find_map_fd_by_name(obj.get(), name);
  EXPECT_GE(fd, 0) << "no map " << name;
  return fd;
}

std::vector<MapArgEntry> entries(const std::vector<std::pair<std::string, std::string>>& items) {
  std::vector<MapArgEntry> out;
  out.reserve(items.size());
  for (auto& [key, value] : items)
    out.push_back(MapArgEntry{ArgValue::text(key), ArgValue::text(value)});
  return out;
}

bpf_map_info mapInfo(int fd) {
  bpf_map_info info{};
  __u32 len = sizeof info;
  EXPECT_EQ(bpf_obj_get_info_by_fd(fd, &info, &len), 0) << std::strerror(errno);
  return info;
}

bool isPerCpu(__u32 type) {
  return type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

size_t cpus() {
  return static_cast<size_t>(libbpf_num_possible_cpus());
}

// Everything in the map: key -> value (per-CPU: every CPU's 8-byte aligned slot).
Contents dump(int fd) {
  bpf_map_info info = mapInfo(fd);
  size_t valueBytes =
      isPerCpu(info.type) ? (size_t{info.value_size} + 7) / 8 * 8 * cpus() : info.value_size;
  Contents contents;
  Bytes key(info.key_size);
  Bytes next(info.key_size);
  const void* previous = nullptr;
  while (bpf_map_get_next_key(fd, previous, next.data()) == 0) {
    Bytes value(valueBytes);
    EXPECT_EQ(bpf_map_lookup_elem(fd, next.data(), value.data()), 0) << std::strerror(errno);
    contents[next] = value;
    key = next;
    previous = key.data();
  }
  return contents;
}

Bytes u16(uint16_t v) {
  return {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8)};
}
Bytes u32(uint32_t v) {
  return {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v >> 16),
          static_cast<uint8_t>(v >> 24)};
}
Bytes u64(uint64_t v) {
  Bytes out = u32(static_cast<uint32_t>(v));
  Bytes high = u32(static_cast<uint32_t>(v >> 32));
  out.insert(out.end(), high.begin(), high.end());
  return out;
}
Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& part : parts)
    out.insert(out.end(), part.begin(), part.end());
  return out;
}
// `value` in each CPU's slot of `stride` bytes.
Bytes perCpu(const Bytes& value, size_t stride) {
  Bytes out(stride * cpus(), 0);
  for (size_t cpu = 0; cpu < cpus(); ++cpu)
    std::copy(value.begin(), value.end(), out.begin() + cpu * stride);
  return out;
}

// ---- hash maps ----

TEST(MapArgs, MergeOnlyWrites) {
  auto obj = loadTestObject();
  ASSERT_TRUE(obj);
  int fd = mapFd(obj, "ports");
  auto done = applyMapArgs(fd, MapArgMode::Merge, entries({{"80", "1"}, {"443", "2"}}), "m");
  ASSERT_TRUE(done) << done.error().message();
  done = applyMapArgs(fd, MapArgMode::Merge, entries({{"8080", "3"}, {"80", "10"}}), "m");
  ASSERT_TRUE(done) << done.error().message();
  EXPECT_EQ(dump(fd), (Contents{{u16(80), u32(10)}, {u16(443), u32(2)}, {u16(8080), u32(3)}}));
}

TEST(MapArgs, ReplaceDeletesEveryUnlistedKey) {
  auto obj = loadTestObject();
  ASSERT_TRUE(obj);
  int fd = mapFd(obj, "ports");
  ASSERT_TRUE(
      applyMapArgs(fd, MapArgMode::Merge, entries({{"80", "1"}, {"443", "2"}, {"22", "3"}}), "m"));
  auto done = applyMapArgs(fd, MapArgMode::Replace, entries({{"443", "5"}, {"8080", "6"}}), "m");
  ASSERT_TRUE(done) << done.error().message();
  EXPECT_EQ(dump(fd), (Contents{{u16(443), u32(5)}, {u16(8080), u32(6)}}));
  // An empty replace empties the map.
  ASSERT_TRUE(applyMapArgs(fd, MapArgMode::Replace, {}, "m"));
  EXPECT_TRUE(dump(fd).empty());
}

TEST(MapArgs, ReplaceOfAFullMapMakesRoomFirst) {
  auto obj = loadTestObject();
  ASSERT_TRUE(obj);
  int fd = mapFd(obj, "ports"); // max_entries 8
  std::vector<std::pair<std::string, std::string>> old;
  std::vector<std::pair<std::string, std::string>> fresh;
  Contents expected;
  old.reserve(8);
  fresh.reserve(8);
  for (int i = 0; i < 8; ++i) {
    old.emplace_back(std::to_string(i), "1");
    fresh.emplace_back(std::to_string(100 + i), std::to_string(i));
    expected[u16(100 + i)] = u32(i);
  }
  ASSERT_TRUE(applyMapArgs(fd, MapArgMode::Merge, entries(old), "m"));
  auto done = applyMapArgs(fd, MapArgMode::Replace, entries(fresh), "m");
  ASSERT_TRUE(done) << done.error().message();
  EXPECT_EQ(dump(fd), expected);
}

TEST(MapArgs, EntriesBeyondCapacityAreRefusedBeforeAnyWrite) {
  auto obj = loadTestObject();
  ASSERT_TRUE(obj);
  int fd = mapFd(obj, "ports");
  std::vector<std::pair<std::string, std::string>> eight;
  eight.reserve(8);
  for (int i = 0; i < 8; ++i)
    eight.emplace_back(std::to_string(i), "1");
  ASSERT_TRUE(applyMapArgs(fd, MapArgMode::Merge, entries(eight), "m"));
  Contents before = dump(fd);

  auto nine = eight;
  nine.emplace_back("1000", "2");
  auto done = applyMapArgs(fd, MapArgMode::Replace, entries(nine), "mapArgs[1]");
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().message(), "mapArgs[1]: map ports: 9 entries do not fit (max_entries 8)");
  // A merge that adds to a full map: the map has no room, and nothing is written.
  done = applyMapArgs(fd, MapArgMode::Merge, entries({{"0", "7"}, {"1000", "2"}}), "mapArgs[1]");
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().message(),
            "mapArgs[1]: map ports: no room for 1 new entries (it holds 8, max_entries 8)");
  EXPECT_EQ(dump(fd), before);
}

TEST(MapArgs, StructKeysAndValues) {
  auto obj = loadTestObject();
  ASSERT_TRUE(obj);
  int fd = mapFd(obj, "flows");
  std::vector<MapArgEntry> flows = {
      // As a YAML map, and as the flow text a string field of the CRD carries.
      {*parseArgValue("{saddr: 10.0.0.1, daddr: 10.0.0.2, sport: 1234, dport: 80, proto: 6}", "k"),
       *parseArgValue("{packets: 5, bytes: 0x100}", "v")},
      {ArgValue::text("{saddr: 10.0.0.3, proto: 17}"), ArgValue::text("{bytes: 1}")},
  };
  auto done = applyMapArgs(fd, MapArgMode::Merge, flows, "m");
  ASSERT_TRUE(done) << done.error().message();
  Bytes first = {10, 0, 0, 1, 10, 0, 0, 2, 0x04, 0xd2, 0, 80, 6, 0, 0, 0};
  Bytes second = {10, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 17, 0, 0, 0};
  EXPECT_EQ(dump(fd),
            (Contents{{first, concat({u64(5), u64(256)})}, {second, concat({u64(0), u64(1)})}}));
}

// ---- arrays ----

TEST(MapArgs, ArrayReplaceZeroesUnlistedSlots) {
  auto obj = loadTestObject();
  ASSERT_TRUE(obj);
  int fd = mapFd(obj, "rules"); // 4 x struct bt_rule (48 bytes)
  ASSERT_TRUE(applyMapArgs(
      fd, MapArgMode::Merge,
      entries({{"0", "{id: 1}"}, {"1", "{id: 2}"}, {"2", "{id: 3}"}, {"3", "{id: 4}"}}), "m"));
  auto done = applyMapArgs(fd, MapArgMode::Replace,
                           entries({{"1", "{id: 9, name: web, ports: {lo: 80, hi: 443}}"}}), "m");
  ASSERT_TRUE(done) << done.error().message();
  Bytes zero(48, 0);
  Bytes rule(48, 0);
  rule[0] = 9;
  rule[4] = 'w';
  rule[5] = 'e';
  rule[6] = 'b';
  rule[20] = 80;
  rule[22] = 0xbb;
  rule[23] = 1;
  EXPECT_EQ(dump(fd), (Contents{{u32(0), zero}, {u32(1), rule}, {u32(2), zero}, {u32(3), zero}}));
}

TEST(MapArgs, ArrayIndexOutOfRangeIsRefused) {
  auto obj = loadTestObject();
  ASSERT_TRUE(obj);
  int fd = mapFd(obj, "rules");
  auto done = applyMapArgs(fd, MapArgMode::Merge, entries({{"0", "{id: 1}"}, {"4", "{id: 2}"}}),
                           "mapArgs[0]");
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().message(), "mapArgs[0].entries[1].key: index 4 is out of range for "
                                    "array map rules (max_entries 4)");
  EXPECT_EQ(dump(fd)[u32(0)], Bytes(48, 0));
}

// ---- per-CPU maps ----

TEST(MapArgs, PerCpuArrayValueReachesEveryCpu) {
  auto obj = loadTestObject();
  ASSERT_TRUE(obj);
  int fd = mapFd(obj, "pc_array"); // __u32 values: 8-byte slots
  ASSERT_TRUE(applyMapArgs(fd, MapArgMode::Merge, entries({{"0", "5"}, {"3", "6"}}), "m"));
  auto done = applyMapArgs(fd, MapArgMode::Replace, entries({{"3", "0xdeadbeef"}}), "m");
  ASSERT_TRUE(done) << done.error().message();
  Bytes zero(8 * cpus(), 0);
  EXPECT_EQ(
      dump(fd),
      (Contents{
          {u32(0), zero}, {u32(1), zero}, {u32(2), zero}, {u32(3), perCpu(u32(0xdeadbeef), 8)}}));
}

TEST(MapArgs, PerCpuHashValueReachesEveryCpu) {
  auto obj = loadTestObject();
  ASSERT_TRUE(obj);
  int fd = mapFd(obj, "pc_hash");
  auto done = applyMapArgs(fd, MapArgMode::Merge, entries({{"5", "{packets: 1, bytes: 2}"}}), "m");
  ASSERT_TRUE(done) << done.error().message();
  EXPECT_EQ(dump(fd), (Contents{{u32(5), perCpu(concat({u64(1), u64(2)}), 16)}}));
}

TEST(MapArgs, LruPerCpuHashValueReachesEveryCpu) {
  auto obj = loadTestObject();
  ASSERT_TRUE(obj);
  int fd = mapFd(obj, "lru_pc_hash"); // __u16 values: 8-byte slots, 6 bytes of padding each
  auto done = applyMapArgs(fd, MapArgMode::Replace, entries({{"1", "65535"}, {"2", "7"}}), "m");
  ASSERT_TRUE(done) << done.error().message();
  EXPECT_EQ(dump(fd), (Contents{{u32(1), perCpu(u16(65535), 8)}, {u32(2), perCpu(u16(7), 8)}}));
}

// ---- LPM tries ----

// The value the trie gives for a full-length lookup of `address`, or nothing.
std::optional<Bytes> lpmLookup(int fd, const Bytes& address, size_t valueSize) {
  Bytes key = concat({u32(static_cast<uint32_t>(address.size() * 8)), address});
  Bytes value(valueSize);
  if (bpf_map_lookup_elem(fd, key.data(), value.data()) != 0)
    return std::nullopt;
  return value;
}

TEST(MapArgs, LpmV4PrefixesMatchLongestFirst) {
  auto obj = loadTestObject();
  ASSERT_TRUE(obj);
  int fd = mapFd(obj, "lpm4");
  auto done = applyMapArgs(
      fd, MapArgMode::Replace,
      entries({{"10.0.0.0/8", "1"}, {"10.1.0.0/16", "2"}, {"0.0.0.0/0", "3"}, {"192.0.2.7", "4"}}),
      "m");
  ASSERT_TRUE(done) << done.error().message();
  EXPECT_EQ(lpmLookup(fd, {10, 1, 2, 3}, 4), u32(2));
  EXPECT_EQ(lpmLookup(fd, {10, 2, 0, 0}, 4), u32(1));
  EXPECT_EQ(lpmLookup(fd, {11, 0, 0, 1}, 4), u32(3));
  EXPECT_EQ(lpmLookup(fd, {192, 0, 2, 7}, 4), u32(4));

  done = applyMapArgs(fd, MapArgMode::Replace, entries({{"10.0.0.0/8", "1"}}), "m");
  ASSERT_TRUE(done) << done.error().message();
  EXPECT_EQ(lpmLookup(fd, {10, 1, 2, 3}, 4), u32(1));
  EXPECT_EQ(lpmLookup(fd, {11, 0, 0, 1}, 4), std::nullopt);
  EXPECT_EQ(dump(fd).size(), 1u);
}

TEST(MapArgs, LpmV6TakesIpv6AndMappedIpv4) {
  auto obj = loadTestObject();
  ASSERT_TRUE(obj);
  int fd = mapFd(obj, "lpm6"); // values: enum bt_color
  auto done =
      applyMapArgs(fd, MapArgMode::Merge,
                   entries({{"2001:db8::/32", "BT_GREEN"}, {"10.0.0.0/8", "BT_BLUE"}}), "m");
  ASSERT_TRUE(done) << done.error().message();
  Bytes v6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  Bytes mapped = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 9, 8, 7};
  Bytes other = {0x20, 0x01, 0x0d, 0xb9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  EXPECT_EQ(lpmLookup(fd, v6, 4), u32(2));
  EXPECT_EQ(lpmLookup(fd, mapped, 4), u32(40));
  EXPECT_EQ(lpmLookup(fd, other, 4), std::nullopt);
}

// ---- nothing half-applied ----

TEST(MapArgs, ABadEntryLeavesTheMapExactlyAsItWas) {
  auto obj = loadTestObject();
  ASSERT_TRUE(obj);
  int fd = mapFd(obj, "ports");
  ASSERT_TRUE(
      applyMapArgs(fd, MapArgMode::Merge, entries({{"80", "1"}, {"443", "2"}, {"22", "3"}}), "m"));
  Contents before = dump(fd);

  struct Bad {
    std::vector<std::pair<std::string, std::string>> items;
    std::string message;
  };
  for (const Bad& bad : std::vector<Bad>{
           {{{"80", "10"}, {"8080", "11"}, {"80x", "12"}},
            R"(mapArgs[0].entries[2].key: "80x" is not a valid __u16)"},
           {{{"80", "10"}, {"8080", "11"}, {"9090", "-1"}},
            "mapArgs[0].entries[2].value: -1 does not fit __u32 (0..4294967295)"},
           {{{"80", "10"}, {"8080", "11"}, {"0x50", "12"}},
            "mapArgs[0].entries[2].key: same key as entries[0].key (80)"},
       }) {
    for (auto mode : {MapArgMode::Replace, MapArgMode::Merge}) {
      auto done = applyMapArgs(fd, mode, entries(bad.items), "mapArgs[0]");
      ASSERT_FALSE(done);
      EXPECT_EQ(done.error().message(), bad.message);
      EXPECT_EQ(dump(fd), before);
    }
  }
}

// The kernel refuses an entry only it can judge (a prefix longer than the trie's keys, given
// in the raw member form): the entries written before it are taken back.
TEST(MapArgs, AWriteTheKernelRefusesIsRolledBack) {
  auto obj = loadTestObject();
  ASSERT_TRUE(obj);
  int fd = mapFd(obj, "lpm4");
  ASSERT_TRUE(applyMapArgs(fd, MapArgMode::Merge,
                           entries({{"10.0.0.0/8", "1"}, {"10.1.0.0/16", "2"}}), "m"));
  Contents before = dump(fd);
  ASSERT_EQ(before.size(), 2u);

  auto done = applyMapArgs(
      fd, MapArgMode::Replace,
      entries(
          {{"10.0.0.0/8", "5"}, {"192.168.0.0/16", "6"}, {"{prefixlen: 40, addr: 10.0.0.0}", "7"}}),
      "mapArgs[0]");
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().code(), EINVAL);
  EXPECT_EQ(done.error().message(),
            "mapArgs[0]: map lpm4: key {prefixlen: 40, addr: 10.0.0.0}: update: Invalid argument; "
            "the map was left as it was");
  EXPECT_EQ(dump(fd), before);
}

// ---- maps mapArgs cannot fill ----

// ---- maps without BTF key/value types (L3AF's) ----

TEST(MapArgs, MapWithoutBtfTypesTakesIntegersSizedByTheMap) {
  auto obj = loadTestObject();
  ASSERT_TRUE(obj);
  int fd = mapFd(obj, "untyped");
  auto done = applyMapArgs(fd, MapArgMode::Replace, entries({{"1", "2"}, {"0x10", "0xffffffff"}}),
                           "mapArgs[3]");
  ASSERT_TRUE(done) << done.error().message();
  EXPECT_EQ(dump(fd), (Contents{{u32(1), u32(2)}, {u32(16), u32(0xffffffff)}}));

  fd = mapFd(obj, "untyped_u16_u64");
  done = applyMapArgs(fd, MapArgMode::Replace,
                      entries({{"8080", "18446744073709551615"}, {"65535", "7"}}), "mapArgs[0]");
  ASSERT_TRUE(done) << done.error().message();
  EXPECT_EQ(dump(fd), (Contents{{u16(8080), u64(~0ULL)}, {u16(65535), u64(7)}}));

  // Per-CPU: every CPU's slot.
  fd = mapFd(obj, "untyped_pc_array");
  done = applyMapArgs(fd, MapArgMode::Merge, entries({{"1", "200"}}), "mapArgs[0]");
  ASSERT_TRUE(done) << done.error().message();
  EXPECT_EQ(dump(fd)[u32(1)], perCpu({200}, 8));
}

TEST(MapArgs, MapWithoutBtfTypesTakesHexBytesForOtherSizes) {
  auto obj = loadTestObject();
  ASSERT_TRUE(obj);
  int fd = mapFd(obj, "untyped_wide");
  auto done = applyMapArgs(fd, MapArgMode::Replace,
                           entries({{"0x0a0B0c0d0e0f", "0x000102030405060708090aff"}}), "m");
  ASSERT_TRUE(done) << done.error().message();
  EXPECT_EQ(dump(fd), (Contents{{{0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f},
                                 {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0xff}}}));
}

TEST(MapArgs, MapWithoutBtfTypesNamesTheBadEntry) {
  auto obj = loadTestObject();
  ASSERT_TRUE(obj);
  struct Case {
    const char* map;
    std::pair<std::string, std::string> entry;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"untyped", {"1", "4294967296"}, "m.entries[1].value: 4294967296 does not fit __u32"},
           {"untyped", {"-1", "1"}, "m.entries[1].key: -1 does not fit __u32"},
           {"untyped_u16_u64", {"70000", "1"}, "m.entries[1].key: 70000 does not fit __u16"},
           {"untyped", {"abc", "1"}, "m.entries[1].key: "},
           {"untyped_wide",
            {"0x0a0b", "0x000102030405060708090a0b"},
            "m.entries[1].key: \"0x0a0b\" has 4 hex digits; a 6-byte side without BTF type is "
            "hex bytes in memory order: 0x and 12 hex digits"},
           {"untyped_wide",
            {"0x0a0b0c0d0e0f", "12"},
            "m.entries[1].value: \"12\" is not hex bytes; a 12-byte side without BTF type is "
            "hex bytes in memory order: 0x and 24 hex digits"},
           {"untyped_wide",
            {"0x0a0b0c0d0e0g", "0x000102030405060708090a0b"},
            "m.entries[1].key: \"0x0a0b0c0d0e0g\" is not hex bytes"},
       }) {
    int fd = mapFd(obj, c.map);
    std::string firstKey = std::string(c.map) == "untyped_wide" ? "0x010203040506" : "3";
    std::string firstValue =
        std::string(c.map) == "untyped_wide" ? "0x000000000000000000000001" : "1";
    Contents before = dump(fd);
    auto done =
        applyMapArgs(fd, MapArgMode::Replace, entries({{firstKey, firstValue}, c.entry}), "m");
    ASSERT_FALSE(done) << c.map << " " << c.entry.first;
    EXPECT_EQ(done.error().message().rfind(c.message, 0), 0u) << done.error().message();
    EXPECT_EQ(dump(fd), before) << "nothing is written when an entry is bad";
  }
}

TEST(MapArgs, ProgArrayIsRefused) {
  auto obj = loadTestObject();
  ASSERT_TRUE(obj);
  auto done =
      applyMapArgs(mapFd(obj, "next"), MapArgMode::Merge, entries({{"0", "1"}}), "mapArgs[0]");
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().message(),
            "mapArgs[0]: map next is a prog_array map; mapArgs can fill hash, array and LPM-trie "
            "maps (per-CPU and LRU too)");
}

TEST(MapArgs, OnlyAMapDescriptorIsTaken) {
  auto obj = loadTestObject();
  ASSERT_TRUE(obj);
  int prog = bpf_program__fd(bpf_object__find_program_by_name(obj.get(), "btf_types_xdp"));
  auto done = applyMapArgs(prog, MapArgMode::Merge, {}, "mapArgs[0]");
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().message(), "mapArgs[0]: descriptor " + std::to_string(prog) +
                                        " is not a BPF map (anon_inode:bpf-prog)");
  done = applyMapArgs(-1, MapArgMode::Merge, {}, "mapArgs[0]");
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().code(), ENOENT);
}

// ---- a map adopted from its pin, as a restarted agent would ----

TEST(MapArgs, WorksFromAPinnedMapAlone) {
  auto fs = testing::TestBpffs::mount();
  ASSERT_TRUE(fs) << fs.error().message();
  std::string pin = fs->path() + "/ports";
  {
    auto obj = loadTestObject();
    ASSERT_TRUE(obj);
    ASSERT_EQ(bpf_obj_pin(mapFd(obj, "ports"), pin.c_str()), 0) << std::strerror(errno);
    ASSERT_TRUE(applyMapArgs(mapFd(obj, "ports"), MapArgMode::Merge,
                             entries({{"1", "1"}, {"2", "2"}}), "m"));
  } // the object, its BTF handle and its fds are gone; only the pin holds the map
  FD adopted(bpf_obj_get(pin.c_str()));
  ASSERT_TRUE(adopted) << std::strerror(errno);
  auto done = applyMapArgs(adopted.get(), MapArgMode::Replace, entries({{"2", "20"}}), "m");
  ASSERT_TRUE(done) << done.error().message();
  EXPECT_EQ(dump(adopted.get()), (Contents{{u16(2), u32(20)}}));
}

// ---- globalData reaches the loaded program ----

// Bytes of `var` in its section's kernel map, read back after load.
Bytes loadedGlobal(const Object& obj, const std::string& var) {
  const struct btf* btf = bpf_object__btf(obj.get());
  struct bpf_map* map = nullptr;
  bpf_object__for_each_map (map, obj.get()) {
    const btf_type* sec = btf__type_by_id(btf, bpf_map__btf_value_type_id(map));
    if (!bpf_map__is_internal(map) || !sec || !btf_is_datasec(sec))
      continue;
    const btf_var_secinfo* info = btf_var_secinfos(sec);
    for (int i = 0; i < btf_vlen(sec); ++i) {
      if (btf__name_by_offset(btf, btf__type_by_id(btf, info[i].type)->name_off) != var)
        continue;
      Bytes section(bpf_map__value_size(map));
      __u32 zero = 0;
      EXPECT_EQ(bpf_map_lookup_elem(bpf_map__fd(map), &zero, section.data()), 0)
          << std::strerror(errno);
      return Bytes(section.begin() + info[i].offset,
                   section.begin() + info[i].offset + info[i].size);
    }
  }
  ADD_FAILURE() << "no variable " << var;
  return {};
}

TEST(GlobalData, ValuesSetBeforeLoadReachTheProgram) {
  auto obj = openTestObject();
  ASSERT_TRUE(obj);
  auto done = setGlobalData(obj.get(),
                            {{"rate_pps", "1234"},
                             {"burst", "0x20"},
                             {"g_data", "9"},
                             {"g_bss", "11"},
                             {"g_lpm4", "10.0.0.0/8"}},
                            "globalData");
  ASSERT_TRUE(done) << done.error().message();
  ASSERT_EQ(bpf_object__load(obj.get()), 0) << std::strerror(errno);

  EXPECT_EQ(loadedGlobal(obj, "rate_pps"), u64(1234));
  EXPECT_EQ(loadedGlobal(obj, "g_lpm4"), (Bytes{8, 0, 0, 0, 10, 0, 0, 0}));

  struct bpf_program* prog = bpf_object__find_program_by_name(obj.get(), "btf_types_xdp");
  ASSERT_NE(prog, nullptr);
  std::array<unsigned char, 64> frame{};
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_size_in = frame.size());
  ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(prog), &opts), 0) << std::strerror(errno);
  EXPECT_EQ(opts.retval, static_cast<__u32>(XDP_PASS));
  EXPECT_EQ(
      dump(mapFd(obj, "seen")),
      (Contents{{u32(0), u64(1234)}, {u32(1), u64(32)}, {u32(2), u64(9)}, {u32(3), u64(11)}}));
}

TEST(GlobalData, AfterLoadIsRefused) {
  auto obj = loadTestObject();
  ASSERT_TRUE(obj);
  auto done = setGlobalData(obj.get(), {{"rate_pps", "1"}}, "globalData");
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().code(), EBUSY);
  EXPECT_EQ(done.error().message(),
            "globalData: the object is already loaded; globals are set between open and load");
  EXPECT_EQ(loadedGlobal(obj, "rate_pps"), u64(0));
}

} // namespace
} // namespace bpfchain::btf
