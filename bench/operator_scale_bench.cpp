// The operator at scale (issue 5): N Nodes (default 1,000), C BpfChains (default 20) that
// each select every node, one bpfchain-operator process, and simulated agents: an informer on
// the BpfNodeConfigs whose handler marks every chain generation it sees in a node's spec Ready
// in that node's status (a PUT of the status subresource, as bpfchain-agent writes it, from a
// few threads), as real agents would, so that rollouts progress. Rollouts use canaryNodes 0 and
// maxUnavailable 100%, so nothing waits on a canary.
//
// Measured:
//   startup   operator start -> a BpfNodeConfig for every node;
//   create    the C chains created at once -> every BpfNodeConfig has every chain at
//             generation 1 in spec ("written"), and -> every chain's Ready condition True;
//   change    one chain's spec patched (a new priority: a new generation) -> every
//             BpfNodeConfig has that generation of the chain in spec, and -> the chain Ready
//             again; repeated --runs times on different chains, median and min-max;
//   memory    the operator's VmRSS and VmHWM (/proc/PID/status) after startup, after the
//             creation and after the changes, each at steady state.
//
// It starts a control plane of its own (tests/harness, scripts/local-cluster.sh) unless
// --kubeconfig names one, which must be empty of bpfchain objects and have the CRDs:
//   build/bin/bpfchain-bench-operator-scale [--nodes 1000] [--chains 20] [--runs 5]
//       [--kubeconfig FILE] [--operator PATH] [--agent-threads 4]
//       [--agent-status-write update|merge|apply] [--operator-log FILE] [--operator-arg ARG]...
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <signal.h>
#include <sstream>
#include <string>
#include <sys/utsname.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "command_line.h"
#include "harness/control_plane.h"
#include "harness/http.h"
#include "harness/process.h"
#include "harness/resources.h"
#include "k8s/client.h"
#include "k8s/informer.h"
#include "parallel.h"
#include "statistics.h"
#include "system/time.h"

// After gtest (through the harness): cpprest defines a macro U that gtest's headers use.
#include "api/chain_ref.h"
#include "api/node_config_types.h"
#include "api/published_rollout.h"
#include "api/resources.h"

using namespace bpfchain;
using bench::parallel;
using k8s::Json;
using SteadyClock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

const k8s::Resource& kChains = api::kBpfChains;

struct Options {
  int nodes = 1000;
  int chains = 20;
  int runs = 5;
  int agentThreads = 4;
  std::string agentWrite = "update"; // the agents' status writes: update (as the agent), merge
                                     // (as agents before 2026-12-05) or apply
  bool fullStatus = true;   // what they report: what bpfchain-agent writes, or a minimal status
  int heartbeatWindowS = 0; // > 0: measure the API server idle, then with every node's
                            // heartbeat (its whole status again) spread over this many seconds
  std::string kubeconfig;
  std::string crds = std::string(BPFCHAIN_SOURCE_DIR) + "/crds"; // installed in the new plane
  std::string operatorPath;
  std::string operatorLog; // "" = a temporary file
  std::vector<std::string> operatorArgs;
};

const bench::CommandLine kCommandLine{
    "bpfchain-bench-operator-scale",
    "[--nodes N] [--chains C] [--runs R]\n"
    "         [--kubeconfig FILE | --crds DIR] [--operator PATH] [--agent-threads T]"
    " [--agent-status-write update|merge|apply] [--agent-status full|minimal]"
    " [--heartbeat-window-s S]"
    " [--operator-arg ARG]..."};

std::string selfDir() {
  char path[4096] = {};
  ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0)
    return ".";
  std::string self(path, n);
  return self.substr(0, self.rfind('/'));
}

Options parseOptions(int argc, char** argv) {
  Options o;
  o.operatorPath = selfDir() + "/bpfchain-operator";
  kCommandLine.parse(argc, argv, [&](CLI::App& app) {
    app.add_option("--nodes", o.nodes, "simulated nodes (Node + BpfNodeConfig each)")
        ->capture_default_str();
    app.add_option("--chains", o.chains, "BpfChains, each selecting every node")
        ->capture_default_str();
    app.add_option("--runs", o.runs, "changes of one chain to time")->capture_default_str();
    app.add_option("--agent-threads", o.agentThreads, "threads playing the agents")
        ->capture_default_str();
    app.add_option(
           "--agent-status-write", o.agentWrite,
           "how simulated agents write status: update (a PUT of the version the watch showed, as "
           "bpfchain-agent), merge (a merge patch, as agents before 2026-12-05) or apply "
           "(server-side apply)")
        ->check(CLI::IsMember({"merge", "apply", "update"}));
    app.add_option_function<std::string>(
           "--agent-status", [&](const std::string& v) { o.fullStatus = v == "full"; },
           "what simulated agents report: full (default: bpfchain-agent's status, through "
           "api::toJson) or minimal (name, generation, revision, phase, reason per chain)")
        ->check(CLI::IsMember({"full", "minimal"}));
    app.add_option("--heartbeat-window-s", o.heartbeatWindowS,
                   "after the runs, measure kube-apiserver's CPU for this many seconds idle, then "
                   "for as long while every node rewrites its status with a new heartbeatTime "
                   "once, spread evenly (the agent's heartbeat; 60 is its default period); 0: "
                   "skip")
        ->capture_default_str();
    auto* kubeconfig = app.add_option("--kubeconfig", o.kubeconfig,
                                      "an existing control plane (default: start one)");
    app.add_option("--crds", o.crds,
                   "the CRDs to install in the control plane it starts (a variant of crds/ to "
                   "measure, e.g. another BpfNodeConfig status schema)")
        ->capture_default_str()
        ->excludes(kubeconfig);
    app.add_option("--operator", o.operatorPath, "the bpfchain-operator binary to run")
        ->capture_default_str();
    app.add_option("--operator-log", o.operatorLog, "keep the operator's log in this file");
    app.add_option("--operator-arg", o.operatorArgs,
                   "one more argument for the operator (repeatable)");
  });
  if (o.nodes < 1 || o.chains < 1 || o.runs < 1 || o.agentThreads < 1 || o.heartbeatWindowS < 0)
    kCommandLine.usage();
  return o;
}

double msSince(SteadyClock::time_point t0) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count();
}

