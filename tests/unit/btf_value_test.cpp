// Values typed by BTF, against the types of testdata/btf_types.bpf.c (parsed from the built
// object, no kernel needed): the bytes each accepted text gives, the exact message of every
// error, decode round trips, and setGlobalData on an opened (never loaded) object.
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cstring>
#include <gtest/gtest.h>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "btf/arg_value.h"
#include "btf/global_data.h"
#include "btf/value.h"

namespace bpfchain::btf {
namespace {

using Bytes = std::vector<uint8_t>;

struct BtfDeleter {
  void operator()(struct btf* btf) const { btf__free(btf); }
};

const struct btf* testBtf() {
  static std::unique_ptr<struct btf, BtfDeleter> btf(btf__parse_elf(BTF_TYPES_OBJECT, nullptr));
  return btf.get();
}

// The type of global variable `name` in btf_types.bpf.c.
__u32 varType(const std::string& name) {
  int id = btf__find_by_name_kind(testBtf(), name.c_str(), BTF_KIND_VAR);
  if (id <= 0) {
    ADD_FAILURE() << "no variable " << name << " in " << BTF_TYPES_OBJECT;
    return 0;
  }
  return btf__type_by_id(testBtf(), id)->type;
}

Result<Bytes> encode(const std::string& var, const std::string& yaml,
                     const std::string& field = "f") {
  auto value = parseArgValue(yaml, field);
  if (!value)
    return std::move(value).error();
  return encodeValue(testBtf(), varType(var), *value, field);
}

Bytes zeros(size_t n) {
  return Bytes(n, 0);
}
Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& part : parts)
    out.insert(out.end(), part.begin(), part.end());
  return out;
}

TEST(BtfValue, TestObjectHasBtf) {
  ASSERT_NE(testBtf(), nullptr) << BTF_TYPES_OBJECT << ": " << std::strerror(errno);
}

// ---- accepted forms: text -> bytes ----

struct EncodeCase {
  const char* name;
  const char* var;
  const char* yaml;
  Bytes bytes;
};

void PrintTo(const EncodeCase& c, std::ostream* os) {
  *os << c.var << " <- " << c.yaml;
}

class Encode : public ::testing::TestWithParam<EncodeCase> {};

TEST_P(Encode, GivesTheBytes) {
  const auto& c = GetParam();
  auto bytes = encode(c.var, c.yaml);
  ASSERT_TRUE(bytes) << bytes.error().message();
  EXPECT_EQ(*bytes, c.bytes);
}

// Whatever encode accepts, decode renders in a form that encodes to the same bytes.
TEST_P(Encode, RoundTripsThroughDecode) {
  const auto& c = GetParam();
  auto text = decodeValue(testBtf(), varType(c.var), c.bytes.data(), c.bytes.size());
  ASSERT_TRUE(text) << text.error().message();
  auto again = encode(c.var, *text);
  ASSERT_TRUE(again) << *text << ": " << again.error().message();
  EXPECT_EQ(*again, c.bytes) << *text;
}

const Bytes kRule = concat({
    {7, 0, 0, 0}, // id
    {'w', 'e', 'b', 0},
    zeros(12),           // name
    {80, 0, 0xbb, 0x01}, // ports {lo 80, hi 443}
    {10, 0, 0, 1},       // addr (__be32)
    {2},
    zeros(3),                       // action, padding
    {0xe8, 0x03, 0, 0, 0, 0, 0, 0}, // rate 1000
    {1, 0, 0, 0, 0, 0, 2, 0},       // extra [{lo 1}, {hi 2}]
});
const Bytes kV6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
const Bytes kMapped = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1};

