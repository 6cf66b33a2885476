/* SPDX-License-Identifier: MIT */
/*
 * The six receive loops of udp.h, all run by one engine: a reactor watch on
 * the fd that does at most max_ready receive iterations per readiness, plus a
 * watch on a dup of the stop's fd that ends the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <ferry/udp.h>

#include "reactor_internal.h"
#include "test_hooks.h"

/* recvmmsg takes at most UIO_MAXIOV messages per call; a default never asks for more. */
#define DEFAULT_MAX_COUNT_CAP 1024
#define MMSG_BYTES 65536

/* Distinct from every end result: FERRY_END_* are positive, errors negative. */
#define RESULT_PENDING INT_MIN

enum loop_kind {
	KIND_RECVFROM,	   /* recvmsg with a source address, one datagram */
	KIND_RECVFROM_REP, /* the same, callback returns the next buffer */
	KIND_READ,	   /* read() (recvmsg on datagram sockets: same bytes, truncation seen) */
	KIND_READ_REP,
	KIND_MMSG,	   /* recvmmsg, batch callback */
};

union loop_cb {
	ferry_udp_recvfrom_cb recvfrom;
	ferry_udp_recvfrom_replace_cb recvfrom_rep;
	ferry_udp_read_cb read;
	ferry_udp_read_replace_cb read_rep;
	ferry_udp_batch_cb batch;
};

struct loop {
	enum loop_kind kind;
	bool want_srcs;	 /* recvmsg/recvmmsg fill source addresses */
	bool dgram;	 /* a SOCK_DGRAM socket: a 0-byte receive is an empty datagram, not the end */
	bool use_read;	 /* KIND_READ*: read(2) rather than recvmsg */
	int fd;
	dev_t fd_dev;	 /* what fd was at the start: a callback may close it (and the number be reused) */
	ino_t fd_ino;
	int stop_fd;	 /* our dup of the stop's fd, or -1 */
	int proxy_fd;	 /* always-readable eventfd standing in for an fd epoll refuses (files), or -1 */
	struct ferry_reactor *r;
	struct ferry_watch *fd_w, *stop_w;
	struct ferry_stop *stop;
	ferry_iobuf_fn before, after;
	bool flip_before; /* before is the default, ferry_iobuf_flip_lo: done inline */
	bool reset_after; /* after is the default, ferry_iobuf_reset: done inline */
	unsigned int max_ready;
	union loop_cb cb;
	void *user;
	ferry_udp_end_cb on_end;
	void *end_user;
	struct ferry_udp_loop_stats *stats; /* the caller's, or own_stats */
	struct ferry_udp_loop_stats own_stats;
	int *result_out; /* blocking mode: where the end result goes */

	/*
	 * Buffers: nbufs slots (1 for the one-datagram loops). bufs is the
	 * caller's array when given, else ours. created[] lists the buffers the
	 * loop made; an entry is cleared when a callback takes that buffer away,
	 * and the rest are freed at the end.
	 */
	unsigned int nbufs;
	struct ferry_iobuf **bufs;
	struct ferry_iobuf *one_buf; /* bufs storage for the one-datagram loops */
	bool bufs_ours;
	struct ferry_iobuf **created;
	struct mmsghdr *msgs;
	struct iovec *iovs;
	union ferry_sockaddr *srcs;
	/*
	 * recvmmsg: the vectors are built once and then kept current, entry by
	 * entry, for the buffers a batch used. shadow holds the buffers they were
	 * built from; when bufs no longer matches it (a callback replaced
	 * entries, or the caller changed its own array), stale asks for a
	 * rebuild of all of them before the next receive.
	 */
	struct ferry_iobuf **shadow;
	bool stale;
};

void (*ferry__loop_received_hook)(void *arg);
void *ferry__loop_received_arg;

static void received_hook(void)
{
	if (ferry_unlikely(ferry__loop_received_hook))
		ferry__loop_received_hook(ferry__loop_received_arg);
}

bool ferry__udp_default_before(ferry_iobuf_fn f)
{
	return f == ferry_iobuf_flip_lo;
}

bool ferry__udp_default_after(ferry_iobuf_fn f)
{
	return f == ferry_iobuf_reset;
}