// VmRSS and VmHWM of a process, in KiB.
std::pair<long, long> memoryOf(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  long rss = -1, hwm = -1;
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmRSS:"))
      rss = std::strtol(line.c_str() + 6, nullptr, 10);
    else if (line.starts_with("VmHWM:"))
      hwm = std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return {rss, hwm};
}

// An object's resourceVersion as etcd's revision (k8s::revisionOf); 0 when it has none.
int64_t versionOf(const Json& object) {
  return k8s::revisionOf(k8s::resourceVersionOf(object)).value_or(0);
}

// CPU time (user + system) a process has used so far, in seconds; 0 when it is gone.
double cpuSeconds(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto end = text.rfind(')'); // the command may hold spaces
  if (end == std::string::npos)
    return 0;
  std::istringstream fields(text.substr(end + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; fields >> field && i <= 15; ++i)
    if (i == 14 || i == 15) // utime, stime
      ticks += std::stod(field);
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// The operator's chain reconciles so far (every result), from its /metrics; -1 when unknown.
double chainReconciles(uint16_t port) {
  if (port == 0)
    return -1;
  auto r = bpfchain::testing::httpGet("127.0.0.1", port, "/metrics");
  if (!r || r->status != 200)
    return -1;
  double sum = 0;
  for (const char* result : {"success", "error", "requeue"})
    sum += bpfchain::testing::metricValue(
               r->body, "bpfchain_operator_reconciles_total",
               {"controller=\"chain\"", std::string("result=\"") + result + "\""})
               .value_or(0);
  return sum;
}

// The port the operator serves /metrics on, from its log ("serving metrics address=H:P").
uint16_t metricsPortFrom(const std::string& logFile) {
  std::ifstream in(logFile);
  for (std::string line; std::getline(in, line);)
    if (auto at = line.find("serving metrics"); at != std::string::npos)
      if (auto colon = line.find(':', line.find("address", at)); colon != std::string::npos)
        return static_cast<uint16_t>(std::atoi(line.c_str() + colon + 1));
  return 0;
}

pid_t pidFrom(const std::string& file) {
  std::ifstream in(file);
  pid_t pid = 0;
  in >> pid;
  return pid;
}

// CPU seconds used, over an interval, by the operator, the API server and etcd.
struct CpuUse {
  double op = 0, apiserver = 0, etcd = 0, agents = 0; // agents: this process, which plays them
};

std::string wallClock() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  localtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%H:%M:%S", &tm);
  return text;
}

std::string mib(long kib) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", kib / 1024.0);
  return text;
}

std::string nodeName(int i) {
  char name[32];
  std::snprintf(name, sizeof name, "node-%04d", i);
  return name;
}

std::string chainName(int i) {
  char name[32];
  std::snprintf(name, sizeof name, "chain-%02d", i);
  return name;
}

// A chain of three programs with global data and map arguments: about 1 KiB per node entry.
Json chainObject(int i) {
  Json c = Json::parse(R"({"apiVersion":"bpfchain.io/v1alpha1","kind":"BpfChain","metadata":{},
    "spec":{"hook":"xdp","priority":100,"nodeSelector":{"matchLabels":{"bench.bpfchain.io/node":"yes"}},
            "interfaces":{"names":["eth0","/^ens[0-9]+$/"]},
            "rollout":{"canaryNodes":0,"maxUnavailable":"100%","failurePolicy":"Halt"},
            "programs":[]}})");
  c["metadata"]["name"] = Json::string(chainName(i));
  c["spec"]["priority"] = Json::number(100 + i);
  const char* programs[] = {"ratelimit", "connlimit", "telemetry"};
  for (size_t p = 0; p < 3; ++p) {
    Json& prog = c["spec"]["programs"][p];
    std::string name = programs[p];
    prog["name"] = Json::string(name);
    std::string url = "https://packages.example/";
    url += name;
    url += "/1.2.0/";
    url += name;
    url += ".tar.gz";
    prog["package"]["url"] = Json::string(url);
    prog["package"]["sha256"] = Json::string(std::string(63, '0') + std::to_string(p));
    prog["entry"] = Json::string("xdp_" + name);
    prog["nextMap"] = Json::string("xdp_" + name + "_next");
    prog["globalData"]["rate_limit"] = Json::string("1000");
    prog["mapArgs"][0]["map"] = Json::string(name + "_ports");
    prog["mapArgs"][0]["mode"] = Json::string("replace");
    prog["mapArgs"][0]["entries"][0]["key"] = Json::string("8080");
    prog["mapArgs"][0]["entries"][0]["value"] = Json::string("1");
  }
  return c;
}

