/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maps of the `counter` kernel function, shared by the program and user space. Include after
 * vmlinux.h (BPF) or <linux/types.h> (user space).
 *
 * counter_stats: BPF_MAP_TYPE_PERCPU_ARRAY, 1 entry, key 0, value struct counter_value:
 * packets and bytes (the whole frame, as the hook sees it) that reached the program.
 */
#pragma once

struct counter_value {
  __u64 packets;
  __u64 bytes;
};
