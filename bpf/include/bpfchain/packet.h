/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Bounds-checked header parsing shared by the kernel functions. It takes (data, data_end), so
 * XDP (ctx->data) and TC (skb->data, direct packet access) share it; include after vmlinux.h
 * (or <linux/types.h>) and <bpf/bpf_helpers.h>.
 *
 * Contract: bpfchain_parse() never reads outside [data, data_end) and returns
 *   0   the IP layer is complete: an IPv4 header (options included, IHL honoured) or an IPv6
 *       header and its extension headers. ip_version, l4_proto, saddr/daddr are valid;
 *       has_ports says whether a TCP or UDP header is complete too (sport/dport valid).
 *   BPFCHAIN_PARSE_NOT_IP (-1) for everything else: frames shorter than their headers, ARP and
 *       other ethertypes, more than BPFCHAIN_MAX_VLAN_TAGS tags, IPv4 with IHL < 5 or a version
 *       other than 4, IPv6 with a version other than 6, an IPv6 extension header cut short.
 * A filter must pass a packet it could not parse: the stack discards what is malformed itself,
 * and a filter that dropped what it does not understand would break protocols it never saw.
 *
 * What the parser sees:
 * - Ethernet, then up to two 802.1Q / 802.1ad tags in the data. On TC ingress the kernel has
 *   usually moved the outer tag to skb->vlan_tci already, and so have XDP drivers with VLAN
 *   offload on; the parser then simply sees the inner ethertype.
 * - A non-first fragment (IPv4 offset != 0, or an IPv6 fragment header with offset != 0) has
 *   no transport header: fragment = 1, has_ports = 0, and its payload is never read as ports.
 * - IPv6 extension headers hop-by-hop, routing, destination options, fragment and AH are
 *   skipped, at most BPFCHAIN_MAX_IPV6_EXT of them. After more than that the IP layer still
 *   counts as parsed (addresses are valid) but l4_proto is the unskipped header's type and
 *   has_ports = 0.
 * - On TC only the skb's linear part is visible: a header beyond it looks truncated.
 */
#pragma once

#include <bpf/bpf_endian.h>

#define BPFCHAIN_PARSE_NOT_IP (-1)
#define BPFCHAIN_MAX_VLAN_TAGS 2
#define BPFCHAIN_MAX_IPV6_EXT 8

#define BPFCHAIN_ETH_P_IP 0x0800
#define BPFCHAIN_ETH_P_IPV6 0x86DD
#define BPFCHAIN_ETH_P_8021Q 0x8100
#define BPFCHAIN_ETH_P_8021AD 0x88A8

#define BPFCHAIN_IPPROTO_HOPOPTS 0
#define BPFCHAIN_IPPROTO_ICMP 1
#define BPFCHAIN_IPPROTO_TCP 6
#define BPFCHAIN_IPPROTO_UDP 17
#define BPFCHAIN_IPPROTO_ROUTING 43
#define BPFCHAIN_IPPROTO_FRAGMENT 44
#define BPFCHAIN_IPPROTO_AH 51
#define BPFCHAIN_IPPROTO_ICMPV6 58
#define BPFCHAIN_IPPROTO_DSTOPTS 60

struct bpfchain_packet {
  /* Network byte order. IPv4 addresses are IPv4-mapped (::ffff:a.b.c.d): the IPv4 address is
   * word 3. Valid when bpfchain_parse() returned 0. */
  __be32 saddr[4];
  __be32 daddr[4];
  __u16 eth_proto; /* ethertype after the VLAN tags, host byte order; always set */
  __u16 sport;     /* host byte order, valid when has_ports */
  __u16 dport;     /* host byte order, valid when has_ports */
  __u8 ip_version; /* 4 or 6 */
  __u8 l4_proto;   /* IPv4 protocol, or the IPv6 next header after the extension headers */
  __u8 fragment;   /* a non-first fragment: no transport header in this packet */
  __u8 has_ports;  /* a complete TCP (20 bytes) or UDP (8 bytes) header */
  __u8 vlan_tags;  /* VLAN tags found in the data (0..BPFCHAIN_MAX_VLAN_TAGS) */
};

struct bpfchain_eth_hdr {
  __u8 dst[6];
  __u8 src[6];
  __be16 proto;
};

struct bpfchain_vlan_hdr {
  __be16 tci;
  __be16 proto;
};

struct bpfchain_ipv4_hdr {
  __u8 version_ihl;
  __u8 tos;
  __be16 tot_len;
  __be16 id;
  __be16 frag_off;
  __u8 ttl;
  __u8 protocol;
  __be16 check;
  __be32 saddr;
  __be32 daddr;
};

struct bpfchain_ipv6_hdr {
  __be32 version_class_flow;
  __be16 payload_len;
  __u8 nexthdr;
  __u8 hop_limit;
  __be32 saddr[4];
  __be32 daddr[4];
};

/* The first 4 bytes of every IPv6 extension header this parser skips. */
struct bpfchain_ipv6_ext_hdr {
  __u8 nexthdr;
  __u8 len;        /* in 8-byte units not counting the first 8; AH: 4-byte units minus 2 */
  __be16 frag_off; /* fragment header only: offset (13 bits, 8-byte units), 2 reserved, M */
};

