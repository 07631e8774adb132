#include "api/node_config_types.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "api/chain_spec.h"
#include "api/published_rollout.h"

namespace bpfchain::api {

namespace {

using k8s::Json;

Json toJson(const NodeAttachmentStatus& a) {
  Json j = Json::object();
  j["interface"] = Json::string(a.interface);
  j["hook"] = Json::string(a.hook);
  if (!a.pod.empty())
    j["pod"] = Json::string(a.pod);
  Json ids = Json::array();
  for (size_t n = 0; n < a.programIds.size(); ++n)
    ids[n] = Json::number(static_cast<int64_t>(a.programIds[n]));
  j["programIDs"] = ids;
  return j;
}

Json toJson(const NodeChainStatus& c) {
  Json j = Json::object();
  j["name"] = Json::string(c.name);
  j["generation"] = Json::number(c.generation);
  if (c.runningGeneration != 0)
    j["runningGeneration"] = Json::number(c.runningGeneration);
  if (!c.revision.empty())
    j["revision"] = Json::string(c.revision);
  if (!c.runningRevision.empty())
    j["runningRevision"] = Json::string(c.runningRevision);
  j["phase"] = Json::string(c.phase);
  // Empty reason and message are left out (omitempty): a chain that is Ready has neither, and
  // every byte of a node's status is decoded, validated and stored again by the API server on
  // each of the 1,000 writes of a rollout (docs/benchmarks.md). Readers take absent as "".
  if (!c.reason.empty())
    j["reason"] = Json::string(c.reason);
  if (!c.message.empty())
    j["message"] = Json::string(c.message);
  Json attachments = Json::array();
  for (size_t k = 0; k < c.attachments.size(); ++k)
    attachments[k] = toJson(c.attachments[k]);
  j["attachments"] = attachments;
  return j;
}

Json toJson(const NodeAgentStatus& a) {
  Json j = Json::object();
  j["version"] = Json::string(a.version);
  j["kernel"] = Json::string(a.kernel);
  if (!a.heartbeatTime.empty())
    j["heartbeatTime"] = Json::string(a.heartbeatTime);
  Json features = Json::object();
  for (const auto& [name, on] : a.features)
    features[name] = Json::boolean(on);
  j["features"] = features;
  return j;
}

Json toJson(const NodeCondition& c) {
  Json j = Json::object();
  j["type"] = Json::string(c.type);
  j["status"] = Json::string(c.status);
  j["reason"] = Json::string(c.reason);
  j["message"] = Json::string(c.message);
  j["lastTransitionTime"] = Json::string(c.lastTransitionTime);
  j["observedGeneration"] = Json::number(c.observedGeneration);
  return j;
}

// Leaves of `value` as paths; an empty object or list is a leaf.
void appendPaths(const Json& value, const std::string& path, std::vector<std::string>& out) {
  if (value.is_object() && value.size() > 0) {
    for (const auto& kv : value.as_object())
      appendPaths(kv.second, path.empty() ? kv.first : path + "." + kv.first, out);
  } else if (value.is_array() && value.size() > 0) {
    appendPaths(value.as_array().at(0), path + "[]", out);
  } else {
    out.push_back(path);
  }
}

} // namespace

ChainEntryKind chainEntryKind(const Json& entry) {
  if (isMembership(entry))
    return ChainEntryKind::Membership;
  return isReference(entry) ? ChainEntryKind::Reference : ChainEntryKind::Inline;
}

namespace {

// The lenient reads: absent, or another type, is empty.
std::string stringOr(const Json& obj, const char* key) {
  if (!obj.is_object() || !obj.has_field(key))
    return {};
  const Json& v = obj.at(key);
  return v.is_string() ? v.as_string() : std::string();
}

std::optional<int64_t> numberOr(const Json& obj, const char* key) {
  if (!obj.is_object() || !obj.has_field(key) || !obj.at(key).is_number())
    return std::nullopt;
  return obj.at(key).as_number().to_int64();
}

// The strict reads: absent leaves `out` as it is; another type is an error naming the field.
Result<void> readString(const Json& obj, const char* key, const std::string& field,
                        std::string& out) {
  if (!obj.has_field(key))
    return {};
  if (!obj.at(key).is_string())
    return invalidError(field + "." + key + ": a string is required");
  out = obj.at(key).as_string();
  return {};
}

Result<void> readInteger(const Json& obj, const char* key, const std::string& field, int64_t& out) {
  if (!obj.has_field(key))
    return {};
  if (!obj.at(key).is_integer())
    return invalidError(field + "." + key + ": an integer is required");
  out = obj.at(key).as_number().to_int64();
  return {};
}

Result<NodeAttachmentStatus> attachmentFromJson(const Json& a, const std::string& field) {
  if (!a.is_object())
    return invalidError(field + ": an object is required");
  NodeAttachmentStatus out;
  for (auto [key, to] : {std::pair{"interface", &out.interface}, std::pair{"hook", &out.hook},
                         std::pair{"pod", &out.pod}})
    if (auto read = readString(a, key, field, *to); !read)
      return std::move(read).error();
  if (!a.has_field("programIDs"))
    return out;
  if (!a.at("programIDs").is_array())
    return invalidError(field + ".programIDs: a list is required");
  const auto& ids = a.at("programIDs").as_array();
  for (size_t n = 0; n < ids.size(); ++n) {
    const Json& id = ids.at(n);
    if (!id.is_integer() || id.as_number().to_int64() < 0 ||
        id.as_number().to_int64() > int64_t{UINT32_MAX})
      return invalidError(field + ".programIDs[" + std::to_string(n) +
                          "]: a program id (0 to 2^32-1) is required");
    out.programIds.push_back(static_cast<uint32_t>(id.as_number().to_int64()));
  }
  return out;
}

} // namespace

NodeChainEntry chainEntryOf(const Json& entry) {
  NodeChainEntry out;
  out.kind = chainEntryKind(entry);
  out.name = stringOr(entry, "name");
  out.generation = numberOr(entry, "generation");
  if (out.kind == ChainEntryKind::Reference)
    out.revision = stringOr(entry, "revision");
  return out;
}

Result<NodeChainEntry> nodeChainEntryFromJson(const Json& entry, const std::string& field) {
  NodeChainEntry out = chainEntryOf(entry);
  switch (out.kind) {
  case ChainEntryKind::Reference: {
    auto withoutPlacement = [](Json e) {
      e.erase("placement");
      return e;
    };
    Result<ChainRef> ref = entry.has_field("placement")
                               ? chainRefFromJson(withoutPlacement(entry), field)
                               : chainRefFromJson(entry, field);
    if (!ref)
      return std::move(ref).error();
    out.ref = std::move(*ref);
    return out;
  }
  case ChainEntryKind::Membership:
    if (out.name.empty())
      return invalidError(field + ".name: a non-empty string is required");
    return out;
  case ChainEntryKind::Inline:
    return out;
  }
  return out;
}

NodeChainReport chainReportOf(const Json& entry) {
  return {stringOr(entry, "name"), numberOr(entry, "generation"), stringOr(entry, "phase"),
          stringOr(entry, "reason"), stringOr(entry, "message")};
}

Result<NodeChainStatus> nodeChainStatusFromJson(const Json& entry, const std::string& field) {
  if (!entry.is_object())
    return invalidError(field + ": an object is required");
  NodeChainStatus out;
  if (auto read = readString(entry, "name", field, out.name); !read)
    return std::move(read).error();
  if (out.name.empty())
    return invalidError(field + ".name: a non-empty string is required");
  for (auto [key, to] :
       {std::pair{"revision", &out.revision}, std::pair{"runningRevision", &out.runningRevision},
        std::pair{"phase", &out.phase}, std::pair{"reason", &out.reason},
        std::pair{"message", &out.message}})
    if (auto read = readString(entry, key, field, *to); !read)
      return std::move(read).error();
  for (auto [key, to] : {std::pair{"generation", &out.generation},
                         std::pair{"runningGeneration", &out.runningGeneration}})
    if (auto read = readInteger(entry, key, field, *to); !read)
      return std::move(read).error();
  if (!entry.has_field("attachments"))
    return out;
  if (!entry.at("attachments").is_array())
    return invalidError(field + ".attachments: a list is required");
  const auto& attachments = entry.at("attachments").as_array();
  for (size_t k = 0; k < attachments.size(); ++k) {
    auto a =
        attachmentFromJson(attachments.at(k), field + ".attachments[" + std::to_string(k) + "]");
    if (!a)
      return std::move(a).error();
    out.attachments.push_back(std::move(*a));
  }
  return out;
}

std::vector<std::string> chainEntryFields() {
  std::vector<std::string> fields = fieldPaths(chainSchema());
  for (auto more : {chainRefFields(), membershipFields()})
    for (const char* f : more)
      if (std::find(fields.begin(), fields.end(), f) == fields.end())
        fields.emplace_back(f);
  return fields;
}

Json toJson(const NodeConfigStatus& status) {
  Json s = Json::object();
  s["observedGeneration"] = Json::number(status.observedGeneration);
  s["agent"] = toJson(status.agent);
  Json chains = Json::array();
  for (size_t i = 0; i < status.chains.size(); ++i)
    chains[i] = toJson(status.chains[i]);
  s["chains"] = chains;
  s["chainCount"] = Json::number(status.chainCount);
  s["readyCount"] = Json::number(status.readyCount);
  s["failedCount"] = Json::number(status.failedCount);
  s["idleCount"] = Json::number(status.idleCount);
  Json conditions = Json::array();
  for (size_t i = 0; i < status.conditions.size(); ++i)
    conditions[i] = toJson(status.conditions[i]);
  s["conditions"] = conditions;
  return s;
}

std::vector<std::string> nodeConfigStatusFields() {
  // Every optional field set, one of each list: the paths are those toJson writes.
  NodeConfigStatus full;
  full.agent.heartbeatTime = "t";
  NodeChainStatus chain;
  chain.runningGeneration = 1;
  chain.revision = chain.runningRevision = "r";
  chain.reason = chain.message = "m";
  chain.attachments.push_back({"eth0", "xdp", "ns/pod", {1}});
  full.chains.push_back(chain);
  full.conditions.emplace_back();
  std::vector<std::string> out;
  appendPaths(toJson(full), "", out);
  return out;
}

const k8s::Json* chainListOf(const k8s::Json& nodeConfig, const char* part) {
  if (!nodeConfig.is_object() || !nodeConfig.has_field(part))
    return nullptr;
  const k8s::Json& in = nodeConfig.at(part);
  if (!in.is_object() || !in.has_field("chains") || !in.at("chains").is_array())
    return nullptr;
  return &in.at("chains");
}

std::string heartbeatTimeOf(const k8s::Json& nodeConfig) {
  return k8s::stringAt(nodeConfig, {"status", "agent", "heartbeatTime"});
}

void countPhases(NodeConfigStatus& status) {
  status.chainCount = static_cast<int64_t>(status.chains.size());
  status.readyCount = status.failedCount = status.idleCount = 0;
  for (const NodeChainStatus& c : status.chains) {
    status.readyCount += c.phase == "Ready";
    status.failedCount += c.phase == "Failed";
    status.idleCount += c.phase == "Idle";
  }
}

NodeCondition readyCondition(const NodeConfigStatus& status, std::string since,
                             int64_t generation) {
  bool ready = status.failedCount == 0;
  return {"Ready",
          ready ? "True" : "False",
          ready ? "ChainsReady" : "ChainsFailed",
          ready ? std::to_string(status.chainCount) + " chains ready"
                : std::to_string(status.failedCount) + " of " + std::to_string(status.chainCount) +
                      " chains failed",
          std::move(since),
          generation};
}

} // namespace bpfchain::api
