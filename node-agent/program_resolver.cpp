#include "node-agent/program_resolver.h"

#include <bpf/libbpf.h>

#include <memory>

namespace bpfchain::agent {

namespace {

// True when the object at `path` holds a program called `entry` (opened, not loaded).
bool objectHasProgram(const std::string& path, const std::string& entry) {
  std::unique_ptr<bpf_object, decltype(&bpf_object__close)> obj(
      bpf_object__open_file(path.c_str(), nullptr), bpf_object__close);
  return obj && bpf_object__find_program_by_name(obj.get(), entry.c_str()) != nullptr;
}

} // namespace

Result<std::vector<dataplane::ProgramSpec>, ResolveFailure>
ProgramResolver::resolve(const ChainDecl& chain) {
  std::vector<dataplane::ProgramSpec> specs;
  for (size_t i = 0; i < chain.programs.size(); ++i) {
    const ProgramDecl& decl = chain.programs[i];
    std::string field =
        "programs[" + std::to_string(i) + "] (" + chain.name + "/" + decl.name + ")";
    auto package = cache_.get({decl.url, decl.sha256});
    if (!package)
      return ResolveFailure{package.error().reason, field + ": " + package.error().error.message()};
    auto invalid = [&](const std::string& what) {
      return ResolveFailure{"ProgramInvalid", field + ": " += what};
    };
    dataplane::ProgramSpec spec;
    spec.id = chain.name + "/" + decl.name;
    spec.entry = decl.entry;
    spec.nextMap = decl.nextMap;
    spec.enabled = decl.enabled;
    spec.globalData = decl.globalData;
    spec.freshState = decl.freshState;
    spec.freshMaps = decl.freshMaps;
    spec.mapArgs = decl.mapArgs;
    std::string object;
    if (package->manifest) {
      // The manifest's program for this hook: the named entry, or the only program for the
      // hook. TC programs serve either direction (one program type, tc-ingress or tc-egress).
      std::string hook(dataplane::hookName(chain.hook));
      auto fits = [&](const packages::ManifestProgram& p) {
        return p.hook.empty() || p.hook == hook ||
               (p.hook.rfind("tc-", 0) == 0 && hook.rfind("tc-", 0) == 0);
      };
      const packages::ManifestProgram* chosen = nullptr;
      size_t fitting = 0;
      for (const auto& p : package->manifest->programs) {
        if (!decl.entry.empty() && p.entry != decl.entry)
          continue;
        if (!chosen || (fits(p) && !fits(*chosen)) || (p.hook == hook && chosen->hook != hook))
          chosen = &p;
        fitting += fits(p);
      }
      if (decl.entry.empty() && fitting > 1)
        return invalid("entry: required, the package has " + std::to_string(fitting) +
                       " programs for hook " + hook);
      if (chosen) {
        if (!fits(*chosen))
          return invalid("the package's program " + chosen->entry + " is for hook " + chosen->hook +
                         ", the chain's hook is " + hook);
        object = chosen->object;
        if (spec.entry.empty())
          spec.entry = chosen->entry;
        if (spec.nextMap.empty())
          spec.nextMap = chosen->nextMap;
      }
    }
    if (spec.entry.empty())
      return invalid("entry: required for a package without a manifest (an L3AF artifact)");
    if (spec.nextMap.empty())
      return invalid("nextMap: required for a package without a manifest (an L3AF artifact)");
    if (object.empty()) {
      for (const auto& candidate : package->objects) {
        if (objectHasProgram(package->dir + "/" + candidate, spec.entry)) {
          object = candidate;
          break;
        }
      }
      if (object.empty())
        return invalid("entry \"" + spec.entry + "\": no object of package " + decl.url +
                       " has that program");
    }
    spec.objectPath = package->dir + "/" + object;
    specs.push_back(std::move(spec));
  }
  return specs;
}

} // namespace bpfchain::agent
