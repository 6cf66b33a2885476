/* SPDX-License-Identifier: MIT */
/*
 * Loops end the same way every time: an fd closed by the callback on any
 * iteration, a stop between a receive and its callback, a stop with datagrams
 * still queued; and the recvmmsg loop's buffers with non-default before and
 * after, replacements and truncated datagrams.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ferry/udp.h>

#include "../../libclient/src/test_hooks.h"
#include "loops_harness.h"
#include "netns.h"

#define QUEUED 20
#define MAX_READY 3
#define WATCHDOG_MS 2000
#define SEEN_MAX 64

struct probe {
	int fd;
	struct ferry_stop *stop;
	unsigned int want;	     /* fire the stop once this many datagrams were seen */
	unsigned int close_at;	     /* close fd in this callback (1-based); 0: never */
	unsigned int stop_at;	     /* fire the stop in this callback */
	unsigned int hook_stop_at;   /* fire the stop right after this receive (the test hook) */
	unsigned int before_stop_at; /* fire the stop in before, on this datagram */
	unsigned int callbacks, datagrams, hook_calls, before_calls, after_calls, bad, bad_window;
	bool check_lh;		     /* datagrams are lh_payload()s: check each */
	bool replace_first;	     /* batch callbacks keep bufs[0] and put a new buffer in its place */
	struct ferry_iobuf *kept[SEEN_MAX], *repl[SEEN_MAX];
	unsigned int nkept;
	struct ferry_iobuf *after_on[SEEN_MAX];
	uint32_t flags[SEEN_MAX];
	size_t len[SEEN_MAX];
	/* the end */
	int result, end_result, ends;
	struct ferry_iobuf *end_last;
	bool timed_out;
	struct ferry_udp_loop_stats stats;
};

static struct probe *g_probe; /* for before/after, which take no user pointer */

static void seen(struct probe *p, struct ferry_iobuf **bufs, unsigned int count)
{
	p->callbacks++;
	for (unsigned int i = 0; i < count; i++, p->datagrams++) {
		unsigned int seq;

		if (p->datagrams < SEEN_MAX) {
			p->flags[p->datagrams] = bufs[i]->flags;
			p->len[p->datagrams] = ferry_iobuf_length(bufs[i]);
		}
		if (p->check_lh && lh_check(ferry_iobuf_window(bufs[i]), ferry_iobuf_length(bufs[i]), &seq))
			p->bad++;
	}
	if (p->replace_first && p->nkept < SEEN_MAX) {
		p->kept[p->nkept] = bufs[0];
		bufs[0] = p->repl[p->nkept++] = ferry_iobuf_new(FERRY_UDP_DEFAULT_CAPACITY);
	}
	if ((p->want && p->datagrams >= p->want) || (p->stop_at && p->callbacks == p->stop_at))
		ferry_stop_fire(p->stop);
	if (p->close_at && p->callbacks == p->close_at)
		close(p->fd);
}

static void on_recvfrom(void *user, struct ferry_iobuf *buf, const union ferry_sockaddr *src)
{
	(void)src;
	seen(user, &buf, 1);
}

static struct ferry_iobuf *on_recvfrom_rep(void *user, struct ferry_iobuf *buf, const union ferry_sockaddr *src)
{
	(void)src;
	seen(user, &buf, 1);
	return buf;
}

static void on_read(void *user, struct ferry_iobuf *buf)
{
	seen(user, &buf, 1);
}

static struct ferry_iobuf *on_read_rep(void *user, struct ferry_iobuf *buf)
{
	seen(user, &buf, 1);
	return buf;
}

static void on_batch(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int count)
{
	(void)srcs;
	seen(user, bufs, count);
}

static void on_end(void *user, int result, struct ferry_iobuf *last)
{
	struct probe *p = user;

	(void)last;
	p->ends++;
	p->end_result = result;
	p->end_last = last;
}

static void hook_stop(void *arg)
{
	struct probe *p = arg;

	if (++p->hook_calls == p->hook_stop_at)
		ferry_stop_fire(p->stop);
}

