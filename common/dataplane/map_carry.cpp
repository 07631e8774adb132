#include "dataplane/map_carry.h"

#include <bpf/libbpf.h>

#include <cstdio>

namespace bpfchain::dataplane {
namespace {

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%x", v);
  return buf;
}

std::string typeName(uint32_t type) {
  const char* name = libbpf_bpf_map_type_str(static_cast<bpf_map_type>(type));
  return name ? name : std::to_string(type);
}

// Deep enough for any map key or value; pointers are not followed, so cycles cannot recurse.
constexpr int kMaxDepth = 32;

void layout(const ::btf* types, uint32_t id, int depth, std::string& out);

std::string nameOf(const ::btf* types, uint32_t offset) {
  return btf__name_by_offset(types, offset);
}

// "s32", "u8+4", "b8": signedness, bits and bit offset.
void layoutInt(const btf_type* t, std::string& out) {
  uint32_t encoding = btf_int_encoding(t);
  out += (encoding & BTF_INT_SIGNED ? "s"
          : encoding & BTF_INT_BOOL ? "b"
                                    : "u") +
         std::to_string(btf_int_bits(t));
  if (btf_int_offset(t))
    out += "+" + std::to_string(btf_int_offset(t));
}

// "struct name{field:type@bitoffset[:bits];...}size", the same for unions.
void layoutMembers(const ::btf* types, const btf_type* t, int depth, std::string& out) {
  out += (btf_kind(t) == BTF_KIND_STRUCT ? "struct " : "union ") + nameOf(types, t->name_off) + "{";
  const btf_member* m = btf_members(t);
  for (uint16_t i = 0; i < btf_vlen(t); ++i, ++m) {
    out += nameOf(types, m->name_off) + ":";
    layout(types, m->type, depth + 1, out);
    out += "@" + std::to_string(btf_member_bit_offset(t, i));
    if (uint32_t bits = btf_member_bitfield_size(t, i))
      out += ":" + std::to_string(bits);
    out += ";";
  }
  out += "}" + std::to_string(t->size);
}

// "enum name4{A=0;B=1;}" and "enum64 name8{...}".
void layoutEnum(const ::btf* types, const btf_type* t, std::string& out) {
  bool wide = btf_kind(t) == BTF_KIND_ENUM64;
  out += (wide ? "enum64 " : "enum ") + nameOf(types, t->name_off) + std::to_string(t->size) + "{";
  if (wide) {
    const struct btf_enum64* e = btf_enum64(t);
    for (uint16_t i = 0; i < btf_vlen(t); ++i, ++e)
      out += nameOf(types, e->name_off) + "=" + std::to_string(btf_enum64_value(e)) + ";";
  } else {
    const struct btf_enum* e = btf_enum(t);
    for (uint16_t i = 0; i < btf_vlen(t); ++i, ++e)
      out += nameOf(types, e->name_off) + "=" + std::to_string(e->val) + ";";
  }
  out += "}";
}

// "section .data{var:type@offset;...}size".
void layoutSection(const ::btf* types, const btf_type* t, int depth, std::string& out) {
  out += "section " + nameOf(types, t->name_off) + "{";
  const btf_var_secinfo* v = btf_var_secinfos(t);
  for (uint16_t i = 0; i < btf_vlen(t); ++i, ++v) {
    layout(types, v->type, depth + 1, out);
    out += "@" + std::to_string(v->offset) + ";";
  }
  out += "}" + std::to_string(t->size);
}

// Appends a canonical text of type `id` to `out`: equal texts mean the same memory layout.
void layout(const ::btf* types, uint32_t id, int depth, std::string& out) {
  if (depth > kMaxDepth) {
    out += "...";
    return;
  }
  const btf_type* t = btf__type_by_id(types, id);
  if (!t) {
    out += id == 0 ? "void" : "?";
    return;
  }
  switch (btf_kind(t)) {
  case BTF_KIND_INT:
    layoutInt(t, out);
    return;
  case BTF_KIND_FLOAT:
    out += "f" + std::to_string(t->size * 8);
    return;
  case BTF_KIND_PTR:
    out += "ptr";
    return;
  case BTF_KIND_ARRAY: {
    const struct btf_array* a = btf_array(t);
    layout(types, a->type, depth + 1, out);
    out += "[" + std::to_string(a->nelems) + "]";
    return;
  }
  case BTF_KIND_STRUCT:
  case BTF_KIND_UNION:
    layoutMembers(types, t, depth, out);
    return;
  case BTF_KIND_ENUM:
  case BTF_KIND_ENUM64:
    layoutEnum(types, t, out);
    return;
  case BTF_KIND_DATASEC:
    layoutSection(types, t, depth, out);
    return;
  case BTF_KIND_VAR:
    out += nameOf(types, t->name_off) + ":";
    layout(types, t->type, depth + 1, out);
    return;
  case BTF_KIND_TYPEDEF:
  case BTF_KIND_VOLATILE:
  case BTF_KIND_CONST:
  case BTF_KIND_RESTRICT:
  case BTF_KIND_TYPE_TAG:
    layout(types, t->type, depth + 1, out);
    return;
  case BTF_KIND_FWD:
    out += "fwd " + nameOf(types, t->name_off);
    return;
  default:
    out += "kind" + std::to_string(btf_kind(t));
    return;
  }
}

} // namespace

std::optional<std::string> carryRefusal(const MapShape& running, const MapShape& wanted) {
  if (running.type != wanted.type)
    return "type " + typeName(running.type) + " -> " + typeName(wanted.type);
  if (running.type == BPF_MAP_TYPE_PROG_ARRAY)
    return std::string("a prog_array holds programs of the running version");
  if (running.keySize != wanted.keySize)
    return "key size " + std::to_string(running.keySize) + " -> " + std::to_string(wanted.keySize);
  if (running.valueSize != wanted.valueSize)
    return "value size " + std::to_string(running.valueSize) + " -> " +
           std::to_string(wanted.valueSize);
  if (running.maxEntries != wanted.maxEntries)
    return "max_entries " + std::to_string(running.maxEntries) + " -> " +
           std::to_string(wanted.maxEntries);
  if (running.flags != wanted.flags)
    return "flags " + hex(running.flags) + " -> " + hex(wanted.flags);
  if (!running.keyType.empty() && !wanted.keyType.empty() && running.keyType != wanted.keyType)
    return std::string("key type changed");
  if (!running.valueType.empty() && !wanted.valueType.empty() &&
      running.valueType != wanted.valueType)
    return std::string("value type changed");
  return std::nullopt;
}

std::string btfLayout(const ::btf* types, uint32_t typeId) {
  std::string out;
  if (types && typeId)
    layout(types, typeId, 0, out);
  return out;
}

bool configurationMap(const std::string& mapName) {
  return mapName == ".rodata" || mapName.rfind(".rodata.", 0) == 0 || mapName == ".kconfig";
}

} // namespace bpfchain::dataplane
