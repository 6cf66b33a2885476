/* SPDX-License-Identifier: MIT */
/* The loop tests' sender, receiver and datagram format (loops_harness.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loops_harness.h"
#include "netns.h"

const char *lh_kind_name(enum lh_kind kind)
{
	static const char *const names[] = {
		[LH_RECVFROM] = "recvfrom", [LH_RECVFROM_REP] = "recvfrom_with_buffer_replacement",
		[LH_READ] = "read",	    [LH_READ_REP] = "read_with_buffer_replacement",
		[LH_MMSG] = "recvmmsg",	    [LH_MMSG_NOSRC] = "recvmmsg_no_sources",
	};

	return kind < LH_NKINDS ? names[kind] : "?";
}

bool lh_kind_has_src(enum lh_kind kind)
{
	return kind == LH_RECVFROM || kind == LH_RECVFROM_REP || kind == LH_MMSG;
}

size_t lh_len(unsigned int seq)
{
	return 16 + (seq * 13) % 200;
}

size_t lh_payload(unsigned int seq, uint8_t *out)
{
	size_t len = lh_len(seq);

	out[0] = (uint8_t)(seq >> 24);
	out[1] = (uint8_t)(seq >> 16);
	out[2] = (uint8_t)(seq >> 8);
	out[3] = (uint8_t)seq;
	for (size_t i = 4; i < len; i++)
		out[i] = (uint8_t)(seq * 7 + i);
	return len;
}

int lh_check(const uint8_t *p, size_t len, unsigned int *seq)
{
	unsigned int s;

	if (len < 4)
		return -1;
	s = (unsigned int)p[0] << 24 | (unsigned int)p[1] << 16 | (unsigned int)p[2] << 8 | p[3];
	if (len != lh_len(s))
		return -1;
	for (size_t i = 4; i < len; i++)
		if (p[i] != (uint8_t)(s * 7 + i))
			return -1;
	*seq = s;
	return 0;
}

int lh_udp_socket(const union ferry_sockaddr *addr)
{
	int size = 4 << 20;
	int fd = socket(addr->sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	/* FORCE needs root; the plain one is the fallback. Bursts must not overflow either way. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (bind(fd, &addr->sa, ferry_sockaddr_len(addr))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

void lh_local(int fd, union ferry_sockaddr *out)
{
	socklen_t len = sizeof(*out);

	memset(out, 0, sizeof(*out));
	getsockname(fd, &out->sa, &len);
}

void lh_loopback(int family, uint16_t port, union ferry_sockaddr *out)
{
	memset(out, 0, sizeof(*out));
	if (family == AF_INET6) {
		out->in6.sin6_family = AF_INET6;
		out->in6.sin6_addr = in6addr_loopback;
		out->in6.sin6_port = htons(port);
	} else {
		out->in4.sin_family = AF_INET;
		out->in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		out->in4.sin_port = htons(port);
	}
}

unsigned int lh_queued(int fd)
{
	uint8_t buf[65536];
	unsigned int n = 0;

	for (;;) {
		ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (r >= 0)
			n++;
		else if (errno != EINTR)
			return n;
	}
}

unsigned int lh_send_burst(int fd, const union ferry_sockaddr *dst, unsigned int first, unsigned int count)
{
	uint8_t buf[256];
	unsigned int sent = 0;

	for (unsigned int i = 0; i < count; i++) {
		size_t len = lh_payload(first + i, buf);
		ssize_t n;

		do
			n = sendto(fd, buf, len, 0, &dst->sa, ferry_sockaddr_len(dst));
		while (n < 0 && errno == EINTR);
		if (n == (ssize_t)len)
			sent++;
		/* a breath now and then so a slower receiver keeps up on a veth pair */
		if ((i & 31) == 31)
			sched_yield();
	}
	return sent;
}

pid_t lh_spawn_sender(int fd, int ns_fd, const union ferry_sockaddr *dst, unsigned int count)
{
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (ns_fd >= 0 && setns(ns_fd, CLONE_NEWNET))
			_exit(2);
		_exit(lh_send_burst(fd, dst, 0, count) == count ? 0 : 1);
	}
	return pid;
}

int lh_reap(pid_t pid, unsigned int timeout_ms)
{
	uint64_t end = ferry_test_now_ms() + timeout_ms;
	int st;

	if (pid <= 0)
		return -1;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		if (r < 0)
			return -1;
		if (ferry_test_now_ms() >= end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		usleep(1000);
	}
}

struct lh_watchdog {
	pthread_t thread;
	struct ferry_stop *stop;
	unsigned int timeout_ms;
	bool fired;
};

static void *watchdog_main(void *arg)
{
	struct lh_watchdog *w = arg;
	struct pollfd p = { .fd = ferry_stop_fd(w->stop), .events = POLLIN };
	int n;

	do
		n = poll(&p, 1, (int)w->timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n == 0) {
		w->fired = true;
		ferry_stop_fire(w->stop);
	}
	return NULL;
}

