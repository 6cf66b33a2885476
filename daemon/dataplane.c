/* SPDX-License-Identifier: MIT */
/*
 * The data path's orchestration on the control thread (dataplane.h): what
 * the engines are made of, how a service comes and goes while datagrams
 * flow, and the control side of the workers' mailboxes (their answers,
 * their next-hop questions).
 */
#include <errno.h>
#include <linux/bpf.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <syslog.h>
#include <unistd.h>

#include "dataplane.h"
#include "prog.h"
#include "worker.h"
#include "xsk.h"

#define COMMAND_MS 5000	/* how long the control thread waits for every worker to answer */
#define MAIL_BATCH 64

static const struct ferryd_engine_ops dp_ops;

static struct ferryd_dp *to_dp(struct ferryd_engine *e)
{
	return (struct ferryd_dp *)e;
}

unsigned int ferryd_dp_sockets(const struct ferryd_dp *dp, unsigned int wid)
{
	unsigned int n = 0;

	if (dp->xdp)
		return 1;
	/* socket mode: queues sockets per service, spread over the workers */
	for (unsigned int q = 0; q < dp->cfg.queues; q++)
		n += q % dp->nw == wid;
	return n;
}

/* ---- the workers' mailboxes, control side ------------------------------------------------ */

static void take_mail(struct ferryd_dp *dp, unsigned int i)
{
	struct ferryd_msg m[MAIL_BATCH];
	unsigned int n;
	uint64_t now = 0;

	do {
		n = ferryd_mailbox_recv(&dp->w[i].out, m, MAIL_BATCH);
		for (unsigned int k = 0; k < n; k++) {
			if (m[k].kind == FERRYD_MSG_ACK) {
				/* a late answer (its wait timed out) comes after later ones: it is not news */
				if (m[k].seq <= dp->peer[i].acked)
					continue;
				dp->peer[i].acked = m[k].seq;
				dp->peer[i].err = (int)m[k].arg;
				snprintf(dp->peer[i].why, sizeof(dp->peer[i].why), "%s", (const char *)m[k].data);
			} else if (m[k].kind == FERRYD_MSG_ASK && dp->neigh) {
				union ferry_sockaddr dst;

				memcpy(&dst, m[k].data, sizeof(dst));
				if (!now)
					now = ferryd_now_ms();
				ferryd_neigh_ask(dp->neigh, &dst, now);
			} else if (m[k].kind == FERRYD_MSG_SESSION_FAILED && dp->on_session_failed) {
				dp->on_session_failed(dp->session_user, m[k].ptr);
			}
		}
	} while (n == MAIL_BATCH);
}

struct mail_watch {
	struct ferryd_dp *dp;
	unsigned int i;
};

static void on_mail(void *user, uint32_t events)
{
	struct ferryd_dp *dp = user;

	(void)events;
	for (unsigned int i = 0; i < dp->nw; i++)
		take_mail(dp, i);
}

/* Sends a message to every worker (the same seq); ptr_ref: take a reference to a table or view for each. */
static uint64_t post_all(struct ferryd_dp *dp, uint32_t kind, void *ptr, void (*ref)(void *))
{
	uint64_t seq = ++dp->seq;

	for (unsigned int i = 0; i < dp->nw; i++) {
		struct ferryd_msg m = { .kind = kind, .seq = seq, .ptr = ptr };

		if (ref)
			ref(ptr);
		while (!ferryd_mailbox_send(&dp->w[i].in, &m))
			take_mail(dp, i), usleep(100); /* full: it answers as it catches up */
	}
	return seq;
}

static void ref_link(void *p)
{
	ferryd_link_state_get(p);
}

/*
 * Waits until every worker has answered command seq (bounded): its answer
 * (the first error) or -ETIMEDOUT, with the reason in why. A worker on the
 * control thread answers when the control reactor runs: it runs here.
 */
