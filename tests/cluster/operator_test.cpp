// bpfchain-operator, as a process, against the real kube-apiserver, with simulated agents: a
// thread that plays every node's agent by writing BpfNodeConfig status (Ready, or Failed for
// the node/generation pairs a test names) a short while after each assignment. The operator
// serves its metrics on a free loopback port, which it names in its log.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "api/chain_ref.h"
#include "api/published_rollout.h"
#include "api/resources.h"
#include "harness/control_plane.h"
#include "harness/process.h"
#include "harness/resources.h"
#include "k8s/client.h"

namespace bpfchain::testing {
namespace {

using k8s::Json;
using namespace std::chrono_literals;

[[maybe_unused]] auto* const kControlPlane =
    ::testing::AddGlobalTestEnvironment(new ControlPlaneEnvironment);

const k8s::Resource& kChains = api::kBpfChains;
const k8s::Resource& kNodeConfigs = api::kBpfNodeConfigs;
const std::string kSha(64, 'a');

// The revision `node` runs for its spec.chains[] `entry`, by the rule the agents follow
// (api::entryRef: a reference as it is, a membership entry from the chain's published
// rollout); nullopt when the chain is not on the node (or its rollout not yet known).
std::optional<api::ChainRef> refOfEntry(const Json& entry, const std::string& node,
                                        const std::map<std::string, Json>& chains) {
  std::optional<api::PublishedRollout> published;
  if (auto c = chains.find(k8s::stringAt(entry, {"name"})); c != chains.end())
    if (auto p = api::publishedOf(c->second); p && *p)
      published = **p;
  auto ref = api::entryRef(entry, node, published ? &*published : nullptr, node);
  if (!ref && !api::isReference(entry) && !api::isMembership(entry) &&
      entry.has_field("generation")) { // an inline copy of an operator before references
    return api::ChainRef{k8s::stringAt(entry, {"name"}),
                         entry.at("generation").as_number().to_int64(), "", "", 100};
  }
  return ref ? *ref : std::nullopt;
}

std::map<std::string, Json> chainsByName(k8s::Client& client) {
  std::map<std::string, Json> out;
  if (auto list = client.list(api::kBpfChains, ""))
    for (auto& c : list->items)
      out[k8s::nameOf(c)] = std::move(c);
  return out;
}

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout = 30s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done())
      return true;
    std::this_thread::sleep_for(100ms);
  }
  return done();
}

std::string rfc3339Now() {
  std::time_t t = std::time(nullptr);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buffer;
}

// Plays the agents: each node reports, 300 ms after it sees a chain generation in its spec,
// that generation Ready (or Failed), and drops chains that left its spec; every report carries
// a heartbeat (status.agent.heartbeatTime), as the real agent's.
class SimulatedAgents {
public:
  explicit SimulatedAgents(k8s::Client& client) : client_(client) {
    thread_ = std::thread([this] { run(); });
  }
  ~SimulatedAgents() {
    stop_ = true;
    thread_.join();
  }
  void fail(const std::string& node, int64_t generation,
            const std::string& reason = "VerifierRejected") {
    std::lock_guard lock(mu_);
    failing_[{node, generation}] = reason;
  }
  // The node's agent stops reporting (its status and heartbeat stay as they were) until thawed.
  void freeze(const std::string& node, bool frozen = true) {
    std::lock_guard lock(mu_);
    if (frozen)
      frozen_.insert(node);
    else
      frozen_.erase(node);
  }
  // The most nodes seen applying (assigned but not yet reported) at once, per chain.
  int maxApplying() {
    std::lock_guard lock(mu_);
    return maxApplying_;
  }
  std::vector<std::string> assignmentOrder(const std::string& chain, int64_t generation) {
    std::lock_guard lock(mu_);
    return order_[{chain, generation}];
  }

private:
  void run() {
    while (!stop_) {
      auto configs = client_.list(kNodeConfigs, "");
      if (configs) {
        auto chains = chainsByName(client_);
        int applying = 0;
        for (const auto& config : configs->items)
          applying += report(config, chains);
        std::lock_guard lock(mu_);
        maxApplying_ = std::max(maxApplying_, applying);
      }
      std::this_thread::sleep_for(50ms);
    }
  }

  // Returns how many chains on this node are still applying.
  int report(const Json& config, const std::map<std::string, Json>& chainObjects) {
    std::string node = k8s::nameOf(config);
    {
      std::lock_guard lock(mu_);
      if (frozen_.contains(node))
        return 0;
    }
    Json chains = Json::array();
    size_t n = 0;
    int applying = 0;
    auto now = std::chrono::steady_clock::now();
    if (config.has_field("spec") && config.at("spec").has_field("chains")) {
      for (const auto& entry : config.at("spec").at("chains").as_array()) {
        std::string chain = k8s::stringAt(entry, {"name"});
        auto ref = refOfEntry(entry, node, chainObjects);
        if (!ref)
          continue; // not on this node (yet)
        int64_t generation = ref->generation;
        std::lock_guard lock(mu_);
        auto key = std::make_tuple(node, chain, generation);
        if (!seen_.contains(key)) {
          seen_[key] = now;
          order_[{chain, generation}].push_back(node);
        }
        if (now - seen_[key] < 300ms) {
          ++applying;
          continue; // not reported yet: still applying
        }
        auto failure = failing_.find({node, generation});
        bool failed = failure != failing_.end();
        Json s = Json::object();
        s["name"] = Json::string(chain);
        s["generation"] = Json::number(generation);
        s["phase"] = Json::string(failed ? "Failed" : "Ready");
        s["reason"] = Json::string(failed ? failure->second : "");
        s["message"] = Json::string(failed ? "R1 invalid mem access 'scalar'" : "");
        chains[n++] = s;
      }
    }
    Json body = Json::parse(R"({"apiVersion":"bpfchain.io/v1alpha1","kind":"BpfNodeConfig",
                                "metadata":{},"status":{}})");
    body["metadata"]["name"] = Json::string(node);
    body["status"]["chains"] = chains;
    body["status"]["agent"]["heartbeatTime"] = Json::string(rfc3339Now());
    (void)client_.apply(kNodeConfigs, body, "simulated-agent", true, "status");
    return applying;
  }

  k8s::Client& client_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::map<std::pair<std::string, int64_t>, std::string> failing_; // -> reason
  std::set<std::string> frozen_;
  std::map<std::tuple<std::string, std::string, int64_t>, std::chrono::steady_clock::time_point>
      seen_;
  std::map<std::pair<std::string, int64_t>, std::vector<std::string>> order_;
  int maxApplying_ = 0;
};

