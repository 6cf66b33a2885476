/* SPDX-License-Identifier: MIT */
/* The dispatcher and each worker's side of the client sessions (dispatch.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <syslog.h>

#include "dispatch.h"
#include "handlers.h"
#include "worker.h"

#define TX_CHUNK 64	  /* datagrams taken off a TX ring per step */
#define TX_BUDGET 256	  /* per session per turn: then the others (and RX) get theirs */
#define TX_RETRY_MS 1	  /* the send path is full: try again after */
#define KPATH_HIGH 256	  /* datagrams waiting in the worker's socket backlogs: full enough */
#define DRAIN_ROUNDS 64	  /* shutdown: turns per session at most */

/* ---- the table ---------------------------------------------------------------------------- */

struct ferryd_client_table *ferryd_client_table_new(void)
{
	struct ferryd_client_table *t = calloc(1, sizeof(*t));

	if (t)
		t->refs = 1;
	return t;
}

struct ferryd_client_table *ferryd_client_table_copy(const struct ferryd_client_table *t)
{
	struct ferryd_client_table *c = malloc(sizeof(*c));

	if (!c)
		return NULL;
	memcpy(c, t, sizeof(*c));
	c->refs = 1;
	return c;
}

void ferryd_client_table_get(struct ferryd_client_table *t)
{
	__atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
}

