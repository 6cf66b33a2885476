/* SPDX-License-Identifier: MIT */
/*
 * The client of ferryd (ferry/client.h): the control socket's attach, the
 * client side of the rings of ferry/ring.h, the batch loop over them and
 * sends into them.
 *
 * A session is what one attach gave: the mapped region and its pipes. It is
 * reference-counted: the client holds one reference while attached, and each
 * slot a callback kept holds one, so a kept buffer stays valid after ferryd
 * went away, the client reconnected, or was closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <ferry/client.h>

#include "reactor_internal.h"

#define DEFAULT_MAX_COUNT 64
#define MAX_COUNT_CAP 1024
#define REPLY_MS 1000
#define BACKOFF_MIN_MS 10
#define BACKOFF_MAX_MS 1000

/* what each fd of the client's epoll set is */
enum { EV_SELF = 1, EV_TIMER, EV_CTL, EV_WAKE };

/* where an RX slot is, as the client sees it */
enum { SLOT_FERRYD, SLOT_CB, SLOT_CB_FREED, SLOT_CB_SEEN, SLOT_KEPT };

/* One worker's rings, the client's side. */
struct csw {
	struct ferry_ring_idx *rx, *rx_ret, *tx, *tx_ret;
	const struct ferry_rx_desc *rx_desc;
	struct ferry_ret_desc *rx_ret_desc;
	struct ferry_tx_desc *tx_desc;
	const struct ferry_ret_desc *tx_ret_desc;
	uint8_t *rx_slot, *tx_slot;
	const struct ferry_ring_stats *stats;
	uint32_t rx_cons, rx_ret_prod, tx_prod, tx_ret_cons;
	uint32_t *tx_free, ntx_free;
	uint8_t *tx_mine; /* per TX slot: 1 while it is the client's */
	int kick_wr;
	bool rx_ret_dirty;
};

/* A zero-copy area: a queue's UMEM, read-only, and an iobuf and a state per frame. */
struct carea {
	uint8_t *map;
	size_t size;
	uint32_t frame_size, nframes, worker;
	struct ferry_iobuf *iob;
	uint8_t *state;
};

/* An RX slot's number (iobuf reserved): w * rx_slots + slot, or for a frame ZC_IDX | area << 20 | frame. */
#define ZC_IDX (1u << 31)
#define ZC_AREA(idx) (((idx) >> 20) & 0x7ff)
#define ZC_FRAME(idx) ((idx) & 0xfffff)

struct session {
	unsigned int refs; /* the client's while attached, one per kept slot */
	uint8_t *region;
	size_t size;
	int wake_rd;
	uint32_t id, nw, rx_slots, tx_slots, slot_size;
	bool gone;		 /* ferryd ended it: its rings are read, never written again */
	struct ferry_iobuf *iob; /* nw * rx_slots, one per RX slot: a kept one keeps its address */
	uint8_t *state;		 /* per RX slot */
	unsigned int kept;
	uint64_t bad_desc;	 /* entries from ferryd that named no slot of ours (never seen; counted) */
	uint32_t nareas;	 /* zero-copy: queues' UMEMs, mapped read-only */
	struct carea *areas;
	struct csw w[];
};

struct cloop;

struct ferry_client {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char service[32];
	uint32_t rx_slots, tx_slots, slot_size;
	bool reconnect, zero_copy;
	int epfd, self_efd, timer_fd, ctl;
	struct session *s;   /* attached, or NULL */
	struct session *old; /* ended by ferryd, what it left on the rings not yet delivered */
	unsigned int backoff_ms;
	int status; /* 0 attached, -ENOTCONN reconnecting, -ECONNRESET ended */
	char why[160];
	struct cloop *loop;
	bool in_cb, closed;
	uint64_t delivered, reconnects;
	unsigned int next_w;
};

