// A package's manifest.yaml: parseManifest. A manifest that parses renders (manifestYaml) to
// text that parses to the same manifest.
#include <cstdlib>

#include "fuzz_support.h"
#include "packages/manifest.h"

using namespace bpfchain;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto manifest = packages::parseManifest(fuzz::asText(data, size), "fuzz");
  if (!manifest)
    return 0;
  auto again = packages::parseManifest(packages::manifestYaml(*manifest), "fuzz-again");
  if (!again || again->name != manifest->name || again->version != manifest->version ||
      again->programs.size() != manifest->programs.size())
    std::abort();
  return 0;
}
