// `bpfchain-agent status` rendering (node-agent/status_view.h): pure functions of a
// StatusResponse.
#include <gtest/gtest.h>

#include "cni/json.h"
#include "node-agent/status_view.h"

using namespace bpfchain;
using namespace bpfchain::agent;

namespace {

v1::StatusResponse sample() {
  v1::StatusResponse s;
  s.set_ready(true);
  s.set_agent_version("0.4.0");
  s.set_node_name("node-7");
  auto* eth = s.add_hooks();
  eth->set_interface("eth0");
  eth->set_hook("xdp");
  eth->set_attach_mode("xdp link");
  eth->set_root_program_id(40);
  auto* first = eth->add_programs();
  first->set_chain("edge");
  first->set_program("blocklist");
  first->set_program_id(41);
  first->set_generation(3);
  first->set_has_stats(true);
  auto* seen = first->add_verdicts();
  seen->set_verdict("seen");
  seen->set_packets(120);
  auto* drop = first->add_verdicts();
  drop->set_verdict("drop");
  drop->set_packets(20);
  auto* second = eth->add_programs();
  second->set_chain("audit");
  second->set_program("count");
  second->set_program_id(44);
  second->set_generation(1);
  auto* pod = s.add_hooks();
  pod->set_interface("veth12");
  pod->set_hook("tc-ingress");
  pod->set_pod("shop/web-0");
  pod->set_attach_mode("tcx");
  pod->set_root_program_id(50);
  auto* edge = s.add_chains();
  edge->set_chain("edge");
  edge->set_generation(4);
  edge->set_running_generation(3);
  edge->set_phase("Failed");
  edge->set_reason("VerifierRejected");
  edge->set_message("program blocklist: invalid mem access");
  return s;
}

} // namespace

TEST(AgentStatusView, TextListsEachHookWithItsProgramsInOrderAndTheChainsPhases) {
  EXPECT_EQ(renderStatusText(sample()),
            "node node-7  agent 0.4.0  ready\n"
            "\n"
            "eth0 xdp: xdp link, root id 40\n"
            "  #  CHAIN  PROGRAM    ID  GENERATION  VERDICTS\n"
            "  1  edge   blocklist  41  3           seen=120 drop=20\n"
            "  2  audit  count      44  1           -\n"
            "veth12 tc-ingress (pod shop/web-0): tcx, root id 50\n"
            "  no programs (the root passes every packet on)\n"
            "\n"
            "CHAIN  GENERATION  RUNNING  PHASE   REASON            MESSAGE\n"
            "edge   4           3        Failed  VerifierRejected  program blocklist: invalid mem "
            "access\n");
}

TEST(AgentStatusView, TextSaysWhenNothingIsAttachedAndTheAgentIsNotReady) {
  v1::StatusResponse s;
  s.set_agent_version("0.4.0");
  s.set_node_name("node-7");
  EXPECT_EQ(renderStatusText(s), "node node-7  agent 0.4.0  not ready (no node config applied "
                                 "yet)\n\nnothing attached\n");
}

TEST(AgentStatusView, JsonCarriesEveryFieldByItsProto3JsonName) {
  auto parsed = cni::json::parse(renderStatusJson(sample()));
  ASSERT_TRUE(parsed) << parsed.error().message();
  const auto& root = *parsed;
  EXPECT_EQ(root.find("nodeName")->text(), "node-7");
  EXPECT_EQ(root.find("agentVersion")->text(), "0.4.0");
  EXPECT_TRUE(root.find("ready")->asBool());
  const auto& hooks = root.find("hooks")->items();
  ASSERT_EQ(hooks.size(), 2U);
  EXPECT_EQ(hooks[0].find("interface")->text(), "eth0");
  EXPECT_EQ(hooks[0].find("attachMode")->text(), "xdp link");
  EXPECT_EQ(hooks[0].find("rootProgramId")->text(), "40");
  const auto& programs = hooks[0].find("programs")->items();
  ASSERT_EQ(programs.size(), 2U);
  EXPECT_EQ(programs[0].find("program")->text(), "blocklist");
  EXPECT_EQ(programs[0].find("programId")->text(), "41");
  EXPECT_EQ(programs[0].find("generation")->text(), "3");
  EXPECT_TRUE(programs[0].find("hasStats")->asBool());
  const auto& verdicts = programs[0].find("verdicts")->items();
  ASSERT_EQ(verdicts.size(), 2U);
  EXPECT_EQ(verdicts[1].find("verdict")->text(), "drop");
  EXPECT_EQ(verdicts[1].find("packets")->text(), "20");
  EXPECT_FALSE(programs[1].find("hasStats")->asBool());
  EXPECT_TRUE(programs[1].find("verdicts")->items().empty());
  EXPECT_EQ(hooks[1].find("pod")->text(), "shop/web-0");
  const auto& chains = root.find("chains")->items();
  ASSERT_EQ(chains.size(), 1U);
  EXPECT_EQ(chains[0].find("runningGeneration")->text(), "3");
  EXPECT_EQ(chains[0].find("reason")->text(), "VerifierRejected");
}
