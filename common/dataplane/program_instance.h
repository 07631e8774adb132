// One loaded program of a chain and its maps, pinned under its own directory:
//   <dir>/prog            the program
//   <dir>/next            its next map (the 1-slot PROG_ARRAY the chain links through)
//   <dir>/maps/<name>     every map of the object (maps the object pins by name land here too,
//                         so two instances never share a map by accident); bpffs refuses '.'
//                         in names, so internal maps such as .rodata are pinned as _rodata
// Pins are what keep an instance alive across agent restarts: a PROG_ARRAY that loses its
// last pin and descriptor is cleared by the kernel, which would cut the chain.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/hook.h"
#include "dataplane/program_spec.h"
#include "system/fd.h"
#include "system/result.h"

namespace bpfchain::dataplane {

class ProgramInstance;

// Where a new instance's maps come from (map_carry.h has the rules).
struct CarryFrom {
  const ProgramInstance* running = nullptr; // the running instance of the same program, if any
  // A clone (the same object and settings, moved): every map but the next map is shared,
  // unchecked, and freshState does not apply (a move is not a new version).
  bool clone = false;
};

// A map of the running instance that the new instance does not carry, and why.
struct UncarriedMap {
  std::string map;
  std::string reason;
  bool operator==(const UncarriedMap&) const = default;
};

class ProgramInstance {
public:
  // Loads spec.entry from spec.objectPath as a program of the hook's type into a new `dir`.
  // With `carry.running`, each map that matches one of that instance's maps is loaded as that
  // very map (bpf_map__reuse_fd: nothing is copied, and both instances see the same state
  // during the swap); the new instance pins it too, so it outlives the old instance's pins.
  // Maps the running instance has but that do not carry are listed in `uncarried`. Fails with
  // the verifier log's tail when the kernel refuses the program; on failure nothing is left
  // pinned.
  static Result<ProgramInstance> load(const ProgramSpec& spec, Hook hook, const std::string& dir,
                                      CarryFrom carry = {},
                                      std::vector<UncarriedMap>* uncarried = nullptr);
  // The same, from an object image in memory (a skeleton's); spec.objectPath names it in errors.
  static Result<ProgramInstance> loadImage(const void* image, size_t size, const ProgramSpec& spec,
                                           Hook hook, const std::string& dir);
  // Opens an instance a previous process pinned at `dir`.
  static Result<ProgramInstance> adopt(const std::string& dir);

  ProgramInstance(ProgramInstance&&) = default;
  ProgramInstance& operator=(ProgramInstance&&) = default;

  const std::string& dir() const { return dir_; }
  int programFd() const { return prog_.get(); }
  uint32_t programId() const { return programId_; }

  // Points the next map at `programFd` (one atomic slot update), or empties it.
  Result<void> setNext(int programFd) const;
  Result<void> clearNext() const;
  // The id of the program the next map points at, or 0 when it is empty.
  Result<uint32_t> nextProgramId() const;
  // Opens one of the instance's maps by its name in the object.
  Result<FD> openMap(const std::string& name) const;

  // Removes the pins; the program is freed once no chain slot or descriptor holds it.
  Result<void> unpin();

private:
  static Result<ProgramInstance> loadFrom(const void* image, size_t size, const ProgramSpec& spec,
                                          Hook hook, const std::string& dir, CarryFrom carry,
                                          std::vector<UncarriedMap>* uncarried);
  ProgramInstance(std::string dir, FD prog, FD next, uint32_t id)
      : dir_(std::move(dir)), prog_(std::move(prog)), next_(std::move(next)), programId_(id) {}
  std::string dir_;
  FD prog_;
  FD next_;
  uint32_t programId_;
};

// The kernel id of a program or map descriptor.
Result<uint32_t> programIdOf(int programFd);

// Recursively removes a directory of pins; missing is fine.
Result<void> removePinTree(const std::string& dir);

} // namespace bpfchain::dataplane
