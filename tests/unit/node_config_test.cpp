// The agent's config parser: a BpfNodeConfig spec, strictly, with errors that name the field.
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

#include "btf/arg_value.h"
#include "node-agent/agent_metrics.h"
#include "node-agent/apply_failure.h"
#include "node-agent/node_config.h"
#include "node-agent/program_resolver.h"
#include "node-agent/standalone_source.h"

using namespace bpfchain;
using namespace bpfchain::agent;

namespace {

const char* kValid = R"(
chains:
- name: edge-protect
  generation: 3
  hook: xdp
  priority: 50
  placement: last
  interfaces: {names: [eth0, "/^ens[0-9]+$/"]}
  programs:
  - name: ratelimit
    package: {url: "https://packages.example/rl.tar.gz", sha256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
    entry: xdp_ratelimit
    nextMap: rl_next
    globalData: {rate_limit: "1000"}
    freshMaps: [rl_windows]
    mapArgs:
    - map: rl_ports
      mode: merge
      entries: [{key: "8080", value: "1"}]
    monitorMaps:
    - {map: rl_drops, key: "0", aggregator: max-rate}
  - name: counter
    enabled: false
    freshState: true
    package: {url: "file:///pkgs/counter.tar.gz", sha256: "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"}
- name: pods-chain
  hook: tc-ingress
  pods: {podSelector: {matchLabels: {app: web}}}
  programs:
  - name: counter
    package: {url: "file:///pkgs/counter.tar.gz", sha256: "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"}
)";

Result<NodeSpec> parse(const std::string& text) {
  return parseNodeSpec(YAML::Load(text), "test.yaml");
}

// The error of a document that does not parse, or of its one chain that does not.
std::string errorOf(const std::string& text) {
  auto r = parse(text);
  if (!r.ok())
    return r.error().message();
  EXPECT_EQ(r->invalid.size(), 1u) << text;
  return r->invalid.empty() ? "" : r->invalid[0].message;
}

TEST(NodeConfig, ParsesEveryField) {
  auto spec = parse(kValid);
  ASSERT_TRUE(spec.ok()) << spec.error().message();
  ASSERT_EQ(spec->chains.size(), 2u);
  const ChainDecl& c = spec->chains[0];
  EXPECT_EQ(c.name, "edge-protect");
  EXPECT_EQ(c.generation, 3);
  EXPECT_EQ(c.hook, dataplane::Hook::Xdp);
  EXPECT_EQ(c.priority, 50);
  EXPECT_TRUE(c.placeLast);
  ASSERT_FALSE(c.forPods());
  EXPECT_TRUE(c.interfaces->matches("eth0"));
  EXPECT_TRUE(c.interfaces->matches("ens33"));
  EXPECT_FALSE(c.interfaces->matches("ens"));
  EXPECT_FALSE(c.interfaces->matches("eth01"));
  ASSERT_EQ(c.programs.size(), 2u);
  EXPECT_EQ(c.programs[0].entry, "xdp_ratelimit");
  EXPECT_EQ(c.programs[0].globalData.at("rate_limit"), "1000");
  ASSERT_EQ(c.programs[0].mapArgs.size(), 1u);
  EXPECT_EQ(c.programs[0].mapArgs[0].mode, btf::MapArgMode::Merge);
  EXPECT_EQ(c.programs[0].mapArgs[0].entries[0].key.scalar, "8080");
  ASSERT_EQ(c.programs[0].monitorMaps.size(), 1u);
  EXPECT_EQ(c.programs[0].monitorMaps[0].aggregator, Aggregator::MaxRate);
  EXPECT_FALSE(c.programs[1].enabled);
  EXPECT_FALSE(c.programs[0].freshState);
  EXPECT_EQ(c.programs[0].freshMaps, std::vector<std::string>{"rl_windows"});
  EXPECT_TRUE(c.programs[1].freshState);
  EXPECT_TRUE(c.programs[1].freshMaps.empty());
  EXPECT_TRUE(spec->chains[1].forPods());
  EXPECT_EQ(spec->chains[1].generation, 1); // standalone files may omit it
  EXPECT_EQ(spec->chains[1].priority, 100);
  EXPECT_FALSE(spec->chains[1].placeLast); // first unless asked
}

TEST(NodeConfig, AcceptsAWholeBpfNodeConfigAndAnEmptySpec) {
  auto whole = parse(std::string("apiVersion: bpfchain.io/v1alpha1\nkind: BpfNodeConfig\n"
                                 "metadata: {name: n1}\nspec:\n") +
                     "  chains: []\n");
  ASSERT_TRUE(whole.ok()) << whole.error().message();
  EXPECT_TRUE(whole->chains.empty());
  auto empty = parse("{}");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->chains.empty());
}