/* Runs a loop of kind on p->fd with cfg/opts (stop, stats, on_end and a watchdog added). */
static int run_probe(struct probe *p, enum lh_kind kind, struct ferry_udp_config *cfg,
		     struct ferry_udp_loop_opts *opts, bool use_reactor)
{
	struct ferry_reactor *r = NULL;
	struct lh_watchdog *w;
	int ret;

	g_probe = p;
	p->stop = ferry_stop_new();
	cr_assert(p->stop, "ferry_stop_new");
	cfg->stop = p->stop;
	opts->sz = sizeof(*opts);
	opts->stats = &p->stats;
	opts->on_end = on_end;
	opts->end_user = p;
	opts->create_srcs = kind == LH_MMSG;
	if (p->hook_stop_at) {
		ferry__loop_received_hook = hook_stop;
		ferry__loop_received_arg = p;
	}
	if (use_reactor) {
		r = ferry_reactor_new();
		cr_assert(r, "ferry_reactor_new");
		opts->reactor = r;
	}
	w = lh_watchdog_start(p->stop, WATCHDOG_MS);
	cr_assert(w, "watchdog");
	switch (kind) {
	case LH_RECVFROM:
		ret = ferry_udp_recvfrom_loop(cfg, p->fd, opts, on_recvfrom, p);
		break;
	case LH_RECVFROM_REP:
		ret = ferry_udp_recvfrom_loop_with_buffer_replacement(cfg, p->fd, opts, on_recvfrom_rep, p);
		break;
	case LH_READ:
		ret = ferry_udp_read_loop(cfg, p->fd, opts, on_read, p);
		break;
	case LH_READ_REP:
		ret = ferry_udp_read_loop_with_buffer_replacement(cfg, p->fd, opts, on_read_rep, p);
		break;
	case LH_MMSG:
		ret = ferry_udp_recvmmsg_loop(cfg, p->fd, opts, on_batch, p);
		break;
	default:
		ret = ferry_udp_recvmmsg_no_sources_loop(cfg, p->fd, opts, on_batch, p);
		break;
	}
	if (use_reactor) {
		cr_assert_eq(ret, 0, "%s: registers on the reactor, got %d", lh_kind_name(kind), ret);
		ret = ferry_reactor_run(r);
		cr_assert_eq(ret, 0, "%s: the reactor runs until the loop ends, got %d", lh_kind_name(kind), ret);
		ret = p->end_result;
	}
	p->timed_out = lh_watchdog_end(w);
	ferry_reactor_free(r);
	ferry__loop_received_hook = NULL;
	ferry_stop_free(p->stop);
	p->stop = NULL;
	p->result = ret;
	return ret;
}

static void udp_pair(int *rx, int *tx)
{
	union ferry_sockaddr any;

	lh_loopback(AF_INET, 0, &any);
	*rx = lh_udp_socket(&any);
	*tx = lh_udp_socket(&any);
	cr_assert(*rx >= 0 && *tx >= 0, "loopback UDP sockets: expected fds, got %d %d", *rx, *tx);
}

/* rx with QUEUED datagrams waiting. */
static void queued_pair(int *rx, int *tx)
{
	union ferry_sockaddr dst;

	udp_pair(rx, tx);
	lh_local(*rx, &dst);
	cr_assert_eq(lh_send_burst(*tx, &dst, 0, QUEUED), QUEUED, "queue %d datagrams", QUEUED);
}

static bool is_batch(enum lh_kind kind)
{
	return kind == LH_MMSG || kind == LH_MMSG_NOSRC;
}

/* ---- an fd closed by the callback ends the loop, whichever iteration closed it ---- */

struct close_param {
	int kind;
	unsigned int close_at;
	bool reactor;
	bool pipe;
};

#define CLOSE_PARAMS(kind, r)                                                                      \
	{ kind, 1, r, false }, { kind, 2, r, false }, { kind, MAX_READY, r, false }, { kind, MAX_READY + 1, r, false }

