// The release version, CMake's project VERSION (docs/releasing.md), and every binary's
// --version answer (system/command_line.h). Binaries get BPFCHAIN_VERSION by linking
// bpfchain_version.
#pragma once

namespace bpfchain {

inline constexpr const char* kVersion = BPFCHAIN_VERSION;

} // namespace bpfchain