static int wait_for(struct ferryd_dp *dp, uint64_t seq, char *why, size_t whylen)
{
	uint64_t deadline = ferryd_now_ms() + COMMAND_MS;
	bool inline_worker = dp->nw == 1 && !dp->w[0].threaded;

	for (;;) {
		unsigned int done = 0;
		int err = 0;

		for (unsigned int i = 0; i < dp->nw; i++) {
			take_mail(dp, i);
			if (dp->peer[i].acked >= seq) {
				done++;
				if (dp->peer[i].err && !err) {
					err = dp->peer[i].err;
					if (why)
						snprintf(why, whylen, "worker %u: %s", i,
							 dp->peer[i].why[0] ? dp->peer[i].why : strerror(-err));
				}
			}
		}
		if (done == dp->nw)
			return err;
		if (ferryd_now_ms() >= deadline) {
			if (why)
				snprintf(why, whylen, "%u of %u workers did not answer within %d ms", dp->nw - done,
					 dp->nw, COMMAND_MS);
			ferryd_log(LOG_ERR, "%u of %u workers did not answer within %d ms: stalled?", dp->nw - done,
				   dp->nw, COMMAND_MS);
			return -ETIMEDOUT;
		}
		if (inline_worker)
			ferry_reactor_run_once(dp->r, 5);
		else
			usleep(200);
	}
}

/* wait_for(), with nothing else sent to the workers meanwhile (dataplane.h: waiting). */
static int wait_all(struct ferryd_dp *dp, uint64_t seq, char *why, size_t whylen)
{
	int err;

	dp->waiting++;
	err = wait_for(dp, seq, why, whylen);
	if (--dp->waiting == 0 && dp->link_pending && !dp->drained) {
		/* the interface changed meanwhile: its view now, not waited for */
		dp->link_pending = false;
		post_all(dp, FERRYD_MSG_LINK, (void *)ferryd_iface_state(dp->iface), ref_link);
	}
	return err;
}

/* ---- what the program and the workers are told of the interface ---------------------------- */

/* The largest frame an AF_XDP socket of ours takes: the UMEM frame less the kernel's headroom (copy mode). */
static unsigned int max_rx_frame(const struct ferryd_dp *dp)
{
	return dp->cfg.frame_size - XDP_PACKET_HEADROOM;
}

static int tell_prog(struct ferryd_dp *dp, const struct ferryd_link_state *ls, const struct ferryd_link_state *old)
{
	int err = 0;

	if (!old || memcmp(old->mac, ls->mac, 6))
		err = ferryd_prog_set_config(dp->prog, ls->mac, max_rx_frame(dp));
	if (!old || !ferryd_addrset_equal(&old->addrs, &ls->addrs)) {
		int e2 = ferryd_prog_set_addrs(dp->prog, &ls->addrs);

		err = err ? err : e2;
	}
	return err;
}

static void on_iface_change(void *user, const struct ferryd_link_state *old, const struct ferryd_link_state *now)
{
	struct ferryd_dp *dp = user;

	if (dp->prog)
		tell_prog(dp, now, old);
	if (old->mtu != now->mtu)
		ferryd_log(LOG_INFO, "%s: MTU %u -> %u", now->ifname, old->mtu, now->mtu);
	/* Each worker takes the new view between two batches; not waited for (nor sent inside a wait). */
	if (dp->waiting)
		dp->link_pending = true;
	else
		post_all(dp, FERRYD_MSG_LINK, (void *)now, ref_link);
}

/* ---- services ------------------------------------------------------------------------------- */

static void ref_table(void *p)
{
	ferryd_svc_table_get(p);
}

/* Publishes t (ours now) to the workers, waits for their answers. */
static int publish(struct ferryd_dp *dp, struct ferryd_svc_table *t, char *why, size_t whylen)
{
	uint64_t seq;

	ferryd_svc_table_put(dp->table);
	dp->table = t;
	seq = post_all(dp, FERRYD_MSG_SERVICES, t, ref_table);
	return wait_all(dp, seq, why, whylen);
}