class Operator : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    auto& plane = ControlPlaneEnvironment::get();
    auto installed = plane.installCrds(std::string(BPFCHAIN_SOURCE_DIR) + "/crds",
                                       {"bpfchains.bpfchain.io", "bpfnodeconfigs.bpfchain.io"});
    ASSERT_TRUE(installed.ok()) << installed.error().message();
    (void)plane.kubectl({"create", "namespace", "bpfchain-system"});
    auto config = k8s::loadKubeconfig(plane.kubeconfig());
    ASSERT_TRUE(config.ok());
    auto client = k8s::Client::create(*config);
    ASSERT_TRUE(client.ok());
    client_ = std::move(*client).release();
    auto dir = TempDir::create("operator");
    ASSERT_TRUE(dir.ok());
    logDir_ = new TempDir(std::move(*dir));
    auto op = spawnOperator({}, "operator.log");
    ASSERT_TRUE(op.ok()) << op.error().message();
    operator_ = new ChildProcess(std::move(*op));
    agents_ = new SimulatedAgents(*client_);
  }
  static void TearDownTestSuite() {
    delete agents_;
    if (operator_) {
      operator_->stop();
      delete operator_;
    }
    delete logDir_;
    delete client_;
  }

  // bpfchain-operator against the suite's control plane, logging to `log` in the log dir.
  static Result<ChildProcess> spawnOperator(const std::vector<std::string>& extra,
                                            const std::string& log) {
    std::vector<std::string> argv{std::string(BPFCHAIN_BIN_DIR) + "/bpfchain-operator",
                                  "--kubeconfig",
                                  ControlPlaneEnvironment::get().kubeconfig(),
                                  "--cleanup-deadline",
                                  "20",
                                  "--progress-deadline",
                                  "10",
                                  "--agent-stale-seconds",
                                  "8",
                                  "--metrics-address",
                                  "127.0.0.1:0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return ChildProcess::spawn(argv, logDir_->path() + "/" + log);
  }

  static void addNode(const std::string& name, const std::string& role) {
    Json node = Json::parse(R"({"apiVersion":"v1","kind":"Node","metadata":{"labels":{}}})");
    node["metadata"]["name"] = Json::string(name);
    node["metadata"]["labels"]["role"] = Json::string(role);
    auto r = client_->create(k8s::resources::kNodes, node);
    ASSERT_TRUE(r.ok() || r.error().alreadyExists()) << r.error().describe();
  }

  static Json chain(const std::string& name, const std::string& role,
                    const std::vector<std::string>& programs, const std::string& rollout) {
    Json c = Json::parse(R"({"apiVersion":"bpfchain.io/v1alpha1","kind":"BpfChain",
                             "spec":{"hook":"xdp","interfaces":{"names":["eth0"]}}})");
    c["metadata"]["name"] = Json::string(name);
    c["spec"]["nodeSelector"]["matchLabels"]["role"] = Json::string(role);
    c["spec"]["rollout"] = Json::parse(rollout);
    for (size_t i = 0; i < programs.size(); ++i) {
      Json& p = c["spec"]["programs"][i];
      p["name"] = Json::string(programs[i]);
      p["package"]["url"] = Json::string("https://p.example/" + programs[i] + ".tar.gz");
      p["package"]["sha256"] = Json::string(kSha);
    }
    return c;
  }

  static bool gone(const k8s::Resource& r, const std::string& name) {
    auto got = client_->get(r, "", name);
    return !got && got.error().notFound();
  }

  // Get, change, update a BpfChain's spec, again on a 409 Conflict: the operator writes the
  // chain's status (a new resourceVersion) whenever it likes, as in client-go's RetryOnConflict.
  static k8s::ApiResult<Json> updateChain(const std::string& name,
                                          const std::function<void(Json&)>& change) {
    for (int attempt = 0;; ++attempt) {
      auto current = client_->get(kChains, "", name);
      if (!current)
        return current;
      Json next = *current;
      change(next);
      auto written = client_->update(kChains, next);
      if (written || !written.error().conflict() || attempt == 9)
        return written;
    }
  }

  // The spec `node` must run of `chain`, as an agent resolves it: the ControllerRevision its
  // reference names, whose digest must match the reference's (as canonical JSON); "" when
  // there is no entry, no such revision, or the digest does not match.
  static std::string resolvedSpec(const std::string& node, const std::string& chain) {
    auto config = client_->get(kNodeConfigs, "", node);
    if (!config || !config->has_field("spec") || !config->at("spec").has_field("chains"))
      return "";
    for (const auto& e : config->at("spec").at("chains").as_array()) {
      if (k8s::stringAt(e, {"name"}) != chain)
        continue;
      auto ref = refOfEntry(e, node, chainsByName(*client_));
      if (!ref)
        return "";
      auto object = client_->get(api::kControllerRevisions, "bpfchain-system", ref->revision);
      if (!object)
        return "";
      auto revision = api::chainRevisionFromJson(*object);
      EXPECT_TRUE(revision) << revision.error().message();
      if (!revision)
        return "";
      auto why = api::mismatch(*ref, *revision);
      EXPECT_FALSE(why) << *why;
      return why ? "" : api::canonicalJson(revision->spec);
    }
    return "";
  }

  // The generation of `chain` in `node`'s config, or -1 when absent.
  static int64_t assigned(const std::string& node, const std::string& chain) {
    auto config = client_->get(kNodeConfigs, "", node);
    if (!config || !config->has_field("spec") || !config->at("spec").has_field("chains"))
      return -1;
    for (const auto& e : config->at("spec").at("chains").as_array())
      if (k8s::stringAt(e, {"name"}) == chain) {
        auto ref = refOfEntry(e, node, chainsByName(*client_));
        return ref ? ref->generation : -1;
      }
    return -1;
  }

  static std::string conditionOf(const std::string& chain, const std::string& type,
                                 std::string* reason = nullptr) {
    auto c = client_->get(kChains, "", chain);
    if (!c || !c->has_field("status") || !c->at("status").has_field("conditions"))
      return "";
    for (const auto& cond : c->at("status").at("conditions").as_array())
      if (k8s::stringAt(cond, {"type"}) == type) {
        if (reason)
          *reason = k8s::stringAt(cond, {"reason"});
        return k8s::stringAt(cond, {"status"});
      }
    return "";
  }

  // The Json of status.failures of `chain`, serialized ("" when none).
  static std::string failuresOf(const std::string& chain) {
    auto c = client_->get(kChains, "", chain);
    if (!c || !c->has_field("status") || !c->at("status").has_field("failures"))
      return "";
    return c->at("status").at("failures").serialize();
  }

  static std::string conditionMessage(const std::string& chain, const std::string& type) {
    auto c = client_->get(kChains, "", chain);
    if (!c || !c->has_field("status") || !c->at("status").has_field("conditions"))
      return "";
    for (const auto& cond : c->at("status").at("conditions").as_array())
      if (k8s::stringAt(cond, {"type"}) == type)
        return k8s::stringAt(cond, {"message"});
    return "";
  }

  static std::string statusString(const std::string& chain, const char* field) {
    auto c = client_->get(kChains, "", chain);
    return c ? k8s::stringAt(*c, {"status", field}) : "";
  }

  // The port of the metrics server that the operator logging to `log` announced last.
  static uint16_t metricsPort(const std::string& log = "operator.log") {
    const std::string prefix = "serving metrics address=127.0.0.1:";
    std::string text = readFile(logDir_->path() + "/" + log);
    auto at = text.rfind(prefix);
    return at == std::string::npos ? 0 : std::stoi(text.substr(at + prefix.size()));
  }

  struct Http {
    int status = 0;
    std::string body;
  };
  static Http http(uint16_t port, const std::string& path) {
    auto out = runCommand({"curl", "-s", "-m", "5", "-w", "\n%{http_code}",
                           "http://127.0.0.1:" + std::to_string(port) + path});
    if (!out || out->exitCode != 0)
      return {};
    auto nl = out->out.rfind('\n');
    return {std::stoi(out->out.substr(nl + 1)), out->out.substr(0, nl)};
  }

  // The value of the sample written exactly `series` (name{labels}) in a scrape, or -1.
  static double sample(const std::string& scrape, const std::string& series) {
    std::istringstream lines(scrape);
    for (std::string line; std::getline(lines, line);)
      if (line.starts_with(series + " "))
        return std::stod(line.substr(series.size() + 1));
    return -1;
  }

  // "reason|message" per line, of the Events about `object` (cluster-scoped: in "default").
  static std::string eventsOf(const std::string& object) {
    auto out = ControlPlaneEnvironment::get().kubectl(
        {"get", "events", "-n", "default", "--field-selector", "involvedObject.name=" + object,
         "-o", "jsonpath={range .items[*]}{.reason}|{.message}{\"\\n\"}{end}"});
    return out ? out->out : "";
  }

  void dumpLogOnFailure() {
    if (HasFailure()) {
      std::ifstream log(logDir_->path() + "/operator.log");
      std::cerr << "--- operator log ---\n" << log.rdbuf() << "\n";
    }
  }
  void TearDown() override { dumpLogOnFailure(); }

  static inline k8s::Client* client_ = nullptr;
  static inline ChildProcess* operator_ = nullptr;
  static inline SimulatedAgents* agents_ = nullptr;
  static inline TempDir* logDir_ = nullptr;
};

