#include "btf/value.h"

#include <bpf/btf.h>
#include <linux/btf.h>

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <cstdio>
#include <cstring>
#include <netinet/in.h>
#include <optional>
#include <utility>
#include <yaml-cpp/yaml.h>

#include "system/escape.h"

namespace bpfchain::btf {
namespace {

// Deeper chains of typedefs and qualifiers than this only come from corrupt (cyclic) BTF.
constexpr int kMaxTypeDepth = 64;
constexpr bool kHostLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;

std::string nameOf(const struct btf* btf, const btf_type* t) {
  const char* name = btf__name_by_offset(btf, t->name_off);
  return name ? name : "";
}

// A type with its typedefs and qualifiers looked through.
struct Type {
  __u32 id = 0;
  const btf_type* t = nullptr;
  // A __be16/__be32/__be64 typedef was on the way: numbers are stored big-endian.
  bool bigEndian = false;
};

std::optional<Type> resolve(const struct btf* btf, __u32 id) {
  Type type;
  for (int depth = 0; depth < kMaxTypeDepth; ++depth) {
    const btf_type* t = btf__type_by_id(btf, id);
    if (!t)
      return std::nullopt;
    if (btf_is_typedef(t)) {
      std::string name = nameOf(btf, t);
      if (name == "__be16" || name == "__be32" || name == "__be64")
        type.bigEndian = true;
    } else if (!btf_is_mod(t)) {
      type.id = id;
      type.t = t;
      return type;
    }
    id = t->type;
  }
  return std::nullopt;
}

bool isCharInt(const struct btf* btf, const btf_type* t) {
  // clang never sets BTF_INT_CHAR; plain `char` is told apart from __u8/__s8 by its name.
  return btf_is_int(t) && t->size == 1 &&
         ((btf_int_encoding(t) & BTF_INT_CHAR) != 0 || nameOf(btf, t) == "char");
}

std::string describe(const ArgValue& value) {
  switch (value.kind) {
  case ArgValue::Kind::Scalar:
    return quote(value.scalar);
  case ArgValue::Kind::Sequence:
    return "a sequence";
  case ArgValue::Kind::Map:
    return "a map";
  case ArgValue::Kind::Null:
    break;
  }
  return "null";
}

std::string join(const std::vector<std::string>& items, const std::string& separator = ", ") {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty())
      out += separator;
    out += item;
  }
  return out;
}

// ---- integers ----

struct ParsedInt {
  bool negative = false;
  unsigned __int128 magnitude = 0;
};

// Decimal or 0x hex with an optional sign. Magnitudes saturate far above any 64-bit range,
// so that a huge number is reported as not fitting rather than as not a number.
std::optional<ParsedInt> parseInteger(const std::string& text) {
  ParsedInt parsed;
  size_t i = 0;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) {
    parsed.negative = text[i] == '-';
    ++i;
  }
  unsigned base = 10;
  if (text.size() - i > 2 && text[i] == '0' && (text[i + 1] == 'x' || text[i + 1] == 'X')) {
    base = 16;
    i += 2;
  }
  if (i >= text.size())
    return std::nullopt;
  constexpr unsigned __int128 kSaturated = static_cast<unsigned __int128>(1) << 100;
  for (; i < text.size(); ++i) {
    char c = text[i];
    unsigned digit = 0;
    if (c >= '0' && c <= '9')
      digit = c - '0';
    else if (base == 16 && c >= 'a' && c <= 'f')
      digit = c - 'a' + 10;
    else if (base == 16 && c >= 'A' && c <= 'F')
      digit = c - 'A' + 10;
    else
      return std::nullopt;
    if (parsed.magnitude < kSaturated)
      parsed.magnitude = parsed.magnitude * base + digit;
  }
  return parsed;
}

struct IntRange {
  unsigned bits = 0;
  bool isSigned = false;

  std::string text() const {
    if (isSigned) {
      long long max = static_cast<long long>((1ULL << (bits - 1)) - 1);
      return "(" + std::to_string(-max - 1) + ".." + std::to_string(max) + ")";
    }
    unsigned long long max = bits == 64 ? ~0ULL : (1ULL << bits) - 1;
    return "(0.." + std::to_string(max) + ")";
  }

  // The two's-complement bit pattern of `value`, when it is in range.
  std::optional<uint64_t> fit(const ParsedInt& value) const {
    const unsigned __int128 one = 1;
    if (isSigned) {
      unsigned __int128 limit = value.negative ? one << (bits - 1) : (one << (bits - 1)) - 1;
      if (value.magnitude > limit)
        return std::nullopt;
      auto magnitude = static_cast<uint64_t>(value.magnitude);
      return value.negative ? ~magnitude + 1 : magnitude;
    }
    if ((value.negative && value.magnitude != 0) || value.magnitude > (one << bits) - 1)
      return std::nullopt;
    return static_cast<uint64_t>(value.magnitude);
  }
};

void storeInt(uint8_t* out, size_t size, uint64_t value, bool bigEndian) {
  bool big = bigEndian || !kHostLittleEndian;
  for (size_t i = 0; i < size; ++i) {
    auto byte = static_cast<uint8_t>(value >> (8 * i));
    out[big ? size - 1 - i : i] = byte;
  }
}

