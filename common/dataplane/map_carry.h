// Which maps of a new program instance are the running instance's maps (an upgrade keeps what
// the program knows). A map carries over when the running instance has a map of the same name
// and the same shape: type, key size, value size, max_entries, flags and, where both sides have
// BTF, the same key and value types (compared by layout: names, sizes, offsets, encodings).
// max_entries must match too: a version that asks for a bigger table must get one, and a
// smaller one must not silently keep more entries than it planned for.
// Never carried, whatever their shape:
//   - the next map (the chain links the new instance before it is visible);
//   - every other PROG_ARRAY (its slots hold programs of the old version);
//   - .rodata* and .kconfig (load-time configuration: a new globalData must take effect);
//   - .data* and .bss* when the new globalData sets one of their variables (same reason);
//     otherwise they are mutable state and carry like any map.
// A chain asks for a fresh start with ProgramSpec::freshState (no map carries) or freshMaps.
#pragma once

#include <bpf/btf.h>

#include <cstdint>
#include <optional>
#include <string>

namespace bpfchain::dataplane {

struct MapShape {
  uint32_t type = 0;
  uint32_t keySize = 0;
  uint32_t valueSize = 0;
  uint32_t maxEntries = 0;
  uint32_t flags = 0;
  std::string keyType;   // btfLayout() of the key type, "" when there is no BTF for it
  std::string valueType; // the same for the value
};

// Why a running map of shape `running` cannot be the new instance's map of shape `wanted`
// (e.g. "value size 8 -> 16"), or nullopt when it can.
std::optional<std::string> carryRefusal(const MapShape& running, const MapShape& wanted);

// A canonical text of a BTF type's layout: typedefs and modifiers are looked through; struct,
// union, member, enum and variable names, sizes, offsets and integer encodings count.
std::string btfLayout(const ::btf* types, uint32_t typeId);

// Internal maps that hold load-time configuration and are never carried.
bool configurationMap(const std::string& mapName);

} // namespace bpfchain::dataplane
