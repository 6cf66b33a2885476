/* SPDX-License-Identifier: MIT */
/*
 * The next-hop answers the control thread's resolver (neigh.c) publishes for
 * the workers: a fixed open-addressing table written by one thread and read
 * by any number of others without a lock. Each slot is a seqcount-protected
 * record (its words are read and written with relaxed atomics, the count
 * with acquire/release), so a reader either gets a whole, consistent record
 * or tries again; an answer from before the last route change (a
 * generation per family) reads as unknown.
 */
#ifndef FERRYD_NEXTHOP_H
#define FERRYD_NEXTHOP_H

#include <stdbool.h>
#include <stdint.h>

#include <ferry/udp.h>

/* What a look-up tells the send path (the values of enum ferryd_neigh_result). */
enum ferryd_nexthop_result {
	FERRYD_NEXTHOP_OK = 0,	/* mac holds the next hop's address */
	FERRYD_NEXTHOP_MISS,	/* not known (yet, or any more): ask, and send by the kernel meanwhile */
	FERRYD_NEXTHOP_NOT_HERE, /* the route leaves by another interface (or is local) */
	FERRYD_NEXTHOP_NO_ROUTE, /* no route */
};

struct ferryd_nexthop_slot;

struct ferryd_nexthops {
	uint32_t mask;	       /* slots - 1 */
	uint32_t gen[2];       /* route generations, IPv4 and IPv6 (atomic) */
	uint64_t evictions;    /* writer only */
	struct ferryd_nexthop_slot *slots;
};

/* A table of at least capacity slots. 0 or -ENOMEM. */
int ferryd_nexthops_init(struct ferryd_nexthops *t, unsigned int capacity);
void ferryd_nexthops_destroy(struct ferryd_nexthops *t);

/*
 * Reader (any thread): the answer for dst (IPv4 or IPv6, the scope id of a
 * link-local IPv6 address counts), mac filled when OK; *prefsrc (if not
 * NULL) gets the route's preferred source (port 0) or AF_UNSPEC.
 */
enum ferryd_nexthop_result ferryd_nexthops_lookup(const struct ferryd_nexthops *t, const union ferry_sockaddr *dst,
						  uint8_t mac[6], union ferry_sockaddr *prefsrc);

/*
 * Writer (one thread only): the answer for a destination (family AF_INET or
 * AF_INET6, 16 bytes of address, IPv4 in the first 4), valid for route
 * generation gen. result MISS removes it.
 */
void ferryd_nexthops_put(struct ferryd_nexthops *t, int family, const uint8_t addr[16], uint32_t scope,
			 enum ferryd_nexthop_result result, const uint8_t mac[6], const union ferry_sockaddr *prefsrc,
			 uint32_t gen);

/* Writer: every answer of family (AF_INET, AF_INET6) reads as unknown from now on. Returns the new generation. */
uint32_t ferryd_nexthops_invalidate(struct ferryd_nexthops *t, int family);

/* The current generation of a family's answers. */
uint32_t ferryd_nexthops_gen(const struct ferryd_nexthops *t, int family);

#endif
