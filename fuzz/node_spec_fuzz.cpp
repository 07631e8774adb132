// The standalone agent's --config file: agent::loadNodeSpecFile, the public parser of that
// file whatever its format.
#include "fuzz_support.h"
#include "node-agent/node_config.h"

using namespace bpfchain;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = fuzz::scratchDir() + "/node-config";
  fuzz::writeFileOrDie(path, fuzz::asText(data, size));
  (void)agent::loadNodeSpecFile(path);
  return 0;
}
