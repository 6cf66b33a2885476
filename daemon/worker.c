/* SPDX-License-Identifier: MIT */
/* A worker: its thread, its reactor, its mailbox, its dispatch (worker.h). */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <syslog.h>
#include <unistd.h>

#include "dataplane.h"
#include "prog.h"
#include "worker.h"

#define MAIL_SIZE 1024	/* messages a mailbox holds */
#define MAIL_BATCH 32
#define ASK_AGAIN_MS 100 /* a destination is asked about again after this, if still unknown */
#define DRAIN_MS 1000	/* how long a drain waits for TX completions */

static __thread struct ferryd_worker *current;

struct ferryd_worker *ferryd_worker_current(void)
{
	return current;
}

bool ferryd_worker_tell(struct ferryd_worker *w, const struct ferryd_msg *m)
{
	if (ferryd_mailbox_send(&w->out, m))
		return true;
	FERRYD_STAT_INC(&w->st, mail_full);
	return false;
}

void ferryd_worker_ask(struct ferryd_worker *w, const union ferry_sockaddr *dst, uint64_t now_ms)
{
	uint32_t h = 2166136261u;
	const uint8_t *b = (const uint8_t *)dst;
	struct ferryd_msg m = { .kind = FERRYD_MSG_ASK };
	unsigned int slot;

	for (size_t i = 0; i < sizeof(*dst); i++)
		h = (h ^ b[i]) * 16777619u;
	slot = h % FERRYD_TX_ASKED;
	if (w->tx.asked[slot].hash == h && now_ms < w->tx.asked[slot].at_ms + ASK_AGAIN_MS)
		return; /* asked a moment ago: the answer is on its way */
	w->tx.asked[slot].hash = h;
	w->tx.asked[slot].at_ms = now_ms;
	if (!w->threaded && w->dp->neigh) {
		/* on the control thread itself: asked now (rtnetlink answers within the write) */
		ferryd_neigh_ask(w->dp->neigh, dst, now_ms);
		return;
	}
	memcpy(m.data, dst, sizeof(*dst));
	ferryd_worker_tell(w, &m);
}

void ferryd_worker_deliver(struct ferryd_worker *w, unsigned int id, struct ferry_iobuf **bufs,
			   const union ferry_sockaddr *srcs, unsigned int n)
{
	const struct ferryd_svc_entry *e = &w->svcs->by_id[id];
	struct ferryd_svc_stats *ss = &w->svc_st[id];
	uint64_t bytes = 0;

	for (unsigned int i = 0; i < n; i++)
		bytes += ferry_iobuf_length(bufs[i]);
	FERRYD_STAT_ADD(ss, rx_packets, n);
	FERRYD_STAT_ADD(ss, rx_bytes, bytes);
	if (e->svc && e->svc->cb)
		e->svc->cb(e->svc->user, bufs, srcs, n);
}

void ferryd_worker_add_stats(const struct ferryd_worker *w, struct ferryd_stats *out)
{
	const uint64_t *in = (const uint64_t *)&w->st;
	uint64_t *o = (uint64_t *)out;

	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		o[i] += ferryd_stat_read(&in[i]);
}

/* ---- commands from the control thread ------------------------------------------------- */

static void ack(struct ferryd_worker *w, uint64_t seq, int err, const char *why)
{
	struct ferryd_msg m = { .kind = FERRYD_MSG_ACK, .seq = seq, .arg = (uint32_t)err };

	if (why)
		snprintf((char *)m.data, sizeof(m.data), "%s", why);
	/* an answer must get through: the control thread waits for it and drains our mailbox meanwhile */
	for (int tries = 0; !ferryd_mailbox_send(&w->out, &m) && tries < 1000; tries++)
		usleep(1000);
}

static void closed(void *user, uint64_t seq)
{
	ack(user, seq, 0, NULL);
}

/*
 * A new service table: sockets for the services that are new here, an end
 * for the one that is gone (the control thread removes one at a time, and
 * reuses an id only once its removal is answered); answered once they are.
 */
