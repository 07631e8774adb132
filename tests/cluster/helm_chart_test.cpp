// charts/bpfchain, the Helm chart, as users install it, with the helm that tools/envtest builds:
// - `helm lint --strict` passes with the defaults and with every ci/*-values.yaml;
// - `helm template` renders with the defaults, with every option turned on
//   (ci/all-on-values.yaml) and with an existing trusted-keys Secret
//   (ci/existing-secret-values.yaml), and each render passes a real kube-apiserver's validation
//   (`kubectl apply --dry-run=server`); the options land where they should;
// - values.schema.json and the chart's own checks refuse bad values, naming the value;
// - the chart's crds/ are the project's crds/*.yaml byte for byte;
// - with its defaults the chart deploys what manifests/ deploys: the API server's defaulted
//   objects compared field by field (labels may only be added; command lines compared as
//   "--flag value" pairs);
// - installed under another release name, in another namespace, with other ServiceAccount
//   names: the real bpfchain-operator, run with the chart's command line and its
//   ServiceAccount's token, leads and rolls a chain out (so the RBAC and the arguments fit);
//   the agent's ServiceAccount may write its own node's status and no other node's;
// - bpfchain-agent accepts the command line the chart gives it, CNI keeper flags included.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <set>
#include <sstream>
#include <yaml-cpp/yaml.h>

#include "harness/agent_process.h"
#include "harness/control_plane.h"
#include "harness/http.h"
#include "harness/process.h"
#include "harness/resources.h"
#include "harness/test_bed_tools.h"

namespace bpfchain::testing {
namespace {

namespace fs = std::filesystem;

[[maybe_unused]] auto* const kControlPlane =
    ::testing::AddGlobalTestEnvironment(new ControlPlaneEnvironment);

const std::string kSource = BPFCHAIN_SOURCE_DIR;
const std::string kBin = BPFCHAIN_BIN_DIR;
const std::string kChart = kSource + "/charts/bpfchain";
const std::string kManifests = kSource + "/manifests";
const std::string kAllOn = kChart + "/ci/all-on-values.yaml";
const std::string kExistingSecret = kChart + "/ci/existing-secret-values.yaml";
// ci/all-on-values.yaml is installed as release "edge" in this namespace.
const std::string kEdgeNs = "bpfchain-helm";
const std::string kEdgeOperatorSa = "edge-operator-sa";
const std::string kEdgeAgentSa = "edge-agent-sa";

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.pop_back();
  return text;
}

// The helm binary tools/envtest/build.sh builds (on first use) and prints the directory of.
const std::string& helm() {
  static const std::string path =
      testBedToolsDir().empty() ? std::string() : testBedToolsDir() + "/helm";
  return path;
}

// A command's exit status and output; a command that cannot start fails the test.
CommandOutput run(const std::vector<std::string>& argv) {
  auto out = runCommand(argv);
  EXPECT_TRUE(out.ok()) << describeCommand(argv) << ": " << out.error().message();
  return out.ok() ? *out : CommandOutput{-1, "", ""};
}

ControlPlane& plane() {
  return ControlPlaneEnvironment::get();
}

// kubectl against the suite's control plane; exit status and output.
CommandOutput kubectl(const std::vector<std::string>& args,
                      const std::string& kubeconfig = plane().kubeconfig()) {
  std::vector<std::string> argv{"kubectl", "--kubeconfig", kubeconfig};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

// `helm template RELEASE charts/bpfchain -n NS FLAGS...`
CommandOutput helmTemplate(const std::string& release, const std::string& ns,
                           const std::vector<std::string>& flags = {}) {
  std::vector<std::string> argv{helm(), "template", release, kChart, "--namespace", ns};
  argv.insert(argv.end(), flags.begin(), flags.end());
  return run(argv);
}

std::vector<YAML::Node> documents(const std::string& text) {
  std::vector<YAML::Node> docs;
  for (const auto& doc : YAML::LoadAll(text))
    if (doc.IsMap())
      docs.push_back(doc);
  return docs;
}

// The rendered object of that kind and name (an undefined node when there is none).
YAML::Node object(const std::vector<YAML::Node>& docs, const std::string& kind,
                  const std::string& name) {
  for (const auto& doc : docs)
    if (doc["kind"].as<std::string>() == kind && doc["metadata"]["name"].as<std::string>() == name)
      return doc;
  return YAML::Node(YAML::NodeType::Undefined);
}

size_t countKind(const std::vector<YAML::Node>& docs, const std::string& kind) {
  return std::count_if(docs.begin(), docs.end(),
                       [&](const YAML::Node& d) { return d["kind"].as<std::string>() == kind; });
}

// The container (or init container) of that name in a workload's pod template.
YAML::Node container(const YAML::Node& workload, const std::string& name,
                     const char* field = "containers") {
  for (const auto& c : workload["spec"]["template"]["spec"][field])
    if (c["name"].as<std::string>() == name)
      return c;
  return YAML::Node(YAML::NodeType::Undefined);
}

std::vector<std::string> strings(const YAML::Node& list) {
  std::vector<std::string> out;
  for (const auto& item : list)
    out.push_back(item.as<std::string>());
  return out;
}

// command followed by args.
std::vector<std::string> commandLine(const YAML::Node& c) {
  auto argv = strings(c["command"]);
  for (auto& arg : strings(c["args"]))
    argv.push_back(arg);
  return argv;
}

bool hasPair(const std::vector<std::string>& argv, const std::string& flag,
             const std::string& value) {
  for (size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == flag && argv[i + 1] == value)
      return true;
  return false;
}

bool has(const std::vector<std::string>& argv, const std::string& word) {
  return std::find(argv.begin(), argv.end(), word) != argv.end();
}

// --- manifests/ against the chart, on the API server's terms ------------------------------------

// The objects `kubectl apply --dry-run=server -o yaml` returned, by "Kind namespace/name", without
// what the server adds per request (uid, timestamps, managed fields, kubectl's last-applied).
std::map<std::string, YAML::Node> serverObjects(const std::string& text) {
  std::map<std::string, YAML::Node> out;
  YAML::Node doc = YAML::Load(text);
  std::vector<YAML::Node> items;
  if (doc["kind"].as<std::string>() == "List")
    for (const auto& item : doc["items"])
      items.push_back(item);
  else
    items.push_back(doc);
  for (YAML::Node item : items) {
    YAML::Node meta = item["metadata"];
    YAML::Node kept;
    for (const char* key : {"name", "namespace", "labels", "annotations"})
      if (meta[key])
        kept[key] = meta[key];
    if (kept["annotations"]) {
      kept["annotations"].remove("kubectl.kubernetes.io/last-applied-configuration");
      if (kept["annotations"].size() == 0)
        kept.remove("annotations");
    }
    item["metadata"] = kept;
    item.remove("status");
    std::string ns = kept["namespace"] ? kept["namespace"].as<std::string>() : "";
    out.insert_or_assign(
        item["kind"].as<std::string>() + " " + ns + "/" + kept["name"].as<std::string>(), item);
  }
  return out;
}

// "--flag=value" as "--flag", "value" (the binaries take the second form only).
std::vector<std::string> splitFlags(const YAML::Node& list) {
  std::vector<std::string> out;
  for (const auto& item : list) {
    std::string arg = item.as<std::string>();
    auto eq = arg.find('=');
    if (arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      out.push_back(arg.substr(0, eq));
      out.push_back(arg.substr(eq + 1));
    } else {
      out.push_back(arg);
    }
  }
  return out;
}

// Flags the chart passes that manifests/ leaves to the binaries' defaults, which are these
// values: the operator's --revision-namespace (the release namespace, which is not always
// bpfchain-system) and the agent's --cni-failure-policy (the installer keeps an existing entry's
// value when none is given, so switching cni.failurePolicy back to "fail" needs it written).
const std::vector<std::pair<std::string, std::string>> kChartOnlyFlags = {
    {"--revision-namespace", "bpfchain-system"}, {"--cni-failure-policy", "fail"}};

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words)
    out += (out.empty() ? "" : " ") + w;
  return out;
}

