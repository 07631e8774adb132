/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Test program: bpf/ratelimit.bpf.c with a 16-byte bucket value instead of 8, i.e. a version
 * whose ratelimit_buckets map changed layout (an upgrade must not carry it). Every other map
 * is the same. */
#include "vmlinux.h"

#include "bpfchain/ratelimit.h"

struct ratelimit_bucket_wide {
  __u64 full_ns;
  __u64 reserved;
};
#define ratelimit_bucket ratelimit_bucket_wide

#include "../../../bpf/ratelimit.bpf.c"
