// bpfchain-cni as a container runtime runs it: cnitool (libcni) drives Debian's bridge and
// host-local plugins and ours in real network namespaces, with a real AgentSocketServer and a
// test handler standing in for the node agent. Also the plugin binary invoked directly for
// every error path, the JSON parser it relies on, and `bpfchain-cni install|uninstall`.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <mutex>
#include <sstream>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

#include "agent_socket/agent_socket.h"
#include "cni/installer.h"
#include "cni/json.h"
#include "cni/netlink.h"
#include "cni/plugin.h"
#include "harness/netns.h"
#include "harness/process.h"
#include "harness/resources.h"
#include "harness/test_bed_tools.h"

namespace bpfchain::cni {
namespace {

namespace v1 = bpfchain::agent::v1;
using bpfchain::testing::cnitoolContainerId;
using bpfchain::testing::CommandOutput;
using bpfchain::testing::readFile;
using bpfchain::testing::runCommand;
using bpfchain::testing::TempDir;
using bpfchain::testing::testBedToolsDir;
using bpfchain::testing::TestNetns;
using bpfchain::testing::uniqueResourceName;

const std::string kPluginBinary = BPFCHAIN_CNI_BIN;
const std::string kSourceDir = BPFCHAIN_SOURCE_DIR;
const std::string kSystemPlugins = "/usr/lib/cni";

void writeText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// Stands in for the node agent: records every request and answers as configured.
class TestAgent : public agent::AgentHandler {
public:
  v1::Response attachPod(const v1::AttachPod& request) override {
    std::lock_guard lock(mu_);
    attaches.push_back(request);
    v1::Response response;
    if (!attachReason.empty()) {
      response.set_ok(false);
      response.set_reason(attachReason);
      response.set_message("verifier rejected edge-protect");
      return response;
    }
    response.set_ok(true);
    auto* chain = response.add_chains();
    chain->set_chain("edge-protect");
    chain->set_hook("tc-ingress");
    chain->set_generation(3);
    chain->set_root_program_id(41);
    chain->set_interface(request.host_ifname());
    return response;
  }
  v1::Response detachPod(const v1::DetachPod& request) override {
    std::lock_guard lock(mu_);
    detaches.push_back(request);
    v1::Response response;
    response.set_ok(true); // unknown containers too: DEL is idempotent
    return response;
  }
  v1::Response checkPod(const v1::CheckPod& request) override {
    std::lock_guard lock(mu_);
    checks.push_back(request);
    v1::Response response;
    response.set_ok(true);
    return response;
  }
  v1::Response status(const v1::StatusRequest& /*request*/) override {
    std::lock_guard lock(mu_);
    ++statusCalls;
    v1::Response response;
    response.set_ok(true);
    response.mutable_status()->set_ready(ready);
    response.mutable_status()->set_agent_version("0.1.0-test");
    response.mutable_status()->set_node_name("node-a");
    return response;
  }
  v1::Response gc(const v1::GcRequest& request) override {
    std::lock_guard lock(mu_);
    gcs.push_back(request);
    v1::Response response;
    response.set_ok(true);
    response.add_removed_container_ids("stale-1");
    return response;
  }

  std::mutex mu_;
  std::vector<v1::AttachPod> attaches;
  std::vector<v1::DetachPod> detaches;
  std::vector<v1::CheckPod> checks;
  std::vector<v1::GcRequest> gcs;
  int statusCalls = 0;
  std::string attachReason; // non-empty: refuse attaches with this reason
  bool ready = true;
};

struct PluginRun {
  int exitCode = 0;
  std::string out;
  std::string err;
  json::Value json; // stdout parsed, when it is JSON
};

// One CNI test bed: a host namespace (where the runtime and the plugins run), a pod namespace,
// a conflist of bridge + host-local + bpfchain-cni in a private NETCONFPATH, host-local's state
// in a private dataDir, and the agent socket. Everything goes with it.
class CniBed {
public:
  explicit CniBed(const std::string& failurePolicy = "fail",
                  const std::string& cniVersion = "1.0.0")
      : dir_(must(TempDir::create("cni"))), host_(must(TestNetns::create())),
        pod_(must(TestNetns::create())), net_(uniqueResourceName("net")) {
    std::filesystem::create_directories(confDir());
    socket_ = dir_.path() + "/run/agent.sock";
    log_ = dir_.path() + "/cni.log";
    writeText(confDir() + "/10-test.conflist", conflist(failurePolicy, cniVersion));
  }
  ~CniBed() {
    stopAgent();
    // libcni's result cache for this network (cnitool uses the default /var/lib/cni).
    std::error_code ec;
    for (const auto* sub : {"/var/lib/cni/results", "/var/lib/cni/gc"})
      for (const auto& entry : std::filesystem::directory_iterator(sub, ec))
        if (entry.path().filename().string().starts_with(net_))
          std::filesystem::remove_all(entry.path(), ec);
  }

  static TempDir must(Result<TempDir> r) {
    if (!r)
      throw std::runtime_error(r.error().message());
    return std::move(*r);
  }
  static TestNetns must(Result<TestNetns> r) {
    if (!r)
      throw std::runtime_error(r.error().message());
    return std::move(*r);
  }

