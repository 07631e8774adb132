// RFC 3339 timestamps in UTC, the form Kubernetes and the project's logs and state files use:
// "2026-12-04T21:05:24Z", or with 3 (milliseconds) or 6 (microseconds, a metav1.MicroTime)
// fraction digits. Negative times round down (the fraction is never negative).
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace bpfchain {

std::string rfc3339(std::chrono::system_clock::time_point time, int fractionDigits = 0);
inline std::string rfc3339Now(int fractionDigits = 0) {
  return rfc3339(std::chrono::system_clock::now(), fractionDigits);
}
// Whole seconds of "YYYY-MM-DDTHH:MM:SS..." in UTC (any fraction and zone suffix ignored, as
// the operator has always read its own timestamps); nullopt when it does not start that way.
std::optional<std::chrono::system_clock::time_point> parseRfc3339(const std::string& text);

} // namespace bpfchain
