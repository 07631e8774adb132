// Pod ADD latency through bpfchain-cni (DESIGN.md section 9: p99 <= 5 ms added over the bridge
// plugin alone, chain already loaded). Three networks in one run: bridge + host-local; the same
// followed by bpfchain-cni asking a standalone bpfchain-agent; and, as the floor of chaining any
// plugin (libcni runs one more binary), the same followed by Debian's `tuning` plugin with
// nothing to change. Pods take the networks in turn so that all see the same machine state. Each
// sample is the wall time of one `cnitool add` (the runtime's view: every plugin exec included).
// Pods stay until all are added, as on a node that fills up; with --churn each pod is deleted right
// after its ADD, so every ADD is the first attachment of the chain's root anywhere (the kernel's
// costliest case).
//   sudo build/bin/bpfchain-bench-cni-add [--pods 200] [--hook xdp|tc-ingress] [--churn]
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "command_line.h"
#include "harness/agent_process.h"
#include "harness/bpffs.h"
#include "harness/netns.h"
#include "harness/resources.h"
#include "statistics.h"

using namespace bpfchain;
using namespace bpfchain::testing;
using bench::percentile;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::string conflist(const std::string& name, const std::string& bridge, const std::string& subnet,
                     const std::string& ipam, const std::string& extra) {
  return R"({"cniVersion": "1.0.0", "name": ")" + name + R"(", "plugins": [
  {"type": "bridge", "bridge": ")" +
         bridge + R"(", "isGateway": true,
   "ipam": {"type": "host-local", "dataDir": ")" +
         ipam + R"(",
            "ranges": [[{"subnet": ")" +
         subnet + R"("}]]}})" + extra + "]}";
}

int fail(const std::string& what) {
  std::cerr << "bpfchain-bench-cni-add: " << what << "\n";
  return 1;
}

} // namespace

