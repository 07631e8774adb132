// The agent's records (node-agent/state_store.h) without a kernel: what a restarted agent
// reads back is what was written, typed map arguments included, and a record it cannot trust
// is dropped rather than half-used.
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

#include "btf/arg_value.h"
#include "harness/resources.h"
#include "node-agent/state_store.h"

using namespace bpfchain;
using namespace bpfchain::agent;

namespace {

AppliedChain sampleChain() {
  dataplane::ProgramSpec p{.id = "web/rl",
                           .objectPath = "/cache/abc/tree/rl.bpf.o",
                           .entry = "xdp_rl",
                           .nextMap = "rl_next",
                           .globalData = {{"burst", "10"}},
                           .freshMaps = {"windows"}};
  p.mapArgs.push_back({.map = "config",
                       .mode = btf::MapArgMode::Merge,
                       .entries = {{btf::ArgValue::text("0"),
                                    *btf::parseArgValue("{rate: 100, ports: [80, 443]}", "v")},
                                   {btf::ArgValue::text("1"), btf::ArgValue{}}}});
  dataplane::ProgramSpec off{.id = "web/off", .objectPath = "/o", .entry = "e", .enabled = false};
  return AppliedChain{7, "web-7", {p, off}, {{{"drops", "0", Aggregator::MaxRate}}, {}}};
}

TEST(StateStore, AnInstanceRecordReadsBackAsWritten) {
  auto dir = bpfchain::testing::TempDir::create("state");
  ASSERT_TRUE(dir);
  StateStore store(dir->path(), 4026531840);
  ASSERT_TRUE(store.prepare());
  AppliedChain web = sampleChain();
  ASSERT_TRUE(store.saveInstance("3/xdp", {3, "eth0", dataplane::Hook::Xdp, {{"web", web}}}));
  EXPECT_EQ(store.instanceFile("3/xdp"), dir->path() + "/instances/4026531840-3-xdp.yaml");
  AppliedChains back = store.loadInstance("3/xdp", {"web/rl"});
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back.at("web"), web); // the disabled program need not run
  ASSERT_EQ(back.at("web").monitors[0].size(), 1u);
  EXPECT_EQ(back.at("web").monitors[0][0].aggregator, Aggregator::MaxRate);
}

TEST(StateStore, AChainWhoseProgramNoLongerRunsIsNotAdopted) {
  auto dir = bpfchain::testing::TempDir::create("state");
  ASSERT_TRUE(dir);
  StateStore store(dir->path(), 1);
  ASSERT_TRUE(store.prepare());
  ASSERT_TRUE(store.saveInstance(
      "3/xdp",
      {3, "eth0", dataplane::Hook::Xdp, {{"web", sampleChain()}, {"b", {1, "", {}, {}}}}}));
  AppliedChains back = store.loadInstance("3/xdp", {"other/x"});
  EXPECT_FALSE(back.contains("web")); // web/rl does not run: re-resolved from the spec
  EXPECT_TRUE(back.contains("b"));
  store.removeInstance("3/xdp");
  EXPECT_TRUE(store.loadInstance("3/xdp", {"web/rl"}).empty());
  // A record that does not parse is no record at all.
  std::ofstream(store.instanceFile("4/xdp")) << "chains: [{name: web, generation: [}";
  EXPECT_TRUE(store.loadInstance("4/xdp", {"web/rl"}).empty());
}

TEST(StateStore, PodRecordsReadBackAndAMisnamedRecordIsIgnored) {
  auto dir = bpfchain::testing::TempDir::create("state");
  ASSERT_TRUE(dir);
  StateStore store(dir->path(), 1);
  ASSERT_TRUE(store.prepare());
  PodRef ref{"0123abcd", "ns", "web-1", "veth1", 11, "eth0", "kindnet"};
  store.savePod({ref, {{dataplane::Hook::Xdp, "pods/xdp/0123456789abcdef"}}});
  PodRef other{"ffff", "ns", "web-2", "veth2", 12, "eth0", "kindnet"};
  store.savePod({other, {}});
  // A record copied under another attachment's name is not trusted.
  std::filesystem::copy_file(dir->path() + "/pods/" + attachmentKey(other) + ".yaml",
                             dir->path() + "/pods/" + attachmentKey(ref) + "x.yaml");
  auto pods = store.loadPods();
  ASSERT_EQ(pods.size(), 2u);
  std::map<std::string, PodRecordFile> byId;
  for (auto& p : pods)
    byId[p.ref.containerId] = p;
  EXPECT_EQ(byId.at("0123abcd").ref, ref);
  EXPECT_EQ(byId.at("0123abcd").links.at(dataplane::Hook::Xdp), "pods/xdp/0123456789abcdef");
  EXPECT_TRUE(byId.at("ffff").links.empty());
  store.forgetPod(attachmentKey(ref));
  EXPECT_EQ(store.loadPods().size(), 1u);
}

} // namespace