  std::string conflist(const std::string& failurePolicy, const std::string& cniVersion) const {
    return R"({
  "cniVersion": ")" +
           cniVersion + R"(",
  "name": ")" +
           net_ +
           R"(",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "bpfbr0",
      "isGateway": true,
      "ipam": {
        "type": "host-local",
        "dataDir": ")" +
           dir_.path() + R"(/ipam",
        "ranges": [[{"subnet": "10.99.0.0/24"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {
      "type": "bpfchain-cni",
      "socketPath": ")" +
           socket_ + R"(",
      "failurePolicy": ")" +
           failurePolicy + R"(",
      "logFile": ")" +
           log_ +
           R"(",
      "timeoutMs": 1000
    }
  ]
})";
  }

  void startAgent() {
    auto server = agent::AgentSocketServer::start(socket_, agent);
    if (!server)
      throw std::runtime_error(server.error().message());
    server_ = std::move(*server);
  }
  void stopAgent() { server_.reset(); }

  // cnitool <command> <net> <pod netns>, run in the host namespace as a runtime would.
  CommandOutput cnitool(const std::string& command, const std::string& network = "") {
    std::string tool = testBedToolsDir() + "/cnitool";
    auto out =
        runCommand({"ip", "netns", "exec", host_.name(), "env", "NETCONFPATH=" + confDir(),
                    "CNI_PATH=" + std::filesystem::path(kPluginBinary).parent_path().string() +
                        ":" + kSystemPlugins,
                    "CNI_ARGS=" + cniArgs, "CNI_IFNAME=eth0", tool, command,
                    network.empty() ? net_ : network, pod_.path()});
    if (!out)
      throw std::runtime_error(out.error().message());
    return *out;
  }

  // The plugin binary, run in the host namespace with exactly `env` and `input` on stdin.
  PluginRun plugin(const std::map<std::string, std::string>& env, const std::string& input) {
    std::string stdinFile = dir_.path() + "/stdin-" + std::to_string(runs_++);
    writeText(stdinFile, input);
    std::vector<std::string> argv{"sh",    "-c",   "exec \"$@\" < \"$0\"", stdinFile, "ip",
                                  "netns", "exec", host_.name(),           "env",     "-i"};
    for (const auto& [key, value] : env) {
      argv.push_back(key);
      argv.back().append("=").append(value);
    }
    argv.push_back(kPluginBinary);
    auto out = runCommand(argv);
    if (!out)
      throw std::runtime_error(out.error().message());
    PluginRun run{out->exitCode, out->out, out->err, {}};
    if (auto parsed = json::parse(run.out))
      run.json = std::move(*parsed);
    return run;
  }

  // The environment of an ADD for the pod's eth0.
  std::map<std::string, std::string> addEnv(const std::string& command = "ADD") const {
    return {{"CNI_COMMAND", command}, {"CNI_CONTAINERID", containerId}, {"CNI_NETNS", pod_.path()},
            {"CNI_IFNAME", "eth0"},   {"CNI_PATH", kSystemPlugins},     {"CNI_ARGS", cniArgs}};
  }

  // The bpfchain-cni entry of the conflist as a runtime would derive its stdin.
  std::string pluginConfig(const std::string& extra, const std::string& prevResult,
                           const std::string& cniVersion = "1.0.0") const {
    std::string config = R"({"cniVersion":")" + cniVersion + R"(","name":")" + net_ +
                         R"(","type":"bpfchain-cni","socketPath":")" + socket_ +
                         R"(","logFile":")" + log_ + R"(","timeoutMs":1000)" + extra;
    if (!prevResult.empty())
      config += R"(,"prevResult":)" + prevResult;
    return config + "}";
  }

  // A veth pair: `vethhost` here, eth0 in the pod, as the bridge plugin would leave it.
  void makeVeth() {
    ASSERT_TRUE(bpfchain::testing::connectVeth(host_,
                                               {"vethhost", "02:00:00:00:00:0a", "10.98.0.1/24"},
                                               pod_, {"eth0", "02:00:00:00:00:0b", "10.98.0.2/24"})
                    .ok());
  }

  std::string confDir() const { return dir_.path() + "/net.d"; }
  const std::string& socket() const { return socket_; }
  const std::string& logFile() const { return log_; }
  const std::string& network() const { return net_; }
  const TestNetns& host() const { return host_; }
  const TestNetns& pod() const { return pod_; }
  const TempDir& dir() const { return dir_; }

  TestAgent agent;
  std::string cniArgs =
      "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc";
  std::string containerId = "3f2a9c0d1e";

private:
  TempDir dir_;
  TestNetns host_;
  TestNetns pod_;
  std::string net_;
  std::string socket_;
  std::string log_;
  std::unique_ptr<agent::AgentSocketServer> server_;
  int runs_ = 0;
};

// A socket file nobody serves (what a killed agent leaves).
void makeStaleSocket(const std::string& path) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);
}

int codeOf(const PluginRun& run) {
  const json::Value* code = run.json.find("code");
  return code != nullptr && code->isNumber() ? std::stoi(code->text()) : -1;
}