ParameterizedTestParameters(loops_end, fd_closed_on_any_iteration)
{
	static struct close_param params[] = {
		CLOSE_PARAMS(LH_RECVFROM, false),     CLOSE_PARAMS(LH_RECVFROM, true),
		CLOSE_PARAMS(LH_RECVFROM_REP, false), CLOSE_PARAMS(LH_RECVFROM_REP, true),
		CLOSE_PARAMS(LH_READ, false),	      CLOSE_PARAMS(LH_READ, true),
		CLOSE_PARAMS(LH_READ_REP, false),     CLOSE_PARAMS(LH_READ_REP, true),
		CLOSE_PARAMS(LH_MMSG, false),	      CLOSE_PARAMS(LH_MMSG, true),
		CLOSE_PARAMS(LH_MMSG_NOSRC, false),   CLOSE_PARAMS(LH_MMSG_NOSRC, true),
		{ LH_READ, MAX_READY, false, true },  { LH_READ, MAX_READY, true, true },
		{ LH_READ_REP, 2, false, true },      { LH_READ_REP, MAX_READY, true, true },
	};

	return cr_make_param_array(struct close_param, params, sizeof(params) / sizeof(params[0]));
}

/*
 * The callback closes the fd with data still queued, on iteration close_at of
 * a readiness that allows MAX_READY: the loop must end with FERRY_END_CLOSED
 * (not hang until the watchdog's stop), call no callback after the close, and
 * report the end once.
 */
ParameterizedTest(struct close_param *cp, loops_end, fd_closed_on_any_iteration)
{
	struct probe p = { .close_at = cp->close_at };
	struct ferry_udp_loop_opts opts = { .max_count = 2 };
	struct ferry_udp_config cfg;
	const char *name = lh_kind_name(cp->kind);
	int rx, tx = -1, ret;

	if (cp->pipe) {
		int pp[2];
		uint8_t bytes[QUEUED * 8];

		cr_assert_eq(pipe2(pp, O_CLOEXEC), 0, "pipe");
		memset(bytes, 'p', sizeof(bytes));
		cr_assert_eq(write(pp[1], bytes, sizeof(bytes)), (ssize_t)sizeof(bytes), "fill the pipe");
		rx = pp[0];
		tx = pp[1];
	} else {
		queued_pair(&rx, &tx);
	}
	p.fd = rx;
	ferry_udp_config_init(&cfg);
	cfg.max_ready = MAX_READY;
	if (cp->pipe)
		cfg.capacity = 8; /* many reads per readiness */
	ret = run_probe(&p, cp->kind, &cfg, &opts, cp->reactor);
	cr_expect(!p.timed_out, "%s%s, closed on iteration %u of %d: the loop should end by itself, not by the watchdog",
		  name, cp->pipe ? " (pipe)" : "", cp->close_at, MAX_READY);
	cr_expect_eq(ret, FERRY_END_CLOSED, "%s%s, closed on iteration %u: expected FERRY_END_CLOSED (%d), got %d", name,
		     cp->pipe ? " (pipe)" : "", cp->close_at, FERRY_END_CLOSED, ret);
	cr_expect_eq(p.callbacks, cp->close_at, "%s: no callback after the close: expected %u, got %u", name,
		     cp->close_at, p.callbacks);
	cr_expect_eq(p.ends, 1, "%s: on_end once, got %d", name, p.ends);
	close(tx);
}

/* ---- a stop between a receive and its callback: what was received is delivered ---- */

struct stop_param {
	int kind;
	bool reactor;
};

#define STOP_PARAMS(kind) { kind, false }, { kind, true }

ParameterizedTestParameters(loops_end, stop_between_receive_and_callback_delivers)
{
	static struct stop_param params[] = {
		STOP_PARAMS(LH_RECVFROM), STOP_PARAMS(LH_RECVFROM_REP), STOP_PARAMS(LH_READ),
		STOP_PARAMS(LH_READ_REP), STOP_PARAMS(LH_MMSG),		STOP_PARAMS(LH_MMSG_NOSRC),
	};

	return cr_make_param_array(struct stop_param, params, sizeof(params) / sizeof(params[0]));
}

