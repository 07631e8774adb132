// A chain instance: a root program and the ordered programs behind it, all pinned under one
// directory, changed only by make-before-break steps (chain_plan.h):
//   <dir>/root/                          the root (bpf/root.bpf.c); its next map is the head
//   <dir>/programs/<id>@<digest>@<n>/    one ProgramInstance per program of the chain
// A Chain opened on a directory a previous process left adopts it: the order is read back
// from the kernel (each next map holds the next program's id), nothing is reloaded, and
// instances that a crash left unlinked are removed. Attaching the root to interfaces is
// attachment.h's job; one chain may serve many interfaces.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "dataplane/hook.h"
#include "dataplane/program_instance.h"
#include "dataplane/program_spec.h"
#include "system/result.h"

namespace bpfchain::dataplane {

// A map of a program's running version that its new version does not carry (map_carry.h):
// the new version starts with it empty.
struct UncarriedState {
  std::string programId;
  std::string map;
  std::string reason;
  bool operator==(const UncarriedState&) const = default;
};

struct ApplyReport {
  size_t loaded = 0;  // new instances (new programs, upgrades, clones of moved programs)
  size_t relinks = 0; // slot updates that packets could observe
  size_t retired = 0; // instances unloaded
  std::vector<UncarriedState> uncarried;
};

class Chain {
public:
  static Result<Chain> open(const std::string& dir, Hook hook);

  // Makes the chain run the enabled programs of `desired`, in order. A program whose new
  // version is loaded (an upgrade: new object, entry, next map or global data) or that moved
  // keeps the maps of its running version that match (map_carry.h); the report lists those
  // that do not. On any error (an object that
  // does not load, a program the verifier refuses, a missing next map, a bad global or map
  // argument) the running chain is left as it was and the error names the program and field.
  Result<ApplyReport> apply(std::span<const ProgramSpec> programs);

  struct Program {
    std::string id;
    std::string digest; // 16 hex digits of reloadDigest()
    uint32_t programId = 0;
    std::string dir;
  };
  std::vector<Program> programs() const;

  Hook hook() const { return hook_; }
  const std::string& dir() const { return dir_; }
  int rootFd() const { return root_.programFd(); }
  uint32_t rootId() const { return root_.programId(); }
  // A map of a running program, by program id and map name.
  Result<FD> openMap(const std::string& programId, const std::string& map) const;

  // Removes every pin of the chain. Detach the root from every interface first.
  Result<void> destroy();

private:
  struct Running {
    std::string id;
    std::string digest;
    ProgramInstance instance;
  };
  Chain(std::string dir, Hook hook, ProgramInstance root)
      : dir_(std::move(dir)), hook_(hook), root_(std::move(root)) {}
  // Rebuilds running_ from the kernel: follows the next maps from the root and removes
  // instances that are not on the path.
  Result<void> adoptPrograms();
  std::string newInstanceDir(const std::string& id, const std::string& digest);
  // apply()'s steps, in order (chain.cpp): only relink() changes what a packet sees.
  struct Update;
  Result<Update> planUpdate(std::span<const ProgramSpec> programs) const;
  Result<void> loadNewInstances(Update& u, ApplyReport& report);
  Result<void> setMapArguments(Update& u) const;
  Result<void> relink(const Update& u, ApplyReport& report);
  void retireAndAdopt(Update& u, ApplyReport& report);
  const ProgramInstance& instanceAt(const Update& u, size_t j) const;

  std::string dir_;
  Hook hook_;
  ProgramInstance root_;
  std::vector<Running> running_;
  unsigned serial_ = 0;
};

} // namespace bpfchain::dataplane