static int dp_remove_service(struct ferryd_engine *e, struct ferryd_service *svc)
{
	struct ferryd_dp *dp = to_dp(e);
	struct ferryd_svc_table *t;
	char why[200] = "";
	int err;

	if (!svc || svc->id >= FERRY_MAX_SERVICES || dp->table->by_id[svc->id].svc != svc)
		return -ENOENT;
	/* Not steered first: then no datagram of it reaches a queue any more. */
	if (dp->prog)
		ferryd_prog_remove_service(dp->prog, svc);
	t = ferryd_svc_table_copy(dp->table);
	if (!t)
		return -ENOMEM;
	ferryd_svc_table_remove(t, svc->id);
	err = publish(dp, t, why, sizeof(why));
	if (err)
		ferryd_log(LOG_ERR, "removing service %s: %s", svc->name, why);
	else
		ferryd_log(LOG_INFO, "service %s removed", svc->name);
	return err;
}

static int dp_add_service(struct ferryd_engine *e, struct ferryd_service *svc, char *why, size_t whylen)
{
	struct ferryd_dp *dp = to_dp(e);
	struct ferryd_svc_table *t = ferryd_svc_table_copy(dp->table);
	int err;

	if (!t) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	err = ferryd_svc_table_add(t, svc, ++dp->svc_gen, why, whylen);
	if (err) {
		ferryd_svc_table_put(t);
		return err;
	}
	/* Its sockets first (the kernel's path ready), then steered by the program. */
	err = publish(dp, t, why, whylen);
	if (!err && dp->prog) {
		err = ferryd_prog_add_service(dp->prog, svc);
		if (err)
			snprintf(why, whylen, "service %s: steering it in the XDP program: %s", svc->name, strerror(-err));
	}
	if (err) {
		t = ferryd_svc_table_copy(dp->table);
		if (t) {
			ferryd_svc_table_remove(t, svc->id);
			publish(dp, t, NULL, 0);
		}
	}
	return err;
}

/* ---- client sessions ------------------------------------------------------------------------- */

static void ref_clients(void *p)
{
	ferryd_client_table_get(p);
}

int ferryd_dp_set_clients(struct ferryd_engine *e, struct ferryd_client_table *t, char *why, size_t whylen)
{
	struct ferryd_dp *dp = to_dp(e);

	return wait_all(dp, post_all(dp, FERRYD_MSG_CLIENTS, t, ref_clients), why, whylen);
}

uint32_t ferryd_dp_prog_id(struct ferryd_engine *e)
{
	return ferryd_prog_id(to_dp(e)->prog);
}

bool ferryd_dp_workers_alive(struct ferryd_engine *e)
{
	struct ferryd_dp *dp = to_dp(e);

	for (unsigned int i = 0; i < dp->nw; i++) {
		take_mail(dp, i);
		if (dp->peer[i].acked < dp->ping_seq)
			return false; /* the last ping is not answered: no new one on top of it */
	}
	if (dp->waiting)
		return true; /* answering the command waited for (bounded): no ping on top of it */
	/* an inline worker answers when the control reactor runs next; a thread, when it runs its loop */
	dp->ping_seq = post_all(dp, FERRYD_MSG_SYNC, NULL, NULL);
	return true;
}

void ferryd_dp_stall_worker(struct ferryd_engine *e, unsigned int wid, unsigned int seconds)
{
	struct ferryd_dp *dp = to_dp(e);
	struct ferryd_msg m = { .kind = FERRYD_MSG_STALL, .arg = seconds };

	if (wid < dp->nw && dp->w[wid].threaded)
		ferryd_mailbox_send(&dp->w[wid].in, &m);
}

unsigned int ferryd_dp_areas(struct ferryd_engine *e, struct ferryd_sess_area *out, unsigned int max)
{
	struct ferryd_dp *dp = to_dp(e);
	unsigned int n = 0;

	for (unsigned int i = 0; dp->xdp && i < dp->nw; i++)
		for (unsigned int k = 0; k < dp->w[i].nq; k++) {
			const struct ferryd_umem *u = &dp->w[i].q[k].umem;

			if (n == max)
				return 0; /* more than a session can name: none */
			out[n++] = (struct ferryd_sess_area){ .fd = u->memfd, .size = u->area_len,
							      .frame_size = u->frame_size, .nframes = u->nframes,
							      .worker = i, .qi = k };
		}
	return n;
}

void ferryd_dp_on_session_failed(struct ferryd_engine *e, void (*cb)(void *user, struct ferryd_session *s),
				 void *user)
{
	struct ferryd_dp *dp = to_dp(e);

	dp->on_session_failed = cb;
	dp->session_user = user;
}

