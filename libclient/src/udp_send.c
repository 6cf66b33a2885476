/* SPDX-License-Identifier: MIT */
/*
 * Sending: ferry_udp_sendto_sync (one non-blocking try) and ferry_udp_sendto
 * (tries until sent, stopped or failed, waiting for EPOLLOUT on a reactor).
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

int ferry_udp_sendto_sync(int fd, struct ferry_iobuf *buf, const union ferry_sockaddr *dst)
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
		n = sendto(fd, buf->data + buf->lo, buf->hi - buf->lo, MSG_NOSIGNAL | MSG_DONTWAIT,
			   dst ? &dst->sa : NULL, alen);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		/* ENOBUFS: a queue below the socket is full, as good as EAGAIN for a caller who retries. */
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
			return FERRY_NOT_READY;
		return -errno;
	}
	/* Datagrams go whole; a stream may take part of the window and the rest stays in it. */
	buf->lo += (size_t)n;
	return FERRY_OK;
}

/* One pending ferry_udp_sendto on a reactor. */
struct send_op {
	struct ferry_reactor *r;
	struct ferry_watch *fd_watch;
	struct ferry_watch *stop_watch;
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

static void send_op_end(struct send_op *op, int result)
{
	ferry_udp_end_cb on_end = op->on_end;
	struct ferry_iobuf *buf = op->buf;
	void *user = op->end_user;

	ferry_reactor_del(op->r, op->fd_watch);
	op->fd_watch = NULL;
	if (op->stop_watch) {
		ferry_reactor_del(op->r, op->stop_watch);
		op->stop_watch = NULL;
	}
	if (op->stop_fd >= 0) {
		close(op->stop_fd);
		op->stop_fd = -1;
	}
	if (op->fd_dup >= 0) {
		close(op->fd_dup);
		op->fd_dup = -1;
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

static void on_writable(void *user, uint32_t events)
{
	struct send_op *op = user;

	/* Whatever the events (EPOLLOUT, EPOLLERR, EPOLLHUP), a try tells what they mean. */
	for (unsigned int i = 0; i < op->max_ready; i++) {
		int err;

		if (op->stop && ferry_stop_is_fired(op->stop)) {
			send_op_end(op, FERRY_END_STOPPED);
			return;
		}
		err = ferry_udp_sendto_sync(op->fd, op->buf, op->dst);
		if (err == FERRY_NOT_READY)
			return; /* level-triggered: called again when there is room */
		if (err < 0 || ferry_iobuf_is_empty(op->buf)) {
			send_op_end(op, err);
			return;
		}
		/* a short write on a stream: the rest of the window is still to go */
	}
	/* max_ready tries used: yield to other ready work; still writable means called again */
}

static int send_op_start(struct send_op *op, struct ferry_reactor *r)
{
	int err;

	op->r = r;
	op->stop_fd = -1;
	op->fd_dup = -1;
	if (op->stop) {
		op->stop_fd = fcntl(ferry_stop_fd(op->stop), F_DUPFD_CLOEXEC, 0);
		if (op->stop_fd < 0)
			return -errno;
	}
	err = ferry_reactor_add(r, op->fd, EPOLLOUT, on_writable, op, &op->fd_watch);
	if (err == -EEXIST) {
		/*
		 * A receive loop on the same reactor watches fd (an echo server
		 * replying on its socket): wait on a dup of it, send on fd itself.
		 */
		op->fd_dup = fcntl(op->fd, F_DUPFD_CLOEXEC, 0);
		if (op->fd_dup < 0) {
			err = -errno;
			goto err_close;
		}
		err = ferry_reactor_add(r, op->fd_dup, EPOLLOUT, on_writable, op, &op->fd_watch);
	}
	if (err)
		goto err_close;
	if (op->stop) {
		err = ferry_reactor_add(r, op->stop_fd, EPOLLIN, on_stop, op, &op->stop_watch);
		if (err)
			goto err_del;
	}
	return 0;

err_del:
	ferry_reactor_del(r, op->fd_watch);
	op->fd_watch = NULL;
err_close:
	if (op->fd_dup >= 0)
		close(op->fd_dup);
	op->fd_dup = -1;
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
	err = ferry_udp_sendto_sync(op->fd, op->buf, op->dst);
	if (err < 0 || (err == FERRY_OK && ferry_iobuf_is_empty(op->buf)))
		return err;

	r = ferry_reactor_new();
	if (!r)
		return -errno;
	op->blocking = true;
	err = send_op_start(op, r);
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
	err = send_op_start(op, r);
	if (err) {
		free(op);
		return err;
	}
	return 0;
}