// The agents of every node, and the bench's view of every BpfNodeConfig's spec. As real
// agents, they take each entry's revision by the shared rule (api::entryRef: a reference as
// it is, a membership entry from its BpfChain's status.published, watched), resolve it to its
// ControllerRevision and check its digest (api::mismatch) before they report a generation:
// Ready, or Failed with the reason (a node told to fail a generation reports
// VerifierRejected). A reference whose revision the watch has not delivered yet waits for it.
// One process plays every agent: one watch per resource, not one per node, so the API
// server's fan-out of chain status events to 1,000 agents is not part of this benchmark.
class SimulatedAgents {
public:
  SimulatedAgents(k8s::Client& client, int threads, std::string write, bool fullStatus)
      : client_(client), write_(std::move(write)), full_(fullStatus),
        informer_(client, api::kBpfNodeConfigs),
        revisions_(client, api::kControllerRevisions,
                   {.ns = "bpfchain-system", .labelSelector = api::kChainLabel}),
        chains_(client, api::kBpfChains, {.stripManagedFields = true}) {
    informer_.addEventHandler({
        .onAdd = [this](const Json& o) { observe(o); },
        .onUpdate = [this](const Json&, const Json& o) { observe(o); },
        .onDelete = [](const Json&) {},
    });
    revisions_.addEventHandler({
        .onAdd = [this](const Json& o) { onRevision(o); },
        .onUpdate = [this](const Json&, const Json& o) { onRevision(o); },
        .onDelete = [](const Json&) {},
    });
    chains_.addEventHandler({
        .onAdd = [this](const Json& o) { onChain(o); },
        .onUpdate = [this](const Json&, const Json& o) { onChain(o); },
        .onDelete = [](const Json&) {},
    });
    revisions_.start();
    revisions_.waitForSync(60s);
    chains_.start();
    chains_.waitForSync(60s);
    informer_.start();
    for (int t = 0; t < threads; ++t)
      workers_.emplace_back([this] { work(); });
  }
  ~SimulatedAgents() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    dirtyCv_.notify_all();
    for (auto& t : workers_)
      t.join();
    informer_.stop();
    revisions_.stop();
    chains_.stop();
  }

  // Blocks until `done` holds (checked under the lock every 20 ms); false after `timeout`.
  bool waitFor(const std::function<bool()>& done, std::chrono::seconds timeout) {
    auto deadline = SteadyClock::now() + timeout;
    for (;;) {
      {
        std::lock_guard lock(mu_);
        if (done())
          return true;
      }
      if (SteadyClock::now() >= deadline)
        return false;
      std::this_thread::sleep_for(20ms);
    }
  }
  // Under waitFor's lock: how many configs there are, and how many have `chain` at
  // `generation` in spec (in status, Ready).
  size_t configs() const { return spec_.size(); }
  size_t assigned(const std::string& chain, int64_t generation) const {
    return std::count_if(spec_.begin(), spec_.end(), [&](const auto& node) {
      auto it = node.second.find(chain);
      return it != node.second.end() && it->second.generation == generation;
    });
  }
  // Nodes whose status reports `chain` at `generation` Ready.
  size_t readyAt(const std::string& chain, int64_t generation) const {
    return std::count_if(status_.begin(), status_.end(), [&](const auto& node) {
      auto it = node.second.find(chain);
      return it != node.second.end() && it->second == generation;
    });
  }
  size_t everywhere(int64_t generation, int chains) const {
    return std::count_if(spec_.begin(), spec_.end(), [&](const auto& node) {
      int at = 0;
      for (const auto& entry : node.second)
        at += entry.second.generation == generation;
      return at == chains;
    });
  }
  uint64_t statusWrites() const { return writes_; }
  // Writes `node`'s last status again with agent.heartbeatTime set to now, as the agent's
  // heartbeat does (the whole status, written as every status is). False when it never wrote one.
  bool heartbeat(const std::string& node) {
    Json body;
    {
      std::lock_guard lock(mu_);
      auto it = lastStatus_.find(node);
      if (it == lastStatus_.end())
        return false;
      body = it->second;
    }
    body["status"]["agent"]["heartbeatTime"] = Json::string(rfc3339Now());
    return writeStatus(node, body);
  }
  // Status writes of the BpfChains the watch showed, and those that changed what they publish.
  uint64_t chainStatusWrites() const { return chainWrites_; }
  uint64_t publishes() const { return publishes_; }
  // Spec writes the watch showed (a node's entries changed) and their objects' sizes.
  uint64_t specChanges() const { return specChanges_; }
  uint64_t specBytes() const { return specBytes_; }
  uint64_t statusBytes() const { return statusBytes_; }
  // The most nodes at once with `chain` at the target in spec and not Ready there (the
  // rollout's nodes applying), since the last call to watchApplying(chain, target). "At once"
  // is in etcd's order, not in the order this process's two watches (BpfChains, BpfNodeConfigs)
  // deliver events, which may lag each other: a node applies from the resourceVersion of the
  // write that gave it the target (the chain's published rollout, or its own spec) to that of
  // its status write reporting it Ready there.
  void watchApplying(const std::string& chain, int64_t target) {
    std::lock_guard lock(mu_);
    watchChain_ = chain;
    watchTarget_ = target;
    targetedAt_.clear();
    readyAt_.clear();
    for (const auto& [node, entries] : spec_) // given it before this call: since ever
      noteApplying(node, 0);
  }
  size_t maxApplying() const {
    std::lock_guard lock(mu_);
    std::vector<std::pair<int64_t, int>> steps; // (resourceVersion, +1 targeted / -1 Ready)
    for (const auto& [node, from] : targetedAt_) {
      auto to = readyAt_.find(node);
      if (to != readyAt_.end() && to->second <= from)
        continue; // Ready there when it got the target: never applying
      steps.emplace_back(from, 1);
      if (to != readyAt_.end())
        steps.emplace_back(to->second, -1);
    }
    std::sort(steps.begin(), steps.end()); // at one version, -1 before +1: no overlap there
    size_t most = 0, now = 0;
    for (const auto& [version, step] : steps) {
      now = step > 0 ? now + 1 : now - 1;
      most = std::max(most, now);
    }
    return most;
  }
  // The agents hold each apply this long before they report it (a real apply's time).
  void setApplyTime(std::chrono::milliseconds t) { applyTime_ = t; }
  // Nodes report `chain` at `generation` Failed (VerifierRejected).
  void failOn(const std::string& node, const std::string& chain, int64_t generation) {
    std::lock_guard lock(mu_);
    failing_.insert({node, chain, generation});
  }

