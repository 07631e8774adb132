// manifest.yaml, at the root of a package archive:
//
//   name: counter
//   version: 1.0.0
//   programs:
//     - object: counter.bpf.o     # a BPF ELF object of the archive (relative path)
//       entry: counter_xdp        # the program (ELF section function) to load
//       hook: xdp                 # xdp | tc-ingress | tc-egress
//       nextMap: counter_xdp_next # its 1-slot PROG_ARRAY (chain.h)
//   maps: ...                     # optional documentation, ignored
//
// Unknown keys are ignored, so that newer manifests stay readable.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "packages/package_error.h"

namespace bpfchain::packages {

struct ManifestProgram {
  std::string object;
  std::string entry;
  std::string hook;
  std::string nextMap;
};

struct Manifest {
  std::string name;
  std::string version;
  std::vector<ManifestProgram> programs;
};

inline constexpr std::string_view kManifestFile = "manifest.yaml";

bool validHook(std::string_view hook);

// Parses and checks a manifest's fields (not whether its objects exist: see checkManifestObjects).
// `source` names the manifest in errors, which also name the field ("programs[1].hook").
// Errors are ManifestInvalid.
Result<Manifest, PackageError> parseManifest(std::string_view yaml, const std::string& source);

// Each program's object must be one of `objects` (the package's BPF ELF objects). ManifestInvalid
// otherwise.
Result<void, PackageError> checkManifestObjects(const Manifest& manifest,
                                                const std::vector<std::string>& objects,
                                                const std::string& source);

// The manifest as YAML (what bpfchain-pkg build writes).
std::string manifestYaml(const Manifest& manifest);

} // namespace bpfchain::packages
