/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* ratelimit: a token bucket per source address (bpfchain/ratelimit.h); drops what exceeds it,
 * passes everything else down the chain. Entry points and their next maps: ratelimit_xdp /
 * ratelimit_xdp_next (xdp), ratelimit_tc / ratelimit_tc_next (tc-ingress, tc-egress). */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

#include "bpfchain/chain.h"
#include "bpfchain/packet.h"
#include "bpfchain/ratelimit.h"

#define NSEC_PER_SEC 1000000000ULL

/* Load-time settings; a non-zero field of ratelimit_config overrides each. */
const volatile __u64 rate_pps = RATELIMIT_DEFAULT_RATE_PPS;
const volatile __u64 burst = RATELIMIT_DEFAULT_BURST;

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct ratelimit_config);
} ratelimit_config SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, RATELIMIT_MAX_SOURCES);
  __type(key, struct ratelimit_key);
  __type(value, struct ratelimit_bucket);
} ratelimit_buckets SEC(".maps");

BPFCHAIN_STATS_MAP(ratelimit_stats);

/* A PROG_ARRAY takes the program type of its first user, so each entry has its own. */
BPFCHAIN_NEXT_MAP(ratelimit_xdp_next);
BPFCHAIN_NEXT_MAP(ratelimit_tc_next);

/* One load and one store of the bucket's word: other CPUs update it concurrently, and a torn or
 * re-read value would break the "at worst an extra packet" argument of ratelimit.h. */
#define READ_WORD(x) (*(volatile __u64*)&(x))
#define WRITE_WORD(x, v) (*(volatile __u64*)&(x) = (v))

static __always_inline bool over_rate(void* data, void* data_end) {
  struct bpfchain_packet pkt;
  /* What cannot be parsed as IP is not ours to judge: it passes. */
  if (bpfchain_parse(data, data_end, &pkt) != 0)
    return false;

  __u64 rate = rate_pps;
  __u64 depth_pkts = burst;
  __u32 zero = 0;
  struct ratelimit_config* config = bpf_map_lookup_elem(&ratelimit_config, &zero);
  if (config) {
    __u64 value = READ_WORD(config->rate_pps);
    if (value)
      rate = value;
    value = READ_WORD(config->burst);
    if (value)
      depth_pkts = value;
  }
  if (rate == 0)
    return false;
  /* The clamps bound every sum below: interval <= 1e9 and depth <= 1e18 ns, so now + depth
   * cannot wrap while the monotonic clock is below 8e18 ns (250 years of uptime). */
  if (rate > RATELIMIT_MAX_RATE_PPS)
    rate = RATELIMIT_MAX_RATE_PPS;
  if (depth_pkts == 0)
    depth_pkts = 1;
  if (depth_pkts > RATELIMIT_MAX_BURST)
    depth_pkts = RATELIMIT_MAX_BURST;
  __u64 interval = NSEC_PER_SEC / rate; /* >= 1 */
  __u64 depth = depth_pkts * interval;  /* the whole bucket, in ns of refill */
  __u64 now = bpf_ktime_get_ns();

  struct ratelimit_key key;
  __builtin_memcpy(key.addr, pkt.saddr, sizeof(key.addr));
  struct ratelimit_bucket* bucket = bpf_map_lookup_elem(&ratelimit_buckets, &key);
  if (!bucket) {
    /* A new source starts full and this packet takes one token. Losing the insert to another
     * CPU (or the LRU) only lets this packet through uncounted. */
    struct ratelimit_bucket fresh = {.full_ns = now + interval};
    bpf_map_update_elem(&ratelimit_buckets, &key, &fresh, BPF_NOEXIST);
    return false;
  }

  __u64 full = READ_WORD(bucket->full_ns);
  /* How long until the bucket is full again: 0 when it is full (idle time adds no tokens
   * beyond burst). */
  __u64 debt = full > now ? full - now : 0;
  if (debt > depth)
    /* More than the whole bucket: the settings changed to a smaller one (higher rate or lower
     * burst). Leave this packet one token rather than making it wait out a debt the new
     * settings could never have run up; see ratelimit.h. */
    debt = depth - interval;
  else if (debt > depth - interval)
    return true; /* less than one whole token */
  WRITE_WORD(bucket->full_ns, now + debt + interval);
  return false;
}

SEC("xdp")
int ratelimit_xdp(struct xdp_md* ctx) {
  bpfchain_seen(&ratelimit_stats);
  if (over_rate((void*)(long)ctx->data, (void*)(long)ctx->data_end))
    return bpfchain_verdict(&ratelimit_stats, XDP_DROP);
  return bpfchain_next_or(ctx, &ratelimit_xdp_next, &ratelimit_stats, XDP_PASS);
}

SEC("tc")
int ratelimit_tc(struct __sk_buff* skb) {
  bpfchain_seen(&ratelimit_stats);
  if (over_rate((void*)(long)skb->data, (void*)(long)skb->data_end))
    return bpfchain_verdict(&ratelimit_stats, BPFCHAIN_TC_DROP);
  return bpfchain_next_or(skb, &ratelimit_tc_next, &ratelimit_stats, BPFCHAIN_TC_PASS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
