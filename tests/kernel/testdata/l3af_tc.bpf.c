/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* l3af_tc: a TC kernel function as L3AF ships them (section "tc-ingress", which libbpf cannot
 * type; a struct __sk_buff * argument; its own next map). It touches no context field, so the
 * verifier would accept it as an XDP program too, where its TC_ACT_OK (0) is XDP_ABORTED:
 * tests use it to show a chain refuses a program written for another hook. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
  __uint(key_size, sizeof(int));
  __uint(value_size, sizeof(int));
  __uint(max_entries, 1);
} tc_ingress_next_prog_array SEC(".maps");

SEC("tc-ingress")
int tc_l3af(struct __sk_buff* skb) {
  bpf_tail_call(skb, &tc_ingress_next_prog_array, 0);
  return 0; /* TC_ACT_OK */
}

char _license[] SEC("license") = "Dual BSD/GPL";