struct lh_watchdog *lh_watchdog_start(struct ferry_stop *stop, unsigned int timeout_ms)
{
	struct lh_watchdog *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->stop = stop;
	w->timeout_ms = timeout_ms;
	if (pthread_create(&w->thread, NULL, watchdog_main, w)) {
		free(w);
		return NULL;
	}
	return w;
}

bool lh_watchdog_end(struct lh_watchdog *w)
{
	bool fired;

	if (!w)
		return false;
	ferry_stop_fire(w->stop);
	pthread_join(w->thread, NULL);
	fired = w->fired;
	free(w);
	return fired;
}

/* One datagram in b's window: the window must be exactly the datagram (default before/after). */
static void record(struct lh_burst *b, const struct ferry_iobuf *buf, const union ferry_sockaddr *src)
{
	unsigned int seq;

	if (buf->lo != buf->lo_min || buf->hi > buf->hi_max)
		b->bad_window++;
	if (lh_check(ferry_iobuf_window(buf), ferry_iobuf_length(buf), &seq) || seq >= LH_MAX_BURST) {
		b->bad++;
	} else if (b->seen[seq]) {
		b->dup++;
	} else {
		b->seen[seq] = 1;
		b->got++;
	}
	if (b->check_src && (!src || !ferry_sockaddr_equal(src, &b->src)))
		b->bad_src++;
	if (b->got + b->bad + b->dup >= b->want)
		ferry_stop_fire(b->stop);
}

static void on_recvfrom(void *user, struct ferry_iobuf *buf, const union ferry_sockaddr *src)
{
	struct lh_burst *b = user;

	b->callbacks++;
	record(b, buf, src);
}

static struct ferry_iobuf *on_recvfrom_rep(void *user, struct ferry_iobuf *buf, const union ferry_sockaddr *src)
{
	on_recvfrom(user, buf, src);
	return buf;
}

static void on_read(void *user, struct ferry_iobuf *buf)
{
	on_recvfrom(user, buf, NULL);
}

static struct ferry_iobuf *on_read_rep(void *user, struct ferry_iobuf *buf)
{
	on_recvfrom(user, buf, NULL);
	return buf;
}

static void on_batch(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int count)
{
	struct lh_burst *b = user;

	b->callbacks++;
	for (unsigned int i = 0; i < count; i++)
		record(b, bufs[i], srcs ? &srcs[i] : NULL);
}

static void on_end(void *user, int result, struct ferry_iobuf *last)
{
	struct lh_burst *b = user;

	(void)last;
	b->ended = true;
	b->result = result;
}

int lh_run_burst(enum lh_kind kind, int fd, struct lh_burst *b, bool use_reactor, unsigned int timeout_ms)
{
	struct ferry_udp_config cfg;
	struct ferry_udp_loop_opts opts = { .sz = sizeof(opts) };
	struct ferry_reactor *r = NULL;
	struct lh_watchdog *w;
	int ret;

	b->stop = ferry_stop_new();
	if (!b->stop)
		return -errno;
	if (!lh_kind_has_src(kind))
		b->check_src = false;
	ferry_udp_config_init(&cfg);
	cfg.stop = b->stop;
	opts.stats = &b->stats;
	opts.on_end = on_end;
	opts.end_user = b;
	opts.create_srcs = kind == LH_MMSG;
	if (use_reactor) {
		r = ferry_reactor_new();
		if (!r) {
			ret = -errno;
			goto out;
		}
		opts.reactor = r;
	}
	w = lh_watchdog_start(b->stop, timeout_ms);
	switch (kind) {
	case LH_RECVFROM:
		ret = ferry_udp_recvfrom_loop(&cfg, fd, &opts, on_recvfrom, b);
		break;
	case LH_RECVFROM_REP:
		ret = ferry_udp_recvfrom_loop_with_buffer_replacement(&cfg, fd, &opts, on_recvfrom_rep, b);
		break;
	case LH_READ:
		ret = ferry_udp_read_loop(&cfg, fd, &opts, on_read, b);
		break;
	case LH_READ_REP:
		ret = ferry_udp_read_loop_with_buffer_replacement(&cfg, fd, &opts, on_read_rep, b);
		break;
	case LH_MMSG:
		ret = ferry_udp_recvmmsg_loop(&cfg, fd, &opts, on_batch, b);
		break;
	default:
		ret = ferry_udp_recvmmsg_no_sources_loop(&cfg, fd, &opts, on_batch, b);
		break;
	}
	if (use_reactor && ret == 0) {
		ret = ferry_reactor_run(r);
		if (ret == 0)
			ret = b->result;
	}
	b->timed_out = lh_watchdog_end(w);
	ferry_reactor_free(r);
out:
	b->result = ret;
	ferry_stop_free(b->stop);
	b->stop = NULL;
	return ret;
}
