#include "api/node_config_types.h"

#include <algorithm>

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
  j["reason"] = Json::string(c.reason);
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
  chain.attachments.push_back({"eth0", "xdp", "ns/pod", {1}});
  full.chains.push_back(chain);
  full.conditions.emplace_back();
  std::vector<std::string> out;
  appendPaths(toJson(full), "", out);
  return out;
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
