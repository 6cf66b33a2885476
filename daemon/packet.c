/* SPDX-License-Identifier: MIT */
/* Parsing and building Ethernet/IP/UDP frames for the AF_XDP engine (see packet.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "packet.h"

#define ETH_P_IPV4 0x0800
#define ETH_P_IPV6 0x86dd

static inline uint16_t load_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void store_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

uint64_t ferryd_csum_add(uint64_t sum, const void *p, size_t len)
{
	const uint8_t *b = p;
	uint32_t w;
	uint16_t h;

	/* Unaligned 32-bit loads through memcpy; 2^32 words cannot overflow 64 bits. */
	for (; len >= 4; b += 4, len -= 4) {
		memcpy(&w, b, 4);
		sum += w;
	}
	if (len >= 2) {
		memcpy(&h, b, 2);
		sum += h;
		b += 2;
		len -= 2;
	}
	if (len) {
		uint8_t last[2] = { b[0], 0 };

		memcpy(&h, last, 2);
		sum += h;
	}
	return sum;
}

uint16_t ferryd_csum_fold(uint64_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void set_addr(union ferry_sockaddr *a, int family, const uint8_t *addr, const uint8_t *port,
		     unsigned int ifindex)
{
	memset(a, 0, sizeof(*a));
	if (family == AF_INET) {
		a->in4.sin_family = AF_INET;
		memcpy(&a->in4.sin_addr, addr, 4);
		memcpy(&a->in4.sin_port, port, 2);
	} else {
		a->in6.sin6_family = AF_INET6;
		memcpy(&a->in6.sin6_addr, addr, 16);
		memcpy(&a->in6.sin6_port, port, 2);
		if (IN6_IS_ADDR_LINKLOCAL(&a->in6.sin6_addr) || IN6_IS_ADDR_MC_LINKLOCAL(&a->in6.sin6_addr))
			a->in6.sin6_scope_id = ifindex;
	}
}

/* The UDP header at frame[off], with ip_room bytes of IP payload from there on. */
static int parse_udp(const uint8_t *frame, size_t off, size_t ip_room, struct ferryd_packet *out)
{
	size_t ulen;

	if (ip_room < FERRYD_UDP_HLEN)
		return -EINVAL;
	ulen = load_be16(frame + off + 4);
	/* A UDP length below the header, or beyond the IP payload, is a lie. */
	if (ulen < FERRYD_UDP_HLEN || ulen > ip_room)
		return -EINVAL;
	out->payload_off = off + FERRYD_UDP_HLEN;
	out->payload_len = ulen - FERRYD_UDP_HLEN;
	return 0;
}

static int parse_ip4(const uint8_t *frame, size_t len, size_t off, unsigned int ifindex, struct ferryd_packet *out)
{
	const uint8_t *ip = frame + off;
	size_t ihl, tot;
	int err;

	if (len - off < FERRYD_IP4_HLEN || ip[0] >> 4 != 4)
		return -EINVAL;
	ihl = (size_t)(ip[0] & 0xf) * 4;
	tot = load_be16(ip + 2);
	/* tot may be shorter than the frame (Ethernet pads to 60 bytes), never longer. */
	if (ihl < FERRYD_IP4_HLEN || tot < ihl || tot > len - off)
		return -EINVAL;
	if (ihl != FERRYD_IP4_HLEN) /* options: the kernel's, never steered */
		return -EPROTONOSUPPORT;
	if (ferryd_csum_fold(ferryd_csum_add(0, ip, ihl)) != 0)
		return -EINVAL;
	if (load_be16(ip + 6) & 0x3fff) /* MF set or a fragment offset */
		return -EOPNOTSUPP;
	if (ip[9] != IPPROTO_UDP)
		return -EPROTONOSUPPORT;
	err = parse_udp(frame, off + ihl, tot - ihl, out);
	if (err)
		return err;
	set_addr(&out->src, AF_INET, ip + 12, frame + off + ihl, ifindex);
	set_addr(&out->dst, AF_INET, ip + 16, frame + off + ihl + 2, ifindex);
	return 0;
}

static int parse_ip6(const uint8_t *frame, size_t len, size_t off, unsigned int ifindex, struct ferryd_packet *out)
{
	const uint8_t *ip = frame + off;
	size_t plen;
	int err;

	if (len - off < FERRYD_IP6_HLEN || ip[0] >> 4 != 6)
		return -EINVAL;
	plen = load_be16(ip + 4);
	/* plen 0 would be a jumbogram (hop-by-hop option): not on an Ethernet frame. */
	if (plen == 0 || plen > len - off - FERRYD_IP6_HLEN)
		return -EINVAL;
	if (ip[6] == IPPROTO_FRAGMENT)
		return -EOPNOTSUPP;
	if (ip[6] != IPPROTO_UDP) /* extension headers included: the kernel's, never steered */
		return -EPROTONOSUPPORT;
	err = parse_udp(frame, off + FERRYD_IP6_HLEN, plen, out);
	if (err)
		return err;
	set_addr(&out->src, AF_INET6, ip + 8, frame + off + FERRYD_IP6_HLEN, ifindex);
	set_addr(&out->dst, AF_INET6, ip + 24, frame + off + FERRYD_IP6_HLEN + 2, ifindex);
	return 0;
}

int ferryd_packet_parse(const uint8_t *frame, size_t len, unsigned int ifindex, struct ferryd_packet *out)
{
	uint16_t proto;

	if (!frame || len < FERRYD_ETH_HLEN)
		return -EINVAL;
	proto = load_be16(frame + 12);
	if (proto == ETH_P_IPV4)
		return parse_ip4(frame, len, FERRYD_ETH_HLEN, ifindex, out);
	if (proto == ETH_P_IPV6)
		return parse_ip6(frame, len, FERRYD_ETH_HLEN, ifindex, out);
	return -EPROTONOSUPPORT; /* VLAN tags included: the kernel's, never steered */
}

size_t ferryd_packet_header_len(int family)
{
	if (family == AF_INET)
		return FERRYD_ETH_HLEN + FERRYD_IP4_HLEN + FERRYD_UDP_HLEN;
	if (family == AF_INET6)
		return FERRYD_ETH_HLEN + FERRYD_IP6_HLEN + FERRYD_UDP_HLEN;
	return 0;
}

long ferryd_packet_build(uint8_t *buf, size_t payload_off, const uint8_t *payload, size_t payload_len,
			 const uint8_t src_mac[6], const uint8_t dst_mac[6], const union ferry_sockaddr *src,
			 const union ferry_sockaddr *dst)
{
	int family = dst->sa.sa_family;
	size_t hlen = ferryd_packet_header_len(family);
	size_t ulen = payload_len + FERRYD_UDP_HLEN;
	uint8_t pseudo[40], *eth, *ip, *udp;
	size_t pseudo_len;
	uint16_t csum;
	uint64_t sum;

	if (!hlen || src->sa.sa_family != family || payload_off < hlen)
		return -EINVAL;
	if (ulen > 0xffff || (family == AF_INET && ulen + FERRYD_IP4_HLEN > 0xffff))
		return -EMSGSIZE;
	eth = buf + payload_off - hlen;
	ip = eth + FERRYD_ETH_HLEN;
	memcpy(eth, dst_mac, 6);
	memcpy(eth + 6, src_mac, 6);
	if (family == AF_INET) {
		udp = ip + FERRYD_IP4_HLEN;
		store_be16(eth + 12, ETH_P_IPV4);
		ip[0] = 0x45;
		ip[1] = 0;
		store_be16(ip + 2, (uint16_t)(FERRYD_IP4_HLEN + ulen));
		store_be16(ip + 4, 0);	    /* id: atomic datagram (DF), RFC 6864 */
		store_be16(ip + 6, 0x4000); /* DF */
		ip[8] = 64;
		ip[9] = IPPROTO_UDP;
		store_be16(ip + 10, 0);
		memcpy(ip + 12, &src->in4.sin_addr, 4);
		memcpy(ip + 16, &dst->in4.sin_addr, 4);
		csum = ferryd_csum_fold(ferryd_csum_add(0, ip, FERRYD_IP4_HLEN));
		memcpy(ip + 10, &csum, 2);
		memcpy(pseudo, ip + 12, 8);
		pseudo[8] = 0;
		pseudo[9] = IPPROTO_UDP;
		store_be16(pseudo + 10, (uint16_t)ulen);
		pseudo_len = 12;
	} else {
		udp = ip + FERRYD_IP6_HLEN;
		store_be16(eth + 12, ETH_P_IPV6);
		ip[0] = 0x60; /* version 6, traffic class 0, flow label 0 */
		ip[1] = ip[2] = ip[3] = 0;
		store_be16(ip + 4, (uint16_t)ulen);
		ip[6] = IPPROTO_UDP;
		ip[7] = 64;
		memcpy(ip + 8, &src->in6.sin6_addr, 16);
		memcpy(ip + 24, &dst->in6.sin6_addr, 16);
		memcpy(pseudo, ip + 8, 32);
		memset(pseudo + 32, 0, 8);
		pseudo[34] = (uint8_t)(ulen >> 8);
		pseudo[35] = (uint8_t)ulen;
		pseudo[39] = IPPROTO_UDP;
		pseudo_len = 40;
	}
	memcpy(udp, &src->in4.sin_port, 2); /* sin_port and sin6_port share their offset */
	memcpy(udp + 2, &dst->in4.sin_port, 2);
	store_be16(udp + 4, (uint16_t)ulen);
	store_be16(udp + 6, 0);
	sum = ferryd_csum_add(0, pseudo, pseudo_len);
	sum = ferryd_csum_add(sum, udp, FERRYD_UDP_HLEN); /* even length: the payload's sum may follow */
	sum = ferryd_csum_add(sum, payload ? payload : buf + payload_off, payload_len);
	csum = ferryd_csum_fold(sum);
	if (csum == 0)
		csum = 0xffff; /* 0 means "no checksum" (IPv4) or is invalid (IPv6) */
	memcpy(udp + 6, &csum, 2);
	return (long)(payload_off - hlen);
}
