/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Benchmark baseline: the work of a chain of `stages` counter programs, done by one program
 * (each stage counts packets and bytes in its own per-CPU slot, as each counter instance does
 * in its own map). The difference to a real chain is the cost of chaining itself. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

#include "bpfchain/counter.h"

#define MAX_STAGES 10

const volatile __u32 stages = 0;

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, MAX_STAGES);
  __type(key, __u32);
  __type(value, struct counter_value);
} monolithic_stats SEC(".maps");

SEC("xdp")
int monolithic_xdp(struct xdp_md* ctx) {
  __u64 len = ctx->data_end - ctx->data;
  for (__u32 i = 0; i < MAX_STAGES; i++) {
    if (i >= stages)
      break;
    __u32 key = i;
    struct counter_value* value = bpf_map_lookup_elem(&monolithic_stats, &key);
    if (!value)
      return XDP_ABORTED;
    value->packets++;
    value->bytes += len;
  }
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