TEST_F(Operator, EveryNodeGetsABpfNodeConfigAndLosesItWithTheNode) {
  addNode("solo-1", "none");
  EXPECT_TRUE(eventually([] { return client_->get(kNodeConfigs, "", "solo-1").ok(); }));
  ASSERT_TRUE(client_->remove(k8s::resources::kNodes, "", "solo-1").ok());
  EXPECT_TRUE(eventually([] { return gone(kNodeConfigs, "solo-1"); }));
}

// A BpfNodeConfig whose Node does not exist (left from while the operator was down, or shown
// by the cache only after its Node's deletion was reconciled) is deleted.
TEST_F(Operator, ABpfNodeConfigWithoutItsNodeIsDeleted) {
  Json config = Json::parse(R"({"apiVersion":"bpfchain.io/v1alpha1","kind":"BpfNodeConfig",
                                "metadata":{"name":"ghost-1"},"spec":{"chains":[]}})");
  auto created = client_->create(kNodeConfigs, config);
  ASSERT_TRUE(created.ok()) << created.error().describe();
  EXPECT_TRUE(eventually([] { return gone(kNodeConfigs, "ghost-1"); }));
}

TEST_F(Operator, RollsOutCanaryFirstThenWithinMaxUnavailable) {
  for (int i = 0; i < 6; ++i)
    addNode("edge-" + std::to_string(i), "edge");
  auto created = client_->create(kChains, chain("edge-protect", "edge", {"counter"},
                                                R"({"canaryNodes":1,"maxUnavailable":2})"));
  ASSERT_TRUE(created.ok()) << created.error().describe();
  EXPECT_TRUE(eventually([] { return conditionOf("edge-protect", "Ready") == "True"; }, 60s));
  EXPECT_EQ(statusString("edge-protect", "ready"), "6/6");
  auto order = agents_->assignmentOrder("edge-protect", 1);
  ASSERT_EQ(order.size(), 6u);
  EXPECT_EQ(order[0], "edge-0"); // the canary, alone
  EXPECT_LE(agents_->maxApplying(), 2);
  std::string reason;
  EXPECT_EQ(conditionOf("edge-protect", "Progressing", &reason), "False");
  EXPECT_EQ(reason, "RolloutComplete");
}

TEST_F(Operator, HaltStopsAtTheFirstFailureAndSaysSo) {
  for (int i = 0; i < 4; ++i)
    addNode("halt-" + std::to_string(i), "halt");
  ASSERT_TRUE(client_
                  ->create(kChains, chain("halting", "halt", {"counter"},
                                          R"({"canaryNodes":1,"maxUnavailable":1})"))
                  .ok());
  ASSERT_TRUE(eventually([] { return conditionOf("halting", "Ready") == "True"; }, 60s));
  agents_->fail("halt-1", 2);
  ASSERT_TRUE(updateChain("halting", [](Json& next) {
                next["spec"]["programs"][1] =
                    chain("x", "x", {"portfilter"}, "{}")["spec"]["programs"][0];
              }).ok());
  std::string reason;
  EXPECT_TRUE(
      eventually([&] { return conditionOf("halting", "Degraded", &reason) == "True"; }, 60s));
  EXPECT_EQ(reason, "VerifierRejected");
  EXPECT_EQ(conditionOf("halting", "Progressing", &reason), "False");
  EXPECT_EQ(reason, "Halted");
  auto halted = client_->get(kChains, "", "halting");
  ASSERT_TRUE(halted.ok());
  EXPECT_EQ(k8s::stringAt(*halted, {"status", "phase"}), "Halted"); // kubectl's STATUS column
  std::this_thread::sleep_for(1s);                                  // nothing more moves
  EXPECT_EQ(assigned("halt-0", "halting"), 2);
  EXPECT_EQ(assigned("halt-1", "halting"), 2);
  EXPECT_EQ(assigned("halt-2", "halting"), 1);
  EXPECT_EQ(assigned("halt-3", "halting"), 1);

  // The story, as `kubectl get events --field-selector involvedObject.name=halting` tells it.
  std::string events;
  EXPECT_TRUE(eventually([&] {
    events = eventsOf("halting");
    return events.find("RolloutHalted|") != std::string::npos;
  }));
  for (const char* line :
       {"RolloutStarted|rolling out generation 1 to 4 node(s)",
        "CanaryReady|the canary node(s) run generation 1 Ready",
        "RolloutComplete|generation 1 runs on 4 node(s), 4 Ready",
        "RolloutStarted|rolling out generation 2 to 4 node(s)",
        "CanaryReady|the canary node(s) run generation 2 Ready",
        "RolloutHalted|generation 2 halted: node halt-1 failed: VerifierRejected: R1 invalid"})
    EXPECT_NE(events.find(line), std::string::npos) << line << " not in:\n" << events;
  EXPECT_EQ(events.find("RolloutComplete|generation 2"), std::string::npos) << events;

  // And as the operator's log tells it: each node write, and the halt with its node and reason.
  std::string log = readFile(logDir_->path() + "/operator.log");
  for (const std::string line :
       {"INFO published rollout chain=halting generation=2 stable=1 target=2 partition=halt-1 "
        "moved=halt-1\n",
        "INFO wrote node config node=halt-3 added=halting\n",
        "WARNING event chain=halting reason=RolloutHalted message=\"generation 2 halted: node "
        "halt-1 failed: VerifierRejected: R1 invalid"})
    EXPECT_NE(log.find(line), std::string::npos) << line << " not in:\n" << log;
}

// Revisions are collected once no node refers to them and no rollback can need them: a
// finished rollout keeps one; one under way keeps every generation a node's spec names, even
// one that is neither the current nor the last Ready everywhere.
TEST_F(Operator, RevisionsNoNodeRefersToAreCollected) {
  for (int i = 0; i < 3; ++i)
    addNode("gc-" + std::to_string(i), "gc");
  auto generations = [] {
    std::set<int64_t> kept;
    auto listed = client_->list(api::kControllerRevisions, "bpfchain-system",
                                {.labelSelector = "bpfchain.io/chain=gc"});
    if (listed)
      for (const auto& r : listed->items)
        kept.insert(r.at("revision").as_number().to_int64());
    return kept;
  };
  auto program = [](const std::string& name) {
    return [name](Json& next) { next["spec"]["programs"][0]["name"] = Json::string(name); };
  };
  ASSERT_TRUE(
      client_
          ->create(kChains,
                   chain("gc", "gc", {"counter"},
                         R"({"canaryNodes":1,"maxUnavailable":1,"failurePolicy":"Continue"})"))
          .ok());
  ASSERT_TRUE(eventually([] { return conditionOf("gc", "Ready") == "True"; }, 60s));
  ASSERT_TRUE(updateChain("gc", program("counter-2")).ok());
  ASSERT_TRUE(updateChain("gc", program("counter-3")).ok());
  EXPECT_TRUE(eventually(
      [&] {
        return conditionOf("gc", "Ready") == "True" && statusString("gc", "ready") == "3/3" &&
               generations() == std::set<int64_t>{3};
      },
      60s));

  // Generation 4 fails on gc-0 and, under Continue, goes everywhere: 3 stays the stable one.
  agents_->fail("gc-0", 4);
  ASSERT_TRUE(updateChain("gc", program("counter-4")).ok());
  std::string reason;
  EXPECT_TRUE(eventually(
      [&] {
        return conditionOf("gc", "Ready", &reason) == "False" && reason == "NodesFailed" &&
               assigned("gc-2", "gc") == 4;
      },
      60s))
      << reason;
  EXPECT_EQ(generations(), (std::set<int64_t>{3, 4}));

  // Generation 5 waits on its canary (gc-0, whose agent is silent): gc-1 and gc-2 still run
  // 4, which is neither the current generation nor the stable one, and must stay readable.
  agents_->freeze("gc-0");
  ASSERT_TRUE(updateChain("gc", program("counter-5")).ok());
  EXPECT_TRUE(eventually([] { return assigned("gc-0", "gc") == 5; }, 60s));
  std::this_thread::sleep_for(2s); // a few more reconciles
  EXPECT_EQ(assigned("gc-1", "gc"), 4);
  EXPECT_TRUE(generations().contains(4)) << "a revision gc-1 runs was deleted";
  EXPECT_NE(resolvedSpec("gc-1", "gc").find("counter-4"), std::string::npos);

  // The canary reports, generation 5 completes, and 3 and 4 go.
  agents_->freeze("gc-0", false);
  EXPECT_TRUE(eventually(
      [&] { return conditionOf("gc", "Ready") == "True" && generations() == std::set<int64_t>{5}; },
      60s))
      << generations().size();
}