// Where `got` (the chart's) differs from `want` (manifests/): every field must be equal, except
// that a label map (labels, matchLabels, a Service's selector) may hold more labels, and command
// lines are compared as "--flag value" pairs without kChartOnlyFlags.
void compareNodes(const YAML::Node& want, const YAML::Node& got, const std::string& path,
                  bool serviceSelector, std::vector<std::string>& diffs) {
  std::string key = path.substr(path.rfind('.') + 1);
  if (!got.IsDefined() || got.Type() != want.Type()) {
    diffs.push_back(path + ": manifests/ has " + YAML::Dump(want) + ", the chart " +
                    (got.IsDefined() ? YAML::Dump(got) : "nothing"));
    return;
  }
  if (want.IsMap()) {
    bool labels = key == "labels" || key == "matchLabels" || (serviceSelector && key == "selector");
    for (const auto& kv : want) {
      std::string k = kv.first.as<std::string>();
      compareNodes(kv.second, got[k], path + "." += k, serviceSelector, diffs);
    }
    if (!labels)
      for (const auto& kv : got)
        if (!want[kv.first.as<std::string>()])
          diffs.push_back(path + "." + kv.first.as<std::string>() + ": only the chart has " +
                          YAML::Dump(kv.second));
  } else if (want.IsSequence() && (key == "args" || key == "command")) {
    auto w = splitFlags(want);
    auto g = splitFlags(got);
    for (const auto& [flag, value] : kChartOnlyFlags) {
      for (size_t i = 0; i + 1 < g.size(); ++i)
        if (g[i] == flag && g[i + 1] == value && !has(w, flag)) {
          g.erase(g.begin() + i, g.begin() + i + 2);
          break;
        }
    }
    if (w != g)
      diffs.push_back(path + ": manifests/ [" + join(w) + "], the chart [" + join(g) + "]");
  } else if (want.IsSequence()) {
    if (want.size() != got.size()) {
      diffs.push_back(path + ": manifests/ has " + std::to_string(want.size()) +
                      " entries, the chart " + std::to_string(got.size()) + "\n" +
                      YAML::Dump(want) + "\nvs\n" + YAML::Dump(got));
      return;
    }
    for (size_t i = 0; i < want.size(); ++i)
      compareNodes(want[i], got[i], path + "[" + std::to_string(i) + "]", serviceSelector, diffs);
  } else if (want.IsScalar() && want.Scalar() != got.Scalar()) {
    diffs.push_back(path + ": manifests/ \"" + want.Scalar() + "\", the chart \"" + got.Scalar() +
                    "\"");
  }
}

// A kubeconfig for `user` (impersonated, with its service-account groups and, when given, the
// node name a bound pod token carries).
std::string impersonating(const std::string& user, const std::string& ns, const std::string& node,
                          const TempDir& dir) {
  YAML::Node config = YAML::LoadFile(plane().kubeconfig());
  for (auto u : config["users"]) {
    u["user"]["as"] = user;
    YAML::Node groups;
    groups.push_back("system:serviceaccounts");
    groups.push_back("system:serviceaccounts:" + ns);
    groups.push_back("system:authenticated");
    u["user"]["as-groups"] = groups;
    if (!node.empty())
      u["user"]["as-user-extra"]["authentication.kubernetes.io/node-name"].push_back(node);
  }
  std::string path = dir.path() + "/kubeconfig-as-" + (node.empty() ? "nonode" : node);
  std::ofstream(path) << YAML::Dump(config);
  return path;
}