static void take_services(struct ferryd_worker *w, struct ferryd_svc_table *t, uint64_t seq)
{
	struct ferryd_svc_table *old = w->svcs;
	int gone = -1, err = 0;
	char why[200] = "";

	w->svcs = t;
	for (unsigned int id = 0; id < FERRY_MAX_SERVICES && !err; id++) {
		const struct ferryd_svc_entry *e = &t->by_id[id];

		if (!e->svc && old->by_id[id].svc)
			gone = (int)id;
		else if (e->svc && !ferryd_kpath_has(&w->kp, id))
			err = ferryd_kpath_open(&w->kp, e, w->dp->cfg.ifname, ferryd_dp_sockets(w->dp, w->id), w->id == 0,
						why, sizeof(why));
	}
	ferryd_svc_table_put(old);
	if (err)
		ack(w, seq, err, why);
	else if (gone >= 0)
		ferryd_kpath_close(&w->kp, (unsigned int)gone, closed, w, seq); /* answers when closed */
	else
		ack(w, seq, 0, NULL);
}

static void drain(struct ferryd_worker *w)
{
	uint64_t deadline = ferryd_now_ms() + DRAIN_MS;
	bool pending;

	w->draining = true;
	for (unsigned int i = 0; i < w->nq; i++)
		ferryd_xq_stop(&w->q[i]);
	/* What is already on the RX rings is delivered, not left there. */
	for (unsigned int i = 0; i < w->nq; i++)
		ferryd_xq_drain_rx(&w->q[i]);
	/* What the kernel queued on the service sockets meanwhile is handled now; the
	 * replies it sends by AF_XDP complete below. */
	ferryd_kpath_drain(&w->kp);
	/* what the clients queued to send goes too */
	ferryd_dispatch_worker_drain(w);
	do {
		pending = false;
		for (unsigned int i = 0; i < w->nq; i++) {
			ferryd_xq_flush(&w->q[i]);
			pending |= !ferryd_xq_tx_idle(&w->q[i]);
		}
		if (pending)
			usleep(1000);
	} while (pending && ferryd_now_ms() < deadline);
	for (unsigned int i = 0; i < w->nq; i++)
		if (!ferryd_xq_tx_idle(&w->q[i]))
			ferryd_log(LOG_WARNING, "queue %u: %u sends not completed after %d ms", w->q[i].id,
				   w->q[i].umem.n_tx, DRAIN_MS);
}

static bool handle(struct ferryd_worker *w, const struct ferryd_msg *m)
{
	switch (m->kind) {
	case FERRYD_MSG_SERVICES:
		take_services(w, m->ptr, m->seq);
		break;
	case FERRYD_MSG_LINK:
		ferryd_link_state_put(w->ls);
		w->ls = m->ptr;
		ack(w, m->seq, 0, NULL);
		break;
	case FERRYD_MSG_SYNC:
		ack(w, m->seq, 0, NULL);
		break;
	case FERRYD_MSG_CLIENTS:
		ferryd_dispatch_worker_take(w, m->ptr);
		ack(w, m->seq, 0, NULL);
		break;
	case FERRYD_MSG_DRAIN:
		drain(w);
		ack(w, m->seq, 0, NULL);
		break;
	case FERRYD_MSG_STALL:
		ferryd_log(LOG_WARNING, "worker %u: stalling for %u s (fault injection)", w->id, m->arg);
		sleep(m->arg);
		break;
	case FERRYD_MSG_EXIT:
		return false;
	}
	return true;
}

static void on_mail(void *user, uint32_t events)
{
	struct ferryd_worker *w = user;
	struct ferryd_msg m[MAIL_BATCH];
	unsigned int n;

	(void)events;
	do {
		n = ferryd_mailbox_recv(&w->in, m, MAIL_BATCH);
		for (unsigned int i = 0; i < n; i++)
			if (!handle(w, &m[i]))
				w->exited = true;
	} while (n == MAIL_BATCH);
}

/* ---- the thread ------------------------------------------------------------------------- */

static void *run(void *arg)
{
	struct ferryd_worker *w = arg;
	sigset_t all;

	/* signals are the control thread's */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	current = w;
	if (w->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
		if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set))
			ferryd_log(LOG_WARNING, "worker %u: cannot run on CPU %d only", w->id, w->cpu);
	}
	while (!w->exited)
		if (ferry_reactor_run_once(w->r, -1) < 0)
			break;
	return NULL;
}

