/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maps and settings of the `ratelimit` kernel function, shared by the program and user space.
 * Include after vmlinux.h (BPF) or <linux/types.h> (user space).
 *
 * A token bucket per source address: `burst` packets at once, refilled at `rate_pps` packets
 * per second; a packet that finds no whole token is dropped. Packets that are not IP (or that
 * bpfchain/packet.h cannot parse) pass on.
 *
 * Settings: the load-time globals `rate_pps` and `burst` (.rodata, defaults
 * RATELIMIT_DEFAULT_RATE_PPS and RATELIMIT_DEFAULT_BURST), unless the matching field of
 * ratelimit_config is non-zero, which wins; so a rate changes without a reload. Rates are
 * clamped to RATELIMIT_MAX_RATE_PPS and bursts to 1..RATELIMIT_MAX_BURST; a rate of 0 in both
 * places turns limiting off (every packet passes).
 *
 * ratelimit_config: BPF_MAP_TYPE_ARRAY, 1 entry, key __u32 0, value struct ratelimit_config.
 * ratelimit_buckets: BPF_MAP_TYPE_LRU_HASH, RATELIMIT_MAX_SOURCES entries, key struct
 *   ratelimit_key, value struct ratelimit_bucket. A source evicted by the LRU starts again with
 *   a full bucket, so size the map for the sources that are active at once.
 * ratelimit_stats: the chain.h per-program statistics (BPFCHAIN_STATS_MAP).
 * ratelimit_xdp_next, ratelimit_tc_next: the chain's next maps of the two entry points.
 *
 * The bucket is kept in its virtual-scheduling (GCRA) form, one __u64 per source: the time at
 * which it would hold `burst` tokens again. With interval = 1e9 / rate ns (rounded down, so
 * rates above ~1e6 pps per source are admitted slightly faster than asked) a packet passes
 * when full_ns - now <= (burst - 1) * interval and then moves full_ns to
 * max(full_ns, now) + interval. Every update is one 8-byte store, so two CPUs racing on one
 * source can at worst lose an update, which lets an extra packet through; they can never make
 * a packet be dropped that a serial update would have passed. When the settings change to a
 * smaller bucket (a higher rate or a lower burst), a source that owes more than the whole new
 * bucket is given one token on its next packet and refills at the new rate from there: a change
 * applies at once, at the price of at most one extra packet per source.
 *
 * Entry points: ratelimit_xdp (xdp), ratelimit_tc (tc-ingress, tc-egress).
 */
#pragma once

#define RATELIMIT_DEFAULT_RATE_PPS 1000
#define RATELIMIT_DEFAULT_BURST 100
#define RATELIMIT_MAX_RATE_PPS 1000000000ULL
#define RATELIMIT_MAX_BURST 1000000000ULL
#define RATELIMIT_MAX_SOURCES 16384

struct ratelimit_config {
  __u64 rate_pps; /* packets per second; 0: use the `rate_pps` global */
  __u64 burst;    /* packets; 0: use the `burst` global */
};

/* The source address, network byte order; IPv4 as ::ffff:a.b.c.d (bytes 10, 11 are 0xff). An
 * IPv6 packet from ::ffff:a.b.c.d shares the bucket of the IPv4 source a.b.c.d. */
struct ratelimit_key {
  __u8 addr[16];
};

struct ratelimit_bucket {
  __u64 full_ns; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) time at which the bucket is full */
};
