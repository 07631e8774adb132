// hookMismatch: which programs a chain's hook refuses before loading them.
#include <gtest/gtest.h>

#include "dataplane/hook.h"

namespace bpfchain::dataplane {
namespace {

ProgramDeclaration declared(std::string section, std::string firstArgument,
                            std::optional<bpf_prog_type> sectionType = std::nullopt) {
  return {.section = std::move(section),
          .sectionType = sectionType,
          .firstArgument = std::move(firstArgument)};
}

TEST(HookMismatch, ProgramsWrittenForTheHookFit) {
  for (Hook tc : {Hook::TcIngress, Hook::TcEgress}) {
    EXPECT_EQ(hookMismatch(tc, declared("tc", "__sk_buff", BPF_PROG_TYPE_SCHED_CLS)), std::nullopt);
    EXPECT_EQ(hookMismatch(tc, declared("tc-ingress", "__sk_buff")), std::nullopt);
    EXPECT_EQ(hookMismatch(tc, declared("tc_egress", "")), std::nullopt);
    EXPECT_EQ(hookMismatch(tc, declared("classifier", "__sk_buff")), std::nullopt);
    EXPECT_EQ(hookMismatch(tc, declared("tcx/ingress", "__sk_buff")), std::nullopt);
  }
  EXPECT_EQ(hookMismatch(Hook::Xdp, declared("xdp", "xdp_md", BPF_PROG_TYPE_XDP)), std::nullopt);
  EXPECT_EQ(hookMismatch(Hook::Xdp, declared("xdp_ratelimiting", "xdp_md")), std::nullopt);
  EXPECT_EQ(hookMismatch(Hook::Xdp, declared("xdp.frags", "", BPF_PROG_TYPE_XDP)), std::nullopt);
}

TEST(HookMismatch, WhatNothingSaysIsNotJudged) {
  // A name neither libbpf nor L3AF's convention types, and a context BTF does not name.
  EXPECT_EQ(hookMismatch(Hook::Xdp, declared("ratelimiting", "")), std::nullopt);
  EXPECT_EQ(hookMismatch(Hook::TcIngress, declared("ipfix", "")), std::nullopt);
  // "tcp..." and "xdpx" are not the tc or xdp prefix.
  EXPECT_EQ(hookMismatch(Hook::Xdp, declared("tcp_filter", "")), std::nullopt);
  EXPECT_EQ(hookMismatch(Hook::TcIngress, declared("xdpfilter", "")), std::nullopt);
}

TEST(HookMismatch, ATcProgramOnXdpIsRefused) {
  EXPECT_EQ(hookMismatch(Hook::Xdp, declared("tc-ingress", "__sk_buff")),
            "its first argument is struct __sk_buff *: a tc program, not a program for the xdp "
            "hook");
  // The argument is judged even when the section fits.
  EXPECT_EQ(hookMismatch(Hook::Xdp, declared("xdp", "__sk_buff", BPF_PROG_TYPE_XDP)),
            "its first argument is struct __sk_buff *: a tc program, not a program for the xdp "
            "hook");
  EXPECT_EQ(hookMismatch(Hook::Xdp, declared("tc-ingress", "")),
            "its section \"tc-ingress\" makes it a tc program, not a program for the xdp hook");
  EXPECT_EQ(hookMismatch(Hook::Xdp, declared("tc", "", BPF_PROG_TYPE_SCHED_CLS)),
            "its section \"tc\" makes it a tc program, not a program for the xdp hook");
}

TEST(HookMismatch, AnXdpOrOtherProgramOnTcIsRefused) {
  EXPECT_EQ(hookMismatch(Hook::TcEgress, declared("xdp", "xdp_md", BPF_PROG_TYPE_XDP)),
            "its first argument is struct xdp_md *: an xdp program, not a program for the "
            "tc-egress hook");
  EXPECT_EQ(hookMismatch(Hook::TcIngress, declared("xdp_ratelimiting", "")),
            "its section \"xdp_ratelimiting\" makes it an xdp program, not a program for the "
            "tc-ingress hook");
  EXPECT_EQ(hookMismatch(Hook::TcIngress, declared("kprobe/do_unlinkat", "", BPF_PROG_TYPE_KPROBE)),
            "its section \"kprobe/do_unlinkat\" makes it a kprobe program, not a program for the "
            "tc-ingress hook");
}

} // namespace
} // namespace bpfchain::dataplane
