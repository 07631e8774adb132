#include "operator/controller.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "api/bpfchain.h"
#include "api/node_config_types.h"
#include "api/resources.h"
#include "k8s/label_selector.h"
#include "operator/finalizers.h"
#include "operator/history.h"
#include "system/log.h"
#include "system/time.h"

namespace bpfchain::op {
namespace {

using k8s::ApiError;
using k8s::ApiResult;
using k8s::Json;

const k8s::Resource& kChains = api::kBpfChains;
const k8s::Resource& kNodeConfigs = api::kBpfNodeConfigs;
const k8s::Resource& kRevisions = api::kControllerRevisions;
constexpr const char* kFinalizer = "bpfchain.io/cleanup";
constexpr const char* kStatusManager = "bpfchain-operator";
constexpr size_t kMaxChainName = 63; // the CRD's rule: it is a label value, part of a manager

// One line per node write, not per chain, so that a rollout to many nodes logs one line per
// node: the chains the write added, changed (another generation or revision) and removed, each
// as chain@generation.
void logNodeWrite(const std::string& node, const Json& before, const Json& after) {
  auto byName = [](const Json& list) {
    std::map<std::string, const Json*> out;
    if (list.is_array())
      for (const auto& e : list.as_array())
        out[api::chainEntryOf(e).name] = &e;
    return out;
  };
  auto was = byName(before);
  auto now = byName(after);
  // A membership entry has no generation: the chain's published rollout gives it.
  auto add = [](std::string& to, const std::string& chain, const Json* entry) {
    api::NodeChainEntry e = api::chainEntryOf(*entry);
    to += (to.empty() ? "" : ",") + chain +
          (e.kind == api::ChainEntryKind::Membership
               ? ""
               : "@" + std::to_string(e.generation.value_or(0)));
  };
  std::string added, changed, removed;
  for (const auto& [chain, entry] : now) {
    auto old = was.find(chain);
    if (old == was.end())
      add(added, chain, entry);
    else if (api::canonicalJson(*old->second) != api::canonicalJson(*entry))
      add(changed, chain, entry);
  }
  for (const auto& [chain, entry] : was)
    if (!now.contains(chain))
      add(removed, chain, entry);
  std::vector<log::Field> fields{{"node", node}};
  if (!added.empty())
    fields.emplace_back("added", added);
  if (!changed.empty())
    fields.emplace_back("changed", changed);
  if (!removed.empty())
    fields.emplace_back("removed", removed);
  log::write(log::Level::Info, "wrote node config", fields);
}

// A node's entries as the operator writes them: in name order, so that the same set is the
// same list.
Json entriesJson(const std::map<std::string, Json>& entries) {
  Json list = Json::array();
  size_t i = 0;
  for (const auto& item : entries)
    list[i++] = item.second;
  return list;
}

RolloutPolicy policyOf(const api::RolloutSpec& rollout, int matched,
                       std::chrono::seconds progressDeadline, std::chrono::seconds agentStale) {
  RolloutPolicy p;
  p.progressDeadline = progressDeadline;
  p.agentStale = agentStale;
  if (rollout.maxUnavailable)
    p.maxUnavailable = resolveMaxUnavailable(*rollout.maxUnavailable, matched);
  if (rollout.canaryNodes)
    p.canaryNodes = *rollout.canaryNodes;
  if (rollout.pauseSeconds)
    p.pauseSeconds = *rollout.pauseSeconds;
  p.failurePolicy = rollout.failurePolicy == api::FailurePolicy::Continue ? FailurePolicy::Continue
                    : rollout.failurePolicy == api::FailurePolicy::Rollback
                        ? FailurePolicy::Rollback
                        : FailurePolicy::Halt;
  return p;
}

RolloutMemory memoryOf(const api::BpfChainStatus& status, const std::string& chain) {
  RolloutMemory m;
  const api::RolloutStatus& r = status.rollout;
  m.generation = r.generation;
  m.canaryReadyAt = r.canaryReadyTime;
  m.stableGeneration = r.stableGeneration;
  m.rolledBack = r.rolledBack;
  m.published = status.published;
  if (!status.publishedError.empty()) // only this operator writes it: start from nothing
    log::warning("status.published ignored", {{"chain", chain}, {"error", status.publishedError}});
  m.waitingSince = r.waitingSince;
  m.finished = r.finishedNodes;
  m.staleNodes = r.staleNodes;
  std::sort(m.staleNodes.begin(), m.staleNodes.end());
  m.failedNodes = r.failedNodes;
  std::sort(m.failedNodes.begin(), m.failedNodes.end());
  // A rolled-back generation's failures are kept in status.failures until a new one comes.
  if (m.rolledBack)
    for (const auto& f : status.failures)
      m.rolledBackFailures.push_back({f.node, f.reason, f.message});
  return m;
}

RolloutMemory memoryOf(const api::BpfChain& chain) {
  return memoryOf(chain.status, chain.metadata.name);
}

api::Condition condition(const api::BpfChainStatus& previous, const std::string& type, bool status,
                         const std::string& reason, const std::string& message,
                         int64_t generation) {
  std::string value = status ? "True" : "False";
  std::string since = rfc3339(Clock::now());
  // The transition time moves only when the status flips (API conventions).
  if (const api::Condition* c = previous.condition(type); c && c->status == value)
    since = c->lastTransitionTime;
  return {type, value, reason, message, generation, since};
}

// A status without its conditions' lastTransitionTime, for comparisons: a transition time
// that differs (a second's churn, or a cache that lags) is no reason to write.
api::BpfChainStatus withoutTransitionTimes(api::BpfChainStatus status) {
  for (auto& c : status.conditions)
    c.lastTransitionTime.clear();
  return status;
}

// A status without what changes with every node's report: the counts, the messages that quote
// them, and the progress deadline's bookkeeping. Two statuses equal here differ in nothing an
// agent follows or a condition's state says.
api::BpfChainStatus withoutCounts(api::BpfChainStatus status) {
  status = withoutTransitionTimes(std::move(status));
  status.nodes = {};
  status.rollout.finishedNodes = 0;
  status.rollout.waitingSince.reset();
  for (auto& c : status.conditions)
    c.message.clear();
  return status;
}

// Whether two statuses write the same: compared in the form statusToJson writes (the one
// place that says what is written of a status: at most ten failures, times to the second), so
// the cache's copy and ours compare as the server has them. A status whose status.published
// was ignored is never the same: the next write repairs it.
bool writesSame(const api::BpfChainStatus& a, const api::BpfChainStatus& b) {
  return a.publishedError.empty() && b.publishedError.empty() &&
         api::statusToJson(a) == api::statusToJson(b);
}

// "a, b, c, d, e and 995 more": log lines stay short with 1,000 nodes.
std::string describeNodes(const std::vector<std::string>& nodes) {
  constexpr size_t kShown = 5;
  std::string out;
  for (size_t i = 0; i < nodes.size() && i < kShown; ++i)
    out += (out.empty() ? "" : ",") + nodes[i];
  if (nodes.size() > kShown)
    out += " and " + std::to_string(nodes.size() - kShown) + " more";
  return out;
}

// A ControllerRevision's metadata: labelled with the chain's name, owned by the chain object.
// (Revisions are written as JSON: their `data` is the chain's spec exactly as the API server
// returned it, which is what a node's reference digests.)
Json revisionMetadata(const std::string& name, const std::string& ns, const std::string& chain,
                      const std::string& uid) {
  Json metadata = Json::object();
  metadata["name"] = Json::string(name);
  metadata["namespace"] = Json::string(ns);
  metadata["labels"][api::kChainLabel] = Json::string(chain);
  Json& owner = metadata["ownerReferences"][0];
  owner["apiVersion"] = Json::string(kChains.apiVersion());
  owner["kind"] = Json::string(kChains.kind);
  owner["name"] = Json::string(chain);
  owner["uid"] = Json::string(uid);
  owner["controller"] = Json::boolean(true);
  return metadata;
}

// Status: what the decision counts and remembers (conditions and phase aside).
api::BpfChainStatus countsAndMemory(const api::BpfChain& chain, const RolloutDecision& d) {
  api::BpfChainStatus status;
  status.observedGeneration = chain.metadata.generation;
  status.nodes = {d.matched, d.updated, d.ready, d.failed, d.stale, d.idle};
  status.programs = chain.spec.enabledPrograms;
  for (const auto& f : d.failures)
    status.failures.push_back({f.node, f.reason, f.message});
  api::RolloutStatus& r = status.rollout;
  r.generation = d.memory.generation;
  r.canaryReadyTime = d.memory.canaryReadyAt;
  r.stableGeneration = d.memory.stableGeneration;
  r.rolledBack = d.memory.rolledBack;
  r.waitingSince = d.memory.waitingSince;
  r.finishedNodes = d.memory.finished;
  r.staleNodes = d.memory.staleNodes;
  r.failedNodes = d.memory.failedNodes;
  status.published = d.memory.published;
  return status;
}

// The Ready condition's message: how many nodes run what.
std::string readyMessage(const RolloutDecision& d, int64_t generation,
                         std::chrono::seconds agentStaleAfter) {
  std::string ready = std::to_string(d.ready) + "/" + std::to_string(d.matched);
  if (d.memory.rolledBack)
    return d.memory.stableGeneration
               ? ready + " nodes run generation " + std::to_string(*d.memory.stableGeneration) +
                     " Ready (generation " + std::to_string(generation) + " was rolled back)"
               : "generation " + std::to_string(generation) +
                     " was rolled back and no earlier generation was Ready everywhere: "
                     "the chain was removed from its nodes";
  std::string message = ready + " nodes ready";
  if (d.idle > 0)
    message += ", " + std::to_string(d.idle) + " with nothing to attach to (Idle)";
  if (d.stale > 0)
    message += "; not counted: " + describeStale(d.memory.staleNodes) + " (no heartbeat for " +
               std::to_string(agentStaleAfter.count()) + " s)";
  return message;
}

// The Progressing condition's reason and message.
std::pair<std::string, std::string> progress(const RolloutDecision& d, int64_t generation,
                                             std::chrono::seconds progressDeadline) {
  std::string haltReason = d.memory.rolledBack ? "RolledBack" : "Halted";
  std::string reason =
      d.complete ? "RolloutComplete"
                 : (d.halted ? haltReason
                             : (d.overdue.empty() ? "RollingOut" : "ProgressDeadlineExceeded"));
  std::string message = d.complete ? "" : "waiting for " + d.waitingFor;
  if (!d.overdue.empty() && !d.complete && !d.halted) {
    std::string nodes;
    for (const auto& n : d.overdue)
      nodes += (nodes.empty() ? "" : ", ") + n;
    message = "no report of generation " + std::to_string(generation) + " within " +
              std::to_string(progressDeadline.count()) + " s from node(s): " + nodes +
              " (is their agent running?); " + message;
  }
  return {reason, message};
}

// The entry of `key` in `map`, or map.end(), moving `from` forward: for keys asked in
// ascending order, one walk over the map instead of a search per key.
template <typename Map>
typename Map::const_iterator seek(const Map& map, typename Map::const_iterator& from,
                                  const std::string& key) {
  while (from != map.end() && from->first < key)
    ++from;
  return from != map.end() && from->first == key ? from : map.end();
}

// Whether a BpfChain changed in its status only: nothing a user decides (spec, deletion,
// finalizers, the object itself) is different.
bool statusOnly(const api::ObjectMeta& old, const api::ObjectMeta& now) {
  return old.generation == now.generation && old.uid == now.uid && old.deleting == now.deleting &&
         old.deletionTimestamp == now.deletionTimestamp && old.finalizers == now.finalizers;
}

} // namespace

Controller::Controller(k8s::Client& client, ControllerOptions options)
    : client_(client), options_(std::move(options)),
      chains_(client, kChains, {.stripManagedFields = true}),
      nodes_(client, k8s::resources::kNodes, {.stripManagedFields = true}),
      nodeConfigs_(client, kNodeConfigs, {.stripManagedFields = true}),
      events_(client, {.component = "bpfchain-operator", .host = options_.eventHost}),
      queue_(k8s::WorkQueueOptions{.metrics =
                                       options_.metrics ? options_.metrics->workQueue() : nullptr}),
      loop_(queue_, options_.metrics) {
  loop_.add(chainReconciler_);
  loop_.add(nodeReconciler_);
  watchChains();
  watchNodes();
  watchNodeConfigs();
}

void Controller::watchChains() {
  chains_.addEventHandler({
      .onAdd =
          [this](const Json& o) {
            {
              std::lock_guard lock(indexMu_);
              chainNames_.insert(k8s::nameOf(o));
            }
            queue_.add("chain/" + k8s::nameOf(o));
          },
      .onUpdate =
          [this](const Json& old, const Json& now) {
            // A change of status alone (ours, coming back; or an agent's report summed up)
            // waits for the coalescing window with the agents' reports; the user's changes
            // are reconciled at once.
            if (statusOnly(api::objectMetaOf(old), api::objectMetaOf(now)))
              queueChainSoon(k8s::nameOf(now));
            else
              queue_.add("chain/" + k8s::nameOf(now));
          },
      .onDelete =
          [this](const Json& o) {
            {
              std::lock_guard lock(indexMu_);
              chainNames_.erase(k8s::nameOf(o));
              awaited_.erase(k8s::nameOf(o));
            }
            queue_.add("chain/" + k8s::nameOf(o));
          },
  });
}

void Controller::watchNodes() {
  nodes_.addEventHandler({
      .onAdd =
          [this](const Json& o) {
            {
              std::lock_guard lock(indexMu_);
              nodeLabels_[k8s::nameOf(o)] = k8s::labelsOf(o);
            }
            queue_.add("node/" + k8s::nameOf(o));
            enqueueAllChains();
          },
      .onUpdate =
          [this](const Json&, const Json& now) {
            // Nodes change often (status heartbeats); only their labels matter here.
            auto labels = k8s::labelsOf(now);
            {
              std::lock_guard lock(indexMu_);
              auto& known = nodeLabels_[k8s::nameOf(now)];
              if (known == labels)
                return;
              known = std::move(labels);
            }
            enqueueAllChains();
          },
      .onDelete =
          [this](const Json& o) {
            {
              std::lock_guard lock(indexMu_);
              nodeLabels_.erase(k8s::nameOf(o));
            }
            queue_.add("node/" + k8s::nameOf(o));
            enqueueAllChains();
          },
  });
}

void Controller::watchNodeConfigs() {
  nodeConfigs_.addEventHandler({
      // A new one's node is reconciled too, as on a deletion: a BpfNodeConfig the cache shows
      // only after its Node was deleted (the Node's reconcile found nothing to delete), or left
      // over from while the operator was down, is deleted then.
      .onAdd =
          [this](const Json& o) {
            queue_.add("node/" + k8s::nameOf(o));
            onNodeConfig(&o, k8s::nameOf(o));
          },
      .onUpdate = [this](const Json&, const Json& now) { onNodeConfig(&now, k8s::nameOf(now)); },
      .onDelete =
          [this](const Json& o) {
            queue_.add("node/" + k8s::nameOf(o));
            onNodeConfig(nullptr, k8s::nameOf(o));
          },
  });
}

Controller::~Controller() {
  stop();
}

Controller::NodeConfigIndex Controller::indexOf(const Json& nodeConfig) {
  NodeConfigIndex index;
  if (const Json* list = api::chainListOf(nodeConfig, "spec")) {
    for (const auto& item : list->as_array()) {
      api::NodeChainEntry given = api::chainEntryOf(item);
      auto& entry = index[std::move(given.name)];
      entry.inSpec = true;
      entry.membership = given.kind == api::ChainEntryKind::Membership;
      entry.assigned = given.generation;
      entry.reference = given.kind == api::ChainEntryKind::Reference;
      entry.revision = std::move(given.revision);
    }
  }
  if (const Json* list = api::chainListOf(nodeConfig, "status"))
    for (const auto& item : list->as_array()) {
      api::NodeChainReport reported = api::chainReportOf(item);
      auto& entry = index[std::move(reported.name)];
      entry.inStatus = true;
      entry.reported = reported.generation;
      entry.phase = std::move(reported.phase);
      entry.reason = std::move(reported.reason);
      entry.message = std::move(reported.message);
    }
  return index;
}

// Indexes the config (nullptr: deleted) and queues the chains whose entries changed in it.
void Controller::onNodeConfig(const Json* now, const std::string& name) {
  NodeConfigIndex index = now ? indexOf(*now) : NodeConfigIndex{};
  std::vector<std::string> changed;
  std::set<std::string> finished; // chains whose last awaited report this is: queued at once
  {
    std::lock_guard lock(indexMu_);
    NodeConfigIndex& known = configs_[name];
    for (const auto& [chain, entry] : known) {
      auto it = index.find(chain);
      if (it == index.end() || !(it->second == entry))
        changed.push_back(chain);
    }
    for (const auto& [chain, entry] : index)
      if (!known.contains(chain))
        changed.push_back(chain);
    for (const auto& chain : changed)
      if (auto it = index.find(chain);
          it != index.end() && finishesRollout(chain, name, it->second))
        finished.insert(chain);
    if (now) {
      known = std::move(index);
      configRevisions_[name] = k8s::revisionOf(k8s::resourceVersionOf(*now)).value_or(0);
    } else {
      configs_.erase(name);
      configRevisions_.erase(name);
    }
  }
  for (const auto& chain : changed)
    if (now && !finished.contains(chain))
      queueChainSoon(chain);
    else
      queue_.add("chain/" + chain);
  onHeartbeat(now, name);
}

bool Controller::finishesRollout(const std::string& chain, const std::string& node,
                                 const ChainOnNode& reported) {
  auto awaited = awaited_.find(chain);
  if (awaited == awaited_.end())
    return false;
  auto waiting = awaited->second.find(node);
  if (waiting == awaited->second.end() ||
      !reportAwaited(waiting->second, reported.reported, reported.phase))
    return false;
  awaited->second.erase(waiting);
  return awaited->second.empty();
}

// A heartbeat alone queues no chain (1,000 agents write one a minute each), except the first
// after the agent was stale, or its first ever: the chains on that node count it Ready again.
void Controller::onHeartbeat(const Json* now, const std::string& name) {
  std::optional<Clock::time_point> beat =
      now ? parseRfc3339(api::heartbeatTimeOf(*now)) : std::nullopt;
  std::vector<std::string> chains;
  {
    std::lock_guard lock(indexMu_);
    auto& known = heartbeats_[name];
    if (beat && (!known || agentStale(known, options_.agentStale, Clock::now())))
      if (auto config = configs_.find(name); config != configs_.end())
        for (const auto& entry : config->second)
          chains.push_back(entry.first);
    known = beat;
    if (!now)
      heartbeats_.erase(name);
  }
  for (const auto& chain : chains)
    queue_.add("chain/" + chain);
}

Result<void> Controller::start(std::chrono::seconds syncTimeout, const std::stop_token& stop) {
  chains_.start();
  nodes_.start();
  nodeConfigs_.start();
  auto deadline = std::chrono::steady_clock::now() + syncTimeout;
  while (readiness()) {
    if (stop.stop_requested())
      return invalidError("stopped before the informer caches synced");
    if (std::chrono::steady_clock::now() >= deadline) {
      std::string why = *readiness();
      for (k8s::Informer* informer : {&chains_, &nodes_, &nodeConfigs_})
        if (!informer->hasSynced() && !informer->stats().lastError.empty())
          why += "; " + informer->stats().lastError;
      return invalidError("informer caches did not sync within " +
                          std::to_string(syncTimeout.count()) + " s: " + why);
    }
    for (k8s::Informer* informer : {&chains_, &nodes_, &nodeConfigs_})
      if (!informer->hasSynced()) {
        informer->waitForSync(std::chrono::milliseconds(100)); // a synced one returns at once
        break;
      }
  }
  loop_.start(options_.writeConcurrency);
  return {};
}

void Controller::stop() {
  stopping_ = true;
  loop_.stop(); // shuts the queue down
  chains_.stop();
  nodes_.stop();
  nodeConfigs_.stop();
}

std::optional<std::string> Controller::readiness() const {
  std::string waiting;
  for (const auto& [informer, name] :
       {std::pair{&chains_, "bpfchains"}, std::pair{&nodes_, "nodes"},
        std::pair{&nodeConfigs_, "bpfnodeconfigs"}})
    if (!informer->hasSynced())
      waiting += (waiting.empty() ? "" : ", ") + std::string(name);
  if (waiting.empty())
    return std::nullopt;
  return "informer caches not synced: " + waiting;
}

void Controller::queueChainSoon(const std::string& chain) {
  if (options_.statusCoalesce.count() <= 0)
    queue_.add("chain/" + chain);
  else
    queue_.addAfter("chain/" + chain, options_.statusCoalesce);
}

void Controller::enqueueAllChains() {
  std::vector<std::string> names;
  {
    std::lock_guard lock(indexMu_);
    names.assign(chainNames_.begin(), chainNames_.end());
  }
  for (const auto& name : names)
    queue_.add("chain/" + name);
}

ApiResult<Outcome> Controller::ChainReconciler::reconcile(const std::string& name) {
  std::lock_guard lock(c_.chainMu_); // chain reconciles run one at a time
  return c_.reconcileChain(name);
}

ApiResult<Outcome> Controller::NodeReconciler::reconcile(const std::string& name) {
  return c_.reconcileNode(name);
}

ApiResult<void> Controller::deleteNodeConfig(const std::string& name, bool exists) {
  {
    std::lock_guard lock(indexMu_);
    pending_.erase(name);
  }
  if (!exists)
    return {};
  // No garbage collector follows owner references in every cluster (nor in the test bed).
  auto removed = client_.remove(kNodeConfigs, "", name);
  if (!removed && !removed.error().notFound())
    return std::move(removed).error();
  log::info("deleted BpfNodeConfig: the Node is gone", {{"node", name}});
  return {};
}

Json Controller::desiredEntries(const std::string& name, const std::optional<Json>& cached,
                                std::map<std::string, uint64_t>& carried) {
  std::map<std::string, Json> entries;
  if (const Json* list = cached ? api::chainListOf(*cached, "spec") : nullptr)
    for (const auto& e : list->as_array())
      entries[api::chainEntryOf(e).name] = e;
  std::lock_guard lock(indexMu_);
  bool chainsKnown = chains_.hasSynced();
  for (auto it = entries.begin(); it != entries.end();)
    if (chainsKnown && !chainNames_.contains(it->first))
      it = entries.erase(it);
    else
      ++it;
  if (auto forNode = pending_.find(name); forNode != pending_.end())
    for (const auto& [chain, p] : forNode->second) {
      if (p.writtenRevision != 0 && configRevisions_[name] >= p.writtenRevision)
        continue; // the cache shows it
      if (p.want)
        entries[chain] = *p.want;
      else
        entries.erase(chain);
      carried[chain] = p.seq;
    }
  return entriesJson(entries);
}

ApiResult<int64_t> Controller::writeNodeConfig(const std::string& name,
                                               const std::optional<Json>& cached,
                                               const Json& desired) {
  if (!cached) {
    Json config = Json::parse(R"({"apiVersion":"bpfchain.io/v1alpha1","kind":"BpfNodeConfig",
                                  "metadata":{},"spec":{}})");
    config["metadata"]["name"] = Json::string(name);
    config["spec"]["chains"] = desired;
    auto created = client_.create(kNodeConfigs, config, {.fieldManager = kStatusManager});
    if (!created)
      return std::move(created).error(); // AlreadyExists too: the cache catches up, then retry
    logNodeWrite(name, Json::array(), desired);
    return k8s::revisionOf(k8s::resourceVersionOf(*created)).value_or(0);
  }
  const Json* list = api::chainListOf(*cached, "spec");
  Json observed = list ? *list : Json::array();
  if (api::canonicalJson(desired) == api::canonicalJson(observed))
    return int64_t{0};
  // One writer of spec.chains (the leader), so a merge patch that replaces the list is safe,
  // and unlike an update it does not conflict with the agent's status writes.
  Json patch = Json::object();
  patch["spec"]["chains"] = desired;
  auto patched = client_.patch(kNodeConfigs, "", name, k8s::PatchType::Merge, patch,
                               {.fieldManager = kStatusManager});
  if (!patched)
    return std::move(patched).error();
  if (options_.metrics)
    options_.metrics->nodeConfigWritten();
  logNodeWrite(name, observed, desired);
  return k8s::revisionOf(k8s::resourceVersionOf(*patched)).value_or(0);
}

