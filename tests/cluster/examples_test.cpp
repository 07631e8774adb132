// examples/ and manifests/ as users apply them, on a real kube-apiserver with the machine's
// kubectl: every example BpfChain applies as it is; every package an example names is the
// committed file under examples/packages/ (same sha256: a stale example fails here); every
// program resolves in its package as the agent resolves it (entry, hook, next map); the
// standalone config parses with the agent's parser; and all example chains together load and
// become Ready on a simulated node under a real bpfchain-agent. manifests/*.yaml pass the API
// server's validation (--dry-run=server), and the RBAC they grant is what the binaries need:
// the operator can do its job, an agent can write its own node's status and no other node's.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <set>
#include <sstream>
#include <yaml-cpp/yaml.h>

#include "harness/agent_process.h"
#include "harness/bpffs.h"
#include "harness/control_plane.h"
#include "harness/netns.h"
#include "harness/resources.h"
#include "node-agent/node_config.h"
#include "node-agent/program_resolver.h"
#include "packages/digest.h"
#include "packages/package_cache.h"

namespace bpfchain::testing {
namespace {

namespace fs = std::filesystem;

[[maybe_unused]] auto* const kControlPlane =
    ::testing::AddGlobalTestEnvironment(new ControlPlaneEnvironment);

const std::string kSource = BPFCHAIN_SOURCE_DIR;
const std::string kExamples = kSource + "/examples";
const std::string kPackages = kExamples + "/packages";
const std::string kManifests = kSource + "/manifests";
// Where the examples say their packages are: scripts/demo.sh serves examples/packages there.
const std::string kPackageServer = "http://127.0.0.1:8607/";
const std::string kAgentUser = "system:serviceaccount:bpfchain-system:bpfchain-agent";
const std::string kOperatorUser = "system:serviceaccount:bpfchain-system:bpfchain-operator";

// The examples/*.yaml files that hold BpfChains (every one of them, by design).
std::vector<std::string> chainExamples() {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(kExamples))
    if (e.is_regular_file() && e.path().extension() == ".yaml")
      files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

// Every YAML file under examples/ (BpfChains and the standalone config).
std::vector<std::string> allExampleYaml() {
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(kExamples))
    if (e.is_regular_file() && e.path().extension() == ".yaml")
      files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

struct PackageUse {
  std::string file; // the example
  std::string url;
  std::string sha256;
};

// Every programs[].package of a BpfChain, a BpfNodeConfig spec or a whole BpfNodeConfig.
void collectPackages(const YAML::Node& node, const std::string& file,
                     std::vector<PackageUse>& out) {
  if (node.IsMap()) {
    const YAML::Node& package = node["package"];
    if (package && package.IsMap() && package["url"] && package["sha256"])
      out.push_back({file, package["url"].as<std::string>(), package["sha256"].as<std::string>()});
    for (const auto& kv : node)
      collectPackages(kv.second, file, out);
  } else if (node.IsSequence()) {
    for (const auto& item : node)
      collectPackages(item, file, out);
  }
}

std::vector<PackageUse> packageUses() {
  std::vector<PackageUse> uses;
  for (const auto& file : allExampleYaml())
    for (const auto& doc : YAML::LoadAllFromFile(file))
      collectPackages(doc, file, uses);
  return uses;
}

// The example URLs, pointed at the committed files (file://), for tests without the server.
void pointAtCommittedPackages(YAML::Node node) {
  if (node.IsMap()) {
    if (YAML::Node package = node["package"]; package && package.IsMap() && package["url"]) {
      std::string url = package["url"].as<std::string>();
      if (url.rfind(kPackageServer, 0) == 0)
        package["url"] = "file://" + kPackages + "/" + url.substr(kPackageServer.size());
    }
    for (auto kv : node)
      pointAtCommittedPackages(kv.second);
  } else if (node.IsSequence()) {
    for (auto item : node)
      pointAtCommittedPackages(item);
  }
}

// A BpfChain as one node runs it (a BpfNodeConfig's spec.chains entry), as the operator
// resolves it: the spec without nodeSelector and rollout, named `name`.
YAML::Node nodeChainOf(const YAML::Node& chain, const std::string& name) {
  YAML::Node out;
  out["name"] = name;
  out["generation"] = 1;
  for (const auto& kv : chain["spec"]) {
    std::string key = kv.first.as<std::string>();
    if (key != "nodeSelector" && key != "rollout")
      out[key] = YAML::Clone(kv.second);
  }
  return out;
}

class Examples : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    auto installed = ControlPlaneEnvironment::get().installCrds(
        kSource + "/crds", {"bpfchains.bpfchain.io", "bpfnodeconfigs.bpfchain.io"});
    ASSERT_TRUE(installed.ok()) << installed.error().message();
  }
  ControlPlane& plane() { return ControlPlaneEnvironment::get(); }

