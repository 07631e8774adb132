// Kernel features the data plane chooses between, probed once per process.
#pragma once

#include <string>

namespace bpfchain::dataplane {

struct KernelFeatures {
  bool xdpLink = false; // BPF_LINK_TYPE_XDP (5.9+): an XDP attachment owned by a pinnable link
  bool tcx = false;     // TCX links (6.6+): multi-program TC without a qdisc
  bool btf = false;     // kernel BTF at /sys/kernel/btf/vmlinux
  std::string kernelRelease;
};

// Probes on first call (loads a 2-instruction program; needs CAP_BPF), then returns the
// cached result.
const KernelFeatures& kernelFeatures();

} // namespace bpfchain::dataplane
