// A kubeconfig file: k8s::loadKubeconfig (its current context). Files it names are read
// relative to the kubeconfig's directory, which holds only the kubeconfig.
#include "fuzz_support.h"
#include "k8s/config.h"

using namespace bpfchain;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = fuzz::scratchDir() + "/kubeconfig";
  fuzz::writeFileOrDie(path, fuzz::asText(data, size));
  (void)k8s::loadKubeconfig(path);
  return 0;
}
