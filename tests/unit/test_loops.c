/* SPDX-License-Identifier: MIT */
/* The receive loops of udp.h on loopback, pipes and files; sockaddr and iobuf allocation. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <ferry/udp.h>

#include "loops_harness.h"
#include "netns.h"

#define BURST 200
#define TIMEOUT_MS 5000

/* ---- every loop, every datagram of a burst, IPv4 and IPv6, blocking and on a reactor ---- */

struct burst_param {
	int kind;
	int family;
	bool reactor;
};

#define BURST_PARAMS(kind)                                                                             \
	{ kind, AF_INET, false }, { kind, AF_INET6, false }, { kind, AF_INET, true }, { kind, AF_INET6, true }

ParameterizedTestParameters(loops_burst, loopback)
{
	static struct burst_param params[] = {
		BURST_PARAMS(LH_RECVFROM), BURST_PARAMS(LH_RECVFROM_REP), BURST_PARAMS(LH_READ),
		BURST_PARAMS(LH_READ_REP), BURST_PARAMS(LH_MMSG),	  BURST_PARAMS(LH_MMSG_NOSRC),
	};

	return cr_make_param_array(struct burst_param, params, sizeof(params) / sizeof(params[0]));
}

ParameterizedTest(struct burst_param *p, loops_burst, loopback)
{
	union ferry_sockaddr any, rx_addr;
	struct lh_burst b = { .want = BURST, .check_src = true };
	const char *name = lh_kind_name(p->kind);
	int rx, tx, ret, st;
	pid_t pid;

	lh_loopback(p->family, 0, &any);
	rx = lh_udp_socket(&any);
	tx = lh_udp_socket(&any);
	if ((rx < 0 || tx < 0) && p->family == AF_INET6)
		cr_skip_test("no IPv6 loopback here (%d)", rx < 0 ? rx : tx);
	cr_assert(rx >= 0 && tx >= 0, "loopback sockets: expected fds, got %d %d", rx, tx);
	lh_local(rx, &rx_addr);
	lh_local(tx, &b.src);

	pid = lh_spawn_sender(tx, -1, &rx_addr, BURST);
	cr_assert(pid > 0, "fork of the sender: expected a pid, got %d", (int)pid);
	ret = lh_run_burst(p->kind, rx, &b, p->reactor, TIMEOUT_MS);
	st = lh_reap(pid, TIMEOUT_MS);

	cr_expect_eq(st, 0, "%s: the sender should send all %d datagrams (exit %d)", name, BURST, st);
	cr_expect_eq(ret, FERRY_END_STOPPED, "%s: loop should end by its stop, got %d", name, ret);
	cr_expect(b.ended, "%s: on_end should have been called", name);
	cr_expect(!b.timed_out, "%s: the burst should arrive before the watchdog (%u of %d)", name, b.got, BURST);
	cr_expect_eq(b.got, BURST, "%s: expected all %d datagrams, got %u", name, BURST, b.got);
	cr_expect_eq(b.bad, 0, "%s: %u datagrams had wrong bytes or length", name, b.bad);
	cr_expect_eq(b.dup, 0, "%s: %u datagrams came twice", name, b.dup);
	cr_expect_eq(b.bad_src, 0, "%s: %u datagrams had a wrong source address", name, b.bad_src);
	cr_expect_eq(b.bad_window, 0, "%s: %u windows did not start at lo_min", name, b.bad_window);
	cr_expect_eq(b.stats.datagrams, BURST, "%s: stats.datagrams should be %d, is %llu", name, BURST,
		     (unsigned long long)b.stats.datagrams);
	if (p->kind == LH_MMSG || p->kind == LH_MMSG_NOSRC)
		cr_expect_leq(b.stats.iterations, b.stats.datagrams, "%s: batches never outnumber datagrams", name);
	else
		cr_expect_eq(b.stats.iterations, BURST, "%s: one receive per datagram", name);
	close(rx);
	close(tx);
}

/* ---- the window the callback sees ---- */

struct window_seen {
	size_t lo[4], hi[4], hi_max[4], len[4];
	uint32_t flags[4];
	unsigned int n;
	struct ferry_stop *stop;
	unsigned int want;
};

static void on_window(void *user, struct ferry_iobuf *buf, const union ferry_sockaddr *src)
{
	struct window_seen *w = user;

	(void)src;
	if (w->n < 4) {
		w->lo[w->n] = buf->lo;
		w->hi[w->n] = buf->hi;
		w->hi_max[w->n] = buf->hi_max;
		w->len[w->n] = ferry_iobuf_length(buf);
		w->flags[w->n] = buf->flags;
	}
	if (++w->n >= w->want)
		ferry_stop_fire(w->stop);
}

/* Sends datagrams of the given lengths from tx to rx. */
static void send_sizes(int tx, int rx, const size_t *sizes, unsigned int n)
{
	union ferry_sockaddr dst;
	static uint8_t payload[4096];

	lh_local(rx, &dst);
	memset(payload, 0xab, sizeof(payload));
	for (unsigned int i = 0; i < n; i++)
		cr_assert_eq(sendto(tx, payload, sizes[i], 0, &dst.sa, ferry_sockaddr_len(&dst)), (ssize_t)sizes[i],
			     "send of %zu bytes on loopback", sizes[i]);
}

static void socket_pair_udp(int *rx, int *tx)
{
	union ferry_sockaddr any;

	lh_loopback(AF_INET, 0, &any);
	*rx = lh_udp_socket(&any);
	*tx = lh_udp_socket(&any);
	cr_assert(*rx >= 0 && *tx >= 0, "loopback UDP sockets: expected fds, got %d %d", *rx, *tx);
}

Test(loops_window, null_before_leaves_lo_advanced)
{
	struct window_seen w = { .want = 2 };
	struct ferry_udp_config cfg;
	size_t sizes[] = { 10, 30 };
	int rx, tx, ret;

	socket_pair_udp(&rx, &tx);
	w.stop = ferry_stop_new();
	ferry_udp_config_init(&cfg);
	cfg.before = NULL;
	cfg.stop = w.stop;
	send_sizes(tx, rx, sizes, 2);
	ret = ferry_udp_recvfrom_loop(&cfg, rx, NULL, on_window, &w);
	cr_assert_eq(ret, FERRY_END_STOPPED, "loop should end by its stop, got %d", ret);
	cr_assert_eq(w.n, 2, "two datagrams expected, got %u", w.n);
	for (unsigned int i = 0; i < 2; i++) {
		cr_expect_eq(w.lo[i], sizes[i], "NULL before: lo should have advanced by %zu, is %zu", sizes[i], w.lo[i]);
		cr_expect_eq(w.hi[i], FERRY_UDP_DEFAULT_CAPACITY, "NULL before: hi should be hi_max, is %zu", w.hi[i]);
	}
	ferry_stop_free(w.stop);
	close(rx);
	close(tx);
}

