/* SPDX-License-Identifier: MIT */
/*
 * What the AF_XDP engine needs to know to put a frame on the wire itself: the
 * interface's MAC, MTU and primary addresses, and the next hop's MAC for a
 * destination, asked from the kernel over rtnetlink (libmnl) and cached.
 */
#ifndef FERRYD_NEIGH_H
#define FERRYD_NEIGH_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include <ferry/udp.h>

struct ferryd_iface {
	unsigned int ifindex;
	uint8_t mac[6];
	unsigned int mtu;
	bool has4, has6;       /* a primary address of that family was found */
	struct in_addr addr4;  /* first global (else any) IPv4 address */
	struct in6_addr addr6; /* first global, non-tentative IPv6 address */
};

/*
 * Reads ifname's index, MAC, MTU and primary addresses in the calling
 * thread's network namespace. 0, or -errno (-ENODEV: no such interface,
 * -EPROTONOSUPPORT: not an Ethernet interface).
 */
int ferryd_iface_query(const char *ifname, struct ferryd_iface *out);

struct ferryd_neigh;

/*
 * A next-hop resolver for frames leaving through ifindex, bound to the
 * network namespace of the calling thread. 0 or -errno. Not thread-safe.
 */
int ferryd_neigh_new(unsigned int ifindex, struct ferryd_neigh **out);
void ferryd_neigh_free(struct ferryd_neigh *n);

/* Outcomes of ferryd_neigh_lookup(). */
enum ferryd_neigh_result {
	FERRYD_NEIGH_OK = 0,	 /* mac holds the next hop's address */
	FERRYD_NEIGH_MISS,	 /* next hop unresolved: send by the kernel, which resolves it (ARP/ND) */
	FERRYD_NEIGH_NOT_HERE,	 /* the route does not leave through this interface (or is local) */
	FERRYD_NEIGH_NO_ROUTE,	 /* no route to dst */
};

/*
 * The destination MAC for a frame to dst. A cache hit costs no syscall;
 * answers are kept for a few seconds (misses for a fraction of a second, so
 * a burst to an unresolved host asks the kernel a few times, not per
 * datagram). now_ms is CLOCK_MONOTONIC in ms (one reading per batch).
 * *prefsrc (if not NULL) receives the source address the kernel's route
 * prefers toward dst (port 0), or family AF_UNSPEC if there is no route or
 * it names none: what a wildcard service sends from.
 *
 * A miss does not resolve by itself: a datagram sent through a plain (raw)
 * socket makes the kernel resolve the next hop and queue that datagram until
 * it has, which is both reliable and what the engine does with it anyway.
 */
enum ferryd_neigh_result ferryd_neigh_lookup(struct ferryd_neigh *n, const union ferry_sockaddr *dst,
					     uint64_t now_ms, uint8_t mac[6], union ferry_sockaddr *prefsrc);

/* Forgets every cached answer. */
void ferryd_neigh_flush(struct ferryd_neigh *n);

/* Counters: lookups answered by the cache, and questions asked of the kernel. */
void ferryd_neigh_counters(const struct ferryd_neigh *n, uint64_t *hits, uint64_t *queries);

#endif