  // A kubeconfig that impersonates `user` (with its service-account groups and, when given,
  // the node name a bound pod token carries).
  std::string impersonating(const std::string& user, const std::string& node, const TempDir& dir) {
    YAML::Node config = YAML::LoadFile(plane().kubeconfig());
    for (auto u : config["users"]) {
      u["user"]["as"] = user;
      YAML::Node groups;
      for (const char* g : {"system:serviceaccounts", "system:serviceaccounts:bpfchain-system",
                            "system:authenticated"})
        groups.push_back(g);
      u["user"]["as-groups"] = groups;
      if (!node.empty())
        u["user"]["as-user-extra"]["authentication.kubernetes.io/node-name"].push_back(node);
    }
    std::string path = dir.path() + "/kubeconfig-" + (node.empty() ? "nonode" : node);
    std::ofstream(path) << YAML::Dump(config);
    return path;
  }

  // kubectl as a user of another kubeconfig; the exit status and output.
  CommandOutput kubectlAs(const std::string& kubeconfig, const std::vector<std::string>& args) {
    std::vector<std::string> argv{"kubectl", "--kubeconfig", kubeconfig};
    argv.insert(argv.end(), args.begin(), args.end());
    auto out = runCommand(argv);
    EXPECT_TRUE(out.ok()) << out.error().message();
    return out.ok() ? *out : CommandOutput{-1, "", ""};
  }

  void applyManifests() {
    auto ns = plane().kubectl({"apply", "-f", kManifests + "/00-namespace.yaml"});
    ASSERT_TRUE(ns.ok()) << ns.error().message();
    auto applied = plane().kubectl({"apply", "-f", kManifests});
    ASSERT_TRUE(applied.ok()) << applied.error().message();
  }
};

TEST_F(Examples, EveryBpfChainAppliesAsItIsAndIsExplained) {
  auto files = chainExamples();
  ASSERT_GE(files.size(), 5u);
  for (const auto& file : files) {
    SCOPED_TRACE(file);
    // Each example explains itself in a leading comment.
    std::string text = readFile(file);
    size_t commentLines = 0;
    for (std::istringstream in(text); std::getline(in, text) && text.rfind('#', 0) == 0;)
      ++commentLines;
    EXPECT_GE(commentLines, 5u) << "no explanation at the top";
    YAML::Node doc = YAML::LoadFile(file);
    ASSERT_EQ(doc["kind"].as<std::string>(), "BpfChain");
    std::string name = doc["metadata"]["name"].as<std::string>();
    auto applied = plane().kubectl({"apply", "-f", file});
    ASSERT_TRUE(applied.ok()) << applied.error().message();
    auto hook =
        plane().kubectl({"get", "bpfchains.bpfchain.io/" + name, "-o", "jsonpath={.spec.hook}"});
    ASSERT_TRUE(hook.ok()) << hook.error().message();
    EXPECT_EQ(hook->out, doc["spec"]["hook"].as<std::string>());
    auto deleted = plane().kubectl({"delete", "-f", file, "--wait=true", "--timeout=30s"});
    EXPECT_TRUE(deleted.ok()) << deleted.error().message();
  }
}

TEST_F(Examples, EveryPackageIsTheCommittedFileWithThatSha256) {
  auto uses = packageUses();
  ASSERT_GE(uses.size(), 10u);
  std::set<std::string> used;
  for (const auto& use : uses) {
    SCOPED_TRACE(use.file + ": " + use.url);
    ASSERT_EQ(use.url.rfind(kPackageServer, 0), 0u)
        << "example packages are served from " << kPackageServer << " (scripts/demo.sh)";
    std::string name = use.url.substr(kPackageServer.size());
    used.insert(name);
    auto digest = packages::sha256File(kPackages + "/" += name);
    ASSERT_TRUE(digest.ok()) << digest.error().message();
    EXPECT_EQ(use.sha256, *digest)
        << "stale sha256: run scripts/build-example-packages.sh (or fix the example)";
  }
  // And nothing committed that no example uses (an old version left behind).
  for (const auto& e : fs::directory_iterator(kPackages))
    EXPECT_TRUE(used.count(e.path().filename())) << e.path() << " is used by no example";
}

