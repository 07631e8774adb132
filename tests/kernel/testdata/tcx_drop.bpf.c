/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* tcx_drop: another tool's TC program that returns a final verdict (TCX_DROP) for every
 * packet, as a CNI's may: whatever runs after it on the hook never sees a packet. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

SEC("tc")
int tcx_drop(struct __sk_buff* skb) {
  return 2; /* TCX_DROP */
}

char _license[] SEC("license") = "Dual BSD/GPL";
