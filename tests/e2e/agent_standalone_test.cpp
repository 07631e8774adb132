// bpfchain-agent standalone (--config) on a simulated node: a netns whose veth receives UDP
// traffic from another netns. The agent binary runs as users run it; the test reads what users
// read: the status file, /metrics, and what the traffic does.
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <signal.h>
#include <sstream>
#include <yaml-cpp/yaml.h>

#include "harness/agent_process.h"
#include "harness/bpffs.h"
#include "harness/http.h"
#include "harness/netns.h"
#include "harness/resources.h"
#include "harness/traffic.h"

namespace bpfchain::testing {
namespace {

namespace fs = std::filesystem;

// One program of a config, as YAML.
std::string program(const std::string& name, const BuiltPackage& p, const std::string& extra = "") {
  return "  - name: " + name + "\n    package: {url: \"" + p.url + "\", sha256: \"" + p.sha256 +
         "\"}\n" + extra;
}

class AgentStandalone : public ::testing::Test {
protected:
  void SetUp() override {
    auto hosts = twoHostsOnVeth();
    ASSERT_TRUE(hosts.ok()) << hosts.error().message();
    hosts_ = std::make_unique<TwoHosts>(std::move(*hosts));
    auto bpffs = TestBpffs::mount();
    ASSERT_TRUE(bpffs.ok()) << bpffs.error().message();
    bpffs_ = std::make_unique<TestBpffs>(std::move(*bpffs));
    auto dir = TempDir::create("agent");
    ASSERT_TRUE(dir.ok()) << dir.error().message();
    dir_ = std::make_unique<TempDir>(std::move(*dir));
    fs::create_directories(dir_->path() + "/packages");
    auto counter = buildPackage(dir_->path() + "/packages", "counter", "counter", "counter_xdp",
                                "xdp", "counter_xdp_next");
    ASSERT_TRUE(counter.ok()) << counter.error().message();
    counter_ = *counter;
    auto filter = buildPackage(dir_->path() + "/packages", "portfilter", "portfilter",
                               "portfilter_xdp", "xdp", "portfilter_xdp_next");
    ASSERT_TRUE(filter.ok()) << filter.error().message();
    portfilter_ = *filter;
  }

  void TearDown() override {
    if (agent_)
      agent_->process().stop();
    agent_.reset();
  }

  std::string configPath() const { return dir_->path() + "/node.yaml"; }
  std::string statusPath() const { return dir_->path() + "/state/status.yaml"; }

  // Replaces the config file the way editors and config management do: write, then rename.
  void writeConfig(const std::string& yaml) {
    std::string tmp = configPath() + ".tmp";
    std::ofstream(tmp) << yaml;
    fs::rename(tmp, configPath());
  }

  std::string chainConfig(const std::string& programs, const std::string& name = "edge") {
    return "chains:\n- name: " + name + "\n  hook: xdp\n  interfaces: {names: [veth-b]}\n" +
           "  programs:\n" + programs;
  }

  void startAgent(const std::vector<std::string>& extra = {}) {
    AgentOptions o = AgentOptions::standalone(configPath(), hosts_->receiver.path(), bpffs_->path(),
                                              dir_->path());
    o.extra = extra;
    auto agent =
        AgentProcess::start(o, dir_->path() + "/agent-" + std::to_string(++starts_) + ".log");
    ASSERT_TRUE(agent.ok()) << agent.error().message();
    agent_ = std::move(*agent);
  }

  YAML::Node chainStatus(const std::string& chain) {
    try {
      for (const auto& c : YAML::LoadFile(statusPath())["chains"])
        if (c["name"].as<std::string>() == chain)
          return c;
    } catch (const YAML::Exception&) {
    }
    return YAML::Node();
  }

  // Waits for the chain's phase (and reason, when given); fails the test with the status file.
  void waitFor(const std::string& chain, const std::string& phase, const std::string& reason = "") {
    bool reached = eventually([&] {
      YAML::Node s = chainStatus(chain);
      return s.IsMap() && s["phase"].as<std::string>() == phase &&
             (reason.empty() || (s["reason"] && s["reason"].as<std::string>() == reason));
    });
    ASSERT_TRUE(reached) << "chain " << chain << " never " << phase << " " << reason
                         << "; status:\n"
                         << readFile(statusPath()) << "\nlog:\n"
                         << agent_->log();
  }

