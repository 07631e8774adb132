// Escaping text for JSON and for log lines, the one way every directory does it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace bpfchain {

// The length of the well-formed UTF-8 sequence at text[at] (1-4), or 0 when the bytes there
// are not one (overlong forms, surrogates and code points past U+10FFFF are not).
size_t utf8SequenceLength(std::string_view text, size_t at);

// Appends `text` as a JSON string (RFC 8259), quotes included: '"', '\\' and control
// characters escaped, bytes that are not UTF-8 replaced by U+FFFD, so the result is always
// valid JSON.
void appendJsonString(std::string& out, std::string_view text);

// `text` in double quotes for an error message, safe to print whatever it holds: '"' and '\\'
// escaped with a backslash, control characters as \xNN, other bytes as they are.
std::string quote(std::string_view text);

} // namespace bpfchain