void ferryd_dp_svc_stats(struct ferryd_engine *e, unsigned int id, struct ferryd_svc_stats *out)
{
	struct ferryd_dp *dp = to_dp(e);
	uint64_t *o = (uint64_t *)out;

	memset(out, 0, sizeof(*out));
	for (unsigned int i = 0; id < FERRY_MAX_SERVICES && i < dp->nw; i++) {
		const uint64_t *in = (const uint64_t *)&dp->w[i].svc_st[id];

		for (size_t k = 0; k < sizeof(*out) / sizeof(uint64_t); k++)
			o[k] += ferryd_stat_read(&in[k]);
	}
}

/* ---- the engine's operations -------------------------------------------------------------- */

/* The worker of dp that runs on this thread, or NULL (counted: the call cannot be served here). */
static struct ferryd_worker *here(struct ferryd_dp *dp)
{
	struct ferryd_worker *w = ferryd_worker_current();

	if (w && w->dp == dp)
		return w;
	if (!dp->not_on_worker++)
		ferryd_log(LOG_ERR, "a send or release from a thread that runs none of the engine's workers: refused");
	return NULL;
}

static unsigned int dp_send(struct ferryd_engine *e, const struct ferryd_service *svc, struct ferry_iobuf **bufs,
			    const union ferry_sockaddr *dsts, unsigned int n)
{
	struct ferryd_worker *w = here(to_dp(e));

	return w ? ferryd_tx_send(w, svc, bufs, dsts, n) : 0;
}

static void dp_release(struct ferryd_engine *e, struct ferry_iobuf **bufs, unsigned int n)
{
	struct ferryd_worker *w = here(to_dp(e));

	for (unsigned int i = 0; w && i < n; i++) {
		bool done = false;

		if (!bufs[i])
			continue;
		for (unsigned int k = 0; k < w->nq && !done; k++) {
			struct ferryd_umem *u = &w->q[k].umem;
			uint32_t fi = ferryd_umem_iobuf_frame(u, bufs[i]);

			if (fi == UINT32_MAX)
				continue;
			done = true;
			if (u->state[fi] != FERRYD_FRAME_KEPT && u->state[fi] != FERRYD_FRAME_USER) {
				/* not kept (released twice, or never handed out): leave it alone */
				if (!w->bad_release++)
					ferryd_log(LOG_ERR, "release of a buffer the AF_XDP engine did not hand out as kept (%p)",
						   (void *)bufs[i]);
				continue;
			}
			ferryd_xq_release(&w->q[k], fi);
		}
		if (!done && !ferryd_kpath_release(&w->kp, bufs[i]) && !w->bad_release++)
			ferryd_log(LOG_ERR, "release of a buffer this engine did not hand out (%p): ignored",
				   (void *)bufs[i]);
	}
}

unsigned int ferryd_engine_workers(struct ferryd_engine *e)
{
	return to_dp(e)->nw;
}

/* Worker i's counters, its queues' frames and what the kernel counted on their sockets, added to out. */
static void add_worker_stats(struct ferryd_dp *dp, unsigned int i, struct ferryd_stats *out)
{
	struct ferryd_worker *w = &dp->w[i];

	ferryd_worker_add_stats(w, out);
	for (unsigned int k = 0; k < w->nq; k++) {
		const struct ferryd_xq *q = &w->q[k];
		struct xdp_statistics ks;
		socklen_t len;

		out->frames_total += q->umem.nframes;
		out->frames_free += ferryd_stat_read(&q->pub.free);
		out->frames_kernel += ferryd_stat_read(&q->pub.kernel);
		out->frames_user += ferryd_stat_read(&q->pub.user);
		out->frames_tx += ferryd_stat_read(&q->pub.tx);
		if (!ferryd_xq_kernel_stats(q, &ks, &len))
			continue;
		out->xsk_rx_dropped += ks.rx_dropped;
		out->xsk_rx_invalid_descs += ks.rx_invalid_descs;
		out->xsk_tx_invalid_descs += ks.tx_invalid_descs;
		if (len >= offsetof(struct xdp_statistics, rx_fill_ring_empty_descs) + sizeof(__u64)) {
			out->xsk_rx_ring_full += ks.rx_ring_full;
			out->xsk_rx_fill_ring_empty += ks.rx_fill_ring_empty_descs;
			out->xsk_tx_ring_empty += ks.tx_ring_empty_descs;
		}
	}
}