Test(loops_window, null_after_leaves_window_for_next_receive)
{
	struct window_seen w = { .want = 2 };
	struct ferry_udp_config cfg;
	size_t sizes[] = { 10, 30 };
	int rx, tx, ret;

	socket_pair_udp(&rx, &tx);
	w.stop = ferry_stop_new();
	ferry_udp_config_init(&cfg);
	cfg.after = NULL;
	cfg.stop = w.stop;
	send_sizes(tx, rx, sizes, 2);
	ret = ferry_udp_recvfrom_loop(&cfg, rx, NULL, on_window, &w);
	cr_assert_eq(ret, FERRY_END_STOPPED, "loop should end by its stop, got %d", ret);
	cr_assert_eq(w.n, 2, "two datagrams expected, got %u", w.n);
	cr_expect_eq(w.lo[0], 0, "default before: window starts at lo_min");
	cr_expect_eq(w.len[0], 10, "first window is the 10-byte datagram, got %zu", w.len[0]);
	/* no reset: the second receive only had the first window's 10 bytes */
	cr_expect_eq(w.len[1], 10, "NULL after: second receive limited to the old window (10), got %zu", w.len[1]);
	cr_expect(w.flags[1] & FERRY_IOBUF_TRUNCATED, "the cut 30-byte datagram is flagged truncated");
	cr_expect(!(w.flags[0] & FERRY_IOBUF_TRUNCATED), "the whole 10-byte datagram is not flagged");
	ferry_stop_free(w.stop);
	close(rx);
	close(tx);
}

/* ---- max_ready: two busy sockets on one reactor ---- */

#define FAIR_EACH 60
#define FAIR_MAX_READY 4

struct fair {
	char seq[2 * FAIR_EACH + 8];
	unsigned int n;
	struct ferry_stop *stop;
	int ends;
	int results[2];
};

struct fair_loop {
	struct fair *f;
	char id;
};

static void on_fair(void *user, struct ferry_iobuf *buf, const union ferry_sockaddr *src)
{
	struct fair_loop *fl = user;
	struct fair *f = fl->f;

	(void)buf;
	(void)src;
	if (f->n < sizeof(f->seq))
		f->seq[f->n] = fl->id;
	if (++f->n == 2 * FAIR_EACH)
		ferry_stop_fire(f->stop);
}

static void on_fair_end(void *user, int result, struct ferry_iobuf *last)
{
	struct fair_loop *fl = user;

	(void)last;
	fl->f->results[fl->id - 'A'] = result;
	fl->f->ends++;
}

Test(loops_fair, max_ready_interleaves_two_busy_sockets)
{
	struct fair f = { 0 };
	struct fair_loop la = { &f, 'A' }, lb = { &f, 'B' };
	struct ferry_udp_loop_stats sa = { 0 }, sb = { 0 };
	struct ferry_udp_loop_opts oa = { .sz = sizeof(oa) }, ob;
	struct ferry_udp_config cfg;
	struct ferry_reactor *r;
	union ferry_sockaddr da, db;
	int a, b, tx, left_a, left_b;
	unsigned int run = 0, longest = 0;
	uint64_t deadline;

	socket_pair_udp(&a, &tx);
	socket_pair_udp(&b, &tx);
	lh_local(a, &da);
	lh_local(b, &db);
	/* both queues full before the reactor runs: each is always ready until drained */
	cr_assert_eq(lh_send_burst(tx, &da, 0, FAIR_EACH), FAIR_EACH, "burst to A");
	cr_assert_eq(lh_send_burst(tx, &db, 0, FAIR_EACH), FAIR_EACH, "burst to B");

	r = ferry_reactor_new();
	f.stop = ferry_stop_new();
	cr_assert(r && f.stop, "reactor and stop");
	ferry_udp_config_init(&cfg);
	cfg.max_ready = FAIR_MAX_READY;
	cfg.stop = f.stop;
	oa.reactor = r;
	oa.on_end = on_fair_end;
	ob = oa;
	oa.end_user = &la;
	oa.stats = &sa;
	ob.end_user = &lb;
	ob.stats = &sb;
	cr_assert_eq(ferry_udp_recvfrom_loop(&cfg, a, &oa, on_fair, &la), 0, "loop A registers");
	cr_assert_eq(ferry_udp_recvfrom_loop(&cfg, b, &ob, on_fair, &lb), 0, "loop B registers");
	cr_assert_eq(ferry_reactor_watches(r), 4, "two loops: fd and stop watches each");

	deadline = ferry_test_now_ms() + TIMEOUT_MS;
	while (ferry_reactor_watches(r) && ferry_test_now_ms() < deadline)
		ferry_reactor_run_once(r, 100);
	cr_assert_eq(f.ends, 2, "both loops should end, %d did", f.ends);
	cr_expect_eq(f.results[0], FERRY_END_STOPPED, "A ends stopped");
	cr_expect_eq(f.results[1], FERRY_END_STOPPED, "B ends stopped");
	cr_assert_eq(f.n, 2 * FAIR_EACH, "every datagram delivered: expected %d, got %u", 2 * FAIR_EACH, f.n);

	left_a = FAIR_EACH;
	left_b = FAIR_EACH;
	for (unsigned int i = 0; i < f.n; i++) {
		bool other_has_data = f.seq[i] == 'A' ? left_b > 0 : left_a > 0;

		run = i && f.seq[i] == f.seq[i - 1] ? run + 1 : 1;
		if (other_has_data && run > longest)
			longest = run;
		if (f.seq[i] == 'A')
			left_a--;
		else
			left_b--;
	}
	f.seq[f.n] = '\0';
	cr_expect_leq(longest, FAIR_MAX_READY,
		      "no loop may run more than max_ready=%d times in a row while the other has data; "
		      "longest run %u in %s",
		      FAIR_MAX_READY, longest, f.seq);
	cr_expect(memchr(f.seq, 'A', 2 * FAIR_MAX_READY) && memchr(f.seq, 'B', 2 * FAIR_MAX_READY),
		  "both sockets make progress from the start: %.16s", f.seq);
	cr_expect_gt(sa.yields_max_ready, 0, "A yielded at max_ready");
	cr_expect_gt(sb.yields_max_ready, 0, "B yielded at max_ready");
	ferry_reactor_free(r);
	ferry_stop_free(f.stop);
	close(a);
	close(b);
	close(tx);
}

/* ---- stop from another thread and from a signal handler ---- */

#define STOP_AT 5
#define STOP_QUEUED 50

struct stopper {
	struct ferry_stop *stop;
	sem_t go, fired;
	pthread_t thread;
	unsigned int delay_ms;
	volatile unsigned int callbacks;
	volatile unsigned int after_fire; /* callbacks that started after the fire was observed */
	volatile sig_atomic_t fire_seen;
	bool use_signal, wait_go;
};

static struct stopper *g_stopper; /* for the signal handler */

static void *stopper_main(void *arg)
{
	struct stopper *s = arg;

	if (s->wait_go)
		sem_wait(&s->go);
	if (s->delay_ms)
		usleep(s->delay_ms * 1000);
	ferry_stop_fire(s->stop);
	s->fire_seen = 1;
	sem_post(&s->fired);
	return NULL;
}

