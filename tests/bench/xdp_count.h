/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/* The counter slot xdp_count.bpf.c keeps per CPU and the xdp_count loader sums. */
#ifndef FERRY_BENCH_XDP_COUNT_H
#define FERRY_BENCH_XDP_COUNT_H

#include <linux/types.h>

struct xdp_count_slot {
	__u64 packets;
	__u64 bytes;
};

#endif
