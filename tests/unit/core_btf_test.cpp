// The kernel-type subset a load relocates against (dataplane/core_btf.h): which names an
// object's CO-RE relocations look up, when the whole kernel BTF must be used instead, and the
// subset's contents (every type of those names and every type they reach, ids renumbered).
#include <bpf/btf.h>
#include <linux/bpf.h>

#include <cstring>
#include <gtest/gtest.h>
#include <vector>

#include "dataplane/core_btf.h"
#include "system/file.h"

namespace bpfchain::dataplane {
namespace {

using Names = std::set<std::string>;

TEST(CoreBtf, EssentialNameDropsTheFlavor) {
  EXPECT_EQ(coreEssentialName("task_struct___v2"), "task_struct");
  EXPECT_EQ(coreEssentialName("xdp_md"), "xdp_md");
  EXPECT_EQ(coreEssentialName("a___b___c"), "a___b");
  EXPECT_EQ(coreEssentialName("__sk_buff"), "__sk_buff");
  EXPECT_EQ(coreEssentialName("x____y"), "x____y"); // four underscores: no flavor
  EXPECT_EQ(coreEssentialName("a___"), "a___");
}

// A small "kernel": unsigned int, struct xdp_md {data}, struct xdp_md___old {data},
// struct sk_buff {struct net_device *dev}, struct net_device {ifindex}, struct unrelated.
struct Kernel {
  BtfOwner btf{btf__new_empty(), btf__free};
  int uint = 0, xdp = 0, xdpOld = 0, skb = 0, ptr = 0, dev = 0, unrelated = 0;
  Kernel() {
    ::btf* b = btf.get();
    uint = btf__add_int(b, "unsigned int", 4, 0);
    unrelated = btf__add_struct(b, "unrelated", 4);
    btf__add_field(b, "x", uint, 0, 0);
    xdp = btf__add_struct(b, "xdp_md", 4);
    btf__add_field(b, "data", uint, 0, 0);
    ptr = btf__add_ptr(b, 0); // fixed below, once net_device exists
    skb = btf__add_struct(b, "sk_buff", 8);
    btf__add_field(b, "dev", ptr, 0, 0);
    dev = btf__add_struct(b, "net_device", 4);
    btf__add_field(b, "ifindex", uint, 0, 0);
    xdpOld = btf__add_struct(b, "xdp_md___old", 4);
    btf__add_field(b, "data", uint, 0, 0);
    const_cast<btf_type*>(btf__type_by_id(b, ptr))->type = dev;
  }
};

std::vector<std::string> typeNames(const ::btf* b) {
  std::vector<std::string> out;
  for (uint32_t id = 1; id < btf__type_cnt(b); ++id)
    out.emplace_back(btf__name_by_offset(b, btf__type_by_id(b, id)->name_off));
  return out;
}

TEST(CoreBtf, SubsetHoldsTheNamedTypesAndWhatTheyReachInKernelOrder) {
  Kernel k;
  auto xdp = coreBtfSubset(k.btf.get(), {"xdp_md"});
  ASSERT_TRUE(xdp && *xdp);
  const ::btf* s = (**xdp).get();
  EXPECT_EQ(typeNames(s), (std::vector<std::string>{"unsigned int", "xdp_md", "xdp_md___old"}));
  // Member types point at the subset's own ids.
  int sx = btf__find_by_name_kind(s, "xdp_md", BTF_KIND_STRUCT);
  ASSERT_GT(sx, 0);
  EXPECT_EQ(btf_members(btf__type_by_id(s, sx))[0].type,
            static_cast<uint32_t>(btf__find_by_name_kind(s, "unsigned int", BTF_KIND_INT)));

  auto skb = coreBtfSubset(k.btf.get(), {"sk_buff"});
  ASSERT_TRUE(skb && *skb);
  s = (**skb).get();
  EXPECT_EQ(typeNames(s), (std::vector<std::string>{"unsigned int", "", "sk_buff", "net_device"}));
  int sskb = btf__find_by_name_kind(s, "sk_buff", BTF_KIND_STRUCT);
  int sdev = btf__find_by_name_kind(s, "net_device", BTF_KIND_STRUCT);
  const btf_type* pointer = btf__type_by_id(s, btf_members(btf__type_by_id(s, sskb))[0].type);
  ASSERT_TRUE(btf_is_ptr(pointer));
  EXPECT_EQ(pointer->type, static_cast<uint32_t>(sdev));
  EXPECT_EQ(btf__type_by_id(s, sdev)->size, 4u);
}

TEST(CoreBtf, NoSubsetWhenTheKernelImageLacksAName) {
  Kernel k;
  auto missing = coreBtfSubset(k.btf.get(), {"xdp_md", "nf_conn"}); // a module's type
  ASSERT_TRUE(missing);
  EXPECT_FALSE(missing->has_value());
}

// A .BTF.ext holding CO-RE relocations {type id, kind} of one section.
std::vector<unsigned char> extWith(const std::vector<std::pair<uint32_t, uint32_t>>& relocations) {
  std::vector<uint32_t> words = {0, 32, 0, 0, 0, 0, 0, 0}; // header, filled below
  size_t header = words.size();
  words.push_back(sizeof(bpf_core_relo)); // record size
  words.push_back(1);                     // section name offset
  words.push_back(static_cast<uint32_t>(relocations.size()));
  for (auto [type, kind] : relocations)
    words.insert(words.end(), {0, type, 1, kind});
  words[6] = 0;                                                  // core_relo_off
  words[7] = static_cast<uint32_t>((words.size() - header) * 4); // core_relo_len
  std::vector<unsigned char> bytes(words.size() * 4);
  std::memcpy(bytes.data(), words.data(), bytes.size());
  bytes[0] = 0x9F; // magic 0xeB9F, little end first
  bytes[1] = 0xEB;
  bytes[2] = 1; // version
  return bytes;
}

TEST(CoreBtf, RootNamesOfRelocationsAndWhenTheWholeKernelBtfIsNeeded) {
  Kernel local; // the object's own BTF, here with the same types
  auto names = [&](const std::vector<std::pair<uint32_t, uint32_t>>& r) {
    auto ext = extWith(r);
    return coreRootNames(local.btf.get(), ext.data(), ext.size());
  };
  auto fieldOnly = names({{static_cast<uint32_t>(local.xdpOld), BPF_CORE_FIELD_BYTE_OFFSET},
                          {static_cast<uint32_t>(local.skb), BPF_CORE_FIELD_EXISTS},
                          {static_cast<uint32_t>(local.unrelated), BPF_CORE_TYPE_ID_LOCAL}});
  ASSERT_TRUE(fieldOnly && *fieldOnly);
  EXPECT_EQ(**fieldOnly, (Names{"xdp_md", "sk_buff"}));
  // A kernel type id differs in the subset: the whole BTF, as libbpf does by itself.
  auto targetId = names({{static_cast<uint32_t>(local.xdp), BPF_CORE_FIELD_BYTE_OFFSET},
                         {static_cast<uint32_t>(local.skb), BPF_CORE_TYPE_ID_TARGET}});
  ASSERT_TRUE(targetId);
  EXPECT_FALSE(targetId->has_value());
  auto anonymous = names({{static_cast<uint32_t>(local.ptr), BPF_CORE_TYPE_SIZE}});
  ASSERT_TRUE(anonymous);
  EXPECT_FALSE(anonymous->has_value());
  auto none = names({});
  ASSERT_TRUE(none && *none);
  EXPECT_TRUE((*none)->empty());

  auto bad = extWith({});
  EXPECT_FALSE(coreRootNames(local.btf.get(), bad.data(), 6));
  bad[0] = 0;
  EXPECT_FALSE(coreRootNames(local.btf.get(), bad.data(), bad.size()));
}

TEST(CoreBtf, RootNamesOfARealObject) {
  // bpf/counter.bpf.c reads struct xdp_md and struct __sk_buff (vmlinux.h records are
  // preserve_access_index).
  auto image = readFile(COUNTER_OBJECT, kNoSizeLimit);
  ASSERT_TRUE(image);
  auto names = coreRootNamesOfObject(*image);
  ASSERT_TRUE(names && *names) << (names ? "" : names.error().message());
  EXPECT_EQ(**names, (Names{"__sk_buff", "xdp_md"}));
  EXPECT_TRUE(coreRootNamesOfObject("not an ELF").value()->empty());
}

} // namespace
} // namespace bpfchain::dataplane
