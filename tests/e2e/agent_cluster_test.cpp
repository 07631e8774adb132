// The whole system on simulated nodes: a real kube-apiserver, bpfchain-operator, and one
// bpfchain-agent per node (its own network namespace, wired to a router namespace that sends the
// traffic). Chains are applied with the machine's kubectl, as users do.
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <iostream>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include "api/resources.h"
#include "harness/agent_process.h"
#include "harness/bpffs.h"
#include "harness/control_plane.h"
#include "harness/dashboards.h"
#include "harness/http.h"
#include "harness/process.h"
#include "harness/resources.h"
#include "harness/simulated_nodes.h"
#include "harness/test_bed_tools.h"
#include "harness/traffic.h"
#include "k8s/client.h"
#include "k8s/config.h"

namespace bpfchain::testing {
namespace {

namespace fs = std::filesystem;
using k8s::Json;
using namespace std::chrono_literals;

[[maybe_unused]] auto* const kControlPlane =
    ::testing::AddGlobalTestEnvironment(new ControlPlaneEnvironment);

const k8s::Resource& kChains = api::kBpfChains;
const k8s::Resource& kNodeConfigs = api::kBpfNodeConfigs;

uint16_t freePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    return 0;
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

class AgentCluster : public ::testing::Test {
protected:
  static constexpr size_t kNodes = 3; // n1, n2: role=edge; n3: role=core

  static void SetUpTestSuite() {
    auto& plane = ControlPlaneEnvironment::get();
    auto installed = plane.installCrds(std::string(BPFCHAIN_SOURCE_DIR) + "/crds",
                                       {"bpfchains.bpfchain.io", "bpfnodeconfigs.bpfchain.io"});
    ASSERT_TRUE(installed.ok()) << installed.error().message();
    auto config = k8s::loadKubeconfig(plane.kubeconfig());
    ASSERT_TRUE(config.ok());
    auto client = k8s::Client::create(*config);
    ASSERT_TRUE(client.ok());
    client_ = client->release();
    // The operator keeps ControllerRevisions there (manifests/ create it in a real cluster).
    Json ns = Json::parse(R"({"apiVersion":"v1","kind":"Namespace",
                              "metadata":{"name":"bpfchain-system"}})");
    auto created = client_->create(k8s::resources::kNamespaces, ns);
    ASSERT_TRUE(created.ok() || created.error().alreadyExists()) << created.error().describe();
    auto dir = TempDir::create("e2e");
    ASSERT_TRUE(dir.ok());
    dir_ = new TempDir(std::move(*dir));
    auto bpffs = TestBpffs::mount();
    ASSERT_TRUE(bpffs.ok()) << bpffs.error().message();
    bpffs_ = new TestBpffs(std::move(*bpffs));
    auto nodes = SimulatedNodes::create(kNodes);
    ASSERT_TRUE(nodes.ok()) << nodes.error().message();
    nodes_ = nodes->release();
    fs::create_directories(dir_->path() + "/packages");
    auto counter = buildPackage(dir_->path() + "/packages", "counter", "counter", "counter_xdp",
                                "xdp", "counter_xdp_next");
    ASSERT_TRUE(counter.ok()) << counter.error().message();
    counter_ = new BuiltPackage(*counter);
    auto filter = buildPackage(dir_->path() + "/packages", "portfilter", "portfilter",
                               "portfilter_xdp", "xdp", "portfilter_xdp_next");
    ASSERT_TRUE(filter.ok()) << filter.error().message();
    portfilter_ = new BuiltPackage(*filter);

    auto op =
        ChildProcess::spawn({std::string(BPFCHAIN_BIN_DIR) + "/bpfchain-operator", "--kubeconfig",
                             plane.kubeconfig(), "--metrics-address", "127.0.0.1:0"},
                            dir_->path() + "/operator.log");
    ASSERT_TRUE(op.ok()) << op.error().message();
    operator_ = new ChildProcess(std::move(*op));
    for (size_t i = 0; i < kNodes; ++i) {
      std::string name = nodeName(i);
      Json node = Json::parse(R"({"apiVersion":"v1","kind":"Node","metadata":{"labels":{}}})");
      node["metadata"]["name"] = Json::string(name);
      node["metadata"]["labels"]["role"] = Json::string(i < 2 ? "edge" : "core");
      auto created = client_->create(k8s::resources::kNodes, node);
      ASSERT_TRUE(created.ok()) << created.error().describe();
      startAgent(i);
    }
  }

  static void TearDownTestSuite() {
    for (auto*& a : agents_) {
      if (a)
        a->process().stop();
      delete a;
      a = nullptr;
    }
    if (operator_)
      operator_->stop();
    delete operator_;
    if (client_)
      for (size_t i = 0; i < kNodes; ++i)
        (void)client_->remove(k8s::resources::kNodes, "", nodeName(i));
    delete counter_;
    delete portfilter_;
    delete nodes_;
    delete bpffs_;
    delete dir_;
    delete client_;
  }

  static std::string nodeName(size_t i) {
    return "e2e-" + std::to_string(getpid()) + "-n" + std::to_string(i + 1);
  }