void Controller::settlePending(const std::string& name,
                               const std::map<std::string, uint64_t>& carried, int64_t written) {
  std::lock_guard lock(indexMu_);
  auto forNode = pending_.find(name);
  if (forNode == pending_.end())
    return;
  for (const auto& [chain, seq] : carried) {
    auto it = forNode->second.find(chain);
    if (it == forNode->second.end() || it->second.seq != seq)
      continue;       // decided again meanwhile: the next write carries that
    if (written == 0) // the cache showed it already, or a resourceVersion that is no number
      forNode->second.erase(it);
    else
      it->second.writtenRevision = written;
  }
  if (forNode->second.empty())
    pending_.erase(forNode);
}

ApiResult<Outcome> Controller::reconcileNode(const std::string& name) {
  bool nodeExists = false;
  {
    std::lock_guard lock(indexMu_);
    nodeExists = nodeLabels_.contains(name);
  }
  std::optional<Json> cached = nodeConfigs_.get(name);
  if (!nodeExists) {
    if (auto r = deleteNodeConfig(name, cached.has_value()); !r)
      return std::move(r).error();
    return Outcome{};
  }
  std::map<std::string, uint64_t> carried; // chain -> seq of the decision this write carries
  Json desired = desiredEntries(name, cached, carried);
  auto written = writeNodeConfig(name, cached, desired);
  if (!written)
    return std::move(written).error();
  settlePending(name, carried, *written);
  return Outcome{};
}