uint64_t loadInt(const uint8_t* in, size_t size, bool bigEndian) {
  bool big = bigEndian || !kHostLittleEndian;
  uint64_t value = 0;
  for (size_t i = 0; i < size; ++i)
    value |= static_cast<uint64_t>(in[big ? size - 1 - i : i]) << (8 * i);
  return value;
}

int64_t signExtend(uint64_t value, unsigned bits) {
  if (bits < 64 && (value & (1ULL << (bits - 1))) != 0)
    value |= ~0ULL << bits;
  return static_cast<int64_t>(value);
}

bool isTrue(const std::string& text) {
  return text == "true" || text == "True" || text == "TRUE";
}
bool isFalse(const std::string& text) {
  return text == "false" || text == "False" || text == "FALSE";
}

// ---- addresses ----

using Bytes16 = std::array<uint8_t, 16>;

std::optional<std::array<uint8_t, 4>> parseIpv4(const std::string& text) {
  std::array<uint8_t, 4> bytes{};
  if (inet_pton(AF_INET, text.c_str(), bytes.data()) != 1)
    return std::nullopt;
  return bytes;
}

// IPv6, or IPv4 as the IPv4-mapped IPv6 address ::ffff:a.b.c.d. `mapped` tells which.
std::optional<Bytes16> parseIpv6(const std::string& text, bool* mapped) {
  Bytes16 bytes{};
  *mapped = false;
  if (inet_pton(AF_INET6, text.c_str(), bytes.data()) == 1)
    return bytes;
  auto v4 = parseIpv4(text);
  if (!v4)
    return std::nullopt;
  bytes[10] = 0xff;
  bytes[11] = 0xff;
  std::memcpy(bytes.data() + 12, v4->data(), 4);
  *mapped = true;
  return bytes;
}

std::string formatAddress(const uint8_t* bytes, size_t width) {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(width == 4 ? AF_INET : AF_INET6, bytes, buf, sizeof buf);
  return buf;
}

std::optional<std::array<uint8_t, 6>> parseMac(const std::string& text) {
  std::array<uint8_t, 6> bytes{};
  if (text.size() != 17)
    return std::nullopt;
  for (size_t i = 0; i < 6; ++i) {
    if (i > 0 && text[3 * i - 1] != ':' && text[3 * i - 1] != '-')
      return std::nullopt;
    std::string pair = text.substr(3 * i, 2);
    auto parsed = parseInteger("0x" + pair);
    if (!parsed || pair.find_first_of("+-") != std::string::npos)
      return std::nullopt;
    bytes[i] = static_cast<uint8_t>(parsed->magnitude);
  }
  return bytes;
}

// ---- the shape of a type ----

// Bytes of address a scalar address text fills for this type: 4, 16, or 0 when none.
size_t addressWidth(const struct btf* btf, __u32 id) {
  auto type = resolve(btf, id);
  if (!type)
    return 0;
  const btf_type* t = type->t;
  if (btf_is_int(t))
    return t->size == 4 && (btf_int_encoding(t) & BTF_INT_SIGNED) == 0 ? 4 : 0;
  if (btf_is_composite(t)) {
    std::string name = nameOf(btf, t);
    if (name == "in_addr" && t->size == 4)
      return 4;
    if (name == "in6_addr" && t->size == 16)
      return 16;
    return 0;
  }
  if (!btf_is_array(t))
    return 0;
  const struct btf_array* array = btf_array(t);
  auto elem = resolve(btf, array->type);
  if (!elem || !btf_is_int(elem->t) || isCharInt(btf, elem->t))
    return 0;
  if (elem->t->size == 1 && (array->nelems == 4 || array->nelems == 16))
    return array->nelems;
  if (elem->t->size == 4 && array->nelems == 4)
    return 16;
  return 0;
}

// An LPM-trie key: struct { __u32 prefixlen; <address> addr; ... }. Returns the address
// member's type, or 0.
__u32 lpmAddressType(const struct btf* btf, const btf_type* t) {
  if (!btf_is_struct(t) || btf_vlen(t) < 2)
    return 0;
  const btf_member* members = btf_members(t);
  const char* first = btf__name_by_offset(btf, members[0].name_off);
  if (!first || std::strcmp(first, "prefixlen") != 0 || btf_member_bit_offset(t, 0) != 0 ||
      btf_member_bitfield_size(t, 0) != 0 || btf_member_bit_offset(t, 1) != 32 ||
      btf_member_bitfield_size(t, 1) != 0)
    return 0;
  auto prefix = resolve(btf, members[0].type);
  if (!prefix || !btf_is_int(prefix->t) || prefix->t->size != 4)
    return 0;
  return addressWidth(btf, members[1].type) != 0 ? members[1].type : 0;
}

// A member as users name it: anonymous structs and unions are looked through, so their
// members are named as if they were the parent's (as in C).
struct Member {
  std::string name;
  __u32 typeId = 0;
  __u32 bitOffset = 0; // from the start of the outermost composite
  __u32 bitfieldSize = 0;
  __u32 bitSize = 0;
};