TEST_F(Operator, RollbackRestoresThePreviousGeneration) {
  for (int i = 0; i < 3; ++i)
    addNode("back-" + std::to_string(i), "back");
  ASSERT_TRUE(
      client_
          ->create(kChains,
                   chain("rolling", "back", {"counter"},
                         R"({"canaryNodes":0,"maxUnavailable":3,"failurePolicy":"Rollback"})"))
          .ok());
  ASSERT_TRUE(eventually([] { return conditionOf("rolling", "Ready") == "True"; }, 60s));
  agents_->fail("back-2", 2);
  ASSERT_TRUE(updateChain("rolling", [](Json& next) {
                next["spec"]["programs"][0]["name"] = Json::string("counter-v2");
              }).ok());
  std::string reason;
  EXPECT_TRUE(eventually(
      [&] {
        return conditionOf("rolling", "Ready", &reason) == "False" && reason == "RolledBack" &&
               assigned("back-0", "rolling") == 1 && assigned("back-1", "rolling") == 1 &&
               assigned("back-2", "rolling") == 1;
      },
      60s));
  // What the nodes got back is generation 1's spec, from its ControllerRevision.
  std::string back = resolvedSpec("back-0", "rolling");
  EXPECT_NE(back.find("\"name\":\"counter\""), std::string::npos) << back;
  EXPECT_EQ(back.find("counter-v2"), std::string::npos) << back;
  std::string events;
  EXPECT_TRUE(eventually([&] {
    events = eventsOf("rolling");
    return events.find("RolledBack|") != std::string::npos;
  }));
  EXPECT_NE(events.find("RolledBack|generation 2 rolled back to generation 1 on "),
            std::string::npos)
      << events;
  EXPECT_NE(events.find("node back-2 failed: VerifierRejected"), std::string::npos) << events;

  // The status keeps why, and READY counts the nodes that run generation 1, until a new
  // generation supersedes it.
  EXPECT_TRUE(eventually([] { return statusString("rolling", "ready") == "3/3"; }))
      << statusString("rolling", "ready");
  std::this_thread::sleep_for(2s); // a few more reconciles
  EXPECT_EQ(conditionOf("rolling", "Degraded", &reason), "True");
  EXPECT_EQ(reason, "VerifierRejected");
  EXPECT_NE(failuresOf("rolling").find("\"node\":\"back-2\""), std::string::npos)
      << failuresOf("rolling");
  EXPECT_EQ(statusString("rolling", "ready"), "3/3");
  EXPECT_NE(conditionMessage("rolling", "Ready").find("run generation 1 Ready"), std::string::npos)
      << conditionMessage("rolling", "Ready");
}

// The issue's reproduction: a chain deleted and created again under its name must never get
// the deleted object's spec back from a rollback (its ControllerRevisions are not ours).
TEST_F(Operator, ARecreatedChainNeverRestoresTheDeletedObjectsSpec) {
  for (int i = 0; i < 2; ++i)
    addNode("reborn-" + std::to_string(i), "reborn");
  const std::string rollback = R"({"canaryNodes":0,"maxUnavailable":2,"failurePolicy":"Rollback"})";
  ASSERT_TRUE(client_->create(kChains, chain("reborn", "reborn", {"old-only"}, rollback)).ok());
  ASSERT_TRUE(eventually([] { return conditionOf("reborn", "Ready") == "True"; }, 60s));
  ASSERT_TRUE(updateChain("reborn", [](Json& next) {
                next["spec"]["priority"] = Json::number(7);
              }).ok()); // generation 2 of the old object
  ASSERT_TRUE(eventually([] { return assigned("reborn-1", "reborn") == 2; }, 60s));
  ASSERT_TRUE(eventually([] { return conditionOf("reborn", "Ready") == "True"; }, 60s));
  ASSERT_TRUE(client_->remove(kChains, "", "reborn").ok());
  ASSERT_TRUE(eventually([] { return gone(kChains, "reborn"); }, 60s));

  // The new object: generation 1 Ready, then a generation 2 that fails and is rolled back.
  ASSERT_TRUE(client_->create(kChains, chain("reborn", "reborn", {"new-one"}, rollback)).ok());
  ASSERT_TRUE(eventually(
      [] {
        return conditionOf("reborn", "Ready") == "True" && assigned("reborn-0", "reborn") == 1 &&
               assigned("reborn-1", "reborn") == 1;
      },
      60s));
  agents_->fail("reborn-1", 2);
  ASSERT_TRUE(updateChain("reborn", [](Json& next) {
                next["spec"]["programs"][0]["name"] = Json::string("new-two");
              }).ok());
  std::string reason;
  EXPECT_TRUE(eventually(
      [&] {
        return conditionOf("reborn", "Ready", &reason) == "False" && reason == "RolledBack" &&
               assigned("reborn-0", "reborn") == 1 && assigned("reborn-1", "reborn") == 1;
      },
      60s));
  for (const char* node : {"reborn-0", "reborn-1"}) {
    std::string text = resolvedSpec(node, "reborn");
    EXPECT_NE(text.find("\"name\":\"new-one\""), std::string::npos) << node << ": " << text;
    EXPECT_EQ(text.find("old-only"), std::string::npos) << node << " got the deleted spec";
    EXPECT_EQ(text.find("\"priority\":7"), std::string::npos) << node << " got the deleted spec";
  }

  // History: only the new object's revisions remain, each owned by it.
  auto now = client_->get(kChains, "", "reborn");
  ASSERT_TRUE(now.ok());
  std::string uid = k8s::metadataString(*now, "uid");
  const k8s::Resource revisions{"apps", "v1", "controllerrevisions", "ControllerRevision", true};
  EXPECT_TRUE(eventually([&] {
    auto listed =
        client_->list(revisions, "bpfchain-system", {.labelSelector = "bpfchain.io/chain=reborn"});
    if (!listed)
      return false;
    std::set<int64_t> generations;
    for (const auto& r : listed->items) {
      if (r.at("metadata").at("ownerReferences").at(0).at("uid").as_string() != uid)
        return false;
      generations.insert(r.at("revision").as_number().to_int64());
    }
    return generations == std::set<int64_t>{1, 2};
  }));
}

TEST_F(Operator, NodeLabelsMoveChainsOnAndOff) {
  addNode("move-0", "move");
  addNode("move-1", "move");
  ASSERT_TRUE(
      client_->create(kChains, chain("mover", "move", {"counter"}, R"({"maxUnavailable":"100%"})"))
          .ok());
  ASSERT_TRUE(eventually([] { return assigned("move-1", "mover") == 1; }));
  ASSERT_TRUE(client_
                  ->patch(k8s::resources::kNodes, "", "move-1", k8s::PatchType::Merge,
                          Json::parse(R"({"metadata":{"labels":{"role":"elsewhere"}}})"))
                  .ok());
  EXPECT_TRUE(eventually([] { return assigned("move-1", "mover") == -1; }));
  EXPECT_EQ(assigned("move-0", "mover"), 1);
  ASSERT_TRUE(client_
                  ->patch(k8s::resources::kNodes, "", "move-1", k8s::PatchType::Merge,
                          Json::parse(R"({"metadata":{"labels":{"role":"move"}}})"))
                  .ok());
  EXPECT_TRUE(eventually([] { return assigned("move-1", "mover") == 1; }));
}