  static void startAgent(size_t i) {
    AgentOptions o;
    o.nodeName = nodeName(i);
    o.kubeconfig = ControlPlaneEnvironment::get().kubeconfig();
    o.netnsPath = nodes_->node(i).netns->path();
    o.bpffs = bpffs_->path() + "/n" + std::to_string(i + 1);
    o.stateDir = dir_->path() + "/state-n" + std::to_string(i + 1);
    o.socket = dir_->path() + "/agent-n" + std::to_string(i + 1) + ".sock";
    o.extra = {"--heartbeat-seconds", "2"}; // written by the next pass (--resync-seconds 30)
    auto agent = AgentProcess::start(o, dir_->path() + "/agent-n" + std::to_string(i + 1) + "-" +
                                            std::to_string(++starts_) + ".log");
    ASSERT_TRUE(agent.ok()) << agent.error().message();
    agents_[i] = agent->release();
  }

  // kubectl apply of a BpfChain counting (and optionally port-filtering) on eth-like interfaces.
  static void applyChain(const std::string& name, const std::string& role, bool withFilter,
                         const std::string& rollout = "{maxUnavailable: 1}") {
    std::string yaml =
        "apiVersion: bpfchain.io/v1alpha1\nkind: BpfChain\nmetadata:\n  name: " + name +
        "\nspec:\n  hook: xdp\n  nodeSelector: {matchLabels: {role: " + role +
        "}}\n  interfaces: {names: [\"/^eth[0-9]+$/\"]}\n  rollout: " + rollout + "\n  programs:\n";
    if (withFilter)
      yaml += "  - name: filter\n    package: {url: \"" + portfilter_->url + "\", sha256: \"" +
              portfilter_->sha256 +
              "\"}\n    mapArgs: [{map: portfilter_ports, entries: [{key: \"9999\", value: "
              "\"1\"}]}]\n";
    yaml += "  - name: count\n    package: {url: \"" + counter_->url + "\", sha256: \"" +
            counter_->sha256 +
            "\"}\n    monitorMaps: [{map: counter_stats, key: \"0\", aggregator: sum}]\n";
    std::string path = dir_->path() + "/" + name + ".yaml";
    std::ofstream(path) << yaml;
    auto applied = ControlPlaneEnvironment::get().kubectl({"apply", "-f", path});
    ASSERT_TRUE(applied.ok()) << applied.error().message();
  }

  static void deleteChain(const std::string& name) {
    auto deleted = ControlPlaneEnvironment::get().kubectl({"delete", "bpfchains/" + name});
    ASSERT_TRUE(deleted.ok()) << deleted.error().message();
  }

  static Json chainObject(const std::string& name) {
    auto c = client_->get(kChains, "", name);
    return c.ok() ? *c : Json::null();
  }

  // Waits until the chain's status describes its current generation with every matched node
  // Ready.
  static void waitReady(const std::string& name, int64_t matched) {
    bool ready = eventually(
        [&] {
          Json c = chainObject(name);
          if (c.is_null() || !c.has_field("status"))
            return false;
          const Json& s = c.at("status");
          return s.has_field("observedGeneration") &&
                 s.at("observedGeneration").as_number().to_int64() == k8s::generationOf(c) &&
                 k8s::stringAt(c, {"status", "ready"}) ==
                     std::to_string(matched) + "/" + std::to_string(matched);
        },
        60000);
    ASSERT_TRUE(ready) << chainObject(name).serialize() << "\n" << agents_[0]->log();
  }

  // Debian's prometheus with <dir>/prometheus.yml, its data under <dir>/data, on `webPort`.
  static Result<ChildProcess> startPrometheus(const std::string& promDir, uint16_t webPort) {
    fs::create_directories(promDir + "/data");
    return ChildProcess::spawn({"prometheus", "--config.file=" + promDir + "/prometheus.yml",
                                "--storage.tsdb.path=" + promDir + "/data",
                                "--web.listen-address=127.0.0.1:" + std::to_string(webPort)},
                               promDir + "/prometheus.log");
  }

  static Json nodeChainStatus(size_t node, const std::string& chain) {
    auto config = client_->get(kNodeConfigs, "", nodeName(node));
    if (!config.ok() || !config->has_field("status") || !config->at("status").has_field("chains"))
      return Json::null();
    for (const auto& c : config->at("status").at("chains").as_array())
      if (k8s::stringAt(c, {"name"}) == chain)
        return c;
    return Json::null();
  }

  std::unique_ptr<UdpTraffic> trafficTo(size_t node, uint16_t port) {
    auto t = UdpTraffic::create(nodes_->router(), *nodes_->node(node).netns,
                                nodes_->node(node).address, port);
    EXPECT_TRUE(t.ok()) << t.error().message();
    return t.ok() ? std::move(*t) : nullptr;
  }

  // A namespace labelled `label` (key=value), for pods chains' namespaceSelector.
  static void createNamespace(const std::string& name, const std::string& label) {
    ASSERT_TRUE(ControlPlaneEnvironment::get().kubectl({"create", "namespace", name}).ok());
    ASSERT_TRUE(ControlPlaneEnvironment::get().kubectl({"label", "namespace", name, label}).ok());
  }

