// The Go-built test-bed tools (cnitool, helm, ...) and what tests derive from them.
#pragma once
#include <string>

namespace bpfchain::testing {

// The directory tools/envtest/build.sh builds the tools into (on first use) and prints; "" when
// the build failed. Built once per process.
const std::string& testBedToolsDir();

// The container ID cnitool derives from a pod's netns path ("cnitool-" + 20 hex digits of its
// SHA-512), as a runtime's GC would list it.
std::string cnitoolContainerId(const std::string& netnsPath);

} // namespace bpfchain::testing