static void on_alarm(int sig)
{
	(void)sig;
	ferry_stop_fire(g_stopper->stop);
	g_stopper->fire_seen = 1;
}

static void arm_alarm(unsigned int ms)
{
	struct itimerval it = { .it_value = { .tv_sec = 0, .tv_usec = (suseconds_t)ms * 1000 } };

	setitimer(ITIMER_REAL, &it, NULL);
}

/* Makes the fire happen while this callback runs, and waits (bounded) to see it. */
static void fire_now_and_wait(struct stopper *s)
{
	uint64_t end = ferry_test_now_ms() + 2000;

	if (s->use_signal)
		arm_alarm(10);
	else
		sem_post(&s->go);
	while (!s->fire_seen && ferry_test_now_ms() < end)
		usleep(1000);
}

static void stop_count(struct stopper *s)
{
	if (s->fire_seen)
		s->after_fire++;
	if (++s->callbacks == STOP_AT)
		fire_now_and_wait(s);
}

static void on_stop_recvfrom(void *user, struct ferry_iobuf *buf, const union ferry_sockaddr *src)
{
	(void)buf;
	(void)src;
	stop_count(user);
}

static void on_stop_batch(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs,
			  unsigned int count)
{
	(void)bufs;
	(void)srcs;
	(void)count;
	stop_count(user);
}

static void stopper_init(struct stopper *s, bool use_signal, bool wait_go, unsigned int delay_ms)
{
	memset(s, 0, sizeof(*s));
	s->stop = ferry_stop_new();
	cr_assert(s->stop, "ferry_stop_new");
	sem_init(&s->go, 0, 0);
	sem_init(&s->fired, 0, 0);
	s->use_signal = use_signal;
	s->wait_go = wait_go;
	s->delay_ms = delay_ms;
	g_stopper = s;
	if (use_signal) {
		struct sigaction sa = { .sa_handler = on_alarm }; /* no SA_RESTART: epoll_wait sees EINTR */

		sigemptyset(&sa.sa_mask);
		sigaction(SIGALRM, &sa, NULL);
		if (delay_ms)
			arm_alarm(delay_ms);
	} else {
		cr_assert_eq(pthread_create(&s->thread, NULL, stopper_main, s), 0, "stopper thread");
	}
}

static void stopper_fini(struct stopper *s)
{
	if (!s->use_signal) {
		sem_post(&s->go); /* let it go if the loop never asked */
		pthread_join(s->thread, NULL);
	} else {
		arm_alarm(0);
		signal(SIGALRM, SIG_DFL);
	}
	g_stopper = NULL;
	ferry_stop_free(s->stop);
	sem_destroy(&s->go);
	sem_destroy(&s->fired);
}

struct stop_param {
	bool batch;
	bool use_signal;
};

ParameterizedTestParameters(loops_stop, fired_during_callback)
{
	static struct stop_param params[] = { { false, false }, { false, true }, { true, false }, { true, true } };

	return cr_make_param_array(struct stop_param, params, sizeof(params) / sizeof(params[0]));
}

/* Fire while callback STOP_AT runs with more datagrams queued: no callback after it. */
ParameterizedTest(struct stop_param *p, loops_stop, fired_during_callback)
{
	struct ferry_udp_config cfg;
	struct ferry_udp_loop_opts opts = { .sz = sizeof(opts), .max_count = 1 };
	union ferry_sockaddr dst;
	struct stopper s;
	const char *how = p->use_signal ? "signal handler" : "thread";
	int rx, tx, ret;

	socket_pair_udp(&rx, &tx);
	lh_local(rx, &dst);
	cr_assert_eq(lh_send_burst(tx, &dst, 0, STOP_QUEUED), STOP_QUEUED, "queue a burst");
	stopper_init(&s, p->use_signal, true, 0);
	ferry_udp_config_init(&cfg);
	cfg.stop = s.stop;
	cfg.max_ready = 1000; /* the stop must win within one readiness, not by yielding */
	if (p->batch)
		ret = ferry_udp_recvmmsg_no_sources_loop(&cfg, rx, &opts, on_stop_batch, &s);
	else
		ret = ferry_udp_recvfrom_loop(&cfg, rx, NULL, on_stop_recvfrom, &s);
	cr_expect(s.fire_seen, "%s: the fire should have happened", how);
	cr_expect_eq(ret, FERRY_END_STOPPED, "%s: expected FERRY_END_STOPPED, got %d", how, ret);
	cr_expect_eq(s.callbacks, STOP_AT, "%s: no callback after the fire: expected %d, got %u", how, STOP_AT,
		     s.callbacks);
	cr_expect_eq(s.after_fire, 0, "%s: %u callbacks started after the fire", how, s.after_fire);
	stopper_fini(&s);
	close(rx);
	close(tx);
}

ParameterizedTestParameters(loops_stop, fired_while_idle)
{
	static struct stop_param params[] = { { false, false }, { false, true } };

	return cr_make_param_array(struct stop_param, params, sizeof(params) / sizeof(params[0]));
}

/* A loop blocked in epoll_wait with nothing to read wakes and ends. */
ParameterizedTest(struct stop_param *p, loops_stop, fired_while_idle)
{
	struct ferry_udp_config cfg;
	struct stopper s;
	const char *how = p->use_signal ? "signal handler" : "thread";
	uint64_t t0;
	int rx, tx, ret;

	socket_pair_udp(&rx, &tx);
	stopper_init(&s, p->use_signal, false, 30);
	ferry_udp_config_init(&cfg);
	cfg.stop = s.stop;
	t0 = ferry_test_now_ms();
	ret = ferry_udp_recvfrom_loop(&cfg, rx, NULL, on_stop_recvfrom, &s);
	cr_expect_eq(ret, FERRY_END_STOPPED, "%s: expected FERRY_END_STOPPED, got %d", how, ret);
	cr_expect_eq(s.callbacks, 0, "%s: no datagram, no callback (got %u)", how, s.callbacks);
	cr_expect_lt(ferry_test_now_ms() - t0, 2000, "%s: the loop should wake promptly", how);
	stopper_fini(&s);
	close(rx);
	close(tx);
}

Test(loops_stop, fired_before_start_ends_without_callback)
{
	struct ferry_udp_config cfg;
	struct stopper s = { 0 };
	union ferry_sockaddr dst;
	int rx, tx, ret;

	socket_pair_udp(&rx, &tx);
	lh_local(rx, &dst);
	lh_send_burst(tx, &dst, 0, 3);
	s.stop = ferry_stop_new();
	ferry_stop_fire(s.stop);
	ferry_stop_fire(s.stop); /* twice is fine */
	cr_assert(ferry_stop_is_fired(s.stop), "is_fired after fire");
	ferry_udp_config_init(&cfg);
	cfg.stop = s.stop;
	ret = ferry_udp_recvfrom_loop(&cfg, rx, NULL, on_stop_recvfrom, &s);
	cr_expect_eq(ret, FERRY_END_STOPPED, "expected FERRY_END_STOPPED, got %d", ret);
	cr_expect_eq(s.callbacks, 0, "a fired stop allows no callback (got %u)", s.callbacks);
	ferry_stop_free(s.stop);
	close(rx);
	close(tx);
}

