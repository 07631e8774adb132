// Values typed by BTF: the text a BpfChain gives for a global (globalData) or a map key or
// value (mapArgs), turned into the bytes the program reads, and back.
//
// The value is an ArgValue (btf/arg_value.h, parsed once from the spec's YAML): a scalar for
// integers, enums, addresses, prefixes and strings, a map (by member name) for a struct or
// union, a sequence for an array. A scalar that starts with `{`
// or `[` is parsed as flow YAML first, so a plain string field can carry a struct. Missing
// struct members, array elements and padding are zero. Every error is the caller's `field`,
// the path inside the value and what is wrong with it:
//   mapArgs[0].entries[2].value.rate: 70000 does not fit __u16 (0..65535)
//
// Forms, by the type after typedefs and qualifiers:
//   integer (1/2/4/8 bytes)  decimal or 0x hex, range-checked; 1-byte ints also true/false.
//                            __be16/__be32/__be64 typedefs store the number big-endian.
//   4-byte unsigned int      also a dotted IPv4 address, stored in network byte order
//   enum                     an enumerator name or a number
//   __u8[4] / in_addr        IPv4 address;  __u8[16], __u32[4], in6_addr: IPv6 address, or
//                            IPv4 as ::ffff:a.b.c.d;  __u8[6]: MAC address aa:bb:cc:dd:ee:ff
//   LPM-trie key             "10.0.0.0/8", "2001:db8::/32" (or an address: full length) for a
//                            struct {__u32 prefixlen; <address type> addr; ...}; host bits
//                            beyond the prefix are refused. The member map form is taken as
//                            it is (the kernel judges its prefixlen).
//   char[N]                  a string of at most N-1 bytes (NUL-padded)
//   other arrays             a sequence, element by element; a shorter one is zero-filled
//   struct / union           a map by member name (anonymous members' members included,
//                            bitfields included); one member of a union
//   pointers, floats, ...    refused
#pragma once

#include <linux/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "btf/arg_value.h"
#include "system/result.h"

struct btf; // libbpf's, declared here so that `struct btf` below never names a new type

namespace bpfchain::btf {

// The bytes of `value` as type `typeId` of `btf` (typedefs and const/volatile/restrict are
// looked through); the result is exactly btf__resolve_size(btf, typeId) bytes long.
Result<std::vector<uint8_t>> encodeValue(const struct btf* btf, __u32 typeId, const ArgValue& value,
                                         const std::string& field);

// `size` bytes of type `typeId` rendered as flow YAML in the forms encodeValue accepts, so
// that encodeValue(parseArgValue(decodeValue(...))) gives the same bytes back for any value
// encodeValue can produce (padding excepted: it is not shown). Bytes the usual form cannot say
// fall back to one that can: an unterminated char array to a sequence of numbers, an LPM key
// with host bits to its member map. A bool holding 2 is shown as 2, which encode refuses.
Result<std::string> decodeValue(const struct btf* btf, __u32 typeId, const void* data, size_t size);

// The C name users know a type by: "__u16", "struct bt_rule", "__u8[16]", "enum color".
std::string typeName(const struct btf* btf, __u32 typeId);

} // namespace bpfchain::btf