INSTANTIATE_TEST_SUITE_P(
    BtfValue, Encode,
    ::testing::Values(
        EncodeCase{"U8Max", "g_u8", "'255'", {0xff}}, EncodeCase{"U8Hex", "g_u8", "0x7f", {0x7f}},
        EncodeCase{"U8True", "g_u8", "true", {1}},
        EncodeCase{"U16", "g_u16", "'8080'", {0x90, 0x1f}},
        EncodeCase{"U16HexUpper", "g_u16", "0XFFFF", {0xff, 0xff}},
        EncodeCase{"U32Max", "g_u32", "4294967295", {0xff, 0xff, 0xff, 0xff}},
        EncodeCase{"U32Ipv4IsNetworkOrder", "g_u32", "10.0.0.1", {10, 0, 0, 1}},
        EncodeCase{"U64Max", "g_u64", "18446744073709551615", Bytes(8, 0xff)},
        EncodeCase{"U64Hex", "g_u64", "0x0102030405060708", {8, 7, 6, 5, 4, 3, 2, 1}},
        EncodeCase{"S8Min", "g_s8", "-128", {0x80}}, EncodeCase{"S16", "g_s16", "-2", {0xfe, 0xff}},
        EncodeCase{"S32Min", "g_s32", "-2147483648", {0, 0, 0, 0x80}},
        EncodeCase{"S32Plus", "g_s32", "+5", {5, 0, 0, 0}},
        EncodeCase{"S64MinusOne", "g_s64", "-1", Bytes(8, 0xff)},
        EncodeCase{"BoolTrue", "g_bool", "true", {1}},
        EncodeCase{"BoolFalse", "g_bool", "false", {0}}, EncodeCase{"BoolOne", "g_bool", "1", {1}},
        EncodeCase{"EnumName", "g_color", "BT_GREEN", {2, 0, 0, 0}},
        EncodeCase{"EnumNumber", "g_color", "7", {7, 0, 0, 0}},
        EncodeCase{"SignedEnumName", "g_signed_enum", "BT_MINUS", {0xfb, 0xff, 0xff, 0xff}},
        EncodeCase{"SignedEnumNumber", "g_signed_enum", "-3", {0xfd, 0xff, 0xff, 0xff}},
        EncodeCase{"Be16IsBigEndian", "g_be16", "80", {0, 80}},
        EncodeCase{"Be32Address", "g_be32", "10.0.0.1", {10, 0, 0, 1}},
        EncodeCase{"Be32Number", "g_be32", "258", {0, 0, 1, 2}},
        EncodeCase{"TypedefOfTypedef", "g_port", "443", {0xbb, 0x01}},
        EncodeCase{"U8x4Ipv4", "g_addr4", "192.168.1.2", {192, 168, 1, 2}},
        EncodeCase{"U8x4Sequence", "g_addr4", "[1, 2, 3, 4]", {1, 2, 3, 4}},
        EncodeCase{"U8x16Ipv6", "g_addr6", "2001:db8::1", kV6},
        EncodeCase{"U8x16Ipv4Mapped", "g_addr6", "10.0.0.1", kMapped},
        EncodeCase{"U8x6Mac", "g_mac", "aa:bb:cc:dd:ee:0f", {0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f}},
        EncodeCase{"ShortSequenceIsZeroFilled", "g_bytes", "[1, 2]", {1, 2, 0}},
        EncodeCase{"CharArray", "g_name", "eth0", concat({{'e', 't', 'h', '0'}, zeros(12)})},
        EncodeCase{"CharArrayLongest", "g_name", "abcdefghijklmno",
                   concat({Bytes{'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm',
                                 'n', 'o'},
                           {0}})},
        EncodeCase{"CharArrayEmpty", "g_name", "''", zeros(16)},
        EncodeCase{"CharArrayLooksLikeBool", "g_name", "'true'",
                   concat({{'t', 'r', 'u', 'e'}, zeros(12)})},
        EncodeCase{"U16Array", "g_ports", "[80, 443]", {80, 0, 0xbb, 1, 0, 0, 0, 0}},
        EncodeCase{"U16ArrayAsFlowText", "g_ports", "'[80]'", {80, 0, 0, 0, 0, 0, 0, 0}},
        EncodeCase{"U32x4Ipv6", "g_addr6_words", "2001:db8::1", kV6},
        EncodeCase{"LpmV4", "g_lpm4", "10.0.0.0/8", {8, 0, 0, 0, 10, 0, 0, 0}},
        EncodeCase{"LpmV4HostRoute", "g_lpm4", "10.1.2.3", {32, 0, 0, 0, 10, 1, 2, 3}},
        EncodeCase{"LpmV4Default", "g_lpm4", "0.0.0.0/0", {0, 0, 0, 0, 0, 0, 0, 0}},
        EncodeCase{"LpmV4AsMembers",
                   "g_lpm4",
                   "{prefixlen: 24, addr: 192.168.1.0}",
                   {24, 0, 0, 0, 192, 168, 1, 0}},
        EncodeCase{"LpmV6", "g_lpm6", "2001:db8::/32",
                   concat({{32, 0, 0, 0}, {0x20, 0x01, 0x0d, 0xb8}, zeros(12)})},
        EncodeCase{"LpmV6FromIpv4", "g_lpm6", "10.0.0.0/8",
                   concat({{104, 0, 0, 0}, zeros(10), {0xff, 0xff, 10, 0, 0, 0}})},
        EncodeCase{"LpmBe32", "g_lpm_be32", "10.0.0.0/8", {8, 0, 0, 0, 10, 0, 0, 0}},
        EncodeCase{"NestedStruct", "g_rule",
                   "{id: 7, name: web, ports: {lo: 80, hi: 443}, addr: 10.0.0.1, action: 2, "
                   "rate: 1000, extra: [{lo: 1}, {hi: 2}]}",
                   kRule},
        EncodeCase{"StructAsFlowText", "g_rule", "'{id: 7}'", concat({{7}, zeros(47)})},
        EncodeCase{"MissingMembersAreZero", "g_rule", "{}", zeros(48)},
        EncodeCase{"ArrayOfStructs",
                   "g_ranges",
                   "[{lo: 1, hi: 2}, {lo: 3, hi: 4}]",
                   {1, 0, 2, 0, 3, 0, 4, 0, 0, 0, 0, 0}},
        EncodeCase{"UnionV4", "g_union", "{v4: 10.0.0.1}", concat({{10, 0, 0, 1}, zeros(12)})},
        EncodeCase{"UnionV6", "g_union", "{v6: '2001:db8::1'}", kV6},
        EncodeCase{
            "Bitfields", "g_bits", "{flag: true, mode: 5, delta: -2, port: 80}", {0xeb, 0, 80, 0}},
        EncodeCase{"EnumBitfield", "g_enum_bits", "{color: BT_GREEN, low: 3}", {0x1a, 0, 0, 0}},
        EncodeCase{"AnonymousUnionMember",
                   "g_anon",
                   "{kind: 1, ifindex: 3}",
                   {1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0}},
        EncodeCase{"AnonymousUnionOtherMember",
                   "g_anon",
                   "{kind: 2, mac: '02:00:00:00:00:01'}",
                   {2, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0, 0}},
        EncodeCase{"In6Addr", "g_in6", "2001:db8::1", kV6},
        EncodeCase{"InAddr", "g_in4", "10.0.0.1", {10, 0, 0, 1}},
        EncodeCase{"FiveTuple",
                   "g_flow",
                   "{saddr: 10.0.0.1, daddr: 10.0.0.2, sport: 1234, dport: 80, proto: 6}",
                   {10, 0, 0, 1, 10, 0, 0, 2, 0x04, 0xd2, 0, 80, 6, 0, 0, 0}}),
    [](const ::testing::TestParamInfo<EncodeCase>& info) { return info.param.name; });