int ferryd_engine_worker_stats(struct ferryd_engine *e, unsigned int i, struct ferryd_stats *out)
{
	struct ferryd_dp *dp = to_dp(e);

	if (i >= dp->nw)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	add_worker_stats(dp, i, out);
	return 0;
}

static void dp_get_stats(struct ferryd_engine *e, struct ferryd_stats *out)
{
	struct ferryd_dp *dp = to_dp(e);

	memset(out, 0, sizeof(*out));
	for (unsigned int i = 0; i < dp->nw; i++)
		add_worker_stats(dp, i, out);
	out->tx_errors += dp->not_on_worker;
	out->tx_dropped += dp->not_on_worker;
}

/* What the kernel counted on a socket: drops we cannot see from user space. */
static void log_kernel_stats(const struct ferryd_xq *q)
{
	struct xdp_statistics s;
	socklen_t len;

	if (!ferryd_xq_kernel_stats(q, &s, &len))
		return;
	if (s.rx_dropped || s.rx_invalid_descs || s.tx_invalid_descs || s.rx_ring_full || s.rx_fill_ring_empty_descs)
		ferryd_log(LOG_WARNING,
			   "queue %u: kernel AF_XDP counters: rx_dropped %llu rx_invalid %llu tx_invalid %llu "
			   "rx_ring_full %llu fill_ring_empty %llu",
			   q->id, (unsigned long long)s.rx_dropped, (unsigned long long)s.rx_invalid_descs,
			   (unsigned long long)s.tx_invalid_descs, (unsigned long long)s.rx_ring_full,
			   (unsigned long long)s.rx_fill_ring_empty_descs);
}

static void dp_drain(struct ferryd_engine *e)
{
	struct ferryd_dp *dp = to_dp(e);

	if (dp->drained || !dp->ready)
		return;
	dp->drained = true;
	wait_all(dp, post_all(dp, FERRYD_MSG_DRAIN, NULL, NULL), NULL, 0);
	for (unsigned int i = 0; i < dp->nw; i++) {
		for (unsigned int k = 0; k < dp->w[i].nq; k++)
			log_kernel_stats(&dp->w[i].q[k]);
		/* nothing more to say to a worker on this thread, nor to hear from any */
		if (dp->peer[i].out_watch)
			ferry_reactor_del(dp->r, dp->peer[i].out_watch);
		dp->peer[i].out_watch = NULL;
		if (!dp->w[i].threaded && dp->w[i].in_watch) {
			ferry_reactor_del(dp->r, dp->w[i].in_watch);
			dp->w[i].in_watch = NULL;
		}
	}
}

static void dp_free(struct ferryd_engine *e)
{
	struct ferryd_dp *dp = to_dp(e);

	if (!dp)
		return;
	if (dp->ready && !dp->drained)
		dp_drain(e);
	if (dp->subscribed)
		ferryd_iface_unsubscribe(dp->iface, dp);
	for (unsigned int i = 0; i < dp->nw; i++) {
		if (dp->peer && dp->peer[i].out_watch)
			ferry_reactor_del(dp->r, dp->peer[i].out_watch);
		ferryd_worker_destroy(&dp->w[i]);
	}
	free(dp->w);
	free(dp->peer);
	ferryd_prog_detach(dp->prog);
	ferryd_neigh_free(dp->neigh);
	ferryd_nexthops_destroy(&dp->nh);
	ferryd_svc_table_put(dp->table);
	free(dp);
}

static int dp_check_frames(struct ferryd_engine *e)
{
	struct ferryd_dp *dp = to_dp(e);
	int ret = 0;

	for (unsigned int i = 0; i < dp->nw; i++) {
		for (unsigned int k = 0; k < dp->w[i].nq; k++)
			if (ferryd_umem_check(&dp->w[i].q[k].umem, dp->w[i].q[k].id))
				ret = -EUCLEAN;
		if (ferryd_stat_read(&dp->w[i].st.bad_desc)) {
			ferryd_log(LOG_ERR, "worker %u: %llu descriptors from the kernel named frames it did not hold", i,
				   (unsigned long long)ferryd_stat_read(&dp->w[i].st.bad_desc));
			ret = -EUCLEAN;
		}
	}
	return ret;
}

