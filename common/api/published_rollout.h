// A chain's rollout as agents follow it (BpfChain.status.published): which revision each node
// runs, in one place, so that moving a whole batch of nodes is one write of the chain's status,
// not one write per node. A node's BpfNodeConfig says only that the node has the chain (a
// membership entry, written when membership changes); the node's revision comes from here by
// refFor, the one rule the agent, the operator, kubectl-bpfchain, the benchmarks and the tests
// share.
//
// Nodes are ordered by name. A wave moves the nodes whose name sorts at or below its partition
// to its target; waves are newest first, and the first that covers a node decides; a node no
// wave covers runs `stable` (the last generation Ready on every node), or not the chain at all
// when there is none. A rollout grows the newest wave's partition batch by batch; a new
// generation arriving mid-rollout adds a wave and leaves the older one to the nodes it moved
// until the new wave covers them; a rollback drops the failed generation's wave (one write);
// a complete rollout becomes `stable` with no wave.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "api/chain_ref.h"

namespace bpfchain::api {

struct Wave {
  ChainRef target;
  std::string partition; // the last node name (in byte order) this wave moves
  bool operator==(const Wave&) const = default;
};

struct PublishedRollout {
  std::optional<ChainRef> stable;
  std::vector<Wave> waves; // newest first
  bool operator==(const PublishedRollout&) const = default;
};

// The revision `node` runs under `published`, or nullopt: the chain is not on the node.
std::optional<ChainRef> refFor(const PublishedRollout& published, const std::string& node);
// The same, without a copy (for loops over every node): nullptr where refFor says nullopt.
const ChainRef* followedBy(const PublishedRollout& published, const std::string& node);

// Drops the waves that no node follows any more: those a newer wave's partition reaches past
// (or up to).
void dropShadowed(PublishedRollout& published);

k8s::Json toJson(const PublishedRollout& published);
// Errors name `field` (e.g. "status.published.waves[0].partition").
Result<PublishedRollout> publishedFromJson(const k8s::Json& published, const std::string& field);
// A BpfChain's status.published; nullopt when the operator has not published one yet.
Result<std::optional<PublishedRollout>> publishedOf(const k8s::Json& chain);

// A spec.chains[] entry that follows the chain's published rollout: {name, follow: true}.
k8s::Json membershipEntry(const std::string& chain);
bool isMembership(const k8s::Json& entry);
// A membership entry's fields.
std::span<const char* const> membershipFields();

// The revision a spec.chains[] entry gives `node`: a reference names it; a membership entry
// takes it from the chain's published rollout (`published`; nullptr when the chain or its
// status is not known, which is an error for a membership entry). nullopt: the chain is not on
// the node (yet). An inline chain is no reference: an error. Errors name `field`.
Result<std::optional<ChainRef>> entryRef(const k8s::Json& entry, const std::string& node,
                                         const PublishedRollout* published,
                                         const std::string& field);

} // namespace bpfchain::api