void ferryd_client_table_put(struct ferryd_client_table *t)
{
	if (t && __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(t);
}

int ferryd_client_table_add(struct ferryd_client_table *t, struct ferryd_session *s)
{
	struct ferryd_client_set *set = &t->svc[s->svc_id];

	if (set->n == FERRYD_MAX_CLIENTS || t->nsess == FERRYD_MAX_SESSIONS)
		return -ENOSPC;
	set->s[set->n++] = s;
	t->nsess++;
	return 0;
}

bool ferryd_client_table_remove(struct ferryd_client_table *t, const struct ferryd_session *s)
{
	struct ferryd_client_set *set = &t->svc[s->svc_id];

	for (unsigned int i = 0; i < set->n; i++) {
		if (set->s[i] != s)
			continue;
		/* in order: the flows hashed to the clients after it move, the others stay */
		memmove(&set->s[i], &set->s[i + 1], (set->n - i - 1) * sizeof(set->s[0]));
		set->n--;
		t->nsess--;
		return true;
	}
	return false;
}

static const char *const fanout_names[] = {
	[FERRYD_FANOUT_HASH] = "hash", [FERRYD_FANOUT_ROUND_ROBIN] = "round-robin", [FERRYD_FANOUT_ALL] = "all"};

const char *ferryd_fanout_name(enum ferryd_fanout f)
{
	return (unsigned int)f < sizeof(fanout_names) / sizeof(fanout_names[0]) ? fanout_names[f] : "?";
}

int ferryd_fanout_parse(const char *s, enum ferryd_fanout *out)
{
	for (unsigned int i = 0; i < sizeof(fanout_names) / sizeof(fanout_names[0]); i++)
		if (!strcmp(s, fanout_names[i])) {
			*out = (enum ferryd_fanout)i;
			return 0;
		}
	if (!strcmp(s, "rr")) {
		*out = FERRYD_FANOUT_ROUND_ROBIN;
		return 0;
	}
	return -EINVAL;
}

/* ---- RX: the callback ------------------------------------------------------------------------- */

static void tell_failed(struct ferryd_worker *w, struct ferryd_sess_wk *k);

/* A frame a zero-copy client holds: its entry in the batch is this, so the engine keeps the frame. */
static struct ferry_iobuf zc_taken;

/*
 * Hands the frame under *slot to a zero-copy client as it is. Only frames of
 * the queue whose batch runs, while the client holds less than a quarter of
 * the queue's frames and all such clients less than half: a client that
 * does not give frames back gets copies, and the queue never runs dry.
 */
static bool put_frame(struct ferryd_worker *w, struct ferryd_sess_wk *k, struct ferry_iobuf **slot,
		      const union ferry_sockaddr *src)
{
	struct ferryd_xq *q = w->cur_q;
	struct ferry_iobuf *b = *slot;
	unsigned int qi;
	uint32_t fi;

	if (!q)
		return false; /* a datagram of the kernel's path: no frame to share */
	qi = (unsigned int)(q - w->q);
	fi = ferryd_umem_iobuf_frame(&q->umem, b);
	if (fi == UINT32_MAX || k->zc_held[qi] >= q->umem.nframes / 4 || q->zc_held >= q->umem.nframes / 2)
		return false;
	if (!ferryd_sess_rx_put_frame(k, qi, fi,
				      (uint32_t)(b->data + b->lo - (q->umem.area + ((uint64_t)fi << q->umem.frame_shift))),
				      (uint32_t)(b->hi - b->lo), src))
		return false;
	q->zc_held++;
	*slot = &zc_taken;
	return true;
}

/* Gives a frame a zero-copy client returned (or that ferryd takes back) to its queue. */
static void frame_back(struct ferryd_sess_wk *k, unsigned int qi, uint32_t fi)
{
	struct ferryd_worker *w = k->frame_back_ctx;
	struct ferryd_xq *q = &w->q[qi];

	q->zc_held--;
	ferryd_xq_release(q, fi);
}

/*
 * One datagram to one client: as its frame (zero-copy, when the datagram
 * goes to that client alone), copied, or counted where it was dropped (for
 * the worker, and for service ss). true when it was put on the ring.
 */
static inline __attribute__((always_inline)) bool put(struct ferryd_worker *w, struct ferryd_svc_stats *ss,
						      struct ferryd_sess_wk *k, struct ferry_iobuf **slot,
						      const union ferry_sockaddr *src, bool alone)
{
	static const union ferry_sockaddr none;
	const struct ferry_iobuf *b = *slot;
	uint32_t len = (uint32_t)(b->hi - b->lo);

	if (ferry_unlikely(k->dead)) {
		FERRYD_STAT_INC(&w->st, rx_no_client);
		FERRYD_STAT_INC(ss, dropped_no_client);
		return false;
	}
	src = src ? src : &none;
	if (k->nareas && alone && put_frame(w, k, slot, src))
		return true;
	if (ferry_likely(ferryd_sess_rx_put(k, b->data + b->lo, len, src)))
		return true;
	if (len > k->s->slot_size) {
		FERRYD_STAT_INC(&w->st, rx_client_big);
		FERRYD_STAT_INC(ss, dropped_client_big);
	} else {
		FERRYD_STAT_INC(&w->st, rx_client_full);
		FERRYD_STAT_INC(ss, dropped_client_full);
	}
	if (k->dead)
		tell_failed(w, k);
	return false;
}

void ferryd_dispatch_cb(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int n)
{
	const struct ferryd_handler_slot *slot = user;
	struct ferryd_worker *w = ferryd_worker_current();
	const struct ferryd_client_set *set;
	unsigned int id = slot->svc->id, wid;
	struct ferryd_svc_stats *ss;
	uint64_t delivered = 0;

	if (ferry_unlikely(!w || id >= FERRY_MAX_SERVICES))
		return;
	set = &w->dw.t->svc[id];
	wid = w->id;
	ss = &w->svc_st[id];
	if (ferry_unlikely(!set->n)) {
		FERRYD_STAT_ADD(&w->st, rx_no_client, n);
		FERRYD_STAT_ADD(ss, dropped_no_client, n);
		return;
	}
	/* frames zero-copy clients gave back: their queue needs them now, not when the ring is full */
	for (unsigned int c = 0; c < set->n; c++) {
		struct ferryd_sess_wk *k = &set->s[c]->wk[wid];

		if (k->nzc && !ferryd_sess_rx_reap(k))
			tell_failed(w, k);
	}
	switch (set->fanout) {
	case FERRYD_FANOUT_ALL:
		/* several clients, one frame: each gets a copy */
		for (unsigned int c = 0; c < set->n; c++)
			for (unsigned int i = 0; i < n; i++)
				delivered += put(w, ss, &set->s[c]->wk[wid], &bufs[i], srcs ? &srcs[i] : NULL,
						 set->n == 1);
		break;
	case FERRYD_FANOUT_ROUND_ROBIN:
		for (unsigned int i = 0; i < n; i++)
			delivered += put(w, ss, &set->s[w->dw.rr[id]++ % set->n]->wk[wid], &bufs[i],
					 srcs ? &srcs[i] : NULL, true);
		break;
	default:
		for (unsigned int i = 0; i < n; i++) {
			const union ferry_sockaddr *src = srcs ? &srcs[i] : NULL;
			/* one client: every hash picks it */
			uint32_t h = src && set->n > 1 ? ferry_sockaddr_hash(src) : 0;

			delivered += put(w, ss, &set->s[((uint64_t)h * set->n) >> 32]->wk[wid], &bufs[i], src, true);
		}
		break;
	}
	FERRYD_STAT_ADD(ss, delivered, delivered);
	for (unsigned int c = 0; c < set->n; c++)
		ferryd_sess_rx_flush(&set->s[c]->wk[wid]);
}

/* ---- TX: the clients' rings into the send path ------------------------------------------------- */

static void tell_failed(struct ferryd_worker *w, struct ferryd_sess_wk *k)
{
	struct ferryd_msg m = { .kind = FERRYD_MSG_SESSION_FAILED, .ptr = k->s };

	if (k->told)
		return;
	k->told = true;
	if (k->watch) {
		/* nothing more is read from it; a kick pipe left watched would wake us for nothing */
		ferry_reactor_del(w->r, k->watch);
		k->watch = NULL;
	}
	/* one session, one count and one message, however many workers found it broken */
	if (!k->first_to_fail)
		return;
	FERRYD_STAT_INC(&w->st, clients_failed);
	ferryd_worker_tell(w, &m);
}

/* Whether the send path has no room to take more now (after making what room it can). */
static bool congested(struct ferryd_worker *w)
{
	for (unsigned int i = 0; i < w->nq; i++) {
		struct ferryd_xq *q = &w->q[i];

		if (!q->bl_n)
			continue;
		ferryd_xq_flush(q);
		if (q->bl_n)
			return true;
	}
	return ferryd_kpath_backlog(&w->kp) > KPATH_HIGH;
}

static void defer(struct ferryd_worker *w, struct ferryd_sess_wk *k, uint64_t ms)
{
	struct ferryd_dispatch_wk *dw = &w->dw;

	if (!k->tx_queued && dw->npending < FERRYD_MAX_SESSIONS) {
		k->tx_queued = true;
		dw->pending[dw->npending++] = k;
	}
	ferry_timer_arm(dw->timer, ms, 0);
}

/* A turn of one session's TX ring: at most TX_BUDGET datagrams, while the send path has room. */
static void tx_turn(struct ferryd_worker *w, struct ferryd_sess_wk *k)
{
	struct ferry_iobuf views[TX_CHUNK], *bufs[TX_CHUNK];
	union ferry_sockaddr dsts[TX_CHUNK];
	uint32_t slots[TX_CHUNK];
	unsigned int budget = TX_BUDGET;

	for (unsigned int i = 0; i < TX_CHUNK; i++)
		bufs[i] = &views[i];
	while (budget) {
		unsigned int n, sent;
		uint64_t bytes = 0;

		if (congested(w)) {
			FERRYD_STAT_INC(&w->st, client_tx_deferred);
			defer(w, k, TX_RETRY_MS);
			return;
		}
		n = ferryd_sess_tx_take(k, views, dsts, slots, budget < TX_CHUNK ? budget : TX_CHUNK);
		if (!n)
			break;
		for (unsigned int i = 0; i < n; i++)
			bytes += views[i].hi - views[i].lo;
		/* copied or sent before it returns; what it refuses it counts by reason */
		sent = ferryd_tx_send(w, k->s->svc, bufs, dsts, n);
		FERRYD_STAT_ADD(&w->st, client_tx, n);
		FERRYD_STAT_ADD(&k->st, tx_packets, sent);
		FERRYD_STAT_ADD(&k->st, tx_bytes, sent == n ? bytes : 0);
		FERRYD_STAT_ADD(&k->st, tx_dropped, n - sent);
		ferryd_sess_tx_give_back(k, slots, n);
		budget -= n;
	}
	if (k->dead) {
		tell_failed(w, k);
		return;
	}
	/* more than a turn's worth, or more came while we looked: another turn soon; else sleep on the pipe */
	if (!budget || !ferryd_sess_tx_sleep(k))
		defer(w, k, 0);
}

static void on_kick(void *user, uint32_t events)
{
	struct ferryd_sess_wk *k = user;
	struct ferryd_worker *w = ferryd_worker_current();

	ferryd_sess_kick_clear(k);
	if (events & (EPOLLHUP | EPOLLERR)) {
		/* the client closed its end (it died, or detached): the control thread ends the session */
		ferry_reactor_del(w->r, k->watch);
		k->watch = NULL;
	}
	if (!k->dead && !k->tx_queued)
		tx_turn(w, k);
}

static void on_timer(void *user, struct ferry_timer *t)
{
	struct ferryd_worker *w = user;
	struct ferryd_dispatch_wk *dw = &w->dw;
	struct ferryd_sess_wk *run[FERRYD_MAX_SESSIONS];
	unsigned int n = dw->npending;

	(void)t;
	memcpy(run, dw->pending, n * sizeof(run[0]));
	dw->npending = 0;
	for (unsigned int i = 0; i < n; i++)
		run[i]->tx_queued = false;
	for (unsigned int i = 0; i < n; i++)
		if (!run[i]->dead && !run[i]->tx_queued)
			tx_turn(w, run[i]);
}

/* ---- a worker's sessions ------------------------------------------------------------------------ */

int ferryd_dispatch_worker_init(struct ferryd_worker *w)
{
	struct ferryd_dispatch_wk *dw = &w->dw;

	dw->t = ferryd_client_table_new();
	dw->timer = ferry_timer_new(w->r, on_timer, w);
	if (!dw->t || !dw->timer)
		return -ENOMEM;
	return 0;
}

static bool in_table(const struct ferryd_client_table *t, const struct ferryd_session *s)
{
	const struct ferryd_client_set *set = &t->svc[s->svc_id];

	for (unsigned int i = 0; i < set->n; i++)
		if (set->s[i] == s)
			return true;
	return false;
}

/* Every session of t that u lacks: fn on its side of this worker. */
static void each_missing(struct ferryd_worker *w, const struct ferryd_client_table *t,
			 const struct ferryd_client_table *u, void (*fn)(struct ferryd_worker *, struct ferryd_sess_wk *))
{
	for (unsigned int id = 0; t && id < FERRY_MAX_SERVICES; id++)
		for (unsigned int i = 0; i < t->svc[id].n; i++)
			if (!u || !in_table(u, t->svc[id].s[i]))
				fn(w, &t->svc[id].s[i]->wk[w->id]);
}

static void forget(struct ferryd_worker *w, struct ferryd_sess_wk *k)
{
	struct ferryd_dispatch_wk *dw = &w->dw;

	ferryd_sess_zc_reclaim(k); /* the frames it held are its queues' again */
	if (k->watch)
		ferry_reactor_del(w->r, k->watch);
	k->watch = NULL;
	for (unsigned int i = 0; i < dw->npending; i++)
		if (dw->pending[i] == k) {
			dw->pending[i] = dw->pending[--dw->npending];
			break;
		}
	k->tx_queued = false;
}

static void watch(struct ferryd_worker *w, struct ferryd_sess_wk *k)
{
	int err;

	k->frame_back = frame_back;
	k->frame_back_ctx = w;
	err = ferry_reactor_add(w->r, k->kick_rd, EPOLLIN, on_kick, k, &k->watch);
	if (err) {
		k->watch = NULL;
		ferryd_sess_fail(k, "ferryd could not watch its pipe: %s", strerror(-err));
		tell_failed(w, k);
		return;
	}
	/* what it queued before we watched goes now */
	if (!ferryd_sess_tx_sleep(k))
		defer(w, k, 0);
}

void ferryd_dispatch_worker_take(struct ferryd_worker *w, struct ferryd_client_table *t)
{
	struct ferryd_client_table *old = w->dw.t;

	each_missing(w, old, t, forget);
	each_missing(w, t, old, watch);
	w->dw.t = t;
	ferryd_client_table_put(old);
}

void ferryd_dispatch_worker_drain(struct ferryd_worker *w)
{
	struct ferryd_client_table *t = w->dw.t;

	for (unsigned int id = 0; t && id < FERRY_MAX_SERVICES; id++)
		for (unsigned int i = 0; i < t->svc[id].n; i++) {
			struct ferryd_sess_wk *k = &t->svc[id].s[i]->wk[w->id];

			for (unsigned int r = 0; r < DRAIN_ROUNDS && !k->dead; r++) {
				uint32_t before = k->tx_cons;

				k->tx_queued = false;
				tx_turn(w, k);
				if (k->tx_cons == before)
					break;
			}
			/* Nothing is received any more: the frames a client still holds are the
			 * queues' again (what it reads of them does not change, and is gone when
			 * ferryd is), so every frame is accounted for at the end. */
			ferryd_sess_zc_reclaim(k);
		}
}

void ferryd_dispatch_worker_destroy(struct ferryd_worker *w)
{
	struct ferryd_dispatch_wk *dw = &w->dw;

	each_missing(w, dw->t, NULL, forget);
	ferry_timer_free(dw->timer);
	dw->timer = NULL;
	ferryd_client_table_put(dw->t);
	dw->t = NULL;
}
