#include "system/time.h"

#include <cstdint>
#include <cstdio>
#include <ctime>

namespace bpfchain {

std::string rfc3339(std::chrono::system_clock::time_point time, int fractionDigits) {
  auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(time.time_since_epoch()).count();
  auto seconds = static_cast<std::time_t>(micros / 1000000);
  int64_t fraction = micros % 1000000;
  if (fraction < 0) {
    fraction += 1000000;
    --seconds;
  }
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[48];
  size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  if (fractionDigits == 3)
    std::snprintf(text + n, sizeof text - n, ".%03lldZ", static_cast<long long>(fraction / 1000));
  else if (fractionDigits == 6)
    std::snprintf(text + n, sizeof text - n, ".%06lldZ", static_cast<long long>(fraction));
  else
    std::snprintf(text + n, sizeof text - n, "Z");
  return text;
}

std::optional<std::chrono::system_clock::time_point> parseRfc3339(const std::string& text) {
  std::tm tm{};
  if (text.empty() || !strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm))
    return std::nullopt;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

} // namespace bpfchain
