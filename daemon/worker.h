/* SPDX-License-Identifier: MIT */
/*
 * A worker: one thread (or, alone, the control thread itself) that owns whole
 * queues (their UMEM, rings and kept frames), its share of the services'
 * kernel sockets, its send path and counters, on its own ferry_reactor.
 * Nothing mutable is shared with other workers: the control thread reaches
 * a worker through its mailbox, and what the control thread publishes
 * (interface facts, the service table, next hops) is immutable or read
 * without a lock.
 *
 * Where a datagram enters: an AF_XDP queue's RX ring (xsk_queue.c) or a
 * service's kernel socket (kpath.c). Where the callback runs: the worker's
 * dispatch (worker.c). Where it leaves: the worker's send path (tx.c), on
 * the worker's own queue, or its sockets.
 */
#ifndef FERRYD_WORKER_H
#define FERRYD_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <ferry/reactor.h>

#include "ferryd.h"
#include "dispatch.h"
#include "iface.h"
#include "kpath.h"
#include "mailbox.h"
#include "nexthop.h"
#include "service.h"
#include "tx.h"
#include "xsk_queue.h"

struct ferryd_dp;

/* What a worker counted per service; written by the worker only. */
struct ferryd_svc_stats {
	uint64_t rx_packets, rx_bytes, tx_packets, tx_dropped;
	/* --handler clients: put on a client's ring (one per client with fanout all), or dropped, why */
	uint64_t delivered, dropped_no_client, dropped_client_full, dropped_client_big;
};

/* Messages of the mailboxes. */
enum ferryd_msg_kind {
	/* control -> worker */
	FERRYD_MSG_SERVICES = 1, /* ptr: a new service table (a reference for the worker) */
	FERRYD_MSG_LINK,	 /* ptr: a new view of the interface (a reference for the worker) */
	FERRYD_MSG_SYNC,	 /* nothing: answer, having passed a quiescent point */
	FERRYD_MSG_DRAIN,	 /* stop receiving, send what waits, answer */
	FERRYD_MSG_CLIENTS,	 /* ptr: a new client table (a reference for the worker) */
	FERRYD_MSG_STALL,	 /* fault injection: sleep arg seconds (the watchdog's tests) */
	FERRYD_MSG_EXIT,	 /* threaded: leave the loop (after DRAIN) */
	/* worker -> control */
	FERRYD_MSG_ACK,		 /* seq: the command answered; arg: 0 or -errno; data: a reason */
	FERRYD_MSG_ASK,		 /* data: a union ferry_sockaddr whose next hop was not known */
	FERRYD_MSG_SESSION_FAILED, /* ptr: a struct ferryd_session whose client broke a rule */
};

struct ferryd_worker {
	struct ferryd_dp *dp;
	unsigned int id;
	bool threaded;
	int cpu; /* -1: not pinned */
	pthread_t thread;
	bool started, exited;
	struct ferry_reactor *r; /* its own, or the control's when not threaded */
	struct ferryd_mailbox in, out; /* from and to the control thread */
	struct ferry_watch *in_watch;

	/* what the control thread published, as this worker last took it */
	const struct ferryd_link_state *ls;
	struct ferryd_svc_table *svcs;

	struct ferryd_xq *q;	 /* xdp mode: the queues this worker owns */
	unsigned int nq;
	struct ferryd_xq *cur_q; /* the queue whose batch runs: its replies leave on it */
	struct ferryd_kpath kp;	 /* the services' kernel sockets of this worker */
	struct ferryd_tx tx;	 /* the send path */
	struct ferryd_dispatch_wk dw; /* the client sessions, as this worker serves them */

	struct ferryd_stats st;	 /* written by the worker only; read with relaxed atomics */
	struct ferryd_svc_stats svc_st[FERRY_MAX_SERVICES];
	uint64_t bad_release;
	bool draining;
};

static inline uint64_t ferryd_stat_read(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* The worker whose thread this is (NULL on a thread that runs none). */
struct ferryd_worker *ferryd_worker_current(void);

/*
 * The worker of dp with id, its queues (xdp mode) and sockets opened, not yet
 * running. threaded: its own thread and reactor (started by
 * ferryd_worker_start()), else the control reactor r. 0, or -errno with a
 * reason in why; nothing is left behind then.
 */
int ferryd_worker_init(struct ferryd_worker *w, struct ferryd_dp *dp, unsigned int id, bool threaded, int cpu,
		       char *why, size_t whylen);
/* Registers its queues with the program and starts its loop. 0 or -errno with a reason. */
int ferryd_worker_start(struct ferryd_worker *w, char *why, size_t whylen);
/* Ends its thread (after a drain), closes everything it owns. Safe on a worker that failed to init. */
void ferryd_worker_destroy(struct ferryd_worker *w);

/* Runs one batch's callbacks for service id, counting, with the worker's current queue set. */
void ferryd_worker_deliver(struct ferryd_worker *w, unsigned int id, struct ferry_iobuf **bufs,
			   const union ferry_sockaddr *srcs, unsigned int n);

/* Tells the control thread a next hop was not known (dedup: at most one ask per destination a while). */
void ferryd_worker_ask(struct ferryd_worker *w, const union ferry_sockaddr *dst, uint64_t now_ms);

/* Sends a message to the control thread; counted and dropped when the mailbox is full. */
bool ferryd_worker_tell(struct ferryd_worker *w, const struct ferryd_msg *m);

/* Adds this worker's counters to out (from any thread). */
void ferryd_worker_add_stats(const struct ferryd_worker *w, struct ferryd_stats *out);

#endif
