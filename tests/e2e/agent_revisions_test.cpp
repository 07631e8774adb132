// Chain references (DESIGN.md section 2): real agents on simulated nodes resolve their
// BpfNodeConfig's references to ControllerRevisions through a real kube-apiserver (RBAC on).
// No operator runs: the test writes the revisions and the references as the operator does, so
// that it can also write what an operator never would (a revision whose data is not the
// digest) and take the agent's permissions away.
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "api/chain_ref.h"
#include "api/published_rollout.h"
#include "api/resources.h"
#include "harness/agent_process.h"
#include "harness/bpffs.h"
#include "harness/control_plane.h"
#include "harness/http.h"
#include "harness/resources.h"
#include "harness/simulated_nodes.h"
#include "harness/traffic.h"
#include "k8s/client.h"
#include "k8s/config.h"

namespace bpfchain::testing {
namespace {

namespace fs = std::filesystem;
using k8s::Json;

[[maybe_unused]] auto* const kControlPlane =
    ::testing::AddGlobalTestEnvironment(new ControlPlaneEnvironment);

// Not the default namespace: the agents are told with --revision-namespace.
const std::string kNs = "chain-revisions";
const std::string kAgentSa = "agent";
const std::string kRevisionRole = "agent-revisions";
const std::string kChainsRole = "e2e-revisions-agent-chains";
// A BpfChain uid, as revisionName() takes it.
const std::string kUid = "5e1f00d2-1111-2222-3333-444455556666";
constexpr int kLongWait = 120000; // informer backoff (<= 30 s + jitter), then a pass

class AgentRevisions : public ::testing::Test {
protected:
  static constexpr size_t kNodes = 4; // one per test: each starts from nothing

  static ControlPlane& plane() { return ControlPlaneEnvironment::get(); }

  static void kubectlApply(const std::string& yaml) {
    std::string path = dir_->path() + "/apply-" + std::to_string(++files_) + ".yaml";
    std::ofstream(path) << yaml;
    auto applied = plane().kubectl({"apply", "-f", path});
    ASSERT_TRUE(applied.ok()) << applied.error().message() << "\n" << yaml;
  }

  static std::string revisionRole() {
    return "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: " +
           kRevisionRole + ", namespace: " + kNs +
           "}\nrules:\n- apiGroups: [apps]\n  resources: [controllerrevisions]\n"
           "  verbs: [get, list, watch]\n";
  }

  // The agent's read access to the BpfChains (the rollouts membership entries follow), apart
  // so that a test can take it away.
  static std::string chainsRole() {
    return "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: " +
           kChainsRole +
           "}\nrules:\n- apiGroups: [bpfchain.io]\n  resources: [bpfchains]\n"
           "  verbs: [get, list, watch]\n";
  }

  static void SetUpTestSuite() {
    auto installed = plane().installCrds(std::string(BPFCHAIN_SOURCE_DIR) + "/crds",
                                         {"bpfchains.bpfchain.io", "bpfnodeconfigs.bpfchain.io"});
    ASSERT_TRUE(installed.ok()) << installed.error().message();
    auto config = k8s::loadKubeconfig(plane().kubeconfig());
    ASSERT_TRUE(config.ok());
    auto client = k8s::Client::create(*config);
    ASSERT_TRUE(client.ok());
    client_ = client->release();
    auto dir = TempDir::create("revisions");
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

    // The agent's identity, as the chart gives it: the cluster-wide part, and a Role on the
    // chain revisions of the revision namespace.
    kubectlApply(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + kNs +
        "}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: " + kAgentSa +
        ", namespace: " + kNs +
        "}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
        "metadata: {name: e2e-revisions-agent}\nrules:\n"
        "- apiGroups: [bpfchain.io]\n  resources: [bpfnodeconfigs]\n"
        "  verbs: [get, list, watch]\n"

        "- apiGroups: [bpfchain.io]\n  resources: [bpfnodeconfigs/status]\n"
        "  verbs: [get, patch, update]\n"
        "- apiGroups: [\"\"]\n  resources: [pods, namespaces]\n"
        "  verbs: [get, list, watch]\n"
        "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n"
        "metadata: {name: e2e-revisions-agent}\nroleRef: {apiGroup: "
        "rbac.authorization.k8s.io, kind: ClusterRole, name: e2e-revisions-agent}\n"
        "subjects: [{kind: ServiceAccount, name: " +
        kAgentSa + ", namespace: " + kNs + "}]\n---\n" + chainsRole() +
        "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n"
        "metadata: {name: " +
        kChainsRole + "}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, " +
        "name: " + kChainsRole + "}\nsubjects: [{kind: ServiceAccount, name: " + kAgentSa +
        ", namespace: " + kNs + "}]\n---\n" + revisionRole() +
        "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
        "metadata: {name: " +
        kRevisionRole + ", namespace: " + kNs +
        "}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: " + kRevisionRole +
        "}\nsubjects: [{kind: ServiceAccount, name: " + kAgentSa + ", namespace: " + kNs + "}]\n");
    // A kubeconfig with the ServiceAccount's token (minted by the API server) instead of the
    // admin's certificate.
    auto token = plane().kubectl({"create", "token", kAgentSa, "-n", kNs, "--duration", "2h"});
    ASSERT_TRUE(token.ok()) << token.error().message();
    std::string tokenText = token->out;
    while (!tokenText.empty() && std::isspace(static_cast<unsigned char>(tokenText.back())))
      tokenText.pop_back();
    YAML::Node kubeconfig = YAML::LoadFile(plane().kubeconfig());
    for (auto u : kubeconfig["users"]) {
      YAML::Node user;
      user["token"] = tokenText;
      u["user"] = user;
    }
    saKubeconfig_ = dir_->path() + "/kubeconfig-agent-sa";
    std::ofstream(saKubeconfig_) << YAML::Dump(kubeconfig);
  }

