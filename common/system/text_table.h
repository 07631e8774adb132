// Plain-text tables for the command-line tools (kubectl-bpfchain, `bpfchain-agent status`).
#pragma once

#include <string>
#include <vector>

namespace bpfchain {

// Left-aligned columns, two spaces apart, as kubectl prints tables; each line starts with
// `indent` and has no trailing spaces.
std::string textTable(const std::vector<std::vector<std::string>>& rows,
                      const std::string& indent = "");

} // namespace bpfchain
