// rtnetlink link queries, written once for the CNI plugin (cni/netlink.h), the data plane's XDP
// owner check (dataplane/attachment.cpp) and the agent's link monitor (link_monitor.cpp):
// one link's RTM_GETLINK answer, or a link event, parsed into what those readers use.
// No data plane, no Kubernetes: the CNI plugin links it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "system/fd.h"
#include "system/result.h"

struct nlmsghdr;

namespace bpfchain::netlink {

struct Link {
  int index = 0;
  std::string name;
  std::string kind;  // IFLA_INFO_KIND: "veth", "bridge", "netkit", ... ("" for physical devices)
  int peerIndex = 0; // IFLA_LINK: a veth's peer (in the peer's namespace), or 0
  bool peerElsewhere = false; // IFLA_LINK_NETNSID present: the peer is in another namespace
  uint8_t xdpAttached = 0;    // IFLA_XDP_ATTACHED: XDP_ATTACHED_NONE, _DRV, _SKB, _HW, _MULTI
  uint32_t xdpProgId = 0;     // IFLA_XDP_PROG_ID, 0 when none
};

// An RTM_NEWLINK or RTM_DELLINK message's link; nullopt when the message is too short for one.
std::optional<Link> parseLink(const nlmsghdr* message);

// A NETLINK_ROUTE socket in the caller's network namespace for getLink; `timeout` bounds the
// wait for each answer.
Result<FD> openRouteSocket(std::chrono::seconds timeout);

// A NETLINK_ROUTE socket subscribed to `groups` (RTMGRP_LINK, ...), non-blocking.
Result<FD> subscribeRouteEvents(uint32_t groups);

// One RTM_GETLINK (statistics left out): the link with `index` (> 0), or called `name` when
// index is 0. An error keeps the kernel's errno (ENODEV: no such link).
Result<Link> getLink(int routeSocket, int index, const std::string& name = "");

} // namespace bpfchain::netlink
