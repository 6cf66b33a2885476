/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * ferry's XDP steering program: a UDP datagram goes to the AF_XDP socket of
 * its RX queue only when the kernel's own receive path would certainly have
 * delivered it to the service's socket; every other frame goes to the kernel
 * stack untouched (which then does what it always does: delivers it to the
 * service's socket, answers it, or drops it), counted once by the reason it
 * was not steered. When in doubt, pass.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <stdbool.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "ferry_maps.h"

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff
#define CSUM_CHUNK 512	/* bpf_csum_diff() sums at most 512 bytes a call */
#define CSUM_CHUNKS 8	/* 4 KiB: more than any frame an AF_XDP socket takes */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FERRY_MAX_SERVICES);
	__type(key, struct ferry_service_key);
	__type(value, struct ferry_service_val);
} services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FERRY_MAX_ADDRS);
	__type(key, struct ferry_addr_key);
	__type(value, struct ferry_addr_val);
} addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ferry_xdp_config);
} config SEC(".maps");

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

static __always_inline int pass(__u32 why)
{
	return count(why, XDP_PASS);
}

/* Folds a 64-bit one's complement sum to 16 bits, complemented: 0 when a checksum verifies. */
static __always_inline __u16 csum_fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/*
 * Adds the one's complement sum of len bytes at p (in the packet) to sum.
 * Every piece starts at an even offset from p, so 16-bit words line up; the
 * last odd byte is padded with zero after it, as RFC 1071 says. Returns
 * false when a piece is outside the frame or the helper refuses it.
 */
static __always_inline bool csum_add(void *p, void *data_end, __u32 len, __u64 *sum)
{
	__u64 acc = *sum;
	__s64 s = 0;
	int i;

	for (i = 0; i < CSUM_CHUNKS && len >= CSUM_CHUNK; i++) {
		if (p + CSUM_CHUNK > data_end)
			return false;
		s = bpf_csum_diff(0, 0, p, CSUM_CHUNK, (__u32)s);
		if (s < 0)
			return false;
		p += CSUM_CHUNK;
		len -= CSUM_CHUNK;
	}
	if (len >= CSUM_CHUNK)
		return false;
/* One power-of-two piece: constant sizes are what the verifier can check. */
#define PIECE(n)                                                     \
	if (len & (n)) {                                             \
		if (p + (n) > data_end)                              \
			return false;                                \
		s = bpf_csum_diff(0, 0, p, (n), (__u32)s);           \
		if (s < 0)                                           \
			return false;                                \
		p += (n);                                            \
	}
	PIECE(256)
	PIECE(128)
	PIECE(64)
	PIECE(32)
	PIECE(16)
	PIECE(8)
	PIECE(4)
#undef PIECE
	acc += (__u32)s;
	if (len & 2) {
		if (p + 2 > data_end)
			return false;
		acc += *(__u16 *)p;
		p += 2;
	}
	if (len & 1) {
		__u16 w = 0;

		if (p + 1 > data_end)
			return false;
		*(__u8 *)&w = *(__u8 *)p; /* the byte first in memory, then a zero */
		acc += w;
	}
	*sum = acc;
	return true;
}

/* The flags of an address in the addrs map (0: not the host's). */
static __always_inline __u32 addr_flags(__u8 family, const void *addr)
{
	struct ferry_addr_key k;
	struct ferry_addr_val *v;

	__builtin_memset(&k, 0, sizeof(k));
	k.family = family;
	if (family == 4)
		__builtin_memcpy(k.addr, addr, 4);
	else
		__builtin_memcpy(k.addr, addr, 16);
	v = bpf_map_lookup_elem(&addrs, &k);
	return v ? v->flags : 0;
}

static __always_inline bool mac_eq(const __u8 *a, const __u8 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3] && a[4] == b[4] && a[5] == b[5];
}

/* What one datagram looks like once its IP header is parsed. */
struct dgram {
	struct ferry_service_key key; /* family and destination address; port filled from UDP */
	const __u8 *dst, *src;	      /* the addresses in the packet (4 or 16 bytes) */
	__u32 ip_len;		      /* bytes of IP payload from the UDP header on */
	bool dst_multicast;
	bool src_martian; /* by its form alone: unspecified, loopback, multicast, ... */
	__u64 pseudo;	  /* the pseudo-header's addresses, summed */
};

/* The group's own MAC (RFC 1112 6.4, RFC 2464 7). */
static __always_inline bool group_mac(const struct ethhdr *eth, __u8 family, const __u8 *g)
{
	const __u8 *m = eth->h_dest;

	if (family == 4)
		return m[0] == 0x01 && m[1] == 0x00 && m[2] == 0x5e && m[3] == (g[1] & 0x7f) && m[4] == g[2] &&
		       m[5] == g[3];
	return m[0] == 0x33 && m[1] == 0x33 && m[2] == g[12] && m[3] == g[13] && m[4] == g[14] && m[5] == g[15];
}