void Controller::decide(const std::string& node, const std::string& chain,
                        std::optional<Json> want) {
  {
    std::lock_guard lock(indexMu_);
    pending_[node][chain] = Pending{std::move(want), ++pendingSeq_, 0};
  }
  queue_.add("node/" + node);
}

const Controller::Pending* Controller::pendingFor(const std::string& chain,
                                                  const std::string& node) {
  auto forNode = pending_.find(node);
  if (forNode == pending_.end())
    return nullptr;
  auto it = forNode->second.find(chain);
  if (it == forNode->second.end())
    return nullptr;
  auto known = configRevisions_.find(node);
  if (it->second.writtenRevision != 0 && known != configRevisions_.end() &&
      known->second >= it->second.writtenRevision) {
    forNode->second.erase(it); // the index shows our write, or something newer
    if (forNode->second.empty())
      pending_.erase(forNode);
    return nullptr;
  }
  return &it->second;
}

void Controller::releaseEverywhere(const std::string& chain, const std::set<std::string>& keep) {
  std::vector<std::string> release;
  {
    std::lock_guard lock(indexMu_);
    std::set<std::string> nodes;
    for (const auto& [node, chains] : configs_)
      if (auto it = chains.find(chain); it != chains.end() && it->second.inSpec)
        nodes.insert(node);
    for (const auto& [node, chains] : pending_)
      if (chains.contains(chain))
        nodes.insert(node);
    for (const auto& node : nodes) {
      if (keep.contains(node))
        continue;
      if (const Pending* p = pendingFor(chain, node)) {
        if (!p->want)
          continue; // released already; the watch has not told us yet
      } else if (auto config = configs_.find(node); config == configs_.end() ||
                                                    !config->second.contains(chain) ||
                                                    !config->second.at(chain).inSpec) {
        continue;
      }
      release.push_back(node);
    }
  }
  for (const auto& node : release)
    decide(node, chain, std::nullopt);
}

