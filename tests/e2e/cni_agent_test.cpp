// The CNI plugin with the real agent: cnitool (libcni) runs Debian's bridge and host-local and
// then bpfchain-cni, which asks a standalone bpfchain-agent managing the "node" namespace to
// attach the pods chains to the pod's host-side veth before ADD returns.
#include <bpf/bpf.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <net/if.h>
#include <sstream>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include "harness/agent_process.h"
#include "harness/bpffs.h"
#include "harness/http.h"
#include "harness/netns.h"
#include "harness/resources.h"
#include "harness/test_bed_tools.h"
#include "harness/traffic.h"

namespace bpfchain::testing {
namespace {

namespace fs = std::filesystem;

class CniWithAgent : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_FALSE(testBedToolsDir().empty()) << "tools/envtest/build.sh failed: no cnitool";
    auto node = TestNetns::create();
    ASSERT_TRUE(node.ok()) << node.error().message();
    node_ = std::make_unique<TestNetns>(std::move(*node));
    auto bpffs = TestBpffs::mount();
    ASSERT_TRUE(bpffs.ok()) << bpffs.error().message();
    bpffs_ = std::make_unique<TestBpffs>(std::move(*bpffs));
    auto dir = TempDir::create("cnie2e");
    ASSERT_TRUE(dir.ok());
    dir_ = std::make_unique<TempDir>(std::move(*dir));
    net_ = uniqueResourceName("net");
    fs::create_directories(dir_->path() + "/net.d");
    fs::create_directories(dir_->path() + "/packages");
    auto filter = buildPackage(dir_->path() + "/packages", "portfilter", "portfilter",
                               "portfilter_xdp", "xdp", "portfilter_xdp_next");
    ASSERT_TRUE(filter.ok()) << filter.error().message();
    auto counter = buildPackage(dir_->path() + "/packages", "counter", "counter", "counter_xdp",
                                "xdp", "counter_xdp_next");
    ASSERT_TRUE(counter.ok()) << counter.error().message();
    writeNetwork("10-pods.conflist", net_, "cnibr0", "10.99.0.0/24",
                 R"(, "routes": [{"dst": "0.0.0.0/0"}])");
    // Every pod gets: a port filter (9999 dropped) and a counter, on its veth's XDP hook
    // (packets the pod sends).
    std::ofstream(dir_->path() + "/node.yaml")
        << "chains:\n- name: pod-guard\n  hook: xdp\n  pods: {}\n  programs:\n"
        << "  - name: filter\n    package: {url: \"" << filter->url << "\", sha256: \""
        << filter->sha256 << "\"}\n"
        << "    mapArgs: [{map: portfilter_ports, entries: [{key: \"9999\", value: \"1\"}]}]\n"
        << "  - name: count\n    package: {url: \"" << counter->url << "\", sha256: \""
        << counter->sha256 << "\"}\n";
    startAgent();
  }

  void startAgent() {
    AgentOptions o = AgentOptions::standalone(dir_->path() + "/node.yaml", node_->path(),
                                              bpffs_->path(), dir_->path());
    // A log per agent: the harness finds the metrics port in it.
    auto agent = AgentProcess::start(o, dir_->path() + "/agent-" +
                                            std::to_string(++agentsStarted_) + ".log");
    ASSERT_TRUE(agent.ok()) << agent.error().message();
    agent_ = std::move(*agent);
    ASSERT_TRUE(eventually([&] { return agent_->get("/readyz").ok(); })) << agent_->log();
  }

  void TearDown() override {
    if (agent_)
      agent_->process().stop();
    agent_.reset();
    // libcni's result cache for this network (cnitool uses the default /var/lib/cni).
    std::error_code ec;
    for (const auto* sub : {"/var/lib/cni/results", "/var/lib/cni/gc"})
      for (const auto& entry : fs::directory_iterator(sub, ec))
        if (entry.path().filename().string().starts_with(net_))
          fs::remove_all(entry.path(), ec);
  }

