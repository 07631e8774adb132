// The kernel types a program load relocates against (CO-RE). libbpf reads and parses the whole
// kernel BTF (/sys/kernel/btf/vmlinux, 5 MiB) for every object with CO-RE relocations: measured
// at 95% of a program load's CPU (9.5 of 10 ms). An object's relocations only look at kernel
// types named like the types they relocate (libbpf's candidates) and at the types those reach,
// so the load can relocate against that subset instead (libbpf's btf_custom_path) with the same
// result. The subset is built once per set of names and kept in a memfd for the process.
//
// The subset is not used (the load reads the kernel's BTF as before) when the result could
// differ: a relocation that asks for a kernel type id (ids differ in the subset), a relocated
// type with no name, or one the kernel image does not have (libbpf then searches the modules).
#pragma once

#include <bpf/btf.h>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "system/result.h"

namespace bpfchain::dataplane {

using BtfOwner = std::unique_ptr<::btf, void (*)(::btf*)>;

// A type's name without its CO-RE flavor ("task_struct___v2" -> "task_struct").
std::string_view coreEssentialName(std::string_view name);

// The essential names of the types the CO-RE relocations of an object relocate (its BTF and
// .BTF.ext), or nullopt when its load must see the whole kernel BTF (see above). No relocation:
// an empty set.
Result<std::optional<std::set<std::string>>> coreRootNames(const ::btf* local, const void* ext,
                                                           size_t extSize);

// The same for a BPF object (an ELF image): its .BTF and .BTF.ext sections.
Result<std::optional<std::set<std::string>>> coreRootNamesOfObject(std::string_view image);

// The types of `kernel` whose essential name is in `names`, and every type they reach, in
// their order in `kernel`; nullopt when a name has no type in `kernel`.
Result<std::optional<BtfOwner>> coreBtfSubset(const ::btf* kernel,
                                              const std::set<std::string>& names);

// The path to give libbpf as btf_custom_path for the object at `objectPath`, or "" to let it
// read the kernel's BTF (also when anything here fails: the load then reports its own errors).
// Thread-safe; the files live as long as the process.
std::string coreBtfPathFor(const std::string& objectPath);

} // namespace bpfchain::dataplane
