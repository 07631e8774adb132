// Throwaway network namespaces for kernel and e2e tests: each simulated host or pod gets one.
// A TestNetns is deleted (with every interface in it) when it goes out of scope; one left by a
// killed test is removed by bpfchain-test-sweep.
#pragma once

#include <string>
#include <vector>

#include "system/fd.h"
#include "system/result.h"

namespace bpfchain::testing {

// Moves the calling thread into a network namespace until it goes out of scope. Sockets
// created meanwhile stay in that namespace; interface indexes and BPF attachments resolve there.
class NetnsGuard {
public:
  static Result<NetnsGuard> enter(const std::string& nsPath);
  ~NetnsGuard();
  NetnsGuard(NetnsGuard&&) = default;
  NetnsGuard& operator=(NetnsGuard&&) = delete;

private:
  explicit NetnsGuard(FD previous) : previous_(std::move(previous)) {}
  FD previous_;
};

class TestNetns {
public:
  // A new namespace with loopback up and IPv6 disabled, so that the kernel sends no packet
  // (router solicitations, MLD, DAD) that a test did not send itself.
  static Result<TestNetns> create();
  ~TestNetns();
  TestNetns(TestNetns&& other) noexcept : name_(std::move(other.name_)) { other.name_.clear(); }
  TestNetns& operator=(TestNetns&&) = delete;
  TestNetns(const TestNetns&) = delete;

  const std::string& name() const { return name_; }
  std::string path() const { return "/run/netns/" + name_; }

  // Runs `ip -n <name> args...`.
  Result<void> ip(const std::vector<std::string>& args) const;
  Result<NetnsGuard> enter() const { return NetnsGuard::enter(path()); }
  // Writes /proc/sys/<key> (key with slashes, e.g. "net/ipv4/ip_forward") in this namespace.
  Result<void> writeSysctl(const std::string& key, const std::string& value) const;
  // The interface's index in this namespace.
  Result<int> ifindex(const std::string& ifname) const;

private:
  explicit TestNetns(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

struct VethEnd {
  std::string ifname;
  std::string mac;  // e.g. "02:00:00:00:00:01"
  std::string cidr; // e.g. "10.77.0.1/24"
};

// Connects two namespaces with a veth pair: addresses both ends, sets them up, and adds
// permanent neighbour entries both ways, so that no ARP packet is ever sent on the link.
Result<void> connectVeth(const TestNetns& a, const VethEnd& endA, const TestNetns& b,
                         const VethEnd& endB);

// Two hosts on one link, the shape most kernel tests need: `sender` has veth-a (10.77.0.1,
// 02:00:00:00:00:0a) and `receiver` veth-b (10.77.0.2, 02:00:00:00:00:0b).
struct TwoHosts {
  TestNetns sender;
  TestNetns receiver;
};
Result<TwoHosts> twoHostsOnVeth();

} // namespace bpfchain::testing