private:
  struct Entry {
    int64_t generation = 0;
    std::optional<api::ChainRef> ref;
    bool operator==(const Entry&) const = default;
  };

  void onRevision(const Json& object) {
    auto revision = api::chainRevisionFromJson(object);
    if (!revision)
      return;
    std::lock_guard lock(mu_);
    revisionsSeen_[revision->name] = std::move(*revision);
    for (const auto& node : waiting_)
      queue(node);
    waiting_.clear();
  }

  void queue(const std::string& node) {
    if (!queued_.contains(node)) {
      queued_.insert(node);
      dirty_.push_back(node);
      dirtyCv_.notify_one();
    }
  }

  void onChain(const Json& chain) {
    auto published = api::publishedOf(chain);
    if (!published || !*published)
      return;
    std::string name = k8s::nameOf(chain);
    std::lock_guard lock(mu_);
    ++chainWrites_;
    auto& known = published_[name];
    if (known == **published)
      return;
    ++publishes_;
    known = std::move(**published);
    int64_t version = versionOf(chain);
    // Only this chain's entry of each node can change: re-resolve that one, not the node's
    // every entry (1,000 nodes at every batch).
    for (const auto& [node, entries] : raw_) {
      auto entry = entries.find(name);
      if (entry == entries.end())
        continue;
      auto ref = api::entryRef(entry->second, node, &known, "spec.chains[]");
      auto& chains = spec_[node];
      if (ref && *ref)
        chains[name] = Entry{(*ref)->generation, **ref};
      else if (api::isMembership(entry->second))
        chains.erase(name);
      const auto& reported = reported_[node];
      auto at = reported.find(name);
      auto now = chains.find(name);
      if ((now == chains.end()) != (at == reported.end()) ||
          (now != chains.end() && at->second != now->second.generation))
        queue(node);
      if (name == watchChain_)
        noteApplying(node, version);
    }
  }

  // The node's entries as it runs them, by the shared rule; a membership entry whose chain's
  // rollout gives the node nothing (or is not known yet) is not on the node.
  std::map<std::string, Entry> effective(const std::string& node) const {
    std::map<std::string, Entry> chains;
    auto it = raw_.find(node);
    if (it == raw_.end())
      return chains;
    for (const auto& [name, entry] : it->second) {
      auto p = published_.find(name);
      auto ref =
          api::entryRef(entry, node, p == published_.end() ? nullptr : &p->second, "spec.chains[]");
      if (ref && *ref)
        chains[name] = Entry{(*ref)->generation, **ref};
      else if (!ref && !api::isMembership(entry) && entry.has_field("generation"))
        chains[name] = Entry{entry.at("generation").as_number().to_int64(), std::nullopt};
    }
    return chains;
  }

  void observe(const Json& config) {
    std::map<std::string, Json> entries;
    if (config.has_field("spec") && config.at("spec").has_field("chains"))
      for (const auto& entry : config.at("spec").at("chains").as_array())
        entries[k8s::stringAt(entry, {"name"})] = entry;
    std::map<std::string, int64_t> reported, ready;
    if (config.has_field("status") && config.at("status").has_field("chains"))
      for (const auto& entry : config.at("status").at("chains").as_array()) {
        int64_t g = entry.at("generation").as_number().to_int64();
        reported[k8s::stringAt(entry, {"name"})] = g;
        if (k8s::stringAt(entry, {"phase"}) == "Ready")
          ready[k8s::stringAt(entry, {"name"})] = g;
      }
    std::string node = k8s::nameOf(config);
    std::lock_guard lock(mu_);
    nodeGeneration_[node] = k8s::generationOf(config);
    if (raw_[node] != entries) {
      ++specChanges_;
      specBytes_ += config.serialize().size();
    }
    raw_[node] = std::move(entries);
    status_[node] = ready;
    reported_[node] = std::move(reported);
    refresh(node, versionOf(config));
  }

  // Under mu_: the node's effective entries, queued for a report when it is behind them;
  // `version` is that of the event that changed them.
  void refresh(const std::string& node, int64_t version) {
    std::map<std::string, Entry> chains = effective(node);
    spec_[node] = chains;
    const auto& reported = reported_[node];
    bool behind = chains.size() != reported.size();
    for (const auto& [chain, e] : chains)
      behind = behind || !reported.contains(chain) || reported.at(chain) != e.generation;
    if (behind)
      queue(node);
    noteApplying(node, version);
  }

  // Under mu_: when the watched chain's target reached the node's spec, and its Ready report,
  // first seen at `version` (the resourceVersion of the event that showed it).
  void noteApplying(const std::string& node, int64_t version) {
    if (watchChain_.empty())
      return;
    auto entries = spec_.find(node);
    if (entries != spec_.end()) {
      auto it = entries->second.find(watchChain_);
      if (it != entries->second.end() && it->second.generation == watchTarget_)
        targetedAt_.try_emplace(node, version);
    }
    auto st = status_.find(node);
    if (st != status_.end() && st->second.contains(watchChain_) &&
        st->second.at(watchChain_) == watchTarget_)
      readyAt_.try_emplace(node, version);
  }

  // Reports, for one node at a time, every chain in its spec at its generation.
  void work() {
    for (;;) {
      std::string node;
      std::map<std::string, Entry> chains;
      std::map<std::string, std::pair<std::string, std::string>> verdicts; // phase, reason
      {
        std::unique_lock lock(mu_);
        dirtyCv_.wait(lock, [&] { return stop_ || !dirty_.empty(); });
        if (stop_)
          return;
        node = dirty_.front();
        dirty_.erase(dirty_.begin());
        queued_.erase(node);
        chains = spec_[node];
        bool unresolved = false;
        for (const auto& [chain, e] : chains) {
          std::pair<std::string, std::string> v{"Ready", ""};
          if (e.ref) {
            auto it = revisionsSeen_.find(e.ref->revision);
            if (it == revisionsSeen_.end()) {
              unresolved = true; // the watch has not brought it yet
              break;
            }
            if (api::mismatch(*e.ref, it->second))
              v = {"Failed", "DigestMismatch"};
          }
          if (failing_.contains({node, chain, e.generation}))
            v = {"Failed", "VerifierRejected"};
          verdicts[chain] = v;
        }
        if (unresolved) {
          waiting_.insert(node);
          continue;
        }
      }
      if (applyTime_.count() > 0)
        std::this_thread::sleep_for(applyTime_);
      Json body = Json::parse(R"({"apiVersion":"bpfchain.io/v1alpha1","kind":"BpfNodeConfig",
                                  "metadata":{},"status":{"chains":[]}})");
      body["metadata"]["name"] = Json::string(node);
      if (full_) {
        body["status"] = agentStatus(node, chains, verdicts);
      } else {
        size_t n = 0;
        for (const auto& [chain, e] : chains) {
          Json& s = body["status"]["chains"][n++];
          s["name"] = Json::string(chain);
          s["generation"] = Json::number(e.generation);
          if (e.ref)
            s["revision"] = Json::string(e.ref->revision);
          s["phase"] = Json::string(verdicts[chain].first);
          s["reason"] = Json::string(verdicts[chain].second);
        }
      }
      statusBytes_ += body.serialize().size();
      {
        std::lock_guard lock(mu_);
        lastStatus_[node] = body;
      }
      ++writes_;
      (void)writeStatus(node, body);
    }
  }

  // The status subresource written as --agent-status-write says: a PUT as the agent's
  // (k8s::updateStatus), a merge patch or a server-side apply. False (and said) when it failed.
  bool writeStatus(const std::string& node, const Json& body) {
    k8s::ApiResult<Json> written = [&]() -> k8s::ApiResult<Json> {
      if (write_ == "apply")
        return client_.apply(api::kBpfNodeConfigs, body, "bench-agent", true, "status");
      if (write_ == "update") {
        std::optional<Json> seen = informer_.get(node);
        if (!seen) {
          auto read = client_.get(api::kBpfNodeConfigs, "", node);
          if (!read)
            return read;
          seen = std::move(*read);
        }
        k8s::WriteVersion version; // none kept: a write the watch lags meets one conflict
        return k8s::updateStatus(client_, api::kBpfNodeConfigs, std::move(*seen), body.at("status"),
                                 "bench-agent", version);
      }
      Json patch = Json::object();
      patch["status"] = body.at("status");
      return client_.patch(api::kBpfNodeConfigs, "", node, k8s::PatchType::Merge, patch,
                           {.fieldManager = "bench-agent", .subresource = "status"});
    }();
    if (!written && !written.error().notFound())
      std::fprintf(stderr, "agent %s: %s\n", node.c_str(), written.error().describe().c_str());
    return written.ok();
  }

  // What bpfchain-agent writes for the node (cluster_source.cpp: its statusOf, the Ready
  // condition, api::toJson): every chain on one host interface (eth0, XDP) as a root and one
  // program; what runs stays the last Ready generation while a newer one fails.
  Json agentStatus(const std::string& node, const std::map<std::string, Entry>& chains,
                   const std::map<std::string, std::pair<std::string, std::string>>& verdicts) {
    api::NodeConfigStatus s;
    // heartbeatTime in every write, as the agent's (cluster_source.cpp report): without it, a
    // node's first heartbeat would look like an agent's first report to the operator.
    s.agent = {
        "bench", kernelRelease_, rfc3339Now(), {{"btf", true}, {"tcx", true}, {"xdpLink", true}}};
    std::lock_guard lock(mu_);
    s.observedGeneration = nodeGeneration_[node];
    auto& running = running_[node];
    for (const auto& [chain, e] : chains) {
      const auto& [phase, reason] = verdicts.at(chain);
      std::string revision = e.ref ? e.ref->revision : "";
      auto r = running.find(chain);
      if (phase == "Ready" && (r == running.end() || r->second.generation != e.generation)) {
        uint32_t root = r == running.end() ? ++programIds_ : r->second.programIds.front();
        r = running.insert_or_assign(chain, Running{e.generation, revision, {root, ++programIds_}})
                .first;
      }
      api::NodeChainStatus c{chain, e.generation, 0, revision, "", phase, reason, "", {}};
      if (r != running.end()) {
        c.runningGeneration = r->second.generation;
        c.runningRevision = r->second.revision;
        c.attachments.push_back({"eth0", "xdp", "", r->second.programIds});
      }
      if (phase == "Failed") {
        c.message = "eth0: programs[0] (";
        c.message.append(chain).append("/p0): ").append(reason);
      }
      s.chains.push_back(std::move(c));
    }
    api::countPhases(s);
    auto& [since, wasReady] = readySince_[node];
    if (since.empty() || wasReady != (s.failedCount == 0))
      since = rfc3339Now();
    wasReady = s.failedCount == 0;
    s.conditions.push_back(api::readyCondition(s, since, nodeGeneration_[node]));
    return api::toJson(s);
  }

  struct Running {
    int64_t generation = 0;
    std::string revision;
    std::vector<uint32_t> programIds; // root, program
  };

  k8s::Client& client_;
  std::string write_;
  bool full_ = true;
  std::string kernelRelease_ = [] {
    struct utsname u {};
    return ::uname(&u) == 0 ? std::string(u.release) : std::string();
  }();
  std::map<std::string, std::map<std::string, Running>> running_;  // node -> chain
  std::map<std::string, std::pair<std::string, bool>> readySince_; // node -> time, Ready
  std::map<std::string, Json> lastStatus_;                         // node -> last body written
  std::map<std::string, int64_t> nodeGeneration_;
  uint32_t programIds_ = 0;
  k8s::Informer informer_;
  k8s::Informer revisions_;
  k8s::Informer chains_;
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, Json>> raw_;         // node -> chain -> spec entry
  std::map<std::string, std::map<std::string, int64_t>> reported_; // node -> chain -> gen
  std::map<std::string, api::PublishedRollout> published_;         // by chain
  std::condition_variable dirtyCv_;
  std::map<std::string, std::map<std::string, Entry>> spec_;     // node -> chain -> entry
  std::map<std::string, std::map<std::string, int64_t>> status_; // node -> chain -> Ready gen
  std::map<std::string, api::ChainRevision> revisionsSeen_;
  std::set<std::string> waiting_; // nodes with a reference to a revision not seen yet
  std::set<std::tuple<std::string, std::string, int64_t>> failing_;
  std::vector<std::string> dirty_;
  std::set<std::string> queued_;
  bool stop_ = false;
  std::string watchChain_;
  int64_t watchTarget_ = 0;
  std::map<std::string, int64_t> targetedAt_; // node -> resourceVersion, for watchApplying
  std::map<std::string, int64_t> readyAt_;
  std::chrono::milliseconds applyTime_{0};
  std::atomic<uint64_t> writes_{0}, specChanges_{0}, specBytes_{0}, statusBytes_{0};
  std::atomic<uint64_t> chainWrites_{0}, publishes_{0};
  std::vector<std::thread> workers_;
};

