#include "dataplane/features.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <cstdio>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "dataplane/tcx.h"
#include "system/fd.h"

namespace bpfchain::dataplane {
namespace {

FD loadPassProgram(bpf_prog_type type) {
  // r0 = 0 (XDP_ABORTED / TC_ACT_OK): never attached, only used as the subject of a probe.
  const bpf_insn insns[] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .src_reg = 0, .off = 0, .imm = 0},
      {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
  };
  return FD(bpf_prog_load(type, "bpfchain_probe", "GPL", insns, 2, nullptr));
}

// A TCX link to an interface that cannot exist: ENODEV means the kernel knows the attach type
// and got as far as looking the device up; EINVAL means it does not know the attach type.
// (XDP answers EINVAL for a missing device too, so it cannot be probed this way.)
bool linkTypeSupported(bpf_prog_type type, bpf_attach_type attachType) {
  FD prog = loadPassProgram(type);
  if (!prog)
    return false;
  constexpr int kNoSuchInterface = 0x7ffffff0;
  int fd = bpf_link_create(prog.get(), kNoSuchInterface, attachType, nullptr);
  if (fd >= 0) {
    FD link(fd);
    return true;
  }
  return errno == ENODEV;
}

KernelFeatures probe() {
  KernelFeatures f;
  utsname u{};
  if (::uname(&u) == 0)
    f.kernelRelease = u.release;
  struct stat st {};
  f.btf = ::stat("/sys/kernel/btf/vmlinux", &st) == 0;
  // XDP links arrived in 5.9. Probing by attaching to a real interface would touch traffic.
  int major = 0, minor = 0;
  std::sscanf(u.release, "%d.%d", &major, &minor);
  f.xdpLink = major > 5 || (major == 5 && minor >= 9);
  f.tcx = linkTypeSupported(BPF_PROG_TYPE_SCHED_CLS, kBpfTcxIngress);
  return f;
}

} // namespace

const KernelFeatures& kernelFeatures() {
  static const KernelFeatures features = probe();
  return features;
}

} // namespace bpfchain::dataplane