void ferry_udp_config_init(struct ferry_udp_config *config)
{
	if (!config)
		return;
	memset(config, 0, sizeof(*config));
	config->sz = sizeof(*config);
	config->capacity = FERRY_UDP_DEFAULT_CAPACITY;
	config->before = ferry_iobuf_flip_lo;
	config->after = ferry_iobuf_reset;
	config->max_ready = FERRY_UDP_DEFAULT_MAX_READY;
}

static bool stop_fired(const struct loop *l)
{
	return l->stop && ferry_stop_is_fired(l->stop);
}

static void free_loop(struct loop *l)
{
	if (l->created) {
		for (unsigned int i = 0; i < l->nbufs; i++)
			ferry_iobuf_free(l->created[i]);
		free(l->created);
	}
	if (l->bufs_ours && l->bufs != &l->one_buf)
		free(l->bufs);
	free(l->msgs);
	free(l->iovs);
	free(l->srcs);
	free(l->shadow);
	if (l->stop_fd >= 0)
		close(l->stop_fd);
	if (l->proxy_fd >= 0)
		close(l->proxy_fd);
	free(l);
}

/* Ends the loop: no watch of it is left when on_end runs, so on_end may start another loop on fd. */
static void loop_end(struct loop *l, int result)
{
	ferry_reactor_del(l->r, l->fd_w);
	ferry_reactor_del(l->r, l->stop_w);
	l->fd_w = l->stop_w = NULL;
	if (l->result_out)
		*l->result_out = result;
	if (l->on_end)
		l->on_end(l->end_user, result, l->bufs[0]);
	free_loop(l);
}

/*
 * After a callback that may have replaced entries of bufs: a created buffer
 * no longer in any slot belongs to the callback now, so forget it.
 */
static void settle_ownership(struct loop *l)
{
	for (unsigned int i = 0; i < l->nbufs; i++) {
		struct ferry_iobuf *c = l->created[i];
		bool held = false;

		if (!c || l->bufs[i] == c)
			continue;
		for (unsigned int j = 0; j < l->nbufs && !held; j++)
			held = l->bufs[j] == c;
		if (!held)
			l->created[i] = NULL;
	}
}

static void mark_truncated(struct loop *l, struct ferry_iobuf *b, bool truncated)
{
	if (ferry_unlikely(truncated)) {
		b->flags |= FERRY_IOBUF_TRUNCATED;
		l->stats->truncated++;
	} else {
		b->flags &= ~FERRY_IOBUF_TRUNCATED;
	}
}

/* An errno of a failed receive as the loop's result: -EAGAIN means "yield". */
static int receive_error(int err)
{
	if (err == EAGAIN || err == EWOULDBLOCK)
		return -EAGAIN;
	if (err == EBADF)
		return FERRY_END_CLOSED;
	return -err;
}

/*
 * One datagram (or one read) into bufs[0], then before, the callback, after.
 * 0: delivered; -EAGAIN: nothing to read, yield; else the loop's end result.
 */
static int iterate_one(struct loop *l)
{
	struct ferry_iobuf *b = l->bufs[0];
	size_t room = b->hi - b->lo;
	bool truncated = false;
	ssize_t n;

	if (l->use_read) {
		if (ferry_unlikely(!room))
			return -ENOBUFS; /* a read of 0 bytes would look like the end of the stream */
		do
			n = read(l->fd, b->data + b->lo, room);
		while (n < 0 && errno == EINTR);
	} else {
		struct iovec iov = { .iov_base = b->data + b->lo, .iov_len = room };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
		union ferry_sockaddr *src = l->want_srcs ? &l->srcs[0] : NULL;

		if (src) {
			msg.msg_name = src;
			msg.msg_namelen = sizeof(*src);
		}
		do
			n = recvmsg(l->fd, &msg, MSG_DONTWAIT);
		while (n < 0 && errno == EINTR);
		if (n >= 0) {
			truncated = msg.msg_flags & MSG_TRUNC;
			if (src && msg.msg_namelen == 0)
				src->sa.sa_family = AF_UNSPEC; /* a stream socket has no per-read source */
		}
	}
	if (n < 0)
		return receive_error(errno);
	if (n == 0 && !l->dgram)
		return FERRY_END_CLOSED;
	/* from here on the datagram is delivered, even if the stop fires meanwhile */
	received_hook();

	l->stats->iterations++;
	l->stats->datagrams++;
	l->stats->bytes += (uint64_t)n;
	b->lo += (size_t)n;
	mark_truncated(l, b, truncated);
	if (l->before)
		l->before(b);

	switch (l->kind) {
	case KIND_RECVFROM:
		l->cb.recvfrom(l->user, b, &l->srcs[0]);
		break;
	case KIND_READ:
		l->cb.read(l->user, b);
		break;
	case KIND_RECVFROM_REP:
	case KIND_READ_REP: {
		struct ferry_iobuf *next = l->kind == KIND_READ_REP ? l->cb.read_rep(l->user, b)
								    : l->cb.recvfrom_rep(l->user, b, &l->srcs[0]);
		if (ferry_unlikely(!next))
			return -EINVAL; /* no buffer to go on with; b stays the loop's */
		if (next != b) {
			l->bufs[0] = next;
			settle_ownership(l);
		}
		b = next;
		break;
	}
	default:
		break;
	}
	if (l->after)
		l->after(b);
	return 0;
}