/* ---- buffer replacement ---- */

#define KEEP 20

struct keeper {
	struct ferry_iobuf *kept[KEEP + 4];
	unsigned int n;
	struct ferry_iobuf *last_returned;
	struct ferry_iobuf *end_last;
	int end_result;
	bool ended;
	struct ferry_stop *stop;
};

static struct ferry_iobuf *keep_and_replace(struct keeper *k, struct ferry_iobuf *buf)
{
	if (k->n < KEEP + 4)
		k->kept[k->n] = buf;
	if (++k->n == KEEP)
		ferry_stop_fire(k->stop);
	k->last_returned = ferry_iobuf_new(FERRY_UDP_DEFAULT_CAPACITY);
	return k->last_returned;
}

static struct ferry_iobuf *on_keep_recvfrom(void *user, struct ferry_iobuf *buf, const union ferry_sockaddr *src)
{
	(void)src;
	return keep_and_replace(user, buf);
}

static struct ferry_iobuf *on_keep_read(void *user, struct ferry_iobuf *buf)
{
	return keep_and_replace(user, buf);
}

static void on_keep_end(void *user, int result, struct ferry_iobuf *last)
{
	struct keeper *k = user;

	k->ended = true;
	k->end_result = result;
	k->end_last = last;
}

static void check_kept(struct keeper *k)
{
	cr_assert_eq(k->n, KEEP, "expected %d callbacks, got %u", KEEP, k->n);
	for (unsigned int i = 0; i < KEEP; i++) {
		unsigned int seq = ~0u;

		for (unsigned int j = 0; j < i; j++)
			cr_expect_neq(k->kept[i], k->kept[j], "kept buffers %u and %u must be distinct", i, j);
		cr_expect_eq(lh_check(ferry_iobuf_window(k->kept[i]), ferry_iobuf_length(k->kept[i]), &seq), 0,
			     "kept buffer %u keeps its datagram", i);
		cr_expect_eq(seq, i, "kept buffer %u holds datagram %u", i, seq);
	}
	cr_expect(k->ended, "on_end called");
	cr_expect_eq(k->end_result, FERRY_END_STOPPED, "ends stopped");
	cr_expect_eq(k->end_last, k->last_returned, "on_end yields the last buffer the callback returned");
	for (unsigned int i = 0; i < KEEP; i++)
		ferry_iobuf_free(k->kept[i]); /* all ours now, including the loop's first */
	ferry_iobuf_free(k->last_returned);
}

Test(loops_replace, recvfrom_hands_ownership_over)
{
	struct keeper k = { 0 };
	struct ferry_udp_config cfg;
	struct ferry_udp_loop_opts opts = { .sz = sizeof(opts), .on_end = on_keep_end, .end_user = &k };
	union ferry_sockaddr dst;
	int rx, tx, ret;

	socket_pair_udp(&rx, &tx);
	lh_local(rx, &dst);
	cr_assert_eq(lh_send_burst(tx, &dst, 0, KEEP + 5), KEEP + 5, "queue a burst");
	k.stop = ferry_stop_new();
	ferry_udp_config_init(&cfg);
	cfg.stop = k.stop;
	ret = ferry_udp_recvfrom_loop_with_buffer_replacement(&cfg, rx, &opts, on_keep_recvfrom, &k);
	cr_expect_eq(ret, FERRY_END_STOPPED, "expected FERRY_END_STOPPED, got %d", ret);
	check_kept(&k);
	ferry_stop_free(k.stop);
	close(rx);
	close(tx);
}

Test(loops_replace, read_hands_ownership_over)
{
	struct keeper k = { 0 };
	struct ferry_udp_config cfg;
	struct ferry_reactor *r = ferry_reactor_new();
	struct ferry_udp_loop_opts opts = { .sz = sizeof(opts), .on_end = on_keep_end, .end_user = &k, .reactor = r };
	uint8_t buf[256];
	int sv[2], ret;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0, "AF_UNIX datagram pair");
	for (unsigned int i = 0; i < KEEP + 5; i++) {
		size_t len = lh_payload(i, buf);

		cr_assert_eq(write(sv[1], buf, len), (ssize_t)len, "write datagram %u", i);
	}
	k.stop = ferry_stop_new();
	ferry_udp_config_init(&cfg);
	cfg.stop = k.stop;
	ret = ferry_udp_read_loop_with_buffer_replacement(&cfg, sv[0], &opts, on_keep_read, &k);
	cr_assert_eq(ret, 0, "registers on the reactor, got %d", ret);
	ret = ferry_reactor_run(r);
	cr_expect_eq(ret, 0, "reactor runs until the loop ends");
	check_kept(&k);
	ferry_reactor_free(r);
	ferry_stop_free(k.stop);
	close(sv[0]);
	close(sv[1]);
}

Test(loops_replace, caller_init_stays_callers)
{
	struct keeper k = { 0 };
	struct ferry_udp_config cfg;
	struct ferry_udp_loop_opts opts = { .sz = sizeof(opts), .on_end = on_keep_end, .end_user = &k };
	struct ferry_iobuf *init = ferry_iobuf_new(512);
	struct window_seen w = { .want = 3 };
	union ferry_sockaddr dst;
	int rx, tx, ret;

	socket_pair_udp(&rx, &tx);
	lh_local(rx, &dst);
	lh_send_burst(tx, &dst, 0, 3);
	w.stop = ferry_stop_new();
	ferry_udp_config_init(&cfg);
	cfg.stop = w.stop;
	cfg.init = init;
	ret = ferry_udp_recvfrom_loop(&cfg, rx, &opts, on_window, &w);
	cr_expect_eq(ret, FERRY_END_STOPPED, "expected FERRY_END_STOPPED, got %d", ret);
	cr_expect_eq(w.n, 3, "three datagrams, got %u", w.n);
	cr_expect_eq(k.end_last, init, "on_end yields the caller's init");
	/* still valid (ASan would see a use after free), still the caller's to free */
	cr_expect_eq(ferry_iobuf_capacity(init), 512, "init untouched in size");
	ferry_iobuf_free(init);
	ferry_stop_free(w.stop);
	close(rx);
	close(tx);
}

/* The batch callback takes bufs[0] of every batch and puts a fresh buffer in its place. */
struct batch_keeper {
	struct ferry_iobuf *kept[64];
	unsigned int nkept, datagrams, batches, max_batch;
	struct ferry_iobuf **given; /* caller's bufs when given */
	unsigned int ngiven, foreign;
	bool replace, srcs_ok;
	union ferry_sockaddr src;
	struct ferry_stop *stop;
	unsigned int want;
};

