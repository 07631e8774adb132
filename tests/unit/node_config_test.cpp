// The agent's config parser: a BpfNodeConfig spec, strictly, with errors that name the field.
#include <gtest/gtest.h>

#include "node-agent/apply_failure.h"
#include "node-agent/node_config.h"

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
    mapArgs:
    - map: rl_ports
      mode: merge
      entries: [{key: "8080", value: "1"}]
    monitorMaps:
    - {map: rl_drops, key: "0", aggregator: max-rate}
  - name: counter
    enabled: false
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

std::string errorOf(const std::string& text) {
  auto r = parse(text);
  EXPECT_FALSE(r.ok()) << text;
  return r.ok() ? "" : r.error().message();
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
  EXPECT_EQ(c.programs[0].mapArgs[0].entries[0].key.Scalar(), "8080");
  ASSERT_EQ(c.programs[0].monitorMaps.size(), 1u);
  EXPECT_EQ(c.programs[0].monitorMaps[0].aggregator, Aggregator::MaxRate);
  EXPECT_FALSE(c.programs[1].enabled);
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
  };
  for (const auto& c : cases) {
    std::string message = errorOf(replaced(c.from, c.to));
    EXPECT_NE(message.find(c.expected), std::string::npos)
        << "for " << c.to << ": got \"" << message << "\", want \"" << c.expected << "\"";
  }
}

TEST(NodeConfig, AFileThatDoesNotParseNamesTheFileAndLine) {
  auto r = loadNodeSpecFile("/nonexistent/bpfchain.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("/nonexistent/bpfchain.yaml"), std::string::npos);
}

TEST(ApplyFailure, ReasonsFromTheDataPlanesMessages) {
  struct Case {
    std::string message, reason;
  };
  // The messages as common/dataplane writes them (chain.cpp, program_instance.cpp).
  std::vector<Case> cases = {
      {"programs[0] (c/p): load xdp_bad from /x.o: Permission denied; verifier: R1 invalid mem "
       "access 'scalar'",
       "VerifierRejected"},
      {"programs[1] (c/q).mapArgs[0].entries[2].key: \"80x\" is not a valid __u16",
       "MapArgInvalid"},
      {"programs[0] (c/p): globalData.rate: no such variable", "GlobalDataInvalid"},
      {"programs[0] (c/p): entry \"nope\": no such program in /x.o", "ProgramInvalid"},
      {"programs[0] (c/p): nextMap \"n\": no such map in /x.o", "ProgramInvalid"},
      {"programs[1] (c/tc): entry \"tc_l3af\" in /x.o: its first argument is struct __sk_buff *: "
       "a tc program, not a program for the xdp hook",
       "ProgramInvalid"},
      {"programs[0] (c/p): open /x.o: not a loadable BPF object (Invalid argument)",
       "ProgramInvalid"},
      {"link /sys/fs/bpf/x to the next program: Bad file descriptor", "LoadFailed"},
  };
  for (const auto& c : cases) {
    ApplyFailure f = classifyApplyFailure(Error(EINVAL, c.message), "eth0");
    EXPECT_EQ(f.reason, c.reason) << c.message;
    EXPECT_EQ(f.message, "eth0: " + c.message);
  }
}

} // namespace
