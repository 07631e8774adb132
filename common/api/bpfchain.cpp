#include "api/bpfchain.h"

#include "system/time.h"

namespace bpfchain::api {
namespace {

using k8s::Json;

const Json* at(const Json& obj, const char* key) {
  if (!obj.is_object() || !obj.has_field(key))
    return nullptr;
  return &obj.at(key);
}

// Lenient readers for the status: a value of another type is taken as absent.
std::string stringOr(const Json& obj, const char* key) {
  const Json* v = at(obj, key);
  return v && v->is_string() ? v->as_string() : "";
}
std::optional<int64_t> integerOf(const Json& obj, const char* key) {
  const Json* v = at(obj, key);
  if (!v || !v->is_number())
    return std::nullopt;
  return v->as_number().to_int64();
}
std::optional<TimePoint> timeOf(const Json& obj, const char* key) {
  return parseRfc3339(stringOr(obj, key));
}
std::vector<std::string> stringsOf(const Json& obj, const char* key) {
  std::vector<std::string> out;
  if (const Json* list = at(obj, key); list && list->is_array())
    for (const auto& s : list->as_array())
      if (s.is_string())
        out.push_back(s.as_string());
  return out;
}

// Strict readers for the spec: wrong types are errors naming the field.
Result<std::optional<int>> optionalInt(const Json& obj, const char* key, const std::string& path) {
  const Json* v = at(obj, key);
  if (!v || v->is_null())
    return std::optional<int>();
  if (!v->is_integer())
    return invalidError(path + "." + key + ": an integer is required");
  return std::optional<int>(v->as_integer());
}

Result<ObjectMeta> metadataOf(const Json& object) {
  const Json* m = at(object, "metadata");
  if (!m || !m->is_object())
    return invalidError("metadata: an object is required");
  ObjectMeta meta = objectMetaOf(object);
  if (meta.name.empty())
    return invalidError("metadata.name: a non-empty string is required");
  return meta;
}

Result<RolloutSpec> rolloutOf(const Json& spec) {
  RolloutSpec r;
  const Json* rollout = at(spec, "rollout");
  if (!rollout || rollout->is_null())
    return r;
  if (!rollout->is_object())
    return invalidError("spec.rollout: an object is required");
  if (const Json* m = at(*rollout, "maxUnavailable")) {
    if (m->is_integer() && m->as_integer() >= 0)
      r.maxUnavailable = std::to_string(m->as_integer());
    else if (m->is_string() && m->as_string().size() > 1 && m->as_string().back() == '%' &&
             m->as_string().find_first_not_of("0123456789") == m->as_string().size() - 1)
      r.maxUnavailable = m->as_string();
    else
      return invalidError(
          "spec.rollout.maxUnavailable: a non-negative integer or a percentage (\"25%\") is "
          "required");
  }
  auto canary = optionalInt(*rollout, "canaryNodes", "spec.rollout");
  if (!canary)
    return std::move(canary).error();
  r.canaryNodes = *canary;
  auto pause = optionalInt(*rollout, "pauseSeconds", "spec.rollout");
  if (!pause)
    return std::move(pause).error();
  r.pauseSeconds = *pause;
  if (const Json* p = at(*rollout, "failurePolicy"); p && !p->is_null()) {
    std::string policy = p->is_string() ? p->as_string() : "";
    if (policy == "Halt")
      r.failurePolicy = FailurePolicy::Halt;
    else if (policy == "Continue")
      r.failurePolicy = FailurePolicy::Continue;
    else if (policy == "Rollback")
      r.failurePolicy = FailurePolicy::Rollback;
    else
      return invalidError(
          "spec.rollout.failurePolicy: one of Halt, Continue, Rollback is required");
  }
  return r;
}

Result<BpfChainSpec> specOf(const Json& object) {
  const Json* raw = at(object, "spec");
  if (!raw || !raw->is_object())
    return invalidError("spec: an object is required");
  BpfChainSpec spec;
  spec.raw = *raw;
  if (const Json* s = at(*raw, "nodeSelector"))
    spec.nodeSelector = *s;
  auto rollout = rolloutOf(*raw);
  if (!rollout)
    return std::move(rollout).error();
  spec.rollout = std::move(*rollout);
  spec.hook = stringOr(*raw, "hook");
  auto priority = optionalInt(*raw, "priority", "spec");
  if (!priority)
    return std::move(priority).error();
  spec.priority = *priority;
  spec.enabledPrograms = enabledPrograms(*raw);
  return spec;
}

Condition conditionOf(const Json& c) {
  return {stringOr(c, "type"),
          stringOr(c, "status"),
          stringOr(c, "reason"),
          stringOr(c, "message"),
          integerOf(c, "observedGeneration").value_or(0),
          stringOr(c, "lastTransitionTime")};
}

} // namespace

ObjectMeta objectMetaOf(const Json& object) {
  ObjectMeta meta;
  const Json* m = at(object, "metadata");
  if (!m || !m->is_object())
    return meta;
  meta.name = stringOr(*m, "name");
  meta.uid = stringOr(*m, "uid");
  meta.resourceVersion = stringOr(*m, "resourceVersion");
  meta.generation = integerOf(*m, "generation").value_or(0);
  meta.deleting = !stringOr(*m, "deletionTimestamp").empty();
  meta.deletionTimestamp = timeOf(*m, "deletionTimestamp");
  meta.creationTimestamp = timeOf(*m, "creationTimestamp");
  meta.finalizers = stringsOf(*m, "finalizers");
  return meta;
}

std::optional<int> priorityOf(const Json& spec) {
  const Json* v = at(spec, "priority");
  if (!v || !v->is_integer())
    return std::nullopt;
  return v->as_integer();
}

BpfChainStatus bpfChainStatusFromJson(const Json& object) {
  BpfChainStatus s;
  const Json* status = at(object, "status");
  if (!status || !status->is_object())
    return s;
  s.observedGeneration = integerOf(*status, "observedGeneration").value_or(0);
  s.phase = stringOr(*status, "phase");
  if (const Json* n = at(*status, "nodes"); n && n->is_object())
    s.nodes = {static_cast<int>(integerOf(*n, "matched").value_or(0)),
               static_cast<int>(integerOf(*n, "updated").value_or(0)),
               static_cast<int>(integerOf(*n, "ready").value_or(0)),
               static_cast<int>(integerOf(*n, "failed").value_or(0)),
               static_cast<int>(integerOf(*n, "stale").value_or(0)),
               static_cast<int>(integerOf(*n, "idle").value_or(0))};
  s.programs = static_cast<int>(integerOf(*status, "programs").value_or(0));
  if (const Json* list = at(*status, "failures"); list && list->is_array())
    for (const auto& f : list->as_array())
      s.failures.push_back({stringOr(f, "node"), stringOr(f, "reason"), stringOr(f, "message")});
  if (const Json* r = at(*status, "rollout"); r && r->is_object()) {
    s.rollout.generation = integerOf(*r, "generation").value_or(0);
    s.rollout.canaryReadyTime = timeOf(*r, "canaryReadyTime");
    s.rollout.stableGeneration = integerOf(*r, "stableGeneration");
    const Json* rolledBack = at(*r, "rolledBack");
    s.rollout.rolledBack = rolledBack && rolledBack->is_boolean() && rolledBack->as_bool();
    s.rollout.waitingSince = timeOf(*r, "waitingSince");
    s.rollout.finishedNodes = static_cast<int>(integerOf(*r, "finishedNodes").value_or(0));
    s.rollout.staleNodes = stringsOf(*r, "staleNodes");
    s.rollout.failedNodes = stringsOf(*r, "failedNodes");
  }
  if (auto published = publishedOf(object); published && *published)
    s.published = std::move(**published);
  else if (!published) // only the operator writes it: start from nothing published
    s.publishedError = published.error().message();
  if (const Json* list = at(*status, "conditions"); list && list->is_array())
    for (const auto& c : list->as_array())
      s.conditions.push_back(conditionOf(c));
  return s;
}

namespace {

Json stringsJson(const std::vector<std::string>& from) {
  Json list = Json::array();
  for (size_t i = 0; i < from.size(); ++i)
    list[i] = Json::string(from[i]);
  return list;
}

Json rolloutJson(const RolloutStatus& r) {
  Json rollout = Json::object();
  rollout["generation"] = Json::number(r.generation);
  if (r.canaryReadyTime)
    rollout["canaryReadyTime"] = Json::string(rfc3339(*r.canaryReadyTime));
  if (r.stableGeneration)
    rollout["stableGeneration"] = Json::number(*r.stableGeneration);
  rollout["rolledBack"] = Json::boolean(r.rolledBack);
  if (r.waitingSince)
    rollout["waitingSince"] = Json::string(rfc3339(*r.waitingSince));
  rollout["finishedNodes"] = Json::number(r.finishedNodes);
  rollout["staleNodes"] = stringsJson(r.staleNodes);
  rollout["failedNodes"] = stringsJson(r.failedNodes);
  return rollout;
}

Json conditionJson(const Condition& c) {
  Json out = Json::object();
  out["type"] = Json::string(c.type);
  out["status"] = Json::string(c.status);
  out["reason"] = Json::string(c.reason);
  out["message"] = Json::string(c.message);
  out["observedGeneration"] = Json::number(c.observedGeneration);
  out["lastTransitionTime"] = Json::string(c.lastTransitionTime);
  return out;
}

} // namespace

int enabledPrograms(const Json& spec) {
  int n = 0;
  if (const Json* list = at(spec, "programs"); list && list->is_array())
    for (const auto& p : list->as_array()) {
      const Json* enabled = at(p, "enabled");
      n += !enabled || !enabled->is_boolean() || enabled->as_bool();
    }
  return n;
}

bool ObjectMeta::hasFinalizer(const std::string& finalizer) const {
  for (const auto& f : finalizers)
    if (f == finalizer)
      return true;
  return false;
}

const Condition* BpfChainStatus::condition(const std::string& type) const {
  for (const auto& c : conditions)
    if (c.type == type)
      return &c;
  return nullptr;
}

Result<BpfChain> bpfChainFromJson(const Json& object) {
  BpfChain chain;
  auto metadata = metadataOf(object);
  if (!metadata)
    return std::move(metadata).error();
  chain.metadata = std::move(*metadata);
  auto spec = specOf(object);
  if (!spec)
    return std::move(spec).error();
  chain.spec = std::move(*spec);
  chain.status = bpfChainStatusFromJson(object);
  return chain;
}

BpfChain bpfChainUncheckedFromJson(const Json& object) {
  BpfChain chain;
  chain.metadata = objectMetaOf(object);
  if (const Json* raw = at(object, "spec")) {
    chain.spec.raw = *raw;
    chain.spec.enabledPrograms = enabledPrograms(*raw);
  }
  chain.status = bpfChainStatusFromJson(object);
  return chain;
}

Json statusToJson(const BpfChainStatus& s) {
  Json status = Json::object();
  status["observedGeneration"] = Json::number(s.observedGeneration);
  status["phase"] = Json::string(s.phase);
  Json nodes = Json::object();
  nodes["matched"] = Json::number(s.nodes.matched);
  nodes["updated"] = Json::number(s.nodes.updated);
  nodes["ready"] = Json::number(s.nodes.ready);
  nodes["failed"] = Json::number(s.nodes.failed);
  nodes["stale"] = Json::number(s.nodes.stale);
  nodes["idle"] = Json::number(s.nodes.idle);
  status["nodes"] = nodes;
  status["ready"] =
      Json::string(std::to_string(s.nodes.ready) + "/" + std::to_string(s.nodes.matched));
  status["programs"] = Json::number(s.programs);
  Json failures = Json::array();
  for (size_t i = 0; i < s.failures.size() && i < 10; ++i) {
    failures[i]["node"] = Json::string(s.failures[i].node);
    failures[i]["reason"] = Json::string(s.failures[i].reason);
    failures[i]["message"] = Json::string(s.failures[i].message);
  }
  status["failures"] = failures;
  status["rollout"] = rolloutJson(s.rollout);
  status["published"] = toJson(s.published);
  Json conditions = Json::array();
  for (size_t i = 0; i < s.conditions.size(); ++i)
    conditions[i] = conditionJson(s.conditions[i]);
  status["conditions"] = conditions;
  return status;
}

} // namespace bpfchain::api
