/* SPDX-License-Identifier: MIT */
/*
 * What the AF_XDP engine needs to know to put a frame on the wire itself: the
 * next hop's MAC for a destination, from a cache that rtnetlink questions and
 * notifications keep current (libmnl), so the send path never waits for the
 * kernel. The interface's own facts are iface.h's.
 */
#ifndef FERRYD_NEIGH_H
#define FERRYD_NEIGH_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include <ferry/udp.h>

struct ferryd_neigh;
struct ferry_reactor;

/* What a resolver counted; every field counts up from 0 except entries. */
struct ferryd_neigh_stats {
	uint64_t hits;		/* lookups answered from the cache (OK, NOT_HERE or NO_ROUTE) */
	uint64_t misses;	/* lookups answered MISS (nothing usable known yet) */
	uint64_t queries;	/* questions sent to the kernel (RTM_GETROUTE, RTM_GETNEIGH) */
	uint64_t answers;	/* kernel replies matched to a question in flight */
	uint64_t stale_answers; /* replies to no question in flight (late, cancelled): ignored */
	uint64_t foreign;	/* messages not from the kernel: ignored */
	uint64_t neigh_events;	/* neighbour notifications that changed a cached next hop */
	uint64_t route_events;	/* route/nexthop notifications (each makes every route answer re-asked) */
	uint64_t evictions;	/* destinations dropped from a full cache for new ones */
	uint64_t uncached;	/* lookups that could not get an entry (cache full of questions in flight) */
	uint64_t timeouts;	/* questions given up on, unanswered */
	uint64_t overruns;	/* socket overflows (ENOBUFS): everything is asked again */
	uint64_t send_errors;	/* failed writes of questions (asked again later) */
	uint64_t entries;	/* destinations cached now */
};

/*
 * A next-hop resolver for frames leaving through ifindex, bound to the
 * network namespace of the calling thread. Its rtnetlink socket is
 * non-blocking, watched on r (which must outlive it), and subscribed to the
 * kernel's neighbour, route and nexthop notifications, so cached answers
 * follow the kernel's tables without expiring. capacity: destinations
 * cached (0: FERRYD_NEIGH_DEFAULT_CAPACITY; at least 64). 0 or -errno.
 * Not thread-safe: use it from the thread that runs r.
 */
#define FERRYD_NEIGH_DEFAULT_CAPACITY 8192
int ferryd_neigh_new(struct ferry_reactor *r, unsigned int ifindex, unsigned int capacity, struct ferryd_neigh **out);
/* Removes its watch from the reactor, closes its socket. NULL is ignored. */
void ferryd_neigh_free(struct ferryd_neigh *n);

/* Outcomes of ferryd_neigh_lookup(). */
enum ferryd_neigh_result {
	FERRYD_NEIGH_OK = 0,	 /* mac holds the next hop's address */
	FERRYD_NEIGH_MISS,	 /* next hop not known (yet): send by the kernel, which resolves it (ARP/ND) */
	FERRYD_NEIGH_NOT_HERE,	 /* the route does not leave through this interface (or is local) */
	FERRYD_NEIGH_NO_ROUTE,	 /* no route to dst */
};

/*
 * The destination MAC for a frame to dst, from the cache only: never a
 * syscall, never a wait. What the cache does not know yet is answered MISS
 * and a question for it is queued (once: a destination already asked, or
 * whose next hop the kernel has not resolved, is asked again at most once a
 * second); ferryd_neigh_submit() sends the queued questions, and the
 * reactor's dispatch takes their answers and the kernel's notifications.
 * An answer stays until the kernel's tables change (a neighbour's MAC or
 * state, any route), so a steady set of peers costs no syscall at all.
 * now_ms: CLOCK_MONOTONIC(_COARSE) in ms (one reading per batch).
 * *prefsrc (if not NULL) receives the source address the kernel's route
 * prefers toward dst (port 0), or family AF_UNSPEC if the route is not known
 * (yet) or names none: what a wildcard service sends from.
 *
 * A MISS does not resolve the next hop by itself: a datagram sent through a
 * plain (raw) socket makes the kernel resolve it and queue that datagram
 * until it has; the neighbour notification that follows updates the cache.
 */
enum ferryd_neigh_result ferryd_neigh_lookup(struct ferryd_neigh *n, const union ferry_sockaddr *dst,
					     uint64_t now_ms, uint8_t mac[6], union ferry_sockaddr *prefsrc);

/*
 * Sends the questions lookups queued (a bounded number in flight, several
 * per write) and takes the answers the kernel already gave: rtnetlink answers
 * within the write, so a destination whose route and neighbour entry exist
 * is resolved when this returns. Never blocks. Costs nothing when no
 * question is queued. Returns the number of answers taken.
 */
unsigned int ferryd_neigh_submit(struct ferryd_neigh *n, uint64_t now_ms);

struct ferryd_nexthops;

/*
 * From now on, every answer (and every change of one) is also published in
 * t (nexthop.h), for workers on other threads to read without a lock; NULL
 * stops. Route changes invalidate what t holds at once.
 */
void ferryd_neigh_set_table(struct ferryd_neigh *n, struct ferryd_nexthops *t);

/*
 * A worker did not find dst in the published table: look it up (a question
 * for the kernel when not known here either), and publish what is known.
 */
void ferryd_neigh_ask(struct ferryd_neigh *n, const union ferry_sockaddr *dst, uint64_t now_ms);

/* Forgets every cached answer (questions in flight too: their answers will be ignored). */
void ferryd_neigh_flush(struct ferryd_neigh *n);

void ferryd_neigh_get_stats(const struct ferryd_neigh *n, struct ferryd_neigh_stats *out);

#endif
