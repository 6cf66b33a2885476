/* SPDX-License-Identifier: MIT */
/*
 * Sending: ferry_udp_sendto_sync (one non-blocking try) and ferry_udp_sendto
 * (tries until sent, stopped or failed: waiting for EPOLLOUT on a reactor
 * when the socket is full, on a backing-off reactor timer when the queue
 * below it is, ENOBUFS, for which no EPOLLOUT comes).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ferry/udp.h>

#include "test_hooks.h"

#define offsetofend(T, m) (offsetof(T, m) + sizeof(((T *)0)->m))

/*
 * libbpf's OPTS_VALID: a caller built against an older header passes a
 * smaller sz (the fields it lacks take their defaults); a newer one may pass a
 * larger sz, as long as every byte this version does not know is zero.
 */
static bool opts_valid(const void *opts, size_t user_sz, size_t known_sz)
{
	const unsigned char *p = opts;

	if (!opts)
		return true;
	if (user_sz < sizeof(size_t))
		return false;
	for (size_t i = known_sz; i < user_sz; i++)
		if (p[i])
			return false;
	return true;
}

#define OPTS_HAS(o, T, f) ((o) && (o)->sz >= offsetofend(T, f))
#define OPTS_GET(o, T, f, def) (OPTS_HAS(o, T, f) ? (o)->f : (def))

static socklen_t dst_len(const union ferry_sockaddr *dst)
{
	switch (dst->sa.sa_family) {
	case AF_INET:
		return sizeof(dst->in4);
	case AF_INET6:
		return sizeof(dst->in6);
	default:
		return 0;
	}
}

static ssize_t sys_sendto(int fd, const void *p, size_t len, int flags, const struct sockaddr *addr, socklen_t alen)
{
	return sendto(fd, p, len, flags, addr, alen);
}

ssize_t (*ferry__sendto)(int fd, const void *p, size_t len, int flags, const struct sockaddr *addr,
			 socklen_t alen) = sys_sendto;

/* send_try's result for ENOBUFS (besides FERRY_OK, FERRY_NOT_READY and -errno). */
#define SEND_NOBUFS 2

/* The first wait after an ENOBUFS, doubled after each further one up to the last. */
#define BACKOFF_FIRST_MS 1
#define BACKOFF_MAX_MS 64

/* One try. FERRY_NOT_READY is EAGAIN only: ENOBUFS is SEND_NOBUFS. */
static int send_try(int fd, struct ferry_iobuf *buf, const union ferry_sockaddr *dst)
{
	socklen_t alen = 0;
	ssize_t n;

	if (!buf)
		return -EINVAL;
	if (dst) {
		alen = dst_len(dst);
		if (!alen)
			return -EAFNOSUPPORT;
	}
	do {
		n = ferry__sendto(fd, buf->data + buf->lo, buf->hi - buf->lo, MSG_NOSIGNAL | MSG_DONTWAIT,
				  dst ? &dst->sa : NULL, alen);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return FERRY_NOT_READY;
		if (errno == ENOBUFS)
			return SEND_NOBUFS;
		return -errno;
	}
	/* Datagrams go whole; a stream may take part of the window and the rest stays in it. */
	buf->lo += (size_t)n;
	return FERRY_OK;
}

int ferry_udp_sendto_sync(int fd, struct ferry_iobuf *buf, const union ferry_sockaddr *dst)
{
	int ret = send_try(fd, buf, dst);

	/* a queue below the socket is full: for one try, as good as EAGAIN */
	return ret == SEND_NOBUFS ? FERRY_NOT_READY : ret;
}

/* One pending ferry_udp_sendto on a reactor. */
struct send_op {
	struct ferry_reactor *r;
	struct ferry_watch *fd_watch;	/* while waiting for EPOLLOUT; NULL while backing off */
	struct ferry_watch *stop_watch;
	struct ferry_timer *retry;	/* made at the first ENOBUFS */
	unsigned int backoff_ms;	/* the next wait after an ENOBUFS */
	int stop_fd; /* our dup() of ferry_stop_fd(): a reactor watches an fd once */
	int fd;
	int fd_dup; /* our dup() of fd when fd is watched already (a receive loop on it), or -1 */
	struct ferry_iobuf *buf;
	const union ferry_sockaddr *dst;
	const struct ferry_stop *stop;
	unsigned int max_ready;
	/* reactor form: how to report; blocking form: where the result lands */
	bool blocking;
	bool done;
	int result;
	ferry_udp_end_cb on_end;
	void *end_user;
};

