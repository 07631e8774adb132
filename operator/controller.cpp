#include "operator/controller.h"

#include <algorithm>
#include <ctime>
#include <iostream>

#include "k8s/label_selector.h"

namespace bpfchain::op {
namespace {

using k8s::ApiError;
using k8s::ApiResult;
using k8s::Json;

const k8s::Resource kChains{"bpfchain.io", "v1alpha1", "bpfchains", "BpfChain", false};
const k8s::Resource kNodeConfigs{"bpfchain.io", "v1alpha1", "bpfnodeconfigs", "BpfNodeConfig",
                                 false};
const k8s::Resource kRevisions{"apps", "v1", "controllerrevisions", "ControllerRevision", true};
constexpr const char* kFinalizer = "bpfchain.io/cleanup";
constexpr const char* kStatusManager = "bpfchain-operator";

std::string managerOf(const std::string& chain) {
  return "bpfchain-operator/" + chain;
}

std::string rfc3339(Clock::time_point t) {
  std::time_t secs = Clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::optional<Clock::time_point> parseRfc3339(const std::string& text) {
  std::tm tm{};
  if (text.empty() || !strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm))
    return std::nullopt;
  return Clock::from_time_t(timegm(&tm));
}

const Json* field(const Json& obj, std::initializer_list<const char*> path) {
  const Json* at = &obj;
  for (const char* step : path) {
    if (!at->is_object() || !at->has_field(step))
      return nullptr;
    at = &at->at(step);
  }
  return at;
}

// The entry named `chain` in a list of {name, ...} objects at `path`, or nullptr.
const Json* namedEntry(const Json& obj, std::initializer_list<const char*> path,
                       const std::string& chain) {
  const Json* list = field(obj, path);
  if (!list || !list->is_array())
    return nullptr;
  for (const auto& entry : list->as_array())
    if (k8s::stringAt(entry, {"name"}) == chain)
      return &entry;
  return nullptr;
}

std::optional<int64_t> generationIn(const Json* entry) {
  if (!entry || !entry->has_field("generation") || !entry->at("generation").is_number())
    return std::nullopt;
  return entry->at("generation").as_number().to_int64();
}

bool hasFinalizer(const Json& obj) {
  const Json* list = field(obj, {"metadata", "finalizers"});
  if (!list || !list->is_array())
    return false;
  for (const auto& f : list->as_array())
    if (f.is_string() && f.as_string() == kFinalizer)
      return true;
  return false;
}

// What a node runs of a chain: its spec at one generation, without what only the operator
// needs (node selection, rollout).
Json nodeEntry(const std::string& chain, int64_t generation, const Json& spec) {
  Json entry = Json::object();
  entry["name"] = Json::string(chain);
  entry["generation"] = Json::number(generation);
  for (const char* key : {"hook", "priority", "interfaces", "pods", "programs"})
    if (spec.has_field(key))
      entry[key] = spec.at(key);
  return entry;
}

RolloutPolicy policyOf(const Json& spec, int matched) {
  RolloutPolicy p;
  const Json* rollout = field(spec, {"rollout"});
  if (!rollout)
    return p;
  if (rollout->has_field("maxUnavailable")) {
    const Json& m = rollout->at("maxUnavailable");
    p.maxUnavailable = resolveMaxUnavailable(
        m.is_string() ? m.as_string() : std::to_string(m.as_integer()), matched);
  }
  if (rollout->has_field("canaryNodes"))
    p.canaryNodes = rollout->at("canaryNodes").as_integer();
  if (rollout->has_field("pauseSeconds"))
    p.pauseSeconds = rollout->at("pauseSeconds").as_integer();
  std::string policy = k8s::stringAt(*rollout, {"failurePolicy"});
  p.failurePolicy = policy == "Continue"   ? FailurePolicy::Continue
                    : policy == "Rollback" ? FailurePolicy::Rollback
                                           : FailurePolicy::Halt;
  return p;
}

RolloutMemory memoryOf(const Json& chain) {
  RolloutMemory m;
  const Json* r = field(chain, {"status", "rollout"});
  if (!r)
    return m;
  if (auto g = generationIn(r))
    m.generation = *g;
  m.canaryReadyAt = parseRfc3339(k8s::stringAt(*r, {"canaryReadyTime"}));
  if (r->has_field("stableGeneration") && r->at("stableGeneration").is_number())
    m.stableGeneration = r->at("stableGeneration").as_number().to_int64();
  m.rolledBack = r->has_field("rolledBack") && r->at("rolledBack").as_bool();
  return m;
}

Json condition(const Json& chain, const std::string& type, bool status, const std::string& reason,
               const std::string& message, int64_t generation) {
  std::string value = status ? "True" : "False";
  std::string since = rfc3339(Clock::now());
  // The transition time moves only when the status flips (API conventions).
  if (const Json* list = field(chain, {"status", "conditions"}); list && list->is_array())
    for (const auto& c : list->as_array())
      if (k8s::stringAt(c, {"type"}) == type && k8s::stringAt(c, {"status"}) == value)
        since = k8s::stringAt(c, {"lastTransitionTime"});
  Json c = Json::object();
  c["type"] = Json::string(type);
  c["status"] = Json::string(value);
  c["reason"] = Json::string(reason);
  c["message"] = Json::string(message);
  c["observedGeneration"] = Json::number(generation);
  c["lastTransitionTime"] = Json::string(since);
  return c;
}

} // namespace

Controller::Controller(k8s::Client& client, ControllerOptions options)
    : client_(client), options_(std::move(options)), chains_(client, kChains),
      nodes_(client, k8s::resources::kNodes), nodeConfigs_(client, kNodeConfigs) {
  chains_.addEventHandler({
      .onAdd = [this](const Json& o) { queue_.add("chain/" + k8s::nameOf(o)); },
      .onUpdate = [this](const Json&, const Json& o) { queue_.add("chain/" + k8s::nameOf(o)); },
      .onDelete = [this](const Json& o) { queue_.add("chain/" + k8s::nameOf(o)); },
  });
  nodes_.addEventHandler({
      .onAdd =
          [this](const Json& o) {
            queue_.add("node/" + k8s::nameOf(o));
            enqueueAllChains();
          },
      .onUpdate =
          [this](const Json& old, const Json& now) {
            if (k8s::labelsOf(old) != k8s::labelsOf(now))
              enqueueAllChains();
          },
      .onDelete =
          [this](const Json& o) {
            queue_.add("node/" + k8s::nameOf(o));
            enqueueAllChains();
          },
  });
  nodeConfigs_.addEventHandler({
      .onAdd = [this](const Json& o) { enqueueChainsOf(o); },
      .onUpdate =
          [this](const Json& old, const Json& now) {
            enqueueChainsOf(old);
            enqueueChainsOf(now);
          },
      .onDelete =
          [this](const Json& o) {
            queue_.add("node/" + k8s::nameOf(o));
            enqueueChainsOf(o);
          },
  });
}

Controller::~Controller() {
  stop();
}

Result<void> Controller::start(std::chrono::seconds syncTimeout) {
  chains_.start();
  nodes_.start();
  nodeConfigs_.start();
  for (k8s::Informer* informer : {&chains_, &nodes_, &nodeConfigs_})
    if (!informer->waitForSync(syncTimeout))
      return invalidError("informer caches did not sync within " +
                          std::to_string(syncTimeout.count()) +
                          " s: " + informer->stats().lastError);
  worker_ = std::thread([this] { worker(); });
  return {};
}

void Controller::stop() {
  queue_.shutDown();
  if (worker_.joinable())
    worker_.join();
  chains_.stop();
  nodes_.stop();
  nodeConfigs_.stop();
}

void Controller::enqueueAllChains() {
  for (const auto& chain : chains_.list())
    queue_.add("chain/" + k8s::nameOf(chain));
}

void Controller::enqueueChainsOf(const Json& nodeConfig) {
  for (auto path : {std::initializer_list<const char*>{"spec", "chains"},
                    std::initializer_list<const char*>{"status", "chains"}}) {
    const Json* list = field(nodeConfig, path);
    if (list && list->is_array())
      for (const auto& entry : list->as_array())
        queue_.add("chain/" + k8s::stringAt(entry, {"name"}));
  }
}

void Controller::worker() {
  while (auto key = queue_.get()) {
    auto outcome = reconcile(*key);
    if (!outcome) {
      std::cerr << "reconcile " << *key << ": " << outcome.error().describe() << "\n";
      queue_.addRateLimited(*key);
    } else {
      queue_.forget(*key);
      if (outcome->requeueAfter)
        queue_.addAfter(*key, *outcome->requeueAfter);
    }
    queue_.done(*key);
  }
}

ApiResult<Controller::Outcome> Controller::reconcile(const std::string& key) {
  if (key.starts_with("node/"))
    return reconcileNode(key.substr(5));
  if (key.starts_with("chain/"))
    return reconcileChain(key.substr(6));
  return Outcome{};
}

ApiResult<Controller::Outcome> Controller::reconcileNode(const std::string& name) {
  bool nodeExists = nodes_.get(name).has_value();
  bool configExists = nodeConfigs_.get(name).has_value();
  if (nodeExists && !configExists) {
    Json config = Json::parse(R"({"apiVersion":"bpfchain.io/v1alpha1","kind":"BpfNodeConfig",
                                  "metadata":{},"spec":{}})");
    config["metadata"]["name"] = Json::string(name);
    auto created = client_.create(kNodeConfigs, config, {.fieldManager = kStatusManager});
    if (!created && !created.error().alreadyExists())
      return std::move(created).error();
  } else if (!nodeExists && configExists) {
    // No garbage collector follows owner references in every cluster (nor in the test bed).
    auto removed = client_.remove(kNodeConfigs, "", name);
    if (!removed && !removed.error().notFound())
      return std::move(removed).error();
  }
  return Outcome{};
}

