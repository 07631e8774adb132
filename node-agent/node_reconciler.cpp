#include "node-agent/node_reconciler.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_socket/agent_socket.h"
#include "node-agent/agent_metrics.h"
#include "node-agent/metrics_view.h"
#include "system/log.h"

namespace bpfchain::agent {

namespace fs = std::filesystem;

namespace {

Result<uint64_t> currentNetnsInode() {
  struct stat st {};
  // thread-self: the agent's data-plane thread may have entered another namespace (--netns).
  if (stat("/proc/thread-self/ns/net", &st) != 0)
    return systemError(errno, "stat /proc/thread-self/ns/net");
  return static_cast<uint64_t>(st.st_ino);
}

const ChainDecl* findChain(const std::vector<ChainDecl>& chains, const std::string& name) {
  auto it = std::find_if(chains.begin(), chains.end(),
                         [&](const ChainDecl& c) { return c.name == name; });
  return it == chains.end() ? nullptr : &*it;
}

} // namespace

NodeReconciler::NodeReconciler(ReconcilerOptions options, ProgramResolver& resolver,
                               AgentMetrics* metrics)
    : options_(std::move(options)), resolver_(resolver), metrics_(metrics),
      metricsView_(metrics ? std::make_unique<MetricsView>(*metrics) : nullptr) {}

NodeReconciler::~NodeReconciler() = default;

Result<std::unique_ptr<NodeReconciler>> NodeReconciler::create(ReconcilerOptions options,
                                                               ProgramResolver& resolver,
                                                               AgentMetrics* metrics) {
  std::unique_ptr<NodeReconciler> r(new NodeReconciler(std::move(options), resolver, metrics));
  auto inode = currentNetnsInode();
  if (!inode)
    return std::move(inode).error();
  r->netnsInode_ = *inode;
  r->store_ = std::make_unique<StateStore>(r->options_.stateDir, *inode);
  if (auto prepared = r->store_->prepare(); !prepared)
    return std::move(prepared).error();
  r->instances_ = std::make_unique<InstanceExecutor>(r->options_.bpffsRoot, *inode, *r->store_,
                                                     r->options_.attach);
  r->pods_ = std::make_unique<PodAttachments>(
      *r->store_, r->options_.bpffsRoot + "/" + std::to_string(*inode) + "/pod-links",
      r->options_.attach);
  if (auto adopted = r->instances_->adoptPinned(); !adopted)
    return std::move(adopted).error();
  InstanceExecutor& instances = *r->instances_;
  r->pods_->load([&](const std::string& key) -> const dataplane::Chain* {
    Instance* inst = instances.find(key);
    return inst ? &inst->chain : nullptr;
  });
  r->refreshViews();
  return r;
}

void NodeReconciler::noteUncarried(const ApplyOutcome& outcome) {
  for (const auto& [chain, where, uncarried] : outcome.uncarried) {
    std::string digest = specDigest(*chain);
    Uncarried& notes = uncarried_[chain->name];
    if (notes.specDigest != digest)
      notes = Uncarried{digest, {}};
    std::string prefix = chain->name + "/";
    for (const auto& u : uncarried) {
      if (u.programId.rfind(prefix, 0) != 0)
        continue;
      std::string line = u.programId.substr(prefix.size()) + ": " + u.map + " (" + u.reason + ")";
      if (notes.maps.insert(line).second)
        log::warning("map starts empty, not carried from the running version",
                     {{"chain", chain->name},
                      {"generation", chain->generation},
                      {"interface", where},
                      {"map", u.map},
                      {"program", u.programId},
                      {"reason", u.reason}});
    }
  }
}

void NodeReconciler::acceptSpec(const NodeSpec& spec, Clock::time_point now) {
  EffectiveSpec effective = effectiveSpec(spec, spec_, invalid_, unavailable_, now);
  for (const auto& name : effective.report) {
    const InvalidChain& bad = effective.invalid.at(name);
    const ChainDecl* previous = findChain(effective.spec.chains, name);
    log::error("chain not applied; its previous generation keeps running, if any",
               {{"chain", bad.name},
                {"generation", bad.generation},
                {"revision", bad.revision},
                {"reason", reasonName(bad.kind)},
                {"message", bad.message},
                {"running", previous ? previous->generation : 0}});
    if (metrics_)
      metrics_->countError(bad.name, reasonName(bad.kind));
  }
  for (const auto& c : spec_.chains)
    if (findChain(effective.spec.chains, c.name) == nullptr)
      log::info("removing chain: no longer in the node's config",
                {{"chain", c.name}, {"generation", c.generation}});
  unavailable_ = std::move(effective.retries);
  invalid_ = std::move(effective.invalid);
  spec_ = std::move(effective.spec);
}

Resolved NodeReconciler::resolveChains(Clock::time_point now,
                                       std::map<std::string, ApplyFailure>& failures) {
  Resolved resolved;
  std::vector<const ChainDecl*> chains;
  for (const auto& c : spec_.chains)
    chains.push_back(&c);
  for (const ChainDecl* chain : inOrder(chains)) {
    const ChainDecl& c = *chain;
    if (auto failure = inBackoff(retries_, c, now)) {
      failures[c.name] = *failure;
      resolved[c.name] = std::nullopt;
      continue;
    }
    // A chain's declaration resolves to the same programs as long as it is unchanged:
    // packages are content-addressed.
    std::string digest = specDigest(c);
    if (auto cached = resolvedCache_.find(c.name);
        cached != resolvedCache_.end() && cached->second.first == digest) {
      resolved[c.name] = cached->second.second;
      continue;
    }
    auto r = resolver_.resolve(c);
    if (r) {
      resolvedCache_[c.name] = {digest, *r};
      resolved[c.name] = std::move(*r);
    } else {
      failures[c.name] = ApplyFailure{r.error().reason, r.error().message};
      resolved[c.name] = std::nullopt;
    }
  }
  return resolved;
}

NodeStatus
NodeReconciler::reconcile(const NodeSpec& spec, const PodSelector& selectsPod,
                          const std::vector<std::pair<std::string, std::string>>& expectedPods,
                          ReconcileScope scope, const std::optional<Interfaces>& known) {
  std::lock_guard lock(mu_);
  auto now = Clock::now();
  // Fetch: the spec in force, the links, the pods, each chain's programs.
  acceptSpec(spec, now);
  selectsPod_ = selectsPod;
  applied_ = true;
  std::map<std::string, ApplyFailure> failures; // by chain: the first failure of this pass
  Resolved resolved = resolveChains(now, failures);
  NodePlanInput in{
      &spec_.chains, known ? *known : listInterfaces(), {}, expectedPods, selectsPod_, {}, {}};
  for (const auto& [id, pod] : pods_->all())
    in.pods.push_back(PodView{id, pod.ref});
  for (const auto& [key, inst] : instances_->all())
    in.running.insert(key);
  for (const auto& [name, programs] : resolved)
    if (programs)
      in.resolved.insert(name);
  // Compute, then execute.
  NodePlan plan = planNode(in);
  std::map<std::string, double> applySeconds;
  converge(plan, resolved, scope, failures, applySeconds);
  recordOutcome(failures, applySeconds, now);
  refreshViews();
  if (scope == ReconcileScope::Full)
    collectPackages();
  return buildStatus();
}

void NodeReconciler::converge(const NodePlan& plan, const Resolved& resolved, ReconcileScope scope,
                              std::map<std::string, ApplyFailure>& failures,
                              std::map<std::string, double>& applySeconds) {
  for (const auto& id : plan.podsGone)
    if (auto it = pods_->all().find(id); it != pods_->all().end())
      pods_->forget(it);
  // Every instance moves to its chains' new programs, then host instances are attached.
  for (const auto& [key, d] : plan.instances)
    if (d.create)
      convergeInstance(key, d, resolved, scope, failures, applySeconds);
  // What runs before each interface's TCX root (another tool's program put first since, or a
  // chain that asked to go last): logged when it changes, and in the chains' status.
  instances_->followAhead();
  followPods(plan, scope, failures);
  for (const auto& key : plan.remove)
    instances_->remove(key);
}

void NodeReconciler::convergeInstance(const std::string& key, const DesiredInstance& d,
                                      const Resolved& resolved, ReconcileScope scope,
                                      std::map<std::string, ApplyFailure>& failures,
                                      std::map<std::string, double>& applySeconds) {
  auto instance = instances_->open(key, d.ifindex, d.ifname, d.hook);
  if (!instance) {
    for (const ChainDecl* c : d.chains)
      failures.try_emplace(c->name,
                           ApplyFailure{"AttachFailed", (d.ifname.empty() ? key : d.ifname) + ": " +
                                                            instance.error().message()});
    return;
  }
  Instance& inst = **instance;
  ApplyOutcome outcome;
  instances_->apply(
      inst, d.chains,
      planInstance(inst.applied, inst.chain.programs().empty(), d.chains, resolved, scope),
      resolved, outcome);
  noteUncarried(outcome);
  for (auto& [name, failure] : outcome.failures)
    failures.try_emplace(name, std::move(failure));
  for (const auto& [name, seconds] : outcome.seconds)
    applySeconds[name] += seconds;
  if (d.ifindex == 0)
    return;
  if (inst.applied.empty()) {
    instances_->remove(key); // every chain failed its first apply here: no empty root
    return;
  }
  if (auto attached = instances_->attachRoot(inst, d.placeLast()); !attached)
    for (const ChainDecl* c : d.chains)
      failures.try_emplace(
          c->name, ApplyFailure{"AttachFailed", std::string(dataplane::hookName(d.hook)) + " on " +
                                                    d.ifname + ": " + attached.error().message()});
}

void NodeReconciler::followPods(const NodePlan& plan, ReconcileScope scope,
                                std::map<std::string, ApplyFailure>& failures) {
  // Pods follow their chain sets: switch to the new set's instance, or detach.
  static const std::map<dataplane::Hook, std::string> kNone;
  for (auto& [id, pod] : pods_->all()) {
    auto t = plan.podTargets.find(id);
    const auto& targets = t == plan.podTargets.end() ? kNone : t->second;
    auto before = pod.linkKeys();
    for (const auto& [hook, key] : before)
      if (!targets.contains(hook))
        pods_->unlink(pod, hook);
    for (const auto& [hook, key] : targets) {
      Instance* inst = instances_->find(key);
      auto linked = inst ? pods_->link(pod, hook, key, inst->chain, scope == ReconcileScope::Full)
                         : Result<void>(invalidError("no loaded chain set " + key + " for pod " +
                                                     pod.ref.ns + "/" + pod.ref.name));
      if (!linked)
        for (const ChainDecl* c : plan.instances.at(key).chains)
          failures.try_emplace(c->name, ApplyFailure{"AttachFailed", linked.error().message()});
    }
    if (pod.linkKeys() != before)
      pods_->save(pod);
  }
}

void NodeReconciler::recordOutcome(const std::map<std::string, ApplyFailure>& failures,
                                   const std::map<std::string, double>& applySeconds,
                                   Clock::time_point now) {
  std::vector<std::string> attempted;
  retries_ = nextRetries(retries_, spec_.chains, failures, now, &attempted);
  for (const auto& name : attempted) {
    const RetryState& retry = retries_.at(name);
    log::error("chain failed", {{"chain", name},
                                {"generation", retry.generation},
                                {"reason", retry.failure.reason},
                                {"message", retry.failure.message},
                                {"retryInSeconds", retry.backoff.count()}});
    if (metrics_)
      metrics_->countError(name, retry.failure.reason);
  }
  if (metrics_)
    for (const auto& [name, seconds] : applySeconds)
      if (findChain(spec_.chains, name) != nullptr)
        metrics_->observeApply(name, seconds);
  std::set<std::string> names;
  for (const auto& c : spec_.chains)
    names.insert(c.name);
  std::erase_if(resolvedCache_, [&](const auto& entry) { return !names.contains(entry.first); });
  std::erase_if(uncarried_, [&](const auto& entry) { return !names.contains(entry.first); });
  failures_ = failures;
}

void NodeReconciler::collectPackages() {
  std::set<std::string> inUse;
  for (const auto& c : spec_.chains)
    for (const auto& p : c.programs)
      inUse.insert(p.sha256);
  // Running programs' objects are <cache>/<digest>/tree/...: their generation may be the one a
  // failed target falls back on.
  std::string prefix = resolver_.cache().dir() + "/";
  for (const auto& [key, inst] : instances_->all())
    for (const auto& [chain, applied] : inst->applied)
      for (const auto& p : applied.programs)
        if (p.objectPath.rfind(prefix, 0) == 0)
          inUse.insert(p.objectPath.substr(prefix.size(), 64));
  if (inUse == packagesInUse_)
    return;
  packagesInUse_ = inUse;
  if (size_t removed = resolver_.cache().collectGarbage(inUse); removed > 0)
    log::info("removed cached packages that no running or configured chain uses",
              {{"count", removed}});
}

NodeStatus NodeReconciler::status() const {
  std::lock_guard lock(mu_);
  return buildStatus();
}

namespace {

AttachmentStatus attachmentOf(const Instance& inst, const std::string& chain) {
  AttachmentStatus a;
  a.interface = inst.ifname;
  a.hook = inst.hook;
  a.programIds.push_back(inst.chain.rootId());
  for (const auto& p : inst.chain.programs())
    if (p.id.rfind(chainKey(chain) + "/", 0) == 0)
      a.programIds.push_back(p.programId);
  return a;
}

std::string joinMessages(const std::string& a, const std::string& b) {
  return a.empty() ? b : a + "; " + b;
}

} // namespace

NodeStatus NodeReconciler::buildStatus() const {
  NodeStatus status;
  for (const auto& c : spec_.chains)
    status.chains.push_back(chainStatus(c));
  // Chains that never ran a target: nothing of theirs runs.
  for (const auto& entry : invalid_) {
    const InvalidChain& bad = entry.second;
    if (findChain(spec_.chains, bad.name) == nullptr)
      status.chains.push_back(ChainStatus{bad.name,
                                          bad.generation,
                                          0,
                                          "Failed",
                                          reasonName(bad.kind),
                                          bad.message,
                                          {},
                                          bad.revision,
                                          ""});
  }
  return status;
}

ChainStatus NodeReconciler::chainStatus(const ChainDecl& c) const {
  ChainStatus s;
  s.name = c.name;
  s.generation = c.generation;
  s.revision = c.revision;
  const auto& instances = instances_->all();
  for (const auto& [key, inst] : instances)
    if (auto running = inst->applied.find(c.name);
        running != inst->applied.end() &&
        (s.runningGeneration == 0 || running->second.generation < s.runningGeneration)) {
      s.runningGeneration = running->second.generation;
      s.runningRevision = running->second.revision;
    }
  if (c.forPods()) {
    for (const auto& [id, pod] : pods_->all())
      for (const auto& [hook, link] : pod.links) {
        Instance* inst = instances_->find(link.instanceKey);
        if (inst == nullptr || !inst->applied.contains(c.name))
          continue;
        AttachmentStatus a = attachmentOf(*inst, c.name);
        a.interface = pod.ref.hostIfname;
        a.pod = pod.ref.ns + "/" + pod.ref.name;
        s.attachments.push_back(std::move(a));
      }
  } else {
    for (const auto& [key, inst] : instances)
      if (!isPodKey(key) && inst->applied.contains(c.name))
        s.attachments.push_back(attachmentOf(*inst, c.name));
  }
  if (auto bad = invalid_.find(c.name); bad != invalid_.end()) {
    s.generation = bad->second.generation;
    s.revision = bad->second.revision;
    s.phase = "Failed";
    s.reason = reasonName(bad->second.kind);
    s.message = bad->second.message;
  } else if (auto f = failures_.find(c.name); f != failures_.end()) {
    s.phase = "Failed";
    s.reason = f->second.reason;
    s.message = f->second.message;
  } else if (s.runningGeneration == 0) {
    // No instance runs the chain and none failed: nothing on this node to attach it to.
    s.phase = "Idle";
    s.reason = "NothingToAttach";
    s.message = c.forPods() ? "no pod on this node is selected by the chain"
                            : "no interface on this node matches the chain";
  } else {
    s.phase = "Ready";
    if (auto m = monitorProblems_.find(c.name); m != monitorProblems_.end())
      s.message = m->second;
    if (auto u = uncarried_.find(c.name);
        u != uncarried_.end() && !u->second.maps.empty() && u->second.specDigest == specDigest(c)) {
      std::string maps;
      for (const auto& line : u->second.maps)
        maps += (maps.empty() ? "" : ", ") + line;
      s.message =
          joinMessages(s.message, "state not carried to the new version (starts empty): " + maps);
    }
  }
  if (!c.forPods())
    for (const auto& [key, inst] : instances)
      if (!isPodKey(key) && inst->applied.contains(c.name) && !inst->ahead.empty())
        s.message = joinMessages(s.message, std::string(dataplane::hookName(c.hook)) + " on " +
                                                inst->ifname + ": " + aheadMessage(inst->ahead));
  return s;
}
Result<void, ApplyFailure> NodeReconciler::loadPodSet(const std::string& key, dataplane::Hook hook,
                                                      const std::vector<const ChainDecl*>& chains) {
  Resolved resolved;
  for (const ChainDecl* c : chains) {
    auto r = resolver_.resolve(*c);
    if (!r)
      return ApplyFailure{r.error().reason, "chain " + c->name + ": " + r.error().message};
    resolved[c->name] = std::move(*r);
  }
  auto inst = instances_->open(key, 0, "", hook);
  if (!inst)
    return ApplyFailure{"AttachFailed", inst.error().message()};
  ApplyOutcome outcome;
  instances_->apply(**inst, chains,
                    planInstance((*inst)->applied, (*inst)->chain.programs().empty(), chains,
                                 resolved, ReconcileScope::Full),
                    resolved, outcome);
  noteUncarried(outcome);
  if (!outcome.failures.empty()) {
    auto& [chain, failure] = *outcome.failures.begin();
    instances_->remove(key);
    return ApplyFailure{failure.reason, "chain " + chain + ": " + failure.message};
  }
  return {};
}

Result<std::vector<PodChain>, ApplyFailure> NodeReconciler::attachPod(const PodRef& ref) {
  // The id names the pod's record and pins: nothing but a CNI container id may pass.
  if (auto why = agent::invalidContainerId(ref.containerId))
    return ApplyFailure{"InvalidRequest", "container id \"" + ref.containerId + "\" " + *why};
  if (ref.containerId.size() > 256)
    return ApplyFailure{"InvalidRequest", "container id \"" + ref.containerId.substr(0, 64) +
                                              "...\" is longer than 256 characters"};
  std::lock_guard lock(mu_);
  if (ref.hostIfindex <= 0)
    return ApplyFailure{"InvalidRequest",
                        "no host-side interface for container " + ref.containerId};
  auto [it, inserted] = pods_->all().try_emplace(attachmentKey(ref), PodRecord{ref, {}});
  PodRecord& pod = it->second;
  if (!inserted && pod.ref.hostIfindex != ref.hostIfindex) {
    pods_->unlinkAll(pod);
    pod.ref = ref;
  }
  std::vector<PodChain> result;
  bool loaded = false;
  for (auto& [hook, chains] : podChains(spec_.chains, selectsPod_, ref.ns, ref.name)) {
    std::string key = podInstanceKey(hook, chains);
    if (instances_->find(key) == nullptr) {
      loaded = true;
      // The first pod of this chain set on the node: load the set now (later pods only attach).
      if (auto ok = loadPodSet(key, hook, chains); !ok)
        return std::move(ok).error();
    }
    const Instance& inst = *instances_->find(key);
    if (auto linked = pods_->link(pod, hook, key, inst.chain, true); !linked)
      return ApplyFailure{"AttachFailed", linked.error().message()};
    for (const ChainDecl* c : chains) {
      auto applied = inst.applied.find(c->name);
      result.push_back(PodChain{c->name, hook,
                                applied == inst.applied.end() ? 0 : applied->second.generation,
                                inst.chain.rootId(), ref.hostIfname});
    }
  }
  pods_->save(pod);
  if (loaded)
    refreshViews();
  return result;
}

void NodeReconciler::detachPod(const PodRef& ref) {
  std::lock_guard lock(mu_);
  if (auto it = pods_->all().find(attachmentKey(ref)); it != pods_->all().end())
    pods_->remove(it);
}

Result<void, ApplyFailure> NodeReconciler::checkPod(const PodRef& ref) {
  std::lock_guard lock(mu_);
  auto it = pods_->all().find(attachmentKey(ref));
  if (it == pods_->all().end())
    return ApplyFailure{"NotAttached", "container " + ref.containerId + " (" + ref.podIfname +
                                           " in network " + ref.network +
                                           ") has no chains attached"};
  const PodRecord& pod = it->second;
  for (const auto& [hook, chains] :
       podChains(spec_.chains, selectsPod_, pod.ref.ns, pod.ref.name)) {
    auto link = pod.links.find(hook);
    std::string where = std::string(dataplane::hookName(hook)) + " on " + pod.ref.hostIfname;
    if (link == pod.links.end() || instances_->find(link->second.instanceKey) == nullptr)
      return ApplyFailure{"NotAttached", where + ": the pod's chains are not attached"};
    auto attached =
        link->second.attachment ? link->second.attachment->attached() : Result<bool>(false);
    if (!attached || !*attached)
      return ApplyFailure{"NotAttached", where + ": the chain's root is no longer attached"};
  }
  return {};
}

std::vector<std::string>
NodeReconciler::collectPods(const std::string& network,
                            const std::set<std::pair<std::string, std::string>>& valid) {
  std::lock_guard lock(mu_);
  std::vector<std::string> removed;
  auto& pods = pods_->all();
  for (auto it = pods.begin(); it != pods.end();) {
    const PodRef& ref = it->second.ref;
    // Another network's attachments are that network's GC to judge.
    if (ref.network != network || valid.contains({ref.containerId, ref.podIfname})) {
      ++it;
      continue;
    }
    removed.push_back(ref.containerId);
    it = pods_->remove(it);
  }
  return removed;
}

bool NodeReconciler::applied() const {
  std::lock_guard lock(mu_);
  return applied_;
}

std::optional<Clock::time_point> NodeReconciler::nextRetry() const {
  std::lock_guard lock(mu_);
  std::optional<Clock::time_point> next;
  for (const auto& [name, retry] : retries_)
    if (!next || retry.notBefore < *next)
      next = retry.notBefore;
  for (const auto& [name, retry] : unavailable_)
    if (!next || retry.notBefore < *next)
      next = retry.notBefore;
  return next;
}

void NodeReconciler::detachAll() {
  std::lock_guard lock(mu_);
  auto& pods = pods_->all();
  for (auto it = pods.begin(); it != pods.end();)
    it = pods_->remove(it);
  std::vector<std::string> keys;
  for (const auto& [key, inst] : instances_->all())
    keys.push_back(key);
  for (const auto& key : keys)
    instances_->remove(key);
  refreshViews();
}
namespace {

std::string attachModeName(const std::optional<dataplane::Attachment>& attachment) {
  if (!attachment)
    return "not attached";
  bool xdp = attachment->hook() == dataplane::Hook::Xdp;
  if (attachment->mode() == dataplane::AttachMode::Link)
    return xdp ? "xdp link" : "tcx";
  return xdp ? "xdp netlink" : "cls_bpf";
}

} // namespace

std::vector<HookInspection> NodeReconciler::inspect() const {
  std::lock_guard lock(mu_);
  auto inspectInstance = [&](const Instance& inst) {
    HookInspection h;
    h.interface = inst.ifname.empty() ? inst.key : inst.ifname;
    h.hook = inst.hook;
    h.attachMode = attachModeName(inst.attachment);
    h.rootProgramId = inst.chain.rootId();
    std::string hook(dataplane::hookName(inst.hook));
    for (const auto& p : inst.chain.programs()) {
      ProgramInspection program;
      program.programId = p.programId;
      program.program = p.id;
      for (const auto& [chain, applied] : inst.applied)
        if (p.id.rfind(chainKey(chain) + "/", 0) == 0) {
          program.chain = chain;
          program.program = p.id.substr(chainKey(chain).size() + 1);
          program.generation = applied.generation;
        }
      if (auto stats = openStatsMap(inst.chain, p.id, p.dir)) {
        program.hasStats = true;
        program.verdicts = AgentMetrics::verdictCounts(stats->get(), hook);
      }
      h.programs.push_back(std::move(program));
    }
    return h;
  };
  std::vector<HookInspection> hooks;
  std::set<std::string> linked; // pods instances some pod is linked to
  for (const auto& [id, pod] : pods_->all())
    for (const auto& [hook, link] : pod.links)
      if (const Instance* inst = instances_->find(link.instanceKey)) {
        HookInspection h = inspectInstance(*inst);
        h.interface = pod.ref.hostIfname;
        h.pod = pod.ref.ns + "/" + pod.ref.name;
        h.attachMode = attachModeName(link.attachment);
        hooks.push_back(std::move(h));
        linked.insert(link.instanceKey);
      }
  for (const auto& [key, inst] : instances_->all())
    if (!isPodKey(key) || !linked.contains(key))
      hooks.push_back(inspectInstance(*inst));
  std::ranges::stable_sort(hooks, [](const HookInspection& a, const HookInspection& b) {
    return std::tie(a.interface, a.hook) < std::tie(b.interface, b.hook);
  });
  return hooks;
}

void NodeReconciler::refreshViews() {
  // Status asks the kernel itself; the metrics view only exports.
  monitorProblems_ = monitorProblems(instances_->all());
  if (metricsView_)
    metricsView_->publish(instances_->all());
}

} // namespace bpfchain::agent