class HelmChart : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    ASSERT_FALSE(helm().empty()) << "tools/envtest/build.sh failed: no helm";
    // The chart's CRDs, as `helm install` puts them in first.
    auto installed = plane().installCrds(kChart + "/crds",
                                         {"bpfchains.bpfchain.io", "bpfnodeconfigs.bpfchain.io"});
    ASSERT_TRUE(installed.ok()) << installed.error().message();
    // The ServiceMonitor's kind belongs to the Prometheus Operator, which this control plane
    // does not run: a schemaless CRD stands in for it.
    auto dir = TempDir::create("helm");
    ASSERT_TRUE(dir.ok()) << dir.error().message();
    dir_ = new TempDir(std::move(*dir));
    installed = plane().installCrds(kSource + "/tests/cluster/testdata/servicemonitor-crd.yaml",
                                    {"servicemonitors.monitoring.coreos.com"});
    ASSERT_TRUE(installed.ok()) << installed.error().message();
    // Namespaced objects need their namespace, even in a dry run. The chart does not create
    // its release namespace (helm install --create-namespace, or the user, does).
    for (const char* ns : {"bpfchain-system", "bpfchain-helm", "ebpf-system"}) {
      auto made = kubectl({"create", "namespace", ns});
      ASSERT_EQ(made.exitCode, 0) << made.err;
    }
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  // Renders, writes the render to a file and returns its path (empty on failure).
  static std::string renderToFile(const std::string& name, const std::string& release,
                                  const std::string& ns, const std::vector<std::string>& flags) {
    auto out = helmTemplate(release, ns, flags);
    EXPECT_EQ(out.exitCode, 0) << out.err;
    if (out.exitCode != 0)
      return "";
    std::string path = dir_->path() + "/" + name + ".yaml";
    std::ofstream(path) << out.out;
    return path;
  }

  // ci/all-on-values.yaml as release "edge" in bpfchain-helm, applied for real (once).
  static std::string applyAllOn() {
    static std::string path;
    if (path.empty()) {
      std::string file = renderToFile("all-on", "edge", kEdgeNs, {"-f", kAllOn});
      if (file.empty())
        return "";
      auto applied = kubectl({"apply", "-f", file});
      EXPECT_EQ(applied.exitCode, 0) << applied.err;
      if (applied.exitCode == 0)
        path = file;
    }
    return path;
  }

  static TempDir* dir_;
};

TempDir* HelmChart::dir_ = nullptr;

TEST_F(HelmChart, ItsCrdsAreTheProjectsCrdsByteForByte) {
  std::set<std::string> project, chart;
  for (const auto& e : fs::directory_iterator(kSource + "/crds"))
    if (e.path().extension() == ".yaml")
      project.insert(e.path().filename());
  for (const auto& e : fs::directory_iterator(kChart + "/crds"))
    chart.insert(e.path().filename());
  ASSERT_GE(project.size(), 2u);
  EXPECT_EQ(project, chart) << "charts/bpfchain/crds/ must hold exactly crds/*.yaml";
  for (const auto& name : project) {
    std::string want = readFile(kSource + "/crds/" += name);
    ASSERT_FALSE(want.empty()) << name;
    EXPECT_TRUE(readFile(kChart + "/crds/" += name) == want)
        << "charts/bpfchain/crds/" << name << " differs from crds/" << name
        << ": cp crds/*.yaml charts/bpfchain/crds/ (crds/generate.py writes crds/)";
  }
}

TEST_F(HelmChart, LintStrictPassesWithTheDefaultsAndEveryCiValuesFile) {
  std::vector<std::vector<std::string>> variants = {{}};
  for (const auto& e : fs::directory_iterator(kChart + "/ci"))
    variants.push_back({"-f", e.path()});
  ASSERT_GE(variants.size(), 3u);
  for (const auto& flags : variants) {
    std::vector<std::string> argv{helm(), "lint", "--strict", kChart};
    argv.insert(argv.end(), flags.begin(), flags.end());
    auto out = run(argv);
    EXPECT_EQ(out.exitCode, 0) << describeCommand(argv) << "\n" << out.out << out.err;
    EXPECT_EQ(out.out.find("[WARNING]"), std::string::npos) << out.out;
    EXPECT_NE(out.out.find("0 chart(s) failed"), std::string::npos) << out.out;
  }
}

TEST_F(HelmChart, TheDefaultsRenderAndPassTheApiServersValidation) {
  std::string file = renderToFile("defaults", "bpfchain", "bpfchain-system", {});
  ASSERT_FALSE(file.empty());
  auto docs = documents(readFile(file));
  EXPECT_EQ(countKind(docs, "ServiceMonitor"), 0u) << "serviceMonitor.enabled defaults to false";
  EXPECT_EQ(countKind(docs, "Secret"), 0u) << "no trusted keys by default";
  EXPECT_EQ(countKind(docs, "Namespace"), 0u) << "the release namespace is not the chart's";
  auto dry = kubectl({"apply", "--dry-run=server", "-f", file});
  ASSERT_EQ(dry.exitCode, 0) << dry.err;
  for (const char* name :
       {"deployment.apps/bpfchain-operator", "daemonset.apps/bpfchain-agent",
        "clusterrole.rbac.authorization.k8s.io/bpfchain-operator",
        "clusterrole.rbac.authorization.k8s.io/bpfchain-agent",
        "validatingadmissionpolicy.admissionregistration.k8s.io/bpfchain-agent-own-node"})
    EXPECT_NE(dry.out.find(name), std::string::npos) << name << " in\n" << dry.out;
  // Standard labels on everything.
  for (const auto& doc : docs) {
    SCOPED_TRACE(doc["kind"].as<std::string>() + "/" + doc["metadata"]["name"].as<std::string>());
    const YAML::Node labels = doc["metadata"]["labels"];
    EXPECT_EQ(labels["helm.sh/chart"].as<std::string>(""), "bpfchain-0.1.0");
    EXPECT_EQ(labels["app.kubernetes.io/managed-by"].as<std::string>(""), "Helm");
    EXPECT_EQ(labels["app.kubernetes.io/instance"].as<std::string>(""), "bpfchain");
    EXPECT_EQ(labels["app.kubernetes.io/version"].as<std::string>(""), "0.1.0");
    EXPECT_EQ(labels["app.kubernetes.io/part-of"].as<std::string>(""), "bpfchain");
  }
}