std::string msgOf(const PluginRun& run) {
  const json::Value* msg = run.json.find("msg");
  return msg != nullptr && msg->isString() ? msg->text() : "";
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// --- through cnitool -----------------------------------------------------------------------

TEST(CniPlugin, AddAttachesThePodsHostVethThroughTheAgent) {
  ASSERT_FALSE(testBedToolsDir().empty()) << "tools/envtest/build.sh failed: no cnitool";
  CniBed bed;
  bed.startAgent();
  CommandOutput added = bed.cnitool("add");
  ASSERT_EQ(added.exitCode, 0) << added.err << added.out;

  // The result is bridge's, passed through: host-local's address is in it.
  auto result = json::parse(added.out);
  ASSERT_TRUE(result.ok()) << added.out;
  EXPECT_TRUE(contains(added.out, "10.99.0.")) << added.out;
  ASSERT_NE(result->find("ips"), nullptr);

  std::string expectedId = cnitoolContainerId(bed.pod().path());
  ASSERT_EQ(bed.agent.attaches.size(), 1u);
  const v1::AttachPod& attach = bed.agent.attaches.front();
  EXPECT_EQ(attach.pod_namespace(), "shop");
  EXPECT_EQ(attach.pod_name(), "web-0");
  EXPECT_EQ(attach.container_id(), expectedId);
  EXPECT_EQ(attach.netns_path(), bed.pod().path());
  EXPECT_EQ(attach.pod_ifname(), "eth0");
  EXPECT_TRUE(attach.host_ifname().starts_with("veth")) << attach.host_ifname();

  // The host interface is the pod's eth0's peer, with its real index in the host namespace.
  auto hostIndex = bed.host().ifindex(attach.host_ifname());
  ASSERT_TRUE(hostIndex.ok()) << hostIndex.error().message();
  EXPECT_EQ(attach.host_ifindex(), *hostIndex);
  auto podSocket = routeSocket(bed.pod().path());
  ASSERT_TRUE(podSocket.ok());
  auto eth0 = linkByName(podSocket->get(), "eth0");
  ASSERT_TRUE(eth0.ok());
  EXPECT_EQ(eth0->peerIndex, *hostIndex);
  // ... and it appears in the result as bridge reported it.
  EXPECT_TRUE(contains(added.out, "\"" + attach.host_ifname() + "\"")) << added.out;

  std::string log = readFile(bed.logFile());
  EXPECT_TRUE(contains(
      log, "ADD container=" + expectedId + " pod=shop/web-0 host=" + attach.host_ifname() + "(" +
               std::to_string(*hostIndex) + ") result=ok chains=edge-protect/tc-ingress@3"))
      << log;

  CommandOutput checked = bed.cnitool("check");
  EXPECT_EQ(checked.exitCode, 0) << checked.err << checked.out;
  ASSERT_EQ(bed.agent.checks.size(), 1u);
  EXPECT_EQ(bed.agent.checks[0].host_ifname(), attach.host_ifname());
  EXPECT_EQ(bed.agent.checks[0].container_id(), expectedId);

  for (int i = 0; i < 2; ++i) {
    CommandOutput deleted = bed.cnitool("del");
    EXPECT_EQ(deleted.exitCode, 0) << "del #" << i + 1 << ": " << deleted.err << deleted.out;
  }
  ASSERT_EQ(bed.agent.detaches.size(), 2u);
  EXPECT_EQ(bed.agent.detaches[0].container_id(), expectedId);
  EXPECT_EQ(bed.agent.detaches[0].pod_namespace(), "shop");
  EXPECT_EQ(bed.agent.detaches[0].pod_name(), "web-0");
  EXPECT_FALSE(bed.host().ifindex(attach.host_ifname()).ok()) << "bridge's DEL removed the veth";
}

TEST(CniPlugin, AgentDownWithFailPolicyFailsTheAdd) {
  ASSERT_FALSE(testBedToolsDir().empty());
  CniBed bed("fail");
  CommandOutput added = bed.cnitool("add");
  EXPECT_NE(added.exitCode, 0);
  EXPECT_TRUE(contains(added.err, "bpfchain agent unavailable at " + bed.socket())) << added.err;
  // The runtime cleans up a failed ADD with DEL, which succeeds with the agent still down.
  CommandOutput deleted = bed.cnitool("del");
  EXPECT_EQ(deleted.exitCode, 0) << deleted.err;
  EXPECT_TRUE(contains(readFile(bed.logFile()), "DEL container=")) << readFile(bed.logFile());
}

TEST(CniPlugin, AgentDownWithIgnorePolicyLetsThePodStart) {
  ASSERT_FALSE(testBedToolsDir().empty());
  CniBed bed("ignore");
  CommandOutput added = bed.cnitool("add");
  ASSERT_EQ(added.exitCode, 0) << added.err;
  EXPECT_TRUE(contains(added.out, "10.99.0.")) << added.out;
  std::string log = readFile(bed.logFile());
  EXPECT_TRUE(contains(log, "result=ignored failurePolicy=ignore")) << log;
  EXPECT_TRUE(contains(log, "agent unavailable: connect to " + bed.socket() +
                                ": No such file or directory"))
      << log;
  EXPECT_EQ(bed.cnitool("check").exitCode, 0);
  EXPECT_EQ(bed.cnitool("del").exitCode, 0);
}

TEST(CniPlugin, StatusAndGcThroughLibcni) {
  ASSERT_FALSE(testBedToolsDir().empty());
  CniBed bed;
  // STATUS and GC exist from spec 1.1.0, which Debian's bridge does not implement: a network
  // of bpfchain-cni alone.
  std::string only = R"({"cniVersion":"1.1.0","name":"solo-)" + bed.network() +
                     R"(","plugins":[{"type":"bpfchain-cni","socketPath":")" + bed.socket() +
                     R"(","logFile":")" + bed.logFile() + R"(","timeoutMs":500}]})";
  writeText(bed.confDir() + "/20-solo.conflist", only);
  std::string solo = "solo-" + bed.network();

  CommandOutput down = bed.cnitool("status", solo);
  EXPECT_NE(down.exitCode, 0);
  EXPECT_TRUE(contains(down.err, "plugin not available")) << down.err;

  bed.startAgent();
  CommandOutput up = bed.cnitool("status", solo);
  EXPECT_EQ(up.exitCode, 0) << up.err;
  EXPECT_EQ(bed.agent.statusCalls, 1);

  // cnitool's gc passes no list of valid attachments: nothing can be told stale, so the
  // plugin does not ask the agent to remove anything.
  CommandOutput gc = bed.cnitool("gc", solo);
  EXPECT_EQ(gc.exitCode, 0) << gc.err;
  EXPECT_TRUE(bed.agent.gcs.empty());
  EXPECT_TRUE(contains(readFile(bed.logFile()), "nothing to collect"));
}

// --- the binary, directly ------------------------------------------------------------------