static void on_batch_keep(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs,
			  unsigned int count)
{
	struct batch_keeper *k = user;

	k->batches++;
	if (count > k->max_batch)
		k->max_batch = count;
	for (unsigned int i = 0; i < count; i++) {
		bool known = !k->given;

		for (unsigned int j = 0; k->given && j < k->ngiven; j++)
			known |= bufs[i] == k->given[j];
		if (!known)
			k->foreign++;
		if (srcs && !ferry_sockaddr_equal(&srcs[i], &k->src))
			k->srcs_ok = false;
	}
	if (k->replace && k->nkept < 64) {
		k->kept[k->nkept++] = bufs[0];
		bufs[0] = ferry_iobuf_new(FERRY_UDP_DEFAULT_CAPACITY);
	}
	k->datagrams += count;
	if (k->datagrams >= k->want)
		ferry_stop_fire(k->stop);
}

static int run_batch(struct batch_keeper *k, struct ferry_udp_loop_opts *opts, unsigned int burst, bool srcs)
{
	struct ferry_udp_config cfg;
	union ferry_sockaddr dst;
	int rx, tx, ret;

	socket_pair_udp(&rx, &tx);
	lh_local(rx, &dst);
	lh_local(tx, &k->src);
	cr_assert_eq(lh_send_burst(tx, &dst, 0, burst), burst, "queue a burst of %u", burst);
	k->stop = ferry_stop_new();
	k->want = burst;
	k->srcs_ok = true;
	ferry_udp_config_init(&cfg);
	cfg.stop = k->stop;
	if (srcs) {
		opts->create_srcs = true;
		ret = ferry_udp_recvmmsg_loop(&cfg, rx, opts, on_batch_keep, k);
	} else {
		ret = ferry_udp_recvmmsg_no_sources_loop(&cfg, rx, opts, on_batch_keep, k);
	}
	ferry_stop_free(k->stop);
	close(rx);
	close(tx);
	return ret;
}

Test(loops_mmsg, default_max_count_and_create_srcs)
{
	struct batch_keeper k = { 0 };
	struct ferry_udp_loop_stats st = { 0 };
	struct ferry_udp_loop_opts opts = { .sz = sizeof(opts), .stats = &st };
	int ret = run_batch(&k, &opts, 100, true);

	cr_expect_eq(ret, FERRY_END_STOPPED, "expected FERRY_END_STOPPED, got %d", ret);
	cr_expect_eq(k.datagrams, 100, "all 100 datagrams, got %u", k.datagrams);
	cr_expect_eq(k.max_batch, 65536 / FERRY_UDP_DEFAULT_CAPACITY,
		     "default max_count is 65536/1472 = 44: a queued burst fills it, got %u", k.max_batch);
	cr_expect(k.srcs_ok, "every srcs[i] is the sender");
	cr_expect_eq(st.iterations, k.batches, "stats.iterations counts batches (%llu vs %u)",
		     (unsigned long long)st.iterations, k.batches);
	cr_expect_eq(st.datagrams, 100, "stats.datagrams");
}

Test(loops_mmsg, max_count_bounds_batches)
{
	struct batch_keeper k = { 0 };
	struct ferry_udp_loop_stats st = { 0 };
	struct ferry_udp_loop_opts opts = { .sz = sizeof(opts), .stats = &st, .max_count = 5 };
	int ret = run_batch(&k, &opts, 60, false);

	cr_expect_eq(ret, FERRY_END_STOPPED, "expected FERRY_END_STOPPED, got %d", ret);
	cr_expect_eq(k.datagrams, 60, "all 60 datagrams, got %u", k.datagrams);
	cr_expect_eq(k.max_batch, 5, "batches fill up to max_count=5 and never exceed it, got %u", k.max_batch);
	cr_expect_geq(st.iterations, 12, "60 datagrams need at least 12 batches of 5, got %llu",
		      (unsigned long long)st.iterations);
}

Test(loops_mmsg, caller_bufs_used_and_kept)
{
	struct ferry_iobuf *bufs[8], *orig[8];
	struct batch_keeper k = { 0 };
	struct ferry_udp_loop_opts opts = { .sz = sizeof(opts), .max_count = 8, .bufs = bufs };
	int ret;

	for (int i = 0; i < 8; i++)
		orig[i] = bufs[i] = ferry_iobuf_new(300);
	k.given = orig;
	k.ngiven = 8;
	ret = run_batch(&k, &opts, 40, true);
	cr_expect_eq(ret, FERRY_END_STOPPED, "expected FERRY_END_STOPPED, got %d", ret);
	cr_expect_eq(k.datagrams, 40, "all 40 datagrams, got %u", k.datagrams);
	cr_expect_eq(k.foreign, 0, "every datagram arrived in one of the caller's buffers (%u did not)", k.foreign);
	cr_expect_leq(k.max_batch, 8, "max_count=8 respected, got %u", k.max_batch);
	for (int i = 0; i < 8; i++) {
		cr_expect_eq(bufs[i], orig[i], "the caller's array still holds its buffers");
		ferry_iobuf_free(bufs[i]); /* still ours: ASan would flag a double free */
	}
}

Test(loops_mmsg, callback_replaces_entries)
{
	struct batch_keeper k = { .replace = true };
	struct keeper end = { 0 };
	struct ferry_udp_loop_opts opts = { .sz = sizeof(opts), .max_count = 4, .on_end = on_keep_end, .end_user = &end };
	unsigned int total = 0;
	int ret = run_batch(&k, &opts, 32, false);

	cr_expect_eq(ret, FERRY_END_STOPPED, "expected FERRY_END_STOPPED, got %d", ret);
	cr_expect_eq(k.datagrams, 32, "all 32 datagrams, got %u", k.datagrams);
	cr_assert_eq(k.nkept, k.batches, "one buffer kept per batch");
	for (unsigned int i = 0; i < k.nkept; i++) {
		unsigned int seq;

		for (unsigned int j = 0; j < i; j++)
			cr_expect_neq(k.kept[i], k.kept[j], "kept buffers are distinct");
		cr_expect_eq(lh_check(ferry_iobuf_window(k.kept[i]), ferry_iobuf_length(k.kept[i]), &seq), 0,
			     "kept buffer %u keeps its datagram", i);
		cr_expect_eq(seq, total, "kept buffer %u is the first of its batch: %u, got %u", i, total, seq);
		total += 4;
		ferry_iobuf_free(k.kept[i]);
	}
	/*
	 * The last replacement is still bufs[0] when the loop ends: on_end yields
	 * it and, not being the loop's, it is ours to free (LSan checks for a leak,
	 * ASan for a double free). The loop frees only its own clones in slots 1..3.
	 */
	cr_assert(end.ended && end.end_last, "on_end yields the last bufs[0]");
	for (unsigned int i = 0; i < k.nkept; i++)
		cr_expect_neq(end.end_last, k.kept[i], "the last buffer is the fresh replacement, not a kept one");
	ferry_iobuf_free(end.end_last);
}

/* ---- truncation ---- */

struct trunc_seen {
	uint32_t flags[8];
	size_t len[8];
	unsigned int n;
	struct ferry_stop *stop;
	unsigned int want;
};

