// A mapArgs key or value as a spec wrote it: btf::parseArgValue. A value that parses renders
// (argValueToYaml) to a tree that reads back as an equal value.
#include <cstdlib>
#include <string>
#include <yaml-cpp/yaml.h>

#include "btf/arg_value.h"
#include "fuzz_support.h"

using namespace bpfchain;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto value = btf::parseArgValue(std::string(fuzz::asText(data, size)), "fuzz");
  if (!value)
    return 0;
  auto again = btf::argValueFromYaml(btf::argValueToYaml(*value), "fuzz");
  if (!again || !(*again == *value))
    std::abort();
  return 0;
}
