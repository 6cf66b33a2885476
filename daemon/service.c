/* SPDX-License-Identifier: MIT */
/* Services' published table (service.h). */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service.h"

#define NSLOTS (2 * FERRY_MAX_SERVICES)

static void key_of(const union ferry_sockaddr *a, uint8_t *family, uint16_t *port, uint8_t addr[16])
{
	memset(addr, 0, 16);
	if (a->sa.sa_family == AF_INET) {
		*family = 4;
		*port = a->in4.sin_port;
		memcpy(addr, &a->in4.sin_addr, 4);
	} else {
		*family = 6;
		*port = a->in6.sin6_port;
		memcpy(addr, &a->in6.sin6_addr, 16);
	}
}

/* Run for every datagram (ferryd_svc_table_find()): the address as two words, one multiply each. */
static unsigned int slot_hash(uint8_t family, uint16_t port, const uint8_t addr[16])
{
	uint64_t w[2], h;

	memcpy(w, addr, sizeof(w));
	h = (w[0] ^ ((uint64_t)port << 8 | family)) * 0x9e3779b97f4a7c15ull;
	h = (h ^ w[1] ^ (h >> 29)) * 0xff51afd7ed558ccdull;
	return (unsigned int)(h >> 40) % NSLOTS;
}

static int lookup(const struct ferryd_svc_table *t, uint8_t family, uint16_t port, const uint8_t addr[16])
{
	for (unsigned int h = slot_hash(family, port, addr), n = 0; n < NSLOTS; n++, h = (h + 1) % NSLOTS) {
		const struct ferryd_svc_entry *e;

		if (!t->slots[h])
			return -1;
		e = &t->by_id[t->slots[h] - 1];
		if (e->family == family && e->addr.in4.sin_port == port && !memcmp(e->key, addr, 16))
			return t->slots[h] - 1;
	}
	return -1;
}

/* The slots again from by_id: after a removal, an open-addressing chain must not have a hole. */
static void reindex(struct ferryd_svc_table *t)
{
	memset(t->slots, 0, sizeof(t->slots));
	for (unsigned int id = 0; id < FERRY_MAX_SERVICES; id++) {
		const struct ferryd_svc_entry *e = &t->by_id[id];
		unsigned int h;

		if (!e->svc)
			continue;
		for (h = slot_hash(e->family, e->addr.in4.sin_port, e->key); t->slots[h]; h = (h + 1) % NSLOTS)
			;
		t->slots[h] = (uint16_t)(id + 1);
	}
}

struct ferryd_svc_table *ferryd_svc_table_new(void)
{
	struct ferryd_svc_table *t = calloc(1, sizeof(*t));

	if (t)
		t->refs = 1;
	return t;
}

struct ferryd_svc_table *ferryd_svc_table_copy(const struct ferryd_svc_table *t)
{
	struct ferryd_svc_table *c = malloc(sizeof(*c));

	if (!c)
		return NULL;
	*c = *t;
	c->refs = 1;
	return c;
}

void ferryd_svc_table_get(struct ferryd_svc_table *t)
{
	__atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
}

void ferryd_svc_table_put(struct ferryd_svc_table *t)
{
	if (t && __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(t);
}

int ferryd_svc_table_add(struct ferryd_svc_table *t, struct ferryd_service *svc, uint64_t gen, char *why,
			 size_t whylen)
{
	struct ferryd_svc_entry *e;
	union ferry_sockaddr a;
	uint8_t family, key[16];
	uint16_t port;

	ferryd_sockaddr_canon(&svc->addr, &a);
	if ((a.sa.sa_family != AF_INET && a.sa.sa_family != AF_INET6) || !a.in4.sin_port) {
		snprintf(why, whylen, "service %s: needs an IPv4 or IPv6 address and a port", svc->name);
		return -EINVAL;
	}
	if (svc->id >= FERRY_MAX_SERVICES || t->by_id[svc->id].svc) {
		snprintf(why, whylen, "service %s: id %u is not free", svc->name, svc->id);
		return -EINVAL;
	}
	key_of(&a, &family, &port, key);
	if (lookup(t, family, port, key) >= 0) {
		snprintf(why, whylen, "service %s: its address is also service %s's", svc->name,
			 t->by_id[lookup(t, family, port, key)].svc->name);
		return -EEXIST;
	}
	e = &t->by_id[svc->id];
	memset(e, 0, sizeof(*e));
	e->svc = svc;
	e->addr = a;
	e->family = family;
	memcpy(e->key, key, 16);
	e->gen = gen;
	if (family == 4) {
		e->wildcard = a.in4.sin_addr.s_addr == htonl(INADDR_ANY);
		e->multicast = IN_MULTICAST(ntohl(a.in4.sin_addr.s_addr));
	} else {
		e->wildcard = IN6_IS_ADDR_UNSPECIFIED(&a.in6.sin6_addr);
		e->multicast = IN6_IS_ADDR_MULTICAST(&a.in6.sin6_addr);
	}
	t->n++;
	reindex(t);
	return 0;
}

void ferryd_svc_table_remove(struct ferryd_svc_table *t, unsigned int id)
{
	if (id >= FERRY_MAX_SERVICES || !t->by_id[id].svc)
		return;
	memset(&t->by_id[id], 0, sizeof(t->by_id[id]));
	t->n--;
	reindex(t);
}

int ferryd_svc_table_find(const struct ferryd_svc_table *t, const union ferry_sockaddr *dst)
{
	static const uint8_t zero[16];
	uint8_t family, key[16];
	uint16_t port;
	int id;

	key_of(dst, &family, &port, key);
	id = lookup(t, family, port, key);
	return id >= 0 ? id : lookup(t, family, port, zero);
}

int ferryd_svc_table_free_id(const struct ferryd_svc_table *t)
{
	for (unsigned int id = 0; id < FERRY_MAX_SERVICES; id++)
		if (!t->by_id[id].svc)
			return (int)id;
	return -ENOSPC;
}