  std::string socket() const { return dir_->path() + "/agent.sock"; } // as standalone() puts it

  // A network of bridge + host-local + bpfchain-cni (failurePolicy fail) in net.d.
  void writeNetwork(const std::string& file, const std::string& name, const std::string& bridge,
                    const std::string& subnet, const std::string& ipamExtra = "") {
    std::ofstream(dir_->path() + "/net.d/" + file) << R"({
  "cniVersion": "1.0.0",
  "name": ")" + name + R"(",
  "plugins": [
    {"type": "bridge", "bridge": ")" + bridge + R"(", "isGateway": true,
     "ipam": {"type": "host-local", "dataDir": ")" + dir_->path() +
                                                          "/ipam-" + name + R"(",
              "ranges": [[{"subnet": ")" + subnet + R"("}]])" +
                                                          ipamExtra + R"(}},
    {"type": "bpfchain-cni", "socketPath": ")" + socket() +
                                                          R"(", "failurePolicy": "fail",
     "logFile": ")" + dir_->path() + R"(/cni.log"}
  ]
})";
  }

  // The runtime's GC of one network (CNI 1.1.0) with its still valid attachments (JSON).
  CommandOutput gc(const std::string& network, const std::string& validAttachments) {
    std::ofstream(dir_->path() + "/gc.json")
        << R"({"cniVersion": "1.1.0", "name": ")" + network +
               R"(", "type": "bpfchain-cni", "socketPath": ")" + socket() +
               R"(", "cni.dev/valid-attachments": )" + validAttachments + "}";
    auto out = runCommand({"sh", "-c", "exec \"$@\" < \"$0\"", dir_->path() + "/gc.json", "env",
                           "CNI_COMMAND=GC", "CNI_PATH=/usr/lib/cni",
                           std::string(BPFCHAIN_BIN_DIR) + "/bpfchain-cni"});
    EXPECT_TRUE(out.ok()) << out.error().message();
    return out.ok() ? *out : CommandOutput{-1, "", ""};
  }

  // `network` "" is the test's default network.
  CommandOutput cnitool(const std::string& command, const TestNetns& pod,
                        const std::string& podName = "web-0", const std::string& ifname = "eth0",
                        const std::string& network = "") {
    auto out = runCommand(
        {"ip", "netns", "exec", node_->name(), "env", "NETCONFPATH=" + dir_->path() + "/net.d",
         "CNI_PATH=" + std::string(BPFCHAIN_BIN_DIR) + ":/usr/lib/cni",
         "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=" + podName,
         "CNI_IFNAME=" + ifname, testBedToolsDir() + "/cnitool", command,
         network.empty() ? net_ : network, pod.path()});
    EXPECT_TRUE(out.ok()) << out.error().message();
    return out.ok() ? *out : CommandOutput{-1, "", ""};
  }

  // A pod namespace per name, each added with cnitool (empty when one could not be).
  std::vector<TestNetns> addPods(const std::vector<std::string>& names) {
    std::vector<TestNetns> pods;
    for (const auto& name : names) {
      auto pod = TestNetns::create();
      EXPECT_TRUE(pod.ok()) << pod.error().message();
      CommandOutput added = pod ? cnitool("add", *pod, name) : CommandOutput{-1, "", ""};
      EXPECT_EQ(added.exitCode, 0) << name << ": " << added.out << added.err;
      if (!pod || added.exitCode != 0)
        return {};
      pods.push_back(std::move(*pod));
    }
    return pods;
  }

  // Host-side veths in the node namespace with an XDP program attached.
  std::vector<std::string> vethsWithXdp() {
    auto out = checkCommand({"ip", "-n", node_->name(), "-o", "link", "show", "type", "veth"});
    std::vector<std::string> result;
    if (!out)
      return result;
    std::istringstream lines(out->out);
    std::string line;
    while (std::getline(lines, line))
      if (line.find("xdp") != std::string::npos) {
        std::string name = line.substr(line.find(": ") + 2);
        result.push_back(name.substr(0, name.find_first_of("@:")));
      }
    return result;
  }

  size_t pins() {
    size_t n = 0;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(bpffs_->path() + "/bpfchain", ec);
         it != fs::end(it); ++it)
      n += !it->is_directory();
    return n;
  }

  // The agent's pod records: one file per container under <state-dir>/pods/.
  std::vector<std::string> podRecords() {
    std::vector<std::string> records;
    std::error_code ec;
    for (const auto& f : fs::directory_iterator(dir_->path() + "/state/pods", ec))
      records.push_back(f.path().filename().string());
    return records;
  }
  size_t recordedPods() { return podRecords().size(); }

  std::unique_ptr<TestNetns> node_;
  std::unique_ptr<TestBpffs> bpffs_;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<AgentProcess> agent_;
  int agentsStarted_ = 0;
  std::string net_;
};

