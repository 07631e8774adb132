#include "cni/netlink.h"

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

namespace bpfchain::cni {
namespace {

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

// The kernel answers at once; never hang a pod ADD on it.
constexpr std::chrono::seconds kAnswerTimeout{1};

} // namespace

Result<FD> routeSocket(const std::string& netnsPath) {
  if (netnsPath.empty())
    return netlink::openRouteSocket(kAnswerTimeout);
  auto inside = NetnsSwitch::enter(netnsPath);
  if (!inside)
    return std::move(inside).error();
  return netlink::openRouteSocket(kAnswerTimeout);
}

Result<Link> linkByName(int routeSocket, const std::string& name) {
  return netlink::getLink(routeSocket, 0, name);
}

Result<Link> linkByIndex(int routeSocket, int index) {
  if (index <= 0)
    return Error(EINVAL, "invalid interface index " + std::to_string(index));
  return netlink::getLink(routeSocket, index);
}

bool isPairDevice(const Link& link) {
  return link.kind == "veth" || link.kind == "netkit";
}

} // namespace bpfchain::cni