/*
 * The stop fires (as from another thread) right after the third receive
 * returned data, before the loop looked at it: the callback still runs for
 * those datagrams, then the loop ends; nothing is received after, and every
 * datagram is either delivered (and counted) or still queued on the socket.
 */
ParameterizedTest(struct stop_param *sp, loops_end, stop_between_receive_and_callback_delivers)
{
	struct probe p = { .hook_stop_at = 3, .check_lh = true };
	struct ferry_udp_loop_opts opts = { .max_count = 4 };
	struct ferry_udp_config cfg;
	const char *name = lh_kind_name(sp->kind);
	unsigned int left;
	int rx, tx, ret;

	queued_pair(&rx, &tx);
	p.fd = rx;
	ferry_udp_config_init(&cfg);
	cfg.max_ready = 100;
	ret = run_probe(&p, sp->kind, &cfg, &opts, sp->reactor);
	left = lh_queued(rx);
	cr_expect_eq(ret, FERRY_END_STOPPED, "%s: expected FERRY_END_STOPPED, got %d", name, ret);
	cr_expect(!p.timed_out, "%s: ended by the hook's stop, not the watchdog", name);
	cr_expect_eq(p.hook_calls, 3, "%s: no receive after the stop: expected 3, got %u", name, p.hook_calls);
	cr_expect_eq(p.callbacks, 3, "%s: each of the 3 receives reached the callback, got %u callbacks", name,
		     p.callbacks);
	cr_expect_eq(p.datagrams, is_batch(sp->kind) ? 12u : 3u, "%s: datagrams delivered, got %u", name, p.datagrams);
	cr_expect_eq(p.stats.datagrams, p.datagrams, "%s: stats.datagrams (%llu) counts what was delivered (%u)", name,
		     (unsigned long long)p.stats.datagrams, p.datagrams);
	cr_expect_eq(p.datagrams + left, QUEUED, "%s: none lost: %u delivered + %u still queued != %d sent", name,
		     p.datagrams, left, QUEUED);
	cr_expect_eq(p.bad, 0, "%s: %u datagrams delivered with wrong bytes", name, p.bad);
	close(rx);
	close(tx);
}

static void before_that_stops(struct ferry_iobuf *b)
{
	ferry_iobuf_flip_lo(b);
	if (++g_probe->before_calls == g_probe->before_stop_at)
		ferry_stop_fire(g_probe->stop);
}

ParameterizedTestParameters(loops_end, stop_fired_in_before_delivers)
{
	static struct stop_param params[] = {
		STOP_PARAMS(LH_RECVFROM), STOP_PARAMS(LH_RECVFROM_REP), STOP_PARAMS(LH_READ),
		STOP_PARAMS(LH_READ_REP), STOP_PARAMS(LH_MMSG),		STOP_PARAMS(LH_MMSG_NOSRC),
	};

	return cr_make_param_array(struct stop_param, params, sizeof(params) / sizeof(params[0]));
}

/* before runs between the receive and the callback: a stop fired there still lets the callback run. */
ParameterizedTest(struct stop_param *sp, loops_end, stop_fired_in_before_delivers)
{
	struct probe p = { .before_stop_at = 3, .check_lh = true };
	struct ferry_udp_loop_opts opts = { .max_count = 4 };
	struct ferry_udp_config cfg;
	const char *name = lh_kind_name(sp->kind);
	unsigned int left;
	int rx, tx, ret;

	queued_pair(&rx, &tx);
	p.fd = rx;
	ferry_udp_config_init(&cfg);
	cfg.before = before_that_stops;
	ret = run_probe(&p, sp->kind, &cfg, &opts, sp->reactor);
	left = lh_queued(rx);
	cr_expect_eq(ret, FERRY_END_STOPPED, "%s: expected FERRY_END_STOPPED, got %d", name, ret);
	/* batches of 4: the stop fires in the first batch's third before; that batch is delivered whole */
	cr_expect_eq(p.callbacks, is_batch(sp->kind) ? 1u : 3u, "%s: callbacks, got %u", name, p.callbacks);
	cr_expect_eq(p.datagrams, is_batch(sp->kind) ? 4u : 3u, "%s: datagrams delivered, got %u", name, p.datagrams);
	cr_expect_eq(p.before_calls, p.datagrams, "%s: before once per delivered datagram", name);
	cr_expect_eq(p.datagrams + left, QUEUED, "%s: none lost: %u delivered + %u still queued != %d sent", name,
		     p.datagrams, left, QUEUED);
	cr_expect_eq(p.bad, 0, "%s: %u datagrams delivered with wrong bytes", name, p.bad);
	close(rx);
	close(tx);
}