TEST_F(CniWithAgent, AddAttachesThePodsChainBeforeItReturnsAndDelRemovesIt) {
  auto pod = TestNetns::create();
  ASSERT_TRUE(pod.ok());
  size_t pinsBefore = pins();
  CommandOutput added = cnitool("add", *pod);
  ASSERT_EQ(added.exitCode, 0) << added.out << added.err << readFile(dir_->path() + "/cni.log");
  // No waiting: the chain is on the veth when ADD returns.
  auto veths = vethsWithXdp();
  ASSERT_EQ(veths.size(), 1u) << agent_->log();
  EXPECT_EQ(pins(), pinsBefore + 1) << "an ADD should only add the link pin (chain preloaded)";

  auto blocked = UdpTraffic::create(*pod, *node_, "10.99.0.1", 9999);
  ASSERT_TRUE(blocked.ok()) << blocked.error().message();
  (*blocked)->sendAndWait(20, 1000);
  EXPECT_EQ((*blocked)->received(), 0u) << "the pod's chain does not drop port 9999";
  blocked->reset();
  auto allowed = UdpTraffic::create(*pod, *node_, "10.99.0.1", 7000);
  ASSERT_TRUE(allowed.ok());
  (*allowed)->sendAndWait(200);
  EXPECT_EQ((*allowed)->received(), 200u);
  EXPECT_TRUE(eventually([&] {
    return readFile(dir_->path() + "/state/status.yaml").find("pod: shop/web-0") !=
           std::string::npos;
  })) << readFile(dir_->path() + "/state/status.yaml");

  CommandOutput checked = cnitool("check", *pod);
  EXPECT_EQ(checked.exitCode, 0) << checked.out << checked.err;

  // Someone removes the attachment behind the agent's back: CHECK says so. The link to detach
  // is the one running the pods chain's root (ifindexes alone are per namespace).
  YAML::Node status = YAML::LoadFile(dir_->path() + "/state/status.yaml");
  __u32 root = status["chains"][0]["attachments"][0]["programIDs"][0].as<__u32>();
  __u32 id = 0;
  int detached = 0;
  while (bpf_link_get_next_id(id, &id) == 0) {
    int fd = bpf_link_get_fd_by_id(id);
    bpf_link_info info{};
    __u32 len = sizeof(info);
    if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.type == BPF_LINK_TYPE_XDP &&
        info.prog_id == root && info.xdp.ifindex != 0 && bpf_link_detach(fd) == 0)
      ++detached;
    if (fd >= 0)
      close(fd);
  }
  ASSERT_EQ(detached, 1);
  checked = cnitool("check", *pod);
  EXPECT_NE(checked.exitCode, 0) << "CHECK passed without the attachment";
  EXPECT_NE((checked.out + checked.err).find("no longer attached"), std::string::npos)
      << checked.out << checked.err;

  for (int i = 0; i < 2; ++i) {
    CommandOutput deleted = cnitool("del", *pod);
    EXPECT_EQ(deleted.exitCode, 0) << deleted.out << deleted.err;
  }
  EXPECT_EQ(recordedPods(), 0u);
  EXPECT_EQ(pins(), pinsBefore);

  // Every request the plugin sent was counted by command and result, and timed.
  auto metrics = agent_->get("/metrics");
  ASSERT_TRUE(metrics.ok());
  auto served = [&](const std::string& command, const std::string& result) {
    return metricValue(*metrics, "bpfchain_cni_requests_total",
                       {"command=\"" + command + "\"", "result=\"" + result + "\""})
        .value_or(-1);
  };
  EXPECT_EQ(served("ADD", "success"), 1) << *metrics;
  EXPECT_EQ(served("DEL", "success"), 2) << *metrics;
  EXPECT_GE(served("CHECK", "success"), 1) << *metrics;
  EXPECT_EQ(served("CHECK", "error"), 1) << *metrics;
  EXPECT_EQ(
      metricValue(*metrics, "bpfchain_cni_request_duration_seconds_count", {"command=\"DEL\""})
          .value_or(-1),
      2);
}

