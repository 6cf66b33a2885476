/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: any bytes as a received frame into ferryd_packet_parse(). What
 * it accepts must be one of the steered forms, with every offset, length and
 * address read back from inside the frame exactly where that form puts it.
 * Each input is tried as it is and with its checksums made to verify.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include "fuzz.h"
#include "packet.h"

#define IFINDEX 7

static void check_addr(const union ferry_sockaddr *a, int family, const uint8_t *addr, const uint8_t *port,
		       const char *which)
{
	FUZZ_CHECK(a->sa.sa_family == family, "%s: family %u, the frame says %d", which, a->sa.sa_family, family);
	if (family == AF_INET) {
		FUZZ_CHECK(!memcmp(&a->in4.sin_addr, addr, 4), "%s: IPv4 address not the header's", which);
		FUZZ_CHECK(!memcmp(&a->in4.sin_port, port, 2), "%s: port not the UDP header's", which);
	} else {
		int ll = IN6_IS_ADDR_LINKLOCAL(&a->in6.sin6_addr) || IN6_IS_ADDR_MC_LINKLOCAL(&a->in6.sin6_addr);

		FUZZ_CHECK(!memcmp(&a->in6.sin6_addr, addr, 16), "%s: IPv6 address not the header's", which);
		FUZZ_CHECK(!memcmp(&a->in6.sin6_port, port, 2), "%s: port not the UDP header's", which);
		FUZZ_CHECK(a->in6.sin6_scope_id == (ll ? IFINDEX : 0u), "%s: scope id %u (link-local: %d)", which,
			   a->in6.sin6_scope_id, ll);
		FUZZ_CHECK(!a->in6.sin6_flowinfo, "%s: flow info set", which);
	}
}

static void check_frame(const uint8_t *data, size_t size)
{
	struct ferryd_packet p;
	const uint8_t *ip, *udp;
	size_t iphl, ulen;
	int family, err;

	memset(&p, 0xa5, sizeof(p));
	err = ferryd_packet_parse(data, size, IFINDEX, &p);
	FUZZ_CHECK(err == 0 || err == -EINVAL || err == -EPROTONOSUPPORT || err == -EOPNOTSUPP,
		   "unexpected result %d", err);
	if (err)
		return;

	/* Accepted: an untagged IPv4 (no options) or IPv6 (no extension headers) UDP frame. */
	FUZZ_CHECK(size >= FERRYD_ETH_HLEN, "accepted a %zu-byte frame", size);
	family = fuzz_be16(data + 12) == 0x0800 ? AF_INET : fuzz_be16(data + 12) == 0x86dd ? AF_INET6 : 0;
	FUZZ_CHECK(family, "accepted ethertype %#x", fuzz_be16(data + 12));
	iphl = family == AF_INET ? FERRYD_IP4_HLEN : FERRYD_IP6_HLEN;
	FUZZ_CHECK(p.payload_off == FERRYD_ETH_HLEN + iphl + FERRYD_UDP_HLEN, "payload offset %zu for family %d",
		   p.payload_off, family);
	FUZZ_CHECK(p.payload_off <= size && p.payload_len <= size - p.payload_off,
		   "payload [%zu, +%zu) outside the %zu-byte frame", p.payload_off, p.payload_len, size);

	ip = data + FERRYD_ETH_HLEN;
	udp = data + p.payload_off - FERRYD_UDP_HLEN;
	ulen = fuzz_be16(udp + 4);
	FUZZ_CHECK(ulen == p.payload_len + FERRYD_UDP_HLEN, "payload length %zu, UDP length field %zu", p.payload_len,
		   ulen);
	if (family == AF_INET) {
		size_t tot = fuzz_be16(ip + 2);

		FUZZ_CHECK(ip[0] == 0x45, "IPv4 version/IHL byte %#x accepted", ip[0]);
		FUZZ_CHECK(tot <= size - FERRYD_ETH_HLEN, "total length %zu beyond the frame", tot);
		FUZZ_CHECK(ulen <= tot - FERRYD_IP4_HLEN, "UDP length %zu beyond the IP total length %zu", ulen, tot);
		FUZZ_CHECK(!(fuzz_be16(ip + 6) & 0x3fff), "a fragment accepted (flags/offset %#x)", fuzz_be16(ip + 6));
		FUZZ_CHECK(ip[9] == IPPROTO_UDP, "protocol %u accepted", ip[9]);
		FUZZ_CHECK(fuzz_fold(fuzz_sum16(0, ip, FERRYD_IP4_HLEN)) == 0, "bad IPv4 header checksum accepted");
		check_addr(&p.src, AF_INET, ip + 12, udp, "source");
		check_addr(&p.dst, AF_INET, ip + 16, udp + 2, "destination");
	} else {
		size_t plen = fuzz_be16(ip + 4);

		FUZZ_CHECK(ip[0] >> 4 == 6, "IPv6 version %u accepted", ip[0] >> 4);
		FUZZ_CHECK(plen && plen <= size - FERRYD_ETH_HLEN - FERRYD_IP6_HLEN, "payload length %zu", plen);
		FUZZ_CHECK(ulen <= plen, "UDP length %zu beyond the IPv6 payload length %zu", ulen, plen);
		FUZZ_CHECK(ip[6] == IPPROTO_UDP, "next header %u accepted", ip[6]);
		check_addr(&p.src, AF_INET6, ip + 8, udp, "source");
		check_addr(&p.dst, AF_INET6, ip + 24, udp + 2, "destination");
	}
}

/* The frame as it is, then with its sums made to verify (fuzz_fix_sums), in a buffer of its size. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	check_frame(data, size);
	copy = malloc(size ? size : 1);
	FUZZ_CHECK(copy, "out of memory");
	memcpy(copy, data, size);
	if (fuzz_fix_sums(copy, size))
		check_frame(copy, size);
	free(copy);
	return 0;
}