/* Stops waiting for EPOLLOUT (and closes the dup waited on, if any). */
static void unwatch_fd(struct send_op *op)
{
	ferry_reactor_del(op->r, op->fd_watch);
	op->fd_watch = NULL;
	if (op->fd_dup >= 0) {
		close(op->fd_dup);
		op->fd_dup = -1;
	}
}

static void on_writable(void *user, uint32_t events);

/* Waits for EPOLLOUT on fd. 0 or -errno. */
static int watch_fd(struct send_op *op)
{
	int err = ferry_reactor_add(op->r, op->fd, EPOLLOUT, on_writable, op, &op->fd_watch);

	if (err != -EEXIST)
		return err;
	/*
	 * A receive loop on the same reactor watches fd (an echo server
	 * replying on its socket): wait on a dup of it, send on fd itself.
	 */
	op->fd_dup = fcntl(op->fd, F_DUPFD_CLOEXEC, 0);
	if (op->fd_dup < 0)
		return -errno;
	err = ferry_reactor_add(op->r, op->fd_dup, EPOLLOUT, on_writable, op, &op->fd_watch);
	if (err) {
		close(op->fd_dup);
		op->fd_dup = -1;
	}
	return err;
}

static void send_op_end(struct send_op *op, int result)
{
	ferry_udp_end_cb on_end = op->on_end;
	struct ferry_iobuf *buf = op->buf;
	void *user = op->end_user;

	unwatch_fd(op);
	ferry_timer_free(op->retry); /* safe from the timer's own callback */
	op->retry = NULL;
	if (op->stop_watch) {
		ferry_reactor_del(op->r, op->stop_watch);
		op->stop_watch = NULL;
	}
	if (op->stop_fd >= 0) {
		close(op->stop_fd);
		op->stop_fd = -1;
	}
	if (op->blocking) {
		op->done = true;
		op->result = result;
		return;
	}
	/* Nothing of op is touched after on_end: it may free or reuse buf, or start another send. */
	free(op);
	if (on_end)
		on_end(user, result, buf);
}

static void on_stop(void *user, uint32_t events)
{
	send_op_end(user, FERRY_END_STOPPED);
}

static void on_retry(void *user, struct ferry_timer *t);

/*
 * ENOBUFS: the socket may well be writable, so EPOLLOUT would call us again at
 * once, and again: stop waiting for it and try again after backoff_ms instead.
 */
static void back_off(struct send_op *op)
{
	unwatch_fd(op);
	if (!op->retry) {
		op->retry = ferry_timer_new(op->r, on_retry, op);
		if (!op->retry) {
			send_op_end(op, -ENOMEM);
			return;
		}
	}
	ferry_timer_arm(op->retry, op->backoff_ms, 0);
	if (op->backoff_ms < BACKOFF_MAX_MS)
		op->backoff_ms *= 2;
}

/* Up to max_ready tries; then waits for EPOLLOUT, or for the retry timer after an ENOBUFS. */
static void try_send(struct send_op *op)
{
	int err;

	for (unsigned int i = 0; i < op->max_ready; i++) {
		if (op->stop && ferry_stop_is_fired(op->stop)) {
			send_op_end(op, FERRY_END_STOPPED);
			return;
		}
		err = send_try(op->fd, op->buf, op->dst);
		if (err == SEND_NOBUFS) {
			back_off(op);
			return;
		}
		op->backoff_ms = BACKOFF_FIRST_MS; /* the queue took it, or it is the socket that is full */
		if (err == FERRY_NOT_READY)
			break; /* level-triggered: called again when there is room */
		if (err < 0 || ferry_iobuf_is_empty(op->buf)) {
			send_op_end(op, err);
			return;
		}
		/* a short write on a stream: the rest of the window is still to go */
	}
	/* max_ready tries used, or no room: yield; EPOLLOUT calls again (and at once if still writable) */
	if (!op->fd_watch) {
		err = watch_fd(op);
		if (err)
			send_op_end(op, err);
	}
}

static void on_writable(void *user, uint32_t events)
{
	/* Whatever the events (EPOLLOUT, EPOLLERR, EPOLLHUP), a try tells what they mean. */
	(void)events;
	try_send(user);
}

static void on_retry(void *user, struct ferry_timer *t)
{
	(void)t;
	try_send(user);
}