TEST_F(CniWithAgent, TwoHundredPodsAddedAndDeletedLeaveNothingBehind) {
  size_t pinsBefore = pins();
  ASSERT_GT(pinsBefore, 0u) << "the pods chain should be loaded before any pod";
  for (int i = 0; i < 200; ++i) {
    auto pod = TestNetns::create();
    ASSERT_TRUE(pod.ok());
    std::string name = "web-" + std::to_string(i);
    CommandOutput added = cnitool("add", *pod, name);
    ASSERT_EQ(added.exitCode, 0) << added.out << added.err;
    ASSERT_EQ(vethsWithXdp().size(), 1u) << "pod " << i;
    CommandOutput deleted = cnitool("del", *pod, name);
    ASSERT_EQ(deleted.exitCode, 0) << deleted.out << deleted.err;
  }
  EXPECT_TRUE(vethsWithXdp().empty());
  EXPECT_EQ(pins(), pinsBefore) << "pins left behind";
  EXPECT_EQ(recordedPods(), 0u) << podRecords().front();
  EXPECT_TRUE(eventually([&] {
    return readFile(dir_->path() + "/state/status.yaml").find("pod:") == std::string::npos;
  }));
  // The agent's metrics show one pods instance, not one per pod.
  auto metrics = agent_->get("/metrics");
  ASSERT_TRUE(metrics.ok());
  size_t roots = 0;
  for (size_t at = 0; (at = metrics->find("bpfchain_root_runs_total{", at)) != std::string::npos;
       ++at)
    ++roots;
  EXPECT_EQ(roots, 1u) << *metrics;
}

// The pod records (one file per container) and pinned links carry the pods across an agent
// killed with SIGKILL: the new agent answers CHECK and DEL for pods added before it started.
TEST_F(CniWithAgent, PodsAddedBeforeAnAgentIsKilledAreKnownToTheNextOne) {
  auto pods = addPods({"web", "db"});
  ASSERT_EQ(pods.size(), 2u);
  const TestNetns* web = &pods[0];
  const TestNetns* db = &pods[1];
  ASSERT_EQ(recordedPods(), 2u);
  size_t pinsWithPods = pins();

  agent_->process().kill(SIGKILL);
  (void)agent_->process().stop();
  startAgent();
  EXPECT_EQ(pins(), pinsWithPods) << "the new agent replaced pins instead of adopting them";
  EXPECT_EQ(vethsWithXdp().size(), 2u);
  CommandOutput checked = cnitool("check", *web, "web");
  EXPECT_EQ(checked.exitCode, 0) << checked.out << checked.err << agent_->log();
  EXPECT_TRUE(eventually([&] {
    std::string status = readFile(dir_->path() + "/state/status.yaml");
    return status.find("pod: shop/web") != std::string::npos &&
           status.find("pod: shop/db") != std::string::npos;
  })) << readFile(dir_->path() + "/state/status.yaml");

  auto blocked = UdpTraffic::create(*web, *node_, "10.99.0.1", 9999);
  ASSERT_TRUE(blocked.ok()) << blocked.error().message();
  (*blocked)->sendAndWait(20, 1000);
  EXPECT_EQ((*blocked)->received(), 0u) << "web's chain stopped dropping port 9999";
  blocked->reset();

  ASSERT_EQ(cnitool("del", *web, "web").exitCode, 0);
  EXPECT_EQ(recordedPods(), 1u);
  EXPECT_EQ(vethsWithXdp().size(), 1u);
  ASSERT_EQ(cnitool("del", *db, "db").exitCode, 0);
  EXPECT_EQ(recordedPods(), 0u);
  EXPECT_TRUE(vethsWithXdp().empty());
}

