#include "dataplane/hook.h"

#include <bpf/libbpf.h>

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

namespace {

bool startsWithWord(std::string_view section, std::string_view word) {
  if (section.substr(0, word.size()) != word)
    return false;
  if (section.size() == word.size())
    return true;
  char after = section[word.size()];
  return after == '-' || after == '_' || after == '/' || after == '.';
}

// The type a section name means by L3AF's (and iproute2's) conventions, for names libbpf does
// not know.
std::optional<bpf_prog_type> conventionalType(std::string_view section) {
  if (startsWithWord(section, "xdp"))
    return BPF_PROG_TYPE_XDP;
  if (startsWithWord(section, "tc") || startsWithWord(section, "tcx") ||
      startsWithWord(section, "classifier"))
    return BPF_PROG_TYPE_SCHED_CLS;
  return std::nullopt;
}

std::string typeName(bpf_prog_type type) {
  if (type == BPF_PROG_TYPE_SCHED_CLS)
    return "tc";
  const char* name = libbpf_bpf_prog_type_str(type);
  return name ? name : "type " + std::to_string(static_cast<int>(type));
}

} // namespace

std::optional<std::string> hookMismatch(Hook hook, const ProgramDeclaration& program) {
  const bool xdp = hook == Hook::Xdp;
  const std::string onHook = ", not a program for the " + std::string(hookName(hook)) + " hook";
  if (xdp && program.firstArgument == "__sk_buff")
    return "its first argument is struct __sk_buff *: a tc program" + onHook;
  if (!xdp && program.firstArgument == "xdp_md")
    return "its first argument is struct xdp_md *: an xdp program" + onHook;
  auto type = program.sectionType ? program.sectionType : conventionalType(program.section);
  if (type && *type != programType(hook)) {
    std::string name = typeName(*type);
    bool vowel = std::string_view("aeiox").find(name[0]) != std::string_view::npos;
    return "its section \"" + program.section + "\" makes it " + (vowel ? "an " : "a ") + name +
           " program" + onHook;
  }
  return std::nullopt;
}

} // namespace bpfchain::dataplane