  static void TearDownTestSuite() {
    delete counter_;
    delete portfilter_;
    delete nodes_;
    delete bpffs_;
    delete dir_;
    delete client_;
  }

  void TearDown() override {
    if (agent_)
      agent_->process().stop();
    agent_.reset();
  }

  static std::string nodeName(size_t i) {
    return "rev-" + std::to_string(getpid()) + "-n" + std::to_string(i + 1);
  }

  // The agent of node `i`, as the agent's ServiceAccount; a restart keeps its state and pins.
  void startAgent(size_t i) {
    AgentOptions o;
    o.nodeName = nodeName(i);
    o.kubeconfig = saKubeconfig_;
    o.netnsPath = nodes_->node(i).netns->path();
    o.bpffs = bpffs_->path() + "/n" + std::to_string(i + 1);
    o.stateDir = dir_->path() + "/state-n" + std::to_string(i + 1);
    o.socket = dir_->path() + "/agent-n" + std::to_string(i + 1) + ".sock";
    o.extra = {"--revision-namespace", kNs};
    auto agent = AgentProcess::start(o, dir_->path() + "/agent-n" + std::to_string(i + 1) + "-" +
                                            std::to_string(++starts_) + ".log");
    ASSERT_TRUE(agent.ok()) << agent.error().message();
    agent_ = std::move(*agent);
  }

  // A BpfChain's spec, as the operator copies it into a revision: count, after a filter that
  // drops UDP port 9999 when `withFilter`.
  static Json chainSpec(bool withFilter) {
    Json spec = Json::object();
    spec["hook"] = Json::string("xdp");
    spec["priority"] = Json::number(100);
    spec["nodeSelector"] = Json::object();
    spec["interfaces"]["names"][0] = Json::string("eth0");
    spec["rollout"]["maxUnavailable"] = Json::number(1);
    Json programs = Json::array();
    size_t n = 0;
    auto package = [](const BuiltPackage& p) {
      Json j = Json::object();
      j["url"] = Json::string(p.url);
      j["sha256"] = Json::string(p.sha256);
      return j;
    };
    if (withFilter) {
      Json filter = Json::object();
      filter["name"] = Json::string("filter");
      filter["package"] = package(*portfilter_);
      filter["mapArgs"] =
          Json::parse(R"([{"map":"portfilter_ports","entries":[{"key":"9999","value":"1"}]}])");
      programs[n++] = filter;
    }
    Json count = Json::object();
    count["name"] = Json::string("count");
    count["package"] = package(*counter_);
    programs[n++] = count;
    spec["programs"] = programs;
    return spec;
  }

  // Creates the chain's revision of `generation` holding `data`; returns the reference to it
  // whose digest is that of `digestOf` (the same data, unless a test wants a mismatch).
  static api::ChainRef createRevision(const std::string& chain, int64_t generation,
                                      const Json& data, const Json& digestOf) {
    Json r = Json::object();
    r["apiVersion"] = Json::string("apps/v1");
    r["kind"] = Json::string("ControllerRevision");
    r["metadata"]["name"] = Json::string(api::revisionName(chain, kUid, generation));
    r["metadata"]["namespace"] = Json::string(kNs);
    r["metadata"]["labels"][api::kChainLabel] = Json::string(chain);
    r["revision"] = Json::number(generation);
    r["data"] = data;
    auto created = client_->create(api::kControllerRevisions, r);
    EXPECT_TRUE(created.ok()) << created.error().describe();
    return {chain, generation, api::revisionName(chain, kUid, generation),
            api::specDigest(digestOf), 100};
  }