ApiResult<void> Controller::applyEntry(const std::string& chain, const std::string& node,
                                       const Json& entry) {
  Json config = Json::parse(R"({"apiVersion":"bpfchain.io/v1alpha1","kind":"BpfNodeConfig",
                                "metadata":{},"spec":{"chains":[]}})");
  config["metadata"]["name"] = Json::string(node);
  config["spec"]["chains"][0] = entry;
  auto applied = client_.apply(kNodeConfigs, config, managerOf(chain), true);
  if (!applied)
    return std::move(applied).error();
  return {};
}

ApiResult<void> Controller::releaseEntry(const std::string& chain, const std::string& node) {
  // A JSON patch that removes exactly this chain's entry, guarded by a test of its name, so a
  // stale index fails (and the next reconcile retries) instead of removing another chain.
  // (Applying nothing as the chain's manager would also drop a now empty spec.)
  auto config = nodeConfigs_.get(node);
  const Json* list = config ? field(*config, {"spec", "chains"}) : nullptr;
  if (!list || !list->is_array())
    return {};
  const auto& entries = list->as_array();
  for (size_t i = 0; i < entries.size(); ++i) {
    if (k8s::stringAt(entries.at(i), {"name"}) != chain)
      continue;
    std::string path = "/spec/chains/" + std::to_string(i);
    Json patch = Json::array();
    patch[0]["op"] = Json::string("test");
    patch[0]["path"] = Json::string(path + "/name");
    patch[0]["value"] = Json::string(chain);
    patch[1]["op"] = Json::string("remove");
    patch[1]["path"] = Json::string(path);
    auto patched = client_.patch(kNodeConfigs, "", node, k8s::PatchType::Json, patch,
                                 {.fieldManager = kStatusManager});
    if (!patched && !patched.error().notFound())
      return std::move(patched).error();
    return {};
  }
  return {};
}