// The member a union is shown as: the largest (the first of equals), so that as many of its
// bytes as possible survive a round trip.
int unionDisplayMember(const struct btf* btf, const btf_type* t) {
  const btf_member* members = btf_members(t);
  int best = 0;
  long long bestSize = -1;
  for (int i = 0; i < btf_vlen(t); ++i) {
    long long size = btf__resolve_size(btf, members[i].type);
    if (size > bestSize) {
      best = i;
      bestSize = size;
    }
  }
  return best;
}

// All members, or for display only those that do not overlap (one per union).
void flatten(const struct btf* btf, const btf_type* t, __u32 baseBits, bool display,
             std::vector<Member>& out, int depth = 0) {
  if (depth > kMaxTypeDepth)
    return;
  const btf_member* members = btf_members(t);
  int first = 0;
  int last = btf_vlen(t);
  if (display && btf_is_union(t) && last > 0) {
    first = unionDisplayMember(btf, t);
    last = first + 1;
  }
  for (int i = first; i < last; ++i) {
    Member member;
    member.name = btf__name_by_offset(btf, members[i].name_off);
    member.typeId = members[i].type;
    member.bitOffset = baseBits + btf_member_bit_offset(t, i);
    member.bitfieldSize = btf_member_bitfield_size(t, i);
    if (member.name.empty()) {
      auto type = resolve(btf, member.typeId);
      if (type && btf_is_composite(type->t))
        flatten(btf, type->t, member.bitOffset, display, out, depth + 1);
      continue; // an unnamed bitfield is padding
    }
    long long size = btf__resolve_size(btf, member.typeId);
    member.bitSize = member.bitfieldSize ? member.bitfieldSize : size > 0 ? size * 8 : 0;
    out.push_back(std::move(member));
  }
}

std::vector<std::string> memberNames(const std::vector<Member>& members) {
  std::vector<std::string> names;
  names.reserve(members.size());
  for (const auto& member : members)
    names.push_back(member.name);
  return names;
}

// Enumerators of an ENUM or ENUM64, with signedness (old BTF has no flag for it: an enum
// with a negative enumerator is signed).
struct Enumerators {
  std::vector<std::pair<std::string, int64_t>> values;
  bool isSigned = false;
};

Enumerators enumerators(const struct btf* btf, const btf_type* t) {
  Enumerators out;
  out.isSigned = btf_kflag(t);
  if (btf_is_enum(t)) {
    const struct btf_enum* e = btf_enum(t);
    for (int i = 0; i < btf_vlen(t); ++i) {
      if (e[i].val < 0)
        out.isSigned = true;
    }
    for (int i = 0; i < btf_vlen(t); ++i) {
      int64_t value = out.isSigned ? static_cast<int64_t>(e[i].val)
                                   : static_cast<int64_t>(static_cast<__u32>(e[i].val));
      out.values.emplace_back(btf__name_by_offset(btf, e[i].name_off), value);
    }
  } else {
    const struct btf_enum64* e = btf_enum64(t);
    for (int i = 0; i < btf_vlen(t); ++i)
      out.values.emplace_back(btf__name_by_offset(btf, e[i].name_off),
                              static_cast<int64_t>(btf_enum64_value(&e[i])));
  }
  return out;
}

bool isScalar(const ArgValue& value) {
  return value.kind == ArgValue::Kind::Scalar;
}

bool looksLikeFlow(const ArgValue& value, char open) {
  return isScalar(value) && !value.scalar.empty() && value.scalar.front() == open;
}

// ---- encoding ----

class Encoder {
public:
  explicit Encoder(const struct btf* btf) : btf_(btf) {}

  // Writes `node` as type `id` at `out`, which is zeroed and as large as the type.
  Result<void> encode(__u32 id, const ArgValue& node, uint8_t* out, const std::string& field);

private:
  static Error fail(const std::string& field, const std::string& message) {
    return invalidError(field.empty() ? message : field + ": " + message);
  }
  Result<void> reparsed(__u32 id, const std::string& text, uint8_t* out, const std::string& field);
  Result<uint64_t> integer(const std::string& text, IntRange range, bool allowBool,
                           const std::string& what, const std::string& field);
  Result<void> encodeInt(const Type& type, const std::string& name, const ArgValue& node,
                         uint8_t* out, const std::string& field);
  Result<uint64_t> enumValue(const Type& type, const std::string& name, const std::string& text,
                             unsigned bits, const std::string& field);
  Result<void> encodeArray(const Type& type, const std::string& name, const ArgValue& node,
                           uint8_t* out, const std::string& field);
  Result<void> encodeAddress(size_t width, const std::string& name, const std::string& text,
                             uint8_t* out, const std::string& field);
  Result<void> encodePrefix(const Type& type, __u32 addressType, const std::string& text,
                            uint8_t* out, const std::string& field);
  Result<void> encodeComposite(const Type& type, const std::string& name, const ArgValue& node,
                               uint8_t* out, const std::string& field);
  Result<void> encodeBitfield(const Member& member, const ArgValue& node, uint8_t* base,
                              const std::string& field);

  const struct btf* btf_;
};

