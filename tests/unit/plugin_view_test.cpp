// What `kubectl bpfchain status` and `nodes` print, from objects built here.
#include <gtest/gtest.h>

#include "kubectl-plugin/status_view.h"

namespace bpfchain::plugin {
namespace {

std::vector<NodeView> hundredNodes() {
  std::vector<NodeView> nodes;
  for (int i = 1; i <= 100; ++i) {
    char name[8];
    std::snprintf(name, sizeof name, "n%03d", i);
    NodeView n{name, "0.1.0", {}};
    if (i == 7)
      n.chains.push_back({"edge", 4, "Failed", "VerifierRejected"});
    else if (i <= 10)
      n.chains.push_back({"edge", 3, "Ready", ""});
    if (i <= 2)
      n.chains.push_back({"pods", 1, "Ready", ""});
    nodes.push_back(n);
  }
  return nodes;
}

TEST(PluginStatus, GroupsNodesByGenerationPhaseAndReasonFailuresFirst) {
  std::vector<ChainView> chains{{"edge", "xdp", 4, 4, "9/10", "Halted", false},
                                {"pods", "tc-ingress", 1, 1, "2/2", "RolloutComplete", true},
                                {"new", "xdp", 1, 0, "", "", false}};
  EXPECT_EQ(renderStatus(chains, hundredNodes(), false),
            "CHAIN  HOOK  GENERATION  READY  STATUS\n"
            "edge   xdp   4           9/10   Halted\n"
            "  GENERATION  PHASE   REASON            NODES\n"
            "  4           Failed  VerifierRejected  1      n007\n"
            "  3           Ready                     9      n001, n002, n003, +6 more\n"
            "\n"
            "CHAIN  HOOK        GENERATION  READY  STATUS\n"
            "pods   tc-ingress  1           2/2    Ready\n"
            "  GENERATION  PHASE  REASON  NODES\n"
            "  1           Ready          2      n001, n002\n"
            "\n"
            "CHAIN  HOOK  GENERATION  READY  STATUS\n"
            "new    xdp   1                  Pending\n"
            "  no node runs it\n");
}

TEST(PluginStatus, WideListsEveryNode) {
  std::vector<ChainView> chains{{"edge", "xdp", 4, 4, "9/10", "Halted", false}};
  std::string out = renderStatus(chains, hundredNodes(), true);
  EXPECT_NE(out.find("n001, n002, n003, n004, n005, n006, n008, n009, n010\n"), std::string::npos)
      << out;
  EXPECT_EQ(renderStatus({}, {}, false), "No BpfChains found.\n");
}

TEST(PluginNodes, OneLinePerNodeWithCountsAndWhatIsNotReady) {
  auto nodes = hundredNodes();
  nodes.resize(8);
  nodes[3].agentVersion = "";
  nodes[3].chains.clear();
  EXPECT_EQ(renderNodes(nodes, false),
            "NODE  AGENT   CHAINS  READY  FAILED  RUNNING\n"
            "n001  0.1.0   2       2      0       edge@3, pods@1\n"
            "n002  0.1.0   2       2      0       edge@3, pods@1\n"
            "n003  0.1.0   1       1      0       edge@3\n"
            "n004  <none>  0       0      0\n"
            "n005  0.1.0   1       1      0       edge@3\n"
            "n006  0.1.0   1       1      0       edge@3\n"
            "n007  0.1.0   1       0      1       edge@4 Failed(VerifierRejected)\n"
            "n008  0.1.0   1       1      0       edge@3\n");
  EXPECT_EQ(renderNodes({}, false), "No BpfNodeConfigs found.\n");
}

} // namespace
} // namespace bpfchain::plugin
