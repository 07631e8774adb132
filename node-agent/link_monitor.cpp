#include "node-agent/link_monitor.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

namespace bpfchain::agent {

Result<std::unique_ptr<LinkMonitor>> LinkMonitor::start(std::function<void()> changed) {
  FD sock(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE));
  if (!sock)
    return systemError(errno, "open an rtnetlink socket");
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  addr.nl_groups = RTMGRP_LINK;
  if (bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    return systemError(errno, "subscribe to link changes");
  FD stop(eventfd(0, EFD_CLOEXEC));
  if (!stop)
    return systemError(errno, "eventfd");
  std::unique_ptr<LinkMonitor> monitor(new LinkMonitor(std::move(sock), std::move(stop)));
  monitor->thread_ = std::thread([m = monitor.get(), changed = std::move(changed)] {
    char buffer[16384];
    while (true) {
      pollfd fds[2] = {{m->stop_.get(), POLLIN, 0}, {m->socket_.get(), POLLIN, 0}};
      if (poll(fds, 2, -1) < 0 && errno != EINTR)
        return;
      if (fds[0].revents & POLLIN)
        return;
      bool any = false;
      // ENOBUFS (we fell behind) also means "something changed": a full resync follows.
      while (recv(m->socket_.get(), buffer, sizeof(buffer), 0) > 0 || errno == ENOBUFS)
        any = true;
      if (any)
        changed();
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
