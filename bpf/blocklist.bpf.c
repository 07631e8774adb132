/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* blocklist: drops IPv4 and IPv6 packets whose source address falls in a blocked prefix of
 * blocklist_v4 / blocklist_v6 (bpfchain/blocklist.h; the longest matching prefix decides),
 * passes everything else down the chain. Entry points and their next maps: blocklist_xdp /
 * blocklist_xdp_next (xdp), blocklist_tc / blocklist_tc_next (tc-ingress, tc-egress). */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

#include "bpfchain/blocklist.h"
#include "bpfchain/chain.h"
#include "bpfchain/packet.h"

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, BLOCKLIST_MAX_PREFIXES);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct blocklist_v4_key);
  __type(value, __u8);
} blocklist_v4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, BLOCKLIST_MAX_PREFIXES);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct blocklist_v6_key);
  __type(value, __u8);
} blocklist_v6 SEC(".maps");

BPFCHAIN_STATS_MAP(blocklist_stats);

/* A PROG_ARRAY takes the program type of its first user, so each entry has its own. */
BPFCHAIN_NEXT_MAP(blocklist_xdp_next);
BPFCHAIN_NEXT_MAP(blocklist_tc_next);

static __always_inline bool source_blocked(void* data, void* data_end) {
  struct bpfchain_packet pkt;
  __u8* drop;
  /* What cannot be parsed as IP is not ours to judge: it passes. */
  if (bpfchain_parse(data, data_end, &pkt) != 0)
    return false;
  if (pkt.ip_version == 4) {
    struct blocklist_v4_key key = {.prefixlen = 32};
    __builtin_memcpy(key.addr, &pkt.saddr[3], sizeof(key.addr));
    drop = bpf_map_lookup_elem(&blocklist_v4, &key);
  } else {
    struct blocklist_v6_key key = {.prefixlen = 128};
    __builtin_memcpy(key.addr, pkt.saddr, sizeof(key.addr));
    drop = bpf_map_lookup_elem(&blocklist_v6, &key);
  }
  return drop && *drop;
}

SEC("xdp")
int blocklist_xdp(struct xdp_md* ctx) {
  bpfchain_seen(&blocklist_stats);
  if (source_blocked((void*)(long)ctx->data, (void*)(long)ctx->data_end))
    return bpfchain_verdict(&blocklist_stats, XDP_DROP);
  return bpfchain_next_or(ctx, &blocklist_xdp_next, &blocklist_stats, XDP_PASS);
}

SEC("tc")
int blocklist_tc(struct __sk_buff* skb) {
  bpfchain_seen(&blocklist_stats);
  if (source_blocked((void*)(long)skb->data, (void*)(long)skb->data_end))
    return bpfchain_verdict(&blocklist_stats, BPFCHAIN_TC_DROP);
  return bpfchain_next_or(skb, &blocklist_tc_next, &blocklist_stats, BPFCHAIN_TC_PASS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