ApiResult<void> Controller::ensureRevision(const api::BpfChain& chain) {
  const std::string& chainName = chain.metadata.name;
  const std::string& uid = chain.metadata.uid;
  std::string name = revisionName(chainName, uid, chain.metadata.generation);
  if (revisions_.contains(name))
    return {};
  Json revision = Json::object();
  revision["apiVersion"] = Json::string("apps/v1");
  revision["kind"] = Json::string("ControllerRevision");
  revision["metadata"] = revisionMetadata(name, options_.revisionNamespace, chainName, uid);
  revision["revision"] = Json::number(chain.metadata.generation);
  revision["data"] = chain.spec.raw;
  auto created = client_.create(kRevisions, revision);
  if (!created && !created.error().alreadyExists())
    return std::move(created).error();
  if (!created) { // ours from an earlier run, or (by a UID prefix clash) another object's
    auto existing = client_.get(kRevisions, options_.revisionNamespace, name);
    if (!existing)
      return std::move(existing).error();
    if (k8s::controllerUidOf(*existing) != uid) {
      auto removed = client_.remove(kRevisions, options_.revisionNamespace, name);
      if (!removed && !removed.error().notFound())
        return std::move(removed).error();
      return ApiError{0, "RevisionConflict",
                      "ControllerRevision " + name + " belonged to another object; deleted"};
    }
  }
  revisions_.insert(name);
  return {};
}

