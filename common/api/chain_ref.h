// A node's reference to a chain (DESIGN.md section 2, BpfNodeConfig.spec.chains[]): which
// immutable revision of the chain's spec the node runs, and the digest of that spec. The
// revision is a ControllerRevision in the operator's namespace named revisionName(), labelled
// kChainLabel, whose `revision` is the chain's generation and whose `data` is the BpfChain's
// spec at that generation. The agent runs a revision only when specDigest(data) equals the
// reference's digest: a revision replaced or edited by hand is refused, not run.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "k8s/object.h"
#include "system/result.h"

namespace bpfchain::api {

struct ChainRef {
  std::string name;       // the BpfChain's name
  int64_t generation = 0; // the chain's generation the revision holds
  std::string revision;   // the ControllerRevision's name
  std::string digest;     // "sha256:<64 hex>" of the revision's data (specDigest)
  int priority = 100;     // the chain's spec.priority at that generation, for kubectl
  bool operator==(const ChainRef&) const = default;
};

// "<chain>-<first 8 characters of uid>-<generation>": unique per object, so a chain deleted
// and created again under its name never meets a revision of the earlier object.
std::string revisionName(const std::string& chain, const std::string& uid, int64_t generation);

// "sha256:<hex>" of the spec's canonical JSON (object keys sorted at every level, no spaces):
// the same value whatever key order or spacing the API server returns it with.
std::string specDigest(const k8s::Json& spec);
std::string canonicalJson(const k8s::Json& value);

k8s::Json toJson(const ChainRef& ref);
// An entry with a `revision` field. Errors name `field` (e.g. "spec.chains[2].digest").
Result<ChainRef> chainRefFromJson(const k8s::Json& entry, const std::string& field);
// Whether a spec.chains[] entry is a reference (it has `revision`) rather than an inline chain
// (the standalone file's form, and that of operators before references).
bool isReference(const k8s::Json& entry);
// The fields a reference has (chainRefFromJson refuses others).
std::span<const char* const> chainRefFields();

// A chain revision as read from the API server.
struct ChainRevision {
  std::string name;
  std::string chain;      // kChainLabel
  int64_t generation = 0; // `revision`
  std::string ownerUid;   // the controller ownerReference's uid, "" when none
  k8s::Json spec;         // `data`
};
Result<ChainRevision> chainRevisionFromJson(const k8s::Json& object);

// Why a reference cannot be run, or nullopt when `revision` is what `ref` names: the right
// chain, generation and digest. The message names the revision and what differs.
std::optional<std::string> mismatch(const ChainRef& ref, const ChainRevision& revision);

} // namespace bpfchain::api