  // A Pod object labelled app=`app`, scheduled to `node` (nothing runs it: tests play the
  // runtime with cnitool).
  static void createPod(const std::string& ns, const std::string& name, const std::string& app,
                        size_t node) {
    Json p = Json::parse(R"({"apiVersion":"v1","kind":"Pod","metadata":{"labels":{}},
                             "spec":{"containers":[{"name":"c","image":"x"}]}})");
    p["metadata"]["namespace"] = Json::string(ns);
    p["metadata"]["name"] = Json::string(name);
    p["metadata"]["labels"]["app"] = Json::string(app);
    p["spec"]["nodeName"] = Json::string(nodeName(node));
    auto created = client_->create(k8s::resources::kPods, p);
    ASSERT_TRUE(created.ok()) << created.error().describe();
  }

  // Plays the container runtime of node `node` (no kubelet here) with cnitool: a network of a
  // bridge with host-local addresses from `subnet`, then bpfchain-cni on the node's agent socket.
  struct CniRuntime {
    size_t node;
    std::string confDir, net;
    // cnitool COMMAND for the pod NAMESPACE/NAME whose network namespace is `pod`.
    CommandOutput run(const std::string& command, const TestNetns& pod,
                      const std::string& podNamespace, const std::string& name) const {
      auto out = runCommand(
          {"ip", "netns", "exec", nodes_->node(node).netns->name(), "env", "NETCONFPATH=" + confDir,
           "CNI_PATH=" + std::string(BPFCHAIN_BIN_DIR) + ":/usr/lib/cni",
           "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=" + podNamespace + ";K8S_POD_NAME=" + name,
           "CNI_IFNAME=eth0", testBedToolsDir() + "/cnitool", command, net, pod.path()});
      EXPECT_TRUE(out.ok());
      return out.ok() ? *out : CommandOutput{-1, "", ""};
    }
    // Removes what the plugins cached of this network on the host.
    void forget() const {
      std::error_code ec;
      for (const auto* sub : {"/var/lib/cni/results", "/var/lib/cni/gc"})
        for (const auto& entry : fs::directory_iterator(sub, ec))
          if (entry.path().filename().string().starts_with(net))
            fs::remove_all(entry.path(), ec);
    }
  };
  static CniRuntime cniRuntime(size_t node, const std::string& bridge, const std::string& subnet) {
    CniRuntime r{node, "", uniqueResourceName("net")};
    r.confDir = dir_->path() + "/net.d-" + r.net;
    fs::create_directories(r.confDir);
    std::ofstream(r.confDir + "/10-pods.conflist")
        << R"({"cniVersion": "1.0.0", "name": ")" << r.net << R"(", "plugins": [
  {"type": "bridge", "bridge": ")"
        << bridge << R"(", "isGateway": true,
   "ipam": {"type": "host-local", "dataDir": ")"
        << dir_->path() << R"(/ipam", "ranges": [[{"subnet": ")" << subnet << R"("}]],
            "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "bpfchain-cni", "socketPath": ")"
        << dir_->path() << "/agent-n" << node + 1 << R"(.sock"}]})";
    return r;
  }

  static double nodeMetric(size_t node, const std::string& name,
                           const std::vector<std::string>& labels) {
    auto text = agents_[node]->get("/metrics");
    if (!text.ok())
      return -1;
    return metricValue(*text, name, labels).value_or(-1);
  }

  static k8s::Client* client_;
  static TempDir* dir_;
  static TestBpffs* bpffs_;
  static SimulatedNodes* nodes_;
  static BuiltPackage* counter_;
  static BuiltPackage* portfilter_;
  static ChildProcess* operator_;
  static AgentProcess* agents_[kNodes];
  static int starts_;
};

k8s::Client* AgentCluster::client_ = nullptr;
TempDir* AgentCluster::dir_ = nullptr;
TestBpffs* AgentCluster::bpffs_ = nullptr;
SimulatedNodes* AgentCluster::nodes_ = nullptr;
BuiltPackage* AgentCluster::counter_ = nullptr;
BuiltPackage* AgentCluster::portfilter_ = nullptr;
ChildProcess* AgentCluster::operator_ = nullptr;
AgentProcess* AgentCluster::agents_[kNodes] = {};
int AgentCluster::starts_ = 0;

