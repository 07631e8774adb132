/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maps of the `portfilter` kernel function, shared by the program and user space. Include after
 * vmlinux.h (BPF) or <linux/types.h> (user space).
 *
 * portfilter_ports: BPF_MAP_TYPE_HASH, PORTFILTER_MAX_PORTS entries, key __u16 = an L4
 *   destination port in HOST byte order, value __u8: 1 (any non-zero) drops TCP and UDP packets,
 *   IPv4 and IPv6, to that port; 0 or no entry passes them on.
 * portfilter_stats: the chain.h per-program statistics (BPFCHAIN_STATS_MAP).
 * portfilter_xdp_next, portfilter_tc_next: the chain's next maps of the two entry points.
 *
 * Only packets whose TCP or UDP header is complete are filtered (bpfchain/packet.h): non-first
 * fragments (no transport header), truncated transport headers, other protocols and packets
 * with more than BPFCHAIN_MAX_IPV6_EXT IPv6 extension headers pass on. Entry points:
 * portfilter_xdp (xdp), portfilter_tc (tc-ingress, tc-egress).
 */
#pragma once

#define PORTFILTER_MAX_PORTS 1024
