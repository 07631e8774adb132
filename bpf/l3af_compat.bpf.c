/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* l3af_compat: a kernel function written exactly to L3AF's chaining ABI, as L3AF's own are (a
 * section name libbpf cannot type, maps sized by key_size/value_size and pinned by name, its
 * own next map, L3AF's map_name, tail-called on key 0). It counts packets in xdp_l3af_count.
 * Tests use it to prove such programs chain unchanged; benchmarks, as L3AF's chain. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
  __uint(key_size, sizeof(int));
  __uint(value_size, sizeof(int));
  __uint(max_entries, 1);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} xdp_l3af_next_prog SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, int);
  __type(value, long);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} xdp_l3af_count SEC(".maps");

SEC("xdp_l3af_style")
int xdp_l3af(struct xdp_md* ctx) {
  int key = 0;
  long* count = bpf_map_lookup_elem(&xdp_l3af_count, &key);
  if (count)
    (*count)++;
  bpf_tail_call(ctx, &xdp_l3af_next_prog, 0);
  return XDP_PASS;
}

char _license[] SEC("license") = "Dual BSD/GPL";
