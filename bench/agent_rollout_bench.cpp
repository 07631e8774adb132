// `kubectl apply` to every node Ready (DESIGN.md section 9: 100 simulated nodes, maxUnavailable
// 100%, p99 <= 2 s), end to end with the real binaries: a control plane of its own
// (tests/harness, scripts/local-cluster.sh), bpfchain-operator, and N simulated nodes (a network
// namespace each, SimulatedNodes) with a Node object and a real bpfchain-agent each in cluster
// mode (--netns, its own --bpffs under one TestBpffs mount, its own --state-dir and so its own
// package cache; the packages are built once and shared as file:// URLs).
//
// One BpfChain selects every node (no nodeSelector) on eth0 with rollout {maxUnavailable: 100%,
// canaryNodes: 0}. For each N of --nodes (nodes and agents are added as N grows), it is
// created, then changed --runs times in each of three ways, each a new generation:
//   mapargs  a mapArgs value of the first program changes (no program is reloaded);
//   add      a second program is appended (one program loaded per node);
//   remove   that program is removed again (one program unloaded per node);
// and finally deleted. Each change is `kubectl apply -f` of the whole object by the machine's
// kubectl; the clock starts just before the kubectl process is spawned and stops when a watch on
// the BpfChain delivers status.observedGeneration == the new generation with ready == "N/N".
// The same watch (and one on the BpfNodeConfigs) gives the breakdown:
//   kubectl    spawn -> kubectl exited;
//   accepted   -> the BpfChain with the new generation arrived on the watch;
//   assigned   -> every BpfNodeConfig has the new generation in spec (the operator's share);
//   reported   -> every BpfNodeConfig reports it Ready in status (the agents' share);
//   Ready      -> the BpfChain status says so (the operator's aggregation);
// plus, per node, reported - assigned (median over nodes: one agent's reaction), the agents'
// own bpfchain_apply_duration_seconds (the data-plane part of that), and the CPU time every
// party used during the change (/proc/PID/stat): 2 cores are shared by all of them. What the rest
// of the machine used is measured too ("not ours": busy time in /proc/stat minus all of the
// above), and each change waits first for a second in which that was below --quiet-cores
// (at most --quiet-wait-s): on a shared machine a concurrent build moves the result by seconds.
// The API server's own request counters (apiserver_request_total, apiserver_watch_events_total)
// tell how many writes and watch events each change cost.
//
//   sudo build/bin/bpfchain-bench-agent-rollout [--nodes 10,50,100] [--runs 10]
//       [--pause-ms 1000] [--log-dir DIR] [--timeout-s 120]
//       [--operator PATH (then no --metrics-address is passed)] [--operator-arg ARG]...
//       [--quiet-wait-s 120] [--quiet-cores 0.1]
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <signal.h>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "api/resources.h"
#include "command_line.h"
#include "harness/agent_process.h"
#include "harness/bpffs.h"
#include "harness/control_plane.h"
#include "harness/http.h"
#include "harness/process.h"
#include "harness/resources.h"
#include "harness/simulated_nodes.h"
#include "k8s/client.h"
#include "k8s/config.h"
#include "k8s/informer.h"
#include "k8s/object.h"
#include "statistics.h"

// After gtest (through the harness): cpprest defines a macro U that gtest's headers use.
#include "api/published_rollout.h"

using namespace bpfchain;
using namespace bpfchain::testing;
using k8s::Json;
using SteadyClock = std::chrono::steady_clock;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const k8s::Resource& kChains = api::kBpfChains;
const k8s::Resource& kNodeConfigs = api::kBpfNodeConfigs;
const char* kChainName = "bench-rollout";

struct Options {
  std::vector<int> nodes{10, 50, 100};
  int runs = 10;
  int pauseMs = 1000;
  int timeoutS = 120;
  // Before each change, wait (at most quietWaitS) for a second in which processes that are not
  // part of the bench used less than quietCores of CPU.
  int quietWaitS = 120;
  double quietCores = 0.1;
  std::string logDir;       // "" = inside the temporary directory (removed at the end)
  std::string operatorPath; // "" = this build's, with --metrics-address 127.0.0.1:0
  std::vector<std::string> operatorArgs;
};

const bench::CommandLine kCommandLine{
    "bpfchain-bench-agent-rollout",
    "A chain change rolled out to N simulated nodes: assigned, reported, Ready (root)."};