TEST_F(AgentCluster, AChainAppliedWithKubectlIsReadyOnEverySelectedNodeAndCounts) {
  applyChain("e2e-count", "edge", false);
  waitReady("e2e-count", 2);
  for (size_t n : {0, 1}) {
    Json s = nodeChainStatus(n, "e2e-count");
    ASSERT_FALSE(s.is_null());
    EXPECT_EQ(k8s::stringAt(s, {"phase"}), "Ready");
    ASSERT_EQ(s.at("attachments").size(), 1u);
    EXPECT_EQ(k8s::stringAt(s.at("attachments").at(0), {"interface"}), "eth0");
    EXPECT_EQ(s.at("attachments").at(0).at("programIDs").size(), 2u); // root, count
    // The target and what runs, through the CRD's schema (a field it lacks would be pruned).
    ASSERT_TRUE(s.has_field("runningGeneration")) << s.serialize();
    EXPECT_EQ(s.at("runningGeneration").as_number().to_int64(),
              s.at("generation").as_number().to_int64());
  }
  EXPECT_TRUE(nodeChainStatus(2, "e2e-count").is_null()) << "n3 is not an edge node";
  // kubectl get's columns: the node's READY/FAILED counts, the chain's STATUS.
  auto config = client_->get(kNodeConfigs, "", nodeName(0));
  ASSERT_TRUE(config.ok());
  ASSERT_TRUE(config->at("status").has_field("readyCount")) << config->serialize();
  EXPECT_EQ(config->at("status").at("readyCount").as_number().to_int64(), 1);
  EXPECT_EQ(config->at("status").at("failedCount").as_number().to_int64(), 0);
  EXPECT_EQ(k8s::stringAt(config->at("status"), {"agent", "version"}).empty(), false);
  EXPECT_TRUE(eventually([&] {
    return k8s::stringAt(chainObject("e2e-count"), {"status", "phase"}) == "Ready";
  })) << chainObject("e2e-count").serialize();
  auto t = trafficTo(0, 7000);
  t->sendAndWait(500);
  EXPECT_EQ(t->received(), 500u);
  EXPECT_TRUE(eventually([&] {
    return nodeMetric(0, "bpfchain_monitor_map_value",
                      {"chain=\"e2e-count\"", "field=\"packets\""}) == 500;
  })) << agents_[0]->get("/metrics").value();
  auto table = ControlPlaneEnvironment::get().kubectl({"get", "bpfchains,bpfnodeconfigs"});
  ASSERT_TRUE(table.ok());
  std::cerr << table->out;
  deleteChain("e2e-count");
  EXPECT_TRUE(eventually([&] { return nodeChainStatus(0, "e2e-count").is_null(); }, 30000));
}

TEST_F(AgentCluster, AnAgentRefreshesItsHeartbeatAndNothingElseWhenNothingChanged) {
  auto status = [] {
    auto config = client_->get(kNodeConfigs, "", nodeName(2));
    return config.ok() && config->has_field("status") ? config->at("status") : Json::null();
  };
  auto beat = [](const Json& s) { return k8s::stringAt(s, {"agent", "heartbeatTime"}); };
  Json before;
  ASSERT_TRUE(eventually([&] { return !beat(before = status()).empty(); }, 60000))
      << before.serialize();
  Json after;
  ASSERT_TRUE(eventually([&] { return beat(after = status()) != beat(before); }, 90000))
      << after.serialize();
  EXPECT_GT(beat(after), beat(before)); // RFC 3339 in UTC sorts as time
  before["agent"]["heartbeatTime"] = Json::string("");
  after["agent"]["heartbeatTime"] = Json::string("");
  EXPECT_EQ(after.serialize(), before.serialize());
}

TEST_F(AgentCluster, AChangeRollsOutUnderTrafficWithNoPacketLost) {
  applyChain("e2e-roll", "edge", false);
  waitReady("e2e-roll", 2);
  auto to1 = trafficTo(0, 7000);
  auto to2 = trafficTo(1, 7000);
  to1->start();
  to2->start();
  applyChain("e2e-roll", "edge", true, "{maxUnavailable: 1, canaryNodes: 1}");
  waitReady("e2e-roll", 2);
  to1->pause();
  to2->pause();
  EXPECT_GT(to1->sent(), 100u);
  EXPECT_EQ(to1->received(), to1->sent());
  EXPECT_EQ(to2->received(), to2->sent());
  // The new generation runs: port 9999 is dropped on both nodes.
  for (size_t n : {0, 1}) {
    auto blocked = trafficTo(n, 9999);
    blocked->sendAndWait(100, 500);
    EXPECT_EQ(blocked->received(), 0u) << "node " << n;
    EXPECT_EQ(nodeChainStatus(n, "e2e-roll").at("attachments").at(0).at("programIDs").size(), 3u);
  }
  deleteChain("e2e-roll");
}

TEST_F(AgentCluster, AnApiServerOutageLeavesTheDataPlaneAloneAndStatusCatchesUp) {
  applyChain("e2e-outage", "edge", false);
  waitReady("e2e-outage", 2);
  auto t = trafficTo(0, 7000);
  t->start();
  std::thread outage([] {
    auto r = ControlPlaneEnvironment::get().restartApiserver(6);
    EXPECT_TRUE(r.ok()) << r.error().message();
  });
  // While the API server is down, an interface the chain selects appears on n1: the agent
  // attaches the chain at once and reports it once it can.
  std::this_thread::sleep_for(2s);
  ASSERT_TRUE(nodes_->node(0)
                  .netns->ip({"link", "add", "eth1", "type", "veth", "peer", "name", "peer1"})
                  .ok());
  outage.join();
  t->pause();
  EXPECT_EQ(t->received(), t->sent()) << "packets lost during the API server outage";
  EXPECT_TRUE(eventually(
      [&] {
        Json s = nodeChainStatus(0, "e2e-outage");
        return !s.is_null() && s.at("attachments").size() == 2;
      },
      60000))
      << nodeChainStatus(0, "e2e-outage").serialize();
  ASSERT_TRUE(nodes_->node(0).netns->ip({"link", "del", "eth1"}).ok());
  deleteChain("e2e-outage");
}

