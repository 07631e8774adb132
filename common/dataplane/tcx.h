// TCX attach types. Debian 12's linux-libc-dev and libbpf 1.1 predate TCX (kernel 6.6), so the
// values come from the kernel's uapi enum bpf_attach_type; bpf_link_create passes them through.
#pragma once

#include <linux/bpf.h>

namespace bpfchain::dataplane {

inline constexpr auto kBpfTcxIngress = static_cast<bpf_attach_type>(46);
inline constexpr auto kBpfTcxEgress = static_cast<bpf_attach_type>(47);

} // namespace bpfchain::dataplane