  // The node's spec: these references, written as the operator does (server-side apply).
  static void refer(size_t node, const std::vector<api::ChainRef>& refs) {
    Json body = Json::object();
    body["apiVersion"] = Json::string("bpfchain.io/v1alpha1");
    body["kind"] = Json::string("BpfNodeConfig");
    body["metadata"]["name"] = Json::string(nodeName(node));
    body["spec"]["chains"] = Json::array();
    for (size_t i = 0; i < refs.size(); ++i)
      body["spec"]["chains"][i] = api::toJson(refs[i]);
    auto applied = client_->apply(api::kBpfNodeConfigs, body, "e2e-operator", true);
    ASSERT_TRUE(applied.ok()) << applied.error().describe();
  }

  // The node's chains removed (an apply of an empty list would leave no spec at all).
  static void referNothing(size_t node) {
    auto patched = client_->patch(api::kBpfNodeConfigs, "", nodeName(node), k8s::PatchType::Merge,
                                  Json::parse(R"({"spec":{"chains":[]}})"));
    ASSERT_TRUE(patched.ok()) << patched.error().describe();
  }

  static Json chainStatus(size_t node, const std::string& chain) {
    auto config = client_->get(api::kBpfNodeConfigs, "", nodeName(node));
    if (!config.ok() || !config->has_field("status") || !config->at("status").has_field("chains"))
      return Json::null();
    for (const auto& c : config->at("status").at("chains").as_array())
      if (k8s::stringAt(c, {"name"}) == chain)
        return c;
    return Json::null();
  }

  static int64_t intAt(const Json& s, const char* field) {
    return s.is_object() && s.has_field(field) && s.at(field).is_integer()
               ? s.at(field).as_number().to_int64()
               : 0;
  }

  // Waits for the chain's status on `node` to be `phase` (and `reason`) at `generation`.
  void waitFor(size_t node, const std::string& chain, int64_t generation, const std::string& phase,
               const std::string& reason = "", int timeoutMs = 60000) {
    bool reached = eventually(
        [&] {
          Json s = chainStatus(node, chain);
          return !s.is_null() && intAt(s, "generation") == generation &&
                 k8s::stringAt(s, {"phase"}) == phase &&
                 (reason.empty() || k8s::stringAt(s, {"reason"}) == reason);
        },
        timeoutMs);
    ASSERT_TRUE(reached) << chainStatus(node, chain).serialize() << "\n"
                         << (agent_ ? agent_->log() : "");
  }

  static std::vector<int64_t> programIds(size_t node, const std::string& chain) {
    std::vector<int64_t> ids;
    Json s = chainStatus(node, chain);
    if (s.is_null() || s.at("attachments").size() == 0)
      return ids;
    for (const auto& id : s.at("attachments").at(0).at("programIDs").as_array())
      ids.push_back(id.as_number().to_int64());
    return ids;
  }

  // How many of `count` packets to `port` reach the node's eth0 socket.
  uint64_t delivered(size_t node, uint16_t port, uint64_t count) {
    auto t = UdpTraffic::create(nodes_->router(), *nodes_->node(node).netns,
                                nodes_->node(node).address, port);
    EXPECT_TRUE(t.ok()) << t.error().message();
    if (!t.ok())
      return 0;
    (*t)->sendAndWait(count, 500);
    return (*t)->received();
  }

  double metric(const std::string& name, const std::vector<std::string>& labels) {
    auto text = agent_->get("/metrics");
    return text.ok() ? metricValue(*text, name, labels).value_or(0) : -1;
  }

