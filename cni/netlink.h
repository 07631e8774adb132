// Just enough rtnetlink for the CNI plugin to find a pod's host-side interface: one link's
// index, name, kind and peer (system/netlink.h), looked up in the runtime's network namespace
// or in the pod's.
#pragma once

#include <string>

#include "system/fd.h"
#include "system/netlink.h"
#include "system/result.h"

namespace bpfchain::cni {

using Link = netlink::Link; // index, name, kind and peer are what the plugin reads

// An rtnetlink socket in the namespace at `netnsPath` ("" for the caller's own). The socket
// keeps that namespace for its life; the calling thread returns to its own at once.
Result<FD> routeSocket(const std::string& netnsPath = "");

Result<Link> linkByName(int routeSocket, const std::string& name);
Result<Link> linkByIndex(int routeSocket, int index);

// A veth (or netkit) pair end: the kinds whose IFLA_LINK names a peer.
bool isPairDevice(const Link& link);

} // namespace bpfchain::cni