TEST_F(HelmChart, EveryOptionRendersWhereItShouldAndPassesTheApiServersValidation) {
  std::string file = renderToFile("all-on-dry", "edge", kEdgeNs, {"-f", kAllOn});
  ASSERT_FALSE(file.empty());
  std::string text = readFile(file);
  EXPECT_EQ(text.find("bpfchain-system"), std::string::npos)
      << "everything namespaced goes to the release namespace";
  auto dry = kubectl({"apply", "--dry-run=server", "-f", file});
  ASSERT_EQ(dry.exitCode, 0) << dry.err;
  auto docs = documents(text);

  YAML::Node deploy = object(docs, "Deployment", "edge-bpfchain-operator");
  ASSERT_TRUE(deploy.IsDefined()) << text;
  EXPECT_EQ(deploy["spec"]["replicas"].as<int>(), 3);
  YAML::Node pod = deploy["spec"]["template"];
  EXPECT_EQ(pod["metadata"]["labels"]["example.com/team"].as<std::string>(""), "platform");
  EXPECT_EQ(pod["metadata"]["annotations"]["example.com/scrape"].as<std::string>(""), "true");
  EXPECT_EQ(pod["spec"]["serviceAccountName"].as<std::string>(), kEdgeOperatorSa);
  EXPECT_EQ(pod["spec"]["imagePullSecrets"][0]["name"].as<std::string>(), "registry-example");
  EXPECT_EQ(pod["spec"]["nodeSelector"]["kubernetes.io/os"].as<std::string>(), "linux");
  EXPECT_EQ(pod["spec"]["tolerations"].size(), 2u);
  EXPECT_TRUE(pod["spec"]["affinity"]["nodeAffinity"].IsDefined());
  EXPECT_FALSE(pod["spec"]["affinity"]["podAntiAffinity"].IsDefined());
  YAML::Node op = container(deploy, "operator");
  EXPECT_EQ(op["image"].as<std::string>(), "registry.example.com/mirror/bpfchain:0.1.0-rc1");
  EXPECT_EQ(op["imagePullPolicy"].as<std::string>(), "Always");
  EXPECT_EQ(op["resources"]["limits"]["memory"].as<std::string>(), "384Mi");
  EXPECT_EQ(op["ports"][0]["containerPort"].as<int>(), 19451);
  auto opArgs = commandLine(op);
  EXPECT_TRUE(has(opArgs, "--leader-elect")) << join(opArgs);
  EXPECT_TRUE(hasPair(opArgs, "--lease-namespace", kEdgeNs)) << join(opArgs);
  EXPECT_TRUE(hasPair(opArgs, "--revision-namespace", kEdgeNs)) << join(opArgs);
  EXPECT_TRUE(hasPair(opArgs, "--metrics-address", ":19451")) << join(opArgs);
  EXPECT_TRUE(hasPair(opArgs, "--cleanup-deadline", "600")) << join(opArgs);
  EXPECT_EQ(object(docs, "PodDisruptionBudget", "edge-bpfchain-operator")["spec"]["maxUnavailable"]
                .as<std::string>(""),
            "34%");

  YAML::Node ds = object(docs, "DaemonSet", "edge-bpfchain-agent");
  ASSERT_TRUE(ds.IsDefined()) << text;
  EXPECT_EQ(ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"].as<std::string>(),
            "10%");
  YAML::Node agentPod = ds["spec"]["template"]["spec"];
  EXPECT_EQ(agentPod["serviceAccountName"].as<std::string>(), kEdgeAgentSa);
  EXPECT_EQ(agentPod["nodeSelector"]["bpfchain.io/enabled"].as<std::string>(), "true");
  EXPECT_EQ(agentPod["tolerations"][0]["key"].as<std::string>(""), "dedicated");
  EXPECT_TRUE(agentPod["affinity"]["nodeAffinity"].IsDefined());
  EXPECT_FALSE(ds["spec"]["template"]["metadata"]["annotations"]["checksum/trusted-keys"]
                   .as<std::string>("")
                   .empty())
      << "new keys must roll the agents";
  YAML::Node agent = container(ds, "agent");
  auto agentArgs = commandLine(agent);
  EXPECT_TRUE(hasPair(agentArgs, "--trusted-key", "/etc/bpfchain/trusted-keys/release.pub"))
      << join(agentArgs);
  EXPECT_TRUE(hasPair(agentArgs, "--trusted-key", "/etc/bpfchain/trusted-keys/backup.pub"))
      << join(agentArgs);
  EXPECT_TRUE(has(agentArgs, "--require-signatures")) << join(agentArgs);
  EXPECT_TRUE(hasPair(agentArgs, "--metrics-address", ":19450")) << join(agentArgs);
  EXPECT_TRUE(hasPair(agentArgs, "--resync-seconds", "60")) << join(agentArgs);
  EXPECT_EQ(agent["ports"][0]["hostPort"].as<int>(), 19450);
  EXPECT_EQ(agent["resources"]["limits"]["memory"].as<std::string>(), "1Gi");
  bool keysMounted = false;
  for (const auto& m : agent["volumeMounts"])
    keysMounted = keysMounted || (m["name"].as<std::string>() == "trusted-keys" &&
                                  m["mountPath"].as<std::string>() == "/etc/bpfchain/trusted-keys");
  EXPECT_TRUE(keysMounted);
  std::map<std::string, YAML::Node> volumes;
  for (const auto& v : agentPod["volumes"])
    volumes.insert_or_assign(v["name"].as<std::string>(), YAML::Node(v));
  EXPECT_EQ(volumes["trusted-keys"]["secret"]["secretName"].as<std::string>(""),
            "edge-bpfchain-trusted-keys");
  EXPECT_EQ(volumes["cni-bin"]["hostPath"]["path"].as<std::string>(""), "/usr/libexec/cni");
  EXPECT_EQ(volumes["cni-conf"]["hostPath"]["path"].as<std::string>(""),
            "/etc/kubernetes/cni/net.d");
  // The agent keeps the CNI entry itself (no init container); removeOnUninstall is off here.
  EXPECT_FALSE(ds["spec"]["template"]["spec"]["initContainers"].IsDefined());
  EXPECT_TRUE(hasPair(agentArgs, "--cni-failure-policy", "ignore")) << join(agentArgs);
  EXPECT_TRUE(hasPair(agentArgs, "--cni-conf-dir", "/host/etc/cni/net.d")) << join(agentArgs);
  EXPECT_TRUE(hasPair(agentArgs, "--cni-bin-dir", "/host/opt/cni/bin")) << join(agentArgs);
  EXPECT_FALSE(has(agentArgs, "--cni-owner")) << join(agentArgs);
  std::map<std::string, std::string> mounts;
  for (const auto& m : agent["volumeMounts"])
    mounts[m["mountPath"].as<std::string>()] = m["name"].as<std::string>();
  EXPECT_EQ(mounts["/host/etc/cni/net.d"], "cni-conf");
  EXPECT_EQ(mounts["/host/opt/cni/bin"], "cni-bin");
  // The operator's and the agent's (chain revisions); the agent's -cni Role is not needed.
  EXPECT_EQ(countKind(docs, "Role"), 2u);

  YAML::Node secret = object(docs, "Secret", "edge-bpfchain-trusted-keys");
  ASSERT_TRUE(secret.IsDefined());
  for (const char* key : {"release.pub", "backup.pub"})
    EXPECT_EQ(secret["stringData"][key].as<std::string>("").rfind("-----BEGIN PUBLIC KEY-----", 0),
              0u)
        << key;

  YAML::Node sm = object(docs, "ServiceMonitor", "edge-bpfchain");
  ASSERT_TRUE(sm.IsDefined());
  EXPECT_EQ(sm["metadata"]["labels"]["release"].as<std::string>(""), "kube-prometheus-stack");
  EXPECT_EQ(sm["spec"]["namespaceSelector"]["matchNames"][0].as<std::string>(), kEdgeNs);
  EXPECT_EQ(sm["spec"]["endpoints"][0]["interval"].as<std::string>(), "30s");
  EXPECT_EQ(sm["spec"]["endpoints"][0]["scrapeTimeout"].as<std::string>(), "10s");

  YAML::Node policy = object(docs, "ValidatingAdmissionPolicy", "edge-bpfchain-agent-own-node");
  ASSERT_TRUE(policy.IsDefined());
  EXPECT_NE(policy["spec"]["matchConditions"][0]["expression"].as<std::string>().find(
                "'system:serviceaccount:" + kEdgeNs + ":" + kEdgeAgentSa + "'"),
            std::string::npos);
  for (const char* kind : {"ClusterRoleBinding", "RoleBinding"})
    for (const auto& doc : docs)
      if (doc["kind"].as<std::string>() == kind) {
        EXPECT_EQ(doc["subjects"][0]["namespace"].as<std::string>(), kEdgeNs);
      }
}

