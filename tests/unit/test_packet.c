/* SPDX-License-Identifier: MIT */
/* daemon/packet.c: build-then-parse round trips, checksums checked independently, malformed frames rejected. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "packet.h"
#include "testutil.h"

static const uint8_t SRC_MAC[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };
static const uint8_t DST_MAC[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x02 };

#define ROOM 2048
#define POFF FERRYD_TX_HEADROOM

static void addr(int family, const char *ip, uint16_t port, union ferry_sockaddr *a)
{
	memset(a, 0, sizeof(*a));
	a->sa.sa_family = (sa_family_t)family;
	if (family == AF_INET) {
		a->in4.sin_port = htons(port);
		cr_assert_eq(inet_pton(AF_INET, ip, &a->in4.sin_addr), 1);
	} else {
		a->in6.sin6_port = htons(port);
		cr_assert_eq(inet_pton(AF_INET6, ip, &a->in6.sin6_addr), 1);
	}
}

/* Builds a frame with a patterned payload; returns its first byte's offset and sets *flen. */
static size_t build(uint8_t *buf, int family, size_t plen, union ferry_sockaddr *src, union ferry_sockaddr *dst,
		    size_t *flen)
{
	long start;

	if (family == AF_INET) {
		addr(AF_INET, "198.18.0.1", 9000, src);
		addr(AF_INET, "198.18.0.2", 40000, dst);
	} else {
		addr(AF_INET6, "2001:2::1", 9000, src);
		addr(AF_INET6, "2001:2::2", 40000, dst);
	}
	memset(buf, 0xee, ROOM);
	for (size_t i = 0; i < plen; i++)
		buf[POFF + i] = (uint8_t)(i * 7 + 3);
	start = ferryd_packet_build(buf, POFF, NULL, plen, SRC_MAC, DST_MAC, src, dst);
	cr_assert_geq(start, 0, "build of a %zu-byte payload failed: %ld", plen, start);
	cr_assert_eq((size_t)start, POFF - ferryd_packet_header_len(family), "headers must end where the payload starts");
	*flen = POFF + plen - (size_t)start;
	return (size_t)start;
}

/* Verifies the checksums of a built frame with ferry_test_sum16(), independently of packet.c. */
static void check_checksums(const uint8_t *f, int family, size_t plen)
{
	size_t ulen = plen + 8;
	const uint8_t *ip = f + 14, *udp;
	uint32_t pseudo = 0;

	if (family == AF_INET) {
		udp = ip + 20;
		cr_assert_eq(ferry_test_sum16(0, ip, 20), 0xffff, "IPv4 header checksum must sum to 0xffff");
		pseudo = ferry_test_sum16(0, ip + 12, 8);
	} else {
		udp = ip + 40;
		pseudo = ferry_test_sum16(0, ip + 8, 32);
	}
	pseudo += IPPROTO_UDP + (uint32_t)ulen;
	cr_assert(udp[6] || udp[7], "the UDP checksum field must not be 0");
	cr_assert_eq(ferry_test_sum16(pseudo, udp, ulen), 0xffff, "UDP checksum over pseudo header + datagram must sum to 0xffff");
}

struct rt_case {
	int family;
	size_t plen;
};