TEST(NodeConfig, ErrorsNameTheField) {
  std::string base = kValid;
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string s = base;
    size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  struct Case {
    std::string from, to, expected;
  };
  std::vector<Case> cases = {
      {"hook: xdp", "hook: xpd", "test.yaml: chains[0].hook: \"xpd\" is not one of"},
      {"priority: 50", "priority: 20000", "chains[0].priority: 20000 is out of range"},
      {"priority: 50", "priority: high", "chains[0].priority: \"high\" is not an integer"},
      {"placement: last", "placement: middle",
       "chains[0].placement: \"middle\" is not one of first, last"},
      {"sha256: \"0123", "sha256: \"X123", "chains[0].programs[0].package.sha256: not 64"},
      {"url: \"https://", "url: \"ftp://", "chains[0].programs[0].package.url: \"ftp://"},
      {"entry: xdp_ratelimit", "entry: 9bad", "chains[0].programs[0].entry: \"9bad\" is not a C"},
      {"mode: merge", "mode: append", "chains[0].programs[0].mapArgs[0].mode: \"append\""},
      {"aggregator: max-rate", "aggregator: median",
       "chains[0].programs[0].monitorMaps[0].aggregator: \"median\""},
      {"- name: counter\n    enabled", "- name: ratelimit\n    enabled",
       "chains[0].programs[1].name: \"ratelimit\" is used twice"},
      {"  priority: 50\n", "  priority: 50\n  pods: {}\n",
       "chains[0]: exactly one of interfaces and pods"},
      {"\"/^ens[0-9]+$/\"", "\"/^ens[0-9+$/\"", "chains[0].interfaces.names[1]: invalid regular"},
      {"    entry: xdp_ratelimit", "    entyr: xdp_ratelimit",
       "chains[0].programs[0].entyr: unknown field"},
      {"name: pods-chain", "name: edge-protect", "chains[1].name: \"edge-protect\" is used twice"},
      {"enabled: false", "enabled: maybe", "chains[0].programs[1].enabled: not true or false"},
      {"freshState: true", "freshState: 2", "chains[0].programs[1].freshState: not true or false"},
      {"freshMaps: [rl_windows]", "freshMaps: rl_windows",
       "chains[0].programs[0].freshMaps: not a list"},
      {"freshMaps: [rl_windows]", "freshMaps: [a, a]",
       "chains[0].programs[0].freshMaps[1]: \"a\" is listed twice"},
      {"freshMaps: [rl_windows]", "freshMaps: [\"\"]",
       "chains[0].programs[0].freshMaps[0]: must be 1 to 128 characters"},
  };
  for (const auto& c : cases) {
    std::string message = errorOf(replaced(c.from, c.to));
    EXPECT_NE(message.find(c.expected), std::string::npos)
        << "for " << c.to << ": got \"" << message << "\", want \"" << c.expected << "\"";
  }
}

TEST(NodeConfig, AChainThatDoesNotParseFailsAloneWithItsNameAndGeneration) {
  std::string text = kValid;
  text.replace(text.find("\"/^ens[0-9]+$/\""), 15, "\"/[/\"");
  text += "- name: from-a-newer-crd\n  generation: 4\n  hook: xdp\n  tracing: true\n"
          "  interfaces: {names: [eth1]}\n  programs: []\n"
          "- {name: [not, a, name], hook: xdp}\n";
  auto spec = parse(text);
  ASSERT_TRUE(spec.ok()) << spec.error().message();
  ASSERT_EQ(spec->chains.size(), 1u);
  EXPECT_EQ(spec->chains[0].name, "pods-chain");
  ASSERT_EQ(spec->invalid.size(), 3u);
  EXPECT_EQ(spec->invalid[0].name, "edge-protect");
  EXPECT_EQ(spec->invalid[0].generation, 3);
  EXPECT_NE(spec->invalid[0].message.find(
                "test.yaml: chains[0].interfaces.names[1]: invalid regular expression /[/"),
            std::string::npos)
      << spec->invalid[0].message;
  EXPECT_EQ(spec->invalid[1].name, "from-a-newer-crd");
  EXPECT_EQ(spec->invalid[1].generation, 4);
  EXPECT_NE(spec->invalid[1].message.find("chains[2].tracing: unknown field"), std::string::npos)
      << spec->invalid[1].message;
  EXPECT_EQ(spec->invalid[2].name, "chains[3]");
  EXPECT_NE(spec->invalid[2].message.find("chains[3].name: not a string"), std::string::npos)
      << spec->invalid[2].message;
}

