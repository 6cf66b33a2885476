/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: ferryd_packet_build() then ferryd_packet_parse() gives back
 * what was built: addresses, ports, the payload's bytes and length, with
 * checksums that verify by an independent sum, and nothing written outside
 * the headers. Invalid requests (mixed families, too little headroom, too
 * long a payload) must be refused with the documented error.
 *
 * Input layout (every field optional, zeros when the data runs out):
 *   u8  flags     bit 0: IPv6; bit 1: payload passed by pointer (else in place);
 *                 bit 2: src of the other family; bit 3: headroom one byte short;
 *                 bit 4: payload of `big` bytes (a pattern) instead of the rest of the data
 *   u8  headroom  extra bytes in front of the headers
 *   u8  pad       bytes after the payload (Ethernet padding), ignored by the parser
 *   6+6 MACs (source, destination), 16+16 addresses (IPv4: the first 4), u16 ports (source, destination)
 *   u16 big       payload length in big mode
 *   ... payload
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include "fuzz.h"
#include "packet.h"

#define IFINDEX 5

enum {
	F_IPV6 = 1,
	F_BY_POINTER = 2,
	F_MIXED = 4,
	F_SHORT = 8,
	F_BIG = 16,
};

static void make_addr(union ferry_sockaddr *a, int family, const uint8_t addr[16], uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->sa.sa_family = (sa_family_t)family;
	if (family == AF_INET) {
		memcpy(&a->in4.sin_addr, addr, 4);
		a->in4.sin_port = htons(port);
	} else {
		memcpy(&a->in6.sin6_addr, addr, 16);
		a->in6.sin6_port = htons(port);
	}
}

static void check_same(const union ferry_sockaddr *got, const union ferry_sockaddr *want, const char *which)
{
	FUZZ_CHECK(got->sa.sa_family == want->sa.sa_family, "%s: family %u, built %u", which, got->sa.sa_family,
		   want->sa.sa_family);
	if (want->sa.sa_family == AF_INET) {
		FUZZ_CHECK(got->in4.sin_addr.s_addr == want->in4.sin_addr.s_addr, "%s: IPv4 address differs", which);
		FUZZ_CHECK(got->in4.sin_port == want->in4.sin_port, "%s: port %u, built %u", which,
			   ntohs(got->in4.sin_port), ntohs(want->in4.sin_port));
	} else {
		const struct in6_addr *a = &want->in6.sin6_addr;
		unsigned int scope = IN6_IS_ADDR_LINKLOCAL(a) || IN6_IS_ADDR_MC_LINKLOCAL(a) ? IFINDEX : 0;

		FUZZ_CHECK(!memcmp(&got->in6.sin6_addr, a, 16), "%s: IPv6 address differs", which);
		FUZZ_CHECK(got->in6.sin6_port == want->in6.sin6_port, "%s: port %u, built %u", which,
			   ntohs(got->in6.sin6_port), ntohs(want->in6.sin6_port));
		FUZZ_CHECK(got->in6.sin6_scope_id == scope, "%s: scope id %u, expected %u", which,
			   got->in6.sin6_scope_id, scope);
	}
}