TEST(CniPlugin, PrevResultIsPrintedByteForByte) {
  CniBed bed;
  bed.makeVeth();
  bed.startAgent();
  // Odd spacing, escapes, number spellings, key order and unknown keys: all must survive.
  std::string prev = "{ \"cniVersion\" : \"1.0.0\",\n  \"interfaces\": [\n"
                     "    {\"name\": \"vethhost\", \"mac\": \"02:00:00:00:00:0a\"},\n"
                     "    {\"sandbox\": \"" +
                     bed.pod().path() +
                     "\", \"name\": \"eth0\"}],\n"
                     "  \"ips\": [{\"interface\": 1, \"address\": \"10.98.0.2/24\"}],\n"
                     "  \"x-vendor\": {\"n\": 1.50, \"e\": 1E+3, \"z\": -0, \"s\": "
                     "\"caf\\u00e9 \\ud83d\\ude00 \\/ \\\"q\\\" \xc3\xa9\", \"a\": [], "
                     "\"o\": {}, \"t\": true, \"f\": false, \"null\": null},\n"
                     "  \"dns\" : { }\t}";
  PluginRun run = bed.plugin(bed.addEnv(), bed.pluginConfig("", prev));
  ASSERT_EQ(run.exitCode, 0) << run.out << run.err;
  EXPECT_EQ(run.out, prev);
  ASSERT_EQ(bed.agent.attaches.size(), 1u);
  EXPECT_EQ(bed.agent.attaches[0].host_ifname(), "vethhost");
  EXPECT_EQ(bed.agent.attaches[0].host_ifindex(), *bed.host().ifindex("vethhost"));
  EXPECT_EQ(bed.agent.attaches[0].container_id(), bed.containerId);
}

TEST(CniPlugin, HostInterfaceFallsBackToTheVethPeer) {
  CniBed bed;
  bed.makeVeth();
  bed.startAgent();
  // A prevResult with no host-side interface listed (an IPAM-only result, say).
  std::string prev = R"({"cniVersion":"1.0.0","ips":[{"address":"10.98.0.2/24"}]})";
  PluginRun run = bed.plugin(bed.addEnv(), bed.pluginConfig("", prev));
  ASSERT_EQ(run.exitCode, 0) << run.out;
  ASSERT_EQ(bed.agent.attaches.size(), 1u);
  EXPECT_EQ(bed.agent.attaches[0].host_ifname(), "vethhost");
  EXPECT_EQ(bed.agent.attaches[0].host_ifindex(), *bed.host().ifindex("vethhost"));

  // Two sandbox-less entries (bridge lists its bridge too): the veth among them is taken.
  ASSERT_TRUE(bed.host().ip({"link", "add", "br-x", "type", "bridge"}).ok());
  prev = R"({"cniVersion":"1.0.0","interfaces":[{"name":"br-x"},{"name":"vethhost"},)"
         R"({"name":"eth0","sandbox":")" +
         bed.pod().path() + R"("}]})";
  run = bed.plugin(bed.addEnv(), bed.pluginConfig("", prev));
  ASSERT_EQ(run.exitCode, 0) << run.out;
  EXPECT_EQ(bed.agent.attaches.back().host_ifname(), "vethhost");

  // A pod interface with no host-side peer at all: 101, naming what was tried.
  auto env = bed.addEnv();
  env["CNI_IFNAME"] = "lo";
  run = bed.plugin(env, bed.pluginConfig("", R"({"cniVersion":"1.0.0"})"));
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_EQ(codeOf(run), 101) << run.out;
  EXPECT_TRUE(contains(msgOf(run), "cannot find the host-side interface of lo")) << run.out;
  EXPECT_EQ(bed.agent.attaches.size(), 2u);
}

TEST(CniPlugin, AgentDownFailPolicyIsTryAgainLater) {
  CniBed bed;
  bed.makeVeth();
  std::string prev = R"({"cniVersion":"1.0.0","interfaces":[{"name":"vethhost"}]})";
  PluginRun run = bed.plugin(bed.addEnv(), bed.pluginConfig("", prev));
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_EQ(codeOf(run), 11) << run.out;
  EXPECT_TRUE(contains(msgOf(run), "bpfchain agent unavailable at " + bed.socket() +
                                       ": connect to " + bed.socket() +
                                       ": No such file or directory"))
      << run.out;
  const json::Value* version = run.json.find("cniVersion");
  ASSERT_NE(version, nullptr);
  EXPECT_EQ(version->text(), "1.0.0");
  EXPECT_TRUE(contains(readFile(bed.logFile()), "result=error code=11"));

  // A socket file whose agent is gone: refused, same code.
  makeStaleSocket(bed.socket());
  run = bed.plugin(bed.addEnv(), bed.pluginConfig("", prev));
  EXPECT_EQ(codeOf(run), 11) << run.out;

  // CHECK under fail policy is also 11; DEL succeeds.
  run = bed.plugin(bed.addEnv("CHECK"), bed.pluginConfig("", prev));
  EXPECT_EQ(codeOf(run), 11) << run.out;
  run = bed.plugin(bed.addEnv("DEL"), bed.pluginConfig("", prev));
  EXPECT_EQ(run.exitCode, 0) << run.out;
  EXPECT_EQ(run.out, "");
}

TEST(CniPlugin, AgentRefusalIsAPluginError) {
  CniBed bed;
  bed.makeVeth();
  bed.agent.attachReason = "VerifierRejected";
  bed.startAgent();
  std::string prev = R"({"cniVersion":"1.0.0","interfaces":[{"name":"vethhost"}]})";
  // Not "unreachable": even the ignore policy does not hide an agent's refusal.
  PluginRun run = bed.plugin(bed.addEnv(), bed.pluginConfig(R"(,"failurePolicy":"ignore")", prev));
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_EQ(codeOf(run), 100) << run.out;
  EXPECT_TRUE(contains(msgOf(run), "verifier rejected edge-protect")) << run.out;
  const json::Value* details = run.json.find("details");
  ASSERT_NE(details, nullptr);
  EXPECT_EQ(details->text(), "VerifierRejected");
}

TEST(CniPlugin, DelIsIdempotent) {
  CniBed bed;
  bed.startAgent();
  std::string prev = R"({"cniVersion":"1.0.0","interfaces":[{"name":"gone"}]})";
  // Never attached, netns gone (CNI_NETNS unset), no prevResult: all success.
  auto env = bed.addEnv("DEL");
  env.erase("CNI_NETNS");
  for (const auto& config : {bed.pluginConfig("", prev), bed.pluginConfig("", "")}) {
    PluginRun run = bed.plugin(env, config);
    EXPECT_EQ(run.exitCode, 0) << run.out;
    EXPECT_EQ(run.out, "");
  }
  env["CNI_NETNS"] = "/run/netns/does-not-exist";
  EXPECT_EQ(bed.plugin(env, bed.pluginConfig("", prev)).exitCode, 0);
  EXPECT_EQ(bed.agent.detaches.size(), 3u);
  // Agent restarted (down for now): still success.
  bed.stopAgent();
  EXPECT_EQ(bed.plugin(env, bed.pluginConfig("", prev)).exitCode, 0);
}

