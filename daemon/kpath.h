/* SPDX-License-Identifier: MIT */
/*
 * A worker's share of the services' kernel sockets: one SO_REUSEPORT UDP
 * socket per service (more in socket mode with more queues), each run by
 * libferry's recvmmsg loop on the worker's reactor into the worker's
 * dispatch; sends by sendmmsg. In socket mode this is the whole data path;
 * in xdp mode it carries what the XDP program leaves to the kernel
 * (fragments, other queues) and what is too big for one frame.
 *
 * Sending never waits: what a full socket buffer (EAGAIN) or a full device
 * queue (ENOBUFS) refuses waits in the socket's bounded backlog, sent again
 * when the socket is writable (EPOLLOUT) or after a back-off (ENOBUFS never
 * makes a socket writable); when the backlog is full, the datagram is
 * dropped and counted (tx_backlog_full).
 */
#ifndef FERRYD_KPATH_H
#define FERRYD_KPATH_H

#include <stdbool.h>
#include <stdint.h>

#include <ferry/iobuf.h>
#include <ferry/reactor.h>
#include <ferry/udp.h>

#include "ferry_maps.h"

struct ferryd_worker;
struct ferryd_svc_entry;
struct kp_sock;

/* Every buffer the kernel path made, and where each one is (a release can be checked). */
struct kp_pool {
	struct ferry_iobuf **all, **free;
	uint8_t *state;
	uint32_t *index; /* open addressing: buffer address -> its place in all[] + 1, 0 empty */
	unsigned int nall, nfree, cap, index_mask;
	size_t capacity; /* bytes per buffer */
};

#define FERRYD_KPATH_MAX_SOCKS 8 /* per service and worker */

struct ferryd_kpath {
	struct ferryd_worker *w;
	bool via;	 /* xdp mode: what comes and goes here is the kernel's path, counted as such */
	unsigned int batch;
	struct kp_sock *socks[FERRY_MAX_SERVICES][FERRYD_KPATH_MAX_SOCKS];
	unsigned int nsocks[FERRY_MAX_SERVICES];
	struct kp_pool pool;
	uint64_t kept;	/* buffers handlers hold */
	unsigned int closing; /* sockets whose loop has yet to end */
};

int ferryd_kpath_init(struct ferryd_kpath *kp, struct ferryd_worker *w, bool via, unsigned int batch);
/* Closes every socket at once and frees the buffers (the reactor must not run their loops any more). */
void ferryd_kpath_destroy(struct ferryd_kpath *kp);

/*
 * Opens this worker's nsock sockets of a service (bound, to the interface
 * when there is one; the group joined when join and the address is a group)
 * and starts their loops. 0 or -errno with a reason in why; nothing is
 * left open then.
 */
int ferryd_kpath_open(struct ferryd_kpath *kp, const struct ferryd_svc_entry *e, const char *ifname,
		      unsigned int nsock, bool join, char *why, size_t whylen);

/*
 * Ends a service's sockets: their loops stop at the next dispatch, and then
 * the sockets close. done(user) runs when the last one has closed (now, if
 * the service had none).
 */
void ferryd_kpath_close(struct ferryd_kpath *kp, unsigned int id, void (*done)(void *user, uint64_t seq),
			void *user, uint64_t seq);

/* Whether id has a socket here. */
bool ferryd_kpath_has(const struct ferryd_kpath *kp, unsigned int id);

/*
 * Sends bufs[i]'s window to dsts[i] from service id's first socket; what
 * cannot go now waits in its backlog. Returns how many were sent or queued;
 * the rest are counted by reason. The caller keeps the buffers.
 */
unsigned int ferryd_kpath_send(struct ferryd_kpath *kp, unsigned int id, struct ferry_iobuf **bufs,
			       const union ferry_sockaddr *dsts, unsigned int n);

/* Gives back a buffer a callback kept; false when b is not one of ours (the caller decides). */
bool ferryd_kpath_release(struct ferryd_kpath *kp, struct ferry_iobuf *b);

/* Stops every loop (after what was queued is handled, bounded) and sends what waits, bounded. */
void ferryd_kpath_drain(struct ferryd_kpath *kp);

/* Datagrams waiting in backlogs. */
unsigned int ferryd_kpath_backlog(const struct ferryd_kpath *kp);

#endif
