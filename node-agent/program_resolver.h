// A chain's programs, from their declarations to what the chain manager loads: the package is
// fetched and verified (packages::PackageCache), then the object, entry and next map are
// chosen: the declaration's entry/nextMap win, the package manifest fills in the rest; an L3AF
// artifact has no manifest, so the declaration must name both.
#pragma once
#include <string>
#include <vector>

#include "dataplane/program_spec.h"
#include "node-agent/node_config.h"
#include "packages/package_cache.h"

namespace bpfchain::agent {

struct ResolveFailure {
  std::string reason; // packages' reasons, or "ProgramInvalid"
  std::string message;
};

class ProgramResolver {
public:
  explicit ProgramResolver(packages::PackageCache& cache) : cache_(cache) {}
  // Ids are "<chain>/<program>". Disabled programs are resolved too (cheap: cached package)
  // so that a bad package is reported even for them.
  Result<std::vector<dataplane::ProgramSpec>, ResolveFailure> resolve(const ChainDecl& chain);

  packages::PackageCache& cache() { return cache_; }

private:
  packages::PackageCache& cache_;
};

} // namespace bpfchain::agent