TEST_F(AgentCluster, PrometheusScrapesAMonitorMapThatMatchesTheTraffic) {
  applyChain("e2e-prom", "core", false);
  waitReady("e2e-prom", 1);
  auto t = trafficTo(2, 7000);
  t->sendAndWait(321);
  ASSERT_EQ(t->received(), 321u);

  uint16_t webPort = freePort();
  std::string promDir = dir_->path() + "/prometheus";
  fs::create_directories(promDir + "/data");
  std::ofstream(promDir + "/prometheus.yml")
      << "global: {scrape_interval: 1s}\nscrape_configs:\n- job_name: bpfchain-agent\n"
      << "  static_configs: [{targets: [\"127.0.0.1:" << agents_[2]->metricsPort() << "\"]}]\n";
  auto prometheus = startPrometheus(promDir, webPort);
  ASSERT_TRUE(prometheus.ok()) << prometheus.error().message();
  // bpfchain_monitor_map_value{chain="e2e-prom",field="packets"}, URL-encoded.
  std::string query = "/api/v1/query?query=bpfchain_monitor_map_value%7Bchain%3D%22e2e-prom%22%2C"
                      "field%3D%22packets%22%7D";
  std::string answer;
  bool found = eventually(
      [&] {
        auto r = httpGet("127.0.0.1", webPort, query);
        if (!r.ok() || r->status != 200)
          return false;
        answer = r->body;
        YAML::Node json = YAML::Load(answer);
        auto result = json["data"]["result"];
        return result.IsSequence() && result.size() == 1 &&
               result[0]["value"][1].as<std::string>() == "321";
      },
      60000);
  EXPECT_TRUE(found) << "PromQL answered: " << answer;
  prometheus->stop();
  deleteChain("e2e-prom");
}

// The operator's metrics port, from its "serving metrics address=HOST:PORT" line.
uint16_t operatorMetricsPort(const std::string& log) {
  std::ifstream in(log);
  for (std::string line; std::getline(in, line);)
    if (auto at = line.find("serving metrics address="); at != std::string::npos)
      return static_cast<uint16_t>(std::stoi(line.substr(line.rfind(':') + 1)));
  return 0;
}

