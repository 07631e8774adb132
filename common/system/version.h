// The release version, CMake's project VERSION (docs/releasing.md), and every binary's
// --version answer. Binaries get BPFCHAIN_VERSION by linking bpfchain_version.
#pragma once

#include <cstdio>
#include <string_view>

namespace bpfchain {

inline constexpr const char* kVersion = BPFCHAIN_VERSION;

// When the only argument is --version: prints "<program> <version>" and returns true.
inline bool answerVersion(int argc, char** argv, const char* program) {
  if (argc != 2 || std::string_view(argv[1]) != "--version")
    return false;
  std::printf("%s %s\n", program, kVersion);
  return true;
}

} // namespace bpfchain