TEST(CniPlugin, MalformedInputIsRefusedWithTheSpecsCodes) {
  CniBed bed;
  bed.startAgent();
  std::string prev = R"({"cniVersion":"1.0.0"})";

  PluginRun garbage = bed.plugin(bed.addEnv(), "{\"cniVersion\": \"1.0.0\",, }");
  EXPECT_EQ(garbage.exitCode, 1);
  EXPECT_EQ(codeOf(garbage), 6) << garbage.out;
  EXPECT_TRUE(contains(msgOf(garbage), "line 1, column 24")) << garbage.out;
  EXPECT_TRUE(contains(msgOf(garbage), "expected a string key")) << garbage.out;

  PluginRun empty = bed.plugin(bed.addEnv(), "");
  EXPECT_EQ(codeOf(empty), 6) << empty.out;
  EXPECT_TRUE(contains(msgOf(empty), "empty document")) << empty.out;

  PluginRun notObject = bed.plugin(bed.addEnv(), "[1,2]");
  EXPECT_EQ(codeOf(notObject), 7) << notObject.out;

  PluginRun policy =
      bed.plugin(bed.addEnv(), bed.pluginConfig(R"(,"failurePolicy":"sometimes")", prev));
  EXPECT_EQ(codeOf(policy), 7) << policy.out;
  EXPECT_TRUE(contains(msgOf(policy), "failurePolicy")) << policy.out;

  auto bare = [&](const std::string& keys) {
    return R"({"cniVersion":"1.0.0","name":"n","type":"bpfchain-cni",)" + keys +
           R"(,"prevResult":)" + prev + "}";
  };
  PluginRun timeout = bed.plugin(bed.addEnv(), bare(R"("timeoutMs":"2s")"));
  EXPECT_EQ(codeOf(timeout), 7) << timeout.out;
  EXPECT_TRUE(contains(msgOf(timeout), "timeoutMs")) << timeout.out;

  PluginRun zero = bed.plugin(bed.addEnv(), bare(R"("timeoutMs":0)"));
  EXPECT_EQ(codeOf(zero), 7) << zero.out;

  PluginRun relative = bed.plugin(bed.addEnv(), bare(R"("logFile":"cni.log")"));
  EXPECT_EQ(codeOf(relative), 7) << relative.out;

  PluginRun unchained = bed.plugin(bed.addEnv(), bed.pluginConfig("", ""));
  EXPECT_EQ(codeOf(unchained), 7) << unchained.out;
  EXPECT_TRUE(contains(msgOf(unchained), "prevResult")) << unchained.out;

  PluginRun old = bed.plugin(bed.addEnv(), bed.pluginConfig("", prev, "0.3.1"));
  EXPECT_EQ(old.exitCode, 1);
  EXPECT_EQ(codeOf(old), 1) << old.out;
  EXPECT_TRUE(contains(msgOf(old), "incompatible CNI versions")) << old.out;
  const json::Value* details = old.json.find("details");
  ASSERT_NE(details, nullptr);
  EXPECT_TRUE(contains(details->text(), "0.3.1")) << old.out;

  PluginRun future = bed.plugin(bed.addEnv(), bed.pluginConfig("", prev, "2.0.0"));
  EXPECT_EQ(codeOf(future), 1) << future.out;

  EXPECT_TRUE(bed.agent.attaches.empty());
}

TEST(CniPlugin, MissingEnvironmentIsNamed) {
  CniBed bed;
  std::string config = bed.pluginConfig("", R"({"cniVersion":"1.0.0"})");
  for (const std::string& missing :
       std::vector<std::string>{"CNI_COMMAND", "CNI_CONTAINERID", "CNI_IFNAME", "CNI_NETNS"}) {
    auto env = bed.addEnv();
    env.erase(missing);
    PluginRun run = bed.plugin(env, config);
    EXPECT_EQ(run.exitCode, 1) << missing;
    EXPECT_EQ(codeOf(run), 4) << missing << ": " << run.out;
    EXPECT_TRUE(contains(msgOf(run), missing)) << run.out;
  }
  auto env = bed.addEnv();
  env["CNI_CONTAINERID"] = "-bad id";
  PluginRun badId = bed.plugin(env, config);
  EXPECT_EQ(codeOf(badId), 4) << badId.out;
  EXPECT_TRUE(contains(msgOf(badId), "CNI_CONTAINERID")) << badId.out;

  env = bed.addEnv();
  env["CNI_COMMAND"] = "FROB";
  PluginRun unknown = bed.plugin(env, config);
  EXPECT_EQ(codeOf(unknown), 4) << unknown.out;
  EXPECT_TRUE(contains(msgOf(unknown), "FROB")) << unknown.out;

  // DEL needs no netns.
  env = bed.addEnv("DEL");
  env.erase("CNI_NETNS");
  env.erase("CNI_IFNAME");
  PluginRun del = bed.plugin(env, config);
  EXPECT_EQ(codeOf(del), 4);
  EXPECT_TRUE(contains(msgOf(del), "CNI_IFNAME")) << del.out;
  EXPECT_FALSE(contains(msgOf(del), "CNI_NETNS")) << del.out;
}

TEST(CniPlugin, VersionListsWhatIsImplemented) {
  CniBed bed;
  PluginRun run = bed.plugin({{"CNI_COMMAND", "VERSION"}}, R"({"cniVersion":"1.0.0"})");
  ASSERT_EQ(run.exitCode, 0);
  EXPECT_EQ(run.out, R"({"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0","1.1.0"]})");
  run = bed.plugin({{"CNI_COMMAND", "VERSION"}}, "");
  EXPECT_EQ(run.out, R"({"cniVersion":"1.1.0","supportedVersions":["0.4.0","1.0.0","1.1.0"]})");
}