bool chainReady(k8s::Client& client, const std::string& name, int64_t generation) {
  auto c = client.get(kChains, "", name);
  if (!c || !c->has_field("status") || !c->at("status").has_field("conditions"))
    return false;
  for (const auto& cond : c->at("status").at("conditions").as_array())
    if (k8s::stringAt(cond, {"type"}) == "Ready")
      return k8s::stringAt(cond, {"status"}) == "True" &&
             cond.at("observedGeneration").as_number().to_int64() == generation;
  return false;
}

// Polls until every chain in `names` is Ready at `generation` (50 ms apart).
bool waitReady(k8s::Client& client, const std::vector<std::string>& names, int64_t generation,
               std::chrono::seconds timeout) {
  auto deadline = SteadyClock::now() + timeout;
  std::set<std::string> waiting(names.begin(), names.end());
  while (!waiting.empty() && SteadyClock::now() < deadline) {
    for (auto it = waiting.begin(); it != waiting.end();)
      it = chainReady(client, *it, generation) ? waiting.erase(it) : std::next(it);
    if (!waiting.empty())
      std::this_thread::sleep_for(50ms);
  }
  return waiting.empty();
}

struct Stats {
  double median, min, max;
};
Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {bench::medianOfSorted(v), v.front(), v.back()};
}