// ---- every error, with its exact message ----

struct ErrorCase {
  const char* name;
  const char* var;
  const char* yaml;
  const char* message;
};

void PrintTo(const ErrorCase& c, std::ostream* os) {
  *os << c.var << " <- " << c.yaml;
}

class EncodeError : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(EncodeError, SaysWhereAndWhat) {
  const auto& c = GetParam();
  auto bytes = encode(c.var, c.yaml, "mapArgs[0].entries[2].key");
  ASSERT_FALSE(bytes) << c.yaml << " was accepted";
  EXPECT_EQ(bytes.error().message(), c.message);
  EXPECT_EQ(bytes.error().code(), 0);
}

INSTANTIATE_TEST_SUITE_P(
    BtfValue, EncodeError,
    ::testing::Values(
        ErrorCase{"NotANumber", "g_u16", "80x",
                  R"(mapArgs[0].entries[2].key: "80x" is not a valid __u16)"},
        ErrorCase{"EmptyString", "g_u16", "''",
                  R"(mapArgs[0].entries[2].key: "" is not a valid __u16)"},
        ErrorCase{"HexWithoutDigits", "g_u16", "0x",
                  R"(mapArgs[0].entries[2].key: "0x" is not a valid __u16)"},
        ErrorCase{"U16TooBig", "g_u16", "70000",
                  "mapArgs[0].entries[2].key: 70000 does not fit __u16 (0..65535)"},
        ErrorCase{"U8TooBig", "g_u8", "'300'",
                  "mapArgs[0].entries[2].key: 300 does not fit __u8 (0..255)"},
        ErrorCase{"U8Negative", "g_u8", "-1",
                  "mapArgs[0].entries[2].key: -1 does not fit __u8 (0..255)"},
        ErrorCase{"S8TooBig", "g_s8", "128",
                  "mapArgs[0].entries[2].key: 128 does not fit __s8 (-128..127)"},
        ErrorCase{"S64TooSmall", "g_s64", "-9223372036854775809",
                  "mapArgs[0].entries[2].key: -9223372036854775809 does not fit __s64 "
                  "(-9223372036854775808..9223372036854775807)"},
        ErrorCase{"U64TooBig", "g_u64", "18446744073709551616",
                  "mapArgs[0].entries[2].key: 18446744073709551616 does not fit __u64 "
                  "(0..18446744073709551615)"},
        ErrorCase{"HugeNumber", "g_u32", "0x1000000000000000000000000000000000",
                  "mapArgs[0].entries[2].key: 0x1000000000000000000000000000000000 does not fit "
                  "__u32 (0..4294967295)"},
        ErrorCase{
            "BadIpv4ForU32", "g_u32", "10.0.0.256",
            R"(mapArgs[0].entries[2].key: "10.0.0.256" is not a valid __u32 or IPv4 address)"},
        ErrorCase{"Ipv4ForU16", "g_u16", "10.0.0.1",
                  R"(mapArgs[0].entries[2].key: "10.0.0.1" is not a valid __u16)"},
        ErrorCase{"MapForInt", "g_u16", "{a: 1}",
                  "mapArgs[0].entries[2].key: expected __u16, got a map"},
        ErrorCase{"SequenceForInt", "g_u32", "[1]",
                  "mapArgs[0].entries[2].key: expected __u32, got a sequence"},
        ErrorCase{"Null", "g_u16", "~", "mapArgs[0].entries[2].key: expected __u16, got null"},
        ErrorCase{"BoolTwo", "g_bool", "2",
                  "mapArgs[0].entries[2].key: 2 does not fit bool (0..1)"},
        ErrorCase{"BoolWordForU16", "g_u16", "true",
                  R"(mapArgs[0].entries[2].key: "true" is not a valid __u16)"},
        ErrorCase{"UnknownEnumerator", "g_color", "PURPLE",
                  R"(mapArgs[0].entries[2].key: "PURPLE" is not a valid enum bt_color )"
                  "(enumerators: BT_RED, BT_GREEN, BT_BLUE, or a number)"},
        ErrorCase{"EnumTooBig", "g_color", "4294967296",
                  "mapArgs[0].entries[2].key: 4294967296 does not fit enum bt_color "
                  "(0..4294967295)"},
        ErrorCase{"StringTooLong", "g_name", "abcdefghijklmnop",
                  R"(mapArgs[0].entries[2].key: "abcdefghijklmnop" is 16 bytes; char[16] holds )"
                  "at most 15 and a NUL"},
        ErrorCase{"TooManyElements", "g_ports", "[1, 2, 3, 4, 5]",
                  "mapArgs[0].entries[2].key: 5 elements do not fit __u16[4]"},
        ErrorCase{"BadElement", "g_ports", "[1, x]",
                  R"(mapArgs[0].entries[2].key[1]: "x" is not a valid __u16)"},
        ErrorCase{"ScalarForArray", "g_ports", "80",
                  R"(mapArgs[0].entries[2].key: expected a sequence for __u16[4], got "80")"},
        ErrorCase{"BadFlowText", "g_ports", "'[1, 2'",
                  R"(mapArgs[0].entries[2].key: "[1, 2" is not valid YAML)"},
        ErrorCase{"BadIpv4ForBytes", "g_addr4", "10.0.0",
                  R"(mapArgs[0].entries[2].key: "10.0.0" is not a valid IPv4 address for __u8[4])"},
        ErrorCase{"BadIpv6", "g_addr6", "2001:db8::g",
                  R"(mapArgs[0].entries[2].key: "2001:db8::g" is not a valid IPv6 or IPv4 )"
                  "address for __u8[16]"},
        ErrorCase{"BadMac", "g_mac", "aa:bb:cc:dd:ee",
                  R"(mapArgs[0].entries[2].key: "aa:bb:cc:dd:ee" is not a valid MAC address )"
                  "for __u8[6]"},
        ErrorCase{"ScalarForOtherBytes", "g_bytes", "abc",
                  R"(mapArgs[0].entries[2].key: expected a sequence for __u8[3], got "abc")"},
        ErrorCase{"UnknownMembers", "g_rule", "{id: 1, nmae: x, foo: 2}",
                  "mapArgs[0].entries[2].key: unknown members nmae, foo in struct bt_rule; "
                  "members: id, name, ports, addr, action, rate, extra"},
        ErrorCase{"UnknownMember", "g_ranges", "[{lo: 1, mid: 2}]",
                  "mapArgs[0].entries[2].key[0]: unknown member mid in struct bt_range; members: "
                  "lo, hi"},
        ErrorCase{"NestedMemberTooBig", "g_rule", "{ports: {lo: 70000}}",
                  "mapArgs[0].entries[2].key.ports.lo: 70000 does not fit __u16 (0..65535)"},
        ErrorCase{"NestedArrayTooLong", "g_rule", "{extra: [{lo: 1}, {lo: 2}, {lo: 3}]}",
                  "mapArgs[0].entries[2].key.extra: 3 elements do not fit struct bt_range[2]"},
        ErrorCase{"NestedArrayElement", "g_ranges", "[{lo: 1}, {hi: -1}]",
                  "mapArgs[0].entries[2].key[1].hi: -1 does not fit __u16 (0..65535)"},
        ErrorCase{"ScalarForStruct", "g_rule", "5",
                  R"(mapArgs[0].entries[2].key: expected a map of members for struct bt_rule, )"
                  R"(got "5")"},
        ErrorCase{"SequenceForStruct", "g_rule", "[1]",
                  "mapArgs[0].entries[2].key: expected a map of members for struct bt_rule, got "
                  "a sequence"},
        ErrorCase{"UnionTwoMembers", "g_union", "{v4: 10.0.0.1, v6: '::1'}",
                  "mapArgs[0].entries[2].key: union bt_addr takes one member; got v4, v6"},
        ErrorCase{"AnonymousUnionTwoMembers", "g_anon", "{ifindex: 1, mac: '02:00:00:00:00:01'}",
                  "mapArgs[0].entries[2].key: members ifindex and mac share storage (a union); "
                  "give one of them"},
        ErrorCase{"MemberTwice", "g_ranges", "[{lo: 1, lo: 2}]",
                  "mapArgs[0].entries[2].key[0]: member lo is given twice"},
        ErrorCase{"EnumeratorTooBigForItsBitfield", "g_enum_bits", "{color: BT_BLUE}",
                  "mapArgs[0].entries[2].key.color: BT_BLUE (40) does not fit 3-bit enum "
                  "bt_color bitfield (0..7)"},
        ErrorCase{"BitfieldTooBig", "g_bits", "{mode: 8}",
                  "mapArgs[0].entries[2].key.mode: 8 does not fit 3-bit __u8 bitfield (0..7)"},
        ErrorCase{"SignedBitfieldTooSmall", "g_bits", "{delta: -9}",
                  "mapArgs[0].entries[2].key.delta: -9 does not fit 4-bit __s8 bitfield (-8..7)"},
        ErrorCase{"PrefixTooLong", "g_lpm4", "10.0.0.0/33",
                  R"(mapArgs[0].entries[2].key: "10.0.0.0/33": prefix length 33 does not fit )"
                  "__u8[4] (0..32)"},
        ErrorCase{"V6PrefixTooLong", "g_lpm6", "2001:db8::/129",
                  R"(mapArgs[0].entries[2].key: "2001:db8::/129": prefix length 129 does not )"
                  "fit __u8[16] (0..128)"},
        ErrorCase{"V6PrefixForV4Key", "g_lpm4", "2001:db8::/32",
                  R"(mapArgs[0].entries[2].key: "2001:db8::/32" is an IPv6 prefix; struct )"
                  "bt_lpm_v4_key holds an IPv4 address (__u8[4])"},
        ErrorCase{"HostBits", "g_lpm4", "10.0.0.1/8",
                  R"(mapArgs[0].entries[2].key: "10.0.0.1/8" has host bits set beyond /8 (did )"
                  "you mean 10.0.0.0/8?)"},
        ErrorCase{"HostBitsMappedV4", "g_lpm6", "10.1.0.0/8",
                  R"(mapArgs[0].entries[2].key: "10.1.0.0/8" has host bits set beyond /8 (did )"
                  "you mean 10.0.0.0/8?)"},
        ErrorCase{"BadPrefixLength", "g_lpm4", "10.0.0.0/x",
                  R"(mapArgs[0].entries[2].key: "10.0.0.0/x" is not a valid prefix: the length )"
                  "after / must be a decimal number"},
        ErrorCase{"NotAPrefix", "g_lpm4", "example",
                  R"(mapArgs[0].entries[2].key: "example" is not a valid IPv4 prefix for struct )"
                  "bt_lpm_v4_key"},
        ErrorCase{"Float", "g_float", "1.5",
                  "mapArgs[0].entries[2].key: floating-point values (float) are not supported"},
        ErrorCase{"Pointer", "g_ptr", "0",
                  "mapArgs[0].entries[2].key: a pointer (__u64*) cannot be set from text"}),
    [](const ::testing::TestParamInfo<ErrorCase>& info) { return info.param.name; });

// The encoder reads the typed ArgValue a spec was parsed into, built here without any YAML:
// a struct by member name, an array member as a sequence, a flow-text scalar reparsed.
TEST(BtfValue, EncodesATypedArgValueBuiltWithoutYaml) {
  auto members = [](const std::vector<std::pair<std::string, ArgValue>>& items) {
    ArgValue v;
    v.kind = ArgValue::Kind::Map;
    for (const auto& [name, item] : items) {
      v.names.push_back(name);
      v.items.push_back(item);
    }
    return v;
  };
  ArgValue extra;
  extra.kind = ArgValue::Kind::Sequence;
  extra.items = {members({{"lo", ArgValue::text("1")}}), ArgValue::text("{hi: 2}")};
  ArgValue rule = members({{"id", ArgValue::text("7")},
                           {"ports", members({{"lo", ArgValue::text("80")}})},
                           {"extra", extra}});
  auto bytes = encodeValue(testBtf(), varType("g_rule"), rule, "v");
  ASSERT_TRUE(bytes) << bytes.error().message();
  auto expected = encode("g_rule", "{id: 7, ports: {lo: 80}, extra: [{lo: 1}, {hi: 2}]}");
  ASSERT_TRUE(expected) << expected.error().message();
  EXPECT_EQ(*bytes, *expected);

  // A name given twice stays twice (as a parsed document has it) and is refused.
  ArgValue ranges;
  ranges.kind = ArgValue::Kind::Sequence;
  ranges.items = {members({{"lo", ArgValue::text("1")}, {"lo", ArgValue::text("2")}})};
  auto refused = encodeValue(testBtf(), varType("g_ranges"), ranges, "v");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message(), "v[0]: member lo is given twice");
  EXPECT_EQ(encodeValue(testBtf(), varType("g_u16"), ArgValue{}, "v").error().message(),
            "v: expected __u16, got null");
}

