#include "node-agent/cluster_source.h"

#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "api/chain_ref.h"
#include "api/node_config_types.h"
#include "api/published_rollout.h"
#include "api/resources.h"
#include "k8s/client.h"
#include "k8s/config.h"
#include "k8s/informer.h"
#include "k8s/label_selector.h"
#include "k8s/object.h"
#include "node-agent/chain_revisions.h"
#include "node-agent/label_selector_decl.h"
#include "system/file.h"
#include "system/log.h"
#include "system/time.h"

namespace bpfchain::agent {

namespace {

const k8s::Resource& kNodeConfigs = api::kBpfNodeConfigs;

// A revision a GET could not read is asked for again at most this often (passes come with
// every pod ADD; a revision is retried on its watch events and the reconciler's backoff).
constexpr std::chrono::seconds kRevisionGetInterval{5};
// Revisions read by GET until the watch shows them, and failed GETs: bounded, as the pods'.
constexpr size_t kMaxFetchedRevisions = 1024;
// How long the first pass waits for the revision watch's first list (a list from the API
// server's watch cache: fast), so that it does not read every revision by GET. It does not
// wait longer: the agent may not be allowed to list them (then each is a GET that says why).
constexpr std::chrono::seconds kRevisionSyncWait{2};
// How long a pass waits for the node's BpfNodeConfig to be listed when it is not yet.
constexpr std::chrono::seconds kFirstListWait{1};

} // namespace

using Labels = std::map<std::string, std::string>;

struct ClusterSource::Impl {
  ClusterSourceOptions options;
  std::unique_ptr<k8s::Client> client;
  std::unique_ptr<k8s::Client> lookups; // short timeout: a pod ADD waits on it
  std::unique_ptr<k8s::Informer> informer;
  std::unique_ptr<k8s::Informer> pods;
  std::unique_ptr<k8s::Informer> namespaces;
  std::mutex mu;
  std::string lastWritten;         // the status body last accepted by the server, without heartbeat
  k8s::WriteVersion statusVersion; // of our status writes, which the informer shows late
  std::chrono::steady_clock::time_point lastHeartbeat{};
  // The labels of the pods ("ns/name") and namespaces the informers hold, kept by their event
  // handlers: selectors run per pod and chain in every pass, so they read these small maps
  // instead of copying whole objects out of the caches.
  std::mutex labelsMu; // not mu: that one is held across status writes
  std::map<std::string, Labels> podLabels;
  std::map<std::string, Labels> namespaceLabels;
  // Read by preparePod because the informers did not have them yet.
  std::map<std::string, Labels> fetchedPods;
  std::map<std::string, Labels> fetchedNamespaces;
  std::string lastReadyTransition;
  bool lastReady = false;

  // The BpfChains, for the rollout each publishes (membership entries follow it).
  std::unique_ptr<k8s::Informer> chains;
  bool chainsWaited = false;
  Result<std::optional<api::PublishedRollout>> publishedOf(const std::string& chain);

  // Chain revisions (current() only, on the agent's loop; revisionsMu for safety).
  std::unique_ptr<k8s::Informer> revisions;
  std::mutex revisionsMu;
  bool revisionsWaited = false;
  std::map<std::string, k8s::Json> fetchedRevisions; // by name: read by GET
  struct FailedGet {
    Error error;
    std::chrono::steady_clock::time_point retryAt;
  };
  std::map<std::string, FailedGet> failedRevisions; // by name
  std::map<std::string, k8s::Json> keptRevisions;   // by chain: the last one resolved
  // The revisions the node's references name that did not resolve in the last pass: only
  // their events start a pass (every agent watches every chain's revisions; a new revision
  // comes before the references to it, which start the pass).
  std::mutex awaitedMu;
  std::set<std::string> awaitedRevisions;

  Result<std::vector<k8s::Json>> lookupRevision(const api::ChainRef& ref);
  std::string keptPath(const std::string& chain) const {
    return options.stateDir + "/revisions/" + chain + ".json";
  }
  void loadKept();
  void keep(const std::map<std::string, k8s::Json>& resolved, const NodeSpec& spec);

