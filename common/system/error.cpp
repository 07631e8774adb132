#include <cstring>

#include "system/result.h"

namespace bpfchain {

const char* reasonName(ErrorKind kind) {
  switch (kind) {
  case ErrorKind::VerifierRejected:
    return "VerifierRejected";
  case ErrorKind::MapArgInvalid:
    return "MapArgInvalid";
  case ErrorKind::GlobalDataInvalid:
    return "GlobalDataInvalid";
  case ErrorKind::ProgramInvalid:
    return "ProgramInvalid";
  case ErrorKind::SpecInvalid:
    return "SpecInvalid";
  case ErrorKind::RevisionUnavailable:
    return "RevisionUnavailable";
  case ErrorKind::DigestMismatch:
    return "DigestMismatch";
  case ErrorKind::Unclassified:
  case ErrorKind::LoadFailed:
    break;
  }
  return "LoadFailed";
}

Error systemError(int code, const std::string& what) {
  // strerror_r's GNU form may return a static string instead of filling buf.
  char buf[128];
  const char* text = strerror_r(code, buf, sizeof buf);
  return Error(code, what + ": " + text);
}

} // namespace bpfchain