// Standalone chain names follow the API server's rule for object names (DNS subdomain): they
// reach the status file, pins and metrics labels.
TEST(NodeConfig, ChainNamesAreDnsSubdomainsInValidUtf8) {
  auto chain = [](const std::string& name) {
    return "chains:\n- name: \"" + name +
           "\"\n  hook: xdp\n  interfaces: {names: [eth0]}\n  programs:\n  - name: p\n"
           "    package: {url: \"file:///p.tar.gz\", sha256: \"" +
           std::string(64, 'a') + "\"}\n";
  };
  for (const std::string& good :
       std::vector<std::string>{"edge", "edge-protect.v2", "a", std::string(253, 'x')}) {
    auto spec = parse(chain(good));
    ASSERT_TRUE(spec.ok()) << spec.error().message();
    EXPECT_EQ(spec->chains.size(), 1u) << good;
  }
  struct Case {
    std::string name, error;
  };
  for (const auto& c : std::vector<Case>{
           {"Edge", "\"Edge\" is not a DNS subdomain"},
           {"edge_protect", "is not a DNS subdomain"},
           {"-edge", "is not a DNS subdomain"},
           {"edge.", "is not a DNS subdomain"},
           {std::string(254, 'x'), "must be 1 to 253 characters"},
           {"edge\xff\xfe", "chains[0].name: not valid UTF-8"},
       }) {
    auto spec = parse(chain(c.name));
    ASSERT_TRUE(spec.ok()) << spec.error().message();
    ASSERT_EQ(spec->invalid.size(), 1u) << c.name;
    EXPECT_NE(spec->invalid[0].message.find(c.error), std::string::npos)
        << spec->invalid[0].message;
    EXPECT_EQ(spec->invalid[0].name, "chains[0]") << "a bad name is not a status key";
  }
}

