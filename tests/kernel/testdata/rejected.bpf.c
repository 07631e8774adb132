/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Test program the verifier must refuse: it reads the packet without a bounds check. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

#include "bpfchain/chain.h"

BPFCHAIN_NEXT_MAP(rejected_xdp_next);

SEC("xdp")
int rejected_xdp(struct xdp_md* ctx) {
  unsigned char* data = (unsigned char*)(long)ctx->data;
  if (data[12] == 0x08) /* no check against data_end */
    bpfchain_next(ctx, &rejected_xdp_next);
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
