/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* btf_types: every value shape that common/btf encodes, as globals (for globalData and the
 * unit tests, which look a type up by its variable's name) and as maps (for mapArgs). It loads:
 * the kernel tests create its maps and run its XDP program, which copies two globals into
 * `seen` so a test can tell that a value set before load reached the program. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

enum bt_color { BT_RED = 1, BT_GREEN = 2, BT_BLUE = 40 };
enum bt_signed { BT_MINUS = -5, BT_PLUS = 5 };

/* LPM-trie keys: prefixlen first, then the address. */
struct bt_lpm_v4_key {
  __u32 prefixlen;
  __u8 addr[4];
};
struct bt_lpm_v6_key {
  __u32 prefixlen;
  __u8 addr[16];
};
struct bt_lpm_be32_key {
  __u32 prefixlen;
  __be32 addr;
};

struct bt_range {
  __u16 lo;
  __u16 hi;
};

struct bt_rule {
  __u32 id;
  char name[16];
  struct bt_range ports;
  __be32 addr;
  __u8 action;
  __u64 rate;
  struct bt_range extra[2];
};

union bt_addr {
  __u8 v6[16];
  __be32 v4;
};

struct bt_bits {
  __u8 flag : 1;
  __u8 mode : 3;
  __s8 delta : 4;
  __u16 port;
};

struct bt_enum_bits {
  enum bt_color color : 3;
  __u32 low : 2;
};

struct bt_anon {
  __u32 kind;
  union {
    __u32 ifindex;
    __u8 mac[6];
  };
};

struct bt_flow {
  __be32 saddr;
  __be32 daddr;
  __be16 sport;
  __be16 dport;
  __u8 proto;
};

struct bt_counter {
  __u64 packets;
  __u64 bytes;
};

typedef __u16 bt_port_t;

/* Globals: one of each scalar and composite shape. */
const volatile __u8 g_u8 = 0;
const volatile __u16 g_u16 = 0;
const volatile __u32 g_u32 = 0;
const volatile __u64 g_u64 = 0;
const volatile __s8 g_s8 = 0;
const volatile __s16 g_s16 = 0;
const volatile __s32 g_s32 = 0;
const volatile __s64 g_s64 = 0;
const volatile bool g_bool = 0;
const volatile enum bt_color g_color = BT_RED;
const volatile enum bt_signed g_signed_enum = BT_PLUS;
const volatile __be16 g_be16 = 0;
const volatile __be32 g_be32 = 0;
const volatile bt_port_t g_port = 0;
const volatile __u8 g_addr4[4] = {};
const volatile __u8 g_addr6[16] = {};
const volatile __u8 g_mac[6] = {};
const volatile __u8 g_bytes[3] = {};
const volatile char g_name[16] = {};
const volatile __u16 g_ports[4] = {};
const volatile __u32 g_addr6_words[4] = {};
const volatile struct bt_lpm_v4_key g_lpm4 = {};
const volatile struct bt_lpm_v6_key g_lpm6 = {};
const volatile struct bt_lpm_be32_key g_lpm_be32 = {};
const volatile struct bt_rule g_rule = {};
const volatile struct bt_range g_ranges[3] = {};
const volatile union bt_addr g_union = {};
const volatile struct bt_bits g_bits = {};
const volatile struct bt_enum_bits g_enum_bits = {};
const volatile struct bt_anon g_anon = {};
const volatile struct in6_addr g_in6 = {};
const volatile struct in_addr g_in4 = {};
const volatile struct bt_flow g_flow = {};
const volatile float g_float = 0;
const volatile __u64* const volatile g_ptr = 0;

/* The two the XDP program uses, as a rate limiter's would be. */
const volatile __u64 rate_pps = 0;
const volatile __u32 burst = 0;

/* Writable sections: settable before load too. */
volatile __u32 g_data = 7;
__u32 g_bss;

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 8);
  __type(key, __u16);
  __type(value, __u32);
} ports SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, struct bt_rule);
} rules SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __u32);
} pc_array SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, 8);
  __type(key, __u32);
  __type(value, struct bt_counter);
} pc_hash SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
  __uint(max_entries, 8);
  __type(key, __u32);
  __type(value, __u16);
} lru_pc_hash SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, 16);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct bt_lpm_v4_key);
  __type(value, __u32);
} lpm4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, 16);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct bt_lpm_v6_key);
  __type(value, enum bt_color);
} lpm6 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4);
  __type(key, struct bt_flow);
  __type(value, struct bt_counter);
} flows SEC(".maps");

/* Sizes only, no BTF types (as L3AF declares its maps): mapArgs writes integers sized by the
 * map, and hex bytes for sizes that are no integer's. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4);
  __uint(key_size, 4);
  __uint(value_size, 4);
} untyped SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4);
  __uint(key_size, 2);
  __uint(value_size, 8);
} untyped_u16_u64 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4);
  __uint(key_size, 6);
  __uint(value_size, 12);
} untyped_wide SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 2);
  __uint(key_size, 4);
  __uint(value_size, 1);
} untyped_pc_array SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u32);
} next SEC(".maps");

/* seen[0] = rate_pps, seen[1] = burst, seen[2] = g_data, seen[3] = g_bss, as the program saw them.
 */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __u64);
} seen SEC(".maps");

static __always_inline void record(__u32 slot, __u64 value) {
  __u64* p = bpf_map_lookup_elem(&seen, &slot);
  if (p)
    *p = value;
}

SEC("xdp")
int btf_types_xdp(struct xdp_md* ctx) {
  record(0, rate_pps);
  record(1, burst);
  record(2, g_data);
  record(3, g_bss);
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