TEST(CniPlugin, StatusFollowsTheFailurePolicy) {
  CniBed bed;
  std::map<std::string, std::string> env{{"CNI_COMMAND", "STATUS"}};
  PluginRun down = bed.plugin(env, bed.pluginConfig("", "", "1.1.0"));
  EXPECT_EQ(down.exitCode, 1);
  EXPECT_EQ(codeOf(down), 50) << down.out;
  EXPECT_TRUE(contains(msgOf(down), "plugin not available")) << down.out;

  PluginRun ignored =
      bed.plugin(env, bed.pluginConfig(R"(,"failurePolicy":"ignore")", "", "1.1.0"));
  EXPECT_EQ(ignored.exitCode, 0) << ignored.out;

  bed.startAgent();
  EXPECT_EQ(bed.plugin(env, bed.pluginConfig("", "", "1.1.0")).exitCode, 0);
  bed.agent.ready = false;
  PluginRun notReady = bed.plugin(env, bed.pluginConfig("", "", "1.1.0"));
  EXPECT_EQ(codeOf(notReady), 50) << notReady.out;
  EXPECT_TRUE(contains(msgOf(notReady), "node-a is not ready")) << notReady.out;

  PluginRun old = bed.plugin(env, bed.pluginConfig("", "", "1.0.0"));
  EXPECT_EQ(codeOf(old), 1) << old.out;
}

TEST(CniPlugin, GcSendsTheNetworksValidAttachments) {
  CniBed bed;
  bed.startAgent();
  std::map<std::string, std::string> env{{"CNI_COMMAND", "GC"}, {"CNI_PATH", kSystemPlugins}};
  std::string list = R"(,"cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"},)"
                     R"({"containerID":"c2","ifname":"eth0"},{"containerID":"c1","ifname":"net1"}])"
                     R"(,"cni.dev/attachments":[{"containerID":"c1","ifname":"eth0"}])";
  PluginRun run = bed.plugin(env, bed.pluginConfig(list, "", "1.1.0"));
  ASSERT_EQ(run.exitCode, 0) << run.out;
  EXPECT_EQ(run.out, "");
  ASSERT_EQ(bed.agent.gcs.size(), 1u);
  std::vector<std::string> ids(bed.agent.gcs[0].valid_container_ids().begin(),
                               bed.agent.gcs[0].valid_container_ids().end());
  EXPECT_EQ(ids, (std::vector<std::string>{"c1", "c2"}));
  // GC is per network: the agent gets the network's name and its (container, ifname) pairs.
  EXPECT_FALSE(bed.agent.gcs[0].network().empty());
  std::vector<std::string> attachments;
  for (const auto& a : bed.agent.gcs[0].valid_attachments())
    attachments.push_back(a.container_id() + "/" + a.pod_ifname());
  EXPECT_EQ(attachments, (std::vector<std::string>{"c1/eth0", "c1/net1", "c2/eth0"}));
  EXPECT_TRUE(contains(readFile(bed.logFile()), "GC result=ok valid=3 removed=stale-1"));

  // An empty list is a request too: every attachment is stale.
  run = bed.plugin(env, bed.pluginConfig(R"(,"cni.dev/valid-attachments":[])", "", "1.1.0"));
  ASSERT_EQ(run.exitCode, 0) << run.out;
  ASSERT_EQ(bed.agent.gcs.size(), 2u);
  EXPECT_EQ(bed.agent.gcs[1].valid_container_ids_size(), 0);

  PluginRun bad = bed.plugin(
      env, bed.pluginConfig(R"(,"cni.dev/valid-attachments":[{"ifname":"x"}])", "", "1.1.0"));
  EXPECT_EQ(codeOf(bad), 7) << bad.out;
  PluginRun noIfname = bed.plugin(
      env, bed.pluginConfig(R"(,"cni.dev/valid-attachments":[{"containerID":"c1"}])", "", "1.1.0"));
  EXPECT_EQ(codeOf(noIfname), 7) << noIfname.out;
  EXPECT_TRUE(contains(msgOf(noIfname), "no ifname")) << noIfname.out;

  bed.stopAgent();
  PluginRun down = bed.plugin(env, bed.pluginConfig(list, "", "1.1.0"));
  EXPECT_EQ(codeOf(down), 11) << down.out;
}

TEST(CniPlugin, CniArgsAreParsedLeniently) {
  auto args = parseCniArgs("IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;;bogus;K8S_POD_NAME=a=b;=x");
  EXPECT_EQ(args["K8S_POD_NAMESPACE"], "ns");
  EXPECT_EQ(args["K8S_POD_NAME"], "a=b");
  EXPECT_EQ(args.count("bogus"), 0u);
  EXPECT_EQ(args.size(), 3u);
  EXPECT_TRUE(parseCniArgs("").empty());
}

TEST(CniPlugin, MissingPodArgsLeaveThePodFieldsEmpty) {
  CniBed bed;
  bed.makeVeth();
  bed.startAgent();
  auto env = bed.addEnv();
  env.erase("CNI_ARGS");
  PluginRun run = bed.plugin(
      env, bed.pluginConfig("", R"({"cniVersion":"1.0.0","interfaces":[{"name":"vethhost"}]})"));
  ASSERT_EQ(run.exitCode, 0) << run.out;
  ASSERT_EQ(bed.agent.attaches.size(), 1u);
  EXPECT_EQ(bed.agent.attaches[0].pod_namespace(), "");
  EXPECT_EQ(bed.agent.attaches[0].pod_name(), "");
  EXPECT_TRUE(contains(readFile(bed.logFile()), "pod=- host=vethhost"));
}

// --- JSON ----------------------------------------------------------------------------------