static int dp_xdp_counters(struct ferryd_engine *e, uint64_t *out)
{
	struct ferryd_dp *dp = to_dp(e);

	return dp->prog ? ferryd_prog_counters(dp->prog, out) : -ENOENT;
}

static const struct ferryd_engine_ops dp_ops = {
	.name = "xdp",
	.send = dp_send,
	.release = dp_release,
	.get_stats = dp_get_stats,
	.drain = dp_drain,
	.free = dp_free,
	.check_frames = dp_check_frames,
	.xdp_counters = dp_xdp_counters,
	.add_service = dp_add_service,
	.remove_service = dp_remove_service,
};

static const struct ferryd_engine_ops dp_sock_ops = {
	.name = "socket",
	.send = dp_send,
	.release = dp_release,
	.get_stats = dp_get_stats,
	.drain = dp_drain,
	.free = dp_free,
	.add_service = dp_add_service,
	.remove_service = dp_remove_service,
};

int ferryd_xdp_queue_stats(struct ferryd_engine *e, unsigned int qi, struct ferryd_xdp_queue_stats *out)
{
	struct ferryd_dp *dp = to_dp(e);

	if (!e || e->ops != &dp_ops)
		return -EINVAL;
	for (unsigned int i = 0; i < dp->nw; i++)
		for (unsigned int k = 0; k < dp->w[i].nq; k++) {
			const struct ferryd_xq *q = &dp->w[i].q[k];

			if (q->id != qi)
				continue;
			*out = (struct ferryd_xdp_queue_stats){
				.rx_packets = ferryd_stat_read(&q->rx_packets),
				.rx_batches = ferryd_stat_read(&q->rx_batches),
				.tx_completed = ferryd_stat_read(&q->tx_completed),
				.frames_total = q->umem.nframes,
				.frames_free = (uint32_t)ferryd_stat_read(&q->pub.free),
				.frames_kernel = (uint32_t)ferryd_stat_read(&q->pub.kernel),
				.frames_user = (uint32_t)ferryd_stat_read(&q->pub.user),
				.frames_tx = (uint32_t)ferryd_stat_read(&q->pub.tx),
				.zero_copy = q->zero_copy,
				.worker = i,
			};
			return 0;
		}
	return -ENOENT;
}

/* ---- making one ---------------------------------------------------------------------------- */

/* How many workers: asked for, or one per queue, at most the CPUs we may use. */
static unsigned int worker_count(const struct ferryd_config *cfg)
{
	cpu_set_t set;
	unsigned int n = cfg->queues ? cfg->queues : 1, ncpu = 1;

	if (cfg->workers != FERRYD_WORKERS_AUTO)
		return cfg->workers ? cfg->workers : 1;
	if (!sched_getaffinity(0, sizeof(set), &set))
		ncpu = (unsigned int)CPU_COUNT(&set);
	if (cfg->ncpus && cfg->ncpus < ncpu)
		ncpu = cfg->ncpus;
	return n < ncpu ? n : ncpu ? ncpu : 1;
}