TEST_F(Examples, TheStandaloneConfigParsesWithTheAgentsParser) {
  auto spec = agent::loadNodeSpecFile(kExamples + "/standalone/node.yaml");
  ASSERT_TRUE(spec.ok()) << spec.error().message();
  EXPECT_GE(spec->chains.size(), 2u);
  for (const auto& chain : spec->chains)
    EXPECT_FALSE(chain.programs.empty()) << chain.name;
}

TEST_F(Examples, EveryProgramResolvesInItsPackageAsTheAgentResolvesIt) {
  auto dir = TempDir::create("examples");
  ASSERT_TRUE(dir.ok()) << dir.error().message();
  auto cache = packages::PackageCache::open(dir->path() + "/cache");
  ASSERT_TRUE(cache.ok()) << cache.error().message();
  agent::ProgramResolver resolver(*cache);
  YAML::Node chains;
  for (const auto& file : chainExamples()) {
    YAML::Node doc = YAML::LoadFile(file);
    chains.push_back(nodeChainOf(doc, doc["metadata"]["name"].as<std::string>()));
  }
  YAML::Node spec;
  spec["chains"] = chains;
  pointAtCommittedPackages(spec);
  auto parsed = agent::parseNodeSpec(spec, "examples");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
  auto standalone = agent::loadNodeSpecFile(kExamples + "/standalone/node.yaml");
  ASSERT_TRUE(standalone.ok()) << standalone.error().message();
  YAML::Node standaloneSpec = YAML::LoadFile(kExamples + "/standalone/node.yaml");
  pointAtCommittedPackages(standaloneSpec);
  auto standaloneParsed = agent::parseNodeSpec(standaloneSpec, "standalone/node.yaml");
  ASSERT_TRUE(standaloneParsed.ok()) << standaloneParsed.error().message();
  for (const auto& list : {parsed->chains, standaloneParsed->chains})
    for (const auto& chain : list) {
      auto specs = resolver.resolve(chain);
      EXPECT_TRUE(specs.ok()) << chain.name << ": " << specs.error().reason << ": "
                              << specs.error().message;
    }
}

// Every example chain at once, with the standalone example's chains, on a simulated node whose
// eth0 is one end of a veth: a real bpfchain-agent loads them (verifier, BTF-typed globalData
// and mapArgs, attachment) and reports each Ready.
TEST_F(Examples, AllExampleChainsLoadAndBecomeReadyOnANode) {
  auto node = TestNetns::create();
  ASSERT_TRUE(node.ok()) << node.error().message();
  auto peer = TestNetns::create();
  ASSERT_TRUE(peer.ok()) << peer.error().message();
  ASSERT_TRUE(connectVeth(*peer, {"uplink", "02:00:00:00:07:01", "10.87.0.1/24"}, *node,
                          {"eth0", "02:00:00:00:07:02", "10.87.0.2/24"})
                  .ok());
  auto bpffs = TestBpffs::mount();
  ASSERT_TRUE(bpffs.ok()) << bpffs.error().message();
  auto dir = TempDir::create("examples");
  ASSERT_TRUE(dir.ok()) << dir.error().message();

  YAML::Node spec = YAML::LoadFile(kExamples + "/standalone/node.yaml");
  std::set<std::string> expected;
  for (const auto& c : spec["chains"])
    expected.insert(c["name"].as<std::string>());
  for (const auto& file : chainExamples()) {
    YAML::Node doc = YAML::LoadFile(file);
    std::string name = "k8s-" + doc["metadata"]["name"].as<std::string>();
    spec["chains"].push_back(nodeChainOf(doc, name));
    expected.insert(name);
  }
  pointAtCommittedPackages(spec);
  std::string config = dir->path() + "/node.yaml";
  std::ofstream(config) << YAML::Dump(spec);

  AgentOptions o = AgentOptions::standalone(config, node->path(), bpffs->path(), dir->path());
  o.extra = {"--detach-on-exit"};
  auto agent = AgentProcess::start(o, dir->path() + "/agent.log");
  ASSERT_TRUE(agent.ok()) << agent.error().message();
  std::string statusFile = dir->path() + "/state/status.yaml";
  std::map<std::string, std::string> phases;
  std::map<std::string, size_t> attachments;
  bool ready = eventually(
      [&] {
        phases.clear();
        try {
          for (const auto& c : YAML::LoadFile(statusFile)["chains"]) {
            std::string name = c["name"].as<std::string>();
            phases[name] = c["phase"].as<std::string>() +
                           (c["reason"] ? " " + c["reason"].as<std::string>() : "");
            attachments[name] = c["attachments"] ? c["attachments"].size() : 0;
          }
        } catch (const YAML::Exception&) {
          return false;
        }
        // The pod chain has no pod on this node yet: Idle, not Ready (nothing to attach to).
        return phases.size() == expected.size() &&
               std::all_of(phases.begin(), phases.end(), [](const auto& p) {
                 return p.first == "k8s-web-egress" ? p.second == "Idle NothingToAttach"
                                                    : p.second.rfind("Ready", 0) == 0;
               });
      },
      60000);
  EXPECT_TRUE(ready) << readFile(statusFile) << "\nlog:\n" << (*agent)->log();
  for (const auto& name : expected)
    EXPECT_TRUE(phases.count(name)) << name << " missing from the status";
  // Every host chain runs on eth0 (the pod chain waits for pods: bpfchain-cni attaches it).
  for (const auto& [name, count] : attachments)
    EXPECT_EQ(count, name == "k8s-web-egress" ? 0u : 1u) << name << "\n" << readFile(statusFile);
  (*agent)->process().stop();
}

