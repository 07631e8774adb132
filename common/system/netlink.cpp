#include "system/netlink.h"

#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <vector>

namespace bpfchain::netlink {
namespace {

// Walks the rtattrs in [data, data + length).
template <typename F> void forEachAttr(const void* data, size_t length, F&& f) {
  const auto* attr = static_cast<const rtattr*>(data);
  auto left = static_cast<unsigned int>(length);
  while (RTA_OK(attr, left)) {
    f(attr);
    attr = RTA_NEXT(attr, left);
  }
}

std::string attrString(const rtattr* attr) {
  const char* data = static_cast<const char*>(RTA_DATA(attr));
  return std::string(data, strnlen(data, RTA_PAYLOAD(attr)));
}

} // namespace

std::optional<Link> parseLink(const nlmsghdr* message) {
  if (message->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg)))
    return std::nullopt;
  const auto* info = static_cast<const ifinfomsg*>(NLMSG_DATA(message));
  Link link;
  link.index = info->ifi_index;
  forEachAttr(IFLA_RTA(info), IFLA_PAYLOAD(message), [&](const rtattr* attr) {
    switch (attr->rta_type) {
    case IFLA_IFNAME:
      link.name = attrString(attr);
      break;
    case IFLA_LINK:
      if (RTA_PAYLOAD(attr) >= sizeof(uint32_t))
        std::memcpy(&link.peerIndex, RTA_DATA(attr), sizeof(uint32_t));
      break;
    case IFLA_LINK_NETNSID:
      link.peerElsewhere = true;
      break;
    case IFLA_LINKINFO:
      forEachAttr(RTA_DATA(attr), RTA_PAYLOAD(attr), [&](const rtattr* nested) {
        if (nested->rta_type == IFLA_INFO_KIND)
          link.kind = attrString(nested);
      });
      break;
    case IFLA_XDP:
      forEachAttr(RTA_DATA(attr), RTA_PAYLOAD(attr), [&](const rtattr* nested) {
        if (nested->rta_type == IFLA_XDP_ATTACHED && RTA_PAYLOAD(nested) >= 1)
          link.xdpAttached = *static_cast<const uint8_t*>(RTA_DATA(nested));
        else if (nested->rta_type == IFLA_XDP_PROG_ID && RTA_PAYLOAD(nested) >= sizeof(uint32_t))
          std::memcpy(&link.xdpProgId, RTA_DATA(nested), sizeof(uint32_t));
      });
      break;
    default:
      break;
    }
  });
  return link;
}

Result<FD> openRouteSocket(std::chrono::seconds timeout) {
  FD fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd)
    return systemError(errno, "open an rtnetlink socket");
  timeval tv{static_cast<time_t>(timeout.count()), 0};
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0)
    return systemError(errno, "setsockopt SO_RCVTIMEO");
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return systemError(errno, "bind an rtnetlink socket");
  return fd;
}

Result<FD> subscribeRouteEvents(uint32_t groups) {
  FD fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE));
  if (!fd)
    return systemError(errno, "open an rtnetlink socket");
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  addr.nl_groups = groups;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return systemError(errno, "subscribe to rtnetlink events");
  return fd;
}

Result<Link> getLink(int routeSocket, int index, const std::string& name) {
  struct Request {
    nlmsghdr header;
    ifinfomsg info;
    std::array<char, RTA_SPACE(IFNAMSIZ) + RTA_SPACE(sizeof(uint32_t))> attrs;
  } request{};
  request.header.nlmsg_type = RTM_GETLINK;
  request.header.nlmsg_flags = NLM_F_REQUEST;
  request.header.nlmsg_seq = 1;
  request.info.ifi_family = AF_UNSPEC;
  request.info.ifi_index = index;
  size_t length = NLMSG_LENGTH(sizeof(ifinfomsg));
  auto addAttr = [&](unsigned short type, const void* data, size_t size) {
    auto* attr = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(&request) + NLMSG_ALIGN(length));
    attr->rta_type = type;
    attr->rta_len = static_cast<unsigned short>(RTA_LENGTH(size));
    std::memcpy(RTA_DATA(attr), data, size);
    length = NLMSG_ALIGN(length) + RTA_ALIGN(attr->rta_len);
  };
  if (index == 0) {
    if (name.empty() || name.size() >= IFNAMSIZ)
      return Error(EINVAL, "invalid interface name \"" + name + "\"");
    addAttr(IFLA_IFNAME, name.c_str(), name.size() + 1);
  }
  // Without the VF and stats details the answer stays small.
  uint32_t mask = RTEXT_FILTER_SKIP_STATS;
  addAttr(IFLA_EXT_MASK, &mask, sizeof mask);
  request.header.nlmsg_len = static_cast<uint32_t>(length);

  std::string what = index != 0 ? "interface index " + std::to_string(index) : name;
  if (::send(routeSocket, &request, length, 0) < 0)
    return systemError(errno, "netlink request for " + what);

  std::vector<char> buffer(size_t{32} * 1024);
  for (;;) {
    ssize_t n = ::recv(routeSocket, buffer.data(), buffer.size(), 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return systemError(errno, "netlink answer for " + what);
    }
    if (n == 0)
      return systemError(EPROTO, "netlink answer for " + what + ": none");
    auto left = static_cast<unsigned int>(n);
    for (auto* header = reinterpret_cast<const nlmsghdr*>(buffer.data()); NLMSG_OK(header, left);
         header = NLMSG_NEXT(header, left)) {
      if (header->nlmsg_seq != 1)
        continue;
      if (header->nlmsg_type == NLMSG_ERROR) {
        const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(header));
        if (err->error == 0)
          continue;
        return systemError(-err->error, what);
      }
      if (header->nlmsg_type != RTM_NEWLINK)
        continue;
      if (auto link = parseLink(header))
        return *link;
    }
  }
}

} // namespace bpfchain::netlink