ApiResult<void> Controller::ensureRevision(const Json& chain) {
  std::string name = k8s::nameOf(chain) + "-" + std::to_string(k8s::generationOf(chain));
  if (revisions_.contains(name))
    return {};
  Json revision = Json::object();
  revision["apiVersion"] = Json::string("apps/v1");
  revision["kind"] = Json::string("ControllerRevision");
  revision["metadata"]["name"] = Json::string(name);
  revision["metadata"]["namespace"] = Json::string(options_.revisionNamespace);
  revision["metadata"]["labels"]["bpfchain.io/chain"] = Json::string(k8s::nameOf(chain));
  revision["revision"] = Json::number(k8s::generationOf(chain));
  revision["data"] = chain.at("spec");
  auto created = client_.create(kRevisions, revision);
  if (!created && !created.error().alreadyExists())
    return std::move(created).error();
  revisions_.insert(name);
  return {};
}

ApiResult<Json> Controller::specAt(const Json& chain, int64_t generation) {
  if (generation == k8s::generationOf(chain))
    return chain.at("spec");
  auto revision = client_.get(kRevisions, options_.revisionNamespace,
                              k8s::nameOf(chain) + "-" + std::to_string(generation));
  if (!revision)
    return std::move(revision).error();
  return revision->at("data");
}