std::string urlEncode(const std::string& s) {
  std::string out;
  char hex[4];
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

// Debian's prometheus scraping every agent (labelled with its node, as the ServiceMonitor's
// relabeling does) and the operator, evaluating dashboards/alerts/bpfchain.rules.yaml; a
// real verifier rejection on the canary node makes BpfchainChainFailed and
// BpfchainRolloutHalted fire and a NodeFailed Event, every dashboard query answers with data
// (with a pods chain on the third node, its pod added through the CNI plugin), and the fix
// resolves both alerts. The dashboards and rules use only metric names the binaries export, taken
// from their scrapes. The rules' `for` durations are read as seconds (2m -> 2s) so the test waits
// seconds, not minutes; their expressions are the shipped ones.
TEST_F(AgentCluster, AlertsFireOnAVerifierRejectionAndResolveAndDashboardsHaveData) {
  std::string rollout = "{maxUnavailable: 1, canaryNodes: 1, failurePolicy: Halt}";
  // The filter counts verdicts per program (chain.h), the counter feeds a monitor map.
  applyChain("e2e-alert", "edge", true, rollout);
  waitReady("e2e-alert", 2);
  // And a pods chain on n3 (role core), with a pod added through the CNI plugin: the dashboards
  // are read against both kinds of chain.
  ASSERT_FALSE(testBedToolsDir().empty());
  createNamespace("e2e-dash", "tier=dash");
  createPod("e2e-dash", "dash-0", "dash", 2);
  if (HasFatalFailure())
    return;
  std::string podsYaml =
      "apiVersion: bpfchain.io/v1alpha1\nkind: BpfChain\nmetadata:\n  name: e2e-alert-pods\n"
      "spec:\n  hook: xdp\n  nodeSelector: {matchLabels: {role: core}}\n"
      "  pods:\n    namespaceSelector: {matchLabels: {tier: dash}}\n"
      "    podSelector: {matchLabels: {app: dash}}\n  programs:\n  - name: count\n"
      "    package: {url: \"" +
      counter_->url + "\", sha256: \"" + counter_->sha256 +
      "\"}\n    monitorMaps: [{map: counter_stats, key: \"0\", aggregator: sum}]\n";
  std::ofstream(dir_->path() + "/e2e-alert-pods.yaml") << podsYaml;
  ASSERT_TRUE(ControlPlaneEnvironment::get()
                  .kubectl({"apply", "-f", dir_->path() + "/e2e-alert-pods.yaml"})
                  .ok());
  waitReady("e2e-alert-pods", 1);
  CniRuntime cni = cniRuntime(2, "dashbr0", "10.97.0.0/24");
  auto podNetns = TestNetns::create();
  ASSERT_TRUE(podNetns.ok()) << podNetns.error().message();
  CommandOutput added = cni.run("add", *podNetns, "e2e-dash", "dash-0");
  ASSERT_EQ(added.exitCode, 0) << added.out << added.err;
  ASSERT_TRUE(eventually([&] {
    Json s = nodeChainStatus(2, "e2e-alert-pods");
    return !s.is_null() && s.has_field("attachments") && s.at("attachments").size() == 1 &&
           k8s::stringAt(s.at("attachments").at(0), {"pod"}) == "e2e-dash/dash-0";
  })) << nodeChainStatus(2, "e2e-alert-pods").serialize();
  auto rejected = buildPackage(dir_->path() + "/packages", "rejected", "rejected", "rejected_xdp",
                               "xdp", "rejected_xdp_next");
  ASSERT_TRUE(rejected.ok()) << rejected.error().message();

  uint16_t operatorPort = operatorMetricsPort(dir_->path() + "/operator.log");
  ASSERT_NE(operatorPort, 0);
  auto panels = dashboardQueries();
  ASSERT_TRUE(panels.ok()) << panels.error().message();

  // Prometheus with the shipped rules, `for` in seconds.
  uint16_t webPort = freePort();
  std::string promDir = dir_->path() + "/prometheus-alerts";
  fs::create_directories(promDir + "/data");
  YAML::Node rules = YAML::LoadFile(dashboardsDir() + "/alerts/bpfchain.rules.yaml");
  for (auto group : rules["groups"])
    for (auto rule : group["rules"])
      if (rule["for"]) {
        std::string f = rule["for"].as<std::string>();
        rule["for"] = f.substr(0, f.size() - 1) + "s";
      }
  std::ofstream(promDir + "/rules.yaml") << YAML::Dump(rules);
  std::ofstream config(promDir + "/prometheus.yml");
  config << "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
         << "rule_files: [rules.yaml]\nscrape_configs:\n- job_name: bpfchain-agent\n"
         << "  static_configs:\n";
  for (size_t i = 0; i < kNodes; ++i)
    config << "  - {targets: [\"127.0.0.1:" << agents_[i]->metricsPort()
           << "\"], labels: {node: " << nodeName(i) << "}}\n";
  config << "- job_name: bpfchain-operator\n  static_configs: [{targets: [\"127.0.0.1:"
         << operatorPort << "\"]}]\n";
  config.close();
  auto prometheus = startPrometheus(promDir, webPort);
  ASSERT_TRUE(prometheus.ok()) << prometheus.error().message();
  auto firing = [&](const std::string& alert, const std::string& chain) {
    auto r = httpGet("127.0.0.1", webPort, "/api/v1/alerts");
    if (!r.ok() || r->status != 200)
      return false;
    for (const auto& a : YAML::Load(r->body)["data"]["alerts"])
      if (a["labels"]["alertname"].as<std::string>("") == alert &&
          a["labels"]["chain"].as<std::string>("") == chain &&
          a["state"].as<std::string>("") == "firing")
        return true;
    return false;
  };
  auto query = [&](const std::string& expr) -> YAML::Node {
    auto r = httpGet("127.0.0.1", webPort, "/api/v1/query?query=" + urlEncode(expr));
    if (!r.ok() || r->status != 200)
      return YAML::Node();
    return YAML::Load(r->body)["data"]["result"];
  };
  ASSERT_TRUE(eventually([&] { return query("up").size() == kNodes + 1; }, 60000));
  // Rules are evaluated, and nothing fires while every node runs the chain Ready.
  ASSERT_TRUE(eventually([&] { return query("ALERTS").IsSequence(); }, 20000));
  EXPECT_FALSE(firing("BpfchainChainFailed", "e2e-alert"));
  EXPECT_FALSE(firing("BpfchainRolloutHalted", "e2e-alert"));

  // A new generation whose program the kernel's verifier refuses.
  std::string yaml = "apiVersion: bpfchain.io/v1alpha1\nkind: BpfChain\nmetadata:\n  name: "
                     "e2e-alert\nspec:\n  hook: xdp\n  nodeSelector: {matchLabels: {role: edge}}\n"
                     "  interfaces: {names: [\"/^eth[0-9]+$/\"]}\n  rollout: " +
                     rollout + "\n  programs:\n  - name: rejected\n    package: {url: \"" +
                     rejected->url + "\", sha256: \"" + rejected->sha256 + "\"}\n";
  std::ofstream(dir_->path() + "/e2e-alert-bad.yaml") << yaml;
  ASSERT_TRUE(ControlPlaneEnvironment::get()
                  .kubectl({"apply", "-f", dir_->path() + "/e2e-alert-bad.yaml"})
                  .ok());
  EXPECT_TRUE(eventually([&] { return firing("BpfchainChainFailed", "e2e-alert"); }, 120000))
      << readFile(promDir + "/prometheus.log");
  EXPECT_TRUE(eventually([&] { return firing("BpfchainRolloutHalted", "e2e-alert"); }, 120000));
  auto failed = query(R"(bpfchain_chain_info{chain="e2e-alert",phase="Failed"})");
  ASSERT_EQ(failed.size(), 1u) << "one canary node fails, the other is never updated";
  EXPECT_EQ(failed[0]["metric"]["reason"].as<std::string>(""), "VerifierRejected");

  // kubectl finds the plugin beside the other binaries: the canary's failure at a glance.
  auto plugin = [&](const std::vector<std::string>& args) {
    // kubectl takes no flags before a plugin's name: the plugin reads --kubeconfig itself.
    std::vector<std::string> argv{
        "/usr/bin/env", "PATH=" + std::string(BPFCHAIN_BIN_DIR) + ":" + getenv("PATH"),
        "kubectl",      "bpfchain",
        "--kubeconfig", ControlPlaneEnvironment::get().kubeconfig()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto out = runCommand(argv);
    EXPECT_TRUE(out.ok() && out->exitCode == 0)
        << (out.ok() ? out->out + out->err : out.error().message());
    return out.ok() ? out->out : std::string();
  };
  std::string status = plugin({"status", "e2e-alert"});
  std::string canary = failed[0]["metric"]["node"].as<std::string>("");
  EXPECT_NE(status.find("Failed  VerifierRejected  1      " + canary + "\n"), std::string::npos)
      << status;
  // The canary's failure is a Warning Event on the chain, with the agent's message on one line,
  // shortened but keeping the verifier's last words.
  std::string nodeFailed;
  EXPECT_TRUE(eventually(
      [&] {
        auto out = ControlPlaneEnvironment::get().kubectl(
            {"get", "events", "-n", "default", "--field-selector",
             "involvedObject.name=e2e-alert,reason=NodeFailed", "-o",
             "jsonpath={range .items[*]}{.type}|{.message}{\"\\n\"}{end}"});
        nodeFailed = out.ok() ? out->out : "";
        return nodeFailed.find("Warning|node " + canary + " failed generation ") !=
                   std::string::npos &&
               nodeFailed.find(": VerifierRejected: ") != std::string::npos &&
               nodeFailed.find("invalid access to packet") != std::string::npos;
      },
      60000))
      << nodeFailed;
  std::cout << "NodeFailed events:\n" << nodeFailed;
  std::string nodesOut = plugin({"nodes", "-o", "wide"});
  EXPECT_NE(nodesOut.find("e2e-alert@"), std::string::npos) << nodesOut;
  EXPECT_NE(nodesOut.find("Failed(VerifierRejected)"), std::string::npos) << nodesOut;
  std::cout << "kubectl bpfchain status e2e-alert:\n"
            << status << "kubectl bpfchain nodes -o wide:\n"
            << nodesOut;

  // Every panel's query answers (a series, even if its value is 0 or NaN), the pod's ADD and
  // its chain among them.
  for (const auto& q : *panels)
    EXPECT_TRUE(eventually([&] { return query(q.expr).size() > 0; }, 20000))
        << q.where << " has no data: " << q.expr;
  EXPECT_TRUE(eventually(
      [&] {
        return query(R"(bpfchain_cni_requests_total{command="ADD",result="success"} > 0)").size() ==
                   1 &&
               query(R"(bpfchain_chain_info{chain="e2e-alert-pods",phase="Ready"})").size() == 1;
      },
      20000));

  // Every metric name the dashboards and rules read is one the binaries export (scraped now:
  // a family without series, such as bpfchain_errors_total before any error, is not exposed).
  std::set<std::string> exported{"up"}; // Prometheus's own, per target
  auto operatorScrape = httpGet("127.0.0.1", operatorPort, "/metrics");
  ASSERT_TRUE(operatorScrape.ok() && operatorScrape->status == 200);
  exported.merge(exportedMetricNames(operatorScrape->body));
  for (auto* agent : agents_) {
    auto text = agent->get("/metrics");
    ASSERT_TRUE(text.ok()) << text.error().message();
    exported.merge(exportedMetricNames(*text));
  }
  auto alerts = alertQueries();
  ASSERT_TRUE(alerts.ok()) << alerts.error().message();
  std::vector<PromQuery> all = *panels;
  all.insert(all.end(), alerts->begin(), alerts->end());
  for (const auto& q : all)
    for (const auto& name : metricNamesOf(q.expr))
      EXPECT_TRUE(exported.contains(name))
          << q.where << " reads " << name << ", which no bpfchain binary exports";

  // The fix: a generation that loads. Both alerts resolve.
  applyChain("e2e-alert", "edge", false, rollout);
  waitReady("e2e-alert", 2);
  EXPECT_TRUE(eventually(
      [&] {
        return !firing("BpfchainChainFailed", "e2e-alert") &&
               !firing("BpfchainRolloutHalted", "e2e-alert");
      },
      60000));
  prometheus->stop();
  deleteChain("e2e-alert");
  EXPECT_EQ(cni.run("del", *podNetns, "e2e-dash", "dash-0").exitCode, 0);
  cni.forget();
  deleteChain("e2e-alert-pods");
  ASSERT_TRUE(ControlPlaneEnvironment::get()
                  .kubectl({"delete", "namespace", "e2e-dash", "--wait=false"})
                  .ok());
}

TEST_F(AgentCluster, APodsChainSelectsPodsByLabelAndIsOnTheirVethWhenAddReturns) {
  // A pod scheduled to n3 (no kubelet here: the test plays the runtime with cnitool).
  createNamespace("e2e-shop", "tier=frontend");
  createPod("e2e-shop", "web-0", "web", 2);
  createPod("e2e-shop", "db-0", "db", 2);
  if (HasFatalFailure())
    return;
  std::string yaml = "apiVersion: bpfchain.io/v1alpha1\nkind: BpfChain\nmetadata:\n  name: "
                     "e2e-pods\nspec:\n  hook: xdp\n  nodeSelector: {matchLabels: {role: core}}\n"
                     "  pods:\n    namespaceSelector: {matchLabels: {tier: frontend}}\n"
                     "    podSelector: {matchLabels: {app: web}}\n  programs:\n"
                     "  - name: filter\n    package: {url: \"" +
                     portfilter_->url + "\", sha256: \"" + portfilter_->sha256 +
                     "\"}\n    mapArgs: [{map: portfilter_ports, entries: [{key: \"9999\", "
                     "value: \"1\"}]}]\n";
  std::ofstream(dir_->path() + "/e2e-pods.yaml") << yaml;
  ASSERT_TRUE(ControlPlaneEnvironment::get()
                  .kubectl({"apply", "-f", dir_->path() + "/e2e-pods.yaml"})
                  .ok());
  waitReady("e2e-pods", 1);

  ASSERT_FALSE(testBedToolsDir().empty());
  CniRuntime cni = cniRuntime(2, "podbr0", "10.96.0.0/24");
  auto run = [&](const std::string& command, const TestNetns& pod, const std::string& name) {
    return cni.run(command, pod, "e2e-shop", name);
  };
  auto web = TestNetns::create();
  auto db = TestNetns::create();
  ASSERT_TRUE(web.ok() && db.ok());
  CommandOutput added = run("add", *web, "web-0");
  ASSERT_EQ(added.exitCode, 0) << added.out << added.err;
  added = run("add", *db, "db-0");
  ASSERT_EQ(added.exitCode, 0) << added.out << added.err;
  // web-0 is selected: its traffic to port 9999 is dropped; db-0 is not.
  for (auto [pod, dropped] : {std::pair{&*web, true}, std::pair{&*db, false}}) {
    auto t = UdpTraffic::create(*pod, *nodes_->node(2).netns, "10.96.0.1", 9999);
    ASSERT_TRUE(t.ok()) << t.error().message();
    (*t)->sendAndWait(20, 1000);
    EXPECT_EQ((*t)->received(), dropped ? 0u : 20u) << (dropped ? "web-0" : "db-0");
  }
  EXPECT_TRUE(eventually([&] {
    Json s = nodeChainStatus(2, "e2e-pods");
    return !s.is_null() && s.has_field("attachments") && s.at("attachments").size() == 1 &&
           k8s::stringAt(s.at("attachments").at(0), {"pod"}) == "e2e-shop/web-0";
  })) << nodeChainStatus(2, "e2e-pods").serialize();
  // Relabelling moves the chain: db-0 becomes a web pod, and its veth gets the chain.
  ASSERT_TRUE(ControlPlaneEnvironment::get()
                  .kubectl({"label", "pod", "-n", "e2e-shop", "db-0", "app=web", "--overwrite"})
                  .ok());
  EXPECT_TRUE(eventually([&] {
    Json s = nodeChainStatus(2, "e2e-pods");
    return !s.is_null() && s.has_field("attachments") && s.at("attachments").size() == 2;
  })) << nodeChainStatus(2, "e2e-pods").serialize();
  // A pod the API server does not know: the agent cannot tell which chains select it, so the
  // ADD is not answered with "no chains" (the pod would start unprotected) but fails as when the
  // agent is unavailable (failurePolicy fail: code 11, try again later). Once the Pod object
  // exists, the runtime's retry attaches its chain.
  auto late = TestNetns::create();
  ASSERT_TRUE(late.ok());
  CommandOutput refused = run("add", *late, "web-1");
  EXPECT_NE(refused.exitCode, 0) << refused.out;
  EXPECT_NE(refused.err.find("cannot tell which chains select pod e2e-shop/web-1"),
            std::string::npos)
      << refused.out << refused.err;
  EXPECT_EQ(run("del", *late, "web-1").exitCode, 0); // the runtime cleans up a failed ADD
  createPod("e2e-shop", "web-1", "web", 2);
  if (HasFatalFailure())
    return;
  added = run("add", *late, "web-1");
  ASSERT_EQ(added.exitCode, 0) << added.out << added.err;
  auto t = UdpTraffic::create(*late, *nodes_->node(2).netns, "10.96.0.1", 9999);
  ASSERT_TRUE(t.ok()) << t.error().message();
  (*t)->sendAndWait(20, 1000);
  EXPECT_EQ((*t)->received(), 0u) << "web-1's veth does not run its chain";
  EXPECT_EQ(run("del", *late, "web-1").exitCode, 0);

  EXPECT_EQ(run("del", *web, "web-0").exitCode, 0);
  EXPECT_EQ(run("del", *db, "db-0").exitCode, 0);
  cni.forget();
  deleteChain("e2e-pods");
  ASSERT_TRUE(ControlPlaneEnvironment::get()
                  .kubectl({"delete", "namespace", "e2e-shop", "--wait=false"})
                  .ok());
}

} // namespace
} // namespace bpfchain::testing
