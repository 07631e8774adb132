/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* portfilter: drops TCP and UDP packets whose destination port is listed in portfilter_ports
 * (bpfchain/portfilter.h), passes everything else down the chain. Entry points and their next
 * maps: portfilter_xdp / portfilter_xdp_next (xdp), portfilter_tc / portfilter_tc_next
 * (tc-ingress, tc-egress). */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

#include "bpfchain/chain.h"
#include "bpfchain/packet.h"
#include "bpfchain/portfilter.h"

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, PORTFILTER_MAX_PORTS);
  __type(key, __u16);
  __type(value, __u8);
} portfilter_ports SEC(".maps");

BPFCHAIN_STATS_MAP(portfilter_stats);

/* A PROG_ARRAY takes the program type of its first user, so each entry has its own. */
BPFCHAIN_NEXT_MAP(portfilter_xdp_next);
BPFCHAIN_NEXT_MAP(portfilter_tc_next);

static __always_inline bool port_blocked(void* data, void* data_end) {
  struct bpfchain_packet pkt;
  /* What cannot be parsed down to the ports is not ours to judge: it passes. */
  if (bpfchain_parse(data, data_end, &pkt) != 0 || !pkt.has_ports)
    return false;
  __u16 port = pkt.dport;
  __u8* drop = bpf_map_lookup_elem(&portfilter_ports, &port);
  return drop && *drop;
}

SEC("xdp")
int portfilter_xdp(struct xdp_md* ctx) {
  bpfchain_seen(&portfilter_stats);
  if (port_blocked((void*)(long)ctx->data, (void*)(long)ctx->data_end))
    return bpfchain_verdict(&portfilter_stats, XDP_DROP);
  return bpfchain_next_or(ctx, &portfilter_xdp_next, &portfilter_stats, XDP_PASS);
}

SEC("tc")
int portfilter_tc(struct __sk_buff* skb) {
  bpfchain_seen(&portfilter_stats);
  if (port_blocked((void*)(long)skb->data, (void*)(long)skb->data_end))
    return bpfchain_verdict(&portfilter_stats, BPFCHAIN_TC_DROP);
  return bpfchain_next_or(skb, &portfilter_tc_next, &portfilter_stats, BPFCHAIN_TC_PASS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
