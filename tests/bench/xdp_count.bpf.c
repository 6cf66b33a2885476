/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * The floor of every receive path: count the frame in a per-CPU slot and
 * drop it. No receiver can cost less than this program on the same traffic.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xdp_count.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdp_count_slot);
} counts SEC(".maps");

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	struct xdp_count_slot *s;
	__u32 key = 0;

	s = bpf_map_lookup_elem(&counts, &key);
	if (s) {
		s->packets++;
		s->bytes += ctx->data_end - ctx->data;
	}
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