/* Builds every entry of the recvmmsg vectors from bufs. 0, or -EINVAL if a slot is empty. */
static int rebuild_vectors(struct loop *l)
{
	for (unsigned int i = 0; i < l->nbufs; i++) {
		struct ferry_iobuf *b = l->bufs[i];

		if (ferry_unlikely(!b))
			return -EINVAL; /* a callback took a buffer and left no replacement */
		l->shadow[i] = b;
		l->iovs[i].iov_base = b->data + b->lo;
		l->iovs[i].iov_len = b->hi - b->lo;
		if (l->want_srcs)
			l->msgs[i].msg_hdr.msg_namelen = sizeof(union ferry_sockaddr);
	}
	l->stale = false;
	return 0;
}

/* Whether bufs still holds the buffers the vectors were built from. */
static bool bufs_unchanged(const struct loop *l)
{
	return !memcmp(l->bufs, l->shadow, l->nbufs * sizeof(*l->bufs));
}

/*
 * The received datagrams' windows, with the default before done inline: what
 * lo += len, then ferry_iobuf_flip_lo, do. The truncation flag is cleared
 * here and set in a second pass only if some datagram of the batch was cut.
 * Returns the bytes received; *flags_or is the OR of the messages' flags.
 */
static uint64_t received_flip(struct loop *l, unsigned int count, int *flags_or)
{
	struct ferry_iobuf *const *bufs = l->bufs;
	const struct mmsghdr *msgs = l->msgs;
	uint64_t bytes = 0;
	int fl = 0;

	for (unsigned int i = 0; i < count; i++) {
		struct ferry_iobuf *b = bufs[i];
		size_t len = msgs[i].msg_len;

		fl |= msgs[i].msg_hdr.msg_flags;
		bytes += len;
		b->hi = b->lo + len;
		b->lo = b->lo_min;
		b->flags &= ~FERRY_IOBUF_TRUNCATED;
	}
	*flags_or = fl;
	return bytes;
}

/* The same with any before (or none), one datagram at a time as the contract says. */
static uint64_t received_any(struct loop *l, unsigned int count, int *flags_or)
{
	struct ferry_iobuf **bufs = l->bufs;
	const struct mmsghdr *msgs = l->msgs;
	uint64_t bytes = 0;

	for (unsigned int i = 0; i < count; i++) {
		struct ferry_iobuf *b = bufs[i];

		b->lo += msgs[i].msg_len;
		bytes += msgs[i].msg_len;
		mark_truncated(l, b, msgs[i].msg_hdr.msg_flags & MSG_TRUNC);
		if (l->before)
			l->before(b);
	}
	*flags_or = 0; /* flags done */
	return bytes;
}

/*
 * After the callback, nothing replaced: after on the first count buffers,
 * then their vector entries from their windows, ready for the next receive
 * (the other entries were not touched). The default after inline, and the
 * source-address length reset only when there are sources.
 */