Result<void> Encoder::reparsed(__u32 id, const std::string& text, uint8_t* out,
                               const std::string& field) {
  // Flow YAML in a string (a CRD string field carrying a struct or an array).
  YAML::Node node;
  try {
    node = YAML::Load(text);
  } catch (const YAML::Exception&) {
    return fail(field, quote(text) + " is not valid YAML");
  }
  if (node.IsScalar()) // a scalar again would loop
    return fail(field, quote(text) + " is not valid YAML");
  auto value = argValueFromYaml(node, field);
  if (!value)
    return std::move(value).error();
  return encode(id, *value, out, field);
}

Result<uint64_t> Encoder::integer(const std::string& text, IntRange range, bool allowBool,
                                  const std::string& what, const std::string& field) {
  if (allowBool && isTrue(text))
    return uint64_t{1};
  if (allowBool && isFalse(text))
    return uint64_t{0};
  auto parsed = parseInteger(text);
  if (!parsed)
    return fail(field, quote(text) + " is not a valid " + what);
  auto bits = range.fit(*parsed);
  if (!bits)
    return fail(field, text + " does not fit " + what + " " + range.text());
  return *bits;
}

Result<void> Encoder::encode(__u32 id, const ArgValue& node, uint8_t* out,
                             const std::string& field) {
  auto type = resolve(btf_, id);
  if (!type)
    return fail(field, "BTF type " + std::to_string(id) + " does not exist");
  std::string name = typeName(btf_, id);
  const btf_type* t = type->t;
  switch (btf_kind(t)) {
  case BTF_KIND_INT:
  case BTF_KIND_ENUM:
  case BTF_KIND_ENUM64:
    return encodeInt(*type, name, node, out, field);
  case BTF_KIND_ARRAY:
    return encodeArray(*type, name, node, out, field);
  case BTF_KIND_STRUCT:
  case BTF_KIND_UNION:
    return encodeComposite(*type, name, node, out, field);
  case BTF_KIND_PTR:
    return fail(field, "a pointer (" + name + ") cannot be set from text");
  case BTF_KIND_FLOAT:
    return fail(field, "floating-point values (" + name + ") are not supported");
  default:
    return fail(field, name + " values are not supported");
  }
}

Result<void> Encoder::encodeInt(const Type& type, const std::string& name, const ArgValue& node,
                                uint8_t* out, const std::string& field) {
  const btf_type* t = type.t;
  if (!isScalar(node))
    return fail(field, "expected " + name + ", got " + describe(node));
  const std::string& text = node.scalar;
  if (t->size != 1 && t->size != 2 && t->size != 4 && t->size != 8)
    return fail(field, name + " is " + std::to_string(t->size) +
                           " bytes; integers of 1, 2, 4 or 8 bytes are supported");
  if (!btf_is_int(t)) {
    auto value = enumValue(type, name, text, t->size * 8, field);
    if (!value)
      return std::move(value).error();
    storeInt(out, t->size, *value, type.bigEndian);
    return {};
  }
  if (btf_int_offset(t) != 0 || btf_int_bits(t) != t->size * 8)
    return fail(field, name + " is a " + std::to_string(btf_int_bits(t)) +
                           "-bit integer type, which is not supported");
  __u8 encoding = btf_int_encoding(t);
  bool isSigned = (encoding & BTF_INT_SIGNED) != 0;
  if (t->size == 4 && !isSigned && text.find('.') != std::string::npos) {
    auto address = parseIpv4(text);
    if (!address)
      return fail(field, quote(text) + " is not a valid " + name + " or IPv4 address");
    std::memcpy(out, address->data(), 4); // as packets carry it: network byte order
    return {};
  }
  bool isBool = (encoding & BTF_INT_BOOL) != 0;
  IntRange range{isBool ? 1U : t->size * 8, isSigned};
  auto value = integer(text, range, t->size == 1, name, field);
  if (!value)
    return std::move(value).error();
  storeInt(out, t->size, *value, type.bigEndian);
  return {};
}

Result<uint64_t> Encoder::enumValue(const Type& type, const std::string& name,
                                    const std::string& text, unsigned bits,
                                    const std::string& field) {
  Enumerators known = enumerators(btf_, type.t);
  IntRange range{bits, known.isSigned};
  auto named = std::find_if(known.values.begin(), known.values.end(),
                            [&](const auto& entry) { return entry.first == text; });
  if (named != known.values.end()) {
    // An enumerator always fits its enum, but not necessarily a bitfield of it.
    int64_t value = named->second;
    ParsedInt parsed{value < 0,
                     value < 0 ? ~static_cast<uint64_t>(value) + 1 : static_cast<uint64_t>(value)};
    if (auto fitted = range.fit(parsed))
      return *fitted;
    return fail(field, text + " (" + std::to_string(value) + ") does not fit " + name + " " +
                           range.text());
  }
  auto parsed = parseInteger(text);
  if (!parsed) {
    std::vector<std::string> names;
    for (const auto& entry : known.values)
      names.push_back(entry.first);
    return fail(field, quote(text) + " is not a valid " + name + " (enumerators: " + join(names) +
                           ", or a number)");
  }
  auto value = range.fit(*parsed);
  if (!value)
    return fail(field, text + " does not fit " + name + " " + range.text());
  return *value;
}