/* The headers as RFC 768/791/8200 and packet.h describe them, checked byte by byte. */
static void check_headers(const uint8_t *f, int family, const uint8_t smac[6], const uint8_t dmac[6], size_t plen)
{
	const uint8_t *ip = f + FERRYD_ETH_HLEN, *udp, *addrs;
	size_t ulen = plen + FERRYD_UDP_HLEN, alen;
	uint8_t pseudo[4] = {0, IPPROTO_UDP, (uint8_t)(ulen >> 8), (uint8_t)ulen};
	uint32_t sum;

	FUZZ_CHECK(!memcmp(f, dmac, 6) && !memcmp(f + 6, smac, 6), "MAC addresses not as given");
	if (family == AF_INET) {
		FUZZ_CHECK(fuzz_be16(f + 12) == 0x0800, "ethertype %#x", fuzz_be16(f + 12));
		FUZZ_CHECK(ip[0] == 0x45 && fuzz_be16(ip + 2) == FERRYD_IP4_HLEN + ulen, "IPv4 header/total length");
		FUZZ_CHECK(fuzz_be16(ip + 6) == 0x4000 && ip[8] == 64 && ip[9] == IPPROTO_UDP, "IPv4 DF, TTL, protocol");
		FUZZ_CHECK(fuzz_fold(fuzz_sum16(0, ip, FERRYD_IP4_HLEN)) == 0, "IPv4 header checksum does not verify");
		udp = ip + FERRYD_IP4_HLEN;
		addrs = ip + 12;
		alen = 8;
	} else {
		FUZZ_CHECK(fuzz_be16(f + 12) == 0x86dd, "ethertype %#x", fuzz_be16(f + 12));
		FUZZ_CHECK(ip[0] == 0x60 && !ip[1] && !ip[2] && !ip[3], "IPv6 version, class, flow label");
		FUZZ_CHECK(fuzz_be16(ip + 4) == ulen && ip[6] == IPPROTO_UDP && ip[7] == 64,
			   "IPv6 payload length, next header, hop limit");
		udp = ip + FERRYD_IP6_HLEN;
		addrs = ip + 8;
		alen = 32;
	}
	FUZZ_CHECK(fuzz_be16(udp + 4) == ulen, "UDP length %u, expected %zu", fuzz_be16(udp + 4), ulen);
	FUZZ_CHECK(fuzz_be16(udp + 6) != 0, "UDP checksum 0 sent");
	sum = fuzz_sum16(0, addrs, alen);
	sum = fuzz_sum16(sum, pseudo, sizeof(pseudo));
	for (size_t off = 0; off < ulen; off += 0x8000) /* in pieces: a 32-bit sum of 64 KiB cannot overflow */
		sum = fuzz_sum16(sum, udp + off, ulen - off < 0x8000 ? ulen - off : 0x8000);
	FUZZ_CHECK(fuzz_fold(sum) == 0, "UDP checksum does not verify (%zu-byte payload)", plen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	uint8_t flags, smac[6], dmac[6], saddr[16], daddr[16], *buf, *payload;
	size_t headroom, pad, plen, hlen, payload_off, room, flen;
	union ferry_sockaddr src, dst;
	uint16_t sport, dport, big;
	struct ferryd_packet p;
	int family, sfamily;
	long start, want;

	flags = fuzz_u8(&in);
	headroom = fuzz_u8(&in);
	pad = fuzz_u8(&in);
	fuzz_bytes(&in, smac, 6);
	fuzz_bytes(&in, dmac, 6);
	fuzz_bytes(&in, saddr, 16);
	fuzz_bytes(&in, daddr, 16);
	sport = fuzz_u16(&in);
	dport = fuzz_u16(&in);
	big = fuzz_u16(&in);

	family = flags & F_IPV6 ? AF_INET6 : AF_INET;
	sfamily = flags & F_MIXED ? (family == AF_INET ? AF_INET6 : AF_INET) : family;
	make_addr(&src, sfamily, saddr, sport);
	make_addr(&dst, family, daddr, dport);
	/* Big mode reaches the length limits: up to 65535 + 255 bytes of payload. */
	plen = flags & F_BIG ? (size_t)big + (size_t)(headroom & 0x80 ? 0xff : 0) : in.n;
	hlen = ferryd_packet_header_len(family);
	payload_off = flags & F_SHORT ? hlen - 1 : hlen + headroom;
	room = payload_off + plen + pad;

	payload = malloc(plen ? plen : 1);
	buf = malloc(room);
	FUZZ_CHECK(payload && buf, "out of memory");
	for (size_t i = 0; i < plen; i++)
		payload[i] = flags & F_BIG ? (uint8_t)(i * 131 + 7) : in.p[i];
	memset(buf, 0xa5, room);
	if (!(flags & F_BY_POINTER))
		memcpy(buf + payload_off, payload, plen);

	if (sfamily != family || payload_off < hlen)
		want = -EINVAL;
	else if (plen + FERRYD_UDP_HLEN > 0xffff ||
		 (family == AF_INET && plen + FERRYD_UDP_HLEN + FERRYD_IP4_HLEN > 0xffff))
		want = -EMSGSIZE;
	else
		want = (long)(payload_off - hlen);
	start = ferryd_packet_build(buf, payload_off, flags & F_BY_POINTER ? payload : NULL, plen, smac, dmac, &src,
				    &dst);
	FUZZ_CHECK(start == want, "build returned %ld, expected %ld (family %d/%d, offset %zu, payload %zu)", start,
		   want, sfamily, family, payload_off, plen);
	if (start < 0) {
		for (size_t i = 0; i < payload_off; i++)
			FUZZ_CHECK(buf[i] == 0xa5, "a refused build wrote byte %zu", i);
		goto out;
	}

	/* Nothing outside [start, payload_off) changed: not the headroom, the payload or the padding. */
	for (size_t i = 0; i < (size_t)start; i++)
		FUZZ_CHECK(buf[i] == 0xa5, "build wrote byte %zu, before its headers at %ld", i, start);
	if (flags & F_BY_POINTER)
		for (size_t i = 0; i < plen; i++)
			FUZZ_CHECK(buf[payload_off + i] == 0xa5, "build copied a payload given by pointer");
	else
		FUZZ_CHECK(!memcmp(buf + payload_off, payload, plen), "build changed the payload in place");
	for (size_t i = payload_off + plen; i < room; i++)
		FUZZ_CHECK(buf[i] == 0xa5, "build wrote byte %zu, after the payload", i);
	if (flags & F_BY_POINTER) /* what a caller then sends: headers, then the payload after them */
		memcpy(buf + payload_off, payload, plen);

	check_headers(buf + start, family, smac, dmac, plen);
	flen = room - (size_t)start;
	memset(&p, 0, sizeof(p));
	FUZZ_CHECK(ferryd_packet_parse(buf + start, flen, IFINDEX, &p) == 0, "parse refused what build made");
	FUZZ_CHECK(p.payload_off == hlen, "payload offset %zu, built %zu", p.payload_off, hlen);
	FUZZ_CHECK(p.payload_len == plen, "payload length %zu, built %zu (padding %zu)", p.payload_len, plen, pad);
	FUZZ_CHECK(!memcmp(buf + start + p.payload_off, payload, plen), "payload bytes differ");
	check_same(&p.src, &src, "source");
	check_same(&p.dst, &dst, "destination");
out:
	free(buf);
	free(payload);
	return 0;
}
