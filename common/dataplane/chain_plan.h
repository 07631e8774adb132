// Planning a chain change as make-before-break steps (DESIGN.md section 3).
//
// A running chain is a linked list of loaded program instances, each pointing at the next
// through its 1-slot PROG_ARRAY. planChain() turns (running, desired) into:
//   - which running instances stay where they are ("kept"): those that have the same id and
//     digest in both and that no other common program crosses, i.e. the same set of common
//     programs precedes them in both lists. Kept instances split both lists into segments;
//   - for every segment that differs, a Relink: fresh instances are loaded and linked to the
//     segment's successor first, invisible to packets, then ONE slot update (the predecessor's
//     next, or the chain head) swaps the whole segment.
// Because a program never crosses a kept instance, a packet that meets some segments old and
// some new still runs every program common to both lists exactly once, and never a program
// twice. Programs that moved within a segment are cloned (new instance, same maps) rather
// than relinked in place, which would skip or repeat them.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "system/result.h"

namespace bpfchain::dataplane {

// A program as the planner sees it: its id, unique within the chain, and the digest of
// everything that needs a reload to change (object, entry, next map, global data).
struct ProgramKey {
  std::string id;
  std::string digest;
};

enum class SlotSource {
  Keep,  // the running instance stays, in place
  Clone, // a new instance of the same program sharing the running instance's maps
  Load,  // a new instance (new program, or a new digest: an upgrade)
};

struct PlannedSlot {
  SlotSource source;
  // Keep/Clone: the running instance. Load: the running version of the same program, whose
  // matching maps the new instance carries (map_carry.h), or none for a new program.
  std::optional<size_t> runningIndex;
};

// One visible step: new instances at desired positions [begin, end) are linked in order to
// `successor` (a kept desired position, or the end of the chain), then `predecessor` (a kept
// desired position, or the chain head) is pointed at `begin` (or at `successor` when the
// segment is empty, which removes the running instances that were there).
struct Relink {
  std::optional<size_t> predecessor;
  size_t begin = 0;
  size_t end = 0;
  std::optional<size_t> successor;
};

struct ChainPlan {
  std::vector<PlannedSlot> slots; // one per desired program, in order
  std::vector<Relink> relinks;    // in the order to apply them: tail first
  std::vector<size_t> retired;    // running instances to unload after every relink
  bool unchanged() const { return relinks.empty(); }
};

// Fails only on invalid input: an empty or duplicate id in `desired`.
Result<ChainPlan> planChain(std::span<const ProgramKey> running,
                            std::span<const ProgramKey> desired);

} // namespace bpfchain::dataplane
