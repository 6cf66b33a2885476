/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * ferry's XDP steering program: UDP datagrams to a configured service go to
 * the AF_XDP socket of their RX queue; every other frame goes to the kernel
 * stack untouched, counted once by the reason it was not steered.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "ferry_maps.h"

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

/* One 802.1Q / 802.1ad tag, as it sits after the MAC addresses. */
struct vlan_tag {
	__be16 tci;
	__be16 inner_proto;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FERRY_MAX_SERVICES);
	__type(key, struct ferry_service_key);
	__type(value, struct ferry_service_val);
} services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, FERRY_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FERRY_XDP_NCOUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline int count(__u32 which, int verdict)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);

	if (c)
		*c += 1; /* per-CPU slot: no other writer */
	return verdict;
}

/*
 * Checks the UDP header at l4 against the IP payload length ip_len (bytes
 * from l4 on, as the IP header says) and the frame, then looks the
 * destination up. key already holds family and address.
 */
static __always_inline int steer_udp(struct xdp_md *ctx, void *l4, void *data_end, __u32 ip_len,
				     struct ferry_service_key *key)
{
	struct udphdr *udp = l4;
	struct ferry_service_val *svc;
	__u32 ulen;
	long ret;

	if ((void *)(udp + 1) > data_end)
		return count(FERRY_XDP_PASS_MALFORMED, XDP_PASS);
	ulen = bpf_ntohs(udp->len);
	if (ulen < sizeof(*udp) || ulen > ip_len || l4 + ulen > data_end)
		return count(FERRY_XDP_PASS_MALFORMED, XDP_PASS);

	key->port = udp->dest;
	svc = bpf_map_lookup_elem(&services, key);
	if (!svc) {
		__builtin_memset(key->addr, 0, sizeof(key->addr));
		svc = bpf_map_lookup_elem(&services, key);
		if (!svc)
			return count(FERRY_XDP_PASS_NO_SERVICE, XDP_PASS);
	}

	/* The flags' low bits are the verdict when the queue has no socket. */
	ret = bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
	if (ret == XDP_REDIRECT)
		return count(FERRY_XDP_REDIRECTED, XDP_REDIRECT);
	return count(FERRY_XDP_PASS_NO_SOCKET, (int)ret);
}

static __always_inline int parse_ipv4(struct xdp_md *ctx, void *l3, void *data_end)
{
	struct ferry_service_key key;
	struct iphdr *ip = l3;
	__u32 hlen, tot_len;

	if ((void *)(ip + 1) > data_end)
		return count(FERRY_XDP_PASS_MALFORMED, XDP_PASS);
	if (ip->version != 4 || ip->ihl < 5)
		return count(FERRY_XDP_PASS_MALFORMED, XDP_PASS);
	hlen = ip->ihl * 4;
	tot_len = bpf_ntohs(ip->tot_len);
	/* The frame may carry link-layer padding past tot_len, never less. */
	if (l3 + hlen > data_end || tot_len < hlen || l3 + tot_len > data_end)
		return count(FERRY_XDP_PASS_MALFORMED, XDP_PASS);
	/* Any fragment passes, whatever its protocol: only the reassembled
	 * datagram has a complete UDP header and payload. */
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return count(FERRY_XDP_PASS_FRAGMENT, XDP_PASS);
	if (ip->protocol != IPPROTO_UDP)
		return count(FERRY_XDP_PASS_NOT_UDP, XDP_PASS);

	/* Built field by field: an initialiser would become a .rodata map. */
	__builtin_memset(&key, 0, sizeof(key));
	key.family = 4;
	__builtin_memcpy(key.addr, &ip->daddr, sizeof(ip->daddr));
	return steer_udp(ctx, l3 + hlen, data_end, tot_len - hlen, &key);
}

/*
 * Only the fixed header is parsed. A fragment header counts as a fragment
 * (as in IPv4, whatever it carries); any other extension header (hop-by-hop,
 * routing, destination options, AH, ESP, ...) counts as not UDP.
 */
static __always_inline int parse_ipv6(struct xdp_md *ctx, void *l3, void *data_end)
{
	struct ferry_service_key key;
	struct ipv6hdr *ip6 = l3;
	__u32 plen;

	if ((void *)(ip6 + 1) > data_end)
		return count(FERRY_XDP_PASS_MALFORMED, XDP_PASS);
	if (ip6->version != 6)
		return count(FERRY_XDP_PASS_MALFORMED, XDP_PASS);
	plen = bpf_ntohs(ip6->payload_len);
	if ((void *)(ip6 + 1) + plen > data_end)
		return count(FERRY_XDP_PASS_MALFORMED, XDP_PASS);
	if (ip6->nexthdr == IPPROTO_FRAGMENT)
		return count(FERRY_XDP_PASS_FRAGMENT, XDP_PASS);
	if (ip6->nexthdr != IPPROTO_UDP)
		return count(FERRY_XDP_PASS_NOT_UDP, XDP_PASS);

	__builtin_memset(&key, 0, sizeof(key));
	key.family = 6;
	__builtin_memcpy(key.addr, &ip6->daddr, sizeof(ip6->daddr));
	return steer_udp(ctx, ip6 + 1, data_end, plen, &key);
}

SEC("xdp")
int ferry_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *l3 = eth + 1;
	__be16 proto;

	if (l3 > data_end)
		return count(FERRY_XDP_PASS_MALFORMED, XDP_PASS);
	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_tag *tag = l3;

		if ((void *)(tag + 1) > data_end)
			return count(FERRY_XDP_PASS_MALFORMED, XDP_PASS);
		proto = tag->inner_proto;
		l3 = tag + 1;
		/* A second tag (QinQ) is beyond what we parse: it is "not IP"
		 * below, like any other ethertype. */
	}

	if (proto == bpf_htons(ETH_P_IP))
		return parse_ipv4(ctx, l3, data_end);
	if (proto == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(ctx, l3, data_end);
	return count(FERRY_XDP_PASS_NOT_IP, XDP_PASS);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
