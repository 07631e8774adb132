// A BpfChain as the operator reads and writes it (DESIGN.md section 2; crds/generate.py),
// kubebuilder's *_types.go in C++: parsed once from the API server's JSON, each error naming
// its field ("spec.rollout.canaryNodes: an integer is required"). What the operator decides
// with is typed; the spec is kept raw as well, because a ControllerRevision stores it and its
// digest is over it exactly as the API server returned it (the agents parse the programs).
//
// The status is the operator's own: read leniently (a field of the wrong type is taken as
// absent, as a status written by an older operator may be), except status.published, whose
// error is kept in publishedError for the operator to log. statusToJson writes it back.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "api/published_rollout.h"
#include "k8s/object.h"
#include "system/result.h"

namespace bpfchain::api {

using TimePoint = std::chrono::system_clock::time_point;

struct ObjectMeta {
  std::string name, uid, resourceVersion;
  int64_t generation = 0;
  bool deleting = false; // metadata.deletionTimestamp is set
  std::optional<TimePoint> deletionTimestamp;
  std::optional<TimePoint> creationTimestamp;
  std::vector<std::string> finalizers;
  bool hasFinalizer(const std::string& finalizer) const;
};

enum class FailurePolicy { Halt, Continue, Rollback };

struct RolloutSpec {
  // "25%" or "3": the CRD's int-or-percent, as text (resolved against the matched nodes).
  std::optional<std::string> maxUnavailable;
  std::optional<int> canaryNodes, pauseSeconds;
  FailurePolicy failurePolicy = FailurePolicy::Halt;
};

struct BpfChainSpec {
  k8s::Json nodeSelector = k8s::Json::null(); // k8s::LabelSelector::parse judges it
  RolloutSpec rollout;
  std::string hook;
  std::optional<int> priority;
  int enabledPrograms = 0; // spec.programs[] whose `enabled` is not false
  k8s::Json raw;           // the whole spec, as returned
};

struct Condition {
  std::string type, status, reason, message;
  int64_t observedGeneration = 0;
  std::string lastTransitionTime; // as written (RFC 3339)
  bool operator==(const Condition&) const = default;
};

struct NodeCounts {
  int matched = 0, updated = 0, ready = 0, failed = 0, stale = 0, idle = 0;
  bool operator==(const NodeCounts&) const = default;
};

struct NodeFailureStatus {
  std::string node, reason, message;
  bool operator==(const NodeFailureStatus&) const = default;
};

// status.rollout: what the operator remembers between reconciles (op::RolloutMemory).
struct RolloutStatus {
  int64_t generation = 0;
  std::optional<TimePoint> canaryReadyTime;
  std::optional<int64_t> stableGeneration;
  bool rolledBack = false;
  std::optional<TimePoint> waitingSince;
  int finishedNodes = 0;
  std::vector<std::string> staleNodes, failedNodes;
  bool operator==(const RolloutStatus&) const = default;
};

struct BpfChainStatus {
  int64_t observedGeneration = 0;
  std::string phase;
  NodeCounts nodes;
  int programs = 0;
  std::vector<NodeFailureStatus> failures; // at most 10 are written
  RolloutStatus rollout;
  PublishedRollout published;
  std::vector<Condition> conditions;
  std::string publishedError; // why status.published was ignored ("" when it was not)
  const Condition* condition(const std::string& type) const;
};

struct BpfChain {
  ObjectMeta metadata;
  BpfChainSpec spec;
  BpfChainStatus status;
};

// Errors name the field; a status never makes it fail.
Result<BpfChain> bpfChainFromJson(const k8s::Json& object);
// What can be read of an object whose spec may not parse (bpfChainFromJson failed), never
// failing: metadata and status leniently, spec.raw and spec.enabledPrograms; the other spec
// fields stay at their defaults.
BpfChain bpfChainUncheckedFromJson(const k8s::Json& object);
// Any object's metadata, leniently (a field absent or of another type reads as empty): the
// operator reads ControllerRevisions' and BpfNodeConfigs' with it too.
ObjectMeta objectMetaOf(const k8s::Json& object);
// spec.priority when it is an integer (a revision's spec, read leniently as a node does).
std::optional<int> priorityOf(const k8s::Json& spec);
// spec.programs[] whose `enabled` is not false (status.programs).
int enabledPrograms(const k8s::Json& spec);
// The status alone (of an object whose spec may not parse).
BpfChainStatus bpfChainStatusFromJson(const k8s::Json& object);
// The status subresource's body as the operator writes it (status.ready is derived from the
// counts; failures past the tenth are not written).
k8s::Json statusToJson(const BpfChainStatus& status);

} // namespace bpfchain::api
