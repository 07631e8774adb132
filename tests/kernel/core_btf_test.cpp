// Relocating against the kernel-type subset (dataplane/core_btf.h) gives the kernel the same
// program as relocating against the whole kernel BTF: each object is loaded both ways and the
// verifier's instructions compared.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <cstring>
#include <gtest/gtest.h>
#include <map>
#include <memory>
#include <vector>

#include "dataplane/core_btf.h"

namespace bpfchain::dataplane {
namespace {

const std::string kBpfDir = BPFCHAIN_BPF_DIR;

// The kernel's instructions of every program of `path`, by name, with map references (their
// ids differ between two loads) cleared.
std::map<std::string, std::vector<bpf_insn>> loadedInstructions(const std::string& path,
                                                                const char* customBtf) {
  std::map<std::string, std::vector<bpf_insn>> out;
  LIBBPF_OPTS(bpf_object_open_opts, opts, .btf_custom_path = customBtf);
  std::unique_ptr<bpf_object, void (*)(bpf_object*)> obj(bpf_object__open_file(path.c_str(), &opts),
                                                         bpf_object__close);
  if (!obj || bpf_object__load(obj.get()) != 0) {
    ADD_FAILURE() << "load " << path << (customBtf ? " with the subset" : "");
    return out;
  }
  bpf_program* prog;
  bpf_object__for_each_program (prog, obj.get()) {
    bpf_prog_info info{};
    uint32_t len = sizeof info;
    EXPECT_EQ(bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len), 0);
    std::vector<bpf_insn> insns(info.xlated_prog_len / sizeof(bpf_insn));
    info = bpf_prog_info{};
    info.xlated_prog_len = insns.size() * sizeof(bpf_insn);
    info.xlated_prog_insns = reinterpret_cast<uint64_t>(insns.data());
    len = sizeof info;
    EXPECT_EQ(bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len), 0);
    for (size_t i = 0; i + 1 < insns.size(); ++i)
      if (insns[i].code == (BPF_LD | BPF_IMM | BPF_DW) && insns[i].src_reg != 0) {
        insns[i].imm = 0;
        insns[i + 1].imm = 0;
      }
    out[bpf_program__name(prog)] = std::move(insns);
  }
  return out;
}

bool same(const std::vector<bpf_insn>& a, const std::vector<bpf_insn>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof a[0]) == 0;
}

TEST(CoreBtf, TheSubsetRelocatesLikeTheWholeKernelBtf) {
  for (const char* object : {"counter.bpf.o", "ratelimit.bpf.o"}) {
    SCOPED_TRACE(object);
    std::string path = kBpfDir + "/" + object;
    std::string subset = coreBtfPathFor(path);
    ASSERT_FALSE(subset.empty()) << "these objects read vmlinux.h records: the subset is used";
    EXPECT_EQ(coreBtfPathFor(path), subset) << "built once per set of names";
    auto whole = loadedInstructions(path, nullptr);
    auto fromSubset = loadedInstructions(path, subset.c_str());
    ASSERT_FALSE(whole.empty());
    ASSERT_EQ(whole.size(), fromSubset.size());
    for (const auto& [name, insns] : whole) {
      ASSERT_TRUE(fromSubset.contains(name)) << name;
      EXPECT_TRUE(same(insns, fromSubset[name])) << name;
    }
  }
}

} // namespace
} // namespace bpfchain::dataplane
