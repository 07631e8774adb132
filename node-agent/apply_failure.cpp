#include "node-agent/apply_failure.h"

namespace bpfchain::agent {

ApplyFailure classifyApplyFailure(const Error& error, const std::string& interface) {
  const std::string& m = error.message();
  // The data plane's messages name what failed (common/dataplane/chain.cpp,
  // program_instance.cpp); tests/unit/node_config_test checks each mapping.
  std::string reason = "LoadFailed";
  if (m.find("; verifier: ") != std::string::npos)
    reason = "VerifierRejected";
  else if (m.find(".mapArgs[") != std::string::npos)
    reason = "MapArgInvalid";
  else if (m.find("globalData") != std::string::npos)
    reason = "GlobalDataInvalid";
  else if (m.find("entry \"") != std::string::npos || m.find("nextMap \"") != std::string::npos ||
           m.find("not a loadable BPF object") != std::string::npos)
    reason = "ProgramInvalid";
  return ApplyFailure{reason, interface.empty() ? m : interface + ": " + m};
}

} // namespace bpfchain::agent