ParameterizedTestParameters(loops_end, stop_in_callback_leaves_the_rest_queued)
{
	static struct stop_param params[] = {
		STOP_PARAMS(LH_RECVFROM), STOP_PARAMS(LH_RECVFROM_REP), STOP_PARAMS(LH_READ),
		STOP_PARAMS(LH_READ_REP), STOP_PARAMS(LH_MMSG),		STOP_PARAMS(LH_MMSG_NOSRC),
	};

	return cr_make_param_array(struct stop_param, params, sizeof(params) / sizeof(params[0]));
}

/* A stop fired in callback 2 with more datagrams queued: no receive after it; the rest stays on the socket. */
ParameterizedTest(struct stop_param *sp, loops_end, stop_in_callback_leaves_the_rest_queued)
{
	struct probe p = { .stop_at = 2, .check_lh = true };
	struct ferry_udp_loop_opts opts = { .max_count = 3 };
	struct ferry_udp_config cfg;
	const char *name = lh_kind_name(sp->kind);
	unsigned int left;
	int rx, tx, ret;

	queued_pair(&rx, &tx);
	p.fd = rx;
	ferry_udp_config_init(&cfg);
	cfg.max_ready = 100;
	ret = run_probe(&p, sp->kind, &cfg, &opts, sp->reactor);
	left = lh_queued(rx);
	cr_expect_eq(ret, FERRY_END_STOPPED, "%s: expected FERRY_END_STOPPED, got %d", name, ret);
	cr_expect_eq(p.callbacks, 2, "%s: no callback after the stop, got %u", name, p.callbacks);
	cr_expect_eq(p.datagrams, is_batch(sp->kind) ? 6u : 2u, "%s: datagrams delivered, got %u", name, p.datagrams);
	cr_expect_eq(p.stats.datagrams, p.datagrams, "%s: stats.datagrams", name);
	cr_expect_eq(left, QUEUED - p.datagrams, "%s: the %u undelivered datagrams stay queued, found %u", name,
		     QUEUED - p.datagrams, left);
	close(rx);
	close(tx);
}

/* ---- truncation: the flag is per datagram and never sticks to a reused buffer ---- */

ParameterizedTestParameters(loops_end, truncated_flag_does_not_stick)
{
	static int kinds[] = { LH_RECVFROM, LH_RECVFROM_REP, LH_READ, LH_READ_REP, LH_MMSG, LH_MMSG_NOSRC };

	return cr_make_param_array(int, kinds, sizeof(kinds) / sizeof(kinds[0]));
}

/*
 * Capacity 100, batches of 2: bufs[0] takes 200 (cut), 150 (cut), 70, 30 and
 * bufs[1] 50, 60, 120 (cut), 40; the one-buffer loops take them all in turn.
 * The last batch has no cut datagram at all, after one that cut bufs[1]: the
 * flag must go even when nothing in the batch was cut.
 */