TEST_F(Operator, DeletingAChainClearsEveryNodeBeforeTheFinalizerGoes) {
  addNode("del-0", "del");
  addNode("del-1", "del");
  ASSERT_TRUE(
      client_->create(kChains, chain("doomed", "del", {"counter"}, R"({"maxUnavailable":2})"))
          .ok());
  ASSERT_TRUE(eventually([] { return conditionOf("doomed", "Ready") == "True"; }, 60s));
  auto withFinalizer = client_->get(kChains, "", "doomed");
  ASSERT_TRUE(withFinalizer.ok());
  EXPECT_NE(withFinalizer->serialize().find("bpfchain.io/cleanup"), std::string::npos);
  ASSERT_TRUE(client_->remove(kChains, "", "doomed").ok());
  EXPECT_TRUE(eventually([] { return gone(kChains, "doomed"); }, 60s));
  EXPECT_EQ(assigned("del-0", "doomed"), -1);
  EXPECT_EQ(assigned("del-1", "doomed"), -1);
}

TEST_F(Operator, ACleanupPastTheDeadlineIsReportedAndTheChainStillGoes) {
  addNode("stuck-0", "stuck");
  ASSERT_TRUE(client_->create(kChains, chain("stuck", "stuck", {"counter"}, "{}")).ok());
  ASSERT_TRUE(eventually([] { return conditionOf("stuck", "Ready") == "True"; }, 60s));
  agents_->freeze("stuck-0"); // its agent never confirms the removal
  ASSERT_TRUE(client_->remove(kChains, "", "stuck").ok());
  EXPECT_TRUE(eventually([] { return assigned("stuck-0", "stuck") == -1; }));
  std::this_thread::sleep_for(3s);
  EXPECT_FALSE(gone(kChains, "stuck")) << "the finalizer went before the deadline (20 s)";
  EXPECT_TRUE(eventually([] { return gone(kChains, "stuck"); }, 45s));
  std::string events = eventsOf("stuck");
  EXPECT_NE(events.find("CleanupDeadlineExceeded|agents did not confirm removal within 20 s on "
                        "1 node(s): stuck-0"),
            std::string::npos)
      << events;
  agents_->freeze("stuck-0", false);
}

