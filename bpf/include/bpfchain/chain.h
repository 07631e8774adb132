/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The chain ABI (DESIGN.md section 3), the same as L3AF's: a chain-aware program owns a 1-slot
 * BPF_MAP_TYPE_PROG_ARRAY, its "next map", and ends with a tail call on key 0 followed by its
 * own verdict. The chain manager points that slot at the next program of the chain; an empty
 * slot makes the tail call fall through to the verdict, which ends the chain.
 *
 *   BPFCHAIN_NEXT_MAP(myprog_next);
 *   SEC("xdp") int myprog(struct xdp_md *ctx) { ...; bpfchain_next(ctx, &myprog_next);
 *                                               return XDP_PASS; }
 *
 * Include after vmlinux.h and <bpf/bpf_helpers.h>.
 */
#pragma once

/*
 * The "pass" verdict of a TC program: TC_ACT_UNSPEC (-1). On a TCX link it is TCX_NEXT, so
 * programs attached after ours still run; under cls_bpf direct-action it continues with the
 * next filter, or the qdisc's default when there is none. TC_ACT_OK would end both lists.
 */
#define BPFCHAIN_TC_PASS (-1)

/* The "drop" verdict of a TC program: TC_ACT_SHOT, which vmlinux.h lacks (it is a #define). */
#define BPFCHAIN_TC_DROP 2

#define BPFCHAIN_NEXT_MAP(name)                                                                    \
  struct {                                                                                         \
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);                                                         \
    __uint(max_entries, 1);                                                                        \
    __type(key, __u32);                                                                            \
    __type(value, __u32);                                                                          \
  } name SEC(".maps")

/* Runs the rest of the chain. Returns only when the chain ends here (empty slot). */
static __always_inline void bpfchain_next(void* ctx, void* next_map) {
  bpf_tail_call(ctx, next_map, 0);
}

/*
 * Per-program statistics (optional). A program that wants them declares one stats map, calls
 * bpfchain_seen() when a packet enters and returns every verdict through bpfchain_verdict() or
 * bpfchain_next_or():
 *
 *   BPFCHAIN_STATS_MAP(myprog_stats);
 *   SEC("xdp") int myprog(struct xdp_md *ctx) {
 *     bpfchain_seen(&myprog_stats);
 *     if (bad) return bpfchain_verdict(&myprog_stats, XDP_DROP);
 *     return bpfchain_next_or(ctx, &myprog_next, &myprog_stats, XDP_PASS); }
 *
 * The map is a BPF_MAP_TYPE_PERCPU_ARRAY of BPFCHAIN_STATS_SLOTS __u64 counters (key __u32 slot,
 * value __u64 per CPU; user space sums the CPUs):
 *
 *   slot 0 (BPFCHAIN_STAT_SEEN)  packets that entered the program
 *   slot verdict + 2             packets on which the chain ENDED in this program with that
 *                                verdict: XDP_ABORTED..XDP_REDIRECT (0..4) -> slots 2..6,
 *                                TC_ACT_UNSPEC..TC_ACT_TRAP (-1..8) -> slots 1..10; any verdict
 *                                from -1 to 12 has its slot 1..14
 *   slot 15 (BPFCHAIN_STAT_OTHER_VERDICT)  any other verdict
 *
 * A packet handed on to the next program (a tail call that succeeded) is counted only in SEEN,
 * so SEEN - (sum of slots 1..15) = packets passed down the chain. Counts are per CPU and the
 * program runs with migration disabled and bottom halves off, so plain increments are exact;
 * the sums are not a snapshot (a reader may see SEEN before the verdict of the same packet).
 */
#define BPFCHAIN_STATS_SLOTS 16
#define BPFCHAIN_STAT_SEEN 0
#define BPFCHAIN_STAT_VERDICT_BASE 2
#define BPFCHAIN_STAT_OTHER_VERDICT 15

#define BPFCHAIN_STATS_MAP(name)                                                                   \
  struct {                                                                                         \
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                                                       \
    __uint(max_entries, BPFCHAIN_STATS_SLOTS);                                                     \
    __type(key, __u32);                                                                            \
    __type(value, __u64);                                                                          \
  } name SEC(".maps")

static __always_inline void bpfchain_stat_add(void* stats, __u32 slot) {
  __u64* count = bpf_map_lookup_elem(stats, &slot);
  if (count)
    (*count)++;
}

/* Counts a packet entering the program (slot BPFCHAIN_STAT_SEEN). */
static __always_inline void bpfchain_seen(void* stats) {
  bpfchain_stat_add(stats, BPFCHAIN_STAT_SEEN);
}

/* Counts the verdict that ends the chain here and returns it: `return bpfchain_verdict(...)`. */
static __always_inline int bpfchain_verdict(void* stats, int verdict) {
  __u32 slot = BPFCHAIN_STAT_OTHER_VERDICT;
  if (verdict >= -1 && verdict <= BPFCHAIN_STAT_OTHER_VERDICT - 1 - BPFCHAIN_STAT_VERDICT_BASE)
    slot = (__u32)(verdict + BPFCHAIN_STAT_VERDICT_BASE);
  bpfchain_stat_add(stats, slot);
  return verdict;
}

/* bpfchain_next(), then, when the chain ends here (empty slot), the counted `verdict`. */
static __always_inline int bpfchain_next_or(void* ctx, void* next_map, void* stats, int verdict) {
  bpfchain_next(ctx, next_map);
  return bpfchain_verdict(stats, verdict);
}
