/* SPDX-License-Identifier: MIT */
/* The host's addresses as an immutable hash set, and the rule for destinations ferryd never sends to. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "addrs.h"

static unsigned int slot_hash(uint8_t family, const uint8_t addr[16])
{
	uint32_t h = 2166136261u ^ family; /* FNV-1a: the set is rebuilt on every change, no one chooses its keys */

	for (int i = 0; i < 16; i++)
		h = (h ^ addr[i]) * 16777619u;
	return h ^ (h >> 16);
}

static struct ferryd_addrset_entry *slot_of(const struct ferryd_addrset *s, uint8_t family, const uint8_t addr[16])
{
	for (unsigned int h = slot_hash(family, addr) & s->mask;; h = (h + 1) & s->mask) {
		struct ferryd_addrset_entry *e = &s->slots[h];

		if (!e->family || (e->family == family && !memcmp(e->addr, addr, 16)))
			return e;
	}
}

static void add(struct ferryd_addrset *s, uint8_t family, const uint8_t addr[16], uint32_t flags)
{
	struct ferryd_addrset_entry *e = slot_of(s, family, addr);

	if (!e->family) {
		e->family = family;
		memcpy(e->addr, addr, 16);
		s->n++;
	}
	e->flags |= flags;
}

int ferryd_addrset_build(struct ferryd_addrset *s, const struct ferryd_host_addr *a, unsigned int n,
			 unsigned int ifindex)
{
	unsigned int size = 16;

	memset(s, 0, sizeof(*s));
	while (size < 2 * 4 * (n + 1)) /* an IPv4 address adds up to two more */
		size <<= 1;
	s->slots = calloc(size, sizeof(*s->slots));
	if (!s->slots)
		return -ENOMEM;
	s->mask = size - 1;
	for (unsigned int i = 0; i < n; i++) {
		uint8_t family = a[i].family == AF_INET ? 4 : 6, k[16] = { 0 };
		uint32_t flags = FERRY_ADDR_LOCAL;

		if (a[i].family != AF_INET && a[i].family != AF_INET6)
			continue;
		if (ifindex && a[i].ifindex == ifindex)
			flags |= a[i].usable ? FERRY_ADDR_IFACE : FERRY_ADDR_TENTATIVE;
		memcpy(k, a[i].addr, family == 4 ? 4 : 16);
		add(s, family, k, flags);
		if (family != 4)
			continue;
		if (a[i].prefixlen < 31) {
			uint32_t ip, mask = a[i].prefixlen ? htonl(~0u << (32 - a[i].prefixlen)) : 0;

			memcpy(&ip, a[i].addr, 4);
			ip |= ~mask; /* the subnet's broadcast */
			memcpy(k, &ip, 4);
			add(s, 4, k, FERRY_ADDR_BCAST);
		}
		if (memcmp(a[i].brd, "\0\0\0\0", 4)) {
			memset(k, 0, sizeof(k));
			memcpy(k, a[i].brd, 4);
			add(s, 4, k, FERRY_ADDR_BCAST);
		}
	}
	return 0;
}

void ferryd_addrset_free(struct ferryd_addrset *s)
{
	if (!s)
		return;
	free(s->slots);
	memset(s, 0, sizeof(*s));
}

uint32_t ferryd_addrset_flags(const struct ferryd_addrset *s, uint8_t family, const void *addr)
{
	uint8_t k[16] = { 0 };

	if (!s || !s->slots)
		return 0;
	memcpy(k, addr, family == 4 ? 4 : 16);
	return slot_of(s, family, k)->flags;
}

bool ferryd_addrset_equal(const struct ferryd_addrset *a, const struct ferryd_addrset *b)
{
	if (a->n != b->n)
		return false;
	for (unsigned int i = 0; a->slots && i <= a->mask; i++) {
		const struct ferryd_addrset_entry *e = &a->slots[i];

		if (e->family && ferryd_addrset_flags(b, e->family, e->addr) != e->flags)
			return false;
	}
	return true;
}

enum ferryd_dst_refusal ferryd_dst_check(const struct ferryd_addrset *s, const union ferry_sockaddr *dst,
					 uint16_t svc_port, bool local_peers)
{
	bool loopback;
	uint16_t port;
	uint32_t flags;

	if (dst->sa.sa_family == AF_INET) {
		const uint8_t *a = (const uint8_t *)&dst->in4.sin_addr;

		port = dst->in4.sin_port;
		if (!port)
			return FERRYD_DST_PORT0;
		if (a[0] == 0)
			return FERRYD_DST_UNSPEC;
		if ((a[0] & 0xf0) == 0xe0)
			return FERRYD_DST_MULTICAST;
		if (dst->in4.sin_addr.s_addr == INADDR_BROADCAST)
			return FERRYD_DST_BROADCAST;
		loopback = a[0] == 127;
		flags = ferryd_addrset_flags(s, 4, a);
	} else if (dst->sa.sa_family == AF_INET6) {
		const struct in6_addr *a = &dst->in6.sin6_addr;

		port = dst->in6.sin6_port;
		if (!port)
			return FERRYD_DST_PORT0;
		if (IN6_IS_ADDR_UNSPECIFIED(a))
			return FERRYD_DST_UNSPEC;
		if (IN6_IS_ADDR_MULTICAST(a))
			return FERRYD_DST_MULTICAST;
		loopback = IN6_IS_ADDR_LOOPBACK(a);
		flags = ferryd_addrset_flags(s, 6, a);
	} else {
		return FERRYD_DST_FAMILY;
	}
	if (flags & FERRY_ADDR_BCAST)
		return FERRYD_DST_BROADCAST;
	if ((loopback || flags) && port == svc_port)
		return FERRYD_DST_SELF;
	if (local_peers)
		return FERRYD_DST_OK;
	if (loopback)
		return FERRYD_DST_LOOPBACK;
	if (flags)
		return FERRYD_DST_LOCAL;
	return FERRYD_DST_OK;
}