Options parseOptions(int argc, char** argv) {
  Options o;
  kCommandLine.parse(argc, argv, [&](CLI::App& app) {
    app.add_option("--nodes", o.nodes, "node counts, comma-separated (1..250; default 10,50,100)")
        ->delimiter(',');
    app.add_option("--runs", o.runs, "chain changes measured per node count")
        ->capture_default_str();
    app.add_option("--pause-ms", o.pauseMs, "pause between changes, ms")->capture_default_str();
    app.add_option("--timeout-s", o.timeoutS, "give up on one change after this many seconds")
        ->capture_default_str();
    app.add_option("--quiet-wait-s", o.quietWaitS,
                   "wait at most this long for a quiet machine before a change")
        ->capture_default_str();
    app.add_option("--quiet-cores", o.quietCores,
                   "quiet: other processes use less CPU than this, in cores")
        ->capture_default_str();
    app.add_option("--log-dir", o.logDir, "keep the operator's and agents' logs here")
        ->type_name("DIR");
    app.add_option("--operator", o.operatorPath, "operator binary (default: this build's)")
        ->type_name("PATH");
    app.add_option("--operator-arg", o.operatorArgs, "passed on to the operator, repeatable")
        ->type_name("ARG");
  });
  if (o.operatorPath.empty()) {
    o.operatorPath = std::string(BPFCHAIN_BIN_DIR) + "/bpfchain-operator";
    o.operatorArgs.insert(o.operatorArgs.begin(), {"--metrics-address", "127.0.0.1:0"});
  }
  std::sort(o.nodes.begin(), o.nodes.end());
  if (o.nodes.empty() || o.nodes.front() < 1 || o.nodes.back() > 250 || o.runs < 1)
    kCommandLine.usage();
  return o;
}

double msBetween(SteadyClock::time_point a, SteadyClock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string nodeName(size_t i) {
  char name[32];
  std::snprintf(name, sizeof name, "node-%03zu", i + 1);
  return name;
}

// utime + stime of a process in clock ticks; 0 when it is gone.
uint64_t cpuTicks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = stat.rfind(')');
  if (close == std::string::npos)
    return 0;
  std::stringstream fields(stat.substr(close + 2));
  std::string f;
  uint64_t utime = 0, stime = 0;
  for (int n = 3; fields >> f; ++n) {
    if (n == 14)
      utime = std::stoull(f);
    if (n == 15) {
      stime = std::stoull(f);
      break;
    }
  }
  return utime + stime;
}

// VmRSS of a process, KiB.
long rssKiB(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);)
    if (line.starts_with("VmRSS:"))
      return std::strtol(line.c_str() + 6, nullptr, 10);
  return 0;
}

long memAvailableKiB() {
  std::ifstream in("/proc/meminfo");
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("MemAvailable:"))
      return std::strtol(line.c_str() + 13, nullptr, 10);
  return 0;
}

// Busy ticks of the whole machine (every CPU): user, nice, system, irq, softirq, steal.
uint64_t machineBusyTicks() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  uint64_t v[8] = {};
  in >> cpu >> v[0] >> v[1] >> v[2] >> v[3] >> v[4] >> v[5] >> v[6] >> v[7];
  return v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
}

// CPU ticks of the bench and its waited-for children (kubectl).
uint64_t selfTicks() {
  rusage self{}, children{};
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &children);
  auto us = [](const timeval& t) { return t.tv_sec * 1000000LL + t.tv_usec; };
  long long total =
      us(self.ru_utime) + us(self.ru_stime) + us(children.ru_utime) + us(children.ru_stime);
  return static_cast<uint64_t>(total * sysconf(_SC_CLK_TCK) / 1000000);
}

pid_t pidFromFile(const std::string& path) {
  std::ifstream in(path);
  pid_t pid = 0;
  in >> pid;
  return pid;
}

// apiserver_request_total by "verb resource[/subresource]", and apiserver_watch_events_total by
// "WATCH-EVENTS kind", from the API server's /metrics.
std::map<std::string, double> apiserverCounts(const ControlPlane& plane) {
  std::map<std::string, double> counts;
  auto out = plane.kubectl({"get", "--raw", "/metrics"});
  if (!out)
    return counts;
  auto label = [](const std::string& line, const std::string& name) {
    size_t at = line.find(name + "=\"");
    if (at == std::string::npos)
      return std::string();
    at += name.size() + 2;
    return line.substr(at, line.find('"', at) - at);
  };
  std::stringstream in(out->out);
  for (std::string line; std::getline(in, line);) {
    double value = std::strtod(line.c_str() + line.rfind(' ') + 1, nullptr);
    if (line.starts_with("apiserver_request_total{")) {
      std::string key = label(line, "verb") + " " + label(line, "resource");
      if (std::string sub = label(line, "subresource"); !sub.empty())
        key += "/" + sub;
      counts[key] += value;
    } else if (line.starts_with("apiserver_watch_events_total{")) {
      std::string kind = label(line, "kind");
      counts["WATCH-EVENTS " + (kind.empty() ? label(line, "resource") : kind)] += value;
    }
  }
  return counts;
}

// The watches of the bench: when each node got and reported each generation of the chain, and
// when the chain's status first said a generation was Ready on `expected` nodes. Times are taken
// when the event arrives.
class Tracker {
public:
  explicit Tracker(k8s::Client& client) : configs_(client, kNodeConfigs), chains_(client, kChains) {
    configs_.addEventHandler({
        .onAdd = [this](const Json& o) { onConfig(o); },
        .onUpdate = [this](const Json&, const Json& o) { onConfig(o); },
        .onDelete = [](const Json&) {},
    });
    chains_.addEventHandler({
        .onAdd = [this](const Json& o) { onChain(o); },
        .onUpdate = [this](const Json&, const Json& o) { onChain(o); },
        .onDelete = [](const Json&) {},
    });
    configs_.start();
    chains_.start();
    if (!configs_.waitForSync(60s) || !chains_.waitForSync(60s))
      kCommandLine.die("the bench's informers did not sync");
  }

