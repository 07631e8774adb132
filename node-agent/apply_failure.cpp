#include "node-agent/apply_failure.h"

namespace bpfchain::agent {

ApplyFailure classifyApplyFailure(const Error& error, const std::string& interface) {
  // The kind was set where the error happened (common/dataplane); the text is for people.
  const std::string& m = error.message();
  return ApplyFailure{reasonName(error.kind()), interface.empty() ? m : interface + ": " + m};
}

} // namespace bpfchain::agent
