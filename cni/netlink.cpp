#include "cni/netlink.h"

#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <vector>

namespace bpfchain::cni {
namespace {

// Walks the rtattrs in [data, data + length).
template <typename F> void forEachAttr(const char* data, size_t length, F&& f) {
  auto* attr = reinterpret_cast<const rtattr*>(data);
  auto left = static_cast<unsigned int>(length);
  while (RTA_OK(attr, left)) {
    f(attr);
    attr = RTA_NEXT(attr, left);
  }
}

std::string attrString(const rtattr* attr) {
  const char* data = static_cast<const char*>(RTA_DATA(attr));
  size_t size = RTA_PAYLOAD(attr);
  return std::string(data, strnlen(data, size));
}

Result<Link> getLink(int fd, int index, const std::string& name) {
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
  if (::send(fd, &request, length, 0) < 0)
    return systemError(errno, "netlink request for " + what);

  std::vector<char> buffer(size_t{32} * 1024);
  for (;;) {
    ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return systemError(errno, "netlink answer for " + what);
    }
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
      const auto* info = static_cast<const ifinfomsg*>(NLMSG_DATA(header));
      Link link;
      link.index = info->ifi_index;
      forEachAttr(reinterpret_cast<const char*>(IFLA_RTA(info)), IFLA_PAYLOAD(header),
                  [&](const rtattr* attr) {
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
                      forEachAttr(static_cast<const char*>(RTA_DATA(attr)), RTA_PAYLOAD(attr),
                                  [&](const rtattr* nested) {
                                    if (nested->rta_type == IFLA_INFO_KIND)
                                      link.kind = attrString(nested);
                                  });
                      break;
                    default:
                      break;
                    }
                  });
      return link;
    }
  }
}

// Moves the calling thread into another network namespace and back.
class NetnsSwitch {
public:
  static Result<NetnsSwitch> enter(const std::string& path) {
    FD self(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!self)
      return systemError(errno, "open /proc/thread-self/ns/net");
    FD target(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!target)
      return systemError(errno, "open netns " + path);
    if (::setns(target.get(), CLONE_NEWNET) != 0)
      return systemError(errno, "enter netns " + path);
    return NetnsSwitch(std::move(self));
  }
  NetnsSwitch(NetnsSwitch&&) = default;
  NetnsSwitch& operator=(NetnsSwitch&&) = delete;
  ~NetnsSwitch() {
    // Staying in the pod's namespace would make every later lookup wrong: a bug, not an error.
    if (previous_ && ::setns(previous_.get(), CLONE_NEWNET) != 0)
      std::abort();
  }

private:
  explicit NetnsSwitch(FD previous) : previous_(std::move(previous)) {}
  FD previous_;
};

Result<FD> openRouteSocket() {
  FD fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd)
    return systemError(errno, "netlink socket");
  timeval tv{1, 0}; // the kernel answers at once; never hang a pod ADD on it
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0)
    return systemError(errno, "setsockopt SO_RCVTIMEO");
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return systemError(errno, "bind netlink socket");
  return fd;
}

} // namespace

Result<FD> routeSocket(const std::string& netnsPath) {
  if (netnsPath.empty())
    return openRouteSocket();
  auto inside = NetnsSwitch::enter(netnsPath);
  if (!inside)
    return std::move(inside).error();
  return openRouteSocket();
}

Result<Link> linkByName(int routeSocket, const std::string& name) {
  return getLink(routeSocket, 0, name);
}

Result<Link> linkByIndex(int routeSocket, int index) {
  if (index <= 0)
    return Error(EINVAL, "invalid interface index " + std::to_string(index));
  return getLink(routeSocket, index, "");
}

bool isPairDevice(const Link& link) {
  return link.kind == "veth" || link.kind == "netkit";
}

} // namespace bpfchain::cni