Result<void> Encoder::encodeAddress(size_t width, const std::string& name, const std::string& text,
                                    uint8_t* out, const std::string& field) {
  if (width == 4) {
    auto address = parseIpv4(text);
    if (!address)
      return fail(field, quote(text) + " is not a valid IPv4 address for " + name);
    std::memcpy(out, address->data(), 4);
    return {};
  }
  bool mapped = false;
  auto address = parseIpv6(text, &mapped);
  if (!address)
    return fail(field, quote(text) + " is not a valid IPv6 or IPv4 address for " + name);
  std::memcpy(out, address->data(), 16);
  return {};
}

Result<void> Encoder::encodeArray(const Type& type, const std::string& name, const ArgValue& node,
                                  uint8_t* out, const std::string& field) {
  const struct btf_array* array = btf_array(type.t);
  auto elem = resolve(btf_, array->type);
  long long elemSize = btf__resolve_size(btf_, array->type);
  if (!elem || elemSize <= 0)
    return fail(field, name + " has elements of no size");
  if (isScalar(node)) {
    const std::string& text = node.scalar;
    if (isCharInt(btf_, elem->t)) {
      if (text.size() >= array->nelems)
        return fail(field, quote(text) + " is " + std::to_string(text.size()) + " bytes; " + name +
                               " holds at most " + std::to_string(array->nelems - 1) +
                               " and a NUL");
      std::copy(text.begin(), text.end(), out); // the NUL is already there: out is zeroed
      return {};
    }
    if (!looksLikeFlow(node, '[')) {
      if (size_t width = addressWidth(btf_, type.id))
        return encodeAddress(width, name, text, out, field);
      if (btf_is_int(elem->t) && elem->t->size == 1 && array->nelems == 6) {
        auto mac = parseMac(text);
        if (!mac)
          return fail(field, quote(text) + " is not a valid MAC address for " + name);
        std::memcpy(out, mac->data(), 6);
        return {};
      }
    }
    if (looksLikeFlow(node, '['))
      return reparsed(type.id, text, out, field);
  }
  if (!(node.kind == ArgValue::Kind::Sequence))
    return fail(field, "expected a sequence for " + name + ", got " + describe(node));
  if (node.items.size() > array->nelems)
    return fail(field, std::to_string(node.items.size()) + " elements do not fit " + name);
  for (size_t i = 0; i < node.items.size(); ++i) {
    auto done = encode(array->type, node.items[i], out + i * elemSize,
                       field + "[" + std::to_string(i) + "]");
    if (!done)
      return done;
  }
  return {};
}

Result<void> Encoder::encodePrefix(const Type& type, __u32 addressType, const std::string& text,
                                   uint8_t* out, const std::string& field) {
  size_t width = addressWidth(btf_, addressType);
  std::string addressName = typeName(btf_, addressType);
  std::string structName = typeName(btf_, type.id);
  size_t slash = text.find('/');
  std::string addressText = text.substr(0, slash);

  Bytes16 address{};
  unsigned addressBits = 0; // bits of the address the text wrote
  unsigned offsetBits = 0;  // where those bits start in the key's address (96 for ::ffff:v4)
  if (auto v4 = parseIpv4(addressText)) {
    addressBits = 32;
    if (width == 4) {
      std::memcpy(address.data(), v4->data(), 4);
    } else {
      bool mapped = false;
      address = *parseIpv6(addressText, &mapped);
      offsetBits = 96;
    }
  } else if (Bytes16 v6{}; inet_pton(AF_INET6, addressText.c_str(), v6.data()) == 1) {
    if (width == 4)
      return fail(field, quote(text) + " is an IPv6 prefix; " + structName + " holds an IPv4 " +
                             "address (" + addressName + ")");
    address = v6;
    addressBits = 128;
  } else {
    return fail(field, quote(text) + " is not a valid " +
                           (width == 4 ? "IPv4 prefix" : "IPv6 or IPv4 prefix") + " for " +
                           structName);
  }

  unsigned prefix = addressBits;
  if (slash != std::string::npos) {
    std::string length = text.substr(slash + 1);
    auto parsed = parseInteger(length);
    if (length.empty() || length.size() > 3 ||
        length.find_first_not_of("0123456789") != std::string::npos || !parsed)
      return fail(field, quote(text) + " is not a valid prefix: the length after / must be a "
                                       "decimal number");
    if (parsed->magnitude > addressBits)
      return fail(field, quote(text) + ": prefix length " + length + " does not fit " +
                             addressName + " (0.." + std::to_string(addressBits) + ")");
    prefix = static_cast<unsigned>(parsed->magnitude);
  }
  unsigned total = offsetBits + prefix;
  Bytes16 masked = address;
  for (unsigned bit = total; bit < width * 8; ++bit)
    masked[bit / 8] &= static_cast<uint8_t>(~(0x80U >> (bit % 8)));
  if (masked != address) {
    std::string suggestion =
        offsetBits ? formatAddress(masked.data() + 12, 4) : formatAddress(masked.data(), width);
    return fail(field, quote(text) + " has host bits set beyond /" + std::to_string(prefix) +
                           " (did you mean " + suggestion + "/" + std::to_string(prefix) + "?)");
  }
  storeInt(out, 4, total, false);
  std::memcpy(out + 4, address.data(), width);
  return {};
}