int ferryd_worker_init(struct ferryd_worker *w, struct ferryd_dp *dp, unsigned int id, bool threaded, int cpu,
		       char *why, size_t whylen)
{
	int err;

	memset(w, 0, sizeof(*w));
	w->dp = dp;
	w->id = id;
	w->threaded = threaded;
	w->cpu = cpu;
	w->tx.raw4 = w->tx.raw6 = -1;
	w->r = threaded ? ferry_reactor_new() : dp->r;
	if (!w->r) {
		snprintf(why, whylen, "worker %u: a reactor: %s", id, strerror(errno));
		return -errno;
	}
	if ((err = ferryd_mailbox_init(&w->in, MAIL_SIZE)) || (err = ferryd_mailbox_init(&w->out, MAIL_SIZE))) {
		snprintf(why, whylen, "worker %u: mailboxes: %s", id, strerror(-err));
		goto err;
	}
	err = ferry_reactor_add(w->r, ferryd_mailbox_fd(&w->in), EPOLLIN, on_mail, w, &w->in_watch);
	if (err) {
		w->in_watch = NULL;
		snprintf(why, whylen, "worker %u: watching its mailbox: %s", id, strerror(-err));
		goto err;
	}
	w->ls = ferryd_link_state_get(ferryd_iface_state(dp->iface));
	w->svcs = ferryd_svc_table_new();
	if (!w->svcs) {
		err = -ENOMEM;
		snprintf(why, whylen, "out of memory");
		goto err;
	}
	err = ferryd_dispatch_worker_init(w);
	if (err) {
		snprintf(why, whylen, "out of memory");
		goto err;
	}
	ferryd_tx_init(&w->tx, dp->xdp);
	err = ferryd_kpath_init(&w->kp, w, dp->xdp, dp->xdp ? (dp->cfg.batch < 16 ? dp->cfg.batch : 16) : dp->cfg.batch);
	if (err) {
		snprintf(why, whylen, "worker %u: out of memory for receive buffers", id);
		goto err;
	}
	if (!threaded)
		current = w;
	return 0;
err:
	ferryd_worker_destroy(w);
	return err;
}

int ferryd_worker_start(struct ferryd_worker *w, char *why, size_t whylen)
{
	int err;

	for (unsigned int i = 0; i < w->nq; i++) {
		err = ferryd_xq_start(&w->q[i], why, whylen);
		if (err)
			return err;
	}
	if (!w->threaded)
		return 0;
	err = pthread_create(&w->thread, NULL, run, w);
	if (err) {
		snprintf(why, whylen, "worker %u: a thread: %s", w->id, strerror(err));
		return -err;
	}
	w->started = true;
	return 0;
}

void ferryd_worker_destroy(struct ferryd_worker *w)
{
	if (!w->dp)
		return;
	if (w->started) {
		struct ferryd_msg m = { .kind = FERRYD_MSG_EXIT };

		while (!ferryd_mailbox_send(&w->in, &m))
			usleep(1000);
		pthread_join(w->thread, NULL);
		w->started = false;
	}
	for (unsigned int i = 0; i < w->nq; i++)
		ferryd_xq_stop(&w->q[i]);
	if (w->in_watch)
		ferry_reactor_del(w->r, w->in_watch);
	w->in_watch = NULL;
	ferryd_kpath_destroy(&w->kp);
	ferryd_dispatch_worker_destroy(w);
	if (w->threaded && w->r)
		ferry_reactor_free(w->r);
	w->r = NULL;
	for (unsigned int i = 0; i < w->nq; i++)
		ferryd_xq_close(&w->q[i]);
	free(w->q);
	w->q = NULL;
	w->nq = 0;
	ferryd_tx_destroy(&w->tx);
	ferryd_svc_table_put(w->svcs);
	ferryd_link_state_put(w->ls);
	ferryd_mailbox_destroy(&w->in);
	ferryd_mailbox_destroy(&w->out);
	if (current == w)
		current = NULL;
	w->dp = NULL;
}
