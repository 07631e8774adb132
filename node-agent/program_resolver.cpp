#include "node-agent/program_resolver.h"

#include <bpf/libbpf.h>

#include <cctype>
#include <memory>
#include <optional>
#include <sched.h>
#include <thread>

#include "packages/digest.h"

namespace bpfchain::agent {

namespace {

// True when the object at `path` holds a program called `entry` (opened, not loaded).
bool objectHasProgram(const std::string& path, const std::string& entry) {
  std::unique_ptr<bpf_object, decltype(&bpf_object__close)> obj(
      bpf_object__open_file(path.c_str(), nullptr), bpf_object__close);
  return obj && bpf_object__find_program_by_name(obj.get(), entry.c_str()) != nullptr;
}

// The escaped size of `text` in a pin name (common/dataplane/chain.cpp's escapeId).
size_t escapedSize(const std::string& text) {
  size_t n = 0;
  for (unsigned char c : text)
    n += std::isalnum(c) || c == '-' || c == '_' ? 1 : 3;
  return n;
}

// What the manifest lists, for an entry it does not have: "a (xdp, a.o), b (any hook, b.o)".
std::string listPrograms(const packages::Manifest& manifest) {
  std::string programs;
  for (const auto& p : manifest.programs)
    programs += (programs.empty() ? "" : ", ") + p.entry + " (" +
                (p.hook.empty() ? std::string("any hook") : p.hook) + ", " + p.object + ")";
  return programs.empty() ? std::string("none") : programs;
}

// The program's spec as the chain declares it, before the package fills in the rest.
dataplane::ProgramSpec declaredSpec(const ChainDecl& chain, const ProgramDecl& decl) {
  dataplane::ProgramSpec spec;
  spec.id = programId(chain.name, decl.name);
  spec.entry = decl.entry;
  spec.nextMap = decl.nextMap;
  spec.enabled = decl.enabled;
  spec.globalData = decl.globalData;
  spec.freshState = decl.freshState;
  spec.freshMaps = decl.freshMaps;
  spec.mapArgs = decl.mapArgs;
  return spec;
}

} // namespace

std::optional<std::string> chooseFromManifest(const packages::Manifest& manifest,
                                              const ProgramDecl& decl, dataplane::Hook chainHook,
                                              dataplane::ProgramSpec& spec, std::string& object) {
  std::string hook(dataplane::hookName(chainHook));
  auto fits = [&](const packages::ManifestProgram& p) {
    return p.hook.empty() || p.hook == hook ||
           (p.hook.rfind("tc-", 0) == 0 && hook.rfind("tc-", 0) == 0);
  };
  const packages::ManifestProgram* chosen = nullptr;
  size_t fitting = 0;
  for (const auto& p : manifest.programs) {
    if (!decl.entry.empty() && p.entry != decl.entry)
      continue;
    if (!chosen || (fits(p) && !fits(*chosen)) || (p.hook == hook && chosen->hook != hook))
      chosen = &p;
    fitting += fits(p);
  }
  if (decl.entry.empty() && fitting > 1)
    return "entry: required, the package has " + std::to_string(fitting) + " programs for hook " +
           hook;
  if (!chosen && spec.nextMap.empty()) {
    // Not an L3AF artifact: the entry is wrong, and the manifest says what is there.
    return "entry \"" + decl.entry + "\": package " + decl.url +
           " has no such program; its manifest lists " + listPrograms(manifest);
  }
  if (chosen) {
    if (!fits(*chosen))
      return "the package's program " + chosen->entry + " is for hook " + chosen->hook +
             ", the chain's hook is " + hook;
    object = chosen->object;
    if (spec.entry.empty())
      spec.entry = chosen->entry;
    if (spec.nextMap.empty())
      spec.nextMap = chosen->nextMap;
  }
  return std::nullopt;
}

std::string chainKey(const std::string& chain) {
  // 255 bytes less "@<16 hex>@<serial>" (28 at most), the escaped '/' (3) and a program name
  // (a DNS label: 63 at most, nothing escaped).
  constexpr size_t kMaxEscapedChain = 255 - 28 - 3 - 63;
  if (escapedSize(chain) <= kMaxEscapedChain)
    return chain;
  return chain.substr(0, 32) + "~" + packages::sha256Hex(chain).substr(0, 16);
}

std::string programId(const std::string& chain, const std::string& program) {
  return chainKey(chain) + "/" + program;
}

Result<packages::Package, packages::PackageError>
ProgramResolver::get(const packages::PackageRef& ref) {
  if (downloadNetns_ < 0)
    return cache_.get(ref);
  // A thread of its own, moved to the download namespace: the namespace is per thread, and
  // the HTTP client's threads start in the namespace of the thread that first uses it.
  std::optional<Result<packages::Package, packages::PackageError>> result;
  std::thread([&] {
    if (setns(downloadNetns_, CLONE_NEWNET) != 0) {
      result.emplace(packages::packageError(
          packages::kPackageFetchFailed,
          systemError(errno, "enter the agent's network namespace to download " + ref.url)));
      return;
    }
    result.emplace(cache_.get(ref));
  }).join();
  return std::move(*result);
}

Result<std::vector<dataplane::ProgramSpec>, ResolveFailure>
ProgramResolver::resolve(const ChainDecl& chain) {
  std::vector<dataplane::ProgramSpec> specs;
  for (size_t i = 0; i < chain.programs.size(); ++i) {
    auto spec = resolveProgram(chain, i);
    if (!spec)
      return std::move(spec).error();
    specs.push_back(std::move(*spec));
  }
  return specs;
}

Result<dataplane::ProgramSpec, ResolveFailure>
ProgramResolver::resolveProgram(const ChainDecl& chain, size_t i) {
  const ProgramDecl& decl = chain.programs[i];
  std::string field = "programs[" + std::to_string(i) + "] (" + chain.name + "/" + decl.name + ")";
  auto package = get({decl.url, decl.sha256});
  if (!package)
    return ResolveFailure{package.error().reason, field + ": " + package.error().error.message()};
  auto invalid = [&](const std::string& what) {
    return ResolveFailure{"ProgramInvalid", field + ": " += what};
  };
  dataplane::ProgramSpec spec = declaredSpec(chain, decl);
  std::string object;
  if (package->manifest) {
    if (auto problem = chooseFromManifest(*package->manifest, decl, chain.hook, spec, object))
      return invalid(*problem);
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
  return spec;
}

} // namespace bpfchain::agent