Result<void> Encoder::encodeComposite(const Type& type, const std::string& name,
                                      const ArgValue& node, uint8_t* out,
                                      const std::string& field) {
  if (isScalar(node)) {
    const std::string& text = node.scalar;
    if (looksLikeFlow(node, '{'))
      return reparsed(type.id, text, out, field);
    if (size_t width = addressWidth(btf_, type.id))
      return encodeAddress(width, name, text, out, field);
    if (__u32 addressType = lpmAddressType(btf_, type.t))
      return encodePrefix(type, addressType, text, out, field);
  }
  if (!(node.kind == ArgValue::Kind::Map))
    return fail(field, "expected a map of members for " + name + ", got " + describe(node));

  std::vector<Member> members;
  flatten(btf_, type.t, 0, false, members);
  std::vector<const Member*> given;
  std::vector<std::string> givenNames;
  std::vector<std::string> unknown;
  const size_t count = std::min(node.names.size(), node.items.size());
  for (size_t i = 0; i < count; ++i) {
    const std::string& key = node.names[i];
    const Member* found = nullptr;
    for (const auto& member : members) {
      if (member.name == key)
        found = &member;
    }
    if (!found)
      unknown.push_back(key);
    given.push_back(found);
    givenNames.push_back(key);
  }
  if (!unknown.empty())
    return fail(field, std::string(unknown.size() == 1 ? "unknown member " : "unknown members ") +
                           join(unknown) + " in " + name +
                           "; members: " + join(memberNames(members)));
  if (btf_is_union(type.t) && given.size() > 1)
    return fail(field, name + " takes one member; got " + join(givenNames));
  // Two members sharing storage (an anonymous union, or a name given twice) would silently
  // overwrite one another.
  for (size_t i = 0; i < given.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      const Member& a = *given[j];
      const Member& b = *given[i];
      if (&a == &b)
        return fail(field, "member " + a.name + " is given twice");
      if (a.bitOffset < b.bitOffset + b.bitSize && b.bitOffset < a.bitOffset + a.bitSize)
        return fail(field, "members " + a.name + " and " + b.name +
                               " share storage (a union); give one of them");
    }
  }

  for (size_t i = 0; i < count; ++i) {
    const Member& member = *given[i];
    std::string memberField = field.empty() ? member.name : field + "." + member.name;
    Result<void> done =
        member.bitfieldSize ? encodeBitfield(member, node.items[i], out, memberField)
        : member.bitOffset % 8 != 0
            ? fail(memberField, "member is not byte-aligned")
            : encode(member.typeId, node.items[i], out + member.bitOffset / 8, memberField);
    if (!done)
      return done;
  }
  return {};
}

Result<void> Encoder::encodeBitfield(const Member& member, const ArgValue& node, uint8_t* base,
                                     const std::string& field) {
  if (!kHostLittleEndian)
    return fail(field, "bitfields can only be set on little-endian hosts");
  auto type = resolve(btf_, member.typeId);
  std::string name = typeName(btf_, member.typeId);
  if (!type || !(btf_is_int(type->t) || btf_is_any_enum(type->t)))
    return fail(field, "bitfields of " + name + " are not supported");
  std::string what = std::to_string(member.bitfieldSize) + "-bit " + name + " bitfield";
  if (!isScalar(node))
    return fail(field, "expected " + what + ", got " + describe(node));
  Result<uint64_t> value = uint64_t{0};
  if (btf_is_int(type->t)) {
    bool isSigned = (btf_int_encoding(type->t) & BTF_INT_SIGNED) != 0;
    value = integer(node.scalar, IntRange{member.bitfieldSize, isSigned},
                    member.bitfieldSize == 1 || (btf_int_encoding(type->t) & BTF_INT_BOOL), what,
                    field);
  } else {
    value = enumValue(*type, what, node.scalar, member.bitfieldSize, field);
  }
  if (!value)
    return std::move(value).error();
  // Little-endian bitfields: bit k of the struct is bit k % 8 of byte k / 8.
  for (__u32 i = 0; i < member.bitfieldSize; ++i) {
    __u32 bit = member.bitOffset + i;
    auto mask = static_cast<uint8_t>(1U << (bit % 8));
    if ((*value >> i) & 1)
      base[bit / 8] |= mask;
    else
      base[bit / 8] &= static_cast<uint8_t>(~mask);
  }
  return {};
}

// ---- decoding ----

// The decoded form before it is written as YAML: strings from char arrays are always quoted
// (so that "true", "~" or "" stay strings), everything else is written as the emitter sees fit.
struct Text {
  enum class Kind { Plain, Quoted, Map, Seq };
  Kind kind = Kind::Plain;
  std::string scalar;
  std::vector<std::string> keys; // Map: keys[i] names items[i]
  std::vector<Text> items;       // Map values, Seq elements

  static Text plain(std::string s) { return Text{Kind::Plain, std::move(s), {}, {}}; }
};

