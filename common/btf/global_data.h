// globalData: a program's global variables, set between open and load.
//
// Each name is a variable of the object's .rodata, .data or .bss (custom .rodata.*/.data.*
// sections too; `const volatile` globals land in .rodata, which the kernel freezes at load, so
// the program sees the value as a constant). Each text is encoded by the variable's BTF type
// (btf/value.h): "1000", "10.0.0.1", "{lo: 80, hi: 443}". All values are encoded before any is
// written, so on error the object's initial values are unchanged. Errors name the variable:
//   globalData.rate_limit: no such variable in .rodata; variables: rate_pps, burst
#pragma once

#include <map>
#include <string>

#include "system/result.h"

struct bpf_object;

namespace bpfchain::btf {

// `obj` is opened, not loaded. `field` prefixes errors ("globalData").
Result<void> setGlobalData(struct bpf_object* obj, const std::map<std::string, std::string>& values,
                           const std::string& field);

} // namespace bpfchain::btf
