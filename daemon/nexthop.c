/* SPDX-License-Identifier: MIT */
/* The published next-hop table of nexthop.h: one writer, lock-free readers. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "nexthop.h"

#define MAX_PROBE 8	/* slots a key may sit from its home; a reader looks no further */
#define READ_TRIES 4	/* a record being written as we read: try again, then call it unknown */

enum { SLOT_EMPTY = 0, SLOT_LIVE = 1, SLOT_DEAD = 2 }; /* dead: removed; look-ups go past it */

/*
 * One record, a cache line. w[0..1] the address, w[2] family | state << 8 |
 * scope << 32, w[3] the MAC's 6 bytes (byte k at bits 8k) | result << 48 |
 * prefsrc family << 56, w[4..5] the preferred source, w[6] the generation.
 */
struct ferryd_nexthop_slot {
	uint64_t seq;
	uint64_t w[7];
} __attribute__((aligned(64)));

static inline uint64_t ld(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void st(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static uint32_t hash_key(uint64_t a0, uint64_t a1, uint64_t k2)
{
	uint64_t h = (a0 ^ (k2 * 0x9e3779b97f4a7c15ull)) * 0xbf58476d1ce4e5b9ull;

	h ^= h >> 31;
	h = (h ^ a1) * 0x94d049bb133111ebull;
	return (uint32_t)(h ^ (h >> 29));
}

static int fam_index(int family)
{
	return family == AF_INET6;
}

int ferryd_nexthops_init(struct ferryd_nexthops *t, unsigned int capacity)
{
	unsigned int n = 64;

	memset(t, 0, sizeof(*t));
	while (n < 2 * capacity)
		n <<= 1;
	t->slots = aligned_alloc(64, (size_t)n * sizeof(*t->slots));
	if (!t->slots)
		return -ENOMEM;
	memset(t->slots, 0, (size_t)n * sizeof(*t->slots));
	t->mask = n - 1;
	return 0;
}

void ferryd_nexthops_destroy(struct ferryd_nexthops *t)
{
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

uint32_t ferryd_nexthops_gen(const struct ferryd_nexthops *t, int family)
{
	return __atomic_load_n(&t->gen[fam_index(family)], __ATOMIC_ACQUIRE);
}

uint32_t ferryd_nexthops_invalidate(struct ferryd_nexthops *t, int family)
{
	return __atomic_add_fetch(&t->gen[fam_index(family)], 1, __ATOMIC_RELEASE);
}

/* The key words of an address. */
static void key_of(int family, const void *addr, uint32_t scope, uint64_t *a0, uint64_t *a1, uint64_t *k2)
{
	uint8_t a[16] = { 0 };

	memcpy(a, addr, family == AF_INET ? 4 : 16);
	memcpy(a0, a, 8);
	memcpy(a1, a + 8, 8);
	*k2 = (uint64_t)(uint8_t)family | (uint64_t)scope << 32;
}

enum ferryd_nexthop_result ferryd_nexthops_lookup(const struct ferryd_nexthops *t, const union ferry_sockaddr *dst,
						  uint8_t mac[6], union ferry_sockaddr *prefsrc)
{
	uint64_t a0, a1, k2;
	uint32_t h, gen;
	int family = dst->sa.sa_family;

	if (prefsrc)
		prefsrc->sa.sa_family = AF_UNSPEC;
	if (family == AF_INET)
		key_of(AF_INET, (const uint8_t *)&dst->in4.sin_addr, 0, &a0, &a1, &k2);
	else if (family == AF_INET6)
		key_of(AF_INET6, (const uint8_t *)&dst->in6.sin6_addr, dst->in6.sin6_scope_id, &a0, &a1, &k2);
	else
		return FERRYD_NEXTHOP_NO_ROUTE;
	gen = ferryd_nexthops_gen(t, family);
	h = hash_key(a0, a1, k2);
	for (unsigned int i = 0; i < MAX_PROBE; i++) {
		const struct ferryd_nexthop_slot *s = &t->slots[(h + i) & t->mask];

		for (int tries = 0; tries < READ_TRIES; tries++) {
			uint64_t s1 = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE), w2, w3, p0, p1, g, s2;
			bool match;

			if (s1 & 1)
				continue; /* being written */
			w2 = ld(&s->w[2]);
			match = ld(&s->w[0]) == a0 && ld(&s->w[1]) == a1 && (w2 & ~0xff00ull) == k2 &&
				((w2 >> 8) & 0xff) == SLOT_LIVE;
			w3 = ld(&s->w[3]);
			p0 = ld(&s->w[4]);
			p1 = ld(&s->w[5]);
			g = ld(&s->w[6]);
			__atomic_thread_fence(__ATOMIC_ACQUIRE);
			s2 = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
			if (s1 != s2)
				continue;
			if (((w2 >> 8) & 0xff) == SLOT_EMPTY)
				return FERRYD_NEXTHOP_MISS; /* nothing was ever put past here */
			if (!match)
				break; /* the next slot */
			if ((uint32_t)g != gen)
				return FERRYD_NEXTHOP_MISS; /* from before a route change */
			if (prefsrc && (w3 >> 56)) {
				memset(prefsrc, 0, sizeof(*prefsrc));
				prefsrc->sa.sa_family = (sa_family_t)(w3 >> 56);
				if (family == AF_INET)
					memcpy(&prefsrc->in4.sin_addr, &p0, 4);
				else {
					memcpy(&prefsrc->in6.sin6_addr, &p0, 8);
					memcpy((uint8_t *)&prefsrc->in6.sin6_addr + 8, &p1, 8);
				}
			}
			for (int k = 0; k < 6; k++)
				mac[k] = (uint8_t)(w3 >> (8 * k));
			return (enum ferryd_nexthop_result)((w3 >> 48) & 0xff);
		}
	}
	return FERRYD_NEXTHOP_MISS;
}

static void write_slot(struct ferryd_nexthop_slot *s, const uint64_t w[7])
{
	uint64_t seq = s->seq; /* the writer's own */

	__atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	for (int i = 0; i < 7; i++)
		st(&s->w[i], w[i]);
	__atomic_store_n(&s->seq, seq + 2, __ATOMIC_RELEASE);
}

void ferryd_nexthops_put(struct ferryd_nexthops *t, int family, const uint8_t addr[16], uint32_t scope,
			 enum ferryd_nexthop_result result, const uint8_t mac[6], const union ferry_sockaddr *prefsrc,
			 uint32_t gen)
{
	uint64_t w[7] = { 0 }, a0, a1, k2;
	struct ferryd_nexthop_slot *home, *free_slot = NULL, *found = NULL;
	uint32_t h;

	key_of(family, addr, scope, &a0, &a1, &k2);
	h = hash_key(a0, a1, k2);
	home = &t->slots[h & t->mask];
	for (unsigned int i = 0; i < MAX_PROBE; i++) {
		struct ferryd_nexthop_slot *s = &t->slots[(h + i) & t->mask];
		unsigned int state = (unsigned int)((s->w[2] >> 8) & 0xff);

		if (state == SLOT_LIVE && s->w[0] == a0 && s->w[1] == a1 && (s->w[2] & ~0xff00ull) == k2) {
			found = s;
			break;
		}
		if (state != SLOT_LIVE && !free_slot)
			free_slot = s;
		if (state == SLOT_EMPTY)
			break;
	}
	if (result == FERRYD_NEXTHOP_MISS) {
		if (found) {
			memcpy(w, found->w, sizeof(w));
			w[2] = (w[2] & ~0xff00ull) | (uint64_t)SLOT_DEAD << 8;
			write_slot(found, w);
		}
		return;
	}
	if (!found) {
		found = free_slot;
		if (!found) { /* every slot in reach is taken: the home slot's answer goes */
			found = home;
			t->evictions++;
		}
	}
	w[0] = a0;
	w[1] = a1;
	w[2] = k2 | (uint64_t)SLOT_LIVE << 8;
	for (int k = 0; mac && k < 6; k++)
		w[3] |= (uint64_t)mac[k] << (8 * k);
	w[3] |= (uint64_t)result << 48;
	if (prefsrc && (prefsrc->sa.sa_family == AF_INET || prefsrc->sa.sa_family == AF_INET6)) {
		w[3] |= (uint64_t)prefsrc->sa.sa_family << 56;
		if (prefsrc->sa.sa_family == AF_INET)
			memcpy(&w[4], &prefsrc->in4.sin_addr, 4);
		else {
			memcpy(&w[4], &prefsrc->in6.sin6_addr, 8);
			memcpy(&w[5], (const uint8_t *)&prefsrc->in6.sin6_addr + 8, 8);
		}
	}
	w[6] = gen;
	write_slot(found, w);
}
