// A BpfNodeConfig's spec.chains[] entry forms, and its status as the agent writes it (DESIGN.md
// section 2; the CRD's schema is crds/generate.py's): what runs of each chain the node was given,
// and the agent's facts. The agent fills this struct and sends toJson() of it; crd_schema_test
// keeps its fields and the CRD's in step (nodeConfigStatusFields()).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "k8s/object.h"

namespace bpfchain::api {

// The three forms of a BpfNodeConfig spec.chains[] entry: a chain written inline
// (chain_spec.h: the standalone file's form, and older operators'), a reference to a chain
// revision (chain_ref.h), or a membership entry that follows the chain's published rollout
// (published_rollout.h).
enum class ChainEntryKind { Inline, Reference, Membership };
ChainEntryKind chainEntryKind(const k8s::Json& entry);
// Every field an entry may have, of any form, as paths (chain_spec.h's fieldPaths).
std::vector<std::string> chainEntryFields();

struct NodeAttachmentStatus {
  std::string interface;
  std::string hook;                 // dataplane::hookName
  std::string pod;                  // namespace/name for a pod interface; "" = not written
  std::vector<uint32_t> programIds; // programIDs: root first, then the chain's programs
};

struct NodeChainStatus {
  std::string name;
  int64_t generation = 0;
  int64_t runningGeneration = 0; // 0 = not written (nothing runs)
  std::string revision;          // "" = not written (an inline chain)
  std::string runningRevision;   // "" = not written
  std::string phase;             // Applying | Ready | Idle | Failed | Removing
  std::string reason;
  std::string message;
  std::vector<NodeAttachmentStatus> attachments;
};

struct NodeAgentStatus {
  std::string version;
  std::string kernel;
  std::string heartbeatTime; // RFC 3339; "" = not written
  std::map<std::string, bool> features;
};

// A metav1.Condition.
struct NodeCondition {
  std::string type;
  std::string status; // True | False | Unknown
  std::string reason;
  std::string message;
  std::string lastTransitionTime;
  int64_t observedGeneration = 0;
};

struct NodeConfigStatus {
  int64_t observedGeneration = 0;
  NodeAgentStatus agent;
  std::vector<NodeChainStatus> chains; // in spec order
  // For kubectl get's columns.
  int64_t chainCount = 0;
  int64_t readyCount = 0;
  int64_t failedCount = 0;
  int64_t idleCount = 0;
  std::vector<NodeCondition> conditions;
};

k8s::Json toJson(const NodeConfigStatus& status);
// Every field toJson can write, as paths ("chains[].attachments[].programIDs[]"); a map of
// values (agent.features) is one field.
std::vector<std::string> nodeConfigStatusFields();

// The node's Ready condition from its chains' counts (True when none failed), as the agent
// reports it; `since` is when it last changed.
NodeCondition readyCondition(const NodeConfigStatus& status, std::string since, int64_t generation);

} // namespace bpfchain::api