TEST_F(HelmChart, AnExistingTrustedKeysSecretAndNoCniInstallRenderAndPassValidation) {
  std::string file =
      renderToFile("existing-secret", "bpfchain", "ebpf-system", {"-f", kExistingSecret});
  ASSERT_FALSE(file.empty());
  auto dry = kubectl({"apply", "--dry-run=server", "-f", file});
  ASSERT_EQ(dry.exitCode, 0) << dry.err;
  auto docs = documents(readFile(file));
  EXPECT_EQ(countKind(docs, "Secret"), 0u);
  EXPECT_EQ(countKind(docs, "PodDisruptionBudget"), 0u);
  EXPECT_EQ(countKind(docs, "ValidatingAdmissionPolicy"), 0u);
  YAML::Node deploy = object(docs, "Deployment", "ebpf-operator");
  ASSERT_TRUE(deploy.IsDefined());
  auto opArgs = commandLine(container(deploy, "operator"));
  EXPECT_FALSE(has(opArgs, "--leader-elect")) << join(opArgs);
  EXPECT_EQ(container(deploy, "operator")["image"].as<std::string>(),
            "ghcr.io/bpfchain/bpfchain@sha256:"
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  YAML::Node ds = object(docs, "DaemonSet", "ebpf-agent");
  ASSERT_TRUE(ds.IsDefined());
  EXPECT_FALSE(ds["spec"]["template"]["spec"]["initContainers"].IsDefined());
  auto agentArgs = commandLine(container(ds, "agent"));
  EXPECT_FALSE(has(agentArgs, "--cni-conf-dir")) << join(agentArgs);
  EXPECT_TRUE(hasPair(agentArgs, "--trusted-key", "/etc/bpfchain/trusted-keys/team-a.pub"));
  EXPECT_TRUE(hasPair(agentArgs, "--trusted-key", "/etc/bpfchain/trusted-keys/team-b.pub"));
  EXPECT_TRUE(has(agentArgs, "--require-signatures"));
  std::set<std::string> volumes;
  for (const auto& v : ds["spec"]["template"]["spec"]["volumes"]) {
    volumes.insert(v["name"].as<std::string>());
    if (v["name"].as<std::string>() == "trusted-keys") {
      EXPECT_EQ(v["secret"]["secretName"].as<std::string>(), "package-signers");
      EXPECT_EQ(v["secret"]["items"].size(), 2u);
    }
  }
  EXPECT_EQ(volumes, (std::set<std::string>{"bpffs", "state", "run", "trusted-keys"}));
}

TEST_F(HelmChart, BadValuesAreRefusedWithAMessageNamingTheValue) {
  struct Case {
    std::string values;   // a values file
    std::string expected; // in helm's error
  };
  const std::vector<Case> cases = {
      // values.schema.json
      {"operator:\n  replicas: \"two\"\n", "/operator/replicas"},
      {"operator:\n  replica: 3\n", "'replica'"},
      {"cni:\n  failurePolicy: sometimes\n", "/cni/failurePolicy"},
      {"agent:\n  metrics:\n    port: 70000\n", "/agent/metrics/port"},
      {"agent:\n  trustedKeys:\n    keys:\n      k.pub: /etc/keys/k.pub\n",
       "/agent/trustedKeys/keys/k.pub"},
      {"image:\n  pullPolicy: Sometimes\n", "/image/pullPolicy"},
      {"serviceMonitor:\n  enabled: \"yes\"\n", "/serviceMonitor/enabled"},
      // the chart's own checks (templates/_helpers.tpl, bpfchain.validate)
      {"operator:\n  replicas: 2\n  leaderElect: false\n", "operator.leaderElect"},
      {"agent:\n  requireSignatures: true\n", "agent.requireSignatures needs agent.trustedKeys"},
      {"agent:\n  trustedKeys:\n    existingSecret: signers\n", "existingSecretKeys"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].values);
    std::string file = dir_->path() + "/bad-" + std::to_string(i) + ".yaml";
    std::ofstream(file) << cases[i].values;
    auto out = helmTemplate("bpfchain", "bpfchain-system", {"-f", file});
    EXPECT_NE(out.exitCode, 0) << out.out;
    EXPECT_NE(out.err.find(cases[i].expected), std::string::npos) << out.err;
  }
  // lint, too, fails on a bad value.
  std::string file = dir_->path() + "/bad-0.yaml";
  auto lint = run({helm(), "lint", "--strict", kChart, "-f", file});
  EXPECT_NE(lint.exitCode, 0) << lint.out;
  EXPECT_NE((lint.out + lint.err).find("/operator/replicas"), std::string::npos)
      << lint.out << lint.err;
}

