/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* counter: counts every packet and byte that reaches it, per CPU, then runs the rest of the
 * chain. Entry points and their next maps: counter_xdp / counter_xdp_next (xdp), counter_tc /
 * counter_tc_next (tc-ingress, tc-egress). */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

#include "bpfchain/chain.h"
#include "bpfchain/counter.h"

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct counter_value);
} counter_stats SEC(".maps");

/* A PROG_ARRAY takes the program type of its first user, so each entry has its own. */
BPFCHAIN_NEXT_MAP(counter_xdp_next);
BPFCHAIN_NEXT_MAP(counter_tc_next);

static __always_inline void count_packet(__u64 len) {
  __u32 key = 0;
  struct counter_value* value = bpf_map_lookup_elem(&counter_stats, &key);
  if (!value)
    return;
  /* Per-CPU slot, and the program runs with preemption off: plain adds are exact. */
  value->packets++;
  value->bytes += len;
}

SEC("xdp")
int counter_xdp(struct xdp_md* ctx) {
  count_packet(ctx->data_end - ctx->data);
  bpfchain_next(ctx, &counter_xdp_next);
  return XDP_PASS;
}

SEC("tc")
int counter_tc(struct __sk_buff* skb) {
  count_packet(skb->len);
  bpfchain_next(skb, &counter_tc_next);
  return BPFCHAIN_TC_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