static void on_trunc_batch(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs,
			   unsigned int count)
{
	struct trunc_seen *t = user;

	(void)srcs;
	for (unsigned int i = 0; i < count && t->n < 8; i++, t->n++) {
		t->flags[t->n] = bufs[i]->flags;
		t->len[t->n] = ferry_iobuf_length(bufs[i]);
	}
	if (t->n >= t->want)
		ferry_stop_fire(t->stop);
}

static void on_trunc_one(void *user, struct ferry_iobuf *buf, const union ferry_sockaddr *src)
{
	(void)src;
	on_trunc_batch(user, &buf, NULL, 1);
}

static void on_trunc_read(void *user, struct ferry_iobuf *buf)
{
	on_trunc_batch(user, &buf, NULL, 1);
}

ParameterizedTestParameters(loops_trunc, oversized_is_flagged_and_counted)
{
	static int kinds[] = { LH_RECVFROM, LH_READ, LH_MMSG_NOSRC };

	return cr_make_param_array(int, kinds, sizeof(kinds) / sizeof(kinds[0]));
}

ParameterizedTest(int *kind, loops_trunc, oversized_is_flagged_and_counted)
{
	struct trunc_seen t = { .want = 4 };
	struct ferry_udp_loop_stats st = { 0 };
	struct ferry_udp_loop_opts opts = { .sz = sizeof(opts), .stats = &st, .max_count = 2 };
	struct ferry_udp_config cfg;
	size_t sizes[] = { 50, 200, 60, 101 };
	int rx, tx, ret;

	socket_pair_udp(&rx, &tx);
	send_sizes(tx, rx, sizes, 4);
	t.stop = ferry_stop_new();
	ferry_udp_config_init(&cfg);
	cfg.capacity = 100;
	cfg.stop = t.stop;
	if (*kind == LH_RECVFROM)
		ret = ferry_udp_recvfrom_loop(&cfg, rx, &opts, on_trunc_one, &t);
	else if (*kind == LH_READ)
		ret = ferry_udp_read_loop(&cfg, rx, &opts, on_trunc_read, &t);
	else
		ret = ferry_udp_recvmmsg_no_sources_loop(&cfg, rx, &opts, on_trunc_batch, &t);
	cr_expect_eq(ret, FERRY_END_STOPPED, "%s: expected FERRY_END_STOPPED, got %d", lh_kind_name(*kind), ret);
	cr_assert_eq(t.n, 4, "four datagrams, got %u", t.n);
	for (int i = 0; i < 4; i++) {
		bool cut = sizes[i] > 100;

		cr_expect_eq(!!(t.flags[i] & FERRY_IOBUF_TRUNCATED), cut, "%s: datagram of %zu bytes %s flagged",
			     lh_kind_name(*kind), sizes[i], cut ? "must be" : "must not be");
		cr_expect_eq(t.len[i], cut ? 100 : sizes[i], "%s: window of datagram %d", lh_kind_name(*kind), i);
	}
	cr_expect_eq(st.truncated, 2, "%s: stats.truncated counts the two cut datagrams, got %llu",
		     lh_kind_name(*kind), (unsigned long long)st.truncated);
	ferry_stop_free(t.stop);
	close(rx);
	close(tx);
}

/* ---- read_loop on streams: end of stream, partial records kept by compact ---- */

#define RECORDS 100

struct records {
	unsigned int next; /* next record number expected */
	unsigned int bad, callbacks, tails;
};

/* Record k: 2-byte big-endian length, then that many bytes (uint8_t)(k + i); length 1 + k % 40. */
static size_t record_bytes(unsigned int k, uint8_t *out)
{
	size_t len = 1 + k % 40;

	out[0] = (uint8_t)(len >> 8);
	out[1] = (uint8_t)len;
	for (size_t i = 0; i < len; i++)
		out[2 + i] = (uint8_t)(k + i);
	return 2 + len;
}

static void on_records(void *user, struct ferry_iobuf *buf)
{
	struct records *r = user;
	uint16_t len;

	r->callbacks++;
	while (ferry_iobuf_peek_be16(buf, 0, &len) == 0 && ferry_iobuf_length(buf) >= 2u + len) {
		ferry_iobuf_advance(buf, 2);
		if (len != 1 + r->next % 40)
			r->bad++;
		for (size_t i = 0; i < len; i++)
			if (ferry_iobuf_unsafe_peek_u8(buf, i) != (uint8_t)(r->next + i))
				r->bad++;
		ferry_iobuf_advance(buf, len);
		r->next++;
	}
	if (!ferry_iobuf_is_empty(buf))
		r->tails++; /* a partial record stays for the next read */
}

struct writer {
	int fd;
	pthread_t thread;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint8_t stream[RECORDS * 42];
	size_t n = 0;

	for (unsigned int k = 0; k < RECORDS; k++)
		n += record_bytes(k, stream + n);
	/* 7-byte writes with pauses: records are split across reads */
	for (size_t off = 0; off < n; off += 7) {
		size_t len = n - off < 7 ? n - off : 7;

		if (write(w->fd, stream + off, len) != (ssize_t)len)
			break;
		if ((off / 7) % 8 == 0)
			usleep(200);
	}
	close(w->fd);
	return NULL;
}

Test(loops_read, pipe_records_compact_and_end_of_stream)
{
	struct records rec = { 0 };
	struct ferry_udp_config cfg;
	struct ferry_udp_loop_stats st = { 0 };
	struct ferry_udp_loop_opts opts = { .sz = sizeof(opts), .stats = &st };
	struct writer w;
	struct ferry_stop *stop = ferry_stop_new();
	struct lh_watchdog *wd;
	int p[2], ret;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0, "pipe");
	w.fd = p[1];
	cr_assert_eq(pthread_create(&w.thread, NULL, writer_main, &w), 0, "writer thread");
	ferry_udp_config_init(&cfg);
	cfg.capacity = 64;
	cfg.after = ferry_iobuf_compact;
	cfg.stop = stop;
	wd = lh_watchdog_start(stop, TIMEOUT_MS);
	ret = ferry_udp_read_loop(&cfg, p[0], &opts, on_records, &rec);
	cr_expect(!lh_watchdog_end(wd), "the stream should end before the watchdog");
	pthread_join(w.thread, NULL);
	cr_expect_eq(ret, FERRY_END_CLOSED, "end of stream ends the loop with FERRY_END_CLOSED, got %d", ret);
	cr_expect_eq(rec.next, RECORDS, "every record consumed whole: expected %d, got %u", RECORDS, rec.next);
	cr_expect_eq(rec.bad, 0, "%u wrong record bytes", rec.bad);
	cr_expect_gt(rec.tails, 0, "some reads ended mid-record (the compact path was exercised)");
	cr_expect_eq(st.datagrams, rec.callbacks, "stats count one per read");
	ferry_stop_free(stop);
	close(p[0]);
}

