// TCX attach types. Debian 12's linux-libc-dev and libbpf 1.1 predate TCX (kernel 6.6), so the
// values come from the kernel's uapi enum bpf_attach_type; bpf_link_create passes them through.
#pragma once

#include <linux/bpf.h>
#include <linux/types.h>

namespace bpfchain::dataplane {

inline constexpr auto kBpfTcxIngress = static_cast<bpf_attach_type>(46);
inline constexpr auto kBpfTcxEgress = static_cast<bpf_attach_type>(47);

// bpf_link_create's flags for TCX (uapi BPF_F_BEFORE / BPF_F_AFTER): with no relative program,
// BPF_F_BEFORE places the program first among the hook's programs; no flag appends it.
inline constexpr __u32 kBpfFBefore = 1U << 3;

// BPF_PROG_QUERY's attribute as kernels with TCX read it (uapi bpf_attr.query, 6.6): the
// hook's programs in the order they run.
struct TcxQueryAttr {
  __u32 targetIfindex;
  __u32 attachType;
  __u32 queryFlags;
  __u32 attachFlags;
  __aligned_u64 progIds;
  __u32 count;
  __u32 pad;
  __aligned_u64 progAttachFlags;
  __aligned_u64 linkIds;
  __aligned_u64 linkAttachFlags;
  __aligned_u64 revision;
};

} // namespace bpfchain::dataplane