/* Registers op on r: the stop's watch, and the wait for EPOLLOUT (or the retry timer, after_nobufs). */
static int send_op_start(struct send_op *op, struct ferry_reactor *r, bool after_nobufs)
{
	int err;

	op->r = r;
	op->stop_fd = -1;
	op->fd_dup = -1;
	op->backoff_ms = BACKOFF_FIRST_MS;
	if (op->stop) {
		op->stop_fd = fcntl(ferry_stop_fd(op->stop), F_DUPFD_CLOEXEC, 0);
		if (op->stop_fd < 0)
			return -errno;
		err = ferry_reactor_add(r, op->stop_fd, EPOLLIN, on_stop, op, &op->stop_watch);
		if (err)
			goto err_close;
	}
	if (after_nobufs) {
		op->retry = ferry_timer_new(r, on_retry, op);
		if (!op->retry) {
			err = -errno;
			goto err_del;
		}
		back_off(op);
		return 0;
	}
	err = watch_fd(op);
	if (err)
		goto err_del;
	return 0;

err_del:
	ferry_reactor_del(r, op->stop_watch);
	op->stop_watch = NULL;
err_close:
	if (op->stop_fd >= 0)
		close(op->stop_fd);
	op->stop_fd = -1;
	return err;
}

static int send_blocking(struct send_op *op)
{
	struct ferry_reactor *r;
	int err;

	if (op->stop && ferry_stop_is_fired(op->stop))
		return FERRY_END_STOPPED;
	/* Most sends find room at once: no reactor needed for them. */
	err = send_try(op->fd, op->buf, op->dst);
	if (err < 0 || (err == FERRY_OK && ferry_iobuf_is_empty(op->buf)))
		return err;

	r = ferry_reactor_new();
	if (!r)
		return -errno;
	op->blocking = true;
	err = send_op_start(op, r, err == SEND_NOBUFS);
	if (err)
		goto out;
	while (!op->done) {
		err = ferry_reactor_run_once(r, -1);
		if (err < 0) {
			send_op_end(op, err);
			break;
		}
	}
	err = op->result;
out:
	ferry_reactor_free(r);
	return err;
}

int ferry_udp_sendto(const struct ferry_udp_config *config, int fd, struct ferry_iobuf *buf,
		     const union ferry_sockaddr *dst, const struct ferry_udp_loop_opts *opts)
{
	struct ferry_reactor *r;
	struct send_op *op, local;
	int type, err;
	socklen_t len = sizeof(type);

	if (!buf ||
	    !opts_valid(config, config ? config->sz : 0,
			offsetofend(struct ferry_udp_config, ferry_udp_config__last_field)) ||
	    !opts_valid(opts, opts ? opts->sz : 0,
			offsetofend(struct ferry_udp_loop_opts, ferry_udp_loop_opts__last_field)))
		return -EINVAL;
	if (dst && !dst_len(dst))
		return -EAFNOSUPPORT;
	/* Not a socket (or not an fd): say so now rather than wait for an EPOLLOUT that may never come. */
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len))
		return -errno;

	memset(&local, 0, sizeof(local));
	local.fd = fd;
	local.buf = buf;
	local.dst = dst;
	local.stop = OPTS_GET(config, struct ferry_udp_config, stop, NULL);
	local.max_ready = OPTS_GET(config, struct ferry_udp_config, max_ready, FERRY_UDP_DEFAULT_MAX_READY);
	if (!local.max_ready)
		local.max_ready = FERRY_UDP_DEFAULT_MAX_READY;
	local.on_end = OPTS_GET(opts, struct ferry_udp_loop_opts, on_end, NULL);
	local.end_user = OPTS_GET(opts, struct ferry_udp_loop_opts, end_user, NULL);

	r = OPTS_GET(opts, struct ferry_udp_loop_opts, reactor, NULL);
	if (!r) {
		/* as the loops do: on_end, if given, hears the end in the blocking form too */
		err = send_blocking(&local);
		if (local.on_end)
			local.on_end(local.end_user, err, buf);
		return err;
	}

	/* On a reactor the first try happens on its first dispatch, so on_end never runs inside this call. */
	op = malloc(sizeof(*op));
	if (!op)
		return -ENOMEM;
	*op = local;
	err = send_op_start(op, r, false);
	if (err) {
		free(op);
		return err;
	}
	return 0;
}