  std::vector<int64_t> programIds(const std::string& chain) {
    std::vector<int64_t> ids;
    for (const auto& a : chainStatus(chain)["attachments"])
      for (const auto& id : a["programIDs"])
        ids.push_back(id.as<int64_t>());
    return ids;
  }

  double metric(const std::string& name, const std::vector<std::string>& labels) {
    auto text = agent_->get("/metrics");
    EXPECT_TRUE(text.ok()) << text.error().message();
    if (!text.ok())
      return -1;
    auto v = metricValue(*text, name, labels);
    EXPECT_TRUE(v.has_value()) << name << " not in:\n" << *text;
    return v.value_or(-1);
  }

  std::unique_ptr<UdpTraffic> traffic(uint16_t port) {
    auto t = UdpTraffic::create(hosts_->sender, hosts_->receiver, "10.77.0.2", port);
    EXPECT_TRUE(t.ok()) << t.error().message();
    return t.ok() ? std::move(*t) : nullptr;
  }

  std::unique_ptr<TwoHosts> hosts_;
  std::unique_ptr<TestBpffs> bpffs_;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<AgentProcess> agent_;
  BuiltPackage counter_, portfilter_;
  int starts_ = 0;
};

const std::string kCounterMonitor =
    "    monitorMaps: [{map: counter_stats, key: \"0\", aggregator: sum}]\n";
const std::string kBlock9999 =
    "    mapArgs: [{map: portfilter_ports, entries: [{key: \"9999\", value: \"1\"}]}]\n";

TEST_F(AgentStandalone, RunsTheConfigsChainAndExportsItsCounters) {
  writeConfig(chainConfig(program("filter", portfilter_, kBlock9999) +
                          program("count", counter_, kCounterMonitor)));
  startAgent();
  waitFor("edge", "Ready");
  EXPECT_EQ(programIds("edge").size(), 3u); // root, filter, count
  EXPECT_TRUE(agent_->get("/readyz").ok());
  EXPECT_TRUE(agent_->get("/healthz").ok());

  auto allowed = traffic(7000);
  allowed->sendAndWait(1000);
  EXPECT_EQ(allowed->received(), 1000u);
  // Nothing comes back from a dropped port, so the sender stops at its window of packets in
  // flight: every packet it sent is one the filter dropped.
  auto blocked = traffic(9999);
  blocked->sendAndWait(300, 500);
  EXPECT_EQ(blocked->received(), 0u);
  double dropped = static_cast<double>(blocked->sent());
  EXPECT_GE(dropped, 32);

  std::vector<std::string> at{"interface=\"veth-b\"", "hook=\"xdp\""};
  EXPECT_EQ(metric("bpfchain_root_runs_total", at), 1000 + dropped);
  EXPECT_GT(metric("bpfchain_root_run_seconds_total", at), 0);
  EXPECT_EQ(metric("bpfchain_monitor_map_value",
                   {"chain=\"edge\"", "program=\"count\"", "field=\"packets\""}),
            1000);
  EXPECT_EQ(metric("bpfchain_monitor_map_value",
                   {"chain=\"edge\"", "program=\"count\"", "field=\"bytes\""}),
            1000.0 * allowed->frameBytes());
  EXPECT_EQ(metric("bpfchain_program_packets_total", {"program=\"filter\"", "verdict=\"seen\""}),
            1000 + dropped);
  EXPECT_EQ(metric("bpfchain_program_packets_total", {"program=\"filter\"", "verdict=\"drop\""}),
            dropped);
  EXPECT_EQ(metric("bpfchain_chains", {"phase=\"Ready\""}), 1);
  EXPECT_EQ(metric("bpfchain_chain_info", {"chain=\"edge\"", "phase=\"Ready\"", "reason=\"\""}), 1);
  EXPECT_GT(metric("process_resident_memory_bytes", {}), 0);
  EXPECT_GT(metric("process_open_fds", {}), 0);
  EXPECT_GE(metric("bpfchain_package_fetches_total", {"result=\"downloaded\""}), 2);
}

TEST_F(AgentStandalone, ConfigChangesUnderTrafficLoseNothing) {
  writeConfig(chainConfig(program("count", counter_)));
  startAgent();
  waitFor("edge", "Ready");
  auto t = traffic(7000);
  t->start();
  struct Step {
    std::string programs;
    bool reloads; // false: only map contents or disabled programs change, ids stay
  };
  std::vector<Step> steps = {
      {program("filter", portfilter_, kBlock9999) + program("count", counter_), true},
      {program("count", counter_) + program("filter", portfilter_, kBlock9999), true},
      {program("count", counter_) +
           program("filter", portfilter_,
                   "    mapArgs: [{map: portfilter_ports, entries: [{key: \"9998\", value: "
                   "\"1\"}]}]\n"),
       false},
      {program("count", counter_) + program("filter", portfilter_, "    enabled: false\n"), true},
      {program("count", counter_), false},
  };
  for (const auto& step : steps) {
    std::vector<int64_t> before = programIds("edge");
    writeConfig(chainConfig(step.programs));
    // The status file shows new program ids once the new programs run.
    if (step.reloads)
      ASSERT_TRUE(eventually([&] { return programIds("edge") != before; }))
          << readFile(statusPath()) << agent_->log();
    else
      std::this_thread::sleep_for(std::chrono::seconds(1));
    waitFor("edge", "Ready");
  }
  t->pause();
  EXPECT_GT(t->sent(), 1000u);
  EXPECT_EQ(t->received(), t->sent()) << "packets lost while the config changed";
}

TEST_F(AgentStandalone, SigkilledAgentIsAdoptedWithoutReloadAndNothingIsLost) {
  writeConfig(chainConfig(program("filter", portfilter_, kBlock9999) +
                          program("count", counter_, kCounterMonitor)));
  startAgent();
  waitFor("edge", "Ready");
  std::vector<int64_t> ids = programIds("edge");
  auto t = traffic(7000);
  t->start();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  agent_->process().kill(SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  fs::remove(statusPath());
  startAgent();
  waitFor("edge", "Ready");
  EXPECT_EQ(programIds("edge"), ids) << "the new agent reloaded programs";
  t->pause();
  EXPECT_EQ(t->received(), t->sent()) << "packets lost across the agent's SIGKILL";
  // The adopted counter kept counting through the restart: every packet is in it.
  EXPECT_EQ(metric("bpfchain_monitor_map_value", {"program=\"count\"", "field=\"packets\""}),
            static_cast<double>(t->sent()));
  EXPECT_EQ(metric("bpfchain_package_fetches_total", {"result=\"downloaded\""}), 0)
      << "a verified package was downloaded again";
}

TEST_F(AgentStandalone, BadPackagesFailWithTheirReasonAndThePreviousChainKeepsRunning) {
  writeConfig(chainConfig(program("count", counter_, kCounterMonitor)));
  auto keys = dir_->path() + "/keys";
  fs::create_directories(keys);
  std::string pkg = std::string(BPFCHAIN_BIN_DIR) + "/bpfchain-pkg";
  ASSERT_TRUE(checkCommand({pkg, "keygen", "--private", keys + "/trusted.pem", "--public",
                            keys + "/trusted.pub"})
                  .ok());
  ASSERT_TRUE(checkCommand({pkg, "keygen", "--private", keys + "/other.pem", "--public",
                            keys + "/other.pub"})
                  .ok());
  // The good packages are signed by the trusted key; the agent trusts only that one.
  for (const auto& p : {counter_, portfilter_})
    ASSERT_TRUE(checkCommand({pkg, "sign", "--key", keys + "/trusted.pem", p.path}).ok());
  startAgent({"--trusted-key", keys + "/trusted.pub", "--require-signatures"});
  waitFor("edge", "Ready");
  std::vector<int64_t> ids = programIds("edge");

  auto digestOf = [&](const std::string& path) {
    auto out = checkCommand({pkg, "digest", path});
    EXPECT_TRUE(out.ok());
    return out.ok() ? out->out.substr(0, 64) : std::string();
  };
  auto variant = [&](const std::string& name) {
    BuiltPackage p;
    p.path = dir_->path() + "/packages/" + name + ".tar.gz";
    p.url = "file://" + p.path;
    return p;
  };
  struct Case {
    std::string reason;
    BuiltPackage package;
  };
  std::vector<Case> cases;
  {
    BuiltPackage p = portfilter_;
    p.sha256 = std::string(64, 'a');
    cases.push_back({"ChecksumMismatch", p});
  }
  {
    BuiltPackage p = variant("corrupt");
    std::ofstream(p.path) << "this is not a gzip stream";
    p.sha256 = digestOf(p.path);
    ASSERT_TRUE(checkCommand({pkg, "sign", "--key", keys + "/trusted.pem", p.path}).ok());
    cases.push_back({"ArchiveCorrupt", p});
  }
  {
    BuiltPackage p = variant("escaping");
    ASSERT_TRUE(checkCommand({"/usr/bin/python3", "-c",
                              "import io,tarfile,sys\n"
                              "t=tarfile.open(sys.argv[1],'w:gz')\n"
                              "d=b'x'\n"
                              "i=tarfile.TarInfo('../../escaped')\n"
                              "i.size=len(d)\n"
                              "t.addfile(i,io.BytesIO(d))\n"
                              "t.close()\n",
                              p.path})
                    .ok());
    p.sha256 = digestOf(p.path);
    ASSERT_TRUE(checkCommand({pkg, "sign", "--key", keys + "/trusted.pem", p.path}).ok());
    cases.push_back({"ArchiveUnsafe", p});
  }
  {
    BuiltPackage p = variant("badsig");
    fs::copy_file(portfilter_.path, p.path);
    p.sha256 = portfilter_.sha256;
    ASSERT_TRUE(checkCommand({pkg, "sign", "--key", keys + "/other.pem", p.path}).ok());
    cases.push_back({"SignatureInvalid", p});
  }
  {
    auto rejected = buildPackage(dir_->path() + "/packages", "rejected", "rejected", "rejected_xdp",
                                 "xdp", "rejected_xdp_next");
    ASSERT_TRUE(rejected.ok()) << rejected.error().message();
    ASSERT_TRUE(checkCommand({pkg, "sign", "--key", keys + "/trusted.pem", rejected->path}).ok());
    cases.push_back({"VerifierRejected", *rejected});
  }

  auto t = traffic(7000);
  uint64_t sent = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.reason);
    writeConfig(
        chainConfig(program("count", counter_, kCounterMonitor) + program("bad", c.package)));
    waitFor("edge", "Failed", c.reason);
    std::string message = chainStatus("edge")["message"].as<std::string>();
    EXPECT_NE(message.find("(edge/bad)"), std::string::npos) << message;
    if (c.reason == "VerifierRejected") {
      EXPECT_NE(message.find("verifier:"), std::string::npos) << message;
    }
    EXPECT_EQ(programIds("edge"), ids) << "the previous chain did not keep running";
    t->sendAndWait(200);
    sent += 200;
    EXPECT_EQ(t->received(), sent);
    EXPECT_EQ(metric("bpfchain_monitor_map_value", {"program=\"count\"", "field=\"packets\""}),
              static_cast<double>(sent));
    EXPECT_GE(metric("bpfchain_errors_total", {"chain=\"edge\"", "reason=\"" + c.reason + "\""}),
              1);
  }
  // Fixing the config heals the chain.
  writeConfig(chainConfig(program("count", counter_, kCounterMonitor)));
  waitFor("edge", "Ready");
}

TEST_F(AgentStandalone, ErrorsCountProgramsWithinTheirOwnChain) {
  auto rejected = buildPackage(dir_->path() + "/packages", "rejected", "rejected", "rejected_xdp",
                               "xdp", "rejected_xdp_next");
  ASSERT_TRUE(rejected.ok()) << rejected.error().message();
  // "early" runs first on veth-b, so edge's second program is the interface's fourth.
  writeConfig(chainConfig(program("filter", portfilter_) + program("count", counter_), "early") +
              "  priority: 10\n" +
              chainConfig(program("count", counter_) + program("bad", *rejected))
                  .substr(std::string("chains:\n").size()));
  startAgent();
  waitFor("edge", "Failed", "VerifierRejected");
  waitFor("early", "Ready");
  std::string message = chainStatus("edge")["message"].as<std::string>();
  EXPECT_NE(message.find("programs[1] (edge/bad)"), std::string::npos) << message;
}

// A monitorMaps entry the agent cannot export (no such map, a key of the wrong shape) is bad
// input that does not stop the chain: the chain is Ready and filters, its status message and
// bpfchain_errors_total say what is not exported, and the good entries are exported.
TEST_F(AgentStandalone, AMonitorMapThatCannotBeExportedIsInStatusAndMetrics) {
  writeConfig(chainConfig(
      program("count", counter_,
              "    monitorMaps: [{map: counter_stats, key: \"0\", aggregator: sum},\n"
              "                  {map: no_such_map, key: \"0\", aggregator: scalar}]\n") +
      program("filter", portfilter_, kBlock9999)));
  startAgent();
  waitFor("edge", "Ready");
  ASSERT_TRUE(eventually([&] { return chainStatus("edge")["message"].IsDefined(); }))
      << readFile(statusPath());
  std::string message = chainStatus("edge")["message"].as<std::string>();
  EXPECT_NE(message.find("map no_such_map"), std::string::npos) << message;
  EXPECT_NE(message.find("not exported"), std::string::npos) << message;
  EXPECT_EQ(metric("bpfchain_errors_total", {"chain=\"edge\"", "reason=\"MonitorMapInvalid\""}), 1);
  auto t = traffic(7000);
  t->sendAndWait(100);
  EXPECT_EQ(t->received(), 100u);
  EXPECT_EQ(metric("bpfchain_monitor_map_value", {"program=\"count\"", "field=\"packets\""}), 100);
  auto blocked = traffic(9999);
  blocked->sendAndWait(20, 500);
  EXPECT_EQ(blocked->received(), 0u);
}

TEST_F(AgentStandalone, AConfigThatDoesNotParseKeepsTheChainAndSaysWhere) {
  writeConfig(chainConfig(program("count", counter_)));
  startAgent();
  waitFor("edge", "Ready");
  std::vector<int64_t> ids = programIds("edge");
  writeConfig(chainConfig(program("count", counter_)) + "  hook: [unterminated\n");
  ASSERT_TRUE(eventually([&] {
    return readFile(statusPath()).find("configError") != std::string::npos;
  })) << readFile(statusPath());
  EXPECT_NE(readFile(statusPath()).find("node.yaml: line"), std::string::npos)
      << readFile(statusPath());
  EXPECT_EQ(programIds("edge"), ids);
  auto t = traffic(7000);
  t->sendAndWait(100);
  EXPECT_EQ(t->received(), 100u);
}

TEST_F(AgentStandalone, SigtermLeavesChainsAttachedAndDetachOnExitRemovesThem) {
  writeConfig(chainConfig(program("filter", portfilter_, kBlock9999)));
  startAgent();
  waitFor("edge", "Ready");
  EXPECT_EQ(agent_->process().stop(), 0);
  agent_.reset();
  // Still filtering with no agent running.
  auto blocked = traffic(9999);
  blocked->sendAndWait(50, 500);
  EXPECT_EQ(blocked->received(), 0u);
  EXPECT_GT(blocked->sent(), 0u);
  blocked.reset();

  startAgent({"--detach-on-exit"});
  waitFor("edge", "Ready");
  EXPECT_EQ(agent_->process().stop(), 0);
  agent_.reset();
  auto unblocked = traffic(9999);
  unblocked->sendAndWait(50, 2000);
  EXPECT_EQ(unblocked->received(), 50u) << "the chain still runs after --detach-on-exit";
  auto link = checkCommand({"ip", "-n", hosts_->receiver.name(), "link", "show", "veth-b"});
  ASSERT_TRUE(link.ok());
  EXPECT_EQ(link->out.find("xdp"), std::string::npos) << link->out;
  std::string pins;
  for (auto it = fs::recursive_directory_iterator(bpffs_->path() + "/bpfchain"); it != fs::end(it);
       ++it)
    pins += it->path().string() + " ";
  EXPECT_EQ(pins, "") << "pins left after --detach-on-exit";
}

TEST_F(AgentStandalone, ChainsFollowInterfacesThatAppearLater) {
  writeConfig(
      "chains:\n- name: late\n  hook: tc-ingress\n  interfaces: {names: [\"/^late[0-9]$/\"]}\n"
      "  programs:\n" +
      program("count", counter_, "    entry: counter_tc\n    nextMap: counter_tc_next\n"));
  startAgent();
  waitFor("late", "Ready");
  EXPECT_EQ(programIds("late").size(), 0u);
  // (This kernel has no dummy links; a veth pair inside the namespace serves.)
  ASSERT_TRUE(
      hosts_->receiver.ip({"link", "add", "late0", "type", "veth", "peer", "name", "peer0"}).ok());
  ASSERT_TRUE(eventually([&] { return programIds("late").size() == 2; }, 10000))
      << readFile(statusPath());
  ASSERT_TRUE(hosts_->receiver.ip({"link", "del", "late0"}).ok());
  ASSERT_TRUE(eventually([&] { return programIds("late").empty(); }, 10000))
      << readFile(statusPath());
}

} // namespace
} // namespace bpfchain::testing