static int dp_new(struct ferry_reactor *r, struct ferryd_iface *iface, const struct ferryd_config *cfg,
		  struct ferryd_service *svcs, unsigned int nsvc, bool xdp, struct ferryd_engine **out, char *why,
		  size_t whylen)
{
	const struct ferryd_link_state *ls;
	struct ferryd_dp *dp;
	unsigned int zc = 0;
	int err;

	*out = NULL;
	if (!r || !iface || !cfg || !out) {
		snprintf(why, whylen, "no reactor, interface watch or configuration");
		return -EINVAL;
	}
	ls = ferryd_iface_state(iface);
	if (xdp && !ls->ifindex) {
		snprintf(why, whylen, "AF_XDP needs an interface");
		return -EINVAL;
	}
	if (xdp && !ls->ethernet) {
		snprintf(why, whylen, "interface %s: not an Ethernet interface", ls->ifname);
		return -EPROTONOSUPPORT;
	}
	if (!cfg->queues || cfg->queues > FERRY_MAX_QUEUES) {
		snprintf(why, whylen, "queues must be 1..%d, not %u", FERRY_MAX_QUEUES, cfg->queues);
		return -EINVAL;
	}
	if (xdp && ((cfg->frame_size != 2048 && cfg->frame_size != 4096) || cfg->frames < 64 || !cfg->batch ||
		    cfg->batch > cfg->frames / 2)) {
		snprintf(why, whylen, "bad UMEM geometry: %u frames of %u bytes, batch %u (frames >= 64, 2048 or 4096 "
			 "bytes, batch <= frames / 2)", cfg->frames, cfg->frame_size, cfg->batch);
		return -EINVAL;
	}
	if (nsvc > FERRY_MAX_SERVICES || (nsvc && !svcs)) {
		snprintf(why, whylen, "at most %d services, not %u", FERRY_MAX_SERVICES, nsvc);
		return -EINVAL;
	}
	dp = calloc(1, sizeof(*dp));
	if (!dp) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	dp->e.ops = xdp ? &dp_ops : &dp_sock_ops;
	dp->xdp = xdp;
	dp->cfg = *cfg;
	if (!dp->cfg.batch)
		dp->cfg.batch = 64;
	dp->r = r;
	dp->iface = iface;
	dp->nw = worker_count(cfg);
	if (xdp && dp->nw > cfg->queues) {
		snprintf(why, whylen, "%u workers for %u queue%s: a worker owns whole queues", dp->nw, cfg->queues,
			 cfg->queues == 1 ? "" : "s");
		err = -EINVAL;
		goto err_free;
	}
	dp->table = ferryd_svc_table_new();
	dp->w = calloc(dp->nw, sizeof(*dp->w));
	dp->peer = calloc(dp->nw, sizeof(*dp->peer));
	if (!dp->table || !dp->w || !dp->peer || ferryd_nexthops_init(&dp->nh, FERRYD_NEIGH_DEFAULT_CAPACITY)) {
		snprintf(why, whylen, "out of memory");
		err = -ENOMEM;
		goto err_free;
	}
	err = ferryd_iface_subscribe(iface, on_iface_change, dp);
	if (err) {
		snprintf(why, whylen, "watching the interface: %s", strerror(-err));
		goto err_free;
	}
	dp->subscribed = true;

	if (xdp) {
		err = ferryd_neigh_new(r, ls->ifindex, 0, &dp->neigh);
		if (err) {
			snprintf(why, whylen, "rtnetlink socket for neighbour lookups: %s", strerror(-err));
			goto err_free;
		}
		ferryd_neigh_set_table(dp->neigh, &dp->nh);
		err = ferryd_bpffs_ensure();
		if (err)
			ferryd_log(LOG_WARNING, "no bpffs at /sys/fs/bpf (%s); libxdp may not manage a dispatcher",
				   strerror(-err));
		err = ferryd_prog_attach(cfg->ifname, cfg->xdp_mode, &dp->prog, why, whylen);
		if (err)
			goto err_free;
		err = tell_prog(dp, ls, NULL);
		if (err) {
			snprintf(why, whylen, "telling the XDP program the interface's facts: %s", strerror(-err));
			goto err_free;
		}
	}

	for (unsigned int i = 0; i < dp->nw; i++) {
		int cpu = cfg->ncpus ? cfg->cpus[i % cfg->ncpus] : -1;

		err = ferryd_worker_init(&dp->w[i], dp, i, dp->nw > 1, cpu, why, whylen);
		if (err)
			goto err_free;
		err = ferry_reactor_add(r, ferryd_mailbox_fd(&dp->w[i].out), EPOLLIN, on_mail, dp, &dp->peer[i].out_watch);
		if (err) {
			dp->peer[i].out_watch = NULL;
			snprintf(why, whylen, "watching worker %u's mailbox: %s", i, strerror(-err));
			goto err_free;
		}
	}
	if (xdp) {
		struct ferryd_xq_config qc = { .ifname = cfg->ifname,
					       .frames = cfg->frames,
					       .frame_size = cfg->frame_size,
					       .batch = dp->cfg.batch,
					       .zero_copy = cfg->zero_copy,
					       .busy_poll = cfg->busy_poll };

		/* queue q belongs to worker q % nw */
		for (unsigned int i = 0; i < dp->nw; i++) {
			struct ferryd_worker *w = &dp->w[i];

			w->q = calloc((cfg->queues + dp->nw - 1) / dp->nw, sizeof(*w->q));
			if (!w->q) {
				snprintf(why, whylen, "out of memory");
				err = -ENOMEM;
				goto err_free;
			}
			for (unsigned int q = i; q < cfg->queues; q += dp->nw) {
				err = ferryd_xq_open(&w->q[w->nq], w, q, &qc, dp->zc_note, sizeof(dp->zc_note), why, whylen);
				if (err)
					goto err_free;
				zc += w->q[w->nq++].zero_copy;
			}
		}
	}
	for (unsigned int i = 0; i < dp->nw; i++) {
		err = ferryd_worker_start(&dp->w[i], why, whylen);
		if (err)
			goto err_free;
	}
	dp->ready = true;
	for (unsigned int i = 0; i < nsvc; i++) {
		err = dp_add_service(&dp->e, &svcs[i], why, whylen);
		if (err)
			goto err_free;
	}

	if (xdp) {
		unsigned int hw_queues = ferryd_iface_rx_queues(cfg->ifname);

		/* Not an error (the kernel socket serves the other queues, nothing is lost),
		 * but their traffic then takes the slow way: say so once, at start. */
		if (hw_queues > cfg->queues)
			ferryd_log(LOG_WARNING,
				   "%s has %u receive queues and only %u %s an AF_XDP socket: datagrams the NIC puts on "
				   "the others reach the services through the kernel socket (rx_via_socket); use --queues %u",
				   cfg->ifname, hw_queues, cfg->queues, cfg->queues == 1 ? "has" : "have", hw_queues);
		snprintf(dp->e.describe, sizeof(dp->e.describe),
			 "AF_XDP on %s, %u queue%s, %u worker%s, %s%s%s%s, %u x %u B frames, fragments by kernel socket; %s",
			 cfg->ifname, cfg->queues, cfg->queues == 1 ? "" : "s", dp->nw, dp->nw == 1 ? "" : "s",
			 zc == cfg->queues ? "zero-copy" : zc ? "partly zero-copy" : "copy mode",
			 dp->zc_note[0] ? " (" : "", dp->zc_note, dp->zc_note[0] ? ")" : "", cfg->frames, cfg->frame_size,
			 ferryd_prog_describe(dp->prog));
	} else {
		snprintf(dp->e.describe, sizeof(dp->e.describe),
			 "socket mode: %u service%s x %u SO_REUSEPORT socket%s, %u worker%s, recvmmsg batch %u, %u-byte "
			 "buffers%s%s",
			 nsvc, nsvc == 1 ? "" : "s", cfg->queues, cfg->queues == 1 ? "" : "s", dp->nw, dp->nw == 1 ? "" : "s",
			 dp->cfg.batch, FERRYD_MAX_UDP_PAYLOAD, cfg->ifname[0] ? ", bound to " : "", cfg->ifname);
	}
	*out = &dp->e;
	return 0;

err_free:
	dp_free(&dp->e);
	return err;
}

int ferryd_xdp_engine_new(struct ferry_reactor *r, struct ferryd_iface *iface, const struct ferryd_config *cfg,
			  struct ferryd_service *svcs, unsigned int nsvc, struct ferryd_engine **out, char *why,
			  size_t whylen)
{
	return dp_new(r, iface, cfg, svcs, nsvc, true, out, why, whylen);
}

int ferryd_sock_engine_new(struct ferry_reactor *r, struct ferryd_iface *iface, const struct ferryd_config *cfg,
			   struct ferryd_service *svcs, unsigned int nsvc, struct ferryd_engine **out, char *why,
			   size_t whylen)
{
	return dp_new(r, iface, cfg, svcs, nsvc, false, out, why, whylen);
}