TEST(BtfValue, ErrorWithoutFieldHasNoPrefix) {
  auto bytes = encode("g_u16", "80x", "");
  ASSERT_FALSE(bytes);
  EXPECT_EQ(bytes.error().message(), R"("80x" is not a valid __u16)");
}

// ---- decode: the forms status shows ----

struct DecodeCase {
  const char* name;
  const char* var;
  Bytes bytes;
  const char* text;
};

void PrintTo(const DecodeCase& c, std::ostream* os) {
  *os << c.var << " -> " << c.text;
}

class Decode : public ::testing::TestWithParam<DecodeCase> {};

TEST_P(Decode, RendersTheText) {
  const auto& c = GetParam();
  auto text = decodeValue(testBtf(), varType(c.var), c.bytes.data(), c.bytes.size());
  ASSERT_TRUE(text) << text.error().message();
  EXPECT_EQ(*text, c.text);
  auto again = encode(c.var, *text);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(*again, c.bytes);
}

INSTANTIATE_TEST_SUITE_P(
    BtfValue, Decode,
    ::testing::Values(
        DecodeCase{"Unsigned", "g_u16", {0x90, 0x1f}, "8080"},
        DecodeCase{"Signed", "g_s32", {0xfe, 0xff, 0xff, 0xff}, "-2"},
        DecodeCase{"U32IsANumber", "g_u32", {10, 0, 0, 1}, "16777226"},
        DecodeCase{"Be32IsAnAddress", "g_be32", {10, 0, 0, 1}, "10.0.0.1"},
        DecodeCase{"Be16", "g_be16", {0x1f, 0x90}, "8080"},
        DecodeCase{"Bool", "g_bool", {1}, "true"}, DecodeCase{"BoolFalse", "g_bool", {0}, "false"},
        DecodeCase{"Enumerator", "g_color", {40, 0, 0, 0}, "BT_BLUE"},
        DecodeCase{"EnumNumber", "g_color", {3, 0, 0, 0}, "3"},
        DecodeCase{"SignedEnumerator", "g_signed_enum", {0xfb, 0xff, 0xff, 0xff}, "BT_MINUS"},
        DecodeCase{"Ipv4Bytes", "g_addr4", {192, 168, 1, 2}, "192.168.1.2"},
        DecodeCase{"Ipv6Bytes", "g_addr6", kV6, "2001:db8::1"},
        DecodeCase{"Ipv4MappedBytes", "g_addr6", kMapped, "::ffff:10.0.0.1"},
        DecodeCase{"Mac", "g_mac", {0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f}, "aa:bb:cc:dd:ee:0f"},
        DecodeCase{"OtherBytes", "g_bytes", {1, 2, 0}, "[1, 2, 0]"},
        DecodeCase{"String", "g_name", concat({{'e', 't', 'h', '0'}, zeros(12)}), R"("eth0")"},
        DecodeCase{"UnterminatedCharsAreBytes", "g_name", Bytes(16, 'a'),
                   "[97, 97, 97, 97, 97, 97, 97, 97, 97, 97, 97, 97, 97, 97, 97, 97]"},
        DecodeCase{"LpmV4", "g_lpm4", {8, 0, 0, 0, 10, 0, 0, 0}, "10.0.0.0/8"},
        DecodeCase{"LpmHostBitsAreMembers",
                   "g_lpm4",
                   {8, 0, 0, 0, 10, 0, 0, 1},
                   "{prefixlen: 8, addr: 10.0.0.1}"},
        DecodeCase{"LpmV6", "g_lpm6", concat({{32, 0, 0, 0}, {0x20, 0x01, 0x0d, 0xb8}, zeros(12)}),
                   "2001:db8::/32"},
        DecodeCase{"Struct", "g_rule", kRule,
                   R"({id: 7, name: "web", ports: {lo: 80, hi: 443}, addr: 10.0.0.1, action: 2, )"
                   "rate: 1000, extra: [{lo: 1, hi: 0}, {lo: 0, hi: 2}]}"},
        DecodeCase{"UnionShowsTheWidestMember", "g_union", kV6, "{v6: 2001:db8::1}"},
        DecodeCase{
            "Bitfields", "g_bits", {0xeb, 0, 80, 0}, "{flag: 1, mode: 5, delta: -2, port: 80}"},
        DecodeCase{"AnonymousUnionShowsItsLargestMember",
                   "g_anon",
                   {1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0},
                   "{kind: 1, mac: 03:00:00:00:00:00}"}),
    [](const ::testing::TestParamInfo<DecodeCase>& info) { return info.param.name; });