TEST(NodeConfig, AFileThatDoesNotParseNamesTheFileAndLine) {
  auto r = loadNodeSpecFile("/nonexistent/bpfchain.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("/nonexistent/bpfchain.yaml"), std::string::npos);
}

// A truncated or half-written file must not remove every chain: only `chains: []` does.
TEST(NodeConfig, AnEmptyFileIsAnErrorAndOnlyAnEmptyListRemovesEveryChain) {
  std::string path = ::testing::TempDir() + "/bpfchain-empty-config.yaml";
  for (const char* text : {"", "# nothing yet\n", "chains:\n", "chains: ~\n",
                           "kind: BpfNodeConfig\nspec:\n", "kind: BpfNodeConfig\nspec: {}\n"}) {
    std::ofstream(path, std::ios::trunc) << text;
    auto r = loadNodeSpecFile(path);
    ASSERT_FALSE(r.ok()) << "\"" << text << "\" was taken for a spec";
    EXPECT_NE(r.error().message().find(path), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find("chains: []"), std::string::npos) << r.error().message();
  }
  for (const char* text : {"chains: []\n", "# remove everything\nchains: []\n",
                           "kind: BpfNodeConfig\nspec: {chains: []}\n"}) {
    std::ofstream(path, std::ios::trunc) << text;
    auto r = loadNodeSpecFile(path);
    ASSERT_TRUE(r.ok()) << text << ": " << r.error().message();
    EXPECT_TRUE(r->chains.empty());
  }
  std::remove(path.c_str());
}

// After a failure the previous generation keeps running: the status says both.
// A huge file is refused before it is parsed (its tree would take ~100 times its size).
TEST(NodeConfig, AFileOverTheSizeLimitIsRefusedUnparsed) {
  std::string path = ::testing::TempDir() + "/bpfchain-huge-config.yaml";
  {
    std::ofstream out(path, std::ios::trunc);
    out << "chains: []\n";
    out << std::string(kMaxConfigFileBytes, '#') << "\n"; // a comment: valid YAML
  }
  auto r = loadNodeSpecFile(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find(path + ": " + std::to_string(kMaxConfigFileBytes + 12) +
                                     " bytes, over the limit of " +
                                     std::to_string(kMaxConfigFileBytes)),
            std::string::npos)
      << r.error().message();
  std::filesystem::resize_file(path, kMaxConfigFileBytes);
  EXPECT_TRUE(loadNodeSpecFile(path).ok()) << "a file at the limit is read";
  std::remove(path.c_str());
}

TEST(NodeStatus, SaysTheTargetAndWhatRuns) {
  NodeStatus status;
  status.chains.push_back(ChainStatus{"edge", 2, 1, "Failed", "VerifierRejected", "eth0: ...", {}});
  status.chains.push_back(ChainStatus{"new", 1, 0, "Failed", "SpecInvalid", "x", {}});
  YAML::Node doc = YAML::Load(statusYaml(status, ""));
  EXPECT_EQ(doc["chains"][0]["generation"].as<int64_t>(), 2);
  EXPECT_EQ(doc["chains"][0]["runningGeneration"].as<int64_t>(), 1);
  EXPECT_FALSE(doc["chains"][1]["runningGeneration"].IsDefined()) << "nothing of it runs";
}

// A counter that goes down (a program upgrade starts a new map) is a reset, not an increase of
// 2^64 - delta.
TEST(AgentMetrics, MaxRateTreatsADecreaseAsAReset) {
  EXPECT_EQ(maxRate({}), 0);
  EXPECT_EQ(maxRate({5}), 0);
  EXPECT_EQ(maxRate({10, 15, 40, 41}), 25);
  EXPECT_EQ(maxRate({1000, 1010, 3, 9}), 10);       // reset to 0, then 3: increases 10, 3, 6
  EXPECT_EQ(maxRate({1000, 1010, 0, 0, 100}), 100); // reset to 0
}

// Program ids name pin directories: whatever the (legal) chain name, the escaped id and the
// data plane's "@<16 hex>@<serial>" fit one path component (255 bytes).
TEST(ProgramIds, FitAPinNameWhateverTheChainsName) {
  auto escaped = [](const std::string& id) {
    size_t n = 0;
    for (unsigned char c : id)
      n += std::isalnum(c) || c == '-' || c == '_' ? 1 : 3;
    return n;
  };
  EXPECT_EQ(programId("edge-protect", "ratelimit"), "edge-protect/ratelimit");
  std::string program(63, 'p');
  std::vector<std::string> names = {std::string(253, 'a'), std::string(161, 'b')};
  std::string dotted;
  while (dotted.size() < 251)
    dotted += "a.";
  names.push_back(dotted + "a");
  for (const auto& name : names) {
    std::string id = programId(name, program);
    EXPECT_LE(escaped(id) + std::string("@0123456789abcdef@4294967295").size(), 255u) << id;
    EXPECT_EQ(id.rfind(chainKey(name) + "/", 0), 0u);
    EXPECT_NE(chainKey(name), chainKey(name + "x")) << "keys of different names differ";
  }
  EXPECT_NE(chainKey(std::string(253, 'a')).find('~'), std::string::npos);
}

TEST(ApplyFailure, ReasonsFromTheDataPlanesKinds) {
  struct Case {
    ErrorKind kind;
    std::string message, reason;
  };
  // The messages and kinds as common/dataplane makes them (chain.cpp, program_instance.cpp).
  std::vector<Case> cases = {
      {ErrorKind::VerifierRejected,
       "programs[0] (c/p): load xdp_bad from /x.o: Permission denied; verifier: R1 invalid mem "
       "access 'scalar'",
       "VerifierRejected"},
      {ErrorKind::MapArgInvalid,
       "programs[1] (c/q).mapArgs[0].entries[2].key: \"80x\" is not a valid __u16",
       "MapArgInvalid"},
      {ErrorKind::GlobalDataInvalid, "programs[0] (c/p): globalData.rate: no such variable",
       "GlobalDataInvalid"},
      {ErrorKind::ProgramInvalid, "programs[0] (c/p): entry \"nope\": no such program in /x.o",
       "ProgramInvalid"},
      {ErrorKind::ProgramInvalid,
       "programs[1] (c/tc): entry \"tc_l3af\" in /x.o: its first argument is struct __sk_buff *: "
       "a tc program, not a program for the xdp hook",
       "ProgramInvalid"},
      {ErrorKind::ProgramInvalid, "programs[0] (c/p): nextMap \"n\": no such map in /x.o",
       "ProgramInvalid"},
      {ErrorKind::ProgramInvalid,
       "programs[0] (c/p): open /x.o: not a loadable BPF object (Invalid argument)",
       "ProgramInvalid"},
      {ErrorKind::Unclassified, "link /sys/fs/bpf/x to the next program: Bad file descriptor",
       "LoadFailed"},
  };
  for (const auto& c : cases) {
    ApplyFailure f = classifyApplyFailure(Error(c.kind, EINVAL, c.message), "eth0");
    EXPECT_EQ(f.reason, c.reason) << c.message;
    EXPECT_EQ(f.message, "eth0: " + c.message);
  }
}

// A message cannot change a reason: the text of one kind's error under another kind (and
// under none) gives the kind's reason, and context() keeps the kind.
TEST(ApplyFailure, MessageTextCannotChangeTheReason) {
  const std::string misleading =
      "programs[0] (c/p).mapArgs[0]: globalData entry \"x\" nextMap \"n\" not a loadable BPF "
      "object; verifier: R1";
  EXPECT_EQ(classifyApplyFailure(Error(EINVAL, misleading), "").reason, "LoadFailed");
  EXPECT_EQ(classifyApplyFailure(Error(ErrorKind::GlobalDataInvalid, 0, misleading), "").reason,
            "GlobalDataInvalid");
  EXPECT_EQ(classifyApplyFailure(Error(ErrorKind::ProgramInvalid, 0, "; verifier: "), "").reason,
            "ProgramInvalid");
  Error wrapped = Error(ErrorKind::VerifierRejected, EACCES, "load p").context("programs[0] (c/p)");
  EXPECT_EQ(wrapped.kind(), ErrorKind::VerifierRejected);
  EXPECT_EQ(classifyApplyFailure(wrapped, "eth0").reason, "VerifierRejected");
  EXPECT_EQ(classifyApplyFailure(Error(EINVAL, "x").withKind(ErrorKind::MapArgInvalid), "").reason,
            "MapArgInvalid");
}

// The model holds typed values: pods selectors and map arguments compare by what they say.
TEST(NodeConfig, PodSelectorsAndMapArgumentsAreTypedValues) {
  auto spec = parse(kValid);
  ASSERT_TRUE(spec) << spec.error().message();
  const ChainDecl& pods = spec->chains[1];
  ASSERT_TRUE(pods.forPods());
  EXPECT_EQ(pods.pods.podSelector.matchLabels,
            (std::map<std::string, std::string>{{"app", "web"}}));
  EXPECT_TRUE(pods.pods.namespaceSelector.empty());
  auto other = parse(
      std::string(kValid).replace(std::string(kValid).find("{app: web}"), 10, "{app: \"web\"}"));
  ASSERT_TRUE(other);
  EXPECT_EQ(other->chains[1].pods, pods.pods);
  auto exprs = parse(R"(
chains:
- name: p
  hook: xdp
  pods:
    namespaceSelector: {matchExpressions: [{key: env, operator: In, values: [prod, "1"]}]}
  programs: [{name: a, package: {url: "file:///a", sha256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}}]
)");
  ASSERT_TRUE(exprs) << exprs.error().message();
  ASSERT_EQ(exprs->chains.size(), 1u) << exprs->invalid[0].message;
  ASSERT_EQ(exprs->chains[0].pods.namespaceSelector.matchExpressions.size(), 1u);
  EXPECT_EQ(exprs->chains[0].pods.namespaceSelector.matchExpressions[0],
            (LabelRequirementDecl{"env", "In", {"prod", "1"}}));
  // A map argument written as flow or block, quoted or not, is the same value.
  auto flow = btf::parseArgValue("{saddr: 10.0.0.1, ports: [80, 443]}", "v");
  auto block = btf::parseArgValue("saddr: \"10.0.0.1\"\nports:\n- 80\n- '443'\n", "v");
  ASSERT_TRUE(flow && block);
  EXPECT_EQ(*flow, *block);
  EXPECT_NE(*flow, *btf::parseArgValue("{saddr: 10.0.0.1, ports: [80, 444]}", "v"));
  EXPECT_EQ(btf::argValueFromYaml(btf::argValueToYaml(*flow), "v").value(), *flow);
}

TEST(NodeConfig, PodSelectorErrorsNameTheField) {
  auto chainWith = [](const std::string& pods) {
    return "chains:\n- name: p\n  hook: xdp\n  pods: " + pods +
           "\n  programs: [{name: a, package: {url: \"file:///a\", sha256: "
           "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}}]\n";
  };
  EXPECT_EQ(errorOf(chainWith("{podSelector: {matchLabel: {app: web}}}")),
            "test.yaml: chains[0].pods.podSelector.matchLabel: unknown field");
  EXPECT_EQ(errorOf(chainWith("{podSelector: {matchLabels: [app]}}")),
            "test.yaml: chains[0].pods.podSelector.matchLabels: not a map");
  EXPECT_EQ(errorOf(chainWith("{podSelector: {matchExpressions: [{key: a}]}}")),
            "test.yaml: chains[0].pods.podSelector.matchExpressions[0].operator: required");
}

} // namespace