Test(loops_read, regular_file_reads_to_end)
{
	struct records rec = { 0 };
	struct ferry_udp_config cfg;
	uint8_t rb[64];
	char path[] = "/tmp/ferry-loops-XXXXXX";
	int fd = mkstemp(path), ret;

	cr_assert(fd >= 0, "temporary file");
	unlink(path);
	for (unsigned int k = 0; k < RECORDS; k++) {
		size_t n = record_bytes(k, rb);

		cr_assert_eq(write(fd, rb, n), (ssize_t)n, "write record");
	}
	lseek(fd, 0, SEEK_SET);
	ferry_udp_config_init(&cfg);
	cfg.capacity = 50;
	cfg.after = ferry_iobuf_compact;
	ret = ferry_udp_read_loop(&cfg, fd, NULL, on_records, &rec);
	cr_expect_eq(ret, FERRY_END_CLOSED, "a file ends with FERRY_END_CLOSED, got %d", ret);
	cr_expect_eq(rec.next, RECORDS, "every record: expected %d, got %u", RECORDS, rec.next);
	cr_expect_eq(rec.bad, 0, "%u wrong record bytes", rec.bad);
	close(fd);
}

/* ---- errors ---- */

static int end_calls;

static void on_end_count(void *user, int result, struct ferry_iobuf *last)
{
	(void)user;
	(void)result;
	(void)last;
	end_calls++;
}

static void on_nothing(void *user, struct ferry_iobuf *buf, const union ferry_sockaddr *src)
{
	(void)user;
	(void)buf;
	(void)src;
}

static void on_nothing_batch(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs,
			     unsigned int count)
{
	(void)user;
	(void)bufs;
	(void)srcs;
	(void)count;
}

static void on_nothing_read(void *user, struct ferry_iobuf *buf)
{
	(void)user;
	(void)buf;
}

Test(loops_err, bad_fd_is_ebadf)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	close(fd); /* now a number no file holds */
	cr_expect_eq(ferry_udp_recvfrom_loop(NULL, fd, NULL, on_nothing, NULL), -EBADF, "recvfrom: bad fd");
	cr_expect_eq(ferry_udp_read_loop(NULL, fd, NULL, on_nothing_read, NULL), -EBADF, "read: bad fd");
	cr_expect_eq(ferry_udp_recvmmsg_loop(NULL, fd, NULL, on_nothing_batch, NULL), -EBADF, "recvmmsg: bad fd");
	cr_expect_eq(ferry_udp_recvfrom_loop(NULL, -1, NULL, on_nothing, NULL), -EBADF, "recvfrom: fd -1");
}

Test(loops_err, reactor_mode_setup_errors_never_call_on_end)
{
	struct ferry_reactor *r = ferry_reactor_new();
	struct ferry_udp_loop_opts opts = { .sz = sizeof(opts), .reactor = r, .on_end = on_end_count };
	struct ferry_udp_config cfg;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC), sv[2], p[2], ret;

	close(fd);
	end_calls = 0;
	ret = ferry_udp_recvfrom_loop(NULL, fd, &opts, on_nothing, NULL);
	cr_expect_eq(ret, -EBADF, "bad fd: -EBADF, got %d", ret);

	cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0, "AF_UNIX pair");
	ret = ferry_udp_recvfrom_loop(NULL, sv[0], &opts, on_nothing, NULL);
	cr_expect_eq(ret, -EAFNOSUPPORT, "AF_UNIX datagram socket in recvfrom: -EAFNOSUPPORT, got %d", ret);
	opts.create_srcs = true;
	ret = ferry_udp_recvmmsg_loop(NULL, sv[0], &opts, on_nothing_batch, NULL);
	cr_expect_eq(ret, -EAFNOSUPPORT, "AF_UNIX with create_srcs: -EAFNOSUPPORT, got %d", ret);
	opts.create_srcs = false;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0, "pipe");
	ret = ferry_udp_recvfrom_loop(NULL, p[0], &opts, on_nothing, NULL);
	cr_expect_eq(ret, -ENOTSOCK, "recvfrom on a pipe: -ENOTSOCK, got %d", ret);
	ret = ferry_udp_recvfrom_loop(NULL, p[0], &opts, NULL, NULL);
	cr_expect_eq(ret, -EINVAL, "NULL callback: -EINVAL, got %d", ret);
	ferry_udp_config_init(&cfg);
	cfg.sz = 2;
	ret = ferry_udp_read_loop(&cfg, p[0], &opts, on_nothing_read, NULL);
	cr_expect_eq(ret, -EINVAL, "config.sz too small: -EINVAL, got %d", ret);
	{
		struct {
			struct ferry_udp_loop_opts o;
			uint64_t future;
		} big = { .o = opts, .future = 1 };

		big.o.sz = sizeof(big);
		ret = ferry_udp_read_loop(NULL, p[0], &big.o, on_nothing_read, NULL);
		cr_expect_eq(ret, -EINVAL, "unknown non-zero option bytes: -EINVAL, got %d", ret);
	}
	cr_expect_eq(end_calls, 0, "on_end must never run after a setup error (ran %d times)", end_calls);
	cr_expect_eq(ferry_reactor_watches(r), 0, "nothing registered after setup errors");
	cr_expect_eq(ferry_reactor_run_once(r, 0), 0, "and nothing to dispatch");
	cr_expect_eq(end_calls, 0, "still no on_end");

	/* the AF_UNIX pair is fine for read and for recvmmsg without sources */
	ret = ferry_udp_read_loop(NULL, sv[0], &opts, on_nothing_read, NULL);
	cr_expect_eq(ret, 0, "read loop on AF_UNIX datagrams registers, got %d", ret);
	/* freed with the loop still on it: the loop is dropped without on_end (LSan checks nothing leaks) */
	ferry_reactor_free(r);
	cr_expect_eq(end_calls, 0, "freeing the reactor does not call on_end");
	close(sv[0]);
	close(sv[1]);
	close(p[0]);
	close(p[1]);
}

struct closer {
	int fd;
	unsigned int n;
};

static void on_close_third(void *user, struct ferry_iobuf *buf, const union ferry_sockaddr *src)
{
	struct closer *c = user;

	(void)buf;
	(void)src;
	if (++c->n == 3)
		close(c->fd);
}

Test(loops_err, fd_closed_while_running_ends_closed)
{
	struct closer c;
	union ferry_sockaddr dst;
	int rx, tx, ret;

	socket_pair_udp(&rx, &tx);
	lh_local(rx, &dst);
	lh_send_burst(tx, &dst, 0, 10);
	c.fd = rx;
	c.n = 0;
	ret = ferry_udp_recvfrom_loop(NULL, rx, NULL, on_close_third, &c);
	cr_expect_eq(ret, FERRY_END_CLOSED, "EBADF after close ends with FERRY_END_CLOSED, got %d", ret);
	cr_expect_eq(c.n, 3, "no callback after the close, got %u", c.n);
	close(tx);
}