ApiResult<Json> Controller::specAt(const api::BpfChain& chain, int64_t generation) {
  if (generation == chain.metadata.generation)
    return chain.spec.raw;
  // A revision never changes: read it once, not once per node of a rollback.
  const std::string& uid = chain.metadata.uid;
  std::string name = revisionName(chain.metadata.name, uid, generation);
  if (auto it = revisionSpecs_.find(name); it != revisionSpecs_.end())
    return it->second;
  auto got = client_.get(kRevisions, options_.revisionNamespace, name);
  if (!got)
    return std::move(got).error();
  // Only this object's own revision of that generation may be restored.
  auto revision = api::chainRevisionFromJson(*got);
  if (!revision || revision->ownerUid != uid || revision->generation != generation)
    return ApiError{0, "RevisionNotOwned",
                    "ControllerRevision " + name + " is not generation " +
                        std::to_string(generation) + " of this BpfChain (uid " + uid + ")" +
                        (revision ? "" : ": " + revision.error().message())};
  revisionSpecs_[name] = revision->spec;
  return std::move(revision->spec);
}

ApiResult<api::ChainRef> Controller::refAt(const api::BpfChain& chain, int64_t generation) {
  auto spec = specAt(chain, generation);
  if (!spec)
    return std::move(spec).error();
  api::ChainRef ref;
  ref.name = chain.metadata.name;
  ref.generation = generation;
  ref.revision = revisionName(ref.name, chain.metadata.uid, generation);
  ref.digest = api::specDigest(*spec);
  if (auto priority = api::priorityOf(*spec))
    ref.priority = *priority;
  return ref;
}

ApiResult<void> Controller::pruneRevisions(const api::BpfChain& chain,
                                           const std::set<int64_t>& keep) {
  const std::string& name = chain.metadata.name;
  std::string uid = keep.empty() ? "" : chain.metadata.uid;
  if (auto it = pruned_.find(name); it != pruned_.end() && it->second == std::pair{uid, keep})
    return {};
  auto listed = client_.list(kRevisions, options_.revisionNamespace,
                             {.labelSelector = std::string(api::kChainLabel) + "=" + name});
  if (!listed)
    return std::move(listed).error();
  std::vector<RevisionRef> refs;
  std::map<std::string, const Json*> byName;
  auto createdAt = [](const api::ObjectMeta& meta) {
    const auto& t = meta.creationTimestamp;
    return t ? std::chrono::duration_cast<std::chrono::seconds>(t->time_since_epoch()).count()
             : int64_t{0};
  };
  for (const auto& r : listed->items) {
    // One this operator cannot read (no revision number or data: not one it made) is still
    // its chain's by the label, and goes as generation 0 unless adopted or kept.
    auto revision = api::chainRevisionFromJson(r);
    api::ObjectMeta meta = api::objectMetaOf(r);
    std::string chainOf = revision ? revision->chain : k8s::labelsOf(r)[api::kChainLabel];
    if (chainOf != name)
      continue;
    refs.push_back({meta.name, revision ? revision->ownerUid : k8s::controllerUidOf(r),
                    revision ? revision->generation : 0, createdAt(meta)});
    byName[refs.back().name] = &r;
  }
  // Revisions an operator before owner references made for this very object: copied under
  // the new name, with the owner, before the old ones go.
  for (const auto& old : revisionsToAdopt(refs, createdAt(chain.metadata), keep)) {
    Json copy = *byName.at(old.name);
    std::string adopted = revisionName(name, uid, old.generation);
    copy["metadata"] = revisionMetadata(adopted, options_.revisionNamespace, name, uid);
    auto created = client_.create(kRevisions, copy);
    if (!created && !created.error().alreadyExists())
      return std::move(created).error();
    log::info("adopted ControllerRevision",
              {{"chain", name}, {"revision", old.name}, {"as", adopted}});
  }
  for (const auto& doomed : revisionsToPrune(refs, uid, keep)) {
    auto removed = client_.remove(kRevisions, options_.revisionNamespace, doomed);
    if (!removed && !removed.error().notFound())
      return std::move(removed).error();
    revisions_.erase(doomed);
    revisionSpecs_.erase(doomed);
    log::info("deleted ControllerRevision", {{"chain", name}, {"revision", doomed}});
  }
  pruned_[name] = {uid, keep};
  return {};
}

void Controller::event(const api::BpfChain& chain, k8s::EventType type, const std::string& reason,
                       const std::string& message) {
  const std::string& name = chain.metadata.name;
  log::write(type == k8s::EventType::Warning ? log::Level::Warning : log::Level::Info, "event",
             {{"chain", name}, {"reason", reason}, {"message", message}});
  Json ref = Json::object();
  ref["apiVersion"] = Json::string(kChains.apiVersion());
  ref["kind"] = Json::string(kChains.kind);
  ref["metadata"]["name"] = Json::string(name);
  if (!chain.metadata.uid.empty())
    ref["metadata"]["uid"] = Json::string(chain.metadata.uid);
  // An event is worth a try, not a retry: the status says the same.
  if (auto recorded = events_.record(ref, type, reason, message); !recorded)
    log::warning("cannot record an event",
                 {{"chain", name}, {"reason", reason}, {"error", recorded.error().describe()}});
}

