// A BpfNodeConfig's spec.chains[] entry forms, and its status as the agent writes it (DESIGN.md
// section 2; the CRD's schema is crds/generate.py's): what runs of each chain the node was given,
// and the agent's facts. The agent fills this struct and sends toJson() of it; crd_schema_test
// keeps its fields and the CRD's in step (nodeConfigStatusFields()).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "api/chain_ref.h"
#include "k8s/object.h"
#include "system/result.h"

namespace bpfchain::api {

// The three forms of a BpfNodeConfig spec.chains[] entry: a chain written inline
// (chain_spec.h: the standalone file's form, and older operators'), a reference to a chain
// revision (chain_ref.h), or a membership entry that follows the chain's published rollout
// (published_rollout.h).
enum class ChainEntryKind { Inline, Reference, Membership };
ChainEntryKind chainEntryKind(const k8s::Json& entry);
// Every field an entry may have, of any form, as paths (chain_spec.h's fieldPaths).
std::vector<std::string> chainEntryFields();

// A spec.chains[] entry, typed. An inline entry's JSON stays the caller's, for parseChain
// (chain_spec.h) to read with its own field-path errors.
struct NodeChainEntry {
  ChainEntryKind kind = ChainEntryKind::Inline;
  std::string name;                  // "" when absent or not a string
  std::optional<int64_t> generation; // a reference's or an inline copy's; nullopt: absent (a
                                     // membership entry's comes from the chain's rollout)
  std::string revision;              // a reference's; "" otherwise
  std::optional<ChainRef> ref;       // a reference's, set by nodeChainEntryFromJson only
};
// The form and the fields every reader needs, read leniently as the operator always has (a
// field absent or of another type reads as empty, a generation as any number): never fails,
// copies no more than the name and revision (the operator's index reads 1,000 of these per
// change).
NodeChainEntry chainEntryOf(const k8s::Json& entry);
// The same, strict: a reference parses as a ChainRef (a `placement` a CRD's default put in is
// dropped: the revision's data says where the chain goes), a membership entry needs its name.
// Errors name `field` (e.g. "spec.chains[2].digest"). An inline entry is not checked here.
Result<NodeChainEntry> nodeChainEntryFromJson(const k8s::Json& entry, const std::string& field);

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
// Sets the counts (chainCount, readyCount, failedCount, idleCount) from status.chains' phases.
void countPhases(NodeConfigStatus& status);

// What the operator reads of a status.chains[] entry (the rest it never looks at): leniently,
// as chainEntryOf, so an entry of any agent version is read. generation: nullopt when absent.
struct NodeChainReport {
  std::string name;
  std::optional<int64_t> generation;
  std::string phase, reason, message;
};
NodeChainReport chainReportOf(const k8s::Json& entry);
// A status.chains[] entry as toJson writes it, every field. Lenient on absence, as an older
// agent's entry lacks fields (runningGeneration, revisions, pod, attachments): those read as
// toJson's "not written" values. Strict on types: a field present with another type is an
// error naming it under `field` (e.g. "status.chains[1].attachments[0].programIDs[2]").
Result<NodeChainStatus> nodeChainStatusFromJson(const k8s::Json& entry, const std::string& field);
// Every field toJson can write, as paths ("chains[].attachments[].programIDs[]"); a map of
// values (agent.features) is one field.
std::vector<std::string> nodeConfigStatusFields();

// A BpfNodeConfig's spec.chains or status.chains (part "spec" | "status"), or nullptr when it
// has none; lenient, as the operator's index has always been (a list of another type reads as
// none). Entries stay JSON: the operator writes spec entries back as they are; read one with
// chainEntryOf / chainReportOf.
const k8s::Json* chainListOf(const k8s::Json& nodeConfig, const char* part);
// status.agent.heartbeatTime (RFC 3339), "" when not written.
std::string heartbeatTimeOf(const k8s::Json& nodeConfig);

// The node's Ready condition from its chains' counts (True when none failed), as the agent
// reports it; `since` is when it last changed.
NodeCondition readyCondition(const NodeConfigStatus& status, std::string since, int64_t generation);

} // namespace bpfchain::api
