/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The root of a chain: the only program attached to an (interface, hook). It runs the chain's
 * first program through its 1-slot next map (the chain's "head"), so that changing the first
 * program is one slot update and never a re-attach. An empty head passes the packet on.
 * Entry points and next maps: root_xdp / root_xdp_next, root_tc / root_tc_next. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

#include "bpfchain/chain.h"

BPFCHAIN_NEXT_MAP(root_xdp_next);
BPFCHAIN_NEXT_MAP(root_tc_next);

SEC("xdp")
int root_xdp(struct xdp_md* ctx) {
  bpfchain_next(ctx, &root_xdp_next);
  return XDP_PASS;
}

SEC("tc")
int root_tc(struct __sk_buff* skb) {
  bpfchain_next(skb, &root_tc_next);
  return BPFCHAIN_TC_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
