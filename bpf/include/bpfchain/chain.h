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