/*
 * The UDP header at l4, then the checks that decide between the AF_XDP
 * socket and the kernel, cheapest first: the service, the link-layer
 * destination, the addresses, the port, the size, the sums. family is a
 * constant at each (inlined) call: the verifier then knows the address
 * lengths, which it could not from a value on the stack.
 */
static __always_inline int steer_udp(struct xdp_md *ctx, struct ethhdr *eth, void *l4, void *data_end,
				     struct dgram *d, const __u8 family)
{
	const struct ferry_xdp_config *cfg;
	struct ferry_service_val *svc;
	struct udphdr *udp = l4;
	__u32 zero = 0, ulen, flen;
	__u64 sum;
	long ret;

	if ((void *)(udp + 1) > data_end)
		return pass(FERRY_XDP_PASS_MALFORMED);
	ulen = bpf_ntohs(udp->len);
	if (ulen < sizeof(*udp) || ulen > d->ip_len || l4 + ulen > data_end)
		return pass(FERRY_XDP_PASS_MALFORMED);

	d->key.port = udp->dest;
	svc = bpf_map_lookup_elem(&services, &d->key);
	if (!svc && !d->dst_multicast) {
		/* A wildcard service takes unicast only: groups are joined by address. */
		__builtin_memset(d->key.addr, 0, sizeof(d->key.addr));
		svc = bpf_map_lookup_elem(&services, &d->key);
	}
	if (!svc)
		return pass(FERRY_XDP_PASS_NO_SERVICE);

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || !cfg->max_frame)
		return pass(FERRY_XDP_PASS_NOT_LOCAL); /* ferryd has not said what it serves yet */
	if (d->dst_multicast) {
		/* A unicast frame carrying a group address is the kernel's to judge. */
		if (!group_mac(eth, family, d->dst))
			return pass(FERRY_XDP_PASS_OTHER_HOST);
	} else {
		if (!mac_eq(eth->h_dest, cfg->mac))
			return pass(FERRY_XDP_PASS_OTHER_HOST);
		/* On the interface now (an exact service's address too: it can
		 * be removed while the service stays). */
		if (!(addr_flags(family, d->dst) & FERRY_ADDR_IFACE))
			return pass(FERRY_XDP_PASS_NOT_LOCAL);
	}
	if (d->src_martian || addr_flags(family, d->src))
		return pass(FERRY_XDP_PASS_BAD_SOURCE);
	if (!udp->source)
		return pass(FERRY_XDP_PASS_SOURCE_PORT);

	/* An AF_XDP socket drops what does not fit one of its frames. */
	flen = (__u32)(data_end - (void *)eth);
	if (flen > cfg->max_frame || bpf_xdp_get_buff_len(ctx) > flen)
		return pass(FERRY_XDP_PASS_TOO_BIG);

	/* A datagram whose sum fails may still be good: veth hands over the
	 * peer stack's unfinished (offloaded) sums, which only the kernel can
	 * tell apart. Either way it is the kernel's. IPv4 may omit the sum. */
	if (udp->check || family == 6) {
		sum = d->pseudo + bpf_htons(IPPROTO_UDP) + udp->len;
		if (!udp->check || !csum_add(l4, data_end, ulen, &sum) || csum_fold(sum))
			return pass(FERRY_XDP_PASS_CHECKSUM);
	}

	/* The flags' low bits are the verdict when the queue has no socket. */
	ret = bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
	if (ret == XDP_REDIRECT)
		return count(FERRY_XDP_REDIRECTED, XDP_REDIRECT);
	return count(FERRY_XDP_PASS_NO_SOCKET, (int)ret);
}

static __always_inline bool ip4_martian(const __u8 *a)
{
	/* 0/8, 127/8, 224/4 and up to the limited broadcast (class E included:
	 * never a peer of ours) */
	return a[0] == 0 || a[0] == 127 || a[0] >= 224;
}

