// The machine-readable reason of a failed chain apply (BpfNodeConfig status, metrics), from
// the data plane's error kind (never its text): VerifierRejected (the message keeps the verifier
// log's tail), MapArgInvalid, GlobalDataInvalid, ProgramInvalid (no such entry or next map, not a
// BPF object), LoadFailed (anything else).
#pragma once
#include <string>

#include "system/result.h"

namespace bpfchain::agent {

struct ApplyFailure {
  std::string reason;
  std::string message;
};

ApplyFailure classifyApplyFailure(const Error& error, const std::string& interface);

} // namespace bpfchain::agent