ApiResult<Outcome> Controller::finalize(const api::BpfChain& chain, const Json& object) {
  const std::string& name = chain.metadata.name;
  releaseEverywhere(name, {});
  std::vector<std::string> waiting;
  {
    std::lock_guard lock(indexMu_);
    for (const auto& [node, chains] : configs_)
      if (auto it = chains.find(name); it != chains.end() && it->second.inStatus)
        waiting.push_back(node);
  }
  const auto& deleted = chain.metadata.deletionTimestamp;
  bool overdue = deleted && Clock::now() > *deleted + options_.cleanupDeadline;
  if (!waiting.empty() && !overdue)
    return Outcome{std::chrono::seconds(1)};
  // No garbage collector is assumed to follow the owner references: the revisions go now.
  if (auto r = pruneRevisions(chain, {}); !r)
    return std::move(r).error();
  if (!waiting.empty()) {
    RolloutDecision none;
    none.memory.published = memoryOf(chain).published;
    std::string nodes;
    for (const auto& n : waiting)
      nodes += (nodes.empty() ? "" : ", ") + n;
    std::string problem = "CleanupTimedOut: agents did not confirm removal within " +
                          std::to_string(options_.cleanupDeadline.count()) + " s: " + nodes;
    (void)writeStatus(chain, none, {"CleanupTimedOut", problem});
    event(chain, k8s::EventType::Warning, "CleanupDeadlineExceeded",
          "agents did not confirm removal within " +
              std::to_string(options_.cleanupDeadline.count()) + " s on " +
              std::to_string(waiting.size()) + " node(s): " + nodes +
              "; removing the finalizer anyway");
  }
  // Remove our finalizer only, against the version we read.
  auto patched = client_.patch(kChains, "", name, k8s::PatchType::Merge,
                               removeFinalizerPatch(object, kFinalizer));
  if (!patched && !patched.error().notFound())
    return std::move(patched).error();
  return Outcome{};
}

void Controller::forgetChain(const std::string& name) {
  written_.erase(name);
  for (auto it = revisionSpecs_.lower_bound(name + "-");
       it != revisionSpecs_.end() && it->first.starts_with(name + "-");)
    it = revisionSpecs_.erase(it);
  for (auto it = revisions_.lower_bound(name + "-");
       it != revisions_.end() && it->starts_with(name + "-");)
    it = revisions_.erase(it);
  pruned_.erase(name);
  if (options_.metrics)
    options_.metrics->forgetChain(name);
  // Gone without our finalizer (removed by hand): release what is left on the nodes.
  releaseEverywhere(name, {});
}

ApiResult<Outcome> Controller::refuseName(const api::BpfChain& chain) {
  // Admission refuses these (the CRD's rule); one created before that rule gets a terminal
  // status, once, instead of a reconcile that fails forever without saying why.
  const std::string& name = chain.metadata.name;
  RolloutDecision refused;
  refused.memory.published = memoryOf(chain).published; // what nodes follow stays
  refused.halted = true;
  refused.waitingFor = "a shorter name";
  std::string message = "NameTooLong: a BpfChain's name must be at most " +
                        std::to_string(kMaxChainName) + " characters (this one has " +
                        std::to_string(name.size()) + "); create it under a shorter name";
  (void)writeStatus(chain, refused, {"NameTooLong", message});
  return Outcome{.terminal = message};
}

ApiResult<Outcome> Controller::refuseSpec(const api::BpfChain& chain, const std::string& error) {
  // Admission refuses what it can; what is left is a terminal error: said once in status,
  // not retried (a new generation is needed).
  RolloutDecision refused;
  refused.memory = memoryOf(chain); // what nodes follow stays
  refused.halted = true;
  refused.waitingFor =
      error.starts_with("spec.nodeSelector") ? "a valid spec.nodeSelector" : "a valid spec";
  log::error("chain not rolled out: invalid spec",
             {{"chain", chain.metadata.name}, {"reason", "SpecInvalid"}, {"error", error}});
  if (auto r = writeStatus(chain, refused, {"SpecInvalid", "SpecInvalid: " + error}); !r)
    return std::move(r).error();
  return Outcome{.terminal = "SpecInvalid: " + error};
}

ApiResult<Outcome> Controller::reconcileChain(const std::string& name) {
  auto cached = chains_.get(name);
  if (!cached) {
    forgetChain(name);
    return Outcome{};
  }
  // Parsed once; what follows reads the typed object. One whose spec does not parse is read
  // as far as it can be (metadata, status) for the finalizer and the refusal.
  auto typed = api::bpfChainFromJson(*cached);
  const api::BpfChain chain = typed ? std::move(*typed) : api::bpfChainUncheckedFromJson(*cached);
  if (chain.metadata.deleting)
    return chain.metadata.hasFinalizer(kFinalizer) ? finalize(chain, *cached) : Outcome{};
  if (!chain.metadata.hasFinalizer(kFinalizer)) {
    auto patched = client_.patch(kChains, "", name, k8s::PatchType::Merge,
                                 addFinalizerPatch(*cached, kFinalizer));
    if (!patched)
      return std::move(patched).error();
    return Outcome{}; // the update comes back through the informer
  }
  if (auto it = written_.find(name); it != written_.end() && it->second.uid != chain.metadata.uid) {
    written_.erase(it); // an earlier object of this name: nothing of it applies
  }
  if (name.size() > kMaxChainName)
    return refuseName(chain);
  if (!typed) // admission refuses these; one that got past it is SpecInvalid, terminal
    return refuseSpec(chain, typed.error().message());
  if (auto r = ensureRevision(chain); !r)
    return std::move(r).error();
  auto selector = k8s::LabelSelector::parse(chain.spec.nodeSelector, "spec.nodeSelector");
  if (!selector)
    return refuseSpec(chain, selector.error().message());
  return rollOut(chain, *selector);
}

RolloutMemory Controller::memoryToStart(const api::BpfChain& chain) const {
  RolloutMemory memory = memoryOf(chain.status, chain.metadata.name);
  if (auto it = written_.find(chain.metadata.name);
      it != written_.end() && it->second.memory.generation >= memory.generation)
    memory = it->second.memory; // the cache has not caught up with our last status
  return memory;
}

Controller::Have Controller::haveOf(const std::string& chain, const std::string& node,
                                    const ChainOnNode* entry) {
  Have h;
  if (entry && entry->inSpec) {
    h.kind = entry->membership ? Have::Member : entry->reference ? Have::Pinned : Have::Copy;
    h.generation = entry->assigned;
    h.revision = entry->revision;
    if (h.kind != Have::Member && !h.generation)
      h.kind = Have::None; // no generation: nothing this operator can keep
  }
  if (const Pending* pending = pendingFor(chain, node)) {
    h = Have{};
    if (pending->want) {
      api::NodeChainEntry want = api::chainEntryOf(*pending->want);
      if (want.kind == api::ChainEntryKind::Membership) {
        h.kind = Have::Member;
      } else {
        h.kind = Have::Pinned;
        h.generation = want.generation;
        h.revision = std::move(want.revision);
      }
    }
  }
  return h;
}