ParameterizedTestParameters(packet, round_trip)
{
	static struct rt_case cases[] = {
		{ AF_INET, 0 },	 { AF_INET, 1 },  { AF_INET, 18 },  { AF_INET, 1472 },
		{ AF_INET6, 0 }, { AF_INET6, 1 }, { AF_INET6, 18 }, { AF_INET6, 1472 },
	};
	return cr_make_param_array(struct rt_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct rt_case *c, packet, round_trip)
{
	uint8_t buf[ROOM];
	union ferry_sockaddr src, dst;
	struct ferryd_packet p;
	size_t flen, start = build(buf, c->family, c->plen, &src, &dst, &flen);
	const uint8_t *f = buf + start;

	cr_assert_eq(memcmp(f, DST_MAC, 6), 0, "destination MAC first");
	cr_assert_eq(memcmp(f + 6, SRC_MAC, 6), 0, "then the source MAC");
	check_checksums(f, c->family, c->plen);
	if (c->family == AF_INET) {
		cr_assert_eq(f[14], 0x45, "IPv4, a 20-byte header");
		cr_assert_eq(f[14 + 6] & 0x40, 0x40, "DF set");
		cr_assert_eq(f[14 + 8], 64, "TTL 64, got %u", f[14 + 8]);
	} else {
		cr_assert_eq(f[14] >> 4, 6, "IPv6");
		cr_assert_eq(f[14 + 7], 64, "hop limit 64, got %u", f[14 + 7]);
	}
	cr_assert_eq(ferryd_packet_parse(f, flen, 1, &p), 0, "a built frame must parse");
	cr_assert_eq(p.payload_off, POFF - start, "payload offset");
	cr_assert_eq(p.payload_len, c->plen, "payload length %zu, expected %zu", p.payload_len, c->plen);
	/* parse sees the frame from the sender's side: src is the builder's src */
	cr_assert(ferry_sockaddr_equal(&p.src, &src), "source address and port round-trip");
	cr_assert(ferry_sockaddr_equal(&p.dst, &dst), "destination address and port round-trip");
	for (size_t i = 0; i < c->plen; i++)
		cr_assert_eq(f[p.payload_off + i], (uint8_t)(i * 7 + 3), "payload byte %zu untouched", i);
}

Test(packet, csum_add_matches_naive_at_any_length_and_alignment)
{
	uint8_t b[256 + 8];

	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = (uint8_t)(rand() & 0xff);
	for (size_t off = 0; off < 4; off++)
		for (size_t len = 0; len <= 256; len++) {
			uint16_t fast = ferryd_csum_fold(ferryd_csum_add(0, b + off, len));
			uint16_t slow = htons((uint16_t)~ferry_test_sum16(0, b + off, len));

			cr_assert_eq(fast, slow, "checksum of %zu bytes at offset %zu: %#x, expected %#x", len, off, fast,
				     slow);
		}
}

/* A sum of 0 must go out as 0xffff: search 2-byte payloads for the one that makes it 0. */
Test(packet, zero_udp_checksum_sent_as_ffff)
{
	uint8_t buf[ROOM];
	union ferry_sockaddr src, dst;
	unsigned int hits = 0;

	addr(AF_INET, "198.18.0.1", 9000, &src);
	addr(AF_INET, "198.18.0.2", 40000, &dst);
	for (uint32_t v = 0; v <= 0xffff; v++) {
		long start;
		uint8_t *udp;

		buf[POFF] = (uint8_t)(v >> 8);
		buf[POFF + 1] = (uint8_t)v;
		start = ferryd_packet_build(buf, POFF, NULL, 2, SRC_MAC, DST_MAC, &src, &dst);
		cr_assert_geq(start, 0);
		udp = buf + start + 14 + 20;
		cr_assert(udp[6] || udp[7], "payload %#x: UDP checksum 0 must never be sent", v);
		if (udp[6] == 0xff && udp[7] == 0xff)
			hits++;
		check_checksums(buf + start, AF_INET, 2);
	}
	cr_assert_geq(hits, 1, "some payload must need the 0 -> 0xffff rule (found %u)", hits);
}

Test(packet, build_rejects_bad_arguments)
{
	uint8_t buf[ROOM];
	union ferry_sockaddr s4, d4, s6, d6;

	addr(AF_INET, "198.18.0.1", 1, &s4);
	addr(AF_INET, "198.18.0.2", 2, &d4);
	addr(AF_INET6, "2001:2::1", 1, &s6);
	addr(AF_INET6, "2001:2::2", 2, &d6);
	cr_assert_eq(ferryd_packet_build(buf, POFF, NULL, 1, SRC_MAC, DST_MAC, &s4, &d6), -EINVAL, "mixed families");
	cr_assert_eq(ferryd_packet_build(buf, 61, NULL, 1, SRC_MAC, DST_MAC, &s6, &d6), -EINVAL, "no room for IPv6 headers");
	cr_assert_eq(ferryd_packet_build(buf, 42, NULL, 1, SRC_MAC, DST_MAC, &s4, &d4), 0, "exactly the room for IPv4");
	cr_assert_eq(ferryd_packet_build(buf, POFF, NULL, 65536, SRC_MAC, DST_MAC, &s6, &d6), -EMSGSIZE,
		     "too long for UDP");
	cr_assert_eq(ferryd_packet_build(buf, POFF, NULL, 65508, SRC_MAC, DST_MAC, &s4, &d4), -EMSGSIZE,
		     "too long for IPv4");
}

/* Headers for a payload that lies elsewhere (a scatter send) equal those built in place. */
Test(packet, build_with_separate_payload)
{
	uint8_t buf[ROOM], hdr[POFF], payload[100];
	union ferry_sockaddr src, dst;
	size_t flen, start = build(buf, AF_INET6, sizeof(payload), &src, &dst, &flen);
	long start2;

	memcpy(payload, buf + POFF, sizeof(payload));
	start2 = ferryd_packet_build(hdr, POFF, payload, sizeof(payload), SRC_MAC, DST_MAC, &src, &dst);
	cr_assert_eq(start2, (long)start);
	cr_assert_eq(memcmp(hdr + start, buf + start, POFF - start), 0, "the same headers, checksum included");
}

Test(packet, ethernet_padding_is_not_payload)
{
	uint8_t buf[ROOM];
	union ferry_sockaddr src, dst;
	struct ferryd_packet p;
	size_t flen, start = build(buf, AF_INET, 0, &src, &dst, &flen);

	cr_assert_eq(flen, 42);
	cr_assert_eq(ferryd_packet_parse(buf + start, 60, 1, &p), 0, "a frame padded to 60 bytes parses");
	cr_assert_eq(p.payload_len, 0, "padding must not show as payload");
}

Test(packet, vlan_tags_are_refused)
{
	uint8_t buf[ROOM], f[ROOM];
	union ferry_sockaddr src, dst;
	struct ferryd_packet p;
	size_t flen, start = build(buf, AF_INET6, 18, &src, &dst, &flen);
	static const uint8_t tag[4] = { 0x81, 0x00, 0x00, 0x07 }, qinq[4] = { 0x88, 0xa8, 0x00, 0x05 };

	/* The program never steers a tagged frame: one here is not ours to answer. */
	memcpy(f, buf + start, 12);
	memcpy(f + 12, tag, 4);
	memcpy(f + 16, buf + start + 12, flen - 12);
	cr_assert_eq(ferryd_packet_parse(f, flen + 4, 1, &p), -EPROTONOSUPPORT, "an 802.1Q-tagged frame is refused");
	memcpy(f + 12, qinq, 4);
	memcpy(f + 16, tag, 4);
	memcpy(f + 20, buf + start + 12, flen - 12);
	cr_assert_eq(ferryd_packet_parse(f, flen + 8, 1, &p), -EPROTONOSUPPORT, "a QinQ frame is refused");
	cr_assert_eq(ferryd_packet_parse(f, 16, 1, &p), -EPROTONOSUPPORT, "a truncated tag is refused");
}

Test(packet, ipv4_options_are_refused)
{
	uint8_t buf[ROOM], f[ROOM];
	union ferry_sockaddr src, dst;
	struct ferryd_packet p;
	size_t flen, start = build(buf, AF_INET, 18, &src, &dst, &flen);
	uint8_t *ip = f + 14;
	uint16_t c;

	/* the same datagram with 4 bytes of NOP options, every length and sum right */
	memcpy(f, buf + start, 14 + 20);
	memset(f + 34, 1, 4);
	memcpy(f + 38, buf + start + 34, flen - 34);
	ip[0] = 0x46;
	ip[3] = (uint8_t)(ip[3] + 4);
	ip[10] = ip[11] = 0;
	c = ferryd_csum_fold(ferryd_csum_add(0, ip, 24));
	memcpy(ip + 10, &c, 2);
	cr_assert_eq(ferryd_packet_parse(f, flen + 4, 1, &p), -EPROTONOSUPPORT, "IPv4 options are refused");
}

Test(packet, ipv6_extension_headers_are_refused)
{
	uint8_t buf[ROOM], f[ROOM];
	union ferry_sockaddr src, dst;
	struct ferryd_packet p;
	size_t flen, start = build(buf, AF_INET6, 18, &src, &dst, &flen);
	uint8_t *ip = f + 14;

	/* insert an 8-byte destination-options header before UDP */
	memcpy(f, buf + start, 14 + 40);
	memcpy(f + 14 + 48, buf + start + 54, flen - 54);
	memset(f + 54, 0, 8);
	f[54] = IPPROTO_UDP; /* its next header */
	f[55] = 0;	     /* (0 + 1) * 8 bytes */
	ip[6] = IPPROTO_DSTOPTS;
	ip[5] = (uint8_t)(ip[5] + 8);
	cr_assert_eq(ferryd_packet_parse(f, flen + 8, 1, &p), -EPROTONOSUPPORT, "a destination-options header is refused");
	ip[6] = IPPROTO_HOPOPTS;
	cr_assert_eq(ferryd_packet_parse(f, flen + 8, 1, &p), -EPROTONOSUPPORT, "a hop-by-hop header is refused");
	ip[6] = IPPROTO_FRAGMENT;
	cr_assert_eq(ferryd_packet_parse(f, flen + 8, 1, &p), -EOPNOTSUPP, "an IPv6 fragment is refused");
	ip[6] = IPPROTO_TCP;
	cr_assert_eq(ferryd_packet_parse(f, flen + 8, 1, &p), -EPROTONOSUPPORT, "TCP is not UDP");
}

Test(packet, link_local_source_gets_scope)
{
	uint8_t buf[ROOM] = { 0 }; /* the payload is the buffer's: its bytes go into the checksum */
	union ferry_sockaddr src, dst;
	struct ferryd_packet p;
	long start;

	addr(AF_INET6, "fe80::1", 9000, &src);
	addr(AF_INET6, "fe80::2", 9001, &dst);
	start = ferryd_packet_build(buf, POFF, NULL, 4, SRC_MAC, DST_MAC, &src, &dst);
	cr_assert_geq(start, 0);
	cr_assert_eq(ferryd_packet_parse(buf + start, POFF + 4 - (size_t)start, 7, &p), 0);
	cr_assert_eq(p.src.in6.sin6_scope_id, 7, "a link-local source carries the interface as its scope");
}

/* Every truncation of a valid frame is refused. */
Test(packet, truncated_frames_rejected)
{
	int families[2] = { AF_INET, AF_INET6 };

	for (int k = 0; k < 2; k++) {
		uint8_t buf[ROOM];
		union ferry_sockaddr src, dst;
		struct ferryd_packet p;
		size_t flen, start = build(buf, families[k], 18, &src, &dst, &flen);

		for (size_t len = 0; len < flen; len++) {
			uint8_t *copy = malloc(len ? len : 1); /* exact size, so ASan sees any overread */

			memcpy(copy, buf + start, len);
			cr_assert_neq(ferryd_packet_parse(copy, len, 1, &p), 0, "family %d: %zu of %zu bytes must not parse",
				      families[k], len, flen);
			free(copy);
		}
	}
	cr_assert_eq(ferryd_packet_parse(NULL, 100, 1, &(struct ferryd_packet){ 0 }), -EINVAL);
}

/* Header fields that lie, one at a time. */
Test(packet, malformed_ipv4_rejected)
{
	uint8_t buf[ROOM], f[ROOM] = { 0 }; /* an IHL past the frame sums bytes past it: zeros, not garbage */
	union ferry_sockaddr src, dst;
	struct ferryd_packet p;
	size_t flen, start = build(buf, AF_INET, 18, &src, &dst, &flen);
	uint8_t *ip = f + 14, *udp = f + 34;

#define FRESH() memcpy(f, buf + start, flen)
#define RECSUM()                                                              \
	do {                                                                  \
		uint16_t c_;                                                  \
		ip[10] = ip[11] = 0;                                          \
		c_ = ferryd_csum_fold(ferryd_csum_add(0, ip, (ip[0] & 15) * 4)); \
		memcpy(ip + 10, &c_, 2);                                      \
	} while (0)

	FRESH();
	cr_assert_eq(ferryd_packet_parse(f, flen, 1, &p), 0);
	FRESH();
	ip[11] ^= 1;
	cr_assert_eq(ferryd_packet_parse(f, flen, 1, &p), -EINVAL, "bad IPv4 header checksum");
	FRESH();
	ip[0] = 0x44;
	RECSUM();
	cr_assert_eq(ferryd_packet_parse(f, flen, 1, &p), -EINVAL, "IHL below 5");
	FRESH();
	ip[0] = 0x4f;
	RECSUM();
	cr_assert_eq(ferryd_packet_parse(f, flen, 1, &p), -EINVAL, "IHL past the total length");
	FRESH();
	ip[0] = 0x65;
	RECSUM();
	cr_assert_eq(ferryd_packet_parse(f, flen, 1, &p), -EINVAL, "version 6 in an IPv4 ethertype");
	FRESH();
	ip[3] = (uint8_t)(ip[3] + 1);
	RECSUM();
	cr_assert_eq(ferryd_packet_parse(f, flen, 1, &p), -EINVAL, "total length past the frame");
	FRESH();
	ip[2] = 0;
	ip[3] = 19;
	RECSUM();
	cr_assert_eq(ferryd_packet_parse(f, flen, 1, &p), -EINVAL, "total length below the header");
	FRESH();
	ip[6] = 0x20; /* MF */
	RECSUM();
	cr_assert_eq(ferryd_packet_parse(f, flen, 1, &p), -EOPNOTSUPP, "first fragment");
	FRESH();
	ip[7] = 1; /* offset 8 */
	RECSUM();
	cr_assert_eq(ferryd_packet_parse(f, flen, 1, &p), -EOPNOTSUPP, "later fragment");
	FRESH();
	ip[9] = IPPROTO_TCP;
	RECSUM();
	cr_assert_eq(ferryd_packet_parse(f, flen, 1, &p), -EPROTONOSUPPORT, "TCP");
	FRESH();
	udp[4] = 0;
	udp[5] = 7;
	cr_assert_eq(ferryd_packet_parse(f, flen, 1, &p), -EINVAL, "UDP length below its header");
	FRESH();
	udp[5] = (uint8_t)(udp[5] + 1);
	cr_assert_eq(ferryd_packet_parse(f, flen, 1, &p), -EINVAL, "UDP length past the IP payload");
	FRESH();
	f[12] = 0x08;
	f[13] = 0x06;
	cr_assert_eq(ferryd_packet_parse(f, flen, 1, &p), -EPROTONOSUPPORT, "ARP");
#undef FRESH
#undef RECSUM
}

Test(packet, malformed_ipv6_rejected)
{
	uint8_t buf[ROOM], f[ROOM];
	union ferry_sockaddr src, dst;
	struct ferryd_packet p;
	size_t flen, start = build(buf, AF_INET6, 18, &src, &dst, &flen);
	uint8_t *ip = f + 14, *udp = f + 54;

	memcpy(f, buf + start, flen);
	ip[4] = ip[5] = 0;
	cr_assert_eq(ferryd_packet_parse(f, flen, 1, &p), -EINVAL, "payload length 0 (jumbogram)");
	memcpy(f, buf + start, flen);
	ip[5] = (uint8_t)(ip[5] + 1);
	cr_assert_eq(ferryd_packet_parse(f, flen, 1, &p), -EINVAL, "payload length past the frame");
	memcpy(f, buf + start, flen);
	ip[0] = 0x40;
	cr_assert_eq(ferryd_packet_parse(f, flen, 1, &p), -EINVAL, "version 4 in an IPv6 ethertype");
	memcpy(f, buf + start, flen);
	udp[4] = 0;
	udp[5] = 0;
	cr_assert_eq(ferryd_packet_parse(f, flen, 1, &p), -EINVAL, "UDP length 0");
	memcpy(f, buf + start, flen);
	ip[5] = 8; /* IP payload = the UDP header only, UDP says 26 */
	cr_assert_eq(ferryd_packet_parse(f, flen, 1, &p), -EINVAL, "UDP length past the IP payload");
}

/* Random corruption never makes the parser read outside the frame or report a payload outside it. */
Test(packet, fuzzed_frames_stay_in_bounds)
{
	int families[2] = { AF_INET, AF_INET6 };

	srand(12345);
	for (int k = 0; k < 2; k++) {
		uint8_t buf[ROOM];
		union ferry_sockaddr src, dst;
		struct ferryd_packet p;
		size_t flen, start = build(buf, families[k], 40, &src, &dst, &flen);

		for (int iter = 0; iter < 20000; iter++) {
			size_t len = (size_t)rand() % (flen + 8);
			uint8_t *f = malloc(len ? len : 1);

			for (size_t i = 0; i < len; i++)
				f[i] = i < flen ? buf[start + i] : (uint8_t)rand();
			for (int m = rand() % 4; m >= 0 && len; m--)
				f[(size_t)rand() % len] = (uint8_t)rand();
			if (ferryd_packet_parse(f, len, 1, &p) == 0)
				cr_assert_leq(p.payload_off + p.payload_len, len, "payload must lie inside the frame");
			free(f);
		}
	}
}