TEST_F(HelmChart, WithItsDefaultsTheChartDeploysWhatManifestsDeploy) {
  // The API server's view of both (defaults filled in), so that only real differences count.
  std::map<std::string, YAML::Node> manifests;
  for (const std::string& path : {kManifests, kManifests + "/monitoring/servicemonitor.yaml"}) {
    auto dry = kubectl({"apply", "--dry-run=server", "-o", "yaml", "-f", path});
    ASSERT_EQ(dry.exitCode, 0) << dry.err;
    manifests.merge(serverObjects(dry.out));
  }
  manifests.erase("Namespace /bpfchain-system");
  std::string file = renderToFile("compare", "bpfchain", "bpfchain-system",
                                  {"--set", "serviceMonitor.enabled=true"});
  ASSERT_FALSE(file.empty());
  auto dry = kubectl({"apply", "--dry-run=server", "-o", "yaml", "-f", file});
  ASSERT_EQ(dry.exitCode, 0) << dry.err;
  auto chart = serverObjects(dry.out);

  std::set<std::string> wantNames, gotNames;
  for (const auto& [name, _] : manifests)
    wantNames.insert(name);
  for (const auto& [name, _] : chart)
    gotNames.insert(name);
  EXPECT_EQ(wantNames, gotNames);
  // ServiceAccount, ClusterRole and -Binding for both, Role and -Binding for both, the agent's
  // second Role and -Binding (to read its DaemonSet), the policy and its binding, Deployment,
  // PodDisruptionBudget, DaemonSet, two Services, ServiceMonitor.
  ASSERT_EQ(wantNames.size(), 20u);
  for (const auto& [name, want] : manifests) {
    SCOPED_TRACE(name);
    if (!chart.count(name))
      continue;
    std::vector<std::string> diffs;
    compareNodes(want, chart[name], "", want["kind"].as<std::string>() == "Service", diffs);
    std::string all;
    for (const auto& d : diffs)
      all += d + "\n";
    EXPECT_TRUE(diffs.empty()) << all;
  }
  // What the chart says outright that manifests/ leaves to the binaries' defaults.
  auto docs = documents(readFile(file));
  auto opArgs = commandLine(container(object(docs, "Deployment", "bpfchain-operator"), "operator"));
  EXPECT_TRUE(hasPair(opArgs, "--revision-namespace", "bpfchain-system")) << join(opArgs);
  auto agentArgs = commandLine(container(object(docs, "DaemonSet", "bpfchain-agent"), "agent"));
  EXPECT_TRUE(hasPair(agentArgs, "--cni-failure-policy", "fail")) << join(agentArgs);
}