TEST(CniJson, RefusesWhatIsNotStrictJson) {
  for (const char* bad : {"",
                          "  ",
                          "{",
                          "{\"a\":1,}",
                          "[1,]",
                          "{\"a\" 1}",
                          "{'a':1}",
                          "01",
                          "1.",
                          ".5",
                          "-",
                          "1e",
                          "+1",
                          "tru",
                          "nul",
                          "\"abc",
                          "\"a\\x\"",
                          "\"\\u12\"",
                          "\"\\ud800\"",
                          "\"\\udc00\"",
                          "\"\x01\"",
                          "\"\xff\"",
                          "\"\xc0\xaf\"",
                          "\"\xed\xa0\x80\"",
                          "{\"a\":1,\"a\":2}",
                          "1 2",
                          "{} x",
                          "/* c */ {}",
                          "NaN",
                          "[1 2]"}) {
    auto parsed = json::parse(bad);
    EXPECT_FALSE(parsed.ok()) << "accepted: " << bad;
  }
  std::string deep(200, '[');
  deep += std::string(200, ']');
  auto parsed = json::parse(deep);
  ASSERT_FALSE(parsed.ok());
  EXPECT_TRUE(contains(parsed.error().message(), "nesting")) << parsed.error().message();
}

TEST(CniJson, DecodesAndKeepsSpans) {
  std::string text = R"( {"s":"a\"\\\/\b\f\n\r\t\u0041\u00e9\ud83d\ude00","n":[0,-1.5e-3,1E+2],)"
                     R"("b":[true,false,null],"o":{}} )";
  auto doc = json::parse(text);
  ASSERT_TRUE(doc.ok()) << doc.error().message();
  EXPECT_EQ(doc->find("s")->text(), "a\"\\/\b\f\n\r\tA\xc3\xa9\xf0\x9f\x98\x80");
  const auto& numbers = doc->find("n")->items();
  ASSERT_EQ(numbers.size(), 3u);
  EXPECT_EQ(numbers[1].text(), "-1.5e-3");
  EXPECT_EQ(numbers[2].text(), "1E+2");
  const json::Value* o = doc->find("o");
  EXPECT_EQ(text.substr(o->begin(), o->end() - o->begin()), "{}");
  const json::Value* b = doc->find("b");
  EXPECT_EQ(text.substr(b->begin(), b->end() - b->begin()), "[true,false,null]");
  EXPECT_EQ(doc->begin(), 1u);
  EXPECT_EQ(doc->end(), text.size() - 1);
}

TEST(CniJson, SerializeRoundTrips) {
  std::string compact =
      R"({"cniVersion":"1.0.0","plugins":[{"type":"bridge","n":1.50,"s":"tab\there \"q\" \u0001 é"},)"
      R"({"a":[],"o":{},"z":null}],"t":true})";
  auto doc = json::parse(compact);
  ASSERT_TRUE(doc.ok()) << doc.error().message();
  std::string again = json::serialize(*doc);
  EXPECT_EQ(again, compact); // already canonical: identical
  auto pretty = json::parse(json::serialize(*doc, 2));
  ASSERT_TRUE(pretty.ok());
  EXPECT_TRUE(*pretty == *doc);
  EXPECT_EQ(json::serialize(*pretty), compact);
}

// --- install / uninstall -------------------------------------------------------------------

struct InstallBed {
  TempDir dir = CniBed::must(TempDir::create("install"));
  std::string bin = dir.path() + "/opt/cni/bin";
  std::string conf = dir.path() + "/etc/cni/net.d";
  InstallBed() { std::filesystem::create_directories(conf); }

  CommandOutput run(std::vector<std::string> args) {
    args.insert(args.begin(), kPluginBinary);
    auto out = runCommand(args);
    if (!out)
      throw std::runtime_error(out.error().message());
    return *out;
  }
  CommandOutput install(std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"install", "--bin-dir", bin, "--conf-dir", conf};
    args.insert(args.end(), extra.begin(), extra.end());
    return run(args);
  }
};

const char* kBridgeList = R"({
  "cniVersion": "1.0.0",
  "name": "k8s-pod-network",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
)";

std::vector<std::string> pluginTypes(const std::string& path) {
  auto doc = json::parse(readFile(path));
  std::vector<std::string> types;
  if (!doc)
    return types;
  for (const auto& plugin : doc->find("plugins")->items())
    types.push_back(plugin.find("type")->text());
  return types;
}