TEST_F(Operator, ServesMetricsHealthAndReadiness) {
  addNode("metered-0", "metered");
  addNode("metered-1", "metered");
  ASSERT_TRUE(client_
                  ->create(kChains, chain("metered", "metered", {"counter"},
                                          R"({"canaryNodes":0,"maxUnavailable":"100%"})"))
                  .ok());
  ASSERT_TRUE(eventually([] { return conditionOf("metered", "Ready") == "True"; }, 60s));
  uint16_t port = metricsPort();
  ASSERT_NE(port, 0) << "no \"serving metrics\" line in the operator's log";

  Http healthz = http(port, "/healthz");
  EXPECT_EQ(healthz.status, 200);
  EXPECT_EQ(healthz.body, "ok\n");
  Http readyz = http(port, "/readyz");
  EXPECT_EQ(readyz.status, 200);
  EXPECT_EQ(readyz.body, "ok\n");
  EXPECT_EQ(http(port, "/metricz").status, 404);

  std::string scrape;
  EXPECT_TRUE(eventually([&] {
    scrape = http(port, "/metrics").body;
    return sample(scrape, R"(bpfchain_operator_rollout_nodes{chain="metered",state="ready"})") == 2;
  })) << scrape;
  for (const char* state : {"matched", "updated"})
    EXPECT_EQ(
        sample(scrape, std::string(R"(bpfchain_operator_rollout_nodes{chain="metered",state=")") +
                           state + "\"}"),
        2)
        << state;
  for (const char* state : {"failed", "pending"})
    EXPECT_EQ(
        sample(scrape, std::string(R"(bpfchain_operator_rollout_nodes{chain="metered",state=")") +
                           state + "\"}"),
        0)
        << state;
  EXPECT_GT(
      sample(scrape, R"(bpfchain_operator_reconciles_total{controller="chain",result="success"})"),
      0);
  EXPECT_GT(
      sample(scrape, R"(bpfchain_operator_reconciles_total{controller="node",result="success"})"),
      0);
  EXPECT_GE(
      sample(scrape, R"(bpfchain_operator_reconciles_total{controller="chain",result="error"})"),
      0);
  EXPECT_GT(
      sample(scrape, R"(bpfchain_operator_reconcile_duration_seconds_count{controller="chain"})"),
      0);
  EXPECT_EQ(sample(scrape, "bpfchain_operator_leader"), 1);
  EXPECT_NE(scrape.find("bpfchain_operator_info{version=\""), std::string::npos) << scrape;
  // The work queue, the API client and the process, as client-go and the Go client export them.
  EXPECT_GT(sample(scrape, R"(bpfchain_workqueue_adds_total{name="operator"})"), 0) << scrape;
  EXPECT_GT(sample(scrape, R"(bpfchain_workqueue_work_duration_seconds_count{name="operator"})"),
            0);
  EXPECT_GE(sample(scrape, R"(bpfchain_workqueue_depth{name="operator"})"), 0);
  EXPECT_GT(sample(scrape, R"(bpfchain_rest_client_requests_total{code="200",method="GET"})"), 0);
  EXPECT_GT(sample(scrape, R"(bpfchain_rest_client_request_duration_seconds_count{verb="GET"})"),
            0);
  EXPECT_GT(sample(scrape, "process_resident_memory_bytes"), 0);
  EXPECT_GT(sample(scrape, "process_start_time_seconds"), 0);

  // A deleted chain's series go with it.
  ASSERT_TRUE(client_->remove(kChains, "", "metered").ok());
  ASSERT_TRUE(eventually([] { return gone(kChains, "metered"); }, 60s));
  EXPECT_TRUE(eventually(
      [&] { return http(port, "/metrics").body.find(R"(chain="metered")") == std::string::npos; }));

  // Prometheus's linter has nothing to say about the exposition.
  auto dir = TempDir::create("scrape");
  ASSERT_TRUE(dir.ok());
  std::string file = dir->path() + "/metrics.txt";
  std::ofstream(file) << http(port, "/metrics").body;
  FILE* pipe = ::popen(("promtool check metrics < " + file + " 2>&1").c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string lint;
  char buf[512];
  for (size_t n = 0; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;)
    lint.append(buf, n);
  int status = ::pclose(pipe);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << lint;
  EXPECT_EQ(lint, "");
}

// A failure reason an agent reports (SpecInvalid: a chain it cannot parse) reaches the
// chain's Degraded condition and failures list as it is.
TEST_F(Operator, AnAgentsReasonReachesDegradedAndTheFailures) {
  addNode("parse-0", "parse");
  agents_->fail("parse-0", 1, "SpecInvalid");
  ASSERT_TRUE(client_->create(kChains, chain("unparsable", "parse", {"counter"}, "{}")).ok());
  std::string reason;
  EXPECT_TRUE(
      eventually([&] { return conditionOf("unparsable", "Degraded", &reason) == "True"; }, 60s));
  EXPECT_EQ(reason, "SpecInvalid");
  EXPECT_NE(failuresOf("unparsable").find("\"reason\":\"SpecInvalid\""), std::string::npos)
      << failuresOf("unparsable");
}

TEST_F(Operator, EventsDoNotContradictTheFacts) {
  // Continue, with the canary failing: not "CanaryReady"; some nodes failed: a Warning.
  for (int i = 0; i < 3; ++i)
    addNode("cont-" + std::to_string(i), "cont");
  agents_->fail("cont-0", 1);
  ASSERT_TRUE(client_
                  ->create(kChains, chain("continued", "cont", {"counter"},
                                          R"({"canaryNodes":1,"failurePolicy":"Continue"})"))
                  .ok());
  std::string events;
  EXPECT_TRUE(eventually(
      [&] {
        events = eventsOf("continued");
        return events.find("NodesFailed|") != std::string::npos;
      },
      60s))
      << events;
  EXPECT_NE(events.find("CanaryFailed|1 of 1 canary node(s) failed generation 1"),
            std::string::npos)
      << events;
  EXPECT_EQ(events.find("CanaryReady|"), std::string::npos) << events;
  EXPECT_EQ(events.find("RolloutComplete|"), std::string::npos) << events;

  // Every node failed: RolloutFailed, not RolloutComplete.
  addNode("allfail-0", "allfail");
  agents_->fail("allfail-0", 1);
  ASSERT_TRUE(client_
                  ->create(kChains, chain("failing", "allfail", {"counter"},
                                          R"({"canaryNodes":0,"failurePolicy":"Continue"})"))
                  .ok());
  EXPECT_TRUE(eventually(
      [&] {
        events = eventsOf("failing");
        return events.find("RolloutFailed|generation 1 failed on every node (1)") !=
               std::string::npos;
      },
      60s))
      << events;
  EXPECT_EQ(events.find("RolloutComplete|"), std::string::npos) << events;

  // A node whose agent does not report: past --progress-deadline (10 s) it is named.
  addNode("mute-0", "mute");
  addNode("mute-1", "mute");
  agents_->freeze("mute-1");
  ASSERT_TRUE(client_
                  ->create(kChains, chain("muted", "mute", {"counter"},
                                          R"({"canaryNodes":0,"maxUnavailable":2})"))
                  .ok());
  std::string reason;
  EXPECT_TRUE(eventually(
      [&] {
        return conditionOf("muted", "Progressing", &reason) == "False" &&
               reason == "ProgressDeadlineExceeded";
      },
      60s))
      << reason;
  EXPECT_NE(conditionMessage("muted", "Progressing").find("from node(s): mute-1 "),
            std::string::npos)
      << conditionMessage("muted", "Progressing");
  EXPECT_TRUE(eventually([&] {
    events = eventsOf("muted");
    return events.find("ProgressDeadlineExceeded|generation 1: no report from node(s) mute-1 ") !=
           std::string::npos;
  })) << events;
  agents_->freeze("mute-1", false);
  EXPECT_TRUE(eventually([] { return conditionOf("muted", "Ready") == "True"; }, 60s));
}

TEST_F(Operator, ANodeWhoseAgentStopsReportingIsNotReadyUntilItReportsAgain) {
  addNode("beat-0", "beat");
  addNode("beat-1", "beat");
  ASSERT_TRUE(client_
                  ->create(kChains, chain("beating", "beat", {"counter"},
                                          R"({"canaryNodes":0,"maxUnavailable":2})"))
                  .ok());
  ASSERT_TRUE(eventually([] { return conditionOf("beating", "Ready") == "True"; }, 60s));

  // No watch event comes from a silent agent: past --agent-stale-seconds (8 s) the operator
  // finds out by itself.
  agents_->freeze("beat-1");
  std::string reason;
  EXPECT_TRUE(eventually([&] { return conditionOf("beating", "Ready", &reason) == "False"; }, 60s))
      << reason;
  EXPECT_EQ(reason, "AgentNotReporting");
  EXPECT_EQ(statusString("beating", "ready"), "1/2");
  auto chainNow = client_->get(kChains, "", "beating");
  ASSERT_TRUE(chainNow.ok());
  EXPECT_EQ(chainNow->at("status").at("nodes").at("stale").as_integer(), 1);
  EXPECT_NE(conditionMessage("beating", "Ready")
                .find("1 node(s) whose agent stopped reporting: beat-1 (no heartbeat for 8 s)"),
            std::string::npos)
      << conditionMessage("beating", "Ready");
  EXPECT_EQ(conditionOf("beating", "Degraded", &reason), "True");
  EXPECT_EQ(reason, "AgentNotReporting");
  EXPECT_NE(conditionMessage("beating", "Degraded").find("beat-1"), std::string::npos);
  EXPECT_EQ(sample(http(metricsPort(), "/metrics").body,
                   R"(bpfchain_operator_rollout_nodes{chain="beating",state="stale"})"),
            1);
  std::string events;
  EXPECT_TRUE(eventually([&] {
    events = eventsOf("beating");
    return events.find("AgentNotReporting|no heartbeat from the agent of node(s) beat-1: not "
                       "counted Ready") != std::string::npos;
  })) << events;

  agents_->freeze("beat-1", false);
  EXPECT_TRUE(eventually([] { return conditionOf("beating", "Ready") == "True"; }, 60s));
  EXPECT_EQ(conditionOf("beating", "Degraded"), "False");
  EXPECT_TRUE(eventually([&] {
    events = eventsOf("beating");
    return events.find("AgentReporting|the agent of node(s) beat-1 reports again") !=
           std::string::npos;
  })) << events;
  // One Warning for the one transition (an Event repeated is counted on one object).
  auto out = ControlPlaneEnvironment::get().kubectl(
      {"get", "events", "-n", "default", "--field-selector",
       "involvedObject.name=beating,reason=AgentNotReporting", "-o",
       "jsonpath={range .items[*]}{.count}{\"\\n\"}{end}"});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->out, "1\n");
}

TEST_F(Operator, AReconcileThatChangesNothingWritesNoStatus) {
  addNode("quiet-0", "quiet");
  ASSERT_TRUE(client_->create(kChains, chain("quiet", "quiet", {"counter"}, "{}")).ok());
  ASSERT_TRUE(eventually([] { return conditionOf("quiet", "Ready") == "True"; }, 60s));
  uint16_t port = metricsPort();
  ASSERT_NE(port, 0);
  const std::string writes = "bpfchain_operator_status_writes_total";
  // Reconciles that succeeded: "requeue" too, as each asks to run again when the heartbeat
  // of a Ready node would turn stale.
  auto reconciled = [&](const std::string& scrape) {
    return sample(scrape,
                  R"(bpfchain_operator_reconciles_total{controller="chain",result="success"})") +
           sample(scrape,
                  R"(bpfchain_operator_reconciles_total{controller="chain",result="requeue"})");
  };
  // Wait until no chain of the suite writes any more.
  double before = -1;
  ASSERT_TRUE(eventually([&] {
    double now = sample(http(port, "/metrics").body, writes);
    std::this_thread::sleep_for(1500ms);
    before = sample(http(port, "/metrics").body, writes);
    return now >= 0 && now == before;
  }));
  double reconciledBefore = reconciled(http(port, "/metrics").body);
  auto statusBefore = client_->get(kChains, "", "quiet");
  ASSERT_TRUE(statusBefore.ok());

  // Each annotation change is an update event, so a reconcile, which finds nothing to do.
  for (int i = 0; i < 5; ++i) {
    Json patch = Json::object();
    patch["metadata"]["annotations"]["example.com/touched"] = Json::string(std::to_string(i));
    ASSERT_TRUE(client_->patch(kChains, "", "quiet", k8s::PatchType::Merge, patch).ok());
    std::this_thread::sleep_for(200ms);
  }
  std::string scrape;
  EXPECT_TRUE(eventually([&] {
    scrape = http(port, "/metrics").body;
    return reconciled(scrape) >= reconciledBefore + 5;
  })) << scrape;
  EXPECT_EQ(sample(scrape, writes), before);
  auto statusAfter = client_->get(kChains, "", "quiet");
  ASSERT_TRUE(statusAfter.ok());
  EXPECT_EQ(statusAfter->at("status").serialize(), statusBefore->at("status").serialize());
}

} // namespace
} // namespace bpfchain::testing

