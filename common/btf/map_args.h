// mapArgs: entries written into a loaded program's map, after load and on every change,
// without reloading the program.
//
// Works from the map's descriptor alone (the map may have been adopted from a pin by another
// process): the kernel's map info gives its type, sizes and BTF, whose key and value types
// encode each entry (btf/value.h). A key or value without a BTF type (a map declared with
// key_size/value_size, as all of L3AF's are) is written as l3afd writes it: 1, 2, 4 or 8 bytes
// are an unsigned little-endian integer (decimal or 0x hex, range-checked like a typed __u32),
// any other size is hex bytes in memory order ("0x0a000001ff" for 5 bytes).
//   - Every entry is encoded and checked (duplicate keys, array index range, capacity) before
//     the first write; if a write fails, the writes before it are undone. A map is never left
//     half-applied.
//   - Per-CPU maps (PERCPU_ARRAY, PERCPU_HASH, LRU_PERCPU_HASH) get the value on every CPU.
//   - Merge writes the entries. Replace (as L3AF's mapArgs) also removes every key not listed:
//     hash and LPM-trie keys are deleted, array slots (which cannot be deleted) are zeroed.
// Errors name the entry: "mapArgs[0].entries[2].key: "80x" is not a valid __u16".
#pragma once

#include <string>
#include <vector>

#include "btf/arg_value.h"
#include "system/result.h"

namespace bpfchain::btf {

enum class MapArgMode { Replace, Merge };

struct MapArgEntry {
  ArgValue key;
  ArgValue value;
  bool operator==(const MapArgEntry&) const = default;
};

// `field` prefixes errors ("mapArgs[0]"); entries are "<field>.entries[i]".
Result<void> applyMapArgs(int mapFd, MapArgMode mode, const std::vector<MapArgEntry>& entries,
                          const std::string& field);

} // namespace bpfchain::btf