  // Forgets every generation (the chain is about to be created again) and sets how many nodes
  // "Ready" means.
  void reset(int expected) {
    std::lock_guard lock(mu_);
    expected_ = expected;
    assignedAt_.clear();
    reportedAt_.clear();
    seenAt_.clear();
    readyAt_.clear();
    programIds_.clear();
  }

  // Blocks until `done` holds (checked under the lock at every event and every 20 ms).
  bool waitFor(const std::function<bool()>& done, std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    auto deadline = SteadyClock::now() + timeout;
    while (!done()) {
      if (SteadyClock::now() >= deadline)
        return false;
      changed_.wait_for(lock, 20ms);
    }
    return true;
  }

  // Under waitFor's lock.
  bool ready(int64_t generation) const { return readyAt_.contains(generation); }
  size_t configs() const { return withConfig_.size(); }
  size_t nodesWithChain() const { return withChain_.size(); }
  std::string describe(int64_t generation) const {
    size_t assigned = 0, reported = 0;
    for (const auto& [node, gens] : assignedAt_)
      assigned += gens.contains(generation);
    for (const auto& [node, gens] : reportedAt_)
      reported += gens.contains(generation);
    return "generation " + std::to_string(generation) + ": assigned on " +
           std::to_string(assigned) + ", reported Ready by " + std::to_string(reported) +
           ", chain status " + lastChainStatus_;
  }

  struct Sample {
    double accepted = -1, assigned = -1, reported = -1, ready = -1;
    double agentMedian = -1, agentMax = -1; // per node: reported - assigned
    std::vector<uint32_t> programIds;       // of the first node, at this generation
  };
  Sample sample(int64_t generation, SteadyClock::time_point t0) {
    std::lock_guard lock(mu_);
    Sample s;
    if (auto it = seenAt_.find(generation); it != seenAt_.end())
      s.accepted = msBetween(t0, it->second);
    if (auto it = readyAt_.find(generation); it != readyAt_.end())
      s.ready = msBetween(t0, it->second);
    std::vector<double> perNode;
    for (const auto& [node, gens] : reportedAt_) {
      auto r = gens.find(generation);
      if (r == gens.end())
        continue;
      s.reported = std::max(s.reported, msBetween(t0, r->second));
      auto a = assignedAt_[node].find(generation);
      if (a != assignedAt_[node].end())
        perNode.push_back(msBetween(a->second, r->second));
    }
    for (const auto& [node, gens] : assignedAt_)
      if (auto a = gens.find(generation); a != gens.end())
        s.assigned = std::max(s.assigned, msBetween(t0, a->second));
    if (!perNode.empty()) {
      std::sort(perNode.begin(), perNode.end());
      s.agentMedian = perNode[perNode.size() / 2];
      s.agentMax = perNode.back();
    }
    s.programIds = programIds_[generation];
    return s;
  }

private:
  void onConfig(const Json& config) {
    auto now = SteadyClock::now();
    std::string node = k8s::nameOf(config);
    std::lock_guard lock(mu_);
    withConfig_.insert(node);
    bool hasChain = false;
    entries_.erase(node);
    if (config.has_field("spec") && config.at("spec").has_field("chains"))
      for (const auto& c : config.at("spec").at("chains").as_array())
        if (k8s::stringAt(c, {"name"}) == kChainName) {
          hasChain = true;
          entries_[node] = c;
          noteAssigned(node, now);
        }
    if (config.has_field("status") && config.at("status").has_field("chains"))
      for (const auto& c : config.at("status").at("chains").as_array())
        if (k8s::stringAt(c, {"name"}) == kChainName) {
          hasChain = true;
          if (k8s::stringAt(c, {"phase"}) != "Ready")
            continue;
          int64_t generation = c.at("generation").as_number().to_int64();
          if (reportedAt_[node].try_emplace(generation, now).second && node == nodeName(0) &&
              c.has_field("attachments") && c.at("attachments").size() > 0) {
            std::vector<uint32_t> ids;
            for (const auto& id : c.at("attachments").at(0).at("programIDs").as_array())
              ids.push_back(static_cast<uint32_t>(id.as_number().to_int64()));
            programIds_[generation] = ids;
          }
        }
    if (hasChain)
      withChain_.insert(node);
    else
      withChain_.erase(node);
    changed_.notify_all();
  }

  // Under mu_: when `node` was first given each generation, by the rule its agent follows
  // (api::entryRef: its entry, and for a membership entry the chain's status.published).
  void noteAssigned(const std::string& node, SteadyClock::time_point now) {
    auto entry = entries_.find(node);
    if (entry == entries_.end())
      return;
    auto ref = api::entryRef(entry->second, node, published_ ? &*published_ : nullptr, node);
    if (ref && *ref)
      assignedAt_[node].try_emplace((*ref)->generation, now);
  }