Controller::Observed Controller::observeNodes(const std::string& chain,
                                              const k8s::LabelSelector& selector,
                                              const RolloutMemory& memory) {
  Observed o;
  std::lock_guard lock(indexMu_);
  // The index's maps are all by node name: walked alongside, not searched once per node.
  const auto& configs = configs_;
  const auto& heartbeats = heartbeats_;
  auto nextConfig = configs.begin();
  auto nextBeat = heartbeats.begin();
  for (const auto& [nodeName, labels] : nodeLabels_) {
    if (!selector.matches(labels))
      continue;
    o.matched.insert(o.matched.end(), nodeName);
    NodeView view{nodeName, std::nullopt, std::nullopt, "", "", ""};
    const ChainOnNode* entry = nullptr;
    if (auto config = seek(configs, nextConfig, nodeName); config != configs.end())
      if (auto it = config->second.find(chain); it != config->second.end()) {
        entry = &it->second;
        view.reported = entry->reported;
        view.phase = entry->phase;
        view.reason = entry->reason;
        view.message = entry->message;
      }
    if (auto beat = seek(heartbeats, nextBeat, nodeName); beat != heartbeats.end())
      view.heartbeat = beat->second;
    Have h = haveOf(chain, nodeName, entry);
    if (h.kind == Have::Member) {
      const api::ChainRef* ref = api::followedBy(memory.published, nodeName);
      view.assigned = ref ? std::optional(ref->generation) : std::nullopt;
    } else {
      view.assigned = h.generation;
    }
    o.have.push_back(std::move(h));
    o.views.push_back(std::move(view));
  }
  return o;
}

ApiResult<api::ChainRef> Controller::refOf(const api::BpfChain& chain, const RolloutMemory& memory,
                                           Refs& refs, int64_t generation) {
  if (auto it = refs.find(generation); it != refs.end())
    return it->second;
  if (memory.published.stable && memory.published.stable->generation == generation)
    return refs[generation] = *memory.published.stable;
  auto ref = refAt(chain, generation);
  if (!ref)
    return std::move(ref).error();
  return refs[generation] = std::move(*ref);
}

ApiResult<void> Controller::publishDecision(const api::BpfChain& chain, const RolloutMemory& memory,
                                            RolloutDecision& d, Refs& refs) {
  int64_t generation = chain.metadata.generation;
  auto target = refOf(chain, memory, refs, generation);
  if (!target)
    return std::move(target).error();
  std::optional<api::ChainRef> stable;
  if (d.memory.stableGeneration) {
    auto ref = refOf(chain, memory, refs, *d.memory.stableGeneration);
    if (!ref)
      return std::move(ref).error();
    stable = std::move(*ref);
  }
  d.memory.published = publish(memory.published, d, *target, stable);
  if (d.memory.published == memory.published)
    return {};
  std::vector<log::Field> fields{{"chain", chain.metadata.name}, {"generation", generation}};
  if (d.memory.published.stable)
    fields.emplace_back("stable", d.memory.published.stable->generation);
  if (!d.memory.published.waves.empty()) {
    fields.emplace_back("target", d.memory.published.waves.front().target.generation);
    fields.emplace_back("partition", d.memory.published.waves.front().partition);
  }
  std::vector<std::string> moved;
  for (const auto& [node, assigned] : d.assign)
    moved.push_back(node);
  if (!moved.empty())
    fields.emplace_back("moved", describeNodes(moved));
  log::write(log::Level::Info, "published rollout", fields);
  return {};
}

// Node entries: a membership entry where the published rollout gives the node what the policy
// decided; an explicit reference (or none) only where it cannot, and for a node whose reference
// (or an earlier operator's copy) the published rollout does not give yet.
ApiResult<Controller::Decisions> Controller::entriesToWrite(const api::BpfChain& chain,
                                                            const RolloutMemory& memory,
                                                            const Observed& observed,
                                                            const RolloutDecision& d, Refs& refs) {
  const std::string& name = chain.metadata.name;
  Decisions decisions;
  for (size_t i = 0; i < observed.views.size(); ++i) {
    const NodeView& view = observed.views[i];
    const Have& h = observed.have[i];
    const api::ChainRef* follows = api::followedBy(d.memory.published, view.node);
    std::optional<int64_t> followed = follows ? std::optional(follows->generation) : std::nullopt;
    std::optional<std::optional<Json>> want; // unset: leave the entry as it is
    if (auto moved = d.assign.find(view.node); moved != d.assign.end()) {
      if (followed == moved->second) {
        want = std::optional(api::membershipEntry(name));
      } else if (moved->second) {
        auto ref = refOf(chain, memory, refs, *moved->second);
        if (!ref)
          return std::move(ref).error();
        want = std::optional(api::toJson(*ref));
      } else {
        want = std::optional<Json>();
      }
    } else if (h.kind == Have::None ||
               ((h.kind == Have::Pinned || h.kind == Have::Copy) && followed == h.generation &&
                (h.kind == Have::Copy || follows->revision == h.revision))) {
      want = std::optional(api::membershipEntry(name)); // joined, or the pin is what it follows
    } else if (h.kind == Have::Copy) {
      auto ref = refOf(chain, memory, refs, *h.generation); // a copy becomes the reference
      if (!ref)
        return std::move(ref).error();
      want = std::optional(api::toJson(*ref));
    }
    if (!want)
      continue;
    bool same = h.kind == Have::None;
    if (*want) {
      api::NodeChainEntry e = api::chainEntryOf(**want);
      same = e.kind == api::ChainEntryKind::Membership
                 ? h.kind == Have::Member
                 : h.kind == Have::Pinned && h.revision == e.revision;
    }
    if (!same)
      decisions.emplace_back(view.node, std::move(*want));
  }
  return decisions;
}

std::vector<std::optional<int64_t>> Controller::targetsAfter(const Observed& observed,
                                                             const RolloutDecision& d) {
  std::vector<std::optional<int64_t>> targets;
  targets.reserve(observed.views.size());
  for (size_t i = 0; i < observed.views.size(); ++i) {
    const std::string& node = observed.views[i].node;
    const Have& h = observed.have[i];
    if (auto moved = d.assign.find(node); moved != d.assign.end())
      targets.push_back(moved->second);
    else if (h.kind == Have::Pinned || h.kind == Have::Copy)
      targets.push_back(h.generation);
    else if (const api::ChainRef* follows = api::followedBy(d.memory.published, node))
      targets.emplace_back(follows->generation);
    else
      targets.emplace_back(std::nullopt);
  }
  return targets;
}

// What nodes refer to and what a rollback can still need: the current generation, the stable
// one, and every generation a node's spec or a pending decision names (an agent that restarts
// must still resolve what it runs).
std::set<int64_t> Controller::generationsToKeep(const std::string& chain, int64_t generation,
                                                const Observed& observed,
                                                const RolloutDecision& d) {
  std::set<int64_t> keep{generation};
  if (d.memory.stableGeneration)
    keep.insert(*d.memory.stableGeneration);
  if (d.memory.published.stable) // what agents follow, and will resolve after a restart
    keep.insert(d.memory.published.stable->generation);
  for (const auto& wave : d.memory.published.waves)
    keep.insert(wave.target.generation);
  for (const auto& view : observed.views)
    if (view.assigned)
      keep.insert(*view.assigned);
  for (const auto& [node, assigned] : d.assign)
    if (assigned)
      keep.insert(*assigned);
  std::lock_guard lock(indexMu_);
  for (const auto& [node, chains] : configs_)
    if (auto it = chains.find(chain);
        it != chains.end() && it->second.inSpec && it->second.assigned)
      keep.insert(*it->second.assigned);
  return keep;
}