void emit(YAML::Emitter& out, const Text& text) {
  switch (text.kind) {
  case Text::Kind::Plain:
    out << text.scalar;
    break;
  case Text::Kind::Quoted:
    out << YAML::DoubleQuoted << text.scalar;
    break;
  case Text::Kind::Map:
    out << YAML::Flow << YAML::BeginMap;
    for (size_t i = 0; i < text.items.size(); ++i) {
      out << YAML::Key << text.keys[i] << YAML::Value;
      emit(out, text.items[i]);
    }
    out << YAML::EndMap;
    break;
  case Text::Kind::Seq:
    out << YAML::Flow << YAML::BeginSeq;
    for (const auto& item : text.items)
      emit(out, item);
    out << YAML::EndSeq;
    break;
  }
}

class Decoder {
public:
  explicit Decoder(const struct btf* btf) : btf_(btf) {}
  Result<Text> decode(__u32 id, const uint8_t* data);

private:
  Result<Text> decodeArray(const Type& type, const uint8_t* data);
  Result<Text> decodeComposite(const Type& type, const uint8_t* data);
  std::optional<Text> decodePrefix(__u32 addressType, const uint8_t* data);
  Result<Text> decodeBitfield(const Member& member, const uint8_t* base);

  const struct btf* btf_;
};

std::string enumText(const Enumerators& known, uint64_t raw, unsigned bits) {
  int64_t value = known.isSigned ? signExtend(raw, bits) : static_cast<int64_t>(raw);
  for (const auto& [name, enumerator] : known.values) {
    if (enumerator == value || static_cast<uint64_t>(enumerator) == raw)
      return name;
  }
  return known.isSigned ? std::to_string(value) : std::to_string(raw);
}

Result<Text> Decoder::decode(__u32 id, const uint8_t* data) {
  auto type = resolve(btf_, id);
  if (!type)
    return invalidError("BTF type " + std::to_string(id) + " does not exist");
  const btf_type* t = type->t;
  if (btf_is_int(t)) {
    if (t->size != 1 && t->size != 2 && t->size != 4 && t->size != 8)
      return invalidError(typeName(btf_, id) + " values cannot be shown");
    __u8 encoding = btf_int_encoding(t);
    uint64_t raw = loadInt(data, t->size, type->bigEndian);
    if ((encoding & BTF_INT_BOOL) != 0 && raw <= 1)
      return Text::plain(raw ? "true" : "false");
    if (type->bigEndian && t->size == 4)
      return Text::plain(formatAddress(data, 4));
    if ((encoding & BTF_INT_SIGNED) != 0)
      return Text::plain(std::to_string(signExtend(raw, t->size * 8)));
    return Text::plain(std::to_string(raw));
  }
  if (btf_is_any_enum(t)) {
    uint64_t raw = loadInt(data, t->size, type->bigEndian);
    return Text::plain(enumText(enumerators(btf_, t), raw, t->size * 8));
  }
  if (btf_is_array(t))
    return decodeArray(*type, data);
  if (btf_is_composite(t))
    return decodeComposite(*type, data);
  return invalidError(typeName(btf_, id) + " values cannot be shown");
}

Result<Text> Decoder::decodeArray(const Type& type, const uint8_t* data) {
  const struct btf_array* array = btf_array(type.t);
  auto elem = resolve(btf_, array->type);
  long long elemSize = btf__resolve_size(btf_, array->type);
  if (!elem || elemSize <= 0)
    return invalidError(typeName(btf_, type.id) + " has elements of no size");
  if (isCharInt(btf_, elem->t)) {
    // A string when it is printable and NUL-terminated with nothing after the NUL; anything
    // else is shown byte by byte so that it still round-trips.
    const auto* end = static_cast<const uint8_t*>(std::memchr(data, 0, array->nelems));
    bool printable = end != nullptr;
    for (const uint8_t* p = data; printable && p < end; ++p)
      printable = *p >= 0x20 && *p < 0x7f;
    for (const uint8_t* p = end; printable && p < data + array->nelems; ++p)
      printable = *p == 0;
    if (printable)
      return Text{
          Text::Kind::Quoted, std::string(reinterpret_cast<const char*>(data), end - data), {}, {}};
  } else if (size_t width = addressWidth(btf_, type.id);
             width != 0 && (elem->t->size == 1 || elem->bigEndian)) {
    return Text::plain(formatAddress(data, width));
  } else if (btf_is_int(elem->t) && elem->t->size == 1 && array->nelems == 6) {
    char buf[18];
    std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", data[0], data[1], data[2],
                  data[3], data[4], data[5]);
    return Text::plain(buf);
  }
  Text seq{Text::Kind::Seq, {}, {}, {}};
  for (__u32 i = 0; i < array->nelems; ++i) {
    auto item = decode(array->type, data + i * elemSize);
    if (!item)
      return item;
    seq.items.push_back(std::move(*item));
  }
  return seq;
}

std::optional<Text> Decoder::decodePrefix(__u32 addressType, const uint8_t* data) {
  size_t width = addressWidth(btf_, addressType);
  auto prefix = static_cast<__u32>(loadInt(data, 4, false));
  if (prefix > width * 8)
    return std::nullopt;
  Bytes16 address{};
  std::memcpy(address.data(), data + 4, width);
  for (unsigned bit = prefix; bit < width * 8; ++bit) {
    if ((address[bit / 8] & (0x80U >> (bit % 8))) != 0)
      return std::nullopt; // host bits: only the member map says that
  }
  return Text::plain(formatAddress(address.data(), width) + "/" + std::to_string(prefix));
}