ApiResult<Controller::Outcome> Controller::finalize(const Json& chain) {
  std::string name = k8s::nameOf(chain);
  std::vector<std::string> waiting;
  for (const auto& config : nodeConfigs_.list()) {
    if (namedEntry(config, {"spec", "chains"}, name))
      if (auto r = releaseEntry(name, k8s::nameOf(config)); !r)
        return std::move(r).error();
    if (namedEntry(config, {"status", "chains"}, name))
      waiting.push_back(k8s::nameOf(config));
  }
  auto deleted = parseRfc3339(k8s::metadataString(chain, "deletionTimestamp"));
  bool overdue = deleted && Clock::now() > *deleted + options_.cleanupDeadline;
  if (!waiting.empty() && !overdue)
    return Outcome{std::chrono::seconds(1)};
  if (!waiting.empty()) {
    RolloutDecision none;
    std::string nodes;
    for (const auto& n : waiting)
      nodes += (nodes.empty() ? "" : ", ") + n;
    (void)writeStatus(chain, none,
                      "CleanupTimedOut: agents did not confirm removal within " +
                          std::to_string(options_.cleanupDeadline.count()) + " s: " + nodes);
  }
  // Remove our finalizer only, against the version we read.
  Json patch = Json::object();
  patch["metadata"]["resourceVersion"] = Json::string(k8s::resourceVersionOf(chain));
  Json finalizers = Json::array();
  const Json* list = field(chain, {"metadata", "finalizers"});
  size_t i = 0;
  for (const auto& f : list->as_array())
    if (!(f.is_string() && f.as_string() == kFinalizer))
      finalizers[i++] = f;
  patch["metadata"]["finalizers"] = finalizers;
  auto patched = client_.patch(kChains, "", name, k8s::PatchType::Merge, patch);
  if (!patched && !patched.error().notFound())
    return std::move(patched).error();
  return Outcome{};
}

ApiResult<Controller::Outcome> Controller::reconcileChain(const std::string& name) {
  auto cached = chains_.get(name);
  if (!cached) {
    written_.erase(name);
    // Gone without our finalizer (removed by hand): release what is left on the nodes.
    for (const auto& config : nodeConfigs_.list())
      if (namedEntry(config, {"spec", "chains"}, name))
        if (auto r = releaseEntry(name, k8s::nameOf(config)); !r)
          return std::move(r).error();
    return Outcome{};
  }
  const Json& chain = *cached;
  if (!k8s::metadataString(chain, "deletionTimestamp").empty())
    return hasFinalizer(chain) ? finalize(chain) : Outcome{};
  if (!hasFinalizer(chain)) {
    Json patch = Json::object();
    patch["metadata"]["resourceVersion"] = Json::string(k8s::resourceVersionOf(chain));
    Json finalizers = Json::array();
    size_t i = 0;
    if (const Json* list = field(chain, {"metadata", "finalizers"}); list && list->is_array())
      for (const auto& f : list->as_array())
        finalizers[i++] = f;
    finalizers[i] = Json::string(kFinalizer);
    patch["metadata"]["finalizers"] = finalizers;
    auto patched = client_.patch(kChains, "", name, k8s::PatchType::Merge, patch);
    if (!patched)
      return std::move(patched).error();
    return Outcome{}; // the update comes back through the informer
  }
  if (auto r = ensureRevision(chain); !r)
    return std::move(r).error();

  const Json& spec = chain.at("spec");
  int64_t generation = k8s::generationOf(chain);
  auto selector = k8s::LabelSelector::parse(
      spec.has_field("nodeSelector") ? spec.at("nodeSelector") : Json::null(), "spec.nodeSelector");
  if (!selector)
    return ApiError{0, "InvalidSpec", selector.error().message()};

  std::vector<NodeView> views;
  std::set<std::string> matched;
  for (const auto& node : nodes_.list()) {
    if (!selector->matches(k8s::labelsOf(node)))
      continue;
    std::string nodeName = k8s::nameOf(node);
    matched.insert(nodeName);
    NodeView view{nodeName, std::nullopt, std::nullopt, "", "", ""};
    if (auto config = nodeConfigs_.get(nodeName)) {
      view.assigned = generationIn(namedEntry(*config, {"spec", "chains"}, name));
      if (const Json* reported = namedEntry(*config, {"status", "chains"}, name)) {
        view.reported = generationIn(reported);
        view.phase = k8s::stringAt(*reported, {"phase"});
        view.reason = k8s::stringAt(*reported, {"reason"});
        view.message = k8s::stringAt(*reported, {"message"});
      }
    }
    views.push_back(view);
  }

  RolloutMemory memory = memoryOf(chain);
  if (auto it = written_.find(name);
      it != written_.end() && it->second.generation >= memory.generation)
    memory = it->second;
  RolloutDecision d = planRollout(generation, policyOf(spec, static_cast<int>(views.size())),
                                  memory, views, Clock::now());
  for (const auto& [node, assigned] : d.assign) {
    ApiResult<void> written;
    if (!assigned) {
      written = releaseEntry(name, node);
    } else {
      auto at = specAt(chain, *assigned);
      if (!at)
        return std::move(at).error();
      written = applyEntry(name, node, nodeEntry(name, *assigned, *at));
    }
    if (!written)
      return std::move(written).error();
  }
  for (const auto& config : nodeConfigs_.list())
    if (!matched.contains(k8s::nameOf(config)) && namedEntry(config, {"spec", "chains"}, name))
      if (auto r = releaseEntry(name, k8s::nameOf(config)); !r)
        return std::move(r).error();

  if (auto r = writeStatus(chain, d, ""); !r)
    return std::move(r).error();
  written_[name] = d.memory;
  Outcome outcome;
  if (d.requeueAfter)
    outcome.requeueAfter = *d.requeueAfter;
  return outcome;
}

