// The replay driver of a fuzz target when it is not built with libFuzzer (GCC, the default
// build): runs every file of the given corpus directories (or files) through the target's
// entry point once, so that CI's unit tier replays each committed corpus. A crash, a sanitizer
// report or an escaping exception fails the run; an empty corpus does too (a mistyped path
// must not pass silently).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_support.h"

namespace {

int runFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
    return 1;
  }
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path arg(argv[i]);
    if (std::filesystem::is_directory(arg)) {
      for (const auto& entry : std::filesystem::directory_iterator(arg))
        if (entry.is_regular_file())
          files.push_back(entry.path());
    } else {
      files.push_back(arg);
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: %s <corpus dir or file>... (found no input)\n", argv[0]);
    return 2;
  }
  int failures = 0;
  for (const auto& file : files)
    failures += runFile(file);
  std::printf("replayed %zu inputs\n", files.size() - static_cast<size_t>(failures));
  return failures == 0 ? 0 : 1;
}