namespace bpfchain::testing {
namespace {

class OperatorRestarts : public Operator {
protected:
  // Replaces the running operator with a new process (extra flags appended).
  static void restartOperator(int signal, const std::vector<std::string>& extra = {}) {
    operator_->kill(signal);
    operator_->stop();
    delete operator_;
    operator_ = nullptr;
    auto op = spawnOperator(extra, "operator.log");
    ASSERT_TRUE(op.ok()) << op.error().message();
    operator_ = new ChildProcess(std::move(*op));
  }
};

TEST_F(OperatorRestarts, AnOperatorKilledMidRolloutIsResumedByTheNextOne) {
  for (int i = 0; i < 5; ++i)
    addNode("resume-" + std::to_string(i), "resume");
  ASSERT_TRUE(client_
                  ->create(kChains, chain("resumed", "resume", {"counter"},
                                          R"({"canaryNodes":1,"maxUnavailable":1})"))
                  .ok());
  ASSERT_TRUE(eventually([] { return assigned("resume-1", "resumed") == 1; }));
  restartOperator(SIGKILL);
  EXPECT_TRUE(eventually([] { return conditionOf("resumed", "Ready") == "True"; }, 60s));
  auto order = agents_->assignmentOrder("resumed", 1);
  ASSERT_EQ(order.size(), 5u);
  EXPECT_EQ(order,
            (std::vector<std::string>{"resume-0", "resume-1", "resume-2", "resume-3", "resume-4"}));
}

// An operator before references wrote each node a copy of the chain's spec. The new operator
// rewrites such a copy as an entry that gives the node the same generation (a membership
// entry, as the chain's published rollout says generation 1): no new generation, no rollout.
TEST_F(OperatorRestarts, ACopyOfAnOperatorBeforeReferencesBecomesAReference) {
  addNode("legacy-0", "legacy");
  ASSERT_TRUE(client_
                  ->create(kChains, chain("legacy", "legacy", {"counter"},
                                          R"({"canaryNodes":0,"maxUnavailable":1})"))
                  .ok());
  ASSERT_TRUE(eventually([] { return conditionOf("legacy", "Ready") == "True"; }, 60s));
  auto entryOf = []() -> std::optional<Json> {
    auto config = client_->get(kNodeConfigs, "", "legacy-0");
    if (!config || !config->has_field("spec") || !config->at("spec").has_field("chains"))
      return std::nullopt;
    for (const auto& e : config->at("spec").at("chains").as_array())
      if (k8s::stringAt(e, {"name"}) == "legacy")
        return e;
    return std::nullopt;
  };
  // The operator stops; the node's entry becomes what an operator before references wrote.
  operator_->kill(SIGKILL);
  operator_->stop();
  delete operator_;
  operator_ = nullptr;
  Json copy = Json::parse(R"({"spec":{"chains":[{"name":"legacy","generation":1,"hook":"xdp",
    "priority":100,"interfaces":{"names":["eth0"]},
    "programs":[{"name":"counter","package":{"url":"https://p.example/counter.tar.gz"}}]}]}})");
  copy["spec"]["chains"][0]["programs"][0]["package"]["sha256"] = Json::string(kSha);
  ASSERT_TRUE(client_->patch(kNodeConfigs, "", "legacy-0", k8s::PatchType::Merge, copy).ok());
  auto before = entryOf();
  ASSERT_TRUE(before);
  ASSERT_FALSE(api::isReference(*before));

  auto op = spawnOperator({}, "operator.log");
  ASSERT_TRUE(op.ok()) << op.error().message();
  operator_ = new ChildProcess(std::move(*op));
  EXPECT_TRUE(eventually(
      [&] {
        auto entry = entryOf();
        if (!entry || !(api::isReference(*entry) || api::isMembership(*entry)))
          return false;
        auto ref = refOfEntry(*entry, "legacy-0", chainsByName(*client_));
        return ref && ref->generation == 1;
      },
      60s))
      << (entryOf() ? entryOf()->serialize() : "no entry");
  EXPECT_NE(resolvedSpec("legacy-0", "legacy").find("\"name\":\"counter\""), std::string::npos);
  auto chainNow = client_->get(kChains, "", "legacy");
  ASSERT_TRUE(chainNow.ok());
  EXPECT_EQ(k8s::generationOf(*chainNow), 1);
  EXPECT_EQ(conditionOf("legacy", "Ready"), "True");
}

TEST_F(OperatorRestarts, ANodesFailureIsOneWarningEventNamingItEvenAcrossARestart) {
  for (int i = 0; i < 3; ++i)
    addNode("nodefail-" + std::to_string(i), "nodefail");
  agents_->fail("nodefail-1", 1);
  ASSERT_TRUE(client_
                  ->create(kChains, chain("node-failing", "nodefail", {"counter"},
                                          R"({"canaryNodes":0,"maxUnavailable":3,)"
                                          R"("failurePolicy":"Continue"})"))
                  .ok());
  // The NodeFailed Events (core/v1, in "default": the chain is cluster-scoped) about `node`.
  auto nodeFailed = [](const std::string& node) {
    std::vector<Json> found;
    auto list =
        client_->list(k8s::resources::kEvents, "default",
                      {.fieldSelector = "involvedObject.name=node-failing,reason=NodeFailed"});
    if (list)
      for (const auto& e : list->items)
        if (k8s::stringAt(e, {"message"}).starts_with("node " + node + " "))
          found.push_back(e);
    return found;
  };
  ASSERT_TRUE(eventually([&] { return !nodeFailed("nodefail-1").empty(); }, 60s));
  Json e = nodeFailed("nodefail-1").at(0);
  EXPECT_EQ(k8s::stringAt(e, {"type"}), "Warning");
  EXPECT_EQ(k8s::stringAt(e, {"involvedObject", "kind"}), "BpfChain");
  EXPECT_EQ(k8s::stringAt(e, {"message"}),
            "node nodefail-1 failed generation 1: VerifierRejected: R1 invalid mem access "
            "'scalar'");
  // Continue passes over it: the rollout completes, and says so once more.
  std::string reason;
  EXPECT_TRUE(eventually([&] {
    return conditionOf("node-failing", "Progressing", &reason) == "False" &&
           reason == "RolloutComplete";
  }));
  auto c = client_->get(kChains, "", "node-failing");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->at("status").at("rollout").at("failedNodes").serialize(), R"(["nodefail-1"])");
  // What a user sees.
  auto shown = ControlPlaneEnvironment::get().kubectl(
      {"events", "-n", "default", "--for", "bpfchain/node-failing", "--types", "Warning"});
  ASSERT_TRUE(shown.ok()) << shown.error().message();
  EXPECT_NE(shown->out.find("NodeFailed"), std::string::npos) << shown->out;
  EXPECT_NE(shown->out.find("node nodefail-1 failed generation 1: VerifierRejected"),
            std::string::npos)
      << shown->out;

  // A new operator remembers what was said (status.rollout.failedNodes): a second node's
  // failure is one new Event, the first node's is not repeated.
  restartOperator(SIGKILL);
  agents_->fail("nodefail-2", 1);
  EXPECT_TRUE(eventually([&] { return nodeFailed("nodefail-2").size() == 1; }, 60s));
  auto first = nodeFailed("nodefail-1");
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].at("count").as_integer(), 1);

  // A new generation failing on the node again is a new failure.
  agents_->fail("nodefail-1", 2);
  ASSERT_TRUE(updateChain("node-failing", [](Json& next) {
                next["spec"]["programs"][1] =
                    chain("x", "x", {"portfilter"}, "{}")["spec"]["programs"][0];
              }).ok());
  EXPECT_TRUE(eventually(
      [&] {
        for (const auto& f : nodeFailed("nodefail-1"))
          if (k8s::stringAt(f, {"message"}).starts_with("node nodefail-1 failed generation 2: "))
            return true;
        return false;
      },
      60s));
}