TEST_F(CniWithAgent, GcDetachesContainersTheRuntimeNoLongerHas) {
  auto pods = addPods({"kept", "gone"});
  ASSERT_EQ(pods.size(), 2u);
  const TestNetns* kept = &pods[0];
  const TestNetns* gone = &pods[1];
  ASSERT_EQ(vethsWithXdp().size(), 2u);
  ASSERT_EQ(recordedPods(), 2u);
  // The runtime's GC (CNI 1.1.0): only `kept` is still a valid attachment.
  CommandOutput collected = gc(net_, R"([{"containerID": ")" + cnitoolContainerId(kept->path()) +
                                         R"(", "ifname": "eth0"}])");
  EXPECT_EQ(collected.exitCode, 0) << collected.out << collected.err;
  EXPECT_EQ(vethsWithXdp().size(), 1u);
  EXPECT_EQ(recordedPods(), 1u);
  EXPECT_EQ(cnitool("check", *kept, "kept").exitCode, 0);
  ASSERT_EQ(cnitool("del", *kept, "kept").exitCode, 0);
  ASSERT_EQ(cnitool("del", *gone, "gone").exitCode, 0);
  EXPECT_EQ(recordedPods(), 0u);
}

// A pod in two networks that both chain bpfchain-cni (multus-style): each attachment is its own
// (network, container, ifname); one network's GC and DEL leave the other's chain in place.
TEST_F(CniWithAgent, APodInTwoNetworksHasTwoAttachmentsThatEachNetworkManages) {
  std::string second = net_ + "-b";
  writeNetwork("20-second.conflist", second, "cnibr1", "10.98.0.0/24");
  auto pod = TestNetns::create();
  ASSERT_TRUE(pod.ok());
  ASSERT_EQ(cnitool("add", *pod, "multi", "eth0").exitCode, 0);
  CommandOutput added = cnitool("add", *pod, "multi", "net1", second);
  ASSERT_EQ(added.exitCode, 0) << added.out << added.err;
  EXPECT_EQ(vethsWithXdp().size(), 2u) << "the second ADD took the first one's chain away";
  EXPECT_EQ(recordedPods(), 2u);
  EXPECT_EQ(cnitool("check", *pod, "multi", "eth0").exitCode, 0);
  EXPECT_EQ(cnitool("check", *pod, "multi", "net1", second).exitCode, 0);

  // The second network's GC lists nothing: only its own attachment is stale.
  CommandOutput collected = gc(second, "[]");
  EXPECT_EQ(collected.exitCode, 0) << collected.out << collected.err;
  EXPECT_EQ(vethsWithXdp().size(), 1u);
  EXPECT_EQ(recordedPods(), 1u);
  CommandOutput checked = cnitool("check", *pod, "multi", "eth0");
  EXPECT_EQ(checked.exitCode, 0) << checked.out << checked.err;
  EXPECT_NE(cnitool("check", *pod, "multi", "net1", second).exitCode, 0);

  ASSERT_EQ(cnitool("del", *pod, "multi", "net1", second).exitCode, 0);
  EXPECT_EQ(vethsWithXdp().size(), 1u) << "the second network's DEL detached the first one's";
  ASSERT_EQ(cnitool("del", *pod, "multi", "eth0").exitCode, 0);
  EXPECT_TRUE(vethsWithXdp().empty());
  EXPECT_EQ(recordedPods(), 0u);
}

} // namespace
} // namespace bpfchain::testing