TEST_F(HelmChart, InAnotherNamespaceItsRbacGrantsWhatTheBinariesNeedAndNoMore) {
  ASSERT_FALSE(applyAllOn().empty());
  const std::string op = "system:serviceaccount:" + kEdgeNs + ":" + kEdgeOperatorSa;
  const std::string agent = "system:serviceaccount:" + kEdgeNs + ":" + kEdgeAgentSa;
  struct Check {
    std::string user;
    std::vector<std::string> args;
    bool allowed;
  };
  const std::vector<Check> checks = {
      {op, {"watch", "bpfchains.bpfchain.io"}, true},
      {op, {"patch", "bpfchains.bpfchain.io", "--subresource=status"}, true},
      {op, {"update", "bpfchains.bpfchain.io", "--subresource=finalizers"}, true},
      {op, {"create", "bpfnodeconfigs.bpfchain.io"}, true},
      {op, {"watch", "nodes"}, true},
      {op, {"create", "events", "-n", "default"}, true},
      {op, {"update", "leases.coordination.k8s.io", "-n", kEdgeNs}, true},
      {op, {"create", "controllerrevisions.apps", "-n", kEdgeNs}, true},
      {op, {"update", "leases.coordination.k8s.io", "-n", "bpfchain-system"}, false},
      {op, {"get", "secrets", "-n", kEdgeNs}, false},
      {op, {"patch", "nodes"}, false},
      {op, {"patch", "bpfnodeconfigs.bpfchain.io", "--subresource=status"}, false},
      {agent, {"watch", "bpfnodeconfigs.bpfchain.io"}, true},
      {agent, {"patch", "bpfnodeconfigs.bpfchain.io", "--subresource=status"}, true},
      {agent, {"list", "pods", "--all-namespaces"}, true},
      {agent, {"patch", "bpfnodeconfigs.bpfchain.io"}, false},
      // The rollouts its node's membership entries follow: read-only.
      {agent, {"watch", "bpfchains.bpfchain.io"}, true},
      {agent, {"patch", "bpfchains.bpfchain.io", "--subresource=status"}, false},
      {agent, {"update", "bpfchains.bpfchain.io"}, false},
      {agent, {"get", "secrets", "-n", kEdgeNs}, false},
      // The chain revisions its node refers to, in the release namespace only, read-only.
      {agent, {"watch", "controllerrevisions.apps", "-n", kEdgeNs}, true},
      {agent, {"get", "controllerrevisions.apps", "-n", kEdgeNs}, true},
      {agent, {"create", "controllerrevisions.apps", "-n", kEdgeNs}, false},
      {agent, {"get", "controllerrevisions.apps", "-n", "default"}, false},
  };
  for (const auto& check : checks) {
    std::vector<std::string> args{"auth", "can-i", "--as", check.user};
    args.insert(args.end(), check.args.begin(), check.args.end());
    auto can = kubectl(args);
    EXPECT_EQ(can.exitCode == 0, check.allowed)
        << check.user << " " << join(check.args) << ": " << can.out << can.err;
  }

  // The agent's ValidatingAdmissionPolicy, for this release's agent ServiceAccount.
  for (const char* node : {"helm-n1", "helm-n2"}) {
    std::string f = dir_->path() + "/" + node + ".yaml";
    std::ofstream(f) << "apiVersion: bpfchain.io/v1alpha1\nkind: BpfNodeConfig\nmetadata: {name: "
                     << node << "}\nspec: {chains: []}\n";
    auto applied = kubectl({"apply", "-f", f});
    ASSERT_EQ(applied.exitCode, 0) << applied.err;
  }
  std::string asN1 = impersonating(agent, kEdgeNs, "helm-n1", *dir_);
  const std::string patch = R"({"status":{"chainCount":0}})";
  auto own = kubectl(
      {"patch", "bpfnodeconfig", "helm-n1", "--subresource=status", "--type=merge", "-p", patch},
      asN1);
  EXPECT_EQ(own.exitCode, 0) << own.err;
  bool refused = eventually(
      [&] {
        auto other = kubectl({"patch", "bpfnodeconfig", "helm-n2", "--subresource=status",
                              "--type=merge", "-p", patch},
                             asN1);
        return other.exitCode != 0 &&
               other.err.find("may only write the status of its own node") != std::string::npos;
      },
      20000); // a new policy takes effect within a second or so
  EXPECT_TRUE(refused);
}

// The real operator, with the chart's command line and as the chart's ServiceAccount (its
// token, minted by the API server), in the release namespace: it leads (its Lease there), is
// ready (every informer synced under the chart's RBAC) and rolls a chain out to a node (a
// BpfNodeConfig, and a ControllerRevision in the release namespace).
TEST_F(HelmChart, TheOperatorRunsWithTheChartsCommandLineAsItsServiceAccount) {
  std::string file = applyAllOn();
  ASSERT_FALSE(file.empty());
  auto docs = documents(readFile(file));
  auto argv =
      commandLine(container(object(docs, "Deployment", "edge-bpfchain-operator"), "operator"));
  ASSERT_EQ(argv[0], "bpfchain-operator");
  argv[0] = kBin + "/bpfchain-operator";

  auto token = kubectl({"create", "token", kEdgeOperatorSa, "-n", kEdgeNs, "--duration", "1h"});
  ASSERT_EQ(token.exitCode, 0) << token.err;
  YAML::Node config = YAML::LoadFile(plane().kubeconfig());
  for (auto u : config["users"]) {
    YAML::Node user;
    user["token"] = trimmed(token.out);
    u["user"] = user;
  }
  std::string kubeconfig = dir_->path() + "/kubeconfig-operator-sa";
  std::ofstream(kubeconfig) << YAML::Dump(config);
  // Later flags win: the test's API server, and a free port for metrics.
  for (const std::string& extra : {std::string("--kubeconfig"), kubeconfig,
                                   std::string("--metrics-address"), std::string("127.0.0.1:0")})
    argv.push_back(extra);

  std::string log = dir_->path() + "/operator.log";
  auto process = ChildProcess::spawn(argv, log);
  ASSERT_TRUE(process.ok()) << process.error().message();
  uint16_t port = 0;
  ASSERT_TRUE(eventually([&] {
    const std::string prefix = "serving metrics address=127.0.0.1:";
    std::string text = readFile(log);
    auto at = text.rfind(prefix);
    if (at != std::string::npos)
      port = static_cast<uint16_t>(std::stoi(text.substr(at + prefix.size())));
    return port != 0;
  })) << describeCommand(argv)
      << "\n"
      << readFile(log);
  EXPECT_TRUE(eventually([&] {
    auto ready = httpGet("127.0.0.1", port, "/readyz");
    return ready.ok() && ready->status == 200;
  })) << readFile(log);
  EXPECT_TRUE(eventually([&] {
    auto holder = kubectl({"get", "lease", "bpfchain-operator", "-n", kEdgeNs, "-o",
                           "jsonpath={.spec.holderIdentity}"});
    return holder.exitCode == 0 && !holder.out.empty();
  })) << readFile(log);

  std::string objects = dir_->path() + "/rollout.yaml";
  std::ofstream(objects) << R"(apiVersion: v1
kind: Node
metadata: {name: helm-op-1, labels: {role: helm}}
---
apiVersion: bpfchain.io/v1alpha1
kind: BpfChain
metadata: {name: helm-chain}
spec:
  hook: xdp
  nodeSelector: {matchLabels: {role: helm}}
  interfaces: {names: [eth0]}
  programs:
  - name: pass
    package: {url: "https://packages.example/pass.tar.gz", sha256: "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"}
)";
  auto applied = kubectl({"apply", "-f", objects});
  ASSERT_EQ(applied.exitCode, 0) << applied.err;
  EXPECT_TRUE(eventually([&] {
    auto chains =
        kubectl({"get", "bpfnodeconfig", "helm-op-1", "-o", "jsonpath={.spec.chains[*].name}"});
    return chains.exitCode == 0 && chains.out.find("helm-chain") != std::string::npos;
  })) << readFile(log);
  EXPECT_TRUE(eventually([&] {
    auto revisions = kubectl({"get", "controllerrevisions", "-n", kEdgeNs, "-o", "name"});
    return revisions.exitCode == 0 && revisions.out.find("helm-chain") != std::string::npos;
  })) << readFile(log);
  EXPECT_EQ(readFile(log).find("forbidden"), std::string::npos) << readFile(log);
  EXPECT_EQ(process->stop(), 0) << readFile(log);
}

