/* SPDX-License-Identifier: MIT */
/* A ferryd client as a test's child process (client_proc.h). */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "client_proc.h"
#include "netns.h"

#define STOP_MS 5000
#define KEEP_MAX 48

uint32_t ferry_test_hash(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

void ferry_test_client_payload(uint8_t *p, size_t len, uint32_t seq)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seq * 7 + i);
	memcpy(p, &seq, len < 4 ? len : 4);
}

/* ---- the child -------------------------------------------------------------------------- */

static struct {
	struct ferry_test_client_shared *sh;
	const struct ferry_test_client_cfg *cfg;
	struct ferry_client *c;
	struct ferry_stop *stop;
	struct ferry_iobuf *kept[KEEP_MAX];
	unsigned int nkept, nkeeps;
	struct ferry_iobuf **hoard; /* HOARD: every slot it took, let go only when it ends */
	size_t nhoard, hoard_cap;
	struct ferry_iobuf dummy;
	uint8_t dummy_bytes[64];
} ch;

static void on_term(int sig)
{
	(void)sig;
	ferry_stop_fire(ch.stop);
}

static void set_state(int st)
{
	__atomic_store_n(&ch.sh->state, st, __ATOMIC_RELEASE);
}

/*
 * KEEP: every other datagram's slot is kept (replaced by a buffer that is
 * not a slot); when KEEP_MAX are held, the oldest are let go, alternately
 * by ferry_iobuf_free() and by handing them back as a replacement.
 */
static void keep(struct ferry_iobuf **bufs, unsigned int count)
{
	for (unsigned int i = 0; i < count; i += 2) {
		struct ferry_iobuf *old = NULL;

		if (ch.nkept == KEEP_MAX) {
			old = ch.kept[0];
			memmove(ch.kept, ch.kept + 1, (KEEP_MAX - 1) * sizeof(ch.kept[0]));
			ch.nkept--;
		}
		ch.kept[ch.nkept++] = bufs[i];
		if (old && (ch.nkeeps++ & 1))
			bufs[i] = old; /* given back */
		else {
			ferry_iobuf_free(old);
			bufs[i] = &ch.dummy;
		}
	}
}

static void on_batch(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int count)
{
	struct ferry_test_client_shared *sh = user;
	uint64_t bytes = 0;

	for (unsigned int i = 0; i < count; i++) {
		size_t len = ferry_iobuf_length(bufs[i]);

		bytes += len;
		if (sh->nrec < FERRY_TEST_CLIENT_RECS) {
			struct ferry_test_client_rec *r = &sh->rec[sh->nrec++];

			r->src = srcs[i];
			r->len = (uint32_t)len;
			r->hash = ferry_test_hash(ferry_iobuf_window(bufs[i]), len);
		}
	}
	if (ch.cfg->flags & FERRY_TEST_CLIENT_ECHO) {
		int n = ferry_client_send(ch.c, bufs, srcs, count);

		if (n > 0)
			__atomic_add_fetch(&sh->sent, (uint64_t)n, __ATOMIC_RELAXED);
	}
	if (ch.cfg->flags & FERRY_TEST_CLIENT_KEEP)
		keep(bufs, count);
	if (ch.cfg->flags & FERRY_TEST_CLIENT_HOARD)
		for (unsigned int i = 0; i < count; i++) {
			if (ch.nhoard == ch.hoard_cap) {
				size_t cap = ch.hoard_cap ? 2 * ch.hoard_cap : 256;
				struct ferry_iobuf **h = realloc(ch.hoard, cap * sizeof(*h));

				if (!h)
					break; /* the rest goes back */
				ch.hoard = h;
				ch.hoard_cap = cap;
			}
			ch.hoard[ch.nhoard++] = bufs[i];
			bufs[i] = &ch.dummy; /* the slot is the callback's now, until the end */
		}
	if (ch.cfg->slow_us)
		usleep(ch.cfg->slow_us);
	ferry_client_stats(ch.c, &sh->stats);
	__atomic_add_fetch(&sh->batches, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&sh->bytes, bytes, __ATOMIC_RELAXED);
	__atomic_add_fetch(&sh->datagrams, count, __ATOMIC_RELEASE);
}

/* The configured sends, all queued (retried as the client's fd says slots came back), bounded. */
static void send_all(void)
{
	const struct ferry_test_client_cfg *cfg = ch.cfg;
	uint8_t buf[65536];
	struct ferry_iobuf b, *bp = &b;
	uint64_t deadline = ferry_test_now_ms() + 10000;

	for (unsigned int seq = 0; seq < cfg->send_count && ferry_test_now_ms() < deadline;) {
		int n;

		ferry_test_client_payload(buf, cfg->send_len, seq);
		ferry_iobuf_init(&b, buf, cfg->send_len);
		n = ferry_client_send(ch.c, &bp, &cfg->send_to, 1);
		if (n == 1) {
			seq++;
			__atomic_add_fetch(&ch.sh->sent, 1, __ATOMIC_RELAXED);
			continue;
		}
		if (n < 0) {
			ch.sh->err = n;
			return;
		}
		ch.sh->send_retries++;
		struct pollfd p = { .fd = ferry_client_fd(ch.c), .events = POLLIN };
		poll(&p, 1, 10);
		ferry_client_process(ch.c);
	}
}

