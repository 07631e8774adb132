// The hooks a chain attaches to, as named in BpfChain.spec.hook.
#pragma once

#include <linux/bpf.h>

#include <optional>
#include <string>
#include <string_view>

#include "system/result.h"

namespace bpfchain::dataplane {

enum class Hook { Xdp, TcIngress, TcEgress };

std::string_view hookName(Hook hook); // "xdp", "tc-ingress", "tc-egress"
Result<Hook> parseHook(std::string_view name);
// The program type every program of a chain on this hook is loaded as, whatever its section
// name says (L3AF's programs use sections such as "xdp_ratelimiting" that libbpf cannot type).
bpf_prog_type programType(Hook hook);

// What a program says it was written for, read from its object before it is loaded.
struct ProgramDeclaration {
  std::string section; // its ELF section ("xdp", "tc-ingress", "xdp_ratelimiting")
  // The program type libbpf reads from that section, when libbpf knows the name.
  std::optional<bpf_prog_type> sectionType;
  // The struct its first argument points to ("xdp_md", "__sk_buff"), "" when BTF does not say.
  std::string firstArgument;
};

// Why a program declared so cannot run on `hook`, or nothing when it can (or nothing says
// otherwise). Since every program is loaded as the hook's type whatever its section says, a TC
// program on an XDP chain would load and return 0 = XDP_ABORTED for every packet. The first
// argument (struct xdp_md * for XDP, struct __sk_buff * for TC) is judged first; then the
// section: libbpf's reading of it, or for names libbpf does not know, L3AF's convention of an
// "xdp" or "tc" prefix ("xdp_ratelimiting", "tc-ingress"). Other names are not judged.
std::optional<std::string> hookMismatch(Hook hook, const ProgramDeclaration& program);

} // namespace bpfchain::dataplane