  void onChain(const Json& chain) {
    auto now = SteadyClock::now();
    if (k8s::nameOf(chain) != kChainName)
      return;
    std::lock_guard lock(mu_);
    seenAt_.try_emplace(k8s::generationOf(chain), now);
    if (auto published = api::publishedOf(chain);
        published && *published && (!published_ || *published_ != **published)) {
      published_ = std::move(**published);
      for (const auto& [node, entry] : entries_)
        noteAssigned(node, now);
    }
    if (!chain.has_field("status"))
      return;
    const Json& s = chain.at("status");
    lastChainStatus_ = s.serialize();
    if (!s.has_field("observedGeneration"))
      return;
    std::string want = std::to_string(expected_) + "/" + std::to_string(expected_);
    int64_t observed = s.at("observedGeneration").as_number().to_int64();
    if (observed == k8s::generationOf(chain) && k8s::stringAt(chain, {"status", "ready"}) == want)
      readyAt_.try_emplace(observed, now);
    changed_.notify_all();
  }

  k8s::Informer configs_;
  k8s::Informer chains_;
  std::mutex mu_;
  std::map<std::string, Json> entries_;            // node -> its entry of the chain
  std::optional<api::PublishedRollout> published_; // the chain's status.published
  std::condition_variable changed_;
  int expected_ = 0;
  std::map<std::string, std::map<int64_t, SteadyClock::time_point>> assignedAt_, reportedAt_;
  std::map<int64_t, SteadyClock::time_point> seenAt_, readyAt_;
  std::map<int64_t, std::vector<uint32_t>> programIds_;
  std::set<std::string> withConfig_, withChain_;
  std::string lastChainStatus_;
};

struct Stats {
  double median = 0, p99 = 0, min = 0, max = 0;
  size_t n = 0;
};
Stats stats(std::vector<double> v) {
  Stats s;
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return x < 0; }), v.end());
  if (v.empty())
    return s;
  std::sort(v.begin(), v.end());
  s.n = v.size();
  s.median = bench::medianOfSorted(v);
  // Nearest rank: with fewer than 100 samples the 99th percentile is the maximum.
  size_t rank = (99 * s.n + 99) / 100;
  s.p99 = v[std::min(rank, s.n) - 1];
  s.min = v.front();
  s.max = v.back();
  return s;
}

std::string ms(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.0f", v);
  return text;
}

struct Change {
  double total = 0, kubectl = 0;
  Tracker::Sample sample;
  double agentApplyMs = -1; // mean over nodes of the agents' own apply duration for the change
  double cpuAgents = 0, cpuOperator = 0, cpuApiserver = 0, cpuEtcd = 0, cpuBench = 0; // seconds
  double cpuOthers = 0;                   // seconds of CPU used by processes not part of the bench
  double waitedMs = 0;                    // for a quiet machine before the change
  std::map<std::string, double> requests; // API server requests (and watch events) it caused
};

class Bench {
public:
  Bench(Options options) : o_(std::move(options)) {}