static inline __attribute__((always_inline)) void rearm_reset(struct loop *l, unsigned int count, bool srcs)
{
	/* locals: with -fno-strict-aliasing a store to a buffer could be a store to *l */
	struct ferry_iobuf *const *bufs = l->bufs;
	struct iovec *iovs = l->iovs;
	struct mmsghdr *msgs = l->msgs;

	for (unsigned int i = 0; i < count; i++) {
		struct ferry_iobuf *b = bufs[i];
		size_t lo = b->lo_min, hi = b->hi_max;

		b->lo = lo;
		b->hi = hi;
		iovs[i].iov_base = b->data + lo;
		iovs[i].iov_len = hi - lo;
		if (srcs)
			msgs[i].msg_hdr.msg_namelen = sizeof(union ferry_sockaddr);
	}
}

static void rearm_any(struct loop *l, unsigned int count)
{
	struct ferry_iobuf **bufs = l->bufs;

	for (unsigned int i = 0; i < count; i++) {
		struct ferry_iobuf *b = bufs[i];

		if (l->after)
			l->after(b);
		l->iovs[i].iov_base = b->data + b->lo;
		l->iovs[i].iov_len = b->hi - b->lo;
		if (l->want_srcs)
			l->msgs[i].msg_hdr.msg_namelen = sizeof(union ferry_sockaddr);
	}
}

/*
 * After a callback that replaced entries of bufs: settle who owns what, run
 * after on the first count entries, and rebuild the vectors before the next
 * receive.
 */
static int rearm_replaced(struct loop *l, unsigned int count)
{
	if (l->created)
		settle_ownership(l);
	l->stale = true;
	for (unsigned int i = 0; i < count; i++) {
		if (ferry_unlikely(!l->bufs[i]))
			return -EINVAL; /* the callback took a buffer and gave none back */
		if (l->after)
			l->after(l->bufs[i]);
	}
	return 0;
}

