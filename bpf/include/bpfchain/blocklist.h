/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maps of the `blocklist` kernel function, shared by the program and user space. Include after
 * vmlinux.h (BPF) or <linux/types.h> (user space).
 *
 * blocklist_v4: BPF_MAP_TYPE_LPM_TRIE (BPF_F_NO_PREALLOC), BLOCKLIST_MAX_PREFIXES entries,
 *   key struct blocklist_v4_key, value __u8.
 * blocklist_v6: the same for IPv6, key struct blocklist_v6_key.
 *   A packet is looked up by its SOURCE address; the longest matching prefix decides: value 1
 *   (any non-zero) drops, 0 passes, so a longer prefix with 0 carves an exception out of a
 *   blocked shorter one. No match passes. An IPv6 packet is looked up in blocklist_v6 only,
 *   also when its source is IPv4-mapped (::ffff:a.b.c.d).
 * blocklist_stats: the chain.h per-program statistics (BPFCHAIN_STATS_MAP).
 * blocklist_xdp_next, blocklist_tc_next: the chain's next maps of the two entry points.
 *
 * Any IPv4 or IPv6 packet whose IP header is complete is filtered, fragments included (each
 * carries the source address); anything bpfchain/packet.h cannot parse as IP passes on.
 * Entry points: blocklist_xdp (xdp), blocklist_tc (tc-ingress, tc-egress).
 */
#pragma once

#define BLOCKLIST_MAX_PREFIXES 65536

/* prefixlen: significant leading bits of addr, HOST byte order (0..32); addr: network order. */
struct blocklist_v4_key {
  __u32 prefixlen;
  __u8 addr[4];
};

/* prefixlen: HOST byte order (0..128); addr: network order. */
struct blocklist_v6_key {
  __u32 prefixlen;
  __u8 addr[16];
};