int main(int argc, char** argv) {
  int pods = 200;
  std::string hook = "xdp";
  bool churn = false;
  const bench::CommandLine commandLine{
      "bpfchain-bench-cni-add",
      "Pod ADD latency: bridge alone against bridge + bpfchain-cni with a real agent (root)."};
  commandLine.parse(argc, argv, [&](CLI::App& app) {
    app.add_option("--pods", pods, "pods to add")->capture_default_str();
    app.add_option("--hook", hook, "the chain's hook")
        ->check(CLI::IsMember({"xdp", "tc-ingress"}))
        ->capture_default_str();
    app.add_flag("--churn", churn, "also delete and re-add pods while measuring");
  });
  bool xdp = hook == "xdp";
  auto tools = checkCommand({std::string(BPFCHAIN_SOURCE_DIR) + "/tools/envtest/build.sh"});
  if (!tools)
    return fail(tools.error().message());
  std::string cnitool = tools->out.substr(0, tools->out.find_last_not_of(" \n") + 1) + "/cnitool";
  auto node = TestNetns::create();
  auto bpffs = TestBpffs::mount();
  auto dir = TempDir::create("cnibench");
  if (!node || !bpffs || !dir)
    return fail("set-up failed");
  std::string d = dir->path();
  fs::create_directories(d + "/net.d");
  auto filter =
      buildPackage(d, "portfilter", "portfilter", xdp ? "portfilter_xdp" : "portfilter_tc", hook,
                   xdp ? "portfilter_xdp_next" : "portfilter_tc_next");
  if (!filter)
    return fail(filter.error().message());
  std::ofstream(d + "/node.yaml") << "chains:\n- name: pod-guard\n  hook: " << hook
                                  << "\n  pods: {}\n"
                                  << "  programs:\n  - name: filter\n    package: {url: \""
                                  << filter->url << "\", sha256: \"" << filter->sha256 << "\"}\n";
  AgentOptions o = AgentOptions::standalone(d + "/node.yaml", node->path(), bpffs->path(), d);
  auto agent = AgentProcess::start(o, d + "/agent.log");
  if (!agent)
    return fail(agent.error().message());
  if (!eventually([&] { return (*agent)->get("/readyz").ok(); }))
    return fail("agent not ready: " + (*agent)->log());

  std::string bridgeNet = uniqueResourceName("b"), chainNet = uniqueResourceName("c"),
              tuningNet = uniqueResourceName("t");
  std::ofstream(d + "/net.d/10-bridge.conflist")
      << conflist(bridgeNet, "benchbr0", "10.97.0.0/16", d + "/ipam-b", "");
  std::ofstream(d + "/net.d/20-chain.conflist")
      << conflist(chainNet, "benchbr1", "10.98.0.0/16", d + "/ipam-c",
                  R"(, {"type": "bpfchain-cni", "socketPath": ")" + o.socket +
                      R"(", "logFile": ")" + d + R"(/cni.log"})");
  std::ofstream(d + "/net.d/30-tuning.conflist")
      << conflist(tuningNet, "benchbr2", "10.99.0.0/16", d + "/ipam-t", R"(, {"type": "tuning"})");

  auto run = [&](const std::string& command, const std::string& net, const TestNetns& pod) {
    return runCommand({"ip", "netns", "exec", node->name(), "env", "NETCONFPATH=" + d + "/net.d",
                       "CNI_PATH=" + std::string(BPFCHAIN_BIN_DIR) + ":/usr/lib/cni",
                       "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=p",
                       "CNI_IFNAME=eth0", cnitool, command, net, pod.path()});
  };
  std::vector<double> bridgeMs, chainMs, tuningMs;
  std::vector<std::pair<std::string, TestNetns>> live; // network, pod
  for (int i = 0; i < 3 * pods; ++i) {
    auto pod = TestNetns::create();
    if (!pod)
      return fail(pod.error().message());
    const std::string& net = *std::array{&bridgeNet, &chainNet, &tuningNet}[i % 3];
    auto start = Clock::now();
    auto added = run("add", net, *pod);
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (!added || added->exitCode != 0)
      return fail("cnitool add: " + (added ? added->out + added->err : added.error().message()));
    std::array{&bridgeMs, &chainMs, &tuningMs}[i % 3]->push_back(ms);
    live.emplace_back(net, std::move(*pod));
    if (churn || i + 1 == 3 * pods) {
      for (const auto& [podNet, podNs] : live) {
        auto deleted = run("del", podNet, podNs);
        if (!deleted || deleted->exitCode != 0)
          return fail("cnitool del failed");
      }
      live.clear();
    }
  }
  (*agent)->process().stop();
  for (const char* sub : {"/var/lib/cni/results", "/var/lib/cni/gc"}) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(sub, ec))
      if (e.path().filename().string().starts_with(bridgeNet) ||
          e.path().filename().string().starts_with(chainNet) ||
          e.path().filename().string().starts_with(tuningNet))
        fs::remove_all(e.path(), ec);
  }
  std::printf("pod ADD wall time (cnitool add), %d pods per network, chain on %s, %s, ms\n", pods,
              hook.c_str(), churn ? "each pod deleted after its ADD" : "pods kept until the end");
  std::printf("| network | p50 | p99 | min | max |\n|---|---|---|---|---|\n");
  for (auto [name, v] : {std::pair{"bridge + host-local", &bridgeMs},
                         std::pair{"bridge + host-local + bpfchain-cni", &chainMs},
                         std::pair{"bridge + host-local + tuning (no-op)", &tuningMs}})
    std::printf("| %s | %.2f | %.2f | %.2f | %.2f |\n", name, percentile(*v, 0.5),
                percentile(*v, 0.99), *std::min_element(v->begin(), v->end()),
                *std::max_element(v->begin(), v->end()));
  std::printf("added by bpfchain-cni: p50 %.2f ms, p99 %.2f ms\n",
              percentile(chainMs, 0.5) - percentile(bridgeMs, 0.5),
              percentile(chainMs, 0.99) - percentile(bridgeMs, 0.99));
  std::printf("added by tuning (no-op): p50 %.2f ms, p99 %.2f ms\n",
              percentile(tuningMs, 0.5) - percentile(bridgeMs, 0.5),
              percentile(tuningMs, 0.99) - percentile(bridgeMs, 0.99));
  // The plugin logs each ADD's round trip to the agent (agentMs=): the agent's share.
  std::vector<double> agentMs;
  std::ifstream log(d + "/cni.log");
  for (std::string line; std::getline(log, line);) {
    auto at = line.find(" agentMs=");
    if (line.find(" ADD ") != std::string::npos && at != std::string::npos)
      agentMs.push_back(std::stod(line.substr(at + 9)));
  }
  if (!agentMs.empty())
    std::printf(
        "agent round trip in ADD (plugin log, %zu): p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
        agentMs.size(), percentile(agentMs, 0.5), percentile(agentMs, 0.99),
        *std::max_element(agentMs.begin(), agentMs.end()));
  return 0;
}