  void run() {
    long availableAtStart = memAvailableKiB();
    std::fprintf(stderr, "MemAvailable %.1f GiB; starting a control plane...\n",
                 availableAtStart / 1048576.0);
    auto started = ControlPlane::start();
    if (!started)
      kCommandLine.die(started.error().message());
    plane_ = std::make_unique<ControlPlane>(std::move(*started));
    std::string clusterDir = fs::path(plane_->kubeconfig()).parent_path().string();
    apiserverPid_ = pidFromFile(clusterDir + "/kube-apiserver.pid");
    etcdPid_ = pidFromFile(clusterDir + "/etcd.pid");
    auto crds = plane_->installCrds(std::string(BPFCHAIN_SOURCE_DIR) + "/crds",
                                    {"bpfchains.bpfchain.io", "bpfnodeconfigs.bpfchain.io"});
    if (!crds)
      kCommandLine.die(crds.error().message());
    auto config = k8s::loadKubeconfig(plane_->kubeconfig());
    if (!config)
      kCommandLine.die(config.error().message());
    auto client = k8s::Client::create(*config);
    if (!client)
      kCommandLine.die(client.error().message());
    client_ = std::move(*client);
    Json ns = Json::parse(
        R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bpfchain-system"}})");
    (void)client_->create(k8s::resources::kNamespaces, ns);

    auto dir = TempDir::create("agent-rollout");
    if (!dir)
      kCommandLine.die(dir.error().message());
    dir_ = std::make_unique<TempDir>(std::move(*dir));
    logDir_ = o_.logDir.empty() ? dir_->path() + "/logs" : o_.logDir;
    fs::create_directories(logDir_);
    auto bpffs = TestBpffs::mount();
    if (!bpffs)
      kCommandLine.die(bpffs.error().message());
    bpffs_ = std::make_unique<TestBpffs>(std::move(*bpffs));
    fs::create_directories(dir_->path() + "/packages");
    auto filter = buildPackage(dir_->path() + "/packages", "portfilter", "portfilter",
                               "portfilter_xdp", "xdp", "portfilter_xdp_next");
    auto counter = buildPackage(dir_->path() + "/packages", "counter", "counter", "counter_xdp",
                                "xdp", "counter_xdp_next");
    if (!filter || !counter)
      kCommandLine.die("bpfchain-pkg build: " +
                       (!filter ? filter.error() : counter.error()).message());
    filter_ = *filter;
    counter_ = *counter;

    auto t0 = SteadyClock::now();
    auto nodes = SimulatedNodes::create(static_cast<size_t>(o_.nodes.back()));
    if (!nodes)
      kCommandLine.die(nodes.error().message());
    nodes_ = std::move(*nodes);
    std::fprintf(stderr, "%d simulated nodes in %.1f s\n", o_.nodes.back(),
                 msBetween(t0, SteadyClock::now()) / 1000);

    tracker_ = std::make_unique<Tracker>(*client_);
    std::vector<std::string> argvOperator{o_.operatorPath, "--kubeconfig", plane_->kubeconfig()};
    argvOperator.insert(argvOperator.end(), o_.operatorArgs.begin(), o_.operatorArgs.end());
    auto op = ChildProcess::spawn(argvOperator, logDir_ + "/operator.log");
    if (!op)
      kCommandLine.die(op.error().message());
    operator_ = std::make_unique<ChildProcess>(std::move(*op));
    // kubectl's discovery and OpenAPI caches, so that the first measured apply does not pay for
    // them: the first apply that patches a BpfChain fetches the group's OpenAPI v3 document,
    // which the API server builds on first request (0.6-0.7 s of its CPU here). A chain that
    // selects no node, created and changed once, is enough.
    std::string warmup = dir_->path() + "/warmup.yaml";
    for (int port : {9000, 9001}) {
      std::string yaml = chainYaml(port, false);
      yaml.replace(yaml.find(kChainName), std::string(kChainName).size(), "bench-warmup");
      yaml.replace(yaml.find("  hook: xdp\n"), 12,
                   "  hook: xdp\n  nodeSelector: {matchLabels: {bench.bpfchain.io/none: \"x\"}}\n");
      std::ofstream(warmup) << yaml;
      if (auto r = plane_->kubectl({"apply", "-f", warmup}); !r)
        kCommandLine.die("warm-up apply: " + r.error().message());
    }
    (void)plane_->kubectl({"delete", "-f", warmup});

    for (int n : o_.nodes) {
      grow(static_cast<size_t>(n));
      measure(n);
    }
    printSummary(availableAtStart);
    stopAll();
  }

private:
  // Node objects and agents up to `n`, each agent started once its BpfNodeConfig exists.
  void grow(size_t n) {
    auto t0 = SteadyClock::now();
    for (size_t i = agents_.size(); i < n; ++i) {
      // Labelled as real nodes are (an object without managedFields wedges the informers of
      // operators built before this was noticed: json erase of an absent key throws).
      Json node = Json::parse(R"({"apiVersion":"v1","kind":"Node","metadata":{"labels":{
        "kubernetes.io/os":"linux"}}})");
      node["metadata"]["name"] = Json::string(nodeName(i));
      auto created = client_->create(k8s::resources::kNodes, node);
      if (!created && !created.error().alreadyExists())
        kCommandLine.die("create node: " + created.error().describe());
      AgentOptions a;
      a.nodeName = nodeName(i);
      a.kubeconfig = plane_->kubeconfig();
      a.netnsPath = nodes_->node(i).netns->path();
      a.bpffs = bpffs_->path() + "/" + nodeName(i);
      a.stateDir = dir_->path() + "/state-" + nodeName(i);
      a.socket = dir_->path() + "/" + nodeName(i) + ".sock";
      auto agent = AgentProcess::start(a, logDir_ + "/agent-" + nodeName(i) + ".log");
      if (!agent)
        kCommandLine.die(agent.error().message());
      agents_.push_back(std::move(*agent));
    }
    bool exited = false;
    if (!tracker_->waitFor(
            [&] {
              exited = !operator_->running();
              return exited || tracker_->configs() >= n;
            },
            120s) ||
        exited)
      kCommandLine.die(exited ? "the operator exited (status " + std::to_string(operator_->stop()) +
                                    "); its log:\n" + readFile(logDir_ + "/operator.log")
                              : "the operator did not create a BpfNodeConfig for every node");
    for (auto& a : agents_)
      if (!eventually([&] { return a->get("/readyz").ok(); }, 60000))
        kCommandLine.die("an agent is not ready: " + a->log());
    std::fprintf(stderr, "%zu nodes and agents (%.1f s to add)\n", n,
                 msBetween(t0, SteadyClock::now()) / 1000);
  }

  std::string chainYaml(int port, bool withCounter) const {
    std::string yaml = std::string("apiVersion: bpfchain.io/v1alpha1\nkind: BpfChain\n") +
                       "metadata:\n  name: " + kChainName +
                       "\nspec:\n  hook: xdp\n  interfaces: {names: [eth0]}\n"
                       "  rollout: {maxUnavailable: \"100%\", canaryNodes: 0}\n  programs:\n" +
                       "  - name: filter\n    package: {url: \"" + filter_.url + "\", sha256: \"" +
                       filter_.sha256 +
                       "\"}\n    mapArgs: [{map: portfilter_ports, entries: [{key: \"" +
                       std::to_string(port) + "\", value: \"1\"}]}]\n";
    if (withCounter)
      yaml += "  - name: count\n    package: {url: \"" + counter_.url + "\", sha256: \"" +
              counter_.sha256 +
              "\"}\n    monitorMaps: [{map: counter_stats, key: \"0\", aggregator: sum}]\n";
    return yaml;
  }

  // The per-chain sum and count of bpfchain_apply_duration_seconds over every agent.
  std::pair<double, double> applyDurations() {
    double sum = 0, count = 0;
    std::string chain = std::string("chain=\"") + kChainName + "\"";
    for (auto& a : agents_) {
      auto text = a->get("/metrics");
      if (!text)
        continue;
      sum += metricValue(*text, "bpfchain_apply_duration_seconds_sum", {chain}).value_or(0);
      count += metricValue(*text, "bpfchain_apply_duration_seconds_count", {chain}).value_or(0);
    }
    return {sum, count};
  }

  struct Cpu {
    uint64_t agents = 0, op = 0, apiserver = 0, etcd = 0, bench = 0, machine = 0;
    // What else ran on the machine: every busy tick that none of the above used.
    double othersSince(const Cpu& before) const {
      int64_t ours = (agents - before.agents) + (op - before.op) + (apiserver - before.apiserver) +
                     (etcd - before.etcd) + (bench - before.bench);
      return static_cast<double>(static_cast<int64_t>(machine - before.machine) - ours);
    }
  };
  Cpu cpuNow() {
    Cpu c;
    for (auto& a : agents_)
      c.agents += cpuTicks(a->process().pid());
    c.op = cpuTicks(operator_->pid());
    c.apiserver = cpuTicks(apiserverPid_);
    c.etcd = cpuTicks(etcdPid_);
    c.bench = selfTicks();
    c.machine = machineBusyTicks();
    return c;
  }

  // Attributes the API server's requests since the last call to `last`, the previous change
  // (until the next change starts, so its trailing status writes count too).
  void countRequests(Change* last) {
    auto now = apiserverCounts(*plane_);
    if (last)
      for (const auto& [key, value] : now)
        if (double d = value - requestsBefore_[key]; d > 0)
          last->requests[key] = d;
    requestsBefore_ = std::move(now);
  }

  // Waits for a second in which the rest of the machine used less than --quiet-cores; returns
  // how long that took (at most --quiet-wait-s).
  double waitQuiet() {
    auto start = SteadyClock::now();
    double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    while (msBetween(start, SteadyClock::now()) < o_.quietWaitS * 1000.0) {
      Cpu before = cpuNow();
      auto t0 = SteadyClock::now();
      std::this_thread::sleep_for(1s);
      double cores =
          cpuNow().othersSince(before) / tick / (msBetween(t0, SteadyClock::now()) / 1000);
      if (cores < o_.quietCores)
        break;
    }
    return msBetween(start, SteadyClock::now());
  }

  // One `kubectl apply`, timed until the chain is Ready on `n` nodes.
  Change apply(const std::string& yaml, int n, const std::string& what) {
    std::string path = dir_->path() + "/chain.yaml";
    std::ofstream(path) << yaml;
    auto [sum0, count0] = applyDurations();
    Change c;
    c.waitedMs = waitQuiet();
    Cpu cpu0 = cpuNow();
    auto t0 = SteadyClock::now();
    auto out = runCommand({"kubectl", "--kubeconfig", plane_->kubeconfig(), "apply", "-f", path,
                           "-o", "jsonpath={.metadata.generation}"});
    auto tKubectl = SteadyClock::now();
    if (!out || out->exitCode != 0)
      kCommandLine.die("kubectl apply: " + (out ? out->err : out.error().message()));
    int64_t generation = std::stoll(out->out);
    if (!tracker_->waitFor([&] { return tracker_->ready(generation); },
                           std::chrono::seconds(o_.timeoutS))) {
      std::string state;
      tracker_->waitFor(
          [&] {
            state = tracker_->describe(generation);
            return true;
          },
          0s);
      kCommandLine.die(what + ": not Ready within " + std::to_string(o_.timeoutS) + " s; " + state +
                       "\noperator log: " + logDir_ + "/operator.log");
    }
    Cpu cpu1 = cpuNow();
    c.kubectl = msBetween(t0, tKubectl);
    c.sample = tracker_->sample(generation, t0);
    c.total = c.sample.ready;
    double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    c.cpuAgents = (cpu1.agents - cpu0.agents) / tick;
    c.cpuOperator = (cpu1.op - cpu0.op) / tick;
    c.cpuApiserver = (cpu1.apiserver - cpu0.apiserver) / tick;
    c.cpuEtcd = (cpu1.etcd - cpu0.etcd) / tick;
    c.cpuBench = (cpu1.bench - cpu0.bench) / tick;
    c.cpuOthers = cpu1.othersSince(cpu0) / tick;
    // The agents may still be writing status or metrics; their apply histogram is final once
    // they reported.
    auto [sum1, count1] = applyDurations();
    if (count1 > count0)
      c.agentApplyMs = (sum1 - sum0) / (count1 - count0) * 1000;
    std::string ids;
    for (uint32_t id : c.sample.programIds)
      ids += (ids.empty() ? "" : ",") + std::to_string(id);
    std::fprintf(stderr,
                 "  N=%d %-8s gen %-3lld total %5.0f ms | kubectl %4.0f, accepted %4.0f, "
                 "assigned %5.0f, reported %5.0f | agent median %4.0f max %5.0f, apply %5.1f ms | "
                 "CPU s: agents %.2f op %.2f apiserver %.2f etcd %.2f bench+kubectl %.2f, "
                 "others %.2f (waited %.0f s for quiet) | ids %s\n",
                 n, what.c_str(), static_cast<long long>(generation), c.total, c.kubectl,
                 c.sample.accepted, c.sample.assigned, c.sample.reported, c.sample.agentMedian,
                 c.sample.agentMax, c.agentApplyMs, c.cpuAgents, c.cpuOperator, c.cpuApiserver,
                 c.cpuEtcd, c.cpuBench, c.cpuOthers, c.waitedMs / 1000, ids.c_str());
    return c;
  }

  void measure(int n) {
    auto& results = results_[n];
    // Idle load of n agents (and everything else): CPU over 5 s.
    Cpu idle0 = cpuNow();
    auto idleStart = SteadyClock::now();
    std::this_thread::sleep_for(5s);
    Cpu idle1 = cpuNow();
    double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    double idleWall = msBetween(idleStart, SteadyClock::now()) / 1000;
    idleCpu_[n] = {
        (idle1.agents - idle0.agents) / tick / idleWall,
        (idle1.op - idle0.op + idle1.apiserver - idle0.apiserver + idle1.etcd - idle0.etcd) / tick /
            idleWall};
    idleOthers_[n] = idle1.othersSince(idle0) / tick / idleWall;
    long rss = 0;
    for (auto& a : agents_)
      rss += rssKiB(a->process().pid());
    agentsRss_[n] = rss;

    tracker_->reset(n);
    int port = 9000;
    bool withCounter = false;
    Change* last = nullptr;
    auto change = [&](const std::string& kind) {
      countRequests(last);
      std::this_thread::sleep_for(300ms); // the scrape of the API server, out of the way
      results[kind].push_back(apply(chainYaml(port, withCounter), n, kind));
      last = &results[kind].back();
      std::this_thread::sleep_for(std::chrono::milliseconds(o_.pauseMs));
    };
    // `last` points into these.
    results["create"].reserve(1);
    results["mapargs"].reserve(o_.runs);
    results["add"].reserve(o_.runs);
    results["remove"].reserve(o_.runs);
    change("create");
    for (int r = 0; r < o_.runs; ++r) {
      port = port == 9000 ? 9001 : 9000;
      change("mapargs");
      withCounter = true;
      change("add");
      withCounter = false;
      change("remove");
    }
    countRequests(last);
    long rssAfter = 0;
    for (auto& a : agents_)
      rssAfter += rssKiB(a->process().pid());
    agentsRssAfter_[n] = rssAfter;

    // Delete: until no BpfNodeConfig mentions the chain any more, in spec or status.
    auto t0 = SteadyClock::now();
    auto deleted = plane_->kubectl({"delete", std::string("bpfchains/") + kChainName});
    if (!deleted)
      kCommandLine.die(deleted.error().message());
    if (!tracker_->waitFor([&] { return tracker_->nodesWithChain() == 0; },
                           std::chrono::seconds(o_.timeoutS)))
      kCommandLine.die("the chain was not removed from every node");
    deleteMs_[n] = msBetween(t0, SteadyClock::now());
    std::fprintf(stderr, "  N=%d delete: gone from every node after %.0f ms\n", n, deleteMs_[n]);
    std::this_thread::sleep_for(std::chrono::milliseconds(o_.pauseMs));
  }

  void printSummary(long availableAtStart) {
    std::printf("\nkubectl apply -> BpfChain Ready on every node: %zu runs per change kind, "
                "ms (p99 = max: fewer than 100 runs)\n\n",
                static_cast<size_t>(o_.runs));
    std::printf(
        "| N | change | median | p99 (max) | min | kubectl | accepted | assigned "
        "(operator) | reported (agents) | agent per node median / max | agent apply "
        "| CPU s per change: agents / operator / apiserver+etcd / bench+kubectl / not ours |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int n : o_.nodes) {
      for (const char* kind : {"mapargs", "add", "remove", "create"}) {
        const auto& v = results_[n][kind];
        auto pick = [&](const std::function<double(const Change&)>& f) {
          std::vector<double> x;
          for (const auto& c : v)
            x.push_back(f(c));
          return stats(x);
        };
        Stats total = pick([](const Change& c) { return c.total; });
        Stats kubectl = pick([](const Change& c) { return c.kubectl; });
        Stats accepted = pick([](const Change& c) { return c.sample.accepted; });
        Stats assigned = pick([](const Change& c) { return c.sample.assigned; });
        Stats reported = pick([](const Change& c) { return c.sample.reported; });
        Stats agentMed = pick([](const Change& c) { return c.sample.agentMedian; });
        Stats agentMax = pick([](const Change& c) { return c.sample.agentMax; });
        Stats apply = pick([](const Change& c) { return c.agentApplyMs; });
        Stats cpuA = pick([](const Change& c) { return c.cpuAgents; });
        Stats cpuO = pick([](const Change& c) { return c.cpuOperator; });
        Stats cpuK = pick([](const Change& c) { return c.cpuApiserver + c.cpuEtcd; });
        Stats cpuB = pick([](const Change& c) { return c.cpuBench; });
        Stats cpuX = pick([](const Change& c) { return c.cpuOthers; });
        std::printf("| %d | %s | **%s** | %s | %s | %s | %s | %s | %s | %s / %s | %.1f | %.2f / "
                    "%.2f / %.2f / %.2f / %.2f |\n",
                    n, kind, ms(total.median).c_str(), ms(total.p99).c_str(), ms(total.min).c_str(),
                    ms(kubectl.median).c_str(), ms(accepted.median).c_str(),
                    ms(assigned.median).c_str(), ms(reported.median).c_str(),
                    ms(agentMed.median).c_str(), ms(agentMax.median).c_str(), apply.median,
                    cpuA.median, cpuO.median, cpuK.median, cpuB.median, cpuX.median);
      }
    }
    std::printf("\n(columns after p99: medians over the runs; breakdown columns are times from "
                "the kubectl spawn)\n\n");
    std::printf(
        "Runs by what else used the machine's CPU during the change (\"not ours\", averaged "
        "over the change): total ms\n\n| N | change | runs below 0.2 cores: n, median, "
        "max | runs at or above: n, median, max | waited for quiet, median s |\n"
        "|---|---|---|---|---|\n");
    for (int n : o_.nodes)
      for (const char* kind : {"mapargs", "add", "remove", "create"}) {
        std::vector<double> quiet, busy, waited;
        for (const auto& c : results_[n][kind]) {
          (c.cpuOthers / (c.total / 1000) < 0.2 ? quiet : busy).push_back(c.total);
          waited.push_back(c.waitedMs / 1000);
        }
        Stats q = stats(quiet), b = stats(busy), w = stats(waited);
        std::printf("| %d | %s | %zu, %s, %s | %zu, %s, %s | %.1f |\n", n, kind, q.n,
                    q.n ? ms(q.median).c_str() : "-", q.n ? ms(q.max).c_str() : "-", b.n,
                    b.n ? ms(b.median).c_str() : "-", b.n ? ms(b.max).c_str() : "-", w.median);
      }
    std::printf("\n");
    std::printf("API server requests per change (median over the runs; from the change until "
                "the next one)\n\n| N | change | requests |\n|---|---|---|\n");
    for (int n : o_.nodes)
      for (const char* kind : {"mapargs", "add", "remove", "create"}) {
        std::set<std::string> keys;
        for (const auto& c : results_[n][kind])
          for (const auto& [key, value] : c.requests)
            keys.insert(key);
        std::string line;
        for (const auto& key : keys) {
          std::vector<double> x;
          for (const auto& c : results_[n][kind])
            x.push_back(c.requests.contains(key) ? c.requests.at(key) : 0);
          Stats s = stats(x);
          if (s.median < 1 || key.starts_with("WATCH ") || key.starts_with("LIST "))
            continue;
          char text[128];
          std::snprintf(text, sizeof text, "%s%s %.0f", line.empty() ? "" : ", ", key.c_str(),
                        s.median);
          line += text;
        }
        std::printf("| %d | %s | %s |\n", n, kind, line.c_str());
      }
    std::printf("\n");
    std::printf("| N | agents' RSS total (after runs) | idle CPU: agents / operator+apiserver+etcd "
                "/ not ours (cores) | delete -> gone from every node |\n|---|---|---|---|\n");
    for (int n : o_.nodes)
      std::printf("| %d | %.0f MiB (%.0f MiB) | %.3f / %.3f / %.3f | %.0f ms |\n", n,
                  agentsRss_[n] / 1024.0, agentsRssAfter_[n] / 1024.0, idleCpu_[n].first,
                  idleCpu_[n].second, idleOthers_[n], deleteMs_[n]);
    std::printf("\nMemAvailable: %.1f GiB at start, %.1f GiB with %zu agents running\n",
                availableAtStart / 1048576.0, memAvailableKiB() / 1048576.0, agents_.size());
    std::printf("logs: %s%s\n", logDir_.c_str(),
                o_.logDir.empty() ? " (removed at exit; keep them with --log-dir)" : "");
  }

  void stopAll() {
    for (auto& a : agents_)
      a->process().kill(SIGTERM);
    for (auto& a : agents_)
      a->process().stop();
    agents_.clear();
    if (operator_)
      operator_->stop();
    tracker_.reset();
  }

  Options o_;
  std::unique_ptr<ControlPlane> plane_;
  std::unique_ptr<k8s::Client> client_;
  std::unique_ptr<TempDir> dir_;
  std::string logDir_;
  std::unique_ptr<TestBpffs> bpffs_;
  std::unique_ptr<SimulatedNodes> nodes_;
  BuiltPackage filter_, counter_;
  std::unique_ptr<Tracker> tracker_;
  std::unique_ptr<ChildProcess> operator_;
  std::vector<std::unique_ptr<AgentProcess>> agents_;
  pid_t apiserverPid_ = 0, etcdPid_ = 0;
  std::map<int, std::map<std::string, std::vector<Change>>> results_;
  std::map<int, std::pair<double, double>> idleCpu_;
  std::map<int, double> idleOthers_;
  std::map<int, long> agentsRss_, agentsRssAfter_;
  std::map<int, double> deleteMs_;
  std::map<std::string, double> requestsBefore_;
};

} // namespace

int main(int argc, char** argv) {
  Options o = parseOptions(argc, argv);
  ::signal(SIGPIPE, SIG_IGN);
  return kCommandLine.runAsRoot("network namespaces, bpffs, BPF",
                                [&] { Bench(std::move(o)).run(); });
}