/* One recvmmsg into the nbufs windows, then before on each, the batch callback, after on each. */
static int iterate_mmsg(struct loop *l)
{
	unsigned int count;
	uint64_t bytes;
	int n, flags_or;

	/* A caller's own array may have changed since the last batch, even outside the callback. */
	if (ferry_unlikely(l->stale || (!l->bufs_ours && !bufs_unchanged(l)))) {
		n = rebuild_vectors(l);
		if (n)
			return n;
	}
	do
		n = recvmmsg(l->fd, l->msgs, l->nbufs, MSG_DONTWAIT, NULL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return receive_error(errno);
	if (n == 0 || (!l->dgram && l->msgs[0].msg_len == 0))
		return FERRY_END_CLOSED;
	/* from here on the batch is delivered, even if the stop fires meanwhile */
	received_hook();

	count = (unsigned int)n;
	bytes = l->flip_before ? received_flip(l, count, &flags_or) : received_any(l, count, &flags_or);
	if (ferry_unlikely(flags_or & MSG_TRUNC)) {
		for (unsigned int i = 0; i < count; i++)
			mark_truncated(l, l->bufs[i], l->msgs[i].msg_hdr.msg_flags & MSG_TRUNC);
	}
	if (l->want_srcs && !l->dgram) {
		/* a stream socket has no per-read source */
		for (unsigned int i = 0; i < count; i++)
			if (l->msgs[i].msg_hdr.msg_namelen == 0)
				l->srcs[i].sa.sa_family = AF_UNSPEC;
	}
	l->stats->iterations++;
	l->stats->datagrams += count;
	l->stats->bytes += bytes;

	l->cb.batch(l->user, l->bufs, l->want_srcs ? l->srcs : NULL, count);

	if (ferry_unlikely(!bufs_unchanged(l)))
		return rearm_replaced(l, count);
	if (!l->reset_after)
		rearm_any(l, count);
	else if (l->want_srcs)
		rearm_reset(l, count, true);
	else
		rearm_reset(l, count, false);
	return 0;
}

/*
 * Whether the fd the loop started on is gone: closed, or its number now names
 * another file. epoll drops a closed file's registration without a word, so a
 * loop that yields right after its callback closed the fd would never hear
 * of it again.
 */
static bool fd_gone(const struct loop *l)
{
	struct stat st;

	if (l->proxy_fd >= 0)
		return false; /* the proxy stays readable: the next read finds out */
	return fstat(l->fd, &st) || st.st_dev != l->fd_dev || st.st_ino != l->fd_ino;
}

static void on_readable(void *user, uint32_t events)
{
	struct loop *l = user;

	(void)events; /* errors and hang-ups show in the receive itself */
	l->stats->wakeups++;
	for (unsigned int i = 0; i < l->max_ready; i++) {
		int ret;

		if (ferry_unlikely(stop_fired(l))) {
			loop_end(l, FERRY_END_STOPPED);
			return;
		}
		ret = l->kind == KIND_MMSG ? iterate_mmsg(l) : iterate_one(l);
		if (ferry_likely(ret == 0))
			continue;
		if (ret == -EAGAIN) {
			l->stats->yields_again++;
			return;
		}
		loop_end(l, ret);
		return;
	}
	/* No receive after the last callback: see whether it closed the fd (a syscall per max_ready batches). */
	if (ferry_unlikely(fd_gone(l))) {
		loop_end(l, FERRY_END_CLOSED);
		return;
	}
	l->stats->yields_max_ready++;
}

/* The reactor is being freed with the loop still on it: drop the loop, no on_end. */
static void on_reactor_free(void *user)
{
	free_loop(user);
}

static void on_stop(void *user, uint32_t events)
{
	(void)events;
	loop_end(user, FERRY_END_STOPPED);
}

/* What a public entry point asks of the engine. */
struct loop_request {
	enum loop_kind kind;
	bool srcs_if_asked; /* KIND_MMSG: pass sources when opts->create_srcs */
	const struct ferry_udp_config *config;
	int fd;
	const struct ferry_udp_loop_opts *opts;
	union loop_cb cb;
	void *user;
};

/*
 * What the fd is: sockets must be IPv4/IPv6 when sources are asked for (an
 * AF_UNIX address does not fit union ferry_sockaddr), recvmsg/recvmmsg need a
 * socket, and on datagram sockets a 0-byte receive is an empty datagram.
 */
static int probe_fd(struct loop *l)
{
	int domain = 0, type = 0;
	socklen_t len = sizeof(domain);
	struct stat st;
	bool is_sock;

	if (fstat(l->fd, &st))
		return -errno;
	l->fd_dev = st.st_dev;
	l->fd_ino = st.st_ino;
	is_sock = getsockopt(l->fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0;
	if (!is_sock && errno != ENOTSOCK)
		return -errno;
	if (is_sock) {
		len = sizeof(type);
		if (getsockopt(l->fd, SOL_SOCKET, SO_TYPE, &type, &len))
			return -errno;
	}
	l->dgram = is_sock && type == SOCK_DGRAM;
	switch (l->kind) {
	case KIND_READ:
	case KIND_READ_REP:
		l->use_read = !l->dgram; /* recvmsg on datagram sockets reports truncation */
		return 0;
	default:
		if (!is_sock)
			return -ENOTSOCK;
		if (l->want_srcs && domain != AF_INET && domain != AF_INET6)
			return -EAFNOSUPPORT;
		return 0;
	}
}

/* bufs, created, and for recvmmsg the message vectors. */
static int setup_buffers(struct loop *l, const struct ferry_udp_config *cfg, const struct ferry_udp_loop_opts *opts)
{
	size_t capacity = cfg->init ? ferry_iobuf_capacity(cfg->init) : cfg->capacity;
	struct ferry_iobuf *proto;
	unsigned int i;

	if (l->kind == KIND_MMSG) {
		l->nbufs = opts->max_count;
		if (!l->nbufs) {
			size_t def = capacity ? MMSG_BYTES / capacity : DEFAULT_MAX_COUNT_CAP;

			l->nbufs = (unsigned int)(def < 1 ? 1 : def > DEFAULT_MAX_COUNT_CAP ? DEFAULT_MAX_COUNT_CAP : def);
		}
	} else {
		l->nbufs = 1;
	}

	if (l->kind == KIND_MMSG && opts->bufs) {
		l->bufs = opts->bufs; /* the caller's array, used in place: replacements show there */
		for (i = 0; i < l->nbufs; i++)
			if (!l->bufs[i])
				return -EINVAL;
	} else {
		l->bufs_ours = true;
		l->bufs = l->nbufs == 1 ? &l->one_buf : calloc(l->nbufs, sizeof(*l->bufs));
		l->created = calloc(l->nbufs, sizeof(*l->created));
		if (!l->bufs || !l->created)
			return -ENOMEM;
		proto = cfg->init;
		if (!proto) {
			proto = ferry_iobuf_new(capacity);
			if (!proto)
				return -ENOMEM;
			l->created[0] = proto;
		}
		l->bufs[0] = proto;
		for (i = 1; i < l->nbufs; i++) {
			l->bufs[i] = l->created[i] = ferry_iobuf_clone(proto);
			if (!l->bufs[i])
				return -ENOMEM;
		}
	}

	if (l->want_srcs || l->kind == KIND_RECVFROM || l->kind == KIND_RECVFROM_REP) {
		l->srcs = calloc(l->nbufs, sizeof(*l->srcs));
		if (!l->srcs)
			return -ENOMEM;
	}
	if (l->kind == KIND_MMSG) {
		l->msgs = calloc(l->nbufs, sizeof(*l->msgs));
		l->iovs = calloc(l->nbufs, sizeof(*l->iovs));
		l->shadow = calloc(l->nbufs, sizeof(*l->shadow));
		if (!l->msgs || !l->iovs || !l->shadow)
			return -ENOMEM;
		l->stale = true; /* built before the first receive */
		for (i = 0; i < l->nbufs; i++) {
			l->msgs[i].msg_hdr.msg_iov = &l->iovs[i];
			l->msgs[i].msg_hdr.msg_iovlen = 1;
			if (l->want_srcs)
				l->msgs[i].msg_hdr.msg_name = &l->srcs[i];
		}
	}
	return 0;
}

/* Watches fd, or stands an always-readable eventfd in for one epoll refuses (regular files). */
static int watch_fd(struct loop *l)
{
	int err = ferry_reactor_add(l->r, l->fd, EPOLLIN, on_readable, l, &l->fd_w);

	if (err != -EPERM)
		return err;
	l->proxy_fd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->proxy_fd < 0)
		return -errno;
	return ferry_reactor_add(l->r, l->proxy_fd, EPOLLIN, on_readable, l, &l->fd_w);
}

static int run_loop(const struct loop_request *req)
{
	struct ferry_udp_config cfg;
	struct ferry_udp_loop_opts opts;
	struct ferry_reactor *own_r = NULL;
	struct loop *l;
	int result = RESULT_PENDING;
	int fl, err;

	ferry_udp_config_init(&cfg);
	memset(&opts, 0, sizeof(opts));
	if (!req->cb.batch ||
	    ferry__copy_opts(&cfg, offsetofend(struct ferry_udp_config, ferry_udp_config__last_field), req->config) ||
	    ferry__copy_opts(&opts, offsetofend(struct ferry_udp_loop_opts, ferry_udp_loop_opts__last_field), req->opts))
		return -EINVAL;
	if (!cfg.capacity)
		cfg.capacity = FERRY_UDP_DEFAULT_CAPACITY;
	if (!cfg.max_ready)
		cfg.max_ready = FERRY_UDP_DEFAULT_MAX_READY;
	if (req->fd < 0)
		return -EBADF;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->kind = req->kind;
	l->want_srcs = req->kind == KIND_RECVFROM || req->kind == KIND_RECVFROM_REP ||
		       (req->kind == KIND_MMSG && req->srcs_if_asked && opts.create_srcs);
	l->fd = req->fd;
	l->stop_fd = l->proxy_fd = -1;
	l->stop = cfg.stop;
	l->before = cfg.before;
	l->after = cfg.after;
	/* the defaults as ferry_udp_config_init() sets them (this file's copies of the inline functions) */
	l->flip_before = cfg.before == ferry_iobuf_flip_lo;
	l->reset_after = cfg.after == ferry_iobuf_reset;
	l->max_ready = cfg.max_ready;
	l->cb = req->cb;
	l->user = req->user;
	l->on_end = opts.on_end;
	l->end_user = opts.end_user;
	l->stats = opts.stats ? opts.stats : &l->own_stats;

	err = probe_fd(l);
	if (err)
		goto err_free;
	err = setup_buffers(l, &cfg, &opts);
	if (err)
		goto err_free;
	if (cfg.stop) {
		l->stop_fd = fcntl(ferry_stop_fd(cfg.stop), F_DUPFD_CLOEXEC, 0);
		if (l->stop_fd < 0) {
			err = -errno;
			goto err_free;
		}
	}

	l->r = opts.reactor;
	if (!l->r) {
		own_r = ferry_reactor_new();
		if (!own_r) {
			err = -errno;
			goto err_free;
		}
		l->r = own_r;
		l->result_out = &result;
	}
	fl = fcntl(l->fd, F_GETFL);
	if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(l->fd, F_SETFL, fl | O_NONBLOCK) < 0)) {
		err = -errno;
		goto err_reactor;
	}
	err = watch_fd(l);
	if (err)
		goto err_flags;
	if (l->stop_fd >= 0) {
		err = ferry_reactor_add(l->r, l->stop_fd, EPOLLIN, on_stop, l, &l->stop_w);
		if (err)
			goto err_unwatch;
	}
	ferry_reactor__on_free(l->fd_w, on_reactor_free); /* the fd watch only: once per loop */
	if (!own_r)
		return 0;

	/* Blocking: the loop is alone on its reactor, which empties when it ends. */
	err = ferry_reactor_run(own_r);
	if (result == RESULT_PENDING)
		loop_end(l, err ? err : -EIO);
	ferry_reactor_free(own_r);
	return result;

