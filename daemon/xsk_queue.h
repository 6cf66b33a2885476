/* SPDX-License-Identifier: MIT */
/*
 * One AF_XDP queue of a worker: its UMEM, socket and four rings. RX: frames
 * from the RX ring become iobuf views and go to the worker's dispatch in
 * runs of one service. TX: descriptors of built frames go on the TX ring,
 * or wait in a bounded backlog while it has no room; completions come back
 * to the free list. Wake-ups only when the kernel asked (need_wakeup).
 */
#ifndef FERRYD_XSK_QUEUE_H
#define FERRYD_XSK_QUEUE_H

#include <linux/if_xdp.h>
#include <stdbool.h>
#include <stdint.h>

#include <xdp/xsk.h>

#include "umem.h"

struct ferryd_worker;
struct ferry_watch;

struct ferryd_xq {
	struct ferryd_worker *w;
	unsigned int id;
	struct ferryd_umem umem;
	struct xsk_umem *xumem;
	struct xsk_socket *xsk;
	int fd;
	struct xsk_ring_prod fill, tx;
	struct xsk_ring_cons comp, rx;
	struct ferry_watch *watch;
	bool in_map, zero_copy;
	bool kick_due; /* descriptors went on the TX ring since the last wake-up */
	uint32_t fill_target;
	uint32_t zc_held; /* frames zero-copy clients hold (the dispatcher keeps it under half) */
	/* built frames waiting for room on the TX ring, oldest first */
	struct xdp_desc *backlog;
	uint32_t bl_head, bl_n, bl_cap;
	/* this queue's share of the worker's counters, and where its frames are
	 * as last published (both read by the control thread) */
	uint64_t rx_packets, rx_batches, tx_completed;
	struct {
		uint64_t free, kernel, user, tx;
	} pub;
	/* one RX batch */
	struct ferry_iobuf **bufs, **orig;
	union ferry_sockaddr *srcs;
	uint16_t *svc_of;
};

/* What a queue is made with. */
struct ferryd_xq_config {
	const char *ifname;
	unsigned int frames, frame_size, batch;
	int zero_copy; /* enum ferryd_zero_copy */
	bool busy_poll;
};

/*
 * Opens queue id: UMEM, socket, rings (zero-copy, then copy, as the config
 * says; the first refusal of zero-copy goes in zc_note). Not yet in the
 * XSKMAP nor on a reactor. 0 or -errno with a reason in why.
 */
int ferryd_xq_open(struct ferryd_xq *q, struct ferryd_worker *w, unsigned int id, const struct ferryd_xq_config *c,
		   char *zc_note, size_t notelen, char *why, size_t whylen);
/* Registers the socket in the program's XSKMAP and watches it on the worker's reactor. 0 or -errno. */
int ferryd_xq_start(struct ferryd_xq *q, char *why, size_t whylen);
/* Out of the XSKMAP and off the reactor: nothing new arrives. */
void ferryd_xq_stop(struct ferryd_xq *q);
/* Closes the socket and frees everything (stop first). */
void ferryd_xq_close(struct ferryd_xq *q);

/* One batch off the RX ring through the worker's dispatch. Returns the descriptors consumed. */
uint32_t ferryd_xq_rx_batch(struct ferryd_xq *q);

/*
 * Puts a built frame (frame fi, in state TX, its data at off, len bytes) on
 * the TX ring, or at the end of the backlog when the ring has no room or the
 * backlog is not empty. false when the backlog is full too: the frame went
 * back to the free list (the caller counts the drop).
 */
bool ferryd_xq_tx(struct ferryd_xq *q, uint32_t fi, uint32_t off, uint32_t len);

/* Takes completions back, moves backlog to the ring, wakes the kernel if TX waits. */
void ferryd_xq_flush(struct ferryd_xq *q);

/* Frames kept by handlers back (b is one of this queue's frames in state KEPT or USER). */
void ferryd_xq_release(struct ferryd_xq *q, uint32_t fi);

/* Delivers what is on the RX ring, then waits (bounded, deadline in ms) for TX to complete. */
void ferryd_xq_drain_rx(struct ferryd_xq *q);
bool ferryd_xq_tx_idle(struct ferryd_xq *q);

/* The interface's receive queues as the driver reports them (ETHTOOL_GCHANNELS), or 0 if it does not say. */
unsigned int ferryd_iface_rx_queues(const char *ifname);

/* What the kernel counted on the socket (XDP_STATISTICS); false if it would not say. */
bool ferryd_xq_kernel_stats(const struct ferryd_xq *q, struct xdp_statistics *out, socklen_t *len);

#endif