  static k8s::Client* client_;
  static TempDir* dir_;
  static TestBpffs* bpffs_;
  static SimulatedNodes* nodes_;
  static BuiltPackage* counter_;
  static BuiltPackage* portfilter_;
  static std::string saKubeconfig_;
  static int starts_;
  static int files_;
  std::unique_ptr<AgentProcess> agent_;
};

k8s::Client* AgentRevisions::client_ = nullptr;
TempDir* AgentRevisions::dir_ = nullptr;
TestBpffs* AgentRevisions::bpffs_ = nullptr;
SimulatedNodes* AgentRevisions::nodes_ = nullptr;
BuiltPackage* AgentRevisions::counter_ = nullptr;
BuiltPackage* AgentRevisions::portfilter_ = nullptr;
std::string AgentRevisions::saKubeconfig_;
int AgentRevisions::starts_ = 0;
int AgentRevisions::files_ = 0;

// A reference runs the revision it names, with the agent's own (chart) permissions; a new
// generation is a new reference and rolls out.
TEST_F(AgentRevisions, AReferenceRunsTheRevisionItNamesAndANewOneRollsOut) {
  const size_t node = 0;
  const std::string chain = "rev-run";
  startAgent(node);
  api::ChainRef g1 = createRevision(chain, 1, chainSpec(true), chainSpec(true));
  refer(node, {g1});
  waitFor(node, chain, 1, "Ready");
  Json s = chainStatus(node, chain);
  EXPECT_EQ(k8s::stringAt(s, {"revision"}), g1.revision) << s.serialize();
  EXPECT_EQ(k8s::stringAt(s, {"runningRevision"}), g1.revision) << s.serialize();
  EXPECT_EQ(intAt(s, "runningGeneration"), 1);
  EXPECT_EQ(programIds(node, chain).size(), 3u); // root, filter, count
  EXPECT_EQ(delivered(node, 7000, 100), 100u);
  EXPECT_EQ(delivered(node, 9999, 50), 0u) << "generation 1's filter drops 9999";

  api::ChainRef g2 = createRevision(chain, 2, chainSpec(false), chainSpec(false));
  refer(node, {g2});
  waitFor(node, chain, 2, "Ready");
  s = chainStatus(node, chain);
  EXPECT_EQ(k8s::stringAt(s, {"revision"}), g2.revision) << s.serialize();
  EXPECT_EQ(k8s::stringAt(s, {"runningRevision"}), g2.revision) << s.serialize();
  EXPECT_EQ(programIds(node, chain).size(), 2u); // root, count
  EXPECT_EQ(delivered(node, 9999, 50), 50u) << "generation 2 has no filter";
  referNothing(node);
  EXPECT_TRUE(eventually([&] { return chainStatus(node, chain).is_null(); }));
}

// A revision whose data is not what the reference's digest says is never run: the node says
// DigestMismatch and the previous generation keeps handling traffic; once the revision is
// replaced by one that holds the right data (its watch events), the new generation rolls out.
TEST_F(AgentRevisions, ARevisionWhoseDataIsNotTheDigestIsRefusedAndThePreviousOneRuns) {
  const size_t node = 1;
  const std::string chain = "rev-digest";
  startAgent(node);
  api::ChainRef g1 = createRevision(chain, 1, chainSpec(true), chainSpec(true));
  refer(node, {g1});
  waitFor(node, chain, 1, "Ready");
  std::vector<int64_t> ids = programIds(node, chain);
  ASSERT_EQ(ids.size(), 3u);

  // The reference says "count only"; the revision holds count only at another priority.
  Json other = chainSpec(false);
  other["priority"] = Json::number(101);
  api::ChainRef g2 = createRevision(chain, 2, other, chainSpec(false));
  refer(node, {g2});
  waitFor(node, chain, 2, "Failed", "DigestMismatch");
  Json s = chainStatus(node, chain);
  EXPECT_EQ(intAt(s, "runningGeneration"), 1) << s.serialize();
  EXPECT_EQ(k8s::stringAt(s, {"revision"}), g2.revision) << s.serialize();
  EXPECT_EQ(k8s::stringAt(s, {"runningRevision"}), g1.revision) << s.serialize();
  std::string message = k8s::stringAt(s, {"message"});
  EXPECT_NE(message.find(g2.revision), std::string::npos) << message;
  EXPECT_NE(message.find(g2.digest), std::string::npos) << message;
  EXPECT_EQ(programIds(node, chain), ids) << "generation 1 must keep running, unreloaded";
  EXPECT_EQ(delivered(node, 7000, 100), 100u);
  EXPECT_EQ(delivered(node, 9999, 50), 0u) << "generation 1's filter still drops 9999";
  EXPECT_GE(
      metric("bpfchain_errors_total", {"chain=\"" + chain + "\"", "reason=\"DigestMismatch\""}), 1);
  EXPECT_NE(agent_->log().find("revision=" + g2.revision + " reason=DigestMismatch "),
            std::string::npos)
      << agent_->log();

  // A revision's data is immutable: it is replaced (deleted, created again under its name).
  auto removed = client_->remove(api::kControllerRevisions, kNs, g2.revision);
  ASSERT_TRUE(removed.ok()) << removed.error().describe();
  EXPECT_EQ(createRevision(chain, 2, chainSpec(false), chainSpec(false)), g2);
  waitFor(node, chain, 2, "Ready");
  EXPECT_EQ(k8s::stringAt(chainStatus(node, chain), {"runningRevision"}), g2.revision);
  EXPECT_EQ(delivered(node, 9999, 50), 50u) << "generation 2 runs";
  referNothing(node);
  EXPECT_TRUE(eventually([&] { return chainStatus(node, chain).is_null(); }));
}

// The agent may not read the revisions (its Role on them is gone): a new generation's
// reference fails with RevisionUnavailable naming the revision and the API server's answer,
// and the old generation keeps running; once the Role is back, the new one rolls out.
// An established watch outlives an RBAC change (authorization is per request), so the agent
// is restarted without the Role, as it is when a node reboots or the DaemonSet is upgraded:
// the case where it must not lose what runs.
TEST_F(AgentRevisions, WithoutPermissionToReadRevisionsTheOldGenerationKeepsRunning) {
  const size_t node = 2;
  const std::string chain = "rev-rbac";
  startAgent(node);
  api::ChainRef g1 = createRevision(chain, 1, chainSpec(true), chainSpec(true));
  refer(node, {g1});
  waitFor(node, chain, 1, "Ready");
  std::vector<int64_t> ids = programIds(node, chain);
  ASSERT_EQ(ids.size(), 3u);
  agent_->process().stop();
  agent_.reset();

  auto removed = plane().kubectl({"delete", "role", kRevisionRole, "-n", kNs});
  ASSERT_TRUE(removed.ok()) << removed.error().message();
  ASSERT_TRUE(eventually([&] {
    auto can = plane().kubectlOutput({"auth", "can-i", "get", "controllerrevisions", "-n", kNs,
                                      "--as", "system:serviceaccount:" + kNs + ":" + kAgentSa});
    return can.ok() && can->out.find("no") == 0;
  }));
  api::ChainRef g2 = createRevision(chain, 2, chainSpec(false), chainSpec(false));
  refer(node, {g2});
  startAgent(node);
  waitFor(node, chain, 2, "Failed", "RevisionUnavailable");
  Json s = chainStatus(node, chain);
  std::string message = k8s::stringAt(s, {"message"});
  EXPECT_NE(message.find(kNs + "/" + g2.revision), std::string::npos) << message;
  EXPECT_NE(message.find("forbidden"), std::string::npos) << message;
  EXPECT_NE(message.find("controllerrevisions"), std::string::npos) << message;
  EXPECT_EQ(intAt(s, "runningGeneration"), 1) << s.serialize();
  EXPECT_EQ(k8s::stringAt(s, {"revision"}), g2.revision) << s.serialize();
  EXPECT_EQ(k8s::stringAt(s, {"runningRevision"}), g1.revision) << s.serialize();
  EXPECT_EQ(programIds(node, chain), ids) << "generation 1 must keep running, unreloaded";
  EXPECT_EQ(delivered(node, 7000, 100), 100u);
  EXPECT_EQ(delivered(node, 9999, 50), 0u) << "generation 1's filter still drops 9999";
  EXPECT_GE(metric("bpfchain_errors_total",
                   {"chain=\"" + chain + "\"", "reason=\"RevisionUnavailable\""}),
            1);
  EXPECT_NE(agent_->log().find("revision=" + g2.revision + " reason=RevisionUnavailable "),
            std::string::npos)
      << agent_->log();

  kubectlApply(revisionRole());
  waitFor(node, chain, 2, "Ready", "", kLongWait);
  EXPECT_EQ(k8s::stringAt(chainStatus(node, chain), {"runningRevision"}), g2.revision);
  EXPECT_EQ(delivered(node, 9999, 50), 50u) << "generation 2 runs";
  referNothing(node);
  EXPECT_TRUE(eventually([&] { return chainStatus(node, chain).is_null(); }));
}

// A membership entry ({name, follow: true}) runs what its BpfChain publishes for the node
// (api::refFor): the stable revision while the partition has not reached the node, the
// target once it has. Without permission to read the BpfChains (an agent restarted after its
// ClusterRole went) the chain fails alone with RevisionUnavailable naming the BpfChain, and
// the revision it ran keeps running, unreloaded; once the permission is back it is Ready.
TEST_F(AgentRevisions, AMembershipEntryFollowsThePartitionAndKeepsItsRevisionWithoutTheChain) {
  const size_t node = 3;
  const std::string chain = "rev-follow";
  api::ChainRef g1 = createRevision(chain, 1, chainSpec(true), chainSpec(true));
  api::ChainRef g2 = createRevision(chain, 2, chainSpec(false), chainSpec(false));
  Json object = Json::object();
  object["apiVersion"] = Json::string("bpfchain.io/v1alpha1");
  object["kind"] = Json::string("BpfChain");
  object["metadata"]["name"] = Json::string(chain);
  object["spec"] = chainSpec(true);
  auto created = client_->create(api::kBpfChains, object);
  ASSERT_TRUE(created.ok()) << created.error().describe();
  // What the operator publishes: generation 1 stable, 2 up to `partition`.
  auto publish = [&](const std::string& partition) {
    Json patch = Json::object();
    patch["status"]["published"] = api::toJson(api::PublishedRollout{g1, {{g2, partition}}});
    auto patched = client_->patch(api::kBpfChains, "", chain, k8s::PatchType::Merge, patch,
                                  {.subresource = "status"});
    ASSERT_TRUE(patched.ok()) << patched.error().describe();
  };
  publish("a"); // sorts before every node name: no node moved yet
  startAgent(node);
  Json body = Json::object();
  body["apiVersion"] = Json::string("bpfchain.io/v1alpha1");
  body["kind"] = Json::string("BpfNodeConfig");
  body["metadata"]["name"] = Json::string(nodeName(node));
  body["spec"]["chains"][0] = api::membershipEntry(chain);
  auto applied = client_->apply(api::kBpfNodeConfigs, body, "e2e-operator", true);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  waitFor(node, chain, 1, "Ready");
  EXPECT_EQ(k8s::stringAt(chainStatus(node, chain), {"revision"}), g1.revision);
  EXPECT_EQ(delivered(node, 9999, 50), 0u) << "generation 1's filter drops 9999";

  publish(nodeName(node)); // the partition reaches the node: one write of the chain's status
  waitFor(node, chain, 2, "Ready");
  EXPECT_EQ(k8s::stringAt(chainStatus(node, chain), {"runningRevision"}), g2.revision);
  EXPECT_EQ(delivered(node, 9999, 50), 50u) << "generation 2 runs";
  std::vector<int64_t> ids = programIds(node, chain);
  ASSERT_EQ(ids.size(), 2u);
  agent_->process().stop();
  agent_.reset();

  auto removed = plane().kubectl({"delete", "clusterrole", kChainsRole});
  ASSERT_TRUE(removed.ok()) << removed.error().message();
  ASSERT_TRUE(eventually([&] {
    auto can = plane().kubectlOutput({"auth", "can-i", "list", "bpfchains.bpfchain.io", "--as",
                                      "system:serviceaccount:" + kNs + ":" + kAgentSa});
    return can.ok() && can->out.find("no") == 0;
  }));
  startAgent(node);
  bool failed = eventually([&] {
    Json s = chainStatus(node, chain);
    return k8s::stringAt(s, {"phase"}) == "Failed" &&
           k8s::stringAt(s, {"reason"}) == "RevisionUnavailable";
  });
  Json s = chainStatus(node, chain);
  ASSERT_TRUE(failed) << s.serialize() << "\n" << agent_->log();
  std::string message = k8s::stringAt(s, {"message"});
  EXPECT_NE(message.find("BpfChain " + chain), std::string::npos) << message;
  EXPECT_NE(message.find("forbidden"), std::string::npos) << message;
  EXPECT_EQ(intAt(s, "runningGeneration"), 2) << s.serialize();
  EXPECT_EQ(k8s::stringAt(s, {"runningRevision"}), g2.revision) << s.serialize();
  EXPECT_EQ(programIds(node, chain), ids) << "generation 2 must keep running, unreloaded";
  EXPECT_EQ(delivered(node, 9999, 50), 50u) << "generation 2 still runs";

  kubectlApply(chainsRole());
  waitFor(node, chain, 2, "Ready", "", kLongWait);
  EXPECT_EQ(programIds(node, chain), ids);
  referNothing(node);
  EXPECT_TRUE(eventually([&] { return chainStatus(node, chain).is_null(); }));
  (void)client_->remove(api::kBpfChains, "", chain);
}

} // namespace
} // namespace bpfchain::testing
