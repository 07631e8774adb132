/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Test program: a chain member whose `version` is global data, so that changing it is an
 * upgrade (a reload). Counts packets per version in versioned_seen[version % 16], and all of
 * them in a .bss global; `versioned_mark` is a .data global globalData may set. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

#include "bpfchain/chain.h"

const volatile __u32 version = 0;
__u64 versioned_packets = 0; /* .bss */
__u32 versioned_mark = 7;    /* .data */

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 16);
  __type(key, __u32);
  __type(value, __u64);
} versioned_seen SEC(".maps");

BPFCHAIN_NEXT_MAP(versioned_xdp_next);

SEC("xdp")
int versioned_xdp(struct xdp_md* ctx) {
  __u32 key = version % 16;
  __u64* seen = bpf_map_lookup_elem(&versioned_seen, &key);
  if (seen)
    (*seen)++;
  __sync_fetch_and_add(&versioned_packets, versioned_mark ? 1 : 0);
  bpfchain_next(ctx, &versioned_xdp_next);
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