  // The informers' event handlers: each calls `changed` only for what can change a pass.
  k8s::InformerEventHandler labelsHandler(std::map<std::string, Labels> Impl::*table,
                                          const std::function<void()>& changed);
  k8s::InformerEventHandler revisionHandler(const std::function<void()>& changed);
};

Result<std::vector<k8s::Json>> ClusterSource::Impl::lookupRevision(const api::ChainRef& ref) {
  std::vector<k8s::Json> copies;
  std::string where = options.revisionNamespace + "/" + ref.revision;
  if (auto watched = revisions->get(where)) {
    copies.push_back(std::move(*watched));
    fetchedRevisions.erase(ref.revision);
  } else if (auto fetched = fetchedRevisions.find(ref.revision);
             fetched != fetchedRevisions.end()) {
    copies.push_back(fetched->second);
  }
  // The copy kept on this node: it was what a reference named, and resolves one only when it is
  // again (resolveNodeSpec checks every copy).
  if (auto kept = keptRevisions.find(ref.name);
      kept != keptRevisions.end() && k8s::nameOf(kept->second) == ref.revision)
    copies.push_back(kept->second);
  if (!copies.empty())
    return copies;
  auto now = std::chrono::steady_clock::now();
  if (auto failed = failedRevisions.find(ref.revision);
      failed != failedRevisions.end() && now < failed->second.retryAt)
    return failed->second.error;
  auto got = lookups->get(api::kControllerRevisions, options.revisionNamespace, ref.revision);
  if (!got) {
    Error error(ErrorKind::RevisionUnavailable, 0,
                "ControllerRevision " + where + ": " + got.error().describe());
    log::warning("cannot read chain revision", {{"chain", ref.name},
                                                {"generation", ref.generation},
                                                {"revision", where},
                                                {"error", got.error().describe()}});
    if (failedRevisions.size() >= kMaxFetchedRevisions)
      failedRevisions.clear();
    failedRevisions[ref.revision] = FailedGet{error, now + kRevisionGetInterval};
    return error;
  }
  failedRevisions.erase(ref.revision);
  if (fetchedRevisions.size() >= kMaxFetchedRevisions)
    fetchedRevisions.clear();
  fetchedRevisions[ref.revision] = *got;
  return std::vector<k8s::Json>{std::move(*got)};
}

Result<std::optional<api::PublishedRollout>>
ClusterSource::Impl::publishedOf(const std::string& chain) {
  auto object = chains->get(chain);
  if (!object) {
    std::string why = chains->hasSynced() ? "not found" : "not listed yet";
    if (std::string error = chains->stats().lastError; !error.empty())
      why += " (" + error + ")";
    return Error(ErrorKind::RevisionUnavailable, 0, "BpfChain " + chain + ": " + why);
  }
  auto published = api::publishedOf(*object);
  if (!published)
    return Error(ErrorKind::RevisionUnavailable, 0, published.error().message());
  return std::move(*published);
}

void ClusterSource::Impl::loadKept() {
  if (options.stateDir.empty())
    return;
  std::error_code ec;
  for (const auto& file :
       std::filesystem::directory_iterator(options.stateDir + "/revisions", ec)) {
    if (file.path().extension() != ".json")
      continue;
    auto text = readFile(file.path().string(), 4u << 20);
    if (!text)
      continue;
    try {
      k8s::Json object = k8s::Json::parse(*text);
      std::string chain = k8s::stringAt(object, {"metadata", "labels", api::kChainLabel});
      if (chain + ".json" == file.path().filename().string())
        keptRevisions[chain] = std::move(object);
    } catch (const std::exception& e) {
      log::warning("kept revision ignored", {{"file", file.path().string()}, {"error", e.what()}});
    }
  }
}

void ClusterSource::Impl::keep(const std::map<std::string, k8s::Json>& resolved,
                               const NodeSpec& spec) {
  if (options.stateDir.empty())
    return;
  std::error_code ec;
  for (const auto& [chain, object] : resolved) {
    auto kept = keptRevisions.find(chain);
    if (kept != keptRevisions.end() && k8s::nameOf(kept->second) == k8s::nameOf(object))
      continue;
    k8s::Json copy = object;
    if (copy.has_field("metadata") && copy.at("metadata").has_field("managedFields"))
      copy["metadata"].erase("managedFields");
    std::filesystem::create_directories(options.stateDir + "/revisions", ec);
    std::string path = keptPath(chain);
    // Not durable, as the instance state it goes with: it matters only while programs stay
    // pinned, and a bpffs does not outlive the machine (an fsync here delayed every apply).
    if (auto written = writeFileAtomic(path, copy.serialize(), {.durable = false}); !written) {
      log::warning("cannot keep chain revision", {{"chain", chain},
                                                  {"revision", k8s::nameOf(copy)},
                                                  {"error", written.error().message()}});
      continue;
    }
    keptRevisions[chain] = std::move(copy);
  }
  // Chains the node no longer has: their revisions are not needed to keep anything running.
  std::set<std::string> named;
  for (const auto& c : spec.chains)
    named.insert(c.name);
  for (const auto& c : spec.invalid)
    named.insert(c.name);
  for (auto it = keptRevisions.begin(); it != keptRevisions.end();) {
    if (named.contains(it->first)) {
      ++it;
      continue;
    }
    std::filesystem::remove(keptPath(it->first), ec);
    it = keptRevisions.erase(it);
  }
}

ClusterSource::ClusterSource(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ClusterSource::~ClusterSource() {
  stop();
}

Result<std::unique_ptr<ClusterSource>> ClusterSource::create(ClusterSourceOptions options) {
  auto impl = std::make_unique<Impl>();
  auto config = k8s::defaultConfig(options.kubeconfig);
  if (!config)
    return std::move(config).error();
  auto client = k8s::Client::create(*config);
  if (!client)
    return std::move(client).error();
  impl->client = std::move(*client);
  k8s::Config lookupConfig = *config;
  lookupConfig.requestTimeout = std::chrono::seconds(1);
  auto lookups = k8s::Client::create(lookupConfig);
  if (!lookups)
    return std::move(lookups).error();
  impl->lookups = std::move(*lookups);
  k8s::InformerOptions informerOptions;
  informerOptions.fieldSelector = "metadata.name=" + options.nodeName;
  impl->informer = std::make_unique<k8s::Informer>(*impl->client, kNodeConfigs, informerOptions);
  k8s::InformerOptions podOptions;
  podOptions.fieldSelector = "spec.nodeName=" + options.nodeName;
  impl->pods = std::make_unique<k8s::Informer>(*impl->client, k8s::resources::kPods, podOptions);
  impl->namespaces = std::make_unique<k8s::Informer>(*impl->client, k8s::resources::kNamespaces);
  k8s::InformerOptions revisionOptions;
  revisionOptions.ns = options.revisionNamespace;
  revisionOptions.labelSelector = api::kChainLabel;
  revisionOptions.stripManagedFields = true;
  impl->revisions =
      std::make_unique<k8s::Informer>(*impl->client, api::kControllerRevisions, revisionOptions);
  k8s::InformerOptions chainOptions;
  chainOptions.stripManagedFields = true;
  impl->chains = std::make_unique<k8s::Informer>(*impl->client, api::kBpfChains, chainOptions);
  impl->options = std::move(options);
  impl->loadKept();
  return std::unique_ptr<ClusterSource>(new ClusterSource(std::move(impl)));
}

namespace {

// The node's BpfNodeConfig: our own status writes come back as updates; only a spec change
// matters.
k8s::InformerEventHandler nodeConfigHandler(const std::function<void()>& changed) {
  k8s::InformerEventHandler handler;
  handler.onAdd = [changed](const k8s::Json&) { changed(); };
  handler.onUpdate = [changed](const k8s::Json& oldObj, const k8s::Json& newObj) {
    if (k8s::generationOf(oldObj) != k8s::generationOf(newObj))
      changed();
  };
  handler.onDelete = [changed](const k8s::Json&) { changed(); };
  return handler;
}

// The operator writes a chain's status often during a rollout (its counts); only what it
// publishes for nodes to follow starts a pass.
k8s::InformerEventHandler chainHandler(const std::function<void()>& changed) {
  auto published = [](const k8s::Json& chain) -> const k8s::Json* {
    const k8s::Json* status = chain.has_field("status") ? &chain.at("status") : nullptr;
    return status && status->is_object() && status->has_field("published")
               ? &status->at("published")
               : nullptr;
  };
  k8s::InformerEventHandler handler;
  handler.onAdd = [changed](const k8s::Json&) { changed(); };
  handler.onUpdate = [changed, published](const k8s::Json& oldObj, const k8s::Json& newObj) {
    const k8s::Json* before = published(oldObj);
    const k8s::Json* after = published(newObj);
    if ((before == nullptr) != (after == nullptr) || (before && *before != *after))
      changed();
  };
  handler.onDelete = [changed](const k8s::Json&) { changed(); };
  return handler;
}

} // namespace

k8s::InformerEventHandler
ClusterSource::Impl::labelsHandler(std::map<std::string, Labels> Impl::*table,
                                   const std::function<void()>& changed) {
  // Labels decide which pods chains apply: only label changes matter.
  k8s::InformerEventHandler h;
  h.onAdd = [this, table, changed](const k8s::Json& obj) {
    {
      std::lock_guard lock(labelsMu);
      (this->*table)[k8s::keyOf(obj)] = k8s::labelsOf(obj);
    }
    changed();
  };
  h.onUpdate = [this, table, changed](const k8s::Json&, const k8s::Json& obj) {
    Labels now = k8s::labelsOf(obj);
    {
      std::lock_guard lock(labelsMu);
      Labels& held = (this->*table)[k8s::keyOf(obj)];
      if (held == now)
        return;
      held = std::move(now);
    }
    changed();
  };
  h.onDelete = [this, table, changed](const k8s::Json& obj) {
    {
      std::lock_guard lock(labelsMu);
      (this->*table).erase(k8s::keyOf(obj));
    }
    changed();
  };
  return h;
}

k8s::InformerEventHandler
ClusterSource::Impl::revisionHandler(const std::function<void()>& changed) {
  // A revision that appears or changes may resolve a reference that failed: pass again.
  auto awaited = [this, changed](const k8s::Json& revision) {
    bool wanted = false;
    {
      std::lock_guard lock(awaitedMu);
      wanted = awaitedRevisions.contains(k8s::nameOf(revision));
    }
    if (wanted)
      changed();
  };
  k8s::InformerEventHandler handler;
  handler.onAdd = awaited;
  handler.onUpdate = [awaited](const k8s::Json&, const k8s::Json& revision) { awaited(revision); };
  handler.onDelete = awaited;
  return handler;
}

void ClusterSource::start(std::function<void()> changed) {
  impl_->informer->addEventHandler(nodeConfigHandler(changed));
  impl_->informer->start();
  impl_->revisions->addEventHandler(impl_->revisionHandler(changed));
  impl_->revisions->start();
  impl_->chains->addEventHandler(chainHandler(changed));
  impl_->chains->start();
  impl_->pods->addEventHandler(impl_->labelsHandler(&Impl::podLabels, changed));
  impl_->namespaces->addEventHandler(impl_->labelsHandler(&Impl::namespaceLabels, changed));
  impl_->pods->start();
  impl_->namespaces->start();
}

void ClusterSource::stop() {
  if (!impl_)
    return;
  for (auto* informer : {impl_->informer.get(), impl_->pods.get(), impl_->namespaces.get(),
                         impl_->revisions.get(), impl_->chains.get()})
    if (informer)
      informer->stop();
}

std::optional<NodeSpec> ClusterSource::current() {
  // The first list's onAdd (which asks for this pass) comes just before the informer counts
  // as synced: wait for that moment rather than miss the object until the next resync.
  if (!impl_->informer->hasSynced() && !impl_->informer->waitForSync(kFirstListWait))
    return std::nullopt;
  auto object = impl_->informer->get(impl_->options.nodeName);
  if (!object)
    return std::nullopt;
  k8s::Json spec = object->has_field("spec") ? object->at("spec") : k8s::Json::object();
  std::string source = "BpfNodeConfig " + impl_->options.nodeName + " spec";
  std::lock_guard lock(impl_->revisionsMu);
  if (!impl_->revisionsWaited) {
    impl_->revisionsWaited = true;
    impl_->revisions->waitForSync(kRevisionSyncWait);
  }
  if (!impl_->chainsWaited) {
    impl_->chainsWaited = true;
    impl_->chains->waitForSync(kRevisionSyncWait);
  }
  auto resolved = resolveNodeSpec(
      spec, source,
      [impl = impl_.get()](const api::ChainRef& ref) { return impl->lookupRevision(ref); },
      [impl = impl_.get()](const std::string& chain) -> std::optional<k8s::Json> {
        auto kept = impl->keptRevisions.find(chain);
        if (kept == impl->keptRevisions.end())
          return std::nullopt;
        return kept->second;
      },
      impl_->options.nodeName,
      [impl = impl_.get()](const std::string& chain) { return impl->publishedOf(chain); });
  if (!resolved) {
    // Not a spec at all. A chain this agent cannot parse or resolve (a field of a newer CRD, a
    // revision it may not read) does not get here: it fails alone (NodeSpec::invalid).
    log::error("node config refused; keeping what runs", {{"error", resolved.error().message()}});
    return std::nullopt;
  }
  impl_->keep(resolved->revisions, resolved->spec);
  {
    std::lock_guard awaitedLock(impl_->awaitedMu);
    impl_->awaitedRevisions.clear();
    for (const auto& bad : resolved->spec.invalid)
      if (bad.kind != ErrorKind::SpecInvalid && !bad.revision.empty())
        impl_->awaitedRevisions.insert(bad.revision);
  }
  return std::move(resolved->spec);
}

namespace {

// The status fields of what the reconciler reports (the conditions and agent.heartbeatTime are
// the caller's).
api::NodeConfigStatus statusOf(const NodeStatus& status, int64_t generation,
                               const std::string& agentVersion) {
  const auto& features = dataplane::kernelFeatures();
  api::NodeConfigStatus s;
  s.observedGeneration = generation;
  s.agent.version = agentVersion;
  s.agent.kernel = features.kernelRelease;
  s.agent.features = {{"tcx", features.tcx}, {"xdpLink", features.xdpLink}, {"btf", features.btf}};
  for (const ChainStatus& c : status.chains) {
    api::NodeChainStatus chain{
        c.name,  c.generation, c.runningGeneration,       c.revision, c.runningRevision,
        c.phase, c.reason,     c.message.substr(0, 4096), {}};
    for (const AttachmentStatus& a : c.attachments)
      chain.attachments.push_back(
          {a.interface, std::string(dataplane::hookName(a.hook)), a.pod, a.programIds});
    s.chains.push_back(std::move(chain));
  }
  api::countPhases(s);
  return s;
}

} // namespace

bool ClusterSource::report(const NodeStatus& status) {
  auto seen = impl_->informer->get(impl_->options.nodeName);
  if (!seen)
    return true; // nothing to report on
  int64_t generation = k8s::generationOf(*seen);
  api::NodeConfigStatus s = statusOf(status, generation, impl_->options.agentVersion);
  bool ready = s.failedCount == 0;
  std::lock_guard lock(impl_->mu);
  if (impl_->lastReadyTransition.empty() || ready != impl_->lastReady) {
    impl_->lastReadyTransition = rfc3339Now();
    impl_->lastReady = ready;
  }
  s.conditions.push_back(api::readyCondition(s, impl_->lastReadyTransition, generation));
  std::string text = api::toJson(s).serialize();
  // The heartbeat goes in the same write; alone, when nothing else changed and it is due. A pass
  // within a tenth of the interval counts as due: passes are not timed to the heartbeat.
  auto now = std::chrono::steady_clock::now();
  if (text == impl_->lastWritten &&
      now - impl_->lastHeartbeat < impl_->options.heartbeat - impl_->options.heartbeat / 10)
    return true;
  s.agent.heartbeatTime = rfc3339Now();
  // A PUT (k8s::updateStatus): the agent is status's one writer and sends all of it, and every
  // node writes once per change, so the cheapest write for the API server is the one to use.
  auto written = k8s::updateStatus(*impl_->client, kNodeConfigs, std::move(*seen), api::toJson(s),
                                   "bpfchain-agent", impl_->statusVersion);
  if (!written) {
    log::warning("cannot write the node's status; will retry",
                 {{"node", impl_->options.nodeName}, {"error", written.error().message}});
    return false;
  }
  impl_->lastWritten = std::move(text);
  impl_->lastHeartbeat = now;
  return true;
}

std::vector<std::pair<std::string, std::string>> ClusterSource::expectedPods() {
  std::vector<std::pair<std::string, std::string>> pods;
  for (const auto& pod : impl_->pods->list()) {
    std::string phase = k8s::stringAt(pod, {"status", "phase"});
    bool hostNetwork = pod.has_field("spec") && pod.at("spec").has_field("hostNetwork") &&
                       pod.at("spec").at("hostNetwork").is_boolean() &&
                       pod.at("spec").at("hostNetwork").as_bool();
    if (phase != "Succeeded" && phase != "Failed" && !hostNetwork) // no CNI ADD for those
      pods.emplace_back(k8s::stringAt(pod, {"metadata", "namespace"}), k8s::nameOf(pod));
  }
  return pods;
}

namespace {

// The informer's labels of `key`, else what preparePod read for an ADD that beat the watch
// (dropped once the informer has it), else null.
const Labels* knownLabels(const std::map<std::string, Labels>& watched,
                          std::map<std::string, Labels>& fetched, const std::string& key) {
  if (auto it = watched.find(key); it != watched.end()) {
    fetched.erase(key);
    return &it->second;
  }
  auto it = fetched.find(key);
  return it == fetched.end() ? nullptr : &it->second;
}

} // namespace

PodSelector ClusterSource::podSelector() {
  Impl* impl = impl_.get();
  // One selector per pass (the agent asks again with each spec): each chain's selectors are
  // parsed once in it, not once per pod.
  using Parsed = std::optional<std::pair<k8s::LabelSelector, k8s::LabelSelector>>;
  auto parsed = std::make_shared<std::map<std::string, Parsed>>();
  auto parsedMu = std::make_shared<std::mutex>();
  return [impl, parsed, parsedMu](const ChainDecl& chain, const std::string& ns,
                                  const std::string& name) {
    Parsed selectors;
    {
      std::lock_guard lock(*parsedMu);
      auto it = parsed->find(chain.name);
      if (it == parsed->end()) {
        auto nsSelector = labelSelectorOf(chain.pods.namespaceSelector, "pods.namespaceSelector");
        auto podSelector = labelSelectorOf(chain.pods.podSelector, "pods.podSelector");
        Parsed p;
        if (nsSelector && podSelector)
          p.emplace(std::move(*nsSelector), std::move(*podSelector));
        it = parsed->emplace(chain.name, std::move(p)).first;
      }
      selectors = it->second;
    }
    if (!selectors)
      return false;
    std::lock_guard lock(impl->labelsMu);
    const Labels* podLabels = knownLabels(impl->podLabels, impl->fetchedPods, ns + "/" + name);
    const Labels* nsLabels = knownLabels(impl->namespaceLabels, impl->fetchedNamespaces, ns);
    if (podLabels == nullptr || nsLabels == nullptr)
      return false; // a pod the API server does not know: gone, or never was
    return selectors->first.matches(*nsLabels) && selectors->second.matches(*podLabels);
  };
}

std::optional<std::string> ClusterSource::preparePod(const std::string& ns,
                                                     const std::string& name) {
  std::string key = ns + "/" + name;
  bool podKnown = false;
  bool nsKnown = false;
  {
    std::lock_guard lock(impl_->labelsMu);
    podKnown = impl_->podLabels.contains(key) || impl_->fetchedPods.contains(key);
    nsKnown = impl_->namespaceLabels.contains(ns) || impl_->fetchedNamespaces.contains(ns);
  }
  if (!podKnown) {
    auto pod = impl_->lookups->get(k8s::resources::kPods, ns, name);
    if (!pod)
      return "pod " + key + ": " + pod.error().describe();
    std::lock_guard lock(impl_->labelsMu);
    if (impl_->fetchedPods.size() >= 1024) // pods deleted before their watch event
      impl_->fetchedPods.clear();
    impl_->fetchedPods[key] = k8s::labelsOf(*pod);
  }
  if (!nsKnown) {
    auto nsObject = impl_->lookups->get(k8s::resources::kNamespaces, "", ns);
    if (!nsObject)
      return "namespace " + ns + ": " + nsObject.error().describe();
    std::lock_guard lock(impl_->labelsMu);
    if (impl_->fetchedNamespaces.size() >= 1024)
      impl_->fetchedNamespaces.clear();
    impl_->fetchedNamespaces[ns] = k8s::labelsOf(*nsObject);
  }
  return std::nullopt;
}

std::optional<std::string> ClusterSource::notReady() const {
  if (!impl_->informer->hasSynced())
    return "BpfNodeConfig " + impl_->options.nodeName + " not listed yet";
  return std::nullopt;
}

} // namespace bpfchain::agent