TEST(CniInstall, AppendsToTheFirstConflistOnceAndCopiesTheBinary) {
  InstallBed bed;
  writeText(bed.conf + "/10-bridge.conflist", kBridgeList);
  writeText(bed.conf + "/20-other.conflist", kBridgeList);
  writeText(bed.conf + "/05-notes.txt", "not a configuration");

  CommandOutput first =
      bed.install({"--socket", "/run/bpfchain/agent.sock", "--failure-policy", "ignore"});
  ASSERT_EQ(first.exitCode, 0) << first.err;
  EXPECT_TRUE(contains(first.out, "installed " + bed.bin + "/bpfchain-cni")) << first.out;
  EXPECT_TRUE(contains(first.out, "configured " + bed.conf + "/10-bridge.conflist")) << first.out;
  EXPECT_EQ(pluginTypes(bed.conf + "/10-bridge.conflist"),
            (std::vector<std::string>{"bridge", "portmap", "bpfchain-cni"}));
  EXPECT_EQ(readFile(bed.conf + "/20-other.conflist"), kBridgeList);

  auto doc = json::parse(readFile(bed.conf + "/10-bridge.conflist"));
  ASSERT_TRUE(doc.ok());
  const json::Value& entry = doc->find("plugins")->items().back();
  EXPECT_EQ(entry.find("socketPath")->text(), "/run/bpfchain/agent.sock");
  EXPECT_EQ(entry.find("failurePolicy")->text(), "ignore");
  // Everything else is as it was.
  auto original = json::parse(kBridgeList);
  doc->find("plugins")->items().pop_back();
  EXPECT_TRUE(*doc == *original);

  std::string binary = bed.bin + "/bpfchain-cni";
  EXPECT_EQ(readFile(binary), readFile(kPluginBinary));
  struct stat st {};
  ASSERT_EQ(::stat(binary.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);

  // Twice changes nothing: same bytes, same files (inodes), nothing left behind.
  struct stat confBefore {};
  struct stat binBefore {};
  ASSERT_EQ(::stat((bed.conf + "/10-bridge.conflist").c_str(), &confBefore), 0);
  ASSERT_EQ(::stat(binary.c_str(), &binBefore), 0);
  std::string before = readFile(bed.conf + "/10-bridge.conflist");
  CommandOutput second =
      bed.install({"--socket", "/run/bpfchain/agent.sock", "--failure-policy", "ignore"});
  ASSERT_EQ(second.exitCode, 0) << second.err;
  EXPECT_TRUE(contains(second.out, "unchanged " + bed.bin)) << second.out;
  EXPECT_TRUE(contains(second.out, "unchanged " + bed.conf + "/10-bridge.conflist")) << second.out;
  EXPECT_EQ(readFile(bed.conf + "/10-bridge.conflist"), before);
  struct stat confAfter {};
  struct stat binAfter {};
  ASSERT_EQ(::stat((bed.conf + "/10-bridge.conflist").c_str(), &confAfter), 0);
  ASSERT_EQ(::stat(binary.c_str(), &binAfter), 0);
  EXPECT_EQ(confAfter.st_ino, confBefore.st_ino);
  EXPECT_EQ(binAfter.st_ino, binBefore.st_ino);
  size_t files = std::distance(std::filesystem::directory_iterator(bed.conf),
                               std::filesystem::directory_iterator());
  EXPECT_EQ(files, 3u);

  // A changed option updates the entry in place; it is never duplicated.
  CommandOutput third = bed.install({"--failure-policy", "fail"});
  ASSERT_EQ(third.exitCode, 0) << third.err;
  EXPECT_EQ(pluginTypes(bed.conf + "/10-bridge.conflist"),
            (std::vector<std::string>{"bridge", "portmap", "bpfchain-cni"}));
  doc = json::parse(readFile(bed.conf + "/10-bridge.conflist"));
  EXPECT_EQ(doc->find("plugins")->items().back().find("failurePolicy")->text(), "fail");
  EXPECT_EQ(doc->find("plugins")->items().back().find("socketPath")->text(),
            "/run/bpfchain/agent.sock");

  CommandOutput removed = bed.run({"uninstall", "--bin-dir", bed.bin, "--conf-dir", bed.conf});
  ASSERT_EQ(removed.exitCode, 0) << removed.err;
  EXPECT_EQ(pluginTypes(bed.conf + "/10-bridge.conflist"),
            (std::vector<std::string>{"bridge", "portmap"}));
  EXPECT_NE(::access(binary.c_str(), F_OK), 0);
  auto after = json::parse(readFile(bed.conf + "/10-bridge.conflist"));
  EXPECT_TRUE(*after == *original);
  CommandOutput again = bed.run({"uninstall", "--bin-dir", bed.bin, "--conf-dir", bed.conf});
  EXPECT_EQ(again.exitCode, 0) << again.err;
}

TEST(CniInstall, ConvertsASinglePluginConf) {
  InstallBed bed;
  writeText(bed.conf + "/10-bridge.conf",
            R"({"cniVersion":"0.4.0","name":"net","type":"bridge","bridge":"cni0"})");
  writeText(bed.conf + "/99-loopback.conflist", kBridgeList);
  CommandOutput out = bed.install();
  ASSERT_EQ(out.exitCode, 0) << out.err;
  EXPECT_NE(::access((bed.conf + "/10-bridge.conf").c_str(), F_OK), 0);
  auto doc = json::parse(readFile(bed.conf + "/10-bridge.conflist"));
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(doc->find("cniVersion")->text(), "0.4.0");
  EXPECT_EQ(doc->find("name")->text(), "net");
  EXPECT_EQ(pluginTypes(bed.conf + "/10-bridge.conflist"),
            (std::vector<std::string>{"bridge", "bpfchain-cni"}));
  EXPECT_EQ(doc->find("plugins")->items()[0].find("cniVersion"), nullptr);
}

TEST(CniInstall, RefusesWhatItCannotChainInto) {
  InstallBed bed;
  CommandOutput none = bed.install();
  EXPECT_EQ(none.exitCode, 1);
  EXPECT_TRUE(contains(none.err, "no network configuration in " + bed.conf)) << none.err;

  writeText(bed.conf + "/10-old.conflist",
            R"({"cniVersion":"0.3.1","name":"old","plugins":[{"type":"bridge"}]})");
  CommandOutput old = bed.install();
  EXPECT_EQ(old.exitCode, 1);
  EXPECT_TRUE(contains(old.err, "0.3.1")) << old.err;

  writeText(bed.conf + "/05-broken.conflist", R"({"cniVersion":"1.0.0",)");
  CommandOutput broken = bed.install();
  EXPECT_EQ(broken.exitCode, 1);
  EXPECT_TRUE(contains(broken.err, "05-broken.conflist")) << broken.err;

  EXPECT_EQ(bed.install({"--failure-policy", "maybe"}).exitCode, 1);
  EXPECT_EQ(bed.run({"install", "--conf-dir", bed.conf}).exitCode, 2);
}

TEST(CniInstall, TheExampleConflistIsValid) {
  std::string path = kSourceDir + "/examples/cni/10-bridge-bpfchain.conflist";
  auto doc = json::parse(readFile(path));
  ASSERT_TRUE(doc.ok()) << doc.error().message();
  EXPECT_EQ(pluginTypes(path), (std::vector<std::string>{"bridge", "portmap", "bpfchain-cni"}));
  EXPECT_EQ(doc->find("cniVersion")->text(), "1.0.0");
}

} // namespace
} // namespace bpfchain::cni