Result<Text> Decoder::decodeBitfield(const Member& member, const uint8_t* base) {
  auto type = resolve(btf_, member.typeId);
  if (!kHostLittleEndian || !type || !(btf_is_int(type->t) || btf_is_any_enum(type->t)))
    return invalidError(typeName(btf_, member.typeId) + " bitfields cannot be shown");
  uint64_t raw = 0;
  for (__u32 i = 0; i < member.bitfieldSize; ++i) {
    __u32 bit = member.bitOffset + i;
    if ((base[bit / 8] >> (bit % 8)) & 1)
      raw |= 1ULL << i;
  }
  if (btf_is_any_enum(type->t))
    return Text::plain(enumText(enumerators(btf_, type->t), raw, member.bitfieldSize));
  if ((btf_int_encoding(type->t) & BTF_INT_SIGNED) != 0)
    return Text::plain(std::to_string(signExtend(raw, member.bitfieldSize)));
  return Text::plain(std::to_string(raw));
}

Result<Text> Decoder::decodeComposite(const Type& type, const uint8_t* data) {
  if (size_t width = addressWidth(btf_, type.id))
    return Text::plain(formatAddress(data, width));
  if (__u32 addressType = lpmAddressType(btf_, type.t)) {
    if (auto prefix = decodePrefix(addressType, data))
      return *prefix;
  }
  std::vector<Member> members;
  flatten(btf_, type.t, 0, true, members);
  Text map{Text::Kind::Map, {}, {}, {}};
  for (const auto& member : members) {
    Result<Text> value = member.bitfieldSize ? decodeBitfield(member, data)
                         : member.bitOffset % 8 != 0
                             ? Result<Text>(invalidError(member.name + " is not byte-aligned"))
                             : decode(member.typeId, data + member.bitOffset / 8);
    if (!value)
      return std::move(value).error().context(member.name);
    map.keys.push_back(member.name);
    map.items.push_back(std::move(*value));
  }
  return map;
}

} // namespace

std::string typeName(const struct btf* btf, __u32 typeId) {
  __u32 id = typeId;
  for (int depth = 0; depth < kMaxTypeDepth; ++depth) {
    const btf_type* t = btf__type_by_id(btf, id);
    if (!t)
      return "<type " + std::to_string(id) + ">";
    std::string name = nameOf(btf, t);
    switch (btf_kind(t)) {
    case BTF_KIND_UNKN:
      return "void";
    case BTF_KIND_CONST:
    case BTF_KIND_VOLATILE:
    case BTF_KIND_RESTRICT:
    case BTF_KIND_TYPE_TAG:
      id = t->type;
      continue;
    case BTF_KIND_TYPEDEF:
    case BTF_KIND_INT:
    case BTF_KIND_FLOAT:
      return name;
    case BTF_KIND_STRUCT:
      return "struct " + (name.empty() ? "(anonymous)" : name);
    case BTF_KIND_UNION:
      return "union " + (name.empty() ? "(anonymous)" : name);
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64:
      return "enum " + (name.empty() ? "(anonymous)" : name);
    case BTF_KIND_FWD:
      return (btf_kflag(t) ? "union " : "struct ") + name;
    case BTF_KIND_ARRAY:
      return typeName(btf, btf_array(t)->type) + "[" + std::to_string(btf_array(t)->nelems) + "]";
    case BTF_KIND_PTR:
      return typeName(btf, t->type) + "*";
    case BTF_KIND_FUNC_PROTO:
      return "function";
    default:
      return "BTF kind " + std::to_string(btf_kind(t));
    }
  }
  return "<type " + std::to_string(typeId) + ">";
}

Result<std::vector<uint8_t>> encodeValue(const struct btf* btf, __u32 typeId, const ArgValue& value,
                                         const std::string& field) {
  std::string prefix = field.empty() ? "" : field + ": ";
  if (!btf)
    return invalidError(prefix + "no BTF to type the value by");
  long long size = btf__resolve_size(btf, typeId);
  if (size <= 0)
    return invalidError(prefix + typeName(btf, typeId) + " has no size");
  std::vector<uint8_t> bytes(size);
  auto done = Encoder(btf).encode(typeId, value, bytes.data(), field);
  if (!done)
    return std::move(done).error();
  return bytes;
}

Result<std::string> decodeValue(const struct btf* btf, __u32 typeId, const void* data,
                                size_t size) {
  if (!btf)
    return invalidError("no BTF to type the value by");
  long long expected = btf__resolve_size(btf, typeId);
  if (expected <= 0 || static_cast<size_t>(expected) != size)
    return invalidError(std::to_string(size) + " bytes given for " + typeName(btf, typeId) +
                        ", which is " + std::to_string(expected) + " bytes");
  auto text = Decoder(btf).decode(typeId, static_cast<const uint8_t*>(data));
  if (!text)
    return std::move(text).error();
  YAML::Emitter out;
  emit(out, *text);
  if (!out.good())
    return invalidError("cannot write " + typeName(btf, typeId) +
                        " as YAML: " + out.GetLastError());
  return std::string(out.c_str());
}

} // namespace bpfchain::btf