/* Reads the ports of a complete TCP or UDP header at l4; anything else leaves has_ports 0. */
static __always_inline void bpfchain_parse_ports(void* l4, void* data_end,
                                                 struct bpfchain_packet* pkt) {
  __u32 need;
  if (pkt->l4_proto == BPFCHAIN_IPPROTO_TCP)
    need = 20;
  else if (pkt->l4_proto == BPFCHAIN_IPPROTO_UDP)
    need = 8;
  else
    return;
  if (l4 + need > data_end)
    return;
  __be16* ports = l4;
  pkt->sport = bpf_ntohs(ports[0]);
  pkt->dport = bpf_ntohs(ports[1]);
  pkt->has_ports = 1;
}

static __always_inline int bpfchain_parse_ipv4(void* l3, void* data_end,
                                               struct bpfchain_packet* pkt) {
  struct bpfchain_ipv4_hdr* ip = l3;
  if ((void*)(ip + 1) > data_end)
    return BPFCHAIN_PARSE_NOT_IP;
  if ((ip->version_ihl >> 4) != 4)
    return BPFCHAIN_PARSE_NOT_IP;
  __u32 hlen = (ip->version_ihl & 0x0f) * 4;
  if (hlen < sizeof(*ip) || l3 + hlen > data_end)
    return BPFCHAIN_PARSE_NOT_IP;
  pkt->ip_version = 4;
  pkt->l4_proto = ip->protocol;
  pkt->saddr[2] = bpf_htonl(0x0000ffff);
  pkt->saddr[3] = ip->saddr;
  pkt->daddr[2] = bpf_htonl(0x0000ffff);
  pkt->daddr[3] = ip->daddr;
  if (ip->frag_off & bpf_htons(0x1fff)) {
    pkt->fragment = 1;
    return 0;
  }
  bpfchain_parse_ports(l3 + hlen, data_end, pkt);
  return 0;
}

static __always_inline int bpfchain_parse_ipv6(void* l3, void* data_end,
                                               struct bpfchain_packet* pkt) {
  struct bpfchain_ipv6_hdr* ip6 = l3;
  if ((void*)(ip6 + 1) > data_end)
    return BPFCHAIN_PARSE_NOT_IP;
  if ((*(__u8*)ip6 >> 4) != 6)
    return BPFCHAIN_PARSE_NOT_IP;
  pkt->ip_version = 6;
#pragma unroll
  for (int i = 0; i < 4; i++) {
    pkt->saddr[i] = ip6->saddr[i];
    pkt->daddr[i] = ip6->daddr[i];
  }

  __u8 nexthdr = ip6->nexthdr;
  void* pos = ip6 + 1;
  /* Unrolled, so that every step is a fresh, constant-bounded packet access for the verifier;
   * each step moves pos by at most 2048 bytes, far below the verifier's packet offset limit. */
#pragma unroll
  for (int i = 0; i < BPFCHAIN_MAX_IPV6_EXT; i++) {
    struct bpfchain_ipv6_ext_hdr* ext = pos;
    if (nexthdr != BPFCHAIN_IPPROTO_HOPOPTS && nexthdr != BPFCHAIN_IPPROTO_ROUTING &&
        nexthdr != BPFCHAIN_IPPROTO_DSTOPTS && nexthdr != BPFCHAIN_IPPROTO_FRAGMENT &&
        nexthdr != BPFCHAIN_IPPROTO_AH)
      break;
    /* Every one of these headers is at least 8 bytes long. */
    if (pos + 8 > data_end)
      return BPFCHAIN_PARSE_NOT_IP;
    __u8 type = nexthdr;
    nexthdr = ext->nexthdr;
    if (type == BPFCHAIN_IPPROTO_FRAGMENT) {
      pos += 8;
      if (ext->frag_off & bpf_htons(0xfff8)) {
        pkt->l4_proto = nexthdr;
        pkt->fragment = 1;
        return 0;
      }
    } else if (type == BPFCHAIN_IPPROTO_AH) {
      pos += ((__u32)ext->len + 2) * 4;
    } else {
      pos += ((__u32)ext->len + 1) * 8;
    }
    if (pos > data_end)
      return BPFCHAIN_PARSE_NOT_IP;
  }
  pkt->l4_proto = nexthdr;
  bpfchain_parse_ports(pos, data_end, pkt);
  return 0;
}

/* Parses the frame at [data, data_end) into *pkt; see the contract at the top. */
static __always_inline int bpfchain_parse(void* data, void* data_end, struct bpfchain_packet* pkt) {
  __builtin_memset(pkt, 0, sizeof(*pkt));
  struct bpfchain_eth_hdr* eth = data;
  if ((void*)(eth + 1) > data_end)
    return BPFCHAIN_PARSE_NOT_IP;
  __u16 proto = bpf_ntohs(eth->proto);
  void* pos = eth + 1;
#pragma unroll
  for (int i = 0; i < BPFCHAIN_MAX_VLAN_TAGS; i++) {
    if (proto != BPFCHAIN_ETH_P_8021Q && proto != BPFCHAIN_ETH_P_8021AD)
      break;
    struct bpfchain_vlan_hdr* vlan = pos;
    if ((void*)(vlan + 1) > data_end)
      return BPFCHAIN_PARSE_NOT_IP;
    proto = bpf_ntohs(vlan->proto);
    pos = vlan + 1;
    pkt->vlan_tags++;
  }
  pkt->eth_proto = proto;
  if (proto == BPFCHAIN_ETH_P_IP)
    return bpfchain_parse_ipv4(pos, data_end, pkt);
  if (proto == BPFCHAIN_ETH_P_IPV6)
    return bpfchain_parse_ipv6(pos, data_end, pkt);
  return BPFCHAIN_PARSE_NOT_IP;
}