static void set_why(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_why(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!why || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

static void addr_to(union ferry_sockaddr *out, const struct ferry_ring_addr *in)
{
	memset(out, 0, sizeof(*out));
	if (in->family == AF_INET6) {
		out->in6.sin6_family = AF_INET6;
		out->in6.sin6_port = in->port;
		out->in6.sin6_scope_id = in->scope_id;
		memcpy(&out->in6.sin6_addr, in->addr, 16);
	} else {
		out->in4.sin_family = AF_INET;
		out->in4.sin_port = in->port;
		memcpy(&out->in4.sin_addr, in->addr, 4);
	}
}

static void addr_from(struct ferry_ring_addr *out, const union ferry_sockaddr *in)
{
	memset(out, 0, sizeof(*out));
	out->family = in->sa.sa_family;
	if (in->sa.sa_family == AF_INET) {
		out->port = in->in4.sin_port;
		memcpy(out->addr, &in->in4.sin_addr, 4);
	} else {
		out->port = in->in6.sin6_port;
		out->scope_id = in->in6.sin6_scope_id;
		memcpy(out->addr, &in->in6.sin6_addr, 16);
	}
}

/* ---- sessions ---------------------------------------------------------------------------- */

static void session_unref(struct session *s)
{
	if (!s || --s->refs)
		return;
	for (uint32_t i = 0; i < s->nw; i++) {
		if (s->w[i].kick_wr >= 0)
			close(s->w[i].kick_wr);
		free(s->w[i].tx_free);
		free(s->w[i].tx_mine);
	}
	if (s->wake_rd >= 0)
		close(s->wake_rd);
	for (uint32_t a = 0; s->areas && a < s->nareas; a++) {
		if (s->areas[a].map)
			munmap(s->areas[a].map, s->areas[a].size);
		free(s->areas[a].iob);
		free(s->areas[a].state);
	}
	free(s->areas);
	if (s->region)
		munmap(s->region, s->size);
	free(s->iob);
	free(s->state);
	free(s);
}

static bool pow2_in(uint32_t v, uint32_t lo, uint32_t hi)
{
	return v >= lo && v <= hi && !(v & (v - 1));
}

/* [off, off + len) inside a region of size bytes. */
static bool inside(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

/* The region as ferryd described it, checked before a pointer into it is made. */
static int map_session(struct session *s, int memfd, const struct ferry_ctl_reply *rep, char *why, size_t whylen)
{
	const struct ferry_ring_header *h;
	struct stat st;

	if (fstat(memfd, &st) || (uint64_t)st.st_size != rep->region_size || st.st_size < (off_t)sizeof(*h)) {
		set_why(why, whylen, "the session's memory is not the size ferryd said");
		return -EPROTO;
	}
	s->size = (size_t)st.st_size;
	s->region = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (s->region == MAP_FAILED) {
		s->region = NULL;
		set_why(why, whylen, "mapping the session's %zu bytes: %s", s->size, strerror(errno));
		return -errno;
	}
	h = (const struct ferry_ring_header *)s->region;
	if (h->magic != FERRY_RING_MAGIC || h->version != FERRY_RING_VERSION || h->header_size != sizeof(*h) ||
	    h->region_size != s->size || h->nworkers != s->nw || (h->flags & ~FERRY_RING_ZEROCOPY) ||
	    h->nareas != rep->nareas || !h->nareas != !(h->flags & FERRY_RING_ZEROCOPY) ||
	    !pow2_in(h->rx_slots, FERRY_RING_MIN_SLOTS, FERRY_RING_MAX_SLOTS) ||
	    !pow2_in(h->tx_slots, FERRY_RING_MIN_SLOTS, FERRY_RING_MAX_SLOTS) || h->slot_size % 64 ||
	    h->slot_size < FERRY_RING_MIN_SLOT_SIZE || h->slot_size > FERRY_RING_MAX_SLOT_SIZE) {
		set_why(why, whylen, "the session's header is not one this libferry understands");
		return -EPROTO;
	}
	s->id = h->session;
	s->rx_slots = h->rx_slots;
	s->tx_slots = h->tx_slots;
	s->slot_size = h->slot_size;
	for (uint32_t i = 0; i < s->nw; i++) {
		const struct ferry_ring_worker *rw = &h->w[i];
		struct csw *w = &s->w[i];
		uint64_t idx = sizeof(struct ferry_ring_idx);

		if (!inside(rw->rx, idx, s->size) || !inside(rw->rx_ret, idx, s->size) || !inside(rw->tx, idx, s->size) ||
		    !inside(rw->tx_ret, idx, s->size) || !inside(rw->stats, sizeof(struct ferry_ring_stats), s->size) ||
		    !inside(rw->rx_desc, (uint64_t)s->rx_slots * sizeof(struct ferry_rx_desc), s->size) ||
		    !inside(rw->rx_ret_desc, (uint64_t)s->rx_slots * sizeof(struct ferry_ret_desc), s->size) ||
		    !inside(rw->tx_desc, (uint64_t)s->tx_slots * sizeof(struct ferry_tx_desc), s->size) ||
		    !inside(rw->tx_ret_desc, (uint64_t)s->tx_slots * sizeof(struct ferry_ret_desc), s->size) ||
		    !inside(rw->rx_slot, (uint64_t)s->rx_slots * s->slot_size, s->size) ||
		    !inside(rw->tx_slot, (uint64_t)s->tx_slots * s->slot_size, s->size) ||
		    ((rw->rx | rw->rx_ret | rw->tx | rw->tx_ret | rw->stats | rw->rx_desc | rw->rx_ret_desc | rw->tx_desc |
		      rw->tx_ret_desc) & (FERRY_RING_ALIGN - 1))) {
			set_why(why, whylen, "worker %u's rings lie outside the session's memory", i);
			return -EPROTO;
		}
		w->rx = (struct ferry_ring_idx *)(s->region + rw->rx);
		w->rx_ret = (struct ferry_ring_idx *)(s->region + rw->rx_ret);
		w->tx = (struct ferry_ring_idx *)(s->region + rw->tx);
		w->tx_ret = (struct ferry_ring_idx *)(s->region + rw->tx_ret);
		w->rx_desc = (const struct ferry_rx_desc *)(s->region + rw->rx_desc);
		w->rx_ret_desc = (struct ferry_ret_desc *)(s->region + rw->rx_ret_desc);
		w->tx_desc = (struct ferry_tx_desc *)(s->region + rw->tx_desc);
		w->tx_ret_desc = (const struct ferry_ret_desc *)(s->region + rw->tx_ret_desc);
		w->rx_slot = s->region + rw->rx_slot;
		w->tx_slot = s->region + rw->tx_slot;
		w->stats = (const struct ferry_ring_stats *)(s->region + rw->stats);
		/*
		 * The indices as they are now: a fresh session starts at 0, but nothing
		 * says it must. Our side's own: ferryd serves the session before we have
		 * it, so what it already put on rx (and tx_ret) waits past our consumer
		 * index, not past its producer's; starting there would lose those
		 * datagrams and their slots for good.
		 */
		w->rx_cons = __atomic_load_n(&w->rx->consumer, __ATOMIC_RELAXED);
		w->rx_ret_prod = __atomic_load_n(&w->rx_ret->producer, __ATOMIC_RELAXED);
		w->tx_prod = __atomic_load_n(&w->tx->producer, __ATOMIC_RELAXED);
		w->tx_ret_cons = __atomic_load_n(&w->tx_ret->consumer, __ATOMIC_RELAXED);
		w->tx_free = calloc(s->tx_slots, sizeof(*w->tx_free));
		w->tx_mine = calloc(s->tx_slots, 1);
		if (!w->tx_free || !w->tx_mine)
			return -ENOMEM;
		for (uint32_t k = 0; k < s->tx_slots; k++) {
			w->tx_free[w->ntx_free++] = s->tx_slots - 1 - k;
			w->tx_mine[k] = 1;
		}
	}
	s->iob = calloc((size_t)s->nw * s->rx_slots, sizeof(*s->iob));
	s->state = calloc((size_t)s->nw * s->rx_slots, 1);
	if (!s->iob || !s->state)
		return -ENOMEM;
	return 0;
}

/* The zero-copy areas the header describes, from their fds: mapped read-only (ferryd sealed them so). */
static int map_areas(struct session *s, const int *fds, char *why, size_t whylen)
{
	const struct ferry_ring_header *h = (const struct ferry_ring_header *)s->region;

	s->areas = calloc(h->nareas, sizeof(*s->areas));
	if (!s->areas)
		return -ENOMEM;
	s->nareas = h->nareas;
	for (uint32_t a = 0; a < s->nareas; a++) {
		const struct ferry_ring_area *ra = &h->areas[a];
		struct carea *ca = &s->areas[a];
		struct stat st;

		if (ra->worker >= s->nw || (ra->frame_size != 2048 && ra->frame_size != 4096) || !ra->size ||
		    ra->size % ra->frame_size || ra->size / ra->frame_size > (1u << 20) || fstat(fds[a], &st) ||
		    (uint64_t)st.st_size != ra->size) {
			set_why(why, whylen, "zero-copy area %u is not what the header says", a);
			return -EPROTO;
		}
		ca->size = ra->size;
		ca->frame_size = ra->frame_size;
		ca->nframes = (uint32_t)(ra->size / ra->frame_size);
		ca->worker = ra->worker;
		ca->map = mmap(NULL, ca->size, PROT_READ, MAP_SHARED, fds[a], 0);
		if (ca->map == MAP_FAILED) {
			ca->map = NULL;
			set_why(why, whylen, "mapping zero-copy area %u: %s", a, strerror(errno));
			return -errno;
		}
		ca->iob = calloc(ca->nframes, sizeof(*ca->iob));
		ca->state = calloc(ca->nframes, 1);
		if (!ca->iob || !ca->state)
			return -ENOMEM;
	}
	return 0;
}

/* Where RX slot (or frame) idx of s keeps its state, and its iobuf; NULL when idx names none. */
static inline __attribute__((always_inline)) uint8_t *slot_state(struct session *s, uint32_t idx)
{
	if (idx & ZC_IDX) {
		uint32_t a = ZC_AREA(idx), fi = ZC_FRAME(idx);

		return a < s->nareas && fi < s->areas[a].nframes ? &s->areas[a].state[fi] : NULL;
	}
	return idx < s->nw * s->rx_slots ? &s->state[idx] : NULL;
}

static struct ferry_iobuf *slot_iob(struct session *s, uint32_t idx)
{
	if (idx & ZC_IDX)
		return &s->areas[ZC_AREA(idx)].iob[ZC_FRAME(idx)];
	return &s->iob[idx];
}

/*
 * One attach over a new control connection: *out and *ctl on success, or
 * -errno with a reason.
 */
static int attach(struct ferry_client *c, struct session **out, int *ctl, char *why, size_t whylen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ferry_ctl_attach a;
	struct ferry_ctl_reply rep;
	struct iovec iov = { .iov_base = &rep, .iov_len = sizeof(rep) };
	union {
		char buf[CMSG_SPACE(sizeof(int) * FERRY_CTL_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct timeval tv = { .tv_sec = REPLY_MS / 1000, .tv_usec = (REPLY_MS % 1000) * 1000 };
	int fds[FERRY_CTL_MAX_FDS];
	unsigned int nfds = 0;
	struct session *s = NULL;
	ssize_t n;
	int fd, err;

	*out = NULL;
	*ctl = -1;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		set_why(why, whylen, "a unix socket: %s", strerror(errno));
		return err;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c->path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		set_why(why, whylen, "%s: %s%s", c->path, strerror(errno),
			err == -ENOENT || err == -ECONNREFUSED ? " (is ferryd running, with this --control?)" : "");
		close(fd);
		return err;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	memset(&a, 0, sizeof(a));
	a.magic = FERRY_CTL_MAGIC;
	a.version = FERRY_RING_VERSION;
	a.op = FERRY_CTL_ATTACH;
	memcpy(a.service, c->service, sizeof(a.service));
	a.rx_slots = c->rx_slots;
	a.tx_slots = c->tx_slots;
	a.slot_size = c->slot_size;
	a.flags = c->zero_copy ? FERRY_CTL_ZEROCOPY : 0;
	if (send(fd, &a, sizeof(a), MSG_NOSIGNAL) != (ssize_t)sizeof(a)) {
		err = errno == EAGAIN ? -ETIMEDOUT : -errno;
		set_why(why, whylen, "asking ferryd to attach: %s", strerror(-err));
		close(fd);
		return err;
	}
	do
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
			size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
				continue;
			for (size_t i = 0; i < k; i++) {
				int x;

				memcpy(&x, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
				if (nfds < sizeof(fds) / sizeof(fds[0]))
					fds[nfds++] = x;
				else
					close(x);
			}
		}
	}
	if (n < 0) {
		err = errno == EAGAIN ? -ETIMEDOUT : -errno;
		set_why(why, whylen, "waiting for ferryd's answer: %s", err == -ETIMEDOUT ? "none within a second"
											       : strerror(-err));
		goto fail;
	}
	if (n != (ssize_t)sizeof(rep) || rep.magic != FERRY_CTL_MAGIC || rep.op != FERRY_CTL_REPLY) {
		err = n == 0 ? -ECONNRESET : -EPROTO;
		set_why(why, whylen, "%s", n == 0 ? "ferryd closed the connection without an answer"
						  : "ferryd's answer is not one this libferry understands");
		goto fail;
	}
	rep.why[sizeof(rep.why) - 1] = '\0';
	if (rep.status) {
		err = rep.status < 0 ? rep.status : -EPROTO;
		set_why(why, whylen, "%s", rep.why[0] ? rep.why : strerror(-err));
		goto fail;
	}
	if (rep.version != FERRY_RING_VERSION || !rep.nworkers || rep.nworkers > FERRY_RING_MAX_WORKERS ||
	    rep.nareas > FERRY_RING_MAX_AREAS || (rep.nareas && !c->zero_copy) || nfds != 2 + rep.nworkers + rep.nareas) {
		err = -EPROTO;
		set_why(why, whylen, "ferryd's answer is not one this libferry understands (version %u, %u fds)",
			rep.version, nfds);
		goto fail;
	}
	s = calloc(1, sizeof(*s) + rep.nworkers * sizeof(s->w[0]));
	if (!s) {
		err = -ENOMEM;
		set_why(why, whylen, "out of memory");
		goto fail;
	}
	s->refs = 1;
	s->nw = rep.nworkers;
	s->wake_rd = fds[1];
	for (uint32_t i = 0; i < s->nw; i++)
		s->w[i].kick_wr = fds[2 + i];
	err = map_session(s, fds[0], &rep, why, whylen);
	if (!err && rep.nareas)
		err = map_areas(s, fds + 2 + s->nw, why, whylen);
	close(fds[0]);
	for (unsigned int i = 0; i < rep.nareas; i++)
		close(fds[2 + s->nw + i]); /* mapped (or not): the fds are not needed */
	nfds = 0; /* the session owns the rest now */
	if (err) {
		if (err == -ENOMEM)
			set_why(why, whylen, "out of memory");
		goto fail;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	*out = s;
	*ctl = fd;
	return 0;
fail:
	for (unsigned int i = 0; i < nfds; i++)
		close(fds[i]);
	session_unref(s);
	close(fd);
	return err;
}

static int ep_add(struct ferry_client *c, int fd, uint32_t what)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = what };

	return epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static int install(struct ferry_client *c, struct session *s, int ctl)
{
	int err = ep_add(c, ctl, EV_CTL);

	if (!err)
		err = ep_add(c, s->wake_rd, EV_WAKE);
	if (err) {
		epoll_ctl(c->epfd, EPOLL_CTL_DEL, ctl, NULL);
		return err;
	}
	c->s = s;
	c->ctl = ctl;
	c->status = 0;
	c->why[0] = '\0';
	c->backoff_ms = BACKOFF_MIN_MS;
	return 0;
}

static void arm_timer(struct ferry_client *c, unsigned int ms)
{
	struct itimerspec its = { .it_value = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L } };

	timerfd_settime(c->timer_fd, 0, &its, NULL);
}

static void self_kick(struct ferry_client *c)
{
	uint64_t one = 1;

	if (write(c->self_efd, &one, sizeof(one)) < 0) {
		/* full: it is readable already */
	}
}

/* The session is over (ferryd said so, or went away): what it put on the rings is still delivered. */
static void session_lost(struct ferry_client *c, int status, const char *why)
{
	struct session *s = c->s;

	if (!s)
		return;
	epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->ctl, NULL);
	epoll_ctl(c->epfd, EPOLL_CTL_DEL, s->wake_rd, NULL);
	close(c->ctl);
	c->ctl = -1;
	c->s = NULL;
	s->gone = true;
	session_unref(c->old); /* one left over from before: whatever it still held is given up */
	c->old = s;
	c->status = c->reconnect ? -ENOTCONN : status;
	snprintf(c->why, sizeof(c->why), "%s", why);
	if (c->reconnect && !c->closed)
		arm_timer(c, c->backoff_ms);
	self_kick(c); /* the loop delivers what is left */
}

/* What ferryd said on the control connection: only an end (or its going away) is expected. */
static void read_ctl(struct ferry_client *c)
{
	struct ferry_ctl_reply rep;
	ssize_t n;

	while (c->s) {
		n = recv(c->ctl, &rep, sizeof(rep), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n == (ssize_t)sizeof(rep) && rep.magic == FERRY_CTL_MAGIC && rep.op == FERRY_CTL_END) {
			rep.why[sizeof(rep.why) - 1] = '\0';
			session_lost(c, -ECONNRESET, rep.why[0] ? rep.why : "ferryd ended the session");
			return;
		}
		if (n <= 0) {
			session_lost(c, -ECONNRESET, n == 0 ? "ferryd closed the session (it stopped?)" : strerror(errno));
			return;
		}
		/* anything else: not for this version; ignored */
	}
}

static void try_reconnect(struct ferry_client *c)
{
	struct session *s;
	char why[sizeof(c->why)];
	int ctl, err;

	if (c->s || !c->reconnect || c->closed)
		return;
	err = attach(c, &s, &ctl, why, sizeof(why));
	if (!err) {
		err = install(c, s, ctl);
		if (!err) {
			c->reconnects++;
			return;
		}
		close(ctl);
		session_unref(s);
		snprintf(why, sizeof(why), "watching the session: %s", strerror(-err));
	}
	snprintf(c->why, sizeof(c->why), "%s", why);
	c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
	arm_timer(c, c->backoff_ms);
}

/* Everything the client's fd says: read, acted on, cleared. */
static void handle_events(struct ferry_client *c)
{
	struct epoll_event ev[8];
	int n = epoll_wait(c->epfd, ev, 8, 0);
	char buf[512];

	for (int i = 0; i < n; i++) {
		switch (ev[i].data.u32) {
		case EV_SELF: {
			uint64_t v;

			if (read(c->self_efd, &v, sizeof(v)) < 0) {
				/* not readable after all */
			}
			break;
		}
		case EV_TIMER: {
			uint64_t v;

			if (read(c->timer_fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
				try_reconnect(c);
			break;
		}
		case EV_CTL:
			read_ctl(c);
			break;
		case EV_WAKE:
			while (c->s && read(c->s->wake_rd, buf, sizeof(buf)) == (ssize_t)sizeof(buf))
				;
			break;
		}
	}
}

/* ---- slots back to ferryd -------------------------------------------------------------------- */

/* Per datagram of every batch: inlined into the loop. */
static inline __attribute__((always_inline)) void rx_return(struct session *s, uint32_t idx)
{
	bool zc = idx & ZC_IDX;
	uint32_t wi = zc ? s->areas[ZC_AREA(idx)].worker : idx / s->rx_slots;
	struct csw *w = &s->w[wi];
	struct ferry_ret_desc *d;

	*slot_state(s, idx) = SLOT_FERRYD;
	if (s->gone)
		return;
	d = &w->rx_ret_desc[w->rx_ret_prod & (s->rx_slots - 1)];
	d->slot = zc ? ZC_FRAME(idx) : idx % s->rx_slots;
	d->area = zc ? ZC_AREA(idx) + 1 : 0;
	w->rx_ret_prod++;
	w->rx_ret_dirty = true;
}

/* rx_return() of each of a batch's n slots (copies or frames), the loads of every slot done once. */
static void rx_return_batch(struct session *s, struct ferry_iobuf *const *bufs, unsigned int n)
{
	uint32_t rx_slots = s->rx_slots, mask = rx_slots - 1;
	uint8_t *state = s->state;
	bool gone = s->gone;

	for (unsigned int i = 0; i < n; i++) {
		uint32_t idx = bufs[i]->reserved, wi;
		struct ferry_ret_desc *d;
		struct csw *w;

		if (idx & ZC_IDX) {
			rx_return(s, idx);
			continue;
		}
		state[idx] = SLOT_FERRYD;
		if (gone)
			continue;
		wi = idx / rx_slots;
		w = &s->w[wi];
		d = &w->rx_ret_desc[w->rx_ret_prod++ & mask];
		d->slot = idx & mask;
		d->area = 0;
		w->rx_ret_dirty = true;
	}
}

static void rx_publish(struct session *s)
{
	for (uint32_t i = 0; i < s->nw; i++) {
		struct csw *w = &s->w[i];

		if (!w->rx_ret_dirty)
			continue;
		w->rx_ret_dirty = false;
		__atomic_store_n(&w->rx_ret->producer, w->rx_ret_prod, __ATOMIC_RELEASE);
	}
}

/* The slot iobuf b of a session, or NULL when b is not one. */
static struct session *slot_of(struct ferry_iobuf *b, uint32_t *idx)
{
	struct session *s;

	if (!b || !(b->flags & FERRY_IOBUF_SLOT) || !b->cookie)
		return NULL;
	s = (struct session *)(uintptr_t)b->cookie;
	*idx = b->reserved;
	if (!slot_state(s, *idx) || slot_iob(s, *idx) != b)
		return NULL;
	return s;
}

void ferry__client_slot_free(struct ferry_iobuf *b)
{
	uint32_t idx;
	struct session *s = slot_of(b, &idx);

	if (!s)
		return;
	switch (*slot_state(s, idx)) {
	case SLOT_KEPT:
		rx_return(s, idx);
		rx_publish(s);
		s->kept--;
		session_unref(s); /* may free it: last */
		break;
	case SLOT_CB:
		/* freed inside the callback that has it: given back when the callback returns */
		*slot_state(s, idx) = SLOT_CB_FREED;
		break;
	default:
		break; /* freed twice, or never kept: nothing to do */
	}
}

/* ---- the loop ------------------------------------------------------------------------------- */

struct cloop {
	struct ferry_client *c;
	struct ferry_reactor *r;
	struct ferry_watch *w, *stop_w;
	int stop_fd;
	struct ferry_stop *stop;
	ferry_iobuf_fn before, after;
	bool flip_before; /* before is the default, ferry_iobuf_flip_lo: done inline (in gather) */
	bool reset_after; /* after is the default, ferry_iobuf_reset: done inline */
	unsigned int max_ready, max_count;
	ferry_udp_batch_cb cb;
	void *user;
	ferry_udp_end_cb on_end;
	void *end_user;
	struct ferry_udp_loop_stats *stats, own_stats;
	int *result_out;
	struct ferry_iobuf **bufs, **orig;
	union ferry_sockaddr *srcs;
	uint64_t bytes; /* of the batch gather() took, with flip_before: before needs no pass of its own */
};

static void free_client(struct ferry_client *c);

static void free_cloop(struct cloop *l)
{
	if (l->stop_fd >= 0)
		close(l->stop_fd);
	free(l->bufs);
	free(l->orig);
	free(l->srcs);
	free(l);
}

static void cloop_end(struct cloop *l, int result)
{
	struct ferry_client *c = l->c;

	ferry_reactor_del(l->r, l->w);
	ferry_reactor_del(l->r, l->stop_w);
	l->w = l->stop_w = NULL;
	c->loop = NULL;
	if (l->result_out)
		*l->result_out = result;
	if (l->on_end)
		l->on_end(l->end_user, result, NULL);
	free_cloop(l);
}

static void on_reactor_free(void *user)
{
	struct cloop *l = user;

	l->c->loop = NULL;
	free_cloop(l);
}

/* Up to max datagrams off s's rx rings, into l->bufs/srcs from position 0. */
static unsigned int gather(struct ferry_client *c, struct session *s, struct cloop *l)
{
	unsigned int n = 0, max = l->max_count;
	uint32_t mask = s->rx_slots - 1;
	uint64_t bytes = 0;

	for (uint32_t k = 0; k < s->nw && n < max; k++) {
		uint32_t wi = (c->next_w + k) % s->nw;
		struct csw *w = &s->w[wi];
		uint32_t prod = __atomic_load_n(&w->rx->producer, __ATOMIC_ACQUIRE);
		uint32_t avail = prod - w->rx_cons;

		if (avail > s->rx_slots)
			avail = s->rx_slots; /* not what ferryd does; read no further than the ring */
		for (; avail && n < max; avail--) {
			const struct ferry_rx_desc *d = &w->rx_desc[w->rx_cons++ & mask];
			uint32_t slot = d->slot, len = d->len, off = d->off, area = d->area, idx;
			struct ferry_iobuf *b;
			uint8_t *st;

			if (area) {
				/* zero-copy: a frame of a queue this worker owns, read-only; its limits are the datagram */
				const struct carea *ca = area <= s->nareas ? &s->areas[area - 1] : NULL;

				idx = ZC_IDX | (area - 1) << 20 | slot;
				if (!ca || ca->worker != wi || slot >= ca->nframes || off > ca->frame_size ||
				    len > ca->frame_size - off || *(st = slot_state(s, idx)) != SLOT_FERRYD) {
					s->bad_desc++;
					continue;
				}
				b = slot_iob(s, idx);
				b->data = ca->map + (size_t)slot * ca->frame_size;
				b->hi = b->hi_max = off + len;
			} else {
				idx = wi * s->rx_slots + slot;
				if (slot >= s->rx_slots || off > s->slot_size || len > s->slot_size - off ||
				    *(st = slot_state(s, idx)) != SLOT_FERRYD) {
					s->bad_desc++;
					continue;
				}
				b = slot_iob(s, idx);
				b->data = w->rx_slot + (size_t)slot * s->slot_size;
				b->hi = b->hi_max = s->slot_size;
			}
			/* as if received at lo: before (flip_lo by default, done here) makes the datagram the window */
			b->lo_min = off;
			if (l->flip_before) {
				b->lo = off;
				b->hi = off + len;
				bytes += len;
			} else {
				b->lo = off + len;
			}
			b->flags = FERRY_IOBUF_SLOT;
			b->reserved = idx;
			b->cookie = (uint64_t)(uintptr_t)s;
			*st = SLOT_CB;
			addr_to(&l->srcs[n], &d->src);
			l->bufs[n] = l->orig[n] = b;
			n++;
		}
		__atomic_store_n(&w->rx->consumer, w->rx_cons, __ATOMIC_RELEASE);
	}
	c->next_w = (c->next_w + 1) % s->nw;
	l->bytes = bytes;
	return n;
}

/*
 * After the callback: each slot it still has in bufs goes back; one it took
 * out (replaced) is kept; a kept one it gave back as a replacement goes back.
 */
static void settle(struct cloop *l, struct session *s, unsigned int n)
{
	bool same = true;

	for (unsigned int i = 0; i < n; i++)
		same &= l->bufs[i] == l->orig[i];
	if (same) {
		rx_return_batch(s, l->orig, n);
		rx_publish(s);
		return;
	}
	/* which of the batch's slots are still anywhere in bufs */
	for (unsigned int i = 0; i < n; i++) {
		uint32_t idx;
		struct session *x = slot_of(l->bufs[i], &idx);

		if (x == s && (*slot_state(s, idx) == SLOT_CB || *slot_state(s, idx) == SLOT_CB_FREED))
			*slot_state(s, idx) = SLOT_CB_SEEN;
	}
	for (unsigned int i = 0; i < n; i++) {
		uint32_t idx = l->orig[i]->reserved;

		uint8_t *st = slot_state(s, idx);

		if (*st == SLOT_CB) {
			*st = SLOT_KEPT;
			s->kept++;
			s->refs++;
		} else if (*st == SLOT_CB_SEEN || *st == SLOT_CB_FREED) {
			rx_return(s, idx);
		}
	}
	/* replacements that are slots kept earlier: given back */
	for (unsigned int i = 0; i < n; i++) {
		uint32_t idx;
		struct session *x = slot_of(l->bufs[i], &idx);

		if (x && *slot_state(x, idx) == SLOT_KEPT) {
			rx_return(x, idx);
			rx_publish(x);
			x->kept--;
			session_unref(x);
		}
	}
	rx_publish(s);
}

/* One batch from s through the callback. false: the loop ended inside (the client was closed). */
static bool deliver(struct cloop *l, struct session *s, unsigned int n)
{
	struct ferry_client *c = l->c;
	uint64_t bytes = 0;

	if (l->flip_before) {
		bytes = l->bytes; /* done in gather() */
	} else {
		for (unsigned int i = 0; i < n; i++) {
			if (l->before)
				l->before(l->bufs[i]);
			bytes += l->bufs[i]->hi - l->bufs[i]->lo;
		}
	}
	l->stats->iterations++;
	l->stats->datagrams += n;
	l->stats->bytes += bytes;
	c->delivered += n;
	s->refs++; /* the callback may close the client: the batch's session stays until settled */
	c->in_cb = true;
	l->cb(l->user, l->bufs, l->srcs, n);
	c->in_cb = false;
	if (l->reset_after)
		for (unsigned int i = 0; i < n; i++)
			ferry_iobuf_reset(l->bufs[i]);
	else
		for (unsigned int i = 0; i < n && l->after; i++)
			l->after(l->bufs[i]);
	settle(l, s, n);
	session_unref(s);
	if (c->closed) {
		cloop_end(l, FERRY_END_CLOSED);
		free_client(c);
		return false;
	}
	return true;
}

/* About to sleep: asks every worker for a wake-up, then looks once more. true: nothing came. */
static bool sleep_ok(struct session *s)
{
	bool empty = true;

	for (uint32_t i = 0; i < s->nw; i++)
		__atomic_store_n(&s->w[i].rx->flags, FERRY_RING_NEED_WAKEUP, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (uint32_t i = 0; i < s->nw && empty; i++)
		empty = __atomic_load_n(&s->w[i].rx->producer, __ATOMIC_ACQUIRE) == s->w[i].rx_cons;
	if (!empty)
		for (uint32_t i = 0; i < s->nw; i++)
			__atomic_store_n(&s->w[i].rx->flags, 0, __ATOMIC_RELAXED);
	return empty;
}

static void on_ready(void *user, uint32_t events)
{
	struct cloop *l = user;
	struct ferry_client *c = l->c;
	unsigned int it;

	(void)events;
	l->stats->wakeups++;
	handle_events(c);
	if (c->s)
		for (uint32_t i = 0; i < c->s->nw; i++) /* awake: ferryd need not wake us while we look */
			__atomic_store_n(&c->s->w[i].rx->flags, 0, __ATOMIC_RELAXED);
	for (it = 0; it < l->max_ready; it++) {
		struct session *s = c->old ? c->old : c->s;
		unsigned int n;

		if (l->stop && ferry_stop_is_fired(l->stop)) {
			cloop_end(l, FERRY_END_STOPPED);
			return;
		}
		if (!s)
			break;
		n = gather(c, s, l);
		if (!n) {
			if (s == c->old) {
				/* all it left delivered: what callbacks keep of it stays theirs */
				c->old = NULL;
				session_unref(s);
				continue;
			}
			if (sleep_ok(s)) {
				l->stats->yields_again++;
				break;
			}
			continue;
		}
		if (!deliver(l, s, n))
			return;
	}
	if (it == l->max_ready) {
		l->stats->yields_max_ready++;
		self_kick(c); /* more may wait: after the reactor's other work had its turn */
	}
	if (!c->s && !c->old && !c->reconnect)
		cloop_end(l, FERRY_END_CLOSED);
}

static void on_stop(void *user, uint32_t events)
{
	struct cloop *l = user;

	(void)events;
	cloop_end(l, FERRY_END_STOPPED);
}

int ferry_client_recvmmsg_loop(const struct ferry_udp_config *config, struct ferry_client *c,
			       const struct ferry_udp_loop_opts *opts, ferry_udp_batch_cb cb, void *user)
{
	struct ferry_udp_config cfg;
	struct ferry_udp_loop_opts o;
	struct ferry_reactor *own_r = NULL;
	int result = INT_MIN, err;
	struct cloop *l;

	ferry_udp_config_init(&cfg);
	memset(&o, 0, sizeof(o));
	if (!c || !cb || ferry__copy_opts(&cfg, offsetofend(struct ferry_udp_config, ferry_udp_config__last_field), config) ||
	    ferry__copy_opts(&o, offsetofend(struct ferry_udp_loop_opts, ferry_udp_loop_opts__last_field), opts) || o.bufs ||
	    o.max_count > MAX_COUNT_CAP)
		return -EINVAL;
	if (c->loop || c->in_cb)
		return -EBUSY;
	if (c->closed)
		return -EBADF;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->c = c;
	l->stop_fd = -1;
	l->stop = cfg.stop;
	l->before = cfg.before;
	l->after = cfg.after;
	l->flip_before = ferry__udp_default_before(cfg.before);
	l->reset_after = ferry__udp_default_after(cfg.after);
	l->max_ready = cfg.max_ready ? cfg.max_ready : FERRY_UDP_DEFAULT_MAX_READY;
	l->max_count = o.max_count ? o.max_count : DEFAULT_MAX_COUNT;
	l->cb = cb;
	l->user = user;
	l->on_end = o.on_end;
	l->end_user = o.end_user;
	l->stats = o.stats ? o.stats : &l->own_stats;
	l->bufs = calloc(l->max_count, sizeof(*l->bufs));
	l->orig = calloc(l->max_count, sizeof(*l->orig));
	l->srcs = calloc(l->max_count, sizeof(*l->srcs));
	err = -ENOMEM;
	if (!l->bufs || !l->orig || !l->srcs)
		goto err_free;
	if (cfg.stop) {
		l->stop_fd = fcntl(ferry_stop_fd(cfg.stop), F_DUPFD_CLOEXEC, 0);
		if (l->stop_fd < 0) {
			err = -errno;
			goto err_free;
		}
	}
	l->r = o.reactor;
	if (!l->r) {
		own_r = ferry_reactor_new();
		if (!own_r) {
			err = -errno;
			goto err_free;
		}
		l->r = own_r;
		l->result_out = &result;
	}
	err = ferry_reactor_add(l->r, c->epfd, EPOLLIN, on_ready, l, &l->w);
	if (err)
		goto err_reactor;
	if (l->stop_fd >= 0) {
		err = ferry_reactor_add(l->r, l->stop_fd, EPOLLIN, on_stop, l, &l->stop_w);
		if (err) {
			ferry_reactor_del(l->r, l->w);
			goto err_reactor;
		}
	}
	ferry_reactor__on_free(l->w, on_reactor_free);
	c->loop = l;
	self_kick(c); /* whatever waits on the rings now is taken at the first turn */
	if (!own_r)
		return 0;
	err = ferry_reactor_run(own_r);
	if (result == INT_MIN && c->loop == l)
		cloop_end(l, err ? err : -EIO);
	ferry_reactor_free(own_r);
	return result;

err_reactor:
	ferry_reactor_free(own_r);
err_free:
	free_cloop(l);
	return err;
}

/* ---- sending -------------------------------------------------------------------------------- */

/* TX slots ferryd gave back. */
static void tx_reap(struct session *s, struct csw *w)
{
	uint32_t prod = __atomic_load_n(&w->tx_ret->producer, __ATOMIC_ACQUIRE);

	for (; w->tx_ret_cons != prod; w->tx_ret_cons++) {
		uint32_t slot = w->tx_ret_desc[w->tx_ret_cons & (s->tx_slots - 1)].slot;

		if (slot < s->tx_slots && !w->tx_mine[slot]) {
			w->tx_mine[slot] = 1;
			w->tx_free[w->ntx_free++] = slot;
		}
	}
	__atomic_store_n(&w->tx_ret->consumer, w->tx_ret_cons, __ATOMIC_RELEASE);
}

/* A free TX slot of w, or false: then ferryd is asked to wake the client when one comes back. */
static bool tx_slot(struct session *s, struct csw *w, uint32_t *slot)
{
	if (!w->ntx_free) {
		tx_reap(s, w);
		if (!w->ntx_free) {
			__atomic_store_n(&w->tx_ret->flags, FERRY_RING_NEED_WAKEUP, __ATOMIC_RELAXED);
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			tx_reap(s, w);
			if (!w->ntx_free)
				return false;
		}
		__atomic_store_n(&w->tx_ret->flags, 0, __ATOMIC_RELAXED);
	}
	*slot = w->tx_free[--w->ntx_free];
	w->tx_mine[*slot] = 0;
	return true;
}

int ferry_client_send(struct ferry_client *c, struct ferry_iobuf *const *bufs, const union ferry_sockaddr *dsts,
		      unsigned int count)
{
	struct session *s;
	uint64_t dirty = 0;
	unsigned int i;
	int err = 0;

	if (!c || (count && (!bufs || !dsts)))
		return -EINVAL;
	s = c->s;
	if (!s)
		return -ENOTCONN;
	for (i = 0; i < count; i++) {
		const struct ferry_iobuf *b = bufs[i];
		size_t len = b->hi - b->lo;
		struct csw *w;
		struct ferry_tx_desc *d;
		uint32_t k, slot;

		if (len > s->slot_size) {
			err = -EMSGSIZE;
			break;
		}
		if (dsts[i].sa.sa_family != AF_INET && dsts[i].sa.sa_family != AF_INET6) {
			err = -EAFNOSUPPORT;
			break;
		}
		/* one worker per destination: what goes to one peer leaves in order */
		k = s->nw == 1 ? 0 : (uint32_t)(((uint64_t)ferry_sockaddr_hash(&dsts[i]) * s->nw) >> 32);
		w = &s->w[k];
		if (!tx_slot(s, w, &slot))
			break;
		memcpy(w->tx_slot + (size_t)slot * s->slot_size, b->data + b->lo, len);
		d = &w->tx_desc[w->tx_prod & (s->tx_slots - 1)];
		d->slot = slot;
		d->len = (uint32_t)len;
		d->off = 0;
		d->reserved = 0;
		addr_from(&d->dst, &dsts[i]);
		w->tx_prod++;
		dirty |= 1ull << k;
	}
	for (uint32_t k = 0; dirty && k < s->nw; k++) {
		struct csw *w = &s->w[k];

		if (!(dirty & (1ull << k)))
			continue;
		__atomic_store_n(&w->tx->producer, w->tx_prod, __ATOMIC_RELEASE);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (__atomic_load_n(&w->tx->flags, __ATOMIC_RELAXED) & FERRY_RING_NEED_WAKEUP) {
			if (write(w->kick_wr, "", 1) < 0) {
				/* full: ferryd has a wake-up pending already */
			}
		}
	}
	return i == 0 && err ? err : (int)i;
}

/* ---- the client ----------------------------------------------------------------------------- */

static void free_client(struct ferry_client *c)
{
	if (c->s && c->ctl >= 0) {
		struct ferry_ctl_attach bye = { .magic = FERRY_CTL_MAGIC, .version = FERRY_RING_VERSION,
						.op = FERRY_CTL_DETACH };

		if (send(c->ctl, &bye, sizeof(bye), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			/* closing says the same */
		}
	}
	if (c->ctl >= 0)
		close(c->ctl);
	session_unref(c->s);
	session_unref(c->old);
	if (c->epfd >= 0)
		close(c->epfd);
	if (c->self_efd >= 0)
		close(c->self_efd);
	if (c->timer_fd >= 0)
		close(c->timer_fd);
	free(c);
}

int ferry_client_connect(const struct ferry_client_opts *opts, struct ferry_client **out)
{
	struct ferry_client_opts o;
	struct ferry_client *c;
	const char *path;
	struct session *s;
	char *why;
	size_t whylen;
	int err, ctl;

	if (!out)
		return -EINVAL;
	*out = NULL;
	memset(&o, 0, sizeof(o));
	err = ferry__copy_opts(&o, offsetofend(struct ferry_client_opts, ferry_client_opts__last_field), opts);
	why = o.why;
	whylen = o.whylen;
	if (why && whylen)
		why[0] = '\0';
	if (!opts || err) {
		set_why(why, whylen, "bad options (sz, or fields this libferry does not know)");
		return -EINVAL;
	}
	path = o.socket_path ? o.socket_path : FERRY_CTL_DEFAULT_PATH;
	if (!o.service || !o.service[0] || strlen(o.service) >= sizeof(c->service)) {
		set_why(why, whylen, "a service name of 1 to %zu characters is needed", sizeof(c->service) - 1);
		return -EINVAL;
	}
	if (strlen(path) >= sizeof(c->path)) {
		set_why(why, whylen, "socket path longer than %zu", sizeof(c->path) - 1);
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->epfd = c->self_efd = c->timer_fd = c->ctl = -1;
	snprintf(c->path, sizeof(c->path), "%s", path);
	snprintf(c->service, sizeof(c->service), "%s", o.service);
	c->rx_slots = o.rx_slots;
	c->tx_slots = o.tx_slots;
	c->slot_size = o.slot_size;
	c->reconnect = o.reconnect;
	c->zero_copy = o.zero_copy;
	c->backoff_ms = BACKOFF_MIN_MS;
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	c->self_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	c->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (c->epfd < 0 || c->self_efd < 0 || c->timer_fd < 0 || (err = ep_add(c, c->self_efd, EV_SELF)) ||
	    (err = ep_add(c, c->timer_fd, EV_TIMER))) {
		err = err ? err : -errno;
		set_why(why, whylen, "%s", strerror(-err));
		free_client(c);
		return err;
	}
	err = attach(c, &s, &ctl, why, whylen);
	if (err) {
		free_client(c);
		return err;
	}
	err = install(c, s, ctl);
	if (err) {
		close(ctl);
		session_unref(s);
		set_why(why, whylen, "%s", strerror(-err));
		free_client(c);
		return err;
	}
	*out = c;
	return 0;
}

void ferry_client_close(struct ferry_client *c)
{
	if (!c || c->closed)
		return;
	c->closed = true;
	if (c->in_cb)
		return; /* the loop ends, and frees it, once the callback returns */
	if (c->loop)
		cloop_end(c->loop, FERRY_END_CLOSED);
	free_client(c);
}

int ferry_client_fd(const struct ferry_client *c)
{
	return c ? c->epfd : -EINVAL;
}

int ferry_client_process(struct ferry_client *c)
{
	if (!c)
		return -EINVAL;
	if (c->loop)
		return -EBUSY;
	handle_events(c);
	if (c->old) {
		/* no loop to deliver what it left */
		session_unref(c->old);
		c->old = NULL;
	}
	return c->s || c->reconnect ? 0 : FERRY_END_CLOSED;
}

int ferry_client_stats(const struct ferry_client *c, struct ferry_client_stats *out)
{
	const struct session *s;

	if (!c || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->delivered = c->delivered;
	out->reconnects = c->reconnects;
	s = c->s;
	if (!s)
		return 0;
	out->session = s->id;
	out->workers = s->nw;
	out->kept = s->kept;
	for (uint32_t i = 0; i < s->nw; i++) {
		const struct ferry_ring_stats *st = s->w[i].stats;

		out->rx_packets += __atomic_load_n(&st->rx_packets, __ATOMIC_RELAXED);
		out->rx_bytes += __atomic_load_n(&st->rx_bytes, __ATOMIC_RELAXED);
		out->rx_dropped_full += __atomic_load_n(&st->rx_dropped_full, __ATOMIC_RELAXED);
		out->rx_dropped_big += __atomic_load_n(&st->rx_dropped_big, __ATOMIC_RELAXED);
		out->rx_zero_copy += __atomic_load_n(&st->rx_zero_copy, __ATOMIC_RELAXED);
		out->tx_packets += __atomic_load_n(&st->tx_packets, __ATOMIC_RELAXED);
		out->tx_bytes += __atomic_load_n(&st->tx_bytes, __ATOMIC_RELAXED);
		out->tx_dropped += __atomic_load_n(&st->tx_dropped, __ATOMIC_RELAXED);
		out->wakeups += __atomic_load_n(&st->wakeups, __ATOMIC_RELAXED);
	}
	return 0;
}

int ferry_client_status(const struct ferry_client *c, char *why, size_t whylen)
{
	if (!c)
		return -EINVAL;
	if (why && whylen)
		snprintf(why, whylen, "%s", c->why);
	return c->s ? 0 : c->status ? c->status : -ENOTCONN;
}
