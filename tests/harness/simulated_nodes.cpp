#include "harness/simulated_nodes.h"

#include <cstdio>

namespace bpfchain::testing {

Result<std::unique_ptr<SimulatedNodes>> SimulatedNodes::create(size_t count) {
  if (count > 250)
    return invalidError("at most 250 simulated nodes");
  std::unique_ptr<SimulatedNodes> s(new SimulatedNodes());
  auto router = TestNetns::create();
  if (!router)
    return std::move(router).error();
  s->router_ = std::make_unique<TestNetns>(std::move(*router));
  if (auto r = s->router_->writeSysctl("net/ipv4/ip_forward", "1"); !r)
    return std::move(r).error();
  for (size_t i = 0; i < count; ++i) {
    auto ns = TestNetns::create();
    if (!ns)
      return std::move(ns).error();
    std::string subnet = "10.88." + std::to_string(i + 1) + ".";
    char routerMac[18], nodeMac[18];
    std::snprintf(routerMac, sizeof routerMac, "02:88:00:00:%02zx:01", i + 1);
    std::snprintf(nodeMac, sizeof nodeMac, "02:88:00:00:%02zx:02", i + 1);
    SimulatedNode node{std::make_unique<TestNetns>(std::move(*ns)), subnet + "2"};
    if (auto r =
            connectVeth(*s->router_, {"node" + std::to_string(i + 1), routerMac, subnet + "1/24"},
                        *node.netns, {"eth0", nodeMac, subnet + "2/24"});
        !r)
      return std::move(r).error();
    if (auto r = node.netns->ip({"route", "add", "default", "via", subnet + "1"}); !r)
      return std::move(r).error();
    s->nodes_.push_back(std::move(node));
  }
  return s;
}

} // namespace bpfchain::testing
