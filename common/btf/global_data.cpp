#include "btf/global_data.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/btf.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "btf/value.h"

namespace bpfchain::btf {
namespace {

// One internal map (.rodata, .data, .bss, ...) and a copy of its initial value to patch.
struct Section {
  struct bpf_map* map = nullptr;
  std::string name;
  std::vector<uint8_t> data;
  bool changed = false;
};

struct Variable {
  std::string name;
  size_t section = 0;
  __u32 typeId = 0;
  __u32 offset = 0;
  __u32 size = 0;
};

Error noSuchVariable(const std::string& where, const std::vector<Section>& sections,
                     const std::vector<Variable>& variables) {
  if (sections.empty())
    return invalidError(where + ": no such variable; the object has no global variables");
  std::string message = where + ": no such variable in ";
  for (size_t i = 0; i < sections.size(); ++i)
    message.append(i ? ", " : "").append(sections[i].name);
  message += "; variables: ";
  for (size_t i = 0; i < variables.size(); ++i)
    message.append(i ? ", " : "").append(variables[i].name);
  return invalidError(message);
}

// The object's global variables: each internal map (.rodata, .data, .bss, custom
// .rodata.*/.data.*) with a copy of its initial value, and the variables its DATASEC lists.
// libbpf gives each internal map its DATASEC as BTF value type, with the offsets fixed up at
// open. .kconfig is libbpf's to fill; extern variables live elsewhere.
struct Globals {
  std::vector<Section> sections;
  std::vector<Variable> variables;
};

Globals readGlobals(struct bpf_object* obj, const struct btf* btf) {
  Globals globals;
  struct bpf_map* map = nullptr;
  bpf_object__for_each_map (map, obj) {
    if (!bpf_map__is_internal(map))
      continue;
    const btf_type* sec = btf__type_by_id(btf, bpf_map__btf_value_type_id(map));
    if (!sec || !btf_is_datasec(sec))
      continue;
    std::string secName = btf__name_by_offset(btf, sec->name_off);
    size_t size = 0;
    const void* initial = bpf_map__initial_value(map, &size);
    if (secName == ".kconfig" || !initial)
      continue;
    Section section{map, secName, {}, false};
    section.data.assign(static_cast<const uint8_t*>(initial),
                        static_cast<const uint8_t*>(initial) + size);
    const btf_var_secinfo* info = btf_var_secinfos(sec);
    for (int i = 0; i < btf_vlen(sec); ++i) {
      const btf_type* var = btf__type_by_id(btf, info[i].type);
      if (!var || !btf_is_var(var) || btf_var(var)->linkage == BTF_VAR_GLOBAL_EXTERN)
        continue;
      globals.variables.push_back(Variable{btf__name_by_offset(btf, var->name_off),
                                           globals.sections.size(), var->type, info[i].offset,
                                           info[i].size});
    }
    globals.sections.push_back(std::move(section));
  }
  return globals;
}

// Encodes `text` into the copy of its variable's section.
Result<void> patchVariable(const struct btf* btf, Globals& globals, const std::string& name,
                           const std::string& text, const std::string& where) {
  const Variable* found = nullptr;
  for (const auto& variable : globals.variables) {
    if (variable.name == name)
      found = &variable;
  }
  if (!found)
    return noSuchVariable(where, globals.sections, globals.variables);
  Section& section = globals.sections[found->section];
  auto bytes = encodeValue(btf, found->typeId, ArgValue::text(text), where);
  if (!bytes)
    return std::move(bytes).error();
  if (bytes->size() != found->size ||
      static_cast<size_t>(found->offset) + found->size > section.data.size())
    return invalidError(where + ": BTF says " + std::to_string(found->size) + " bytes at " +
                        std::to_string(found->offset) + " in " + section.name + " (" +
                        std::to_string(section.data.size()) + " bytes), the type " +
                        std::to_string(bytes->size()));
  std::memcpy(section.data.data() + found->offset, bytes->data(), bytes->size());
  section.changed = true;
  return {};
}

} // namespace

Result<void> setGlobalData(struct bpf_object* obj, const std::map<std::string, std::string>& values,
                           const std::string& field) {
  if (values.empty())
    return {};
  const struct btf* btf = bpf_object__btf(obj);
  if (!btf)
    return invalidError(field + ": the object has no BTF, so its variables cannot be set");
  Globals globals = readGlobals(obj, btf);

  // libbpf 1.1 has no "loaded" query, and its bpf_map__set_initial_value() does not refuse a
  // loaded object: it fails with EINVAL for a frozen .rodata but writes straight into a live
  // .data. A created internal map is the sign that the object is loaded.
  for (const auto& section : globals.sections) {
    if (bpf_map__fd(section.map) >= 0)
      return Error(EBUSY, field + ": the object is already loaded; globals are set between open "
                                  "and load");
  }

  for (const auto& [name, text] : values) {
    std::string where = field;
    where.append(field.empty() ? "" : ".").append(name);
    if (auto patched = patchVariable(btf, globals, name, text, where); !patched)
      return patched;
  }

  for (auto& section : globals.sections) {
    if (!section.changed)
      continue;
    // Copies into libbpf's buffer; it refuses (EBUSY) once the object is loaded.
    int err = bpf_map__set_initial_value(section.map, section.data.data(), section.data.size());
    if (err != 0)
      return systemError(-err, field + ": set the initial value of " + section.name);
  }
  return {};
}

} // namespace bpfchain::btf
