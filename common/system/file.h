// Reading a whole file, the one way every directory does it.
#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include "system/result.h"

namespace bpfchain {

inline constexpr uint64_t kNoSizeLimit = std::numeric_limits<uint64_t>::max();

// The whole file, or an error when it is larger than maxBytes ("open <path>: <strerror>",
// "read <path>: ...", "<path>: larger than <n> bytes").
Result<std::string> readFile(const std::string& path, uint64_t maxBytes);

} // namespace bpfchain