TEST_F(Examples, ManifestsPassTheApiServersValidation) {
  // Namespaced objects need their namespace to exist, even in a dry run.
  auto ns = plane().kubectl({"apply", "-f", kManifests + "/00-namespace.yaml"});
  ASSERT_TRUE(ns.ok()) << ns.error().message();
  auto dry = plane().kubectl({"apply", "--dry-run=server", "-f", kManifests});
  ASSERT_TRUE(dry.ok()) << dry.error().message();
  for (const char* object :
       {"deployment.apps/bpfchain-operator", "daemonset.apps/bpfchain-agent",
        "clusterrole.rbac.authorization.k8s.io/bpfchain-operator",
        "clusterrole.rbac.authorization.k8s.io/bpfchain-agent",
        "validatingadmissionpolicy.admissionregistration.k8s.io/bpfchain-agent-own-node"})
    EXPECT_NE(dry->out.find(object), std::string::npos) << object << " in\n" << dry->out;

  // The ServiceMonitor's kind belongs to the Prometheus Operator, which this control plane
  // does not run: its CRD is stood in for by a schemaless one; the test checks that the
  // ServiceMonitor selects both metrics Services by a label and port they have.
  auto installed = plane().installCrds(kSource + "/tests/cluster/testdata/servicemonitor-crd.yaml",
                                       {"servicemonitors.monitoring.coreos.com"});
  ASSERT_TRUE(installed.ok()) << installed.error().message();
  auto monitor = plane().kubectl(
      {"apply", "--dry-run=server", "-f", kManifests + "/monitoring/servicemonitor.yaml"});
  ASSERT_TRUE(monitor.ok()) << monitor.error().message();

  YAML::Node sm = YAML::LoadFile(kManifests + "/monitoring/servicemonitor.yaml");
  std::string port = sm["spec"]["endpoints"][0]["port"].as<std::string>();
  size_t selected = 0;
  for (const char* file : {"/20-operator.yaml", "/30-agent.yaml"})
    for (const auto& doc : YAML::LoadAllFromFile(kManifests + file)) {
      if (doc["kind"].as<std::string>() != "Service")
        continue;
      bool matches = true;
      for (const auto& kv : sm["spec"]["selector"]["matchLabels"])
        matches = matches && doc["metadata"]["labels"][kv.first.as<std::string>()] &&
                  doc["metadata"]["labels"][kv.first.as<std::string>()].as<std::string>() ==
                      kv.second.as<std::string>();
      bool hasPort = false;
      for (const auto& p : doc["spec"]["ports"])
        hasPort = hasPort || p["name"].as<std::string>() == port;
      EXPECT_TRUE(matches && hasPort) << doc["metadata"]["name"];
      selected += matches && hasPort;
    }
  EXPECT_EQ(selected, 2u);
}

