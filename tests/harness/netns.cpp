#include "harness/netns.h"

#include <cstdio>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include "harness/process.h"
#include "harness/resources.h"

namespace bpfchain::testing {
namespace {

std::string addressOf(const std::string& cidr) {
  return cidr.substr(0, cidr.find('/'));
}

Result<void> writeFile(const std::string& path, const std::string& value) {
  FD fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd)
    return systemError(errno, "open " + path);
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size()))
    return systemError(errno, "write " + path);
  return {};
}

} // namespace

Result<NetnsGuard> NetnsGuard::enter(const std::string& nsPath) {
  FD previous(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!previous)
    return systemError(errno, "open /proc/thread-self/ns/net");
  FD target(::open(nsPath.c_str(), O_RDONLY | O_CLOEXEC));
  if (!target)
    return systemError(errno, "open " + nsPath);
  if (::setns(target.get(), CLONE_NEWNET) != 0)
    return systemError(errno, "setns " + nsPath);
  return NetnsGuard(std::move(previous));
}

NetnsGuard::~NetnsGuard() {
  // Failing to return would run the rest of the test in the wrong namespace: that is a bug.
  if (previous_ && ::setns(previous_.get(), CLONE_NEWNET) != 0)
    std::abort();
}

Result<TestNetns> TestNetns::create() {
  TestNetns ns(uniqueResourceName("ns"));
  if (auto r = checkCommand({"ip", "netns", "add", ns.name_}); !r) {
    ns.name_.clear(); // never created: nothing to delete
    return std::move(r).error();
  }
  for (const char* key : {"net/ipv6/conf/all/disable_ipv6", "net/ipv6/conf/default/disable_ipv6"}) {
    if (auto r = ns.writeSysctl(key, "1"); !r)
      return std::move(r).error();
  }
  if (auto r = ns.ip({"link", "set", "lo", "up"}); !r)
    return std::move(r).error();
  return ns;
}

TestNetns::~TestNetns() {
  if (!name_.empty())
    (void)runCommand({"ip", "netns", "delete", name_});
}

Result<void> TestNetns::ip(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{"ip", "-n", name_};
  argv.insert(argv.end(), args.begin(), args.end());
  if (auto r = checkCommand(argv); !r)
    return std::move(r).error();
  return {};
}

Result<void> TestNetns::writeSysctl(const std::string& key, const std::string& value) const {
  auto guard = enter();
  if (!guard)
    return std::move(guard).error();
  // /proc/sys/net resolves against the namespace of the thread that opens it.
  return writeFile("/proc/sys/" + key, value);
}

Result<int> TestNetns::ifindex(const std::string& ifname) const {
  auto guard = enter();
  if (!guard)
    return std::move(guard).error();
  unsigned index = ::if_nametoindex(ifname.c_str());
  if (index == 0)
    return systemError(errno, "interface " + ifname + " in netns " + name_);
  return static_cast<int>(index);
}

Result<void> connectVeth(const TestNetns& a, const VethEnd& endA, const TestNetns& b,
                         const VethEnd& endB) {
  // Created inside a and moved to b at once, so the pair never touches the host namespace.
  if (auto r = a.ip({"link", "add", endA.ifname, "address", endA.mac, "type", "veth", "peer",
                     "name", endB.ifname, "address", endB.mac, "netns", b.name()});
      !r)
    return r;
  struct Side {
    const TestNetns& ns;
    const VethEnd& self;
    const VethEnd& peer;
  };
  for (const Side& side : {Side{a, endA, endB}, Side{b, endB, endA}}) {
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"addr", "add", side.self.cidr, "dev", side.self.ifname},
             {"link", "set", side.self.ifname, "up"},
             {"neigh", "replace", addressOf(side.peer.cidr), "lladdr", side.peer.mac, "dev",
              side.self.ifname, "nud", "permanent"}}) {
      if (auto r = side.ns.ip(args); !r)
        return r;
    }
  }
  return {};
}

Result<TwoHosts> twoHostsOnVeth() {
  auto sender = TestNetns::create();
  if (!sender)
    return std::move(sender).error();
  auto receiver = TestNetns::create();
  if (!receiver)
    return std::move(receiver).error();
  TwoHosts hosts{std::move(*sender), std::move(*receiver)};
  if (auto linked = connectVeth(hosts.sender, {"veth-a", "02:00:00:00:00:0a", "10.77.0.1/24"},
                                hosts.receiver, {"veth-b", "02:00:00:00:00:0b", "10.77.0.2/24"});
      !linked)
    return std::move(linked).error();
  return hosts;
}

} // namespace bpfchain::testing