ParameterizedTest(int *kind, loops_end, truncated_flag_does_not_stick)
{
	static const size_t sizes[] = { 200, 50, 150, 60, 70, 120, 30, 40 };
	enum { N = sizeof(sizes) / sizeof(sizes[0]) };
	struct probe p = { .want = N };
	struct ferry_udp_loop_opts opts = { .max_count = 2 };
	struct ferry_udp_config cfg;
	union ferry_sockaddr dst;
	uint8_t payload[256];
	const char *name = lh_kind_name(*kind);
	unsigned int cut = 0;
	int rx, tx, ret;

	udp_pair(&rx, &tx);
	lh_local(rx, &dst);
	memset(payload, 't', sizeof(payload));
	for (int i = 0; i < N; i++)
		cr_assert_eq(sendto(tx, payload, sizes[i], 0, &dst.sa, ferry_sockaddr_len(&dst)), (ssize_t)sizes[i],
			     "send %zu bytes", sizes[i]);
	p.fd = rx;
	ferry_udp_config_init(&cfg);
	cfg.capacity = 100;
	ret = run_probe(&p, *kind, &cfg, &opts, false);
	cr_expect_eq(ret, FERRY_END_STOPPED, "%s: expected FERRY_END_STOPPED, got %d", name, ret);
	cr_assert_eq(p.datagrams, N, "%s: %d datagrams, got %u", name, N, p.datagrams);
	for (int i = 0; i < N; i++) {
		bool want_cut = sizes[i] > 100;

		cut += want_cut;
		cr_expect_eq(!!(p.flags[i] & FERRY_IOBUF_TRUNCATED), want_cut,
			     "%s: datagram %d of %zu bytes %s be flagged truncated", name, i, sizes[i],
			     want_cut ? "must" : "must not");
		cr_expect_eq(p.len[i], want_cut ? 100 : sizes[i], "%s: window of datagram %d: %zu", name, i, p.len[i]);
	}
	cr_expect_eq(p.stats.truncated, cut, "%s: stats.truncated %llu, expected %u", name,
		     (unsigned long long)p.stats.truncated, cut);
	close(rx);
	close(tx);
}

/* ---- recvmmsg with non-default before and after ---- */

/* before: the default flip, then skip a 4-byte header (the seq), so the callback sees the rest. */
static void before_skip_header(struct ferry_iobuf *b)
{
	ferry_iobuf_flip_lo(b);
	ferry_iobuf_advance(b, 4);
	g_probe->before_calls++;
}

/* after: counts, notes the buffer, then the default reset. */
static void after_counting(struct ferry_iobuf *b)
{
	if (g_probe->after_calls < SEEN_MAX)
		g_probe->after_on[g_probe->after_calls] = b;
	g_probe->after_calls++;
	ferry_iobuf_reset(b);
}

struct mmsg_param {
	bool srcs;
	bool replace;
};

ParameterizedTestParameters(loops_end, mmsg_custom_before_and_after)
{
	static struct mmsg_param params[] = { { false, false }, { true, false }, { false, true }, { true, true } };

	return cr_make_param_array(struct mmsg_param, params, sizeof(params) / sizeof(params[0]));
}

/*
 * Custom before and after on the batch loops (the defaults are done inline):
 * each runs once per datagram, after on the buffer that is in the slot after
 * the callback (a replacement, when the callback replaced one), and the next
 * receive goes into the window after left.
 */
