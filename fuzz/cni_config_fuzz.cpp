// The CNI plugin's stdin: the network configuration with its prevResult, as a runtime sends it
// (cni::run of ADD, and the JSON parser under it). A document that parses serializes to text
// that parses to an equal document.
//
// The plugin writes its log to the configuration's logFile and calls the agent at socketPath:
// the target removes the one and points the other at a path that cannot exist, so that no
// input writes a file or reaches a running agent.
#include <cstdlib>
#include <string>

#include "cni/json.h"
#include "cni/plugin.h"
#include "fuzz_support.h"

using namespace bpfchain;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(fuzz::asText(data, size));
  auto doc = cni::json::parse(text);
  if (doc) {
    auto again = cni::json::parse(cni::json::serialize(*doc));
    if (!again || !(*again == *doc))
      std::abort();
    if (doc->isObject()) {
      doc->erase("logFile");
      doc->set("socketPath", cni::json::Value::string(fuzz::scratchDir() + "/no-such-dir/sock"));
      text = cni::json::serialize(*doc);
    }
  }
  cni::Invocation invocation;
  invocation.env = {{"CNI_COMMAND", "ADD"},
                    {"CNI_CONTAINERID", "fuzz"},
                    {"CNI_NETNS", fuzz::scratchDir() + "/no-such-netns"},
                    {"CNI_IFNAME", "eth0"},
                    {"CNI_ARGS", "K8S_POD_NAMESPACE=fuzz;K8S_POD_NAME=fuzz"}};
  invocation.stdinText = std::move(text);
  cni::Outcome outcome = cni::run(invocation);
  // Every outcome is a CNI result or error document.
  if (!cni::json::parse(outcome.stdoutText))
    std::abort();
  return 0;
}
