// The agent's decisions (node-agent/reconcile_plan.h) without a kernel: where chains run
// (attach, detach, pods), what an instance applies (adopt, failure isolation), and when a
// failed chain is tried again (retry).
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "node-agent/reconcile_plan.h"

using namespace bpfchain;
using namespace bpfchain::agent;
using dataplane::Hook;

namespace {

const char* kSha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

// A chain on `where` ("interfaces: {...}" or "pods: {...}") with programs `programs`.
std::string chainYaml(const std::string& name, const std::string& where, int priority = 100,
                      int generation = 1, const std::string& hook = "xdp",
                      const std::string& programs = "[a]") {
  std::string yaml = "- name: " + name + "\n  generation: " + std::to_string(generation) +
                     "\n  hook: " + hook + "\n  priority: " + std::to_string(priority) + "\n  " +
                     where + "\n  programs:\n";
  for (const auto& p : YAML::Load(programs))
    yaml += "  - {name: " + p.as<std::string>() + ", package: {url: \"file:///p/" +
            p.as<std::string>() + ".tar.gz\", sha256: \"" + kSha + "\"}}\n";
  return yaml;
}

NodeSpec spec(const std::vector<std::string>& chains) {
  std::string text = "chains:\n";
  for (const auto& c : chains)
    text += c;
  auto parsed = parseNodeSpec(YAML::Load(text), "test.yaml");
  EXPECT_TRUE(parsed) << (parsed ? "" : parsed.error().message());
  if (parsed)
    for (const auto& bad : parsed->invalid)
      ADD_FAILURE() << bad.message;
  return parsed ? *parsed : NodeSpec{};
}

std::vector<dataplane::ProgramSpec> programsOf(const ChainDecl& c, const std::string& object) {
  std::vector<dataplane::ProgramSpec> out;
  for (const auto& p : c.programs)
    out.push_back({.id = c.name + "/" + p.name, .objectPath = object, .entry = p.name});
  return out;
}

std::vector<const ChainDecl*> ptrs(const NodeSpec& s) {
  std::vector<const ChainDecl*> out;
  for (const auto& c : s.chains)
    out.push_back(&c);
  return inOrder(out);
}

std::vector<std::string> names(const std::vector<const ChainDecl*>& chains) {
  std::vector<std::string> out;
  for (const ChainDecl* c : chains)
    out.push_back(c->name);
  return out;
}

PodSelector byName(const std::map<std::string, std::set<std::string>>& podsOf) {
  return [podsOf](const ChainDecl& c, const std::string& ns, const std::string& name) {
    auto it = podsOf.find(c.name);
    return it != podsOf.end() && it->second.contains(ns + "/" + name);
  };
}

NodePlanInput input(const NodeSpec& s, Interfaces interfaces) {
  NodePlanInput in;
  in.chains = &s.chains;
  in.interfaces = std::move(interfaces);
  for (const auto& c : s.chains)
    in.resolved.insert(c.name);
  return in;
}

TEST(PlanNode, AttachesEachChainToTheInterfacesItNames) {
  NodeSpec s = spec({chainYaml("web", "interfaces: {names: [eth0]}", 200),
                     chainYaml("edge", "interfaces: {names: [\"/^eth[0-9]+$/\"]}", 50),
                     chainYaml("egress", "interfaces: {names: [eth1]}", 100, 1, "tc-egress")});
  NodePlan plan = planNode(input(s, {{"eth0", 2}, {"eth1", 3}, {"lo", 1}}));
  std::string keys;
  for (const auto& [key, d] : plan.instances)
    keys += key + " ";
  ASSERT_EQ(plan.instances.size(), 3u) << keys;
  const auto& eth0 = plan.instances.at("2/xdp");
  EXPECT_EQ(eth0.ifname, "eth0");
  EXPECT_TRUE(eth0.create);
  EXPECT_EQ(names(eth0.chains), (std::vector<std::string>{"edge", "web"})); // by priority
  EXPECT_EQ(names(plan.instances.at("3/xdp").chains), std::vector<std::string>{"edge"});
  EXPECT_EQ(names(plan.instances.at("3/tc-egress").chains), std::vector<std::string>{"egress"});
  EXPECT_TRUE(plan.remove.empty());
}

TEST(PlanNode, DetachesWhatNoChainOrInterfaceWantsAnyMore) {
  NodeSpec s = spec({chainYaml("web", "interfaces: {names: [eth0]}")});
  NodePlanInput in = input(s, {{"eth0", 2}}); // eth1 (ifindex 3) is gone
  in.running = {"2/xdp", "3/xdp", "2/tc-ingress", "pods/xdp/0123456789abcdef"};
  NodePlan plan = planNode(in);
  EXPECT_EQ(plan.remove,
            (std::vector<std::string>{"2/tc-ingress", "3/xdp", "pods/xdp/0123456789abcdef"}));
  EXPECT_TRUE(plan.instances.contains("2/xdp"));
  // A chain that left an instance goes in the base step of that instance.
  AppliedChains applied{{"web", {1, "", programsOf(s.chains[0], "/o"), {}}},
                        {"old", {4, "", {}, {}}}};
  InstancePlan p = planInstance(applied, false, ptrs(s), {{"web", programsOf(s.chains[0], "/o")}},
                                ReconcileScope::Links);
  EXPECT_EQ(p.leaving, std::vector<std::string>{"old"});
  EXPECT_TRUE(p.base);
  EXPECT_TRUE(p.apply.empty());
}

TEST(PlanInstance, AdoptedInstanceRunningTheTargetIsLeftAlone) {
  NodeSpec s = spec({chainYaml("web", "interfaces: {names: [eth0]}", 100, 7)});
  s.chains[0].revision = "web-7";
  auto programs = programsOf(s.chains[0], "/cache/x/tree/a.o");
  AppliedChains adopted{{"web", {7, "web-7", programs, {}}}};
  // A restarted agent adopts what runs: nothing to load, nothing to remove; a links pass does
  // not even rewrite map arguments.
  InstancePlan links =
      planInstance(adopted, false, ptrs(s), {{"web", programs}}, ReconcileScope::Links);
  EXPECT_TRUE(links.apply.empty());
  EXPECT_TRUE(links.leaving.empty());
  EXPECT_TRUE(links.relabel.empty());
  EXPECT_FALSE(links.base);
  EXPECT_TRUE(
      planInstance(adopted, false, ptrs(s), {{"web", programs}}, ReconcileScope::Full).base);
  // State of an agent before revisions: the same programs, only the revision is recorded.
  adopted["web"].revision.clear();
  InstancePlan relabel =
      planInstance(adopted, false, ptrs(s), {{"web", programs}}, ReconcileScope::Links);
  EXPECT_EQ(names(relabel.relabel), std::vector<std::string>{"web"});
  EXPECT_TRUE(relabel.apply.empty());
  // The running instance is in the plan's input: it stays, it is not created again.
  NodePlanInput in = input(s, {{"eth0", 2}});
  in.running = {"2/xdp"};
  EXPECT_TRUE(planNode(in).remove.empty());
}

TEST(PlanInstance, NewGenerationOrProgramsAreApplied) {
  NodeSpec s = spec({chainYaml("web", "interfaces: {names: [eth0]}", 100, 2)});
  auto programs = programsOf(s.chains[0], "/o");
  AppliedChains older{{"web", {1, "", programs, {}}}};
  EXPECT_EQ(
      names(planInstance(older, false, ptrs(s), {{"web", programs}}, ReconcileScope::Links).apply),
      std::vector<std::string>{"web"});
  AppliedChains same{{"web", {2, "", programs, {}}}};
  auto changed = programs;
  changed[0].mapArgs.push_back({.map = "m", .entries = {{btf::ArgValue::text("1"), {}}}});
  EXPECT_EQ(
      names(planInstance(same, false, ptrs(s), {{"web", changed}}, ReconcileScope::Links).apply),
      std::vector<std::string>{"web"});
  // An empty instance (just opened) always gets its base step.
  EXPECT_TRUE(planInstance({}, true, ptrs(s), {{"web", programs}}, ReconcileScope::Links).base);
}

TEST(PlanInstance, AChainThatCannotBeResolvedLeavesTheOthersToApply) {
  NodeSpec s = spec({chainYaml("a", "interfaces: {names: [eth0]}", 10),
                     chainYaml("b", "interfaces: {names: [eth0]}", 20, 2)});
  auto programsA = programsOf(s.chains[0], "/a");
  auto programsB = programsOf(s.chains[1], "/b");
  AppliedChains running{{"a", {1, "", programsA, {}}}, {"b", {1, "", programsB, {}}}};
  // a's new package did not resolve (or a is in backoff): a keeps running, b moves on its own.
  Resolved resolved{{"a", std::nullopt}, {"b", programsB}};
  InstancePlan p = planInstance(running, false, ptrs(s), resolved, ReconcileScope::Full);
  EXPECT_EQ(names(p.apply), std::vector<std::string>{"b"});
  EXPECT_TRUE(p.leaving.empty()); // a is not removed for failing
  // On an interface with no instance yet, a chain alone that did not resolve gets no root.
  NodePlanInput in = input(s, {{"eth0", 2}});
  in.resolved = {};
  EXPECT_FALSE(planNode(in).instances.at("2/xdp").create);
  in.resolved = {"b"};
  EXPECT_TRUE(planNode(in).instances.at("2/xdp").create);
  in.resolved = {};
  in.running = {"2/xdp"};
  EXPECT_TRUE(planNode(in).instances.at("2/xdp").create); // what runs is kept, not removed
}

TEST(PlanInstance, TailCallLimitIsJudgedOnTheWholeInstance) {
  std::string many = "[";
  for (int i = 0; i < 20; ++i)
    many += (i ? ",p" : "p") + std::to_string(i);
  many += "]";
  NodeSpec s = spec({chainYaml("a", "interfaces: {names: [eth0]}", 10, 1, "xdp", many),
                     chainYaml("b", "interfaces: {names: [eth0]}", 20, 1, "xdp", many)});
  AppliedChains one{{"a", {1, "", programsOf(s.chains[0], "/a"), {}}}};
  EXPECT_FALSE(tailCallProblem(one, ptrs(s)));
  AppliedChains both = one;
  both["b"] = {1, "", programsOf(s.chains[1], "/b"), {}};
  EXPECT_TRUE(tailCallProblem(both, ptrs(s)));
  EXPECT_EQ(composePrograms(both, ptrs(s)).size(), 40u);
  EXPECT_EQ(composePrograms(both, ptrs(s)).front().id, "a/p0");
}

TEST(PlanNode, PodsWithTheSameChainSetShareAnInstance) {
  NodeSpec s = spec({chainYaml("a", "pods: {}", 10), chainYaml("b", "pods: {}", 20),
                     chainYaml("c", "pods: {}", 30, 1, "tc-ingress")});
  NodePlanInput in = input(s, {{"veth1", 11}, {"veth2", 12}, {"veth3", 13}});
  in.selectsPod =
      byName({{"a", {"ns/p1", "ns/p2", "ns/p3"}}, {"b", {"ns/p1", "ns/p2"}}, {"c", {"ns/p1"}}});
  in.pods = {{"id1", {"c1", "ns", "p1", "veth1", 11, "eth0", "net"}},
             {"id2", {"c2", "ns", "p2", "veth2", 12, "eth0", "net"}},
             {"id3", {"c3", "ns", "p3", "veth3", 13, "eth0", "net"}}};
  NodePlan plan = planNode(in);
  const auto& t1 = plan.podTargets.at("id1");
  EXPECT_EQ(t1.size(), 2u); // xdp and tc-ingress
  EXPECT_EQ(t1.at(Hook::Xdp), plan.podTargets.at("id2").at(Hook::Xdp));
  EXPECT_NE(t1.at(Hook::Xdp), plan.podTargets.at("id3").at(Hook::Xdp)); // {a} is another set
  EXPECT_FALSE(plan.podTargets.at("id2").contains(Hook::TcIngress));
  EXPECT_EQ(names(plan.instances.at(t1.at(Hook::Xdp)).chains),
            (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(plan.instances.size(), 3u);
  EXPECT_TRUE(isPodKey(t1.at(Hook::Xdp)));
}

TEST(PlanNode, PodsFollowTheirVethsAndExpectedPodsArePreloaded) {
  NodeSpec s = spec({chainYaml("a", "pods: {}")});
  NodePlanInput in = input(s, {{"veth1", 11}, {"veth2", 99}});
  in.selectsPod = byName({{"a", {"ns/p1", "ns/p2", "ns/p4"}}});
  in.pods = {{"id1", {"c1", "ns", "p1", "veth1", 11, "eth0", "net"}},
             {"id2", {"c2", "ns", "p2", "veth2", 12, "eth0", "net"}},  // veth2 is another link now
             {"id3", {"c3", "ns", "p3", "veth3", 13, "eth0", "net"}}}; // veth3 is gone
  in.expectedPods = {{"ns", "p4"}};
  NodePlan plan = planNode(in);
  EXPECT_EQ(plan.podsGone, (std::vector<std::string>{"id2", "id3"}));
  EXPECT_TRUE(plan.podTargets.at("id1").contains(Hook::Xdp));
  ASSERT_EQ(plan.instances.size(), 1u); // p1's set, which p4 shares
  // Without pods selected (p3 alone, not selected) no pods instance is wanted: it goes.
  in.pods = {{"id3", {"c3", "ns", "p3", "veth3", 13, "eth0", "net"}}};
  in.interfaces["veth3"] = 13;
  in.expectedPods = {};
  std::string key = podInstanceKey(Hook::Xdp, ptrs(s));
  in.running = {key};
  NodePlan none = planNode(in);
  EXPECT_TRUE(none.podTargets.at("id3").empty()); // its links are removed
  EXPECT_EQ(none.remove, std::vector<std::string>{key});
}

TEST(Retry, FailedGenerationBacksOffAndResetsOnChange) {
  NodeSpec s = spec({chainYaml("a", "interfaces: {names: [eth0]}"),
                     chainYaml("b", "interfaces: {names: [eth0]}")});
  const ChainDecl& a = s.chains[0];
  Clock::time_point t0{};
  std::map<std::string, ApplyFailure> failed{{"a", {"VerifierRejected", "no"}}};
  std::vector<std::string> attempted;
  auto r1 = nextRetries({}, s.chains, failed, t0, &attempted);
  EXPECT_EQ(attempted, std::vector<std::string>{"a"}); // logged and counted once
  EXPECT_EQ(r1.at("a").backoff, kFirstRetry);
  EXPECT_FALSE(r1.contains("b")); // b did not fail: isolated
  // Before the deadline the chain is not tried again: its failure stands.
  auto pending = inBackoff(r1, a, t0 + std::chrono::seconds(5));
  ASSERT_TRUE(pending);
  EXPECT_EQ(pending->reason, "VerifierRejected");
  EXPECT_FALSE(inBackoff(r1, s.chains[1], t0));
  // A pass in backoff keeps the state (and does not log again).
  attempted.clear();
  EXPECT_EQ(
      nextRetries(r1, s.chains, failed, t0 + std::chrono::seconds(5), &attempted).at("a").notBefore,
      r1.at("a").notBefore);
  EXPECT_TRUE(attempted.empty());
  // Due: tried again; failing again doubles the backoff, up to 5 minutes.
  EXPECT_FALSE(inBackoff(r1, a, t0 + kFirstRetry));
  auto r = r1;
  auto now = t0;
  for (int i = 0; i < 8; ++i) {
    now = r.at("a").notBefore;
    r = nextRetries(r, s.chains, failed, now, nullptr);
  }
  EXPECT_EQ(r.at("a").backoff, kMaxRetry);
  EXPECT_EQ(nextRetries(r1, s.chains, failed, t0 + kFirstRetry, nullptr).at("a").backoff,
            2 * kFirstRetry);
  // A changed declaration (or generation) is tried at once, with a fresh backoff.
  NodeSpec changed = spec({chainYaml("a", "interfaces: {names: [eth0]}", 100, 1, "xdp", "[z]")});
  EXPECT_FALSE(inBackoff(r, changed.chains[0], now));
  EXPECT_EQ(nextRetries(r, changed.chains, failed, now, nullptr).at("a").backoff, kFirstRetry);
  // Success clears the retry.
  EXPECT_TRUE(nextRetries(r, s.chains, {}, now, nullptr).empty());
}

TEST(EffectiveSpec, InvalidChainKeepsItsLastGoodDeclaration) {
  NodeSpec before = spec({chainYaml("a", "interfaces: {names: [eth0]}", 100, 1)});
  NodeSpec given = spec({chainYaml("b", "interfaces: {names: [eth0]}")});
  given.invalid.push_back({"a", 2, "chains[0].hook: bad", ErrorKind::SpecInvalid, ""});
  Clock::time_point t0{};
  EffectiveSpec e = effectiveSpec(given, before, {}, {}, t0);
  ASSERT_EQ(e.spec.chains.size(), 2u);
  EXPECT_EQ(e.spec.chains[1].name, "a");
  EXPECT_EQ(e.spec.chains[1].generation, 1); // the one that ran
  EXPECT_TRUE(e.spec.invalid.empty());
  EXPECT_EQ(e.report, std::vector<std::string>{"a"});
  // The same problem next pass is not reported again.
  EXPECT_TRUE(effectiveSpec(given, e.spec, e.invalid, e.retries, t0).report.empty());
}

TEST(EffectiveSpec, UnavailableRevisionIsRetriedWithBackoff) {
  NodeSpec given;
  given.invalid.push_back({"a", 2, "cannot read", ErrorKind::RevisionUnavailable, "a-2"});
  Clock::time_point t0{};
  EffectiveSpec first = effectiveSpec(given, {}, {}, {}, t0);
  EXPECT_EQ(first.retries.at("a").notBefore, t0 + kFirstRetry);
  EffectiveSpec early = effectiveSpec(given, {}, first.invalid, first.retries, t0);
  EXPECT_TRUE(early.report.empty());
  EffectiveSpec due = effectiveSpec(given, {}, first.invalid, first.retries, t0 + kFirstRetry);
  EXPECT_EQ(due.report, std::vector<std::string>{"a"}); // reported as it is tried again
  EXPECT_EQ(due.retries.at("a").backoff, 2 * kFirstRetry);
}

} // namespace