TEST_F(Examples, TheOperatorMayDoWhatItDoes) {
  applyManifests();
  struct Need {
    std::string verb, resource, ns, subresource;
  };
  const std::vector<Need> needs = {
      {"watch", "bpfchains.bpfchain.io", ""},
      {"patch", "bpfchains.bpfchain.io", ""},
      {"patch", "bpfchains.bpfchain.io", "", "status"},
      {"update", "bpfchains.bpfchain.io", "", "finalizers"},
      {"create", "bpfnodeconfigs.bpfchain.io", ""},
      {"patch", "bpfnodeconfigs.bpfchain.io", ""},
      {"delete", "bpfnodeconfigs.bpfchain.io", ""},
      {"watch", "nodes", ""},
      {"create", "events", "default"},
      {"create", "controllerrevisions.apps", "bpfchain-system"},
      {"get", "controllerrevisions.apps", "bpfchain-system"},
      {"update", "leases.coordination.k8s.io", "bpfchain-system"},
      {"create", "leases.coordination.k8s.io", "bpfchain-system"},
  };
  for (const auto& need : needs) {
    std::vector<std::string> args{"auth", "can-i", need.verb, need.resource, "--as", kOperatorUser};
    if (!need.ns.empty())
      args.insert(args.end(), {"-n", need.ns});
    if (!need.subresource.empty())
      args.push_back("--subresource=" + need.subresource);
    auto can = plane().kubectl(args);
    EXPECT_TRUE(can.ok()) << need.verb << " " << need.resource << ": "
                          << (can.ok() ? "" : can.error().message());
  }
  // Least privilege: no secrets, no writes to nodes, no leases elsewhere.
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"get", "secrets", "-n", "bpfchain-system"},
           {"patch", "nodes"},
           {"update", "leases.coordination.k8s.io", "-n", "kube-system"}}) {
    std::vector<std::string> argv{"auth", "can-i", "--as", kOperatorUser};
    argv.insert(argv.end(), args.begin(), args.end());
    EXPECT_FALSE(plane().kubectl(argv).ok()) << args[0] << " " << args[1];
  }
}

TEST_F(Examples, AnAgentMayWriteItsOwnNodesStatusAndNoOther) {
  applyManifests();
  auto dir = TempDir::create("examples");
  ASSERT_TRUE(dir.ok());
  for (const char* node : {"examples-n1", "examples-n2"}) {
    std::string file = dir->path() + "/" + node + ".yaml";
    std::ofstream(file)
        << "apiVersion: bpfchain.io/v1alpha1\nkind: BpfNodeConfig\nmetadata: {name: " << node
        << "}\nspec: {chains: []}\n";
    auto applied = plane().kubectl({"apply", "-f", file});
    ASSERT_TRUE(applied.ok()) << applied.error().message();
  }
  std::string asN1 = impersonating(kAgentUser, "examples-n1", *dir);
  const std::string patch = R"({"status":{"chainCount":0}})";
  auto own = kubectlAs(asN1, {"patch", "bpfnodeconfig", "examples-n1", "--subresource=status",
                              "--type=merge", "-p", patch});
  EXPECT_EQ(own.exitCode, 0) << own.err;
  // The ValidatingAdmissionPolicy: another node's status is refused.
  bool refused = eventually(
      [&] {
        auto other = kubectlAs(asN1, {"patch", "bpfnodeconfig", "examples-n2",
                                      "--subresource=status", "--type=merge", "-p", patch});
        return other.exitCode != 0 &&
               other.err.find("may only write the status of its own node") != std::string::npos;
      },
      20000); // a new policy takes effect within a second or so
  EXPECT_TRUE(refused);
  // RBAC: the agent reads its BpfNodeConfig, the BpfChains and pods, and writes nothing else.
  auto watch = kubectlAs(asN1, {"auth", "can-i", "watch", "bpfnodeconfigs.bpfchain.io"});
  EXPECT_EQ(watch.exitCode, 0) << watch.out << watch.err;
  auto pods = kubectlAs(asN1, {"auth", "can-i", "list", "pods", "--all-namespaces"});
  EXPECT_EQ(pods.exitCode, 0) << pods.out << pods.err;
  auto spec = kubectlAs(asN1, {"patch", "bpfnodeconfig", "examples-n1", "--type=merge", "-p",
                               R"({"spec":{"chains":[]}})"});
  EXPECT_NE(spec.exitCode, 0) << "an agent must not write a spec";
  // It reads the BpfChains (the rollout each publishes, which its membership entries follow)
  // and writes none of them.
  auto chains = kubectlAs(asN1, {"get", "bpfchains"});
  EXPECT_EQ(chains.exitCode, 0) << chains.out << chains.err;
  auto chainStatus =
      kubectlAs(asN1, {"auth", "can-i", "patch", "bpfchains.bpfchain.io", "--subresource=status"});
  EXPECT_NE(chainStatus.exitCode, 0) << "an agent must not write a chain's status";
  auto chainDelete = kubectlAs(asN1, {"auth", "can-i", "delete", "bpfchains.bpfchain.io"});
  EXPECT_NE(chainDelete.exitCode, 0) << "an agent must not delete chains";
}

} // namespace
} // namespace bpfchain::testing
