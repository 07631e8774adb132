#include "node-agent/link_monitor.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <map>
#include <net/if.h>
#include <poll.h>
#include <string>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "system/netlink.h"

namespace bpfchain::agent {

namespace {

// What a link event may change that the agent acts on: the name (chains select interfaces by
// name) and the XDP program (an attachment removed behind the agent's back). Carrier, flags,
// master and statistics changes are frequent (several per pod veth) and change nothing here,
// and every pass the agent runs is O(pods): a pod's ADD must not cause more than one.
struct LinkState {
  std::string name;
  uint32_t xdpProgId = 0;
};

std::map<int, LinkState> currentLinks() {
  std::map<int, LinkState> links;
  for (const auto& [name, index] : listInterfaces())
    links[index].name = name;
  return links;
}

LinkState parseLink(const nlmsghdr* h) {
  netlink::Link link = netlink::parseLink(h).value_or(netlink::Link{});
  return {std::move(link.name), link.xdpProgId};
}

// Applies one batch of link messages to `links`; whether any calls for a pass.
bool applyLinkMessages(char* buffer, int len, std::map<int, LinkState>& links) {
  bool any = false;
  for (auto* h = reinterpret_cast<nlmsghdr*>(buffer); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg)))
      continue;
    int index = static_cast<const ifinfomsg*>(NLMSG_DATA(h))->ifi_index;
    if (h->nlmsg_type == RTM_DELLINK) {
      any |= links.erase(index) > 0;
    } else if (h->nlmsg_type == RTM_NEWLINK) {
      LinkState state = parseLink(h);
      auto [it, inserted] = links.try_emplace(index, state);
      if (!inserted) {
        // A program appearing is the agent's own attachment (or one it cannot remove): only a
        // rename and a program removed or replaced call for a pass.
        bool xdpLost = it->second.xdpProgId != 0 && state.xdpProgId != it->second.xdpProgId;
        any |= state.name != it->second.name || xdpLost;
        it->second = state;
      }
      any |= inserted;
    }
  }
  return any;
}

// Reads every queued link message of `sock` into `links`; whether any calls for a pass.
bool drainLinkEvents(int sock, std::map<int, LinkState>& links) {
  alignas(nlmsghdr) char buffer[32768];
  bool any = false;
  while (true) {
    ssize_t n = recv(sock, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == ENOBUFS) {
      // We fell behind and lost events: start over from the kernel's list.
      links = currentLinks();
      any = true;
      continue;
    }
    if (n <= 0)
      return any;
    any |= applyLinkMessages(buffer, static_cast<int>(n), links);
  }
}

Interfaces byName(const std::map<int, LinkState>& links) {
  Interfaces names;
  for (const auto& [index, state] : links)
    names[state.name] = index;
  return names;
}

} // namespace

Interfaces listInterfaces() {
  Interfaces result;
  if (struct if_nameindex* names = if_nameindex()) {
    for (auto* n = names; n->if_index != 0; ++n)
      result[n->if_name] = static_cast<int>(n->if_index);
    if_freenameindex(names);
  }
  return result;
}

Result<std::unique_ptr<LinkMonitor>>
LinkMonitor::start(std::function<void(Interfaces links)> changed) {
  auto subscribed = netlink::subscribeRouteEvents(RTMGRP_LINK);
  if (!subscribed)
    return std::move(subscribed).error().context("subscribe to link changes");
  FD sock = std::move(*subscribed);
  FD stop(eventfd(0, EFD_CLOEXEC));
  if (!stop)
    return systemError(errno, "eventfd");
  std::unique_ptr<LinkMonitor> monitor(new LinkMonitor(std::move(sock), std::move(stop)));
  // Subscribed first, listed second: a change in between shows up as an event.
  monitor->thread_ = std::thread(
      [m = monitor.get(), changed = std::move(changed), links = currentLinks()]() mutable {
        while (true) {
          pollfd fds[2] = {{m->stop_.get(), POLLIN, 0}, {m->socket_.get(), POLLIN, 0}};
          if (poll(fds, 2, -1) < 0 && errno != EINTR)
            return;
          if (fds[0].revents & POLLIN)
            return;
          if (drainLinkEvents(m->socket_.get(), links))
            changed(byName(links));
        }
      });
  return monitor;
}

LinkMonitor::~LinkMonitor() {
  uint64_t one = 1;
  (void)!write(stop_.get(), &one, sizeof(one));
  if (thread_.joinable())
    thread_.join();
}

} // namespace bpfchain::agent
