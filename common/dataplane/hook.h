// The hooks a chain attaches to, as named in BpfChain.spec.hook.
#pragma once

#include <linux/bpf.h>

#include <string_view>

#include "system/result.h"

namespace bpfchain::dataplane {

enum class Hook { Xdp, TcIngress, TcEgress };

std::string_view hookName(Hook hook); // "xdp", "tc-ingress", "tc-egress"
Result<Hook> parseHook(std::string_view name);
// The program type every program of a chain on this hook is loaded as, whatever its section
// name says (L3AF's programs use sections such as "xdp_ratelimiting" that libbpf cannot type).
bpf_prog_type programType(Hook hook);

} // namespace bpfchain::dataplane
