// One CNI attachment as the plugin names it. (network, container id, pod ifname) is its
// identity: a pod may be in several networks, or have several interfaces in one.
#pragma once

#include <string>

namespace bpfchain::agent {

struct PodRef {
  std::string containerId;
  std::string ns;
  std::string name;
  std::string hostIfname;
  int hostIfindex = 0;
  std::string podIfname; // CNI_IFNAME
  std::string network;   // the CNI network's name
  bool operator==(const PodRef&) const = default;
};

// The attachment's file and pin name: readable (the container id's start) and unique (a
// digest of the whole identity), short enough for bpffs names.
std::string attachmentKey(const PodRef& ref);

} // namespace bpfchain::agent