ApiResult<void> Controller::writeStatus(const Json& chain, const RolloutDecision& d,
                                        const std::string& problem) {
  int64_t generation = k8s::generationOf(chain);
  Json status = Json::object();
  status["observedGeneration"] = Json::number(generation);
  status["nodes"]["matched"] = Json::number(d.matched);
  status["nodes"]["updated"] = Json::number(d.updated);
  status["nodes"]["ready"] = Json::number(d.ready);
  status["nodes"]["failed"] = Json::number(d.failed);
  status["ready"] = Json::string(std::to_string(d.ready) + "/" + std::to_string(d.matched));
  int programs = 0;
  if (const Json* list = field(chain, {"spec", "programs"}); list && list->is_array())
    for (const auto& p : list->as_array())
      programs += !p.has_field("enabled") || p.at("enabled").as_bool();
  status["programs"] = Json::number(programs);
  Json failures = Json::array();
  for (size_t i = 0; i < d.failures.size() && i < 10; ++i) {
    failures[i]["node"] = Json::string(d.failures[i].node);
    failures[i]["reason"] = Json::string(d.failures[i].reason);
    failures[i]["message"] = Json::string(d.failures[i].message);
  }
  status["failures"] = failures;
  status["rollout"]["generation"] = Json::number(d.memory.generation);
  if (d.memory.canaryReadyAt)
    status["rollout"]["canaryReadyTime"] = Json::string(rfc3339(*d.memory.canaryReadyAt));
  if (d.memory.stableGeneration)
    status["rollout"]["stableGeneration"] = Json::number(*d.memory.stableGeneration);
  status["rollout"]["rolledBack"] = Json::boolean(d.memory.rolledBack);

  bool degraded = d.failed > 0 || !problem.empty();
  std::string failureReason = d.failures.empty() ? "" : d.failures[0].reason;
  std::string failureMessage =
      d.failures.empty() ? "" : d.failures[0].node + ": " + d.failures[0].message;
  std::string haltReason = d.memory.rolledBack ? "RolledBack" : "Halted";
  Json conditions = Json::array();
  conditions[0] = condition(chain, "Ready", d.complete && d.failed == 0,
                            d.complete ? (d.failed ? "NodesFailed" : "RolloutComplete")
                                       : (d.halted ? haltReason : "RollingOut"),
                            status["ready"].as_string() + " nodes ready", generation);
  conditions[1] = condition(chain, "Progressing", !d.complete && !d.halted,
                            d.complete ? "RolloutComplete" : (d.halted ? haltReason : "RollingOut"),
                            d.complete ? "" : "waiting for " + d.waitingFor, generation);
  conditions[2] = condition(chain, "Degraded", degraded,
                            !problem.empty() ? problem.substr(0, problem.find(':'))
                                             : (degraded ? failureReason : "NoFailures"),
                            !problem.empty() ? problem : failureMessage, generation);
  status["conditions"] = conditions;

  Json body = Json::object();
  body["apiVersion"] = Json::string("bpfchain.io/v1alpha1");
  body["kind"] = Json::string("BpfChain");
  body["metadata"]["name"] = Json::string(k8s::nameOf(chain));
  body["status"] = status;
  auto applied = client_.apply(kChains, body, kStatusManager, true, "status");
  if (!applied && !applied.error().notFound())
    return std::move(applied).error();
  return {};
}

} // namespace bpfchain::op
