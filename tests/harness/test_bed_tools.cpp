#include "harness/test_bed_tools.h"

#include <openssl/sha.h>

#include "harness/process.h"

namespace bpfchain::testing {

const std::string& testBedToolsDir() {
  static const std::string dir = [] {
    auto built = checkCommand({std::string(BPFCHAIN_SOURCE_DIR) + "/tools/envtest/build.sh"});
    std::string out = built ? built->out : "";
    while (!out.empty() && (out.back() == '\n' || out.back() == ' '))
      out.pop_back();
    return out;
  }();
  return dir;
}

std::string cnitoolContainerId(const std::string& netnsPath) {
  unsigned char digest[SHA512_DIGEST_LENGTH];
  SHA512(reinterpret_cast<const unsigned char*>(netnsPath.data()), netnsPath.size(), digest);
  static const char* hex = "0123456789abcdef";
  std::string id = "cnitool-";
  for (int i = 0; i < 10; ++i) {
    id += hex[digest[i] >> 4];
    id += hex[digest[i] & 0xf];
  }
  return id;
}

} // namespace bpfchain::testing
