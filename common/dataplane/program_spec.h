// What the chain manager is asked to run: one program of a chain, fully resolved (the package
// layer has already fetched and verified the object file).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "btf/map_args.h"

namespace bpfchain::dataplane {

struct MapArgSpec {
  std::string map;
  btf::MapArgMode mode = btf::MapArgMode::Replace;
  std::vector<btf::MapArgEntry> entries;
  bool operator==(const MapArgSpec&) const = default;
};

struct ProgramSpec {
  std::string id;         // unique within the chain, e.g. "<chain>/<program>"
  std::string objectPath; // a BPF ELF object
  std::string entry;      // the program (function) to load from it
  std::string nextMap;    // its 1-slot PROG_ARRAY
  bool enabled = true;    // false: not in the chain and not loaded (L3AF's admin_status)
  std::map<std::string, std::string> globalData; // set before load; a change reloads
  std::vector<MapArgSpec> mapArgs;               // written after load; a change never reloads
  // When a new version is loaded, its maps carry the running version's where they match
  // (map_carry.h); freshState starts every map empty instead, freshMaps the maps named. Not
  // part of the reload digest: they say how the next load starts, they do not cause one.
  bool freshState = false;
  std::vector<std::string> freshMaps;
  bool operator==(const ProgramSpec&) const = default;
};

// The digest of everything whose change needs a new load: the object's content, entry, next
// map and global data. Fails when the object cannot be read.
Result<std::string> reloadDigest(const ProgramSpec& spec);

} // namespace bpfchain::dataplane
