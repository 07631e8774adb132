#include "node-agent/reconcile_plan.h"

#include <algorithm>
#include <yaml-cpp/yaml.h>

#include "btf/arg_value.h"
#include "dataplane/tail_calls.h"
#include "packages/digest.h"

namespace bpfchain::agent {

std::string specDigest(const ChainDecl& chain) {
  // A stable rendering of everything that changes what runs.
  YAML::Emitter out;
  out << YAML::Flow << YAML::BeginSeq << chain.priority
      << std::string(dataplane::hookName(chain.hook));
  for (const auto& p : chain.programs) {
    out << YAML::BeginSeq << p.name << p.url << p.sha256 << p.entry << p.nextMap << p.enabled;
    out << YAML::BeginMap;
    for (const auto& [k, v] : p.globalData)
      out << YAML::Key << k << YAML::Value << v;
    out << YAML::EndMap << p.freshState << YAML::BeginSeq;
    for (const auto& m : p.freshMaps)
      out << m;
    out << YAML::EndSeq << YAML::BeginSeq;
    for (const auto& a : p.mapArgs) {
      out << a.map << (a.mode == btf::MapArgMode::Replace ? "replace" : "merge");
      for (const auto& e : a.entries)
        out << btf::argValueToYaml(e.key) << btf::argValueToYaml(e.value);
    }
    out << YAML::EndSeq << YAML::EndSeq;
  }
  out << YAML::EndSeq;
  return out.c_str();
}

std::vector<const ChainDecl*> inOrder(std::vector<const ChainDecl*> chains) {
  std::sort(chains.begin(), chains.end(), [](const ChainDecl* a, const ChainDecl* b) {
    return std::tie(a->priority, a->name) < std::tie(b->priority, b->name);
  });
  return chains;
}

std::string instanceKey(int ifindex, dataplane::Hook hook) {
  return std::to_string(ifindex) + "/" + std::string(dataplane::hookName(hook));
}

std::string podInstanceKey(dataplane::Hook hook, const std::vector<const ChainDecl*>& chains) {
  std::string names;
  for (const ChainDecl* c : chains)
    names += c->name + ",";
  return "pods/" + std::string(dataplane::hookName(hook)) + "/" +
         packages::sha256Hex(names).substr(0, 16);
}

bool isPodKey(const std::string& key) {
  return key.rfind("pods/", 0) == 0;
}

namespace {

const ChainDecl* named(const std::vector<ChainDecl>& chains, const std::string& name) {
  auto it = std::find_if(chains.begin(), chains.end(),
                         [&](const ChainDecl& c) { return c.name == name; });
  return it == chains.end() ? nullptr : &*it;
}

// The revision retry of an unavailable chain after this pass, and whether it is due now.
std::pair<RevisionRetry, bool> revisionRetry(const InvalidChain& bad,
                                             const std::map<std::string, RevisionRetry>& before,
                                             Clock::time_point now) {
  auto known = before.find(bad.name);
  if (known == before.end() || known->second.revision != bad.revision)
    return {RevisionRetry{bad.revision, now + kFirstRetry, kFirstRetry}, false};
  RevisionRetry retry = known->second;
  bool due = now >= retry.notBefore;
  if (due) {
    retry.backoff = std::min(retry.backoff * 2, kMaxRetry);
    retry.notBefore = now + retry.backoff;
  }
  return {retry, due};
}

} // namespace

EffectiveSpec effectiveSpec(const NodeSpec& given, const NodeSpec& previous,
                            const std::map<std::string, InvalidChain>& invalidBefore,
                            const std::map<std::string, RevisionRetry>& retriesBefore,
                            Clock::time_point now) {
  EffectiveSpec out;
  out.spec = given;
  out.spec.invalid.clear();
  for (const auto& bad : given.invalid) {
    // The last good declaration: the one the spec gives with it, else the one that ran.
    if (named(given.chains, bad.name) == nullptr)
      if (const ChainDecl* ran = named(previous.chains, bad.name))
        out.spec.chains.push_back(*ran);
    bool retryDue = false;
    if (bad.kind == ErrorKind::RevisionUnavailable) {
      auto [retry, due] = revisionRetry(bad, retriesBefore, now);
      out.retries[bad.name] = retry;
      retryDue = due;
    }
    auto known = invalidBefore.find(bad.name);
    if (known == invalidBefore.end() || !(known->second == bad) || retryDue)
      out.report.push_back(bad.name);
    out.invalid[bad.name] = bad;
  }
  return out;
}

std::optional<ApplyFailure> inBackoff(const std::map<std::string, RetryState>& retries,
                                      const ChainDecl& chain, Clock::time_point now) {
  auto retry = retries.find(chain.name);
  if (retry == retries.end() || retry->second.generation != chain.generation ||
      retry->second.specDigest != specDigest(chain) || now >= retry->second.notBefore)
    return std::nullopt;
  return retry->second.failure;
}

std::map<std::string, RetryState> nextRetries(const std::map<std::string, RetryState>& before,
                                              const std::vector<ChainDecl>& chains,
                                              const std::map<std::string, ApplyFailure>& failures,
                                              Clock::time_point now,
                                              std::vector<std::string>* attempted) {
  std::map<std::string, RetryState> after;
  for (const auto& c : chains) {
    auto f = failures.find(c.name);
    if (f == failures.end())
      continue; // ran, or nothing to run: no retry
    RetryState retry;
    if (auto b = before.find(c.name); b != before.end())
      retry = b->second;
    std::string digest = specDigest(c);
    bool sameAttempt = retry.generation == c.generation && retry.specDigest == digest;
    if (!sameAttempt || now >= retry.notBefore) {
      retry.backoff = sameAttempt ? std::min(retry.backoff * 2, kMaxRetry) : kFirstRetry;
      retry.generation = c.generation;
      retry.specDigest = digest;
      retry.notBefore = now + retry.backoff;
      retry.failure = f->second;
      if (attempted)
        attempted->push_back(c.name);
    }
    after[c.name] = retry;
  }
  return after;
}

bool DesiredInstance::placeLast() const {
  return std::all_of(chains.begin(), chains.end(), [](const ChainDecl* c) { return c->placeLast; });
}

std::map<dataplane::Hook, std::vector<const ChainDecl*>>
podChains(const std::vector<ChainDecl>& chains, const PodSelector& selectsPod,
          const std::string& ns, const std::string& name) {
  std::map<dataplane::Hook, std::vector<const ChainDecl*>> byHook;
  for (const auto& c : chains)
    if (c.forPods() && selectsPod && selectsPod(c, ns, name))
      byHook[c.hook].push_back(&c);
  for (auto& [hook, list] : byHook)
    list = inOrder(list);
  return byHook;
}

namespace {

void planInterfaces(const NodePlanInput& in, NodePlan& plan) {
  std::vector<const ChainDecl*> ordered;
  for (const auto& c : *in.chains)
    ordered.push_back(&c);
  for (const ChainDecl* c : inOrder(ordered)) {
    if (c->forPods())
      continue;
    for (const auto& [name, index] : in.interfaces)
      if (c->interfaces->matches(name)) {
        auto& d = plan.instances[instanceKey(index, c->hook)];
        d.ifindex = index;
        d.ifname = name;
        d.hook = c->hook;
        d.chains.push_back(c);
      }
  }
  for (auto& [key, d] : plan.instances)
    d.create = in.running.contains(key) ||
               std::any_of(d.chains.begin(), d.chains.end(),
                           [&](const ChainDecl* c) { return in.resolved.contains(c->name); });
}

void planPods(const NodePlanInput& in, NodePlan& plan) {
  for (const auto& [ns, name] : in.expectedPods)
    for (auto& [hook, chains] : podChains(*in.chains, in.selectsPod, ns, name))
      plan.instances[podInstanceKey(hook, chains)] = DesiredInstance{0, "", hook, chains};
  for (const auto& pod : in.pods) {
    // A veth that is gone took its attachments with it: the pod was deleted meanwhile.
    auto it = in.interfaces.find(pod.ref.hostIfname);
    if (it == in.interfaces.end() || it->second != pod.ref.hostIfindex) {
      plan.podsGone.push_back(pod.id);
      continue;
    }
    auto& targets = plan.podTargets[pod.id];
    for (auto& [hook, chains] : podChains(*in.chains, in.selectsPod, pod.ref.ns, pod.ref.name)) {
      std::string key = podInstanceKey(hook, chains);
      plan.instances[key] = DesiredInstance{0, "", hook, chains};
      targets[hook] = key;
    }
  }
}

} // namespace

NodePlan planNode(const NodePlanInput& in) {
  NodePlan plan;
  planInterfaces(in, plan);
  planPods(in, plan);
  for (const auto& key : in.running)
    if (!plan.instances.contains(key))
      plan.remove.push_back(key);
  return plan;
}

InstancePlan planInstance(const AppliedChains& applied, bool instanceEmpty,
                          const std::vector<const ChainDecl*>& chains, const Resolved& resolved,
                          ReconcileScope scope) {
  InstancePlan plan;
  for (const auto& entry : applied)
    if (std::none_of(chains.begin(), chains.end(),
                     [&](const ChainDecl* c) { return c->name == entry.first; }))
      plan.leaving.push_back(entry.first);
  // The base step also rewrites every mapArgs (level-triggered), except in a pass that only
  // follows links, which must stay cheap: it runs while pods are being added.
  plan.base = scope == ReconcileScope::Full || !plan.leaving.empty() || instanceEmpty;
  for (const ChainDecl* c : chains) {
    auto next = resolved.find(c->name);
    if (next == resolved.end() || !next->second)
      continue; // failed to resolve, or in backoff: what runs stays
    auto current = applied.find(c->name);
    if (current != applied.end() && current->second.generation == c->generation &&
        current->second.programs == *next->second) {
      if (current->second.revision != c->revision) // adopted from an older agent's state
        plan.relabel.push_back(c);
      continue;
    }
    plan.apply.push_back(c);
  }
  return plan;
}

std::vector<dataplane::ProgramSpec> composePrograms(const AppliedChains& candidate,
                                                    const std::vector<const ChainDecl*>& chains) {
  std::vector<dataplane::ProgramSpec> all;
  for (const ChainDecl* c : chains)
    if (auto it = candidate.find(c->name); it != candidate.end())
      all.insert(all.end(), it->second.programs.begin(), it->second.programs.end());
  return all;
}

std::optional<std::string> tailCallProblem(const AppliedChains& candidate,
                                           const std::vector<const ChainDecl*>& chains) {
  std::vector<dataplane::ChainShare> shares;
  for (const ChainDecl* d : chains)
    if (auto it = candidate.find(d->name); it != candidate.end())
      shares.push_back({d->name, static_cast<size_t>(std::count_if(
                                     it->second.programs.begin(), it->second.programs.end(),
                                     [](const auto& p) { return p.enabled; }))});
  return dataplane::tailCallOverflow(shares);
}

} // namespace bpfchain::agent