// What a user runs: helm install (the CRDs are there already, so Helm skips its crds/), with
// NOTES that warn when the namespace's Pod Security would refuse the privileged agent; helm
// upgrade with a changed value; helm uninstall, which leaves the CRDs (and so the chains).
TEST_F(HelmChart, InstallUpgradeAndUninstallWithHelm) {
  const std::string ns = "bpfchain-install";
  ASSERT_EQ(kubectl({"create", "namespace", ns}).exitCode, 0);
  ASSERT_EQ(
      kubectl({"label", "namespace", ns, "pod-security.kubernetes.io/enforce=baseline"}).exitCode,
      0);
  auto helmRun = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{helm(), "--kubeconfig", plane().kubeconfig(), "-n", ns};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  };
  auto replicas = [&] {
    return kubectl({"get", "deployment", "tryout-bpfchain-operator", "-n", ns, "-o",
                    "jsonpath={.spec.replicas}"})
        .out;
  };
  const std::string warning = "WARNING: namespace " + ns + " enforces Pod Security \"baseline\"";

  auto installed = helmRun({"install", "tryout", kChart});
  ASSERT_EQ(installed.exitCode, 0) << installed.out << installed.err;
  EXPECT_NE(installed.out.find("NOTES:"), std::string::npos) << installed.out;
  EXPECT_NE(installed.out.find(warning), std::string::npos) << installed.out;
  EXPECT_EQ(replicas(), "2");
  EXPECT_EQ(kubectl({"get", "daemonset", "tryout-bpfchain-agent", "-n", ns}).exitCode, 0);

  ASSERT_EQ(kubectl({"label", "namespace", ns, "pod-security.kubernetes.io/enforce=privileged",
                     "--overwrite"})
                .exitCode,
            0);
  auto upgraded = helmRun({"upgrade", "tryout", kChart, "--set", "operator.replicas=3"});
  ASSERT_EQ(upgraded.exitCode, 0) << upgraded.out << upgraded.err;
  EXPECT_EQ(upgraded.out.find("WARNING"), std::string::npos) << upgraded.out;
  EXPECT_EQ(replicas(), "3");

  auto uninstalled = helmRun({"uninstall", "tryout"});
  ASSERT_EQ(uninstalled.exitCode, 0) << uninstalled.out << uninstalled.err;
  EXPECT_NE(kubectl({"get", "deployment", "tryout-bpfchain-operator", "-n", ns}).exitCode, 0);
  EXPECT_NE(kubectl({"get", "clusterrole", "tryout-bpfchain-operator"}).exitCode, 0);
  EXPECT_EQ(kubectl({"get", "crd", "bpfchains.bpfchain.io"}).exitCode, 0)
      << "Helm never deletes a chart's CRDs";
}

// bpfchain-agent parses the chart's command line (defaults, and every option on): it gets as
// far as loading the trusted keys, which exist only in the pod (exit 1 naming the key, where a
// bad flag exits 2 with the usage). Nothing of the host is touched: --state-dir is redirected.
TEST_F(HelmChart, TheAgentAcceptsTheChartsCommandLine) {
  for (const auto& [name, flags] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"agent-defaults", {}}, {"agent-all-on", {"-f", kAllOn}}}) {
    SCOPED_TRACE(name);
    std::string file = renderToFile(name, "edge", kEdgeNs, flags);
    ASSERT_FALSE(file.empty());
    auto docs = documents(readFile(file));
    auto argv = commandLine(container(object(docs, "DaemonSet", "edge-bpfchain-agent"), "agent"));
    ASSERT_EQ(argv[0], "bpfchain-agent");
    argv[0] = kBin + "/bpfchain-agent";
    for (auto& arg : argv)
      if (arg == "$(NODE_NAME)")
        arg = "helm-n1";
    std::string state = dir_->path() + "/" + name + "-state";
    for (const std::string& extra :
         {std::string("--state-dir"), state, std::string("--trusted-key"), state + "/absent.pub"})
      argv.push_back(extra);
    auto out = run(argv);
    EXPECT_EQ(out.exitCode, 1) << describeCommand(argv) << "\n" << out.err;
    EXPECT_NE(out.err.find("trusted key"), std::string::npos) << out.err;
    EXPECT_EQ(out.err.find("unknown option"), std::string::npos) << out.err;
  }
}

} // namespace
} // namespace bpfchain::testing
