/* SPDX-License-Identifier: MIT */
/*
 * What ferryd knows of the interface it serves and of the host's addresses,
 * kept current by rtnetlink notifications (link and address groups): the
 * MAC, MTU and state of the link, its primary addresses (what a wildcard
 * service replies from when the route names none), and every address the
 * kernel calls its own (what ferryd never replies to, and what the XDP
 * program must not steer as a source).
 */
#ifndef FERRYD_IFACE_H
#define FERRYD_IFACE_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "addrs.h"

struct ferry_reactor;

/* One published view; never changed once published (a new one replaces it). */
struct ferryd_link_state {
	unsigned int ifindex; /* 0: no interface (host-wide facts only) */
	char ifname[IF_NAMESIZE];
	uint8_t mac[6];
	unsigned int mtu;
	bool up;	       /* administratively up (IFF_UP) */
	bool running;	       /* up with a carrier (IFF_RUNNING): frames flow */
	bool gone;	       /* the interface was deleted */
	bool ethernet;	       /* ARPHRD_ETHER with a MAC: what AF_XDP frames are built for */
	bool loopback;	       /* the loopback device: every peer is the host itself */
	bool has4, has6;       /* a primary address of that family was found */
	struct in_addr addr4;  /* first global (else any) usable IPv4 address of the interface */
	struct in6_addr addr6; /* first global (else any) usable IPv6 address of the interface */
	struct ferryd_addrset addrs;
	uint64_t seq;  /* counts publications */
	uint32_t refs; /* atomic: the watch's own, and one per holder on another thread */
};

/* Another reference to a view (for a thread that keeps it while the watch moves on). Returns s. */
const struct ferryd_link_state *ferryd_link_state_get(const struct ferryd_link_state *s);
/* Drops a reference; the last frees the view. NULL is ignored. Any thread. */
void ferryd_link_state_put(const struct ferryd_link_state *s);

struct ferryd_iface;

/*
 * Called on the reactor's thread after a new view is published: old is
 * what was current (valid until the callback returns), now what is.
 */
typedef void (*ferryd_iface_cb)(void *user, const struct ferryd_link_state *old, const struct ferryd_link_state *now);

/*
 * Reads ifname's link and the host's addresses (in the calling thread's
 * network namespace), then watches for changes on r. ifname NULL or "":
 * addresses only. 0, or -errno with a reason in why (-ENODEV: no such
 * interface). Not thread-safe: use it from r's thread.
 */
int ferryd_iface_new(struct ferry_reactor *r, const char *ifname, struct ferryd_iface **out, char *why, size_t whylen);
void ferryd_iface_free(struct ferryd_iface *i);

/* The current view. Valid until control returns to the reactor (a callback may replace it); keep it longer with ferryd_link_state_get(). */
const struct ferryd_link_state *ferryd_iface_state(const struct ferryd_iface *i);

/* Adds a callback for changes (at most 8). 0 or -ENOSPC. */
int ferryd_iface_subscribe(struct ferryd_iface *i, ferryd_iface_cb cb, void *user);
/* Removes every subscription of user. */
void ferryd_iface_unsubscribe(struct ferryd_iface *i, void *user);

/* Reads everything again now, publishing a new view if anything changed. 0 or -errno. */
int ferryd_iface_refresh(struct ferryd_iface *i);

/* What the watcher counted. */
struct ferryd_iface_stats {
	uint64_t link_down; /* times the link stopped carrying frames (down or no carrier) */
	uint64_t link_up;   /* times it came back */
	uint64_t changes;   /* views published after the first */
	uint64_t overruns;  /* notifications lost (socket overflow): everything was read again */
};
void ferryd_iface_get_stats(const struct ferryd_iface *i, struct ferryd_iface_stats *out);

#endif