std::string seconds(double ms) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f s", ms / 1000);
  return text;
}

int runBenchmark(const Options& o) {
  std::unique_ptr<bpfchain::testing::ControlPlane> plane;
  std::string kubeconfig = o.kubeconfig;
  if (kubeconfig.empty()) {
    std::fprintf(stderr, "starting a control plane...\n");
    auto started = bpfchain::testing::ControlPlane::start();
    if (!started)
      kCommandLine.die(started.error().message());
    plane = std::make_unique<bpfchain::testing::ControlPlane>(std::move(*started));
    kubeconfig = plane->kubeconfig();
    auto crds = plane->installCrds(o.crds, {"bpfchains.bpfchain.io", "bpfnodeconfigs.bpfchain.io"});
    if (!crds)
      kCommandLine.die(crds.error().message());
  }
  auto config = k8s::loadKubeconfig(kubeconfig);
  if (!config)
    kCommandLine.die(config.error().message());
  auto created = k8s::Client::create(*config);
  if (!created)
    kCommandLine.die(created.error().message());
  k8s::Client& client = **created;
  Json ns = Json::parse(
      R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bpfchain-system"}})");
  (void)client.create(k8s::resources::kNamespaces, ns);

  std::fprintf(stderr, "creating %d nodes...\n", o.nodes);
  auto t0 = SteadyClock::now();
  parallel(o.nodes, 8, [&](int i) {
    Json node = Json::parse(R"({"apiVersion":"v1","kind":"Node","metadata":{"labels":{
      "bench.bpfchain.io/node":"yes","kubernetes.io/os":"linux"}}})");
    node["metadata"]["name"] = Json::string(nodeName(i));
    auto r = client.create(k8s::resources::kNodes, node);
    if (!r && !r.error().alreadyExists())
      kCommandLine.die("create " + nodeName(i) + ": " + r.error().describe());
  });
  std::fprintf(stderr, "  %d nodes in %s\n", o.nodes, seconds(msSince(t0)).c_str());

  SimulatedAgents agents(client, o.agentThreads, o.agentWrite, o.fullStatus);

  auto logDir = bpfchain::testing::TempDir::create("operator-bench");
  if (!logDir)
    kCommandLine.die(logDir.error().message());
  std::string log = o.operatorLog.empty() ? logDir->path() + "/operator.log" : o.operatorLog;
  std::vector<std::string> argvOperator{o.operatorPath, "--kubeconfig", kubeconfig,
                                        "--metrics-address", "127.0.0.1:0"};
  argvOperator.insert(argvOperator.end(), o.operatorArgs.begin(), o.operatorArgs.end());
  auto startedAt = SteadyClock::now();
  auto op = bpfchain::testing::ChildProcess::spawn(argvOperator, log);
  if (!op)
    kCommandLine.die(op.error().message());
  auto showLog = [&] {
    std::ifstream in(log);
    std::string line;
    std::vector<std::string> lines;
    while (std::getline(in, line))
      lines.push_back(line);
    for (size_t i = lines.size() > 20 ? lines.size() - 20 : 0; i < lines.size(); ++i)
      std::fprintf(stderr, "  operator: %s\n", lines[i].c_str());
  };

  // The control plane's processes, when it is one of scripts/local-cluster.sh.
  std::string clusterDir = kubeconfig.substr(0, kubeconfig.rfind('/'));
  pid_t apiserverPid = pidFrom(clusterDir + "/kube-apiserver.pid");
  pid_t etcdPid = pidFrom(clusterDir + "/etcd.pid");
  auto cpuNow = [&] {
    return CpuUse{cpuSeconds(op->pid()), apiserverPid ? cpuSeconds(apiserverPid) : 0,
                  etcdPid ? cpuSeconds(etcdPid) : 0, cpuSeconds(getpid())};
  };
  auto cpuSince = [&](const CpuUse& before) {
    CpuUse now = cpuNow();
    return CpuUse{now.op - before.op, now.apiserver - before.apiserver, now.etcd - before.etcd,
                  now.agents - before.agents};
  };
  auto describeCpu = [](const CpuUse& c) {
    char text[160];
    std::snprintf(text, sizeof text,
                  "CPU: operator %.1f s, kube-apiserver %.1f s, etcd %.1f s, simulated agents "
                  "%.1f s",
                  c.op, c.apiserver, c.etcd, c.agents);
    return std::string(text);
  };

  // Startup: a BpfNodeConfig per node.
  size_t n = static_cast<size_t>(o.nodes);
  bool exited = false;
  if (!agents.waitFor(
          [&] {
            exited = !op->running();
            return exited || agents.configs() == n;
          },
          600s) ||
      exited) {
    showLog();
    kCommandLine.die(exited ? "the operator exited before it created every BpfNodeConfig"
                            : "the operator did not create every BpfNodeConfig within 600 s");
  }
  double startupMs = msSince(startedAt);
  uint16_t metricsPort = metricsPortFrom(log);
  std::this_thread::sleep_for(2s);
  auto [startRss, startHwm] = memoryOf(op->pid());
  std::fprintf(stderr, "startup: %zu BpfNodeConfigs %s after the operator started; RSS %s\n", n,
               seconds(startupMs).c_str(), mib(startRss).c_str());

  // Creation: every chain at once.
  std::vector<std::string> names;
  for (int c = 0; c < o.chains; ++c)
    names.push_back(chainName(c));
  CpuUse createCpu0 = cpuNow();
  auto createdAt = SteadyClock::now();
  for (int c = 0; c < o.chains; ++c) {
    auto r = client.create(kChains, chainObject(c));
    if (!r)
      kCommandLine.die("create " + chainName(c) + ": " + r.error().describe());
  }
  if (!agents.waitFor([&] { return agents.everywhere(1, o.chains) == n; }, 1800s)) {
    showLog();
    kCommandLine.die("the chains did not reach every node within 1800 s");
  }
  double createWrittenMs = msSince(createdAt);
  std::fprintf(stderr, "create: %d chains in every BpfNodeConfig after %s\n", o.chains,
               seconds(createWrittenMs).c_str());
  if (!waitReady(client, names, 1, 1800s)) {
    showLog();
    kCommandLine.die("the chains were not Ready within 1800 s");
  }
  double createReadyMs = msSince(createdAt);
  CpuUse createCpu = cpuSince(createCpu0);
  std::fprintf(stderr, "create: %d chains Ready after %s; %s\n", o.chains,
               seconds(createReadyMs).c_str(), describeCpu(createCpu).c_str());
  std::this_thread::sleep_for(3s);
  auto [createRss, createHwm] = memoryOf(op->pid());

  // Changes: one chain at a time.
  std::vector<double> written, ready;
  std::vector<CpuUse> changeCpu;
  std::vector<double> specWrites, specKiB, statusWrites, statusKiB, chainWrites, publishes;
  std::vector<double> reconciles;
  for (int r = 0; r < o.runs; ++r) {
    std::string name = chainName(r % o.chains);
    Json patch = Json::object();
    patch["spec"]["priority"] = Json::number(1000 + r);
    CpuUse cpu0 = cpuNow();
    uint64_t spec0 = agents.specChanges(), specBytes0 = agents.specBytes();
    uint64_t status0 = agents.statusWrites(), statusBytes0 = agents.statusBytes();
    uint64_t chain0 = agents.chainStatusWrites(), published0 = agents.publishes();
    double reconciles0 = chainReconciles(metricsPort);
    std::string startedClock = wallClock();
    auto changedAt = SteadyClock::now();
    auto patched = client.patch(kChains, "", name, k8s::PatchType::Merge, patch);
    if (!patched)
      kCommandLine.die("patch " + name + ": " + patched.error().describe());
    int64_t generation = k8s::generationOf(*patched);
    if (!agents.waitFor([&] { return agents.assigned(name, generation) == n; }, 600s)) {
      showLog();
      kCommandLine.die("generation " + std::to_string(generation) + " of " + name +
                       " did not reach every node within 600 s");
    }
    written.push_back(msSince(changedAt));
    if (!waitReady(client, {name}, generation, 600s)) {
      showLog();
      kCommandLine.die(name + " was not Ready within 600 s");
    }
    ready.push_back(msSince(changedAt));
    changeCpu.push_back(cpuSince(cpu0));
    if (double now = chainReconciles(metricsPort); now >= 0 && reconciles0 >= 0)
      reconciles.push_back(now - reconciles0);
    if (!reconciles.empty())
      std::fprintf(stderr, "change %d: %.0f chain reconciles\n", r + 1, reconciles.back());
    uint64_t specN = agents.specChanges() - spec0, statusN = agents.statusWrites() - status0;
    specWrites.push_back(static_cast<double>(specN));
    statusWrites.push_back(static_cast<double>(statusN));
    specKiB.push_back(specN ? (agents.specBytes() - specBytes0) / 1024.0 / specN : 0);
    chainWrites.push_back(static_cast<double>(agents.chainStatusWrites() - chain0));
    publishes.push_back(static_cast<double>(agents.publishes() - published0));
    statusKiB.push_back(statusN ? (agents.statusBytes() - statusBytes0) / 1024.0 / statusN : 0);
    std::fprintf(stderr, "change %d (%s generation %lld, at %s): written %s, Ready %s; %s\n", r + 1,
                 name.c_str(), static_cast<long long>(generation), startedClock.c_str(),
                 seconds(written.back()).c_str(), seconds(ready.back()).c_str(),
                 describeCpu(changeCpu.back()).c_str());
    std::this_thread::sleep_for(1s);
  }
  std::this_thread::sleep_for(2s);
  auto [steadyRss, steadyHwm] = memoryOf(op->pid());

  // A rollout with a canary and maxUnavailable 10%: it completes, and never more nodes apply
  // the target at once than maxUnavailable allows (the agents' reports say which apply).
  std::string rollName = chainName(0);
  int maxUnavailable = (o.nodes + 9) / 10;
  auto setRollout = [&](const std::string& name, const char* rollout, int priority) {
    Json patch = Json::object();
    patch["spec"]["rollout"] = Json::parse(rollout);
    patch["spec"]["priority"] = Json::number(priority);
    auto patched = client.patch(kChains, "", name, k8s::PatchType::Merge, patch);
    if (!patched)
      kCommandLine.die("patch " + name + ": " + patched.error().describe());
    return k8s::generationOf(*patched);
  };
  auto canaryAt = SteadyClock::now();
  int64_t canaryGeneration = setRollout(
      rollName, R"({"canaryNodes":1,"maxUnavailable":"10%","failurePolicy":"Halt"})", 3000);
  agents.watchApplying(rollName, canaryGeneration);
  if (!waitReady(client, {rollName}, canaryGeneration, 900s)) {
    showLog();
    kCommandLine.die(rollName + " (canary 1, maxUnavailable 10%) was not Ready within 900 s");
  }
  double canaryMs = msSince(canaryAt);
  size_t maxApplying = agents.maxApplying();
  std::fprintf(stderr,
               "canary 1 + maxUnavailable 10%%: Ready after %s, at most %zu nodes "
               "applying at once (allowed %d)\n",
               seconds(canaryMs).c_str(), maxApplying, maxUnavailable);
  if (maxApplying > static_cast<size_t>(maxUnavailable))
    kCommandLine.die("more nodes applied at once than maxUnavailable allows");

  // Rollback: every node takes a generation that one node rejects; every node goes back to
  // the last generation Ready everywhere.
  std::string backName = chainName(o.chains > 1 ? 1 : 0);
  int64_t stable = setRollout(
      backName, R"({"canaryNodes":0,"maxUnavailable":"100%","failurePolicy":"Rollback"})", 4000);
  if (!waitReady(client, {backName}, stable, 600s))
    kCommandLine.die(backName + " generation " + std::to_string(stable) + " was not Ready");
  Json bad = Json::object();
  bad["spec"]["priority"] = Json::number(4001);
  // The generation the patch will make: told to the failing node before it sees it.
  auto current = client.get(kChains, "", backName);
  if (!current)
    kCommandLine.die("get " + backName + ": " + current.error().describe());
  int64_t badGeneration = k8s::generationOf(*current) + 1;
  agents.failOn(nodeName(o.nodes / 2), backName, badGeneration);
  auto backAt = SteadyClock::now();
  if (auto p = client.patch(kChains, "", backName, k8s::PatchType::Merge, bad); !p)
    kCommandLine.die("patch " + backName + ": " + p.error().describe());
  if (!agents.waitFor([&] { return agents.assigned(backName, badGeneration) >= 1; }, 300s))
    kCommandLine.die("generation " + std::to_string(badGeneration) + " never reached a node");
  if (!agents.waitFor(
          [&] {
            return agents.assigned(backName, stable) == n && agents.readyAt(backName, stable) == n;
          },
          600s)) {
    showLog();
    kCommandLine.die("the nodes did not all return to generation " + std::to_string(stable));
  }
  double rollbackMs = msSince(backAt);
  std::fprintf(stderr, "rollback: every node back on generation %lld Ready %s after the change\n",
               static_cast<long long>(stable), seconds(rollbackMs).c_str());

  // The agents' heartbeat at idle: kube-apiserver's CPU over a window with no writes, then over
  // an equal window in which every node rewrites its status once (what the agents' 60 s
  // heartbeat costs when nothing changes).
  CpuUse idleCpu, heartbeatCpu;
  int heartbeats = 0;
  if (o.heartbeatWindowS > 0) {
    auto window = std::chrono::seconds(o.heartbeatWindowS);
    std::this_thread::sleep_for(5s); // the rollback's last status writes settle
    CpuUse idle0 = cpuNow();
    std::this_thread::sleep_for(window);
    idleCpu = cpuSince(idle0);
    CpuUse beat0 = cpuNow();
    auto start = SteadyClock::now();
    for (int i = 0; i < o.nodes; ++i) {
      std::this_thread::sleep_until(start + window * i / o.nodes);
      heartbeats += agents.heartbeat(nodeName(i)) ? 1 : 0;
    }
    std::this_thread::sleep_until(start + window);
    heartbeatCpu = cpuSince(beat0);
    std::fprintf(stderr, "heartbeats: %d in %d s; %s (idle: %s)\n", heartbeats, o.heartbeatWindowS,
                 describeCpu(heartbeatCpu).c_str(), describeCpu(idleCpu).c_str());
  }

  auto stopAt = SteadyClock::now();
  int exitCode = op->stop();
  double stopMs = msSince(stopAt);

  Stats w = stats(written), rd = stats(ready);
  std::printf("\noperator scale: %d nodes x %d chains (each chain on every node), %d runs\n\n",
              o.nodes, o.chains, o.runs);
  std::printf("| what | time | operator RSS (peak) |\n|---|---|---|\n");
  std::printf("| startup: a BpfNodeConfig for each node | %s | %s (%s) |\n",
              seconds(startupMs).c_str(), mib(startRss).c_str(), mib(startHwm).c_str());
  std::printf("| create %d chains: all in every BpfNodeConfig | %s | |\n", o.chains,
              seconds(createWrittenMs).c_str());
  std::printf("| create %d chains: all Ready | %s | %s (%s) |\n", o.chains,
              seconds(createReadyMs).c_str(), mib(createRss).c_str(), mib(createHwm).c_str());
  std::printf("| change one chain: new generation in every BpfNodeConfig | %s (%s - %s) | |\n",
              seconds(w.median).c_str(), seconds(w.min).c_str(), seconds(w.max).c_str());
  std::printf("| change one chain: Ready again | %s (%s - %s) | %s (%s) |\n",
              seconds(rd.median).c_str(), seconds(rd.min).c_str(), seconds(rd.max).c_str(),
              mib(steadyRss).c_str(), mib(steadyHwm).c_str());
  std::printf("| canary 1, maxUnavailable 10%%: change -> Ready (at most %zu of %d allowed "
              "applying at once) | %s | |\n",
              maxApplying, maxUnavailable, seconds(canaryMs).c_str());
  std::printf("| Rollback: change that one node rejects -> every node back on the stable "
              "generation, Ready | %s | |\n",
              seconds(rollbackMs).c_str());
  std::printf("| SIGTERM to exit | %.0f ms (exit %d) | |\n", stopMs, exitCode);
  CpuUse mean;
  for (const auto& c : changeCpu) {
    mean.op += c.op / static_cast<double>(changeCpu.size());
    mean.apiserver += c.apiserver / static_cast<double>(changeCpu.size());
    mean.etcd += c.etcd / static_cast<double>(changeCpu.size());
    mean.agents += c.agents / static_cast<double>(changeCpu.size());
  }
  std::printf("\ncreate: %s\nchange (mean): %s\n", describeCpu(createCpu).c_str(),
              describeCpu(mean).c_str());
  Stats sw = stats(specWrites), sk = stats(specKiB), tw = stats(statusWrites),
        tk = stats(statusKiB);
  std::printf("\nwrites per change, median (min - max): BpfNodeConfig spec %.0f (%.0f - %.0f) "
              "of %.1f KiB each as returned; agents' status %.0f (%.0f - %.0f) of %.2f KiB each "
              "as sent\n",
              sw.median, sw.min, sw.max, sk.median, tw.median, tw.min, tw.max, tk.median);
  Stats cw = stats(chainWrites), pw = stats(publishes);
  std::printf("BpfChain status writes per change, median (min - max): %.0f (%.0f - %.0f), of "
              "which changed status.published (what agents follow): %.0f (%.0f - %.0f)\n",
              cw.median, cw.min, cw.max, pw.median, pw.min, pw.max);
  if (!reconciles.empty()) {
    Stats rc = stats(reconciles);
    std::printf("operator chain reconciles per change (change -> Ready), median (min - max): "
                "%.0f (%.0f - %.0f)\n",
                rc.median, rc.min, rc.max);
  }
  std::printf("simulated agent status writes in all: %llu\n",
              static_cast<unsigned long long>(agents.statusWrites()));
  if (o.heartbeatWindowS > 0) {
    double window = o.heartbeatWindowS;
    std::printf("\nheartbeats: %d status writes in %d s; kube-apiserver %.3f cores (idle: %.3f), "
                "etcd %.3f (idle: %.3f), operator %.3f (idle: %.3f)\n",
                heartbeats, o.heartbeatWindowS, heartbeatCpu.apiserver / window,
                idleCpu.apiserver / window, heartbeatCpu.etcd / window, idleCpu.etcd / window,
                heartbeatCpu.op / window, idleCpu.op / window);
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  Options o = parseOptions(argc, argv);
  ::signal(SIGPIPE, SIG_IGN);
  return kCommandLine.run([&] { return runBenchmark(o); });
}