ApiResult<Outcome> Controller::rollOut(const api::BpfChain& chain,
                                       const k8s::LabelSelector& selector) {
  const std::string& name = chain.metadata.name;
  int64_t generation = chain.metadata.generation;
  RolloutMemory memory = memoryToStart(chain);
  Observed observed = observeNodes(name, selector, memory);
  RolloutDecision d =
      planRollout(generation,
                  policyOf(chain.spec.rollout, static_cast<int>(observed.views.size()),
                           options_.progressDeadline, options_.agentStale),
                  memory, observed.views, Clock::now());
  Refs refs;
  if (auto r = publishDecision(chain, memory, d, refs); !r)
    return std::move(r).error();
  auto decisions = entriesToWrite(chain, memory, observed, d, refs);
  if (!decisions)
    return std::move(decisions).error();
  {
    auto awaited = awaitedReports(observed.views, targetsAfter(observed, d));
    std::lock_guard lock(indexMu_);
    awaited_[name] = std::move(awaited);
  }
  api::BpfChainStatus before = previousStatus(chain); // writeStatus replaces written_'s copy
  std::optional<std::chrono::milliseconds> deferred;
  if (auto r = writeStatus(chain, d, {}, &deferred); !r)
    return std::move(r).error();
  written_[name].uid = chain.metadata.uid;
  written_[name].memory = d.memory;
  // Written after the status that publishes what they follow: a membership entry that
  // replaces a pin must never meet the rollout published before.
  for (auto& [node, want] : *decisions)
    decide(node, name, std::move(want));
  releaseEverywhere(name, observed.matched);
  recordTransitions(chain, memory, before, d);
  if (auto r = pruneRevisions(chain, generationsToKeep(name, generation, observed, d));
      !r) // retried by the next reconcile
    log::warning("cannot prune ControllerRevisions",
                 {{"chain", name}, {"error", r.error().describe()}});
  if (options_.metrics)
    options_.metrics->setRollout(name, {d.matched, d.updated, d.ready, d.failed, d.halted,
                                        d.halted && d.memory.rolledBack, d.stale});
  Outcome outcome;
  if (d.requeueAfter)
    outcome.requeueAfter = *d.requeueAfter;
  if (deferred) // the counts go out then (if nothing else wrote them meanwhile)
    outcome.requeueAfter = std::min(outcome.requeueAfter.value_or(*deferred), *deferred);
  return outcome;
}

void Controller::recordTransitions(const api::BpfChain& chain, const RolloutMemory& before,
                                   const api::BpfChainStatus& previous, const RolloutDecision& d) {
  int64_t generation = chain.metadata.generation;
  const api::Condition* progressing = previous.condition("Progressing");
  std::string was =
      progressing && progressing->observedGeneration == generation ? progressing->reason : "";
  for (const auto& e : rolloutEvents(generation, before, was, d))
    event(chain, e.warning ? k8s::EventType::Warning : k8s::EventType::Normal, e.reason, e.message);
}

const api::BpfChainStatus& Controller::previousStatus(const api::BpfChain& chain) const {
  const api::BpfChainStatus& observed = chain.status;
  auto it = written_.find(chain.metadata.name);
  if (it == written_.end() || !it->second.status || it->second.uid != chain.metadata.uid)
    return observed;
  auto cachedRevision = k8s::revisionOf(chain.metadata.resourceVersion);
  // The cache has not seen our last write yet, or shows exactly that write: ours is the same
  // status as sent (the server's copy may differ in form, e.g. defaults filled in).
  if (!cachedRevision || *cachedRevision <= it->second.resourceVersion)
    return *it->second.status;
  return observed; // written since by someone else (or a spec change): the cache knows best
}

api::BpfChainStatus Controller::statusOf(const api::BpfChain& chain, const RolloutDecision& d,
                                         const Problem& problem,
                                         const api::BpfChainStatus& previous) const {
  int64_t generation = chain.metadata.generation;
  api::BpfChainStatus status = countsAndMemory(chain, d);
  bool degraded = d.failed > 0 || d.stale > 0 || !problem.reason.empty();
  status.phase = chainPhase(d, !problem.reason.empty());
  std::string failureReason = d.failures.empty() ? "AgentNotReporting" : d.failures[0].reason;
  std::string failureMessage = d.failures.empty()
                                   ? describeStale(d.memory.staleNodes)
                                   : d.failures[0].node + ": " + d.failures[0].message;
  std::string haltReason = d.memory.rolledBack ? "RolledBack" : "Halted";
  auto [progressReason, progressMessage] = progress(d, generation, options_.progressDeadline);
  status.conditions.push_back(condition(
      previous, "Ready", d.complete && d.failed == 0,
      d.complete ? (d.failed ? "NodesFailed" : "RolloutComplete")
                 : (d.halted ? haltReason : (d.stale ? "AgentNotReporting" : "RollingOut")),
      readyMessage(d, generation, options_.agentStale), generation));
  status.conditions.push_back(condition(previous, "Progressing",
                                        !d.complete && !d.halted && d.overdue.empty(),
                                        progressReason, progressMessage, generation));
  status.conditions.push_back(condition(
      previous, "Degraded", degraded,
      !problem.reason.empty() ? problem.reason : (degraded ? failureReason : "NoFailures"),
      !problem.reason.empty() ? problem.message : failureMessage, generation));
  return status;
}

ApiResult<void> Controller::writeStatus(const api::BpfChain& chain, const RolloutDecision& d,
                                        const Problem& problem,
                                        std::optional<std::chrono::milliseconds>* deferred) {
  const api::BpfChainStatus& previous = previousStatus(chain);
  api::BpfChainStatus status = statusOf(chain, d, problem, previous);
  const std::string& name = chain.metadata.name;
  if (writesSame(withoutTransitionTimes(previous), withoutTransitionTimes(status)))
    return {}; // nothing new: no request, no event for every watcher
  if (auto last = written_.find(name); deferred && last != written_.end() && last->second.status &&
                                       &*last->second.status == &previous &&
                                       writesSame(withoutCounts(previous), withoutCounts(status))) {
    auto since = std::chrono::steady_clock::now() - last->second.at;
    if (since < kCountsInterval) {
      *deferred = std::chrono::ceil<std::chrono::milliseconds>(kCountsInterval - since);
      return {};
    }
  }
  Json body = Json::object();
  body["apiVersion"] = Json::string("bpfchain.io/v1alpha1");
  body["kind"] = Json::string("BpfChain");
  body["metadata"]["name"] = Json::string(name);
  body["status"] = api::statusToJson(status);
  if (options_.metrics)
    options_.metrics->statusWritten();
  auto applied = client_.apply(kChains, body, kStatusManager, true, "status");
  if (!applied && !applied.error().notFound())
    return std::move(applied).error();
  Written& written = written_[name];
  written.uid = chain.metadata.uid;
  written.status = std::move(status);
  written.resourceVersion =
      applied ? k8s::revisionOf(k8s::resourceVersionOf(*applied)).value_or(0) : 0;
  written.at = std::chrono::steady_clock::now();
  return {};
}

} // namespace bpfchain::op
