// A chain's programs, from their declarations to what the chain manager loads: the package is
// fetched and verified (packages::PackageCache), then the object, entry and next map are
// chosen: the declaration's entry/nextMap win, the package manifest fills in the rest; an L3AF
// artifact has no manifest, so the declaration must name both.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "dataplane/program_spec.h"
#include "node-agent/node_config.h"
#include "packages/manifest.h"
#include "packages/package_cache.h"

namespace bpfchain::agent {

struct ResolveFailure {
  std::string reason; // packages' reasons, or "ProgramInvalid"
  std::string message;
};

// The data plane pins each program under a directory named after its id, escaped (every byte
// but letters, digits, '-' and '_' takes 3), plus "@<16 hex>@<serial>": one path component of
// at most 255 bytes. Ids are "<chain key>/<program>", where the chain key is the chain's name,
// or for a name too long to fit, its first 32 characters, '~' and 16 hex digits of its sha256
// ('~' is in no chain name, so keys never collide with names).
std::string chainKey(const std::string& chain);
std::string programId(const std::string& chain, const std::string& program);

// Fills `spec`'s entry and next map (where the declaration left them out) and `object` from
// the manifest's program for the chain's hook: the named entry, or the only program for the
// hook (TC programs serve either direction). Returns what is wrong, naming the field, if
// anything; nothing when the manifest has no program and the declaration names both (an L3AF
// artifact).
std::optional<std::string> chooseFromManifest(const packages::Manifest& manifest,
                                              const ProgramDecl& decl, dataplane::Hook chainHook,
                                              dataplane::ProgramSpec& spec, std::string& object);

class ProgramResolver {
public:
  // `downloadNetns`: a network namespace fd (not owned) that package downloads run in, whatever
  // namespace the calling thread is in (with --netns the reconciler runs in the managed one,
  // while package servers are reached from the agent's own); -1: the caller's.
  explicit ProgramResolver(packages::PackageCache& cache, int downloadNetns = -1)
      : cache_(cache), downloadNetns_(downloadNetns) {}
  // Ids are "<chain>/<program>". Disabled programs are resolved too (cheap: cached package)
  // so that a bad package is reported even for them.
  Result<std::vector<dataplane::ProgramSpec>, ResolveFailure> resolve(const ChainDecl& chain);

  packages::PackageCache& cache() { return cache_; }

private:
  Result<packages::Package, packages::PackageError> get(const packages::PackageRef& ref);
  // The spec of chain.programs[i]: its package fetched, entry, next map and object chosen.
  Result<dataplane::ProgramSpec, ResolveFailure> resolveProgram(const ChainDecl& chain, size_t i);

  packages::PackageCache& cache_;
  int downloadNetns_;
};

} // namespace bpfchain::agent
