// Cluster mode's chain references (DESIGN.md section 2): a BpfNodeConfig spec whose chains[]
// entries name chain revisions (api::ChainRef), or follow their chain's published rollout
// (membership entries: api::entryRef, the node's revision by api::refFor), becomes the inline
// form the standalone file has, which parseNodeSpec then reads: one model (ChainDecl) for both
// sources. Pure: the revisions and published rollouts come from the caller's lookups, so every
// decision here is unit-tested.
//
// A membership entry whose chain's rollout gives this node nothing is not run (the rollout has
// not reached it and there is no stable generation). One whose chain cannot be read fails as
// a revision that cannot (RevisionUnavailable), keeping its last resolved revision running; a
// chain with nothing published yet keeps that revision too, and is otherwise not run yet.
//
// A reference resolves to the first copy of its revision that is what it names (chain,
// generation, digest: api::mismatch). One that does not resolve fails alone, as a chain whose
// declaration does not parse: RevisionUnavailable when no copy can be read, DigestMismatch
// when the copies read are not the revision named (the message says what differs). Its last
// resolved revision on this node, when the caller still has it, is given as its running
// declaration (NodeSpec's invalid chain with its last good declaration), so that an agent
// restarted while the revision cannot be read keeps the previous generation running.
#pragma once
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "k8s/object.h"
#include "node-agent/node_config.h"

namespace bpfchain::api {
struct ChainRef;
struct PublishedRollout;
} // namespace bpfchain::api

namespace bpfchain::agent {

// Every copy the caller has of the revision `ref` names (the API server's, one kept on this
// node), or why none can be read: an Error of kind RevisionUnavailable whose message names the
// revision ("ControllerRevision ns/name: 403 Forbidden: ...").
using RevisionLookup = std::function<Result<std::vector<k8s::Json>>(const api::ChainRef& ref)>;
// The revision object the chain last resolved to on this node, if the caller kept it.
using LastResolved = std::function<std::optional<k8s::Json>(const std::string& chain)>;
// The chain's published rollout (BpfChain.status.published); nullopt when it has none yet; an
// Error (RevisionUnavailable, naming the chain and why) when the chain cannot be read.
using PublishedLookup =
    std::function<Result<std::optional<api::PublishedRollout>>(const std::string& chain)>;

struct ResolvedSpec {
  NodeSpec spec;
  // By chain name: the revision object each reference resolved to (for the caller to keep).
  std::map<std::string, k8s::Json> revisions;
};

// Errors only for a document that is not a spec at all (as parseNodeSpec); `source` names it.
// `node`: this node's name, for membership entries.
Result<ResolvedSpec> resolveNodeSpec(const k8s::Json& spec, const std::string& source,
                                     const RevisionLookup& lookup, const LastResolved& lastResolved,
                                     const std::string& node = "",
                                     const PublishedLookup& published = nullptr);

} // namespace bpfchain::agent