ParameterizedTest(struct mmsg_param *mp, loops_end, mmsg_custom_before_and_after)
{
	struct probe p = { .want = QUEUED, .replace_first = mp->replace };
	struct ferry_udp_loop_opts opts = { .max_count = 3 };
	struct ferry_udp_config cfg;
	const char *name = mp->srcs ? "recvmmsg" : "recvmmsg_no_sources";
	int rx, tx, ret;

	queued_pair(&rx, &tx);
	p.fd = rx;
	ferry_udp_config_init(&cfg);
	cfg.before = before_skip_header;
	cfg.after = after_counting;
	ret = run_probe(&p, mp->srcs ? LH_MMSG : LH_MMSG_NOSRC, &cfg, &opts, false);
	cr_expect_eq(ret, FERRY_END_STOPPED, "%s: expected FERRY_END_STOPPED, got %d", name, ret);
	cr_assert_eq(p.datagrams, QUEUED, "%s: all %d datagrams, got %u", name, QUEUED, p.datagrams);
	cr_expect_eq(p.before_calls, QUEUED, "%s: before once per datagram, got %u", name, p.before_calls);
	cr_expect_eq(p.after_calls, QUEUED, "%s: after once per datagram, got %u", name, p.after_calls);
	for (unsigned int i = 0; i < QUEUED; i++)
		cr_expect_eq(p.len[i], lh_len(i) - 4, "%s: datagram %u seen without its 4-byte header: %zu", name, i,
			     p.len[i]);
	for (unsigned int k = 0; k < p.nkept; k++) {
		unsigned int seq;

		/* the kept buffer still holds what before left: after never ran on it */
		cr_expect_eq(p.kept[k]->lo, p.kept[k]->lo_min + 4, "%s: kept buffer %u untouched by after", name, k);
		ferry_iobuf_rewind(p.kept[k]);
		cr_expect_eq(lh_check(ferry_iobuf_window(p.kept[k]), ferry_iobuf_length(p.kept[k]), &seq), 0,
			     "%s: kept buffer %u holds its datagram", name, k);
		cr_expect_eq(seq, 3 * k, "%s: kept buffer %u is its batch's first", name, k);
		/* batches of 3 (20 were queued): after's first call of batch k is on slot 0's replacement */
		cr_expect_eq(p.after_on[3 * k], p.repl[k], "%s: after ran on the replacement in batch %u", name, k);
		if (k > 0)
			ferry_iobuf_free(p.kept[k]); /* a replacement of ours; kept[0] was the loop's, now ours too */
	}
	if (mp->replace) {
		cr_expect_eq(p.end_last, p.repl[p.nkept - 1], "%s: on_end yields the last replacement", name);
		ferry_iobuf_free(p.kept[0]);
		ferry_iobuf_free(p.end_last);
	}
	close(rx);
	close(tx);
}

/* after NULL: the window the callback left (the datagram) is where the next receive goes, so it is cut to it. */
ParameterizedTestParameters(loops_end, mmsg_null_after_receives_into_the_left_window)
{
	static bool srcs[] = { false, true };

	return cr_make_param_array(bool, srcs, 2);
}

ParameterizedTest(bool *srcs, loops_end, mmsg_null_after_receives_into_the_left_window)
{
	static const size_t sizes[] = { 10, 20, 30, 15 };
	struct probe p = { .want = 4 };
	struct ferry_udp_loop_opts opts = { .max_count = 2 };
	struct ferry_udp_config cfg;
	union ferry_sockaddr dst;
	uint8_t payload[64];
	int rx, tx, ret;

	udp_pair(&rx, &tx);
	lh_local(rx, &dst);
	memset(payload, 'n', sizeof(payload));
	for (int i = 0; i < 4; i++)
		cr_assert_eq(sendto(tx, payload, sizes[i], 0, &dst.sa, ferry_sockaddr_len(&dst)), (ssize_t)sizes[i],
			     "send");
	p.fd = rx;
	ferry_udp_config_init(&cfg);
	cfg.after = NULL;
	ret = run_probe(&p, *srcs ? LH_MMSG : LH_MMSG_NOSRC, &cfg, &opts, false);
	cr_expect_eq(ret, FERRY_END_STOPPED, "expected FERRY_END_STOPPED, got %d", ret);
	cr_assert_eq(p.datagrams, 4, "4 datagrams, got %u", p.datagrams);
	cr_expect_eq(p.len[0], 10, "first batch: 10 bytes, got %zu", p.len[0]);
	cr_expect_eq(p.len[1], 20, "first batch: 20 bytes, got %zu", p.len[1]);
	/* bufs[0]'s window is still the 10 bytes of the first datagram: the 30-byte one is cut to 10 */
	cr_expect_eq(p.len[2], 10, "NULL after: the 30-byte datagram lands in the 10-byte window, got %zu", p.len[2]);
	cr_expect(p.flags[2] & FERRY_IOBUF_TRUNCATED, "and is flagged truncated");
	cr_expect_eq(p.len[3], 15, "bufs[1]'s 20-byte window takes the 15-byte datagram whole, got %zu", p.len[3]);
	cr_expect(!(p.flags[3] & FERRY_IOBUF_TRUNCATED), "not flagged");
	close(rx);
	close(tx);
}