// Bytes that are no valid value are still shown, as the number they hold.
TEST(BtfValue, DecodeShowsAnInvalidBoolAsItsNumber) {
  Bytes bytes = {2};
  auto text = decodeValue(testBtf(), varType("g_bool"), bytes.data(), bytes.size());
  ASSERT_TRUE(text) << text.error().message();
  EXPECT_EQ(*text, "2");
}

TEST(BtfValue, DecodeRefusesTheWrongSize) {
  Bytes bytes = {1, 2, 3};
  auto text = decodeValue(testBtf(), varType("g_u16"), bytes.data(), bytes.size());
  ASSERT_FALSE(text);
  EXPECT_EQ(text.error().message(), "3 bytes given for __u16, which is 2 bytes");
}

TEST(BtfValue, DecodeRefusesWhatItCannotShow) {
  Bytes bytes(4, 0);
  auto text = decodeValue(testBtf(), varType("g_float"), bytes.data(), bytes.size());
  ASSERT_FALSE(text);
  EXPECT_EQ(text.error().message(), "float values cannot be shown");
}

// Property: for types where every byte pattern is a value, decode then encode is identity.
TEST(BtfValue, RandomBytesRoundTrip) {
  std::mt19937 random(20240601);
  for (const char* var :
       {"g_u8",    "g_u16",      "g_u32",         "g_u64",   "g_s8",    "g_s16",         "g_s32",
        "g_s64",   "g_color",    "g_signed_enum", "g_be16",  "g_be32",  "g_port",        "g_addr4",
        "g_addr6", "g_mac",      "g_bytes",       "g_name",  "g_ports", "g_addr6_words", "g_lpm4",
        "g_lpm6",  "g_lpm_be32", "g_ranges",      "g_union", "g_in6",   "g_in4"}) {
    __u32 type = varType(var);
    long long size = btf__resolve_size(testBtf(), type);
    ASSERT_GT(size, 0) << var;
    for (int round = 0; round < 200; ++round) {
      Bytes bytes(size);
      for (auto& byte : bytes)
        byte = static_cast<uint8_t>(random());
      // Mostly-zero values too: short strings, small prefixes, small numbers.
      if (round % 2 == 1) {
        for (size_t i = 1 + random() % size; i < bytes.size(); ++i)
          bytes[i] = 0;
      }
      auto text = decodeValue(testBtf(), type, bytes.data(), bytes.size());
      ASSERT_TRUE(text) << var << ": " << text.error().message();
      auto again = encode(var, *text);
      ASSERT_TRUE(again) << var << " " << *text << ": " << again.error().message();
      ASSERT_EQ(*again, bytes) << var << " " << *text;
    }
  }
}

