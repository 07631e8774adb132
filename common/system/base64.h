// Base64 with the standard alphabet (RFC 4648 section 4), as kubeconfigs and .sig files use it.
#pragma once

#include <string>
#include <string_view>

#include "system/result.h"

namespace bpfchain {

std::string base64Encode(std::string_view bytes);
// Strict: standard alphabet, padding required, no white space inside.
Result<std::string> base64Decode(std::string_view text);

} // namespace bpfchain
