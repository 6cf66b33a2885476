/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * rxdrop's XDP program: every frame to the AF_XDP socket of its RX queue,
 * nothing else; what any AF_XDP receiver's program does at least.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

SEC("xdp")
int rxdrop_redirect(struct xdp_md *ctx)
{
	/* No socket on this queue: the kernel gets the frame. */
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
