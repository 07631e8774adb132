// Which maps carry across program versions (map_carry.h): the shape rules and BTF layouts.
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <gtest/gtest.h>
#include <memory>

#include "dataplane/map_carry.h"

namespace bpfchain::dataplane {
namespace {

using BtfPtr = std::unique_ptr<::btf, void (*)(::btf*)>;

MapShape hashShape() {
  return {BPF_MAP_TYPE_LRU_HASH, 16, 8, 1024, 0, "key", "value"};
}

TEST(MapCarry, TheSameShapeCarries) {
  EXPECT_EQ(carryRefusal(hashShape(), hashShape()), std::nullopt);
}

TEST(MapCarry, EveryDifferenceInShapeIsRefusedWithItsReason) {
  struct Case {
    void (*change)(MapShape&);
    std::string reason;
  };
  for (const Case& c : std::vector<Case>{
           {[](MapShape& s) { s.type = BPF_MAP_TYPE_HASH; }, "type lru_hash -> hash"},
           {[](MapShape& s) { s.keySize = 4; }, "key size 16 -> 4"},
           {[](MapShape& s) { s.valueSize = 16; }, "value size 8 -> 16"},
           {[](MapShape& s) { s.maxEntries = 2048; }, "max_entries 1024 -> 2048"},
           {[](MapShape& s) { s.flags = BPF_F_NO_COMMON_LRU; }, "flags 0x0 -> 0x2"},
           {[](MapShape& s) { s.keyType = "other"; }, "key type changed"},
           {[](MapShape& s) { s.valueType = "other"; }, "value type changed"},
       }) {
    MapShape wanted = hashShape();
    c.change(wanted);
    EXPECT_EQ(carryRefusal(hashShape(), wanted), c.reason);
  }
}

TEST(MapCarry, TypesCompareOnlyWhereBothSidesHaveBtf) {
  MapShape noBtf = hashShape();
  noBtf.keyType.clear();
  noBtf.valueType.clear();
  EXPECT_EQ(carryRefusal(noBtf, hashShape()), std::nullopt);
  EXPECT_EQ(carryRefusal(hashShape(), noBtf), std::nullopt);
}

TEST(MapCarry, ProgramArraysNeverCarry) {
  MapShape jumps{BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 8, 0, "", ""};
  ASSERT_TRUE(carryRefusal(jumps, jumps).has_value());
  EXPECT_NE(carryRefusal(jumps, jumps)->find("prog_array"), std::string::npos);
}

TEST(MapCarry, ConfigurationMapsAreRodataAndKconfig) {
  EXPECT_TRUE(configurationMap(".rodata"));
  EXPECT_TRUE(configurationMap(".rodata.str1.1"));
  EXPECT_TRUE(configurationMap(".kconfig"));
  EXPECT_FALSE(configurationMap(".data"));
  EXPECT_FALSE(configurationMap(".bss"));
  EXPECT_FALSE(configurationMap("rodata_like_name"));
  EXPECT_FALSE(configurationMap(""));
}

// struct bucket { <first> a; u64 b; } in a fresh BTF, through a typedef when asked.
uint32_t addBucket(::btf* types, const char* firstName, int firstBytes, bool viaTypedef) {
  int u64 = btf__add_int(types, "unsigned long long", 8, 0);
  int first = btf__add_int(types, "unsigned int", firstBytes, 0);
  if (viaTypedef)
    first = btf__add_typedef(types, "__u32", first);
  int bucket = btf__add_struct(types, "bucket", 16);
  btf__add_field(types, firstName, first, 0, 0);
  btf__add_field(types, "b", u64, 64, 0);
  return static_cast<uint32_t>(bucket);
}

std::string bucketLayout(const char* firstName, int firstBytes, bool viaTypedef) {
  BtfPtr types(btf__new_empty(), btf__free);
  uint32_t id = addBucket(types.get(), firstName, firstBytes, viaTypedef);
  return btfLayout(types.get(), id);
}

TEST(MapCarry, BtfLayoutSeesNamesSizesAndOffsetsButNotTypedefs) {
  std::string base = bucketLayout("a", 4, false);
  EXPECT_EQ(base, "struct bucket{a:u32@0;b:u64@64;}16");
  EXPECT_EQ(bucketLayout("a", 4, true), base) << "a typedef is the type it names";
  EXPECT_NE(bucketLayout("renamed", 4, false), base);
  EXPECT_NE(bucketLayout("a", 2, false), base);
  EXPECT_EQ(btfLayout(nullptr, 1), "");
  BtfPtr types(btf__new_empty(), btf__free);
  EXPECT_EQ(btfLayout(types.get(), 0), "") << "no type id: no BTF to compare";
}

} // namespace
} // namespace bpfchain::dataplane