// ---- setGlobalData on an opened object ----

struct ObjectDeleter {
  void operator()(struct bpf_object* obj) const { bpf_object__close(obj); }
};
using Object = std::unique_ptr<struct bpf_object, ObjectDeleter>;

Object openTestObject() {
  Object obj(bpf_object__open_file(BTF_TYPES_OBJECT, nullptr));
  EXPECT_TRUE(obj) << BTF_TYPES_OBJECT << ": " << std::strerror(errno);
  return obj;
}

// The initial value of `var`, from the section libbpf will load.
Bytes initialValue(struct bpf_object* obj, const std::string& var) {
  const struct btf* btf = bpf_object__btf(obj);
  struct bpf_map* map = nullptr;
  bpf_object__for_each_map (map, obj) {
    const btf_type* sec = btf__type_by_id(btf, bpf_map__btf_value_type_id(map));
    if (!bpf_map__is_internal(map) || !sec || !btf_is_datasec(sec))
      continue;
    const btf_var_secinfo* info = btf_var_secinfos(sec);
    for (int i = 0; i < btf_vlen(sec); ++i) {
      if (btf__name_by_offset(btf, btf__type_by_id(btf, info[i].type)->name_off) != var)
        continue;
      size_t size = 0;
      const auto* data = static_cast<const uint8_t*>(bpf_map__initial_value(map, &size));
      return Bytes(data + info[i].offset, data + info[i].offset + info[i].size);
    }
  }
  ADD_FAILURE() << "no variable " << var;
  return {};
}