static __always_inline int parse_ipv4(struct xdp_md *ctx, struct ethhdr *eth, void *l3, void *data_end)
{
	struct dgram d;
	struct iphdr *ip = l3;
	__u32 tot_len;
	__u64 sum = 0;

	if ((void *)(ip + 1) > data_end)
		return pass(FERRY_XDP_PASS_MALFORMED);
	if (ip->version != 4 || ip->ihl < 5)
		return pass(FERRY_XDP_PASS_MALFORMED);
	tot_len = bpf_ntohs(ip->tot_len);
	/* The frame may carry link-layer padding past tot_len, never less. */
	if (l3 + ip->ihl * 4 > data_end || tot_len < ip->ihl * 4 || l3 + tot_len > data_end)
		return pass(FERRY_XDP_PASS_MALFORMED);
	/* Options (source routes, ...) are the kernel's to weigh. */
	if (ip->ihl != 5)
		return pass(FERRY_XDP_PASS_IP_OPTIONS);
	/* Any fragment passes, whatever its protocol: only the reassembled
	 * datagram has a complete UDP header and payload. */
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return pass(FERRY_XDP_PASS_FRAGMENT);
	if (ip->protocol != IPPROTO_UDP)
		return pass(FERRY_XDP_PASS_NOT_UDP);
	if (!csum_add(ip, data_end, sizeof(*ip), &sum) || csum_fold(sum))
		return pass(FERRY_XDP_PASS_CHECKSUM);

	/* Built field by field: an initialiser would become a .rodata map. */
	__builtin_memset(&d, 0, sizeof(d));
	d.key.family = 4;
	__builtin_memcpy(d.key.addr, &ip->daddr, sizeof(ip->daddr));
	d.dst = (const __u8 *)&ip->daddr;
	d.src = (const __u8 *)&ip->saddr;
	d.ip_len = tot_len - sizeof(*ip);
	d.dst_multicast = (d.dst[0] & 0xf0) == 0xe0;
	d.src_martian = ip4_martian(d.src);
	if (!csum_add(&ip->saddr, data_end, 8, &d.pseudo))
		return pass(FERRY_XDP_PASS_MALFORMED);
	return steer_udp(ctx, eth, ip + 1, data_end, &d, 4);
}

static __always_inline bool ip6_martian(const __u8 *a)
{
	__u32 w[4];

	__builtin_memcpy(w, a, sizeof(w)); /* the packet need not be aligned */
	if (a[0] == 0xff) /* multicast */
		return true;
	if (w[0] || w[1])
		return false;
	/* ::, ::1, and ::ffff:a.b.c.d (IPv4 on the wire is IPv4's business) */
	return (!w[2] && (!w[3] || w[3] == bpf_htonl(1))) || w[2] == bpf_htonl(0xffff);
}

/*
 * Only the fixed header is parsed. A fragment header counts as a fragment
 * (as in IPv4, whatever it carries); any other next header than UDP is
 * either an extension header (hop-by-hop, routing, destination options,
 * AH, ESP, mobility, HIP, shim6: the kernel's to process) or not UDP.
 */
static __always_inline int parse_ipv6(struct xdp_md *ctx, struct ethhdr *eth, void *l3, void *data_end)
{
	struct dgram d;
	struct ipv6hdr *ip6 = l3;
	__u32 plen;
	__u8 nh;

	if ((void *)(ip6 + 1) > data_end)
		return pass(FERRY_XDP_PASS_MALFORMED);
	if (ip6->version != 6)
		return pass(FERRY_XDP_PASS_MALFORMED);
	plen = bpf_ntohs(ip6->payload_len);
	/* plen 0 would be a jumbogram (a hop-by-hop option): the kernel's */
	if (!plen || (void *)(ip6 + 1) + plen > data_end)
		return pass(FERRY_XDP_PASS_MALFORMED);
	nh = ip6->nexthdr;
	if (nh == IPPROTO_FRAGMENT)
		return pass(FERRY_XDP_PASS_FRAGMENT);
	if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS || nh == IPPROTO_AH ||
	    nh == IPPROTO_ESP || nh == 135 /* mobility */ || nh == 139 /* HIP */ || nh == 140 /* shim6 */ ||
	    nh == 253 || nh == 254 /* experiments */)
		return pass(FERRY_XDP_PASS_IPV6_EXT);
	if (nh != IPPROTO_UDP)
		return pass(FERRY_XDP_PASS_NOT_UDP);

	__builtin_memset(&d, 0, sizeof(d));
	d.key.family = 6;
	__builtin_memcpy(d.key.addr, &ip6->daddr, sizeof(ip6->daddr));
	d.dst = (const __u8 *)&ip6->daddr;
	d.src = (const __u8 *)&ip6->saddr;
	d.ip_len = plen;
	d.dst_multicast = d.dst[0] == 0xff;
	/* a loopback or mapped destination arrives on no Ethernet: not ours */
	if (!d.dst_multicast && ip6_martian(d.dst))
		return pass(FERRY_XDP_PASS_NOT_LOCAL);
	d.src_martian = ip6_martian(d.src);
	if (!csum_add(&ip6->saddr, data_end, 32, &d.pseudo))
		return pass(FERRY_XDP_PASS_MALFORMED);
	return steer_udp(ctx, eth, ip6 + 1, data_end, &d, 6);
}

SEC("xdp.frags")
int ferry_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__be16 proto;

	if ((void *)(eth + 1) > data_end)
		return pass(FERRY_XDP_PASS_MALFORMED);
	proto = eth->h_proto;
	/* Tagged frames belong to a VLAN the kernel knows (or drops): we
	 * answer on the untagged LAN only. */
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD))
		return pass(FERRY_XDP_PASS_VLAN);
	if (proto == bpf_htons(ETH_P_IP))
		return parse_ipv4(ctx, eth, eth + 1, data_end);
	if (proto == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(ctx, eth, eth + 1, data_end);
	return pass(FERRY_XDP_PASS_NOT_IP);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
