// Just enough rtnetlink for the CNI plugin to find a pod's host-side interface: one link's
// index, name, kind and peer, looked up in the runtime's network namespace or in the pod's.
#pragma once

#include <string>

#include "system/fd.h"
#include "system/result.h"

namespace bpfchain::cni {

struct Link {
  int index = 0;
  std::string name;
  std::string kind;  // IFLA_INFO_KIND: "veth", "bridge", "netkit", ... ("" for physical devices)
  int peerIndex = 0; // IFLA_LINK: a veth's peer (in the peer's namespace), or 0
  bool peerElsewhere = false; // IFLA_LINK_NETNSID present: the peer is in another namespace
};

// An rtnetlink socket in the namespace at `netnsPath` ("" for the caller's own). The socket
// keeps that namespace for its life; the calling thread returns to its own at once.
Result<FD> routeSocket(const std::string& netnsPath = "");

Result<Link> linkByName(int routeSocket, const std::string& name);
Result<Link> linkByIndex(int routeSocket, int index);

// A veth (or netkit) pair end: the kinds whose IFLA_LINK names a peer.
bool isPairDevice(const Link& link);

} // namespace bpfchain::cni