err_unwatch:
	ferry_reactor_del(l->r, l->fd_w);
err_flags:
	if (!(fl & O_NONBLOCK))
		fcntl(l->fd, F_SETFL, fl);
err_reactor:
	ferry_reactor_free(own_r);
err_free:
	free_loop(l);
	return err;
}

int ferry_udp_recvfrom_loop(const struct ferry_udp_config *config, int fd, const struct ferry_udp_loop_opts *opts,
			    ferry_udp_recvfrom_cb cb, void *user)
{
	struct loop_request req = {
		.kind = KIND_RECVFROM, .cb.recvfrom = cb, .config = config, .fd = fd, .opts = opts, .user = user
	};

	return run_loop(&req);
}

int ferry_udp_recvfrom_loop_with_buffer_replacement(const struct ferry_udp_config *config, int fd,
						    const struct ferry_udp_loop_opts *opts,
						    ferry_udp_recvfrom_replace_cb cb, void *user)
{
	struct loop_request req = {
		.kind = KIND_RECVFROM_REP, .cb.recvfrom_rep = cb, .config = config, .fd = fd, .opts = opts, .user = user
	};

	return run_loop(&req);
}

int ferry_udp_read_loop(const struct ferry_udp_config *config, int fd, const struct ferry_udp_loop_opts *opts,
			ferry_udp_read_cb cb, void *user)
{
	struct loop_request req = {
		.kind = KIND_READ, .cb.read = cb, .config = config, .fd = fd, .opts = opts, .user = user
	};

	return run_loop(&req);
}

int ferry_udp_read_loop_with_buffer_replacement(const struct ferry_udp_config *config, int fd,
						const struct ferry_udp_loop_opts *opts, ferry_udp_read_replace_cb cb,
						void *user)
{
	struct loop_request req = {
		.kind = KIND_READ_REP, .cb.read_rep = cb, .config = config, .fd = fd, .opts = opts, .user = user
	};

	return run_loop(&req);
}

int ferry_udp_recvmmsg_loop(const struct ferry_udp_config *config, int fd, const struct ferry_udp_loop_opts *opts,
			    ferry_udp_batch_cb cb, void *user)
{
	struct loop_request req = {
		.kind = KIND_MMSG, .srcs_if_asked = true, .cb.batch = cb, .config = config, .fd = fd, .opts = opts, .user = user
	};

	return run_loop(&req);
}

int ferry_udp_recvmmsg_no_sources_loop(const struct ferry_udp_config *config, int fd,
				       const struct ferry_udp_loop_opts *opts, ferry_udp_batch_cb cb, void *user)
{
	struct loop_request req = {
		.kind = KIND_MMSG, .cb.batch = cb, .config = config, .fd = fd, .opts = opts, .user = user
	};

	return run_loop(&req);
}