static void child(const struct ferry_test_client_cfg *cfg, struct ferry_test_client_shared *sh)
{
	struct ferry_client_opts o = {
		.sz = sizeof(o), .socket_path = cfg->control, .service = cfg->service,
		.rx_slots = cfg->rx_slots, .tx_slots = cfg->tx_slots, .slot_size = cfg->slot_size,
		.reconnect = cfg->flags & FERRY_TEST_CLIENT_RECONNECT, .why = sh->why, .whylen = sizeof(sh->why),
		.zero_copy = cfg->flags & FERRY_TEST_CLIENT_ZERO_COPY,
	};
	struct ferry_udp_config lc;
	struct ferry_udp_loop_opts lo = { .sz = sizeof(lo) };
	sigset_t none;
	int err;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	ch.sh = sh;
	ch.cfg = cfg;
	ferry_iobuf_init(&ch.dummy, ch.dummy_bytes, sizeof(ch.dummy_bytes));
	ch.stop = ferry_stop_new();
	if (!ch.stop)
		_exit(3);
	signal(SIGTERM, on_term);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (cfg->gid && (setgroups(0, NULL) || setgid(cfg->gid)))
		_exit(4);
	if (cfg->uid && setuid(cfg->uid))
		_exit(4);
	err = ferry_client_connect(&o, &ch.c);
	if (err) {
		sh->err = err;
		set_state(FERRY_TEST_CLIENT_REFUSED);
		_exit(0);
	}
	ferry_client_stats(ch.c, &sh->stats);
	set_state(FERRY_TEST_CLIENT_ATTACHED);
	if (cfg->send_count) {
		send_all();
		set_state(FERRY_TEST_CLIENT_SENT);
	}
	ferry_udp_config_init(&lc);
	lc.stop = ch.stop;
	sh->loop_result = ferry_client_recvmmsg_loop(&lc, ch.c, &lo, on_batch, sh);
	ferry_client_stats(ch.c, &sh->stats);
	for (unsigned int i = 0; i < ch.nkept; i++)
		ferry_iobuf_free(ch.kept[i]);
	for (size_t i = 0; i < ch.nhoard; i++)
		ferry_iobuf_free(ch.hoard[i]); /* the session goes with the last (valgrind: nothing lost) */
	free(ch.hoard);
	ferry_client_status(ch.c, sh->why, sizeof(sh->why));
	ferry_client_close(ch.c);
	set_state(FERRY_TEST_CLIENT_ENDED);
	_exit(0);
}

/* ---- the test's side ----------------------------------------------------------------------- */

void ferry_test_client_start(struct ferry_test_client *c, const struct ferry_test_client_cfg *cfg)
{
	pid_t pid;

	c->pid = -1;
	c->sh = mmap(NULL, sizeof(*c->sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(c->sh, MAP_FAILED, "expected memory for the client's records: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0)
		child(cfg, c->sh);
	c->pid = pid;
}

bool ferry_test_client_wait(struct ferry_test_client *c, enum ferry_test_client_state state, int timeout_ms)
{
	uint64_t deadline = ferry_test_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		if (__atomic_load_n(&c->sh->state, __ATOMIC_ACQUIRE) >= (int)state)
			return true;
		if (c->pid < 0)
			return false;
		if (waitpid(c->pid, &c->status, WNOHANG) == c->pid) {
			c->pid = -1; /* it exited: what it wrote last is there now */
			return __atomic_load_n(&c->sh->state, __ATOMIC_ACQUIRE) >= (int)state;
		}
		if (ferry_test_now_ms() >= deadline)
			return false;
		usleep(2000);
	}
}

uint64_t ferry_test_client_delivered(const struct ferry_test_client *c)
{
	return __atomic_load_n(&c->sh->datagrams, __ATOMIC_ACQUIRE);
}

bool ferry_test_client_wait_delivered(const struct ferry_test_client *c, uint64_t n, int timeout_ms)
{
	uint64_t deadline = ferry_test_now_ms() + (uint64_t)timeout_ms;

	while (ferry_test_client_delivered(c) < n && ferry_test_now_ms() < deadline)
		usleep(2000);
	return ferry_test_client_delivered(c) >= n;
}

static bool reaped_within(struct ferry_test_client *c, int ms)
{
	uint64_t deadline = ferry_test_now_ms() + (uint64_t)ms;

	while (c->pid > 0) {
		pid_t r = waitpid(c->pid, &c->status, WNOHANG);

		if (r == c->pid || (r < 0 && errno == ECHILD)) {
			c->pid = -1;
			return true;
		}
		if (ferry_test_now_ms() >= deadline)
			return false;
		usleep(2000);
	}
	return true;
}

void ferry_test_client_stop(struct ferry_test_client *c)
{
	if (c->pid <= 0)
		return;
	kill(c->pid, SIGTERM);
	if (!reaped_within(c, STOP_MS)) {
		kill(c->pid, SIGKILL);
		reaped_within(c, STOP_MS);
	}
}

void ferry_test_client_kill(struct ferry_test_client *c)
{
	if (c->pid <= 0)
		return;
	kill(c->pid, SIGKILL);
	reaped_within(c, STOP_MS);
}

void ferry_test_client_free(struct ferry_test_client *c)
{
	ferry_test_client_kill(c);
	if (c->sh && c->sh != MAP_FAILED)
		munmap(c->sh, sizeof(*c->sh));
	c->sh = NULL;
}