TEST(GlobalData, SetsRodataDataAndBssBeforeLoad) {
  auto obj = openTestObject();
  ASSERT_TRUE(obj);
  auto done = setGlobalData(obj.get(),
                            {{"rate_pps", "1000"},
                             {"burst", "0x20"},
                             {"g_be32", "10.0.0.1"},
                             {"g_rule", "{id: 3, name: web}"},
                             {"g_ports", "[80, 443]"},
                             {"g_name", "[1, 2]"},
                             {"g_data", "9"},
                             {"g_bss", "11"}},
                            "globalData");
  ASSERT_TRUE(done) << done.error().message();
  EXPECT_EQ(initialValue(obj.get(), "rate_pps"), Bytes({0xe8, 0x03, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(initialValue(obj.get(), "burst"), Bytes({0x20, 0, 0, 0}));
  EXPECT_EQ(initialValue(obj.get(), "g_be32"), Bytes({10, 0, 0, 1}));
  EXPECT_EQ(initialValue(obj.get(), "g_rule"), concat({{3, 0, 0, 0}, {'w', 'e', 'b'}, zeros(41)}));
  EXPECT_EQ(initialValue(obj.get(), "g_ports"), Bytes({80, 0, 0xbb, 1, 0, 0, 0, 0}));
  // A char array takes a string literally, even one that looks like a sequence.
  EXPECT_EQ(initialValue(obj.get(), "g_name"), concat({{'[', '1', ',', ' ', '2', ']'}, zeros(10)}));
  EXPECT_EQ(initialValue(obj.get(), "g_data"), Bytes({9, 0, 0, 0}));
  EXPECT_EQ(initialValue(obj.get(), "g_bss"), Bytes({11, 0, 0, 0}));
  // Untouched neighbours keep their values.
  EXPECT_EQ(initialValue(obj.get(), "g_u64"), zeros(8));
}

TEST(GlobalData, UnknownNameListsTheVariables) {
  auto obj = openTestObject();
  ASSERT_TRUE(obj);
  auto done = setGlobalData(obj.get(), {{"rate_limit", "5"}}, "globalData");
  ASSERT_FALSE(done);
  const std::string& message = done.error().message();
  EXPECT_EQ(message.rfind("globalData.rate_limit: no such variable in .rodata, .data, .bss; "
                          "variables: g_u8, g_u16, ",
                          0),
            0u)
      << message;
  EXPECT_NE(message.find(", rate_pps, burst, g_data, g_bss"), std::string::npos) << message;
}

TEST(GlobalData, ABadValueChangesNothing) {
  auto obj = openTestObject();
  ASSERT_TRUE(obj);
  // std::map orders the names: burst is encoded (and would be written) before rate_pps fails.
  auto done = setGlobalData(obj.get(), {{"burst", "7"}, {"rate_pps", "-1"}}, "globalData");
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().message(),
            "globalData.rate_pps: -1 does not fit __u64 (0..18446744073709551615)");
  EXPECT_EQ(initialValue(obj.get(), "burst"), zeros(4));
}

TEST(GlobalData, NothingToSetIsFine) {
  auto obj = openTestObject();
  ASSERT_TRUE(obj);
  EXPECT_TRUE(setGlobalData(obj.get(), {}, "globalData"));
}

} // namespace
} // namespace bpfchain::btf
