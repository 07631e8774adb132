// Simulated nodes for e2e tests and the demo: each node is a network namespace whose eth0
// (10.88.<i>.2/24) is wired by a veth to a router namespace (10.88.<i>.1 on its side, IP
// forwarding on, each node's default route), so the router reaches every node and the nodes
// reach each other. Neighbours are static: no ARP, and IPv6 is off, so every packet on a node's
// eth0 is one a test sent.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "harness/netns.h"

namespace bpfchain::testing {

struct SimulatedNode {
  std::unique_ptr<TestNetns> netns;
  std::string address; // of eth0
};

class SimulatedNodes {
public:
  static Result<std::unique_ptr<SimulatedNodes>> create(size_t count);
  TestNetns& router() { return *router_; }
  SimulatedNode& node(size_t i) { return nodes_.at(i); }
  size_t size() const { return nodes_.size(); }

private:
  SimulatedNodes() = default;
  std::unique_ptr<TestNetns> router_;
  std::vector<SimulatedNode> nodes_;
};

} // namespace bpfchain::testing
