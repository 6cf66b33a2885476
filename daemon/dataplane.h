/* SPDX-License-Identifier: MIT */
/*
 * The data path as a whole, run from the control thread: the XDP program and
 * what it is told, the next-hop resolver and the answers it publishes, the
 * services, and the workers, which it reaches through their mailboxes. It is
 * what struct ferryd_engine (ferryd.h) is, in xdp and in socket mode.
 */
#ifndef FERRYD_DATAPLANE_H
#define FERRYD_DATAPLANE_H

#include <stdbool.h>
#include <stdint.h>

#include "ferryd.h"
#include "iface.h"
#include "neigh.h"
#include "nexthop.h"
#include "service.h"

struct ferryd_worker;
struct ferryd_prog;
struct ferryd_session;
struct ferryd_sess_area;
struct ferryd_client_table;
struct ferryd_svc_stats;

/* What the control thread knows of one worker's answers. */
struct ferryd_dp_peer {
	uint64_t acked;	 /* the newest command answered (a late answer to an older one leaves it) */
	int err;	 /* its answer */
	char why[40];
	struct ferry_watch *out_watch; /* the worker's mailbox to us */
};

struct ferryd_dp {
	struct ferryd_engine e; /* first: the engine pointer is this */
	bool xdp;
	struct ferryd_config cfg; /* a copy: what workers and queues are made with */
	struct ferry_reactor *r;  /* the control thread's */
	struct ferryd_iface *iface;
	bool subscribed;
	struct ferryd_prog *prog;	  /* xdp mode */
	struct ferryd_neigh *neigh;	  /* xdp mode: the resolver, on the control thread */
	struct ferryd_nexthops nh;	  /* what it publishes for the workers */
	struct ferryd_svc_table *table;	  /* the services now (our reference) */
	uint64_t svc_gen;
	struct ferryd_worker *w;	  /* nw workers */
	unsigned int nw;
	struct ferryd_dp_peer *peer;	  /* one per worker */
	uint64_t seq;			  /* commands sent */
	uint64_t ping_seq;		  /* the last watchdog ping (ferryd_dp_workers_alive) */
	/*
	 * Inside a wait for the workers' answers (the control reactor runs there
	 * with an inline worker): nothing else is sent meanwhile, or its answer
	 * could come before the awaited one (a removed service's sockets answer
	 * once closed) and pass for it. A new view of the interface goes after.
	 */
	unsigned int waiting;
	bool link_pending;
	uint64_t not_on_worker;		  /* sends and releases from a thread that runs no worker of ours */
	void (*on_session_failed)(void *user, struct ferryd_session *s);
	void *session_user;
	bool ready; /* every worker started */
	bool drained;
	char zc_note[128];
};

/*
 * Publishes a client table to every worker (each takes its own reference)
 * and waits for their answers: then no worker touches a session t lacks.
 * 0, or -errno with a reason in why (a worker that did not answer).
 */
int ferryd_dp_set_clients(struct ferryd_engine *e, struct ferryd_client_table *t, char *why, size_t whylen);

/*
 * The queues' UMEMs as a zero-copy session shares them, worker by worker
 * (areas[] of ferry/ring.h): how many, 0 in socket mode (or more than max).
 */
unsigned int ferryd_dp_areas(struct ferryd_engine *e, struct ferryd_sess_area *out, unsigned int max);

/* The XDP program's id (0: socket mode). */
uint32_t ferryd_dp_prog_id(struct ferryd_engine *e);

/*
 * The watchdog's question: whether every worker answered the last ping;
 * if so, pings them again (not waiting). A worker that stalls stops the
 * answers until it runs again.
 */
bool ferryd_dp_workers_alive(struct ferryd_engine *e);

/* Fault injection (tests of the watchdog): worker wid (a thread) sleeps for seconds. */
void ferryd_dp_stall_worker(struct ferryd_engine *e, unsigned int wid, unsigned int seconds);

/* Who to tell, on the control thread, when a worker found a client breaking the ring rules. */
void ferryd_dp_on_session_failed(struct ferryd_engine *e, void (*cb)(void *user, struct ferryd_session *s),
				 void *user);

/* What the workers counted for service id (worker.h), added up; read without a lock. */
void ferryd_dp_svc_stats(struct ferryd_engine *e, unsigned int id, struct ferryd_svc_stats *out);

/* How many of a service's sockets worker wid opens. */
unsigned int ferryd_dp_sockets(const struct ferryd_dp *dp, unsigned int wid);

#endif