TEST_F(OperatorRestarts, OfTwoReplicasWithLeaderElectionExactlyOneActs) {
  // Replace the suite's operator by two replicas that elect a leader.
  restartOperator(SIGTERM, {"--leader-elect"});
  auto second = spawnOperator({"--leader-elect"}, "operator-2.log");
  ASSERT_TRUE(second.ok()) << second.error().message();
  auto leads = [&](const std::string& log) {
    return readFile(log).find(" INFO leading ") != std::string::npos;
  };
  const std::string firstLog = logDir_->path() + "/operator.log";
  const std::string secondLog = logDir_->path() + "/operator-2.log";
  ASSERT_TRUE(eventually([&] { return leads(secondLog) || leads(firstLog); }, 40s));
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(leads(firstLog) + leads(secondLog), 1) << "both replicas lead";
  bool secondLeads = leads(secondLog);

  addNode("replica-0", "replica");
  ASSERT_TRUE(client_->create(kChains, chain("replicated", "replica", {"counter"}, "{}")).ok());
  EXPECT_TRUE(eventually([] { return conditionOf("replicated", "Ready") == "True"; }, 60s));

  // Kill the leader: the other takes over (within leaseDuration + 2 x 2.2 x retryPeriod).
  ChildProcess* leader = secondLeads ? &*second : operator_;
  const std::string standbyLog = secondLeads ? firstLog : secondLog;
  leader->kill(SIGKILL);
  leader->stop();
  EXPECT_TRUE(eventually([&] { return leads(standbyLog); }, 30s));
  ASSERT_TRUE(client_
                  ->patch(kChains, "", "replicated", k8s::PatchType::Merge,
                          Json::parse(R"({"spec":{"priority":7,"placement":"last"}})"))
                  .ok());
  EXPECT_TRUE(eventually(
      [] {
        std::string text = resolvedSpec("replica-0", "replicated");
        return text.find("\"priority\":7") != std::string::npos &&
               text.find("\"placement\":\"last\"") != std::string::npos;
      },
      60s));
}

TEST_F(OperatorRestarts, SigtermStopsWithinFiveSecondsAndExitsZero) {
  if (operator_)
    operator_->stop();
  delete operator_;
  operator_ = nullptr;
  auto op = spawnOperator({}, "operator-sigterm.log");
  ASSERT_TRUE(op.ok()) << op.error().message();
  operator_ = new ChildProcess(std::move(*op));
  const std::string log = logDir_->path() + "/operator-sigterm.log";
  ASSERT_TRUE(eventually(
      [&] { return readFile(log).find("controller running") != std::string::npos; }, 60s));
  // Work in flight: a chain rolling out to a few nodes.
  for (int i = 0; i < 8; ++i)
    addNode("term-" + std::to_string(i), "term");
  ASSERT_TRUE(client_
                  ->create(kChains, chain("terminated", "term", {"counter"},
                                          R"({"canaryNodes":0,"maxUnavailable":"100%"})"))
                  .ok());
  std::this_thread::sleep_for(300ms);
  auto started = std::chrono::steady_clock::now();
  int code = operator_->stop();
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(code, 0) << readFile(log);
  EXPECT_LT(took, 5s);
  std::cerr << "SIGTERM to exit: "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
  EXPECT_NE(readFile(log).find("controller stopped"), std::string::npos);

  // The next operator finishes the rollout.
  auto next = spawnOperator({}, "operator.log");
  ASSERT_TRUE(next.ok()) << next.error().message();
  delete operator_;
  operator_ = new ChildProcess(std::move(*next));
  EXPECT_TRUE(eventually([] { return conditionOf("terminated", "Ready") == "True"; }, 60s));
}

TEST_F(OperatorRestarts, SigtermReleasesTheLeaseAndTheStandbyTakesOverAtOnce) {
  if (operator_)
    operator_->stop();
  delete operator_;
  operator_ = nullptr;
  auto a = spawnOperator({"--leader-elect"}, "le-a.log");
  ASSERT_TRUE(a.ok()) << a.error().message();
  auto b = spawnOperator({"--leader-elect"}, "le-b.log");
  ASSERT_TRUE(b.ok()) << b.error().message();
  const std::string logA = logDir_->path() + "/le-a.log";
  const std::string logB = logDir_->path() + "/le-b.log";
  auto leads = [&](const std::string& log) {
    return readFile(log).find(" INFO leading ") != std::string::npos;
  };
  // The Lease may still name the last test's leader, killed by SIGKILL: up to a lease
  // duration and two retries until it expires.
  ASSERT_TRUE(eventually([&] { return leads(logA) || leads(logB); }, 40s));
  bool aLeads = leads(logA);
  ChildProcess leader = std::move(aLeads ? *a : *b);
  ChildProcess standby = std::move(aLeads ? *b : *a);
  const std::string& leaderLog = aLeads ? logA : logB;
  const std::string& standbyLog = aLeads ? logB : logA;
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  std::string leaderId = std::string(host) + "_" + std::to_string(leader.pid());
  std::string standbyId = std::string(host) + "_" + std::to_string(standby.pid());
  auto holder = [] {
    auto lease = client_->get(k8s::resources::kLeases, "bpfchain-system", "bpfchain-operator");
    return lease ? k8s::stringAt(*lease, {"spec", "holderIdentity"}) : "<no lease>";
  };
  EXPECT_EQ(holder(), leaderId);

  // Readiness is about serving, not leading: the standby is ready too, and says it leads not.
  // Either may still be starting (a loaded machine): wait for its metrics address in its log
  // and retry refused connections (status 0), never a served answer.
  uint16_t standbyPort = 0, leaderPort = 0;
  ASSERT_TRUE(eventually([&] {
    standbyPort = metricsPort(aLeads ? "le-b.log" : "le-a.log");
    leaderPort = metricsPort(aLeads ? "le-a.log" : "le-b.log");
    return standbyPort != 0 && leaderPort != 0;
  }));
  auto served = [&](uint16_t port, const std::string& path) {
    Http response;
    eventually([&] { return (response = http(port, path)).status != 0; });
    return response;
  };
  EXPECT_TRUE(eventually([&] { return http(leaderPort, "/readyz").status == 200; }));
  EXPECT_EQ(served(standbyPort, "/readyz").status, 200);
  EXPECT_EQ(sample(served(leaderPort, "/metrics").body, "bpfchain_operator_leader"), 1);
  EXPECT_EQ(sample(served(standbyPort, "/metrics").body, "bpfchain_operator_leader"), 0);

  auto started = std::chrono::steady_clock::now();
  int code = leader.stop();
  auto stopped = std::chrono::steady_clock::now() - started;
  std::string after = holder();
  EXPECT_EQ(code, 0) << readFile(leaderLog);
  EXPECT_LT(stopped, 5s);
  // Released: the holder is cleared (unless the standby's attempt fell into these few ms).
  EXPECT_TRUE(after.empty() || after == standbyId) << after;
  EXPECT_TRUE(eventually([&] { return leads(standbyLog); }, 10s));
  auto takeover = std::chrono::steady_clock::now() - started;
  // Without the release it would wait out the lease duration (15 s).
  EXPECT_LT(takeover, 8s);
  EXPECT_EQ(holder(), standbyId);
  std::cerr << "SIGTERM to exit: "
            << std::chrono::duration_cast<std::chrono::milliseconds>(stopped).count()
            << " ms, Lease after exit: \"" << after << "\", standby leads after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(takeover).count() << " ms\n";
  EXPECT_TRUE(eventually([&] { return http(standbyPort, "/readyz").status == 200; }));
  EXPECT_TRUE(eventually(
      [&] { return sample(http(standbyPort, "/metrics").body, "bpfchain_operator_leader") == 1; }));
  operator_ = new ChildProcess(std::move(standby));
}

} // namespace
} // namespace bpfchain::testing
