// Which ControllerRevisions a chain keeps (the specs a rollback restores), as pure functions.
// A revision belongs to one BpfChain object, named by its UID: a chain deleted and created
// again under the same name is another object, whose rollbacks must never find the old one's
// specs. Only what a rollback can need is kept; the rest goes (DESIGN.md section 2).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "api/chain_ref.h"

namespace bpfchain::op {

// The revisions' names are api::revisionName's: unique per object, so an object never meets a
// revision of an earlier object of its name (the UID is still checked on read).
using api::revisionName;

// A ControllerRevision labelled with a chain's name, as listed.
struct RevisionRef {
  std::string name;
  std::string ownerUid; // the controller ownerReference's uid, "" when none
  int64_t generation = 0;
  int64_t createdAt = 0; // creationTimestamp, seconds since the epoch
};

// Revisions of the naming before owner references ("<chain>-<generation>", no owner) that
// are this object's and that `keep` needs, to be copied under revisionName() before they are
// pruned. One made after the object was created (strictly, at second granularity) is its
// own: an earlier object of the name was deleted, with its last revision, before this one
// was created.
std::vector<RevisionRef> revisionsToAdopt(const std::vector<RevisionRef>& listed,
                                          int64_t objectCreatedAt, const std::set<int64_t>& keep);

// Which of `listed` to delete for the chain object `uid`: those of any other object (or of
// none), and of its own those whose generation `keep` does not hold. Sorted by name.
std::vector<std::string> revisionsToPrune(const std::vector<RevisionRef>& listed,
                                          const std::string& uid, const std::set<int64_t>& keep);

} // namespace bpfchain::op
