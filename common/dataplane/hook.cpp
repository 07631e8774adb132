#include "dataplane/hook.h"

#include <string>

namespace bpfchain::dataplane {

std::string_view hookName(Hook hook) {
  switch (hook) {
  case Hook::Xdp:
    return "xdp";
  case Hook::TcIngress:
    return "tc-ingress";
  case Hook::TcEgress:
    return "tc-egress";
  }
  return "unknown";
}

Result<Hook> parseHook(std::string_view name) {
  for (Hook hook : {Hook::Xdp, Hook::TcIngress, Hook::TcEgress})
    if (hookName(hook) == name)
      return hook;
  return invalidError("hook \"" + std::string(name) +
                      "\" is not one of xdp, tc-ingress, tc-egress");
}

bpf_prog_type programType(Hook hook) {
  return hook == Hook::Xdp ? BPF_PROG_TYPE_XDP : BPF_PROG_TYPE_SCHED_CLS;
}

} // namespace bpfchain::dataplane