Test(loops_err, loop_sets_nonblock)
{
	struct ferry_stop *stop = ferry_stop_new();
	struct ferry_udp_config cfg;
	int rx, tx;

	socket_pair_udp(&rx, &tx);
	cr_assert_eq(fcntl(rx, F_GETFL) & O_NONBLOCK, 0, "socket starts blocking");
	ferry_stop_fire(stop);
	ferry_udp_config_init(&cfg);
	cfg.stop = stop;
	cr_expect_eq(ferry_udp_recvfrom_loop(&cfg, rx, NULL, on_nothing, NULL), FERRY_END_STOPPED, "stops");
	cr_expect_neq(fcntl(rx, F_GETFL) & O_NONBLOCK, 0, "the loop set O_NONBLOCK");
	ferry_stop_free(stop);
	close(rx);
	close(tx);
}

/* ---- sockaddr and iobuf allocation ---- */

Test(loops_sockaddr, parse_format_equal)
{
	union ferry_sockaddr a, b;
	char s[80];

	cr_assert_eq(ferry_sockaddr_parse("198.18.0.1:9000", &a), 0, "IPv4 parses");
	cr_expect_eq(a.sa.sa_family, AF_INET, "AF_INET");
	cr_expect_eq(ntohs(a.in4.sin_port), 9000, "port");
	cr_expect_eq(ferry_sockaddr_len(&a), sizeof(struct sockaddr_in), "IPv4 length");
	ferry_sockaddr_format(&a, s, sizeof(s));
	cr_expect_str_eq(s, "198.18.0.1:9000", "IPv4 formats back");

	cr_assert_eq(ferry_sockaddr_parse("[2001:2::1]:53", &b), 0, "IPv6 parses");
	cr_expect_eq(b.sa.sa_family, AF_INET6, "AF_INET6");
	cr_expect_eq(ferry_sockaddr_len(&b), sizeof(struct sockaddr_in6), "IPv6 length");
	ferry_sockaddr_format(&b, s, sizeof(s));
	cr_expect_str_eq(s, "[2001:2::1]:53", "IPv6 formats back");
	cr_expect(!ferry_sockaddr_equal(&a, &b), "different families differ");

	cr_assert_eq(ferry_sockaddr_parse("*:7", &a), 0, "* wildcard");
	cr_assert_eq(ferry_sockaddr_parse("0.0.0.0:7", &b), 0, "0.0.0.0 wildcard");
	cr_expect(ferry_sockaddr_equal(&a, &b), "* is 0.0.0.0");
	cr_assert_eq(ferry_sockaddr_parse("[::]:7", &a), 0, "[::] wildcard");
	cr_expect(IN6_IS_ADDR_UNSPECIFIED(&a.in6.sin6_addr), "[::] is the IPv6 wildcard");
	cr_assert_eq(ferry_sockaddr_parse("[::1%1]:7", &a), 0, "numeric scope");
	cr_expect_eq(a.in6.sin6_scope_id, 1, "scope id 1");

	cr_assert_eq(ferry_sockaddr_parse("0.0.0.0:8", &b), 0, "parses");
	cr_expect(!ferry_sockaddr_equal(&a, &b), "families differ");
	cr_assert_eq(ferry_sockaddr_parse("0.0.0.0:7", &a), 0, "parses");
	cr_expect(!ferry_sockaddr_equal(&a, &b), "ports differ");
	{
		static const char *const bad[] = { "", "1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:-1", "::1:80",
						   "[::1]80", "[::1]:", "[]:80", "1.2.3:80", "1.2.3.4:8x", "host:80",
						   "[1.2.3.4]:80", "[::1%1x]:7", "[::1%]:7" };

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			cr_expect_eq(ferry_sockaddr_parse(bad[i], &a), -EINVAL, "'%s' must be rejected", bad[i]);
	}
	memset(&a, 0, sizeof(a));
	cr_expect_eq(ferry_sockaddr_len(&a), 0, "AF_UNSPEC has no length");
	cr_expect(!ferry_sockaddr_equal(&a, &a), "AF_UNSPEC equals nothing");
	cr_expect_eq(ferry_sockaddr_format(&b, s, 4), (int)strlen("0.0.0.0:8"), "snprintf rules: full length returned");
}

/* The flow hash: a function of family, address and port only, and every port moves it. */
Test(loops_sockaddr, hash)
{
	union ferry_sockaddr a, b;
	unsigned int buckets[4] = {0};

	cr_assert_eq(ferry_sockaddr_parse("198.18.0.2:40000", &a), 0, "parses");
	b = a;
	cr_expect_eq(ferry_sockaddr_hash(&a), ferry_sockaddr_hash(&b), "equal addresses hash alike");
	b.in4.sin_port = htons(40001);
	cr_expect_neq(ferry_sockaddr_hash(&a), ferry_sockaddr_hash(&b), "the port counts");
	cr_assert_eq(ferry_sockaddr_parse("[2001:2::2]:40000", &b), 0, "parses");
	cr_expect_neq(ferry_sockaddr_hash(&a), ferry_sockaddr_hash(&b), "IPv6 too");
	/* ports in a row spread over 4 buckets (what the hash fanout does with 4 clients) */
	for (uint16_t p = 0; p < 4000; p++) {
		a.in4.sin_port = htons((uint16_t)(32768 + p));
		buckets[((uint64_t)ferry_sockaddr_hash(&a) * 4) >> 32]++;
	}
	for (int i = 0; i < 4; i++)
		cr_expect(buckets[i] > 800 && buckets[i] < 1200, "bucket %d has %u of 4000", i, buckets[i]);
	memset(&a, 0, sizeof(a));
	cr_expect_eq(ferry_sockaddr_hash(&a), 0, "AF_UNSPEC hashes to 0");
}

Test(loops_iobuf, new_clone_free)
{
	struct ferry_iobuf *b = ferry_iobuf_new(100), *c, view;
	uint8_t region[16];

	cr_assert(b, "new");
	cr_expect(b->flags & FERRY_IOBUF_OWNED, "owned");
	cr_expect(b->lo == 0 && b->lo_min == 0 && b->hi == 100 && b->hi_max == 100, "window = limits = capacity");
	for (int i = 0; i < 100; i++)
		cr_expect_eq(b->data[i], 0, "zeroed");
	ferry_iobuf_fill_bytes(b, "hello", 5);
	ferry_iobuf_flip_lo(b);
	b->cookie = 42;
	c = ferry_iobuf_clone(b);
	cr_assert(c, "clone");
	cr_expect_neq(c->data, b->data, "own region");
	cr_expect(c->lo == b->lo && c->hi == b->hi && c->lo_min == b->lo_min && c->hi_max == b->hi_max,
		  "same limits and window");
	cr_expect_eq(memcmp(ferry_iobuf_window(c), "hello", 5), 0, "same bytes");
	cr_expect(c->flags & FERRY_IOBUF_OWNED, "clone is owned");
	ferry_iobuf_free(b);
	ferry_iobuf_free(c);
	ferry_iobuf_free(NULL);
	ferry_iobuf_init(&view, region, sizeof(region));
	ferry_iobuf_free(&view); /* borrowed: ignored (ASan would catch a free of the stack) */
	cr_expect_null(ferry_iobuf_new(SIZE_MAX), "an impossible size fails");
}
