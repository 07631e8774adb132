#include <cstring>

#include "system/result.h"

namespace bpfchain {

Error systemError(int code, const std::string& what) {
  // strerror_r's GNU form may return a static string instead of filling buf.
  char buf[128];
  const char* text = strerror_r(code, buf, sizeof buf);
  return Error(code, what + ": " + text);
}

} // namespace bpfchain
