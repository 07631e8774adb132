/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* l3af_ratelimit: a rate limiter declared the way L3AF's ratelimiting is: every map sized by
 * key_size/value_size (no BTF key/value types), the rate in an ARRAY map's slot 0 like L3AF's
 * rl_config_map, a section name libbpf cannot type, its own next map. It passes at most
 * rl_config_map[0] packets per second (0: no limit), all sources together, and counts what it
 * passes and drops. Tests configure it through mapArgs, as l3afd configures L3AF's. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

#define NSEC_PER_SEC 1000000000ULL

struct {
  __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
  __uint(key_size, sizeof(int));
  __uint(value_size, sizeof(int));
  __uint(max_entries, 1);
} xdp_rl_ingress_next_prog SEC(".maps");

/* [0]: packets per second, a little-endian u64. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(key_size, sizeof(int));
  __uint(value_size, sizeof(__u64));
  __uint(max_entries, 1);
} rl_config_map SEC(".maps");

/* [0]: the current one-second window: its start (ns) and the packets passed in it, 16 bytes. */
struct rl_window {
  __u64 start;
  __u64 passed;
};
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(key_size, sizeof(int));
  __uint(value_size, sizeof(struct rl_window));
  __uint(max_entries, 1);
} rl_window_map SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(key_size, sizeof(int));
  __uint(value_size, sizeof(long));
  __uint(max_entries, 1);
} rl_drop_count_map SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(key_size, sizeof(int));
  __uint(value_size, sizeof(long));
  __uint(max_entries, 1);
} rl_recv_count_map SEC(".maps");

static __always_inline void count(void* map) {
  int key = 0;
  long* value = bpf_map_lookup_elem(map, &key);
  if (value)
    (*value)++;
}

SEC("xdp_ratelimiting")
int xdp_l3af_ratelimit(struct xdp_md* ctx) {
  int key = 0;
  __u64* rate = bpf_map_lookup_elem(&rl_config_map, &key);
  struct rl_window* window = bpf_map_lookup_elem(&rl_window_map, &key);
  if (rate && *rate && window) {
    __u64 now = bpf_ktime_get_ns();
    if (now - window->start >= NSEC_PER_SEC) {
      window->start = now;
      window->passed = 0;
    }
    if (__sync_fetch_and_add(&window->passed, 1) >= *rate) {
      count(&rl_drop_count_map);
      return XDP_DROP;
    }
  }
  count(&rl_recv_count_map);
  bpf_tail_call(ctx, &xdp_rl_ingress_next_prog, 0);
  return XDP_PASS;
}

char _license[] SEC("license") = "Dual BSD/GPL";
