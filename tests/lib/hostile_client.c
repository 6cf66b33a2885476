/* SPDX-License-Identifier: MIT */
/* A raw client of ferry/ring.h (hostile_client.h): written from the ABI, sharing no code with libferry. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "hostile_client.h"

#define ATTACH_MS 3000

int ferry_test_ctl_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int ferry_test_ctl_send(int fd, const void *msg, size_t len, const int *fds, unsigned int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 253)]; /* SCM_MAX_FD */
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (nfds > 253)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *cm;

		memset(&u, 0, sizeof(u));
		m.msg_control = u.buf;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	n = sendmsg(fd, &m, MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EMSGSIZE;
}

ssize_t ferry_test_ctl_recv(int fd, void *buf, size_t len, int *fds, unsigned int maxfds, unsigned int *nfds,
			    int timeout_ms)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * FERRY_CTL_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct pollfd p = { .fd = fd, .events = POLLIN };
	unsigned int got = 0;
	ssize_t n;
	int r;

	if (nfds)
		*nfds = 0;
	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	do
		n = recvmsg(fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int x;

			memcpy(&x, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (fds && got < maxfds)
				fds[got] = x;
			else
				close(x);
			got++;
		}
	}
	if (nfds)
		*nfds = got;
	return n;
}

void ferry_test_ctl_attach_msg(struct ferry_ctl_attach *a, const char *service, uint32_t rx_slots,
			       uint32_t tx_slots, uint32_t slot_size)
{
	memset(a, 0, sizeof(*a));
	a->magic = FERRY_CTL_MAGIC;
	a->version = FERRY_RING_VERSION;
	a->op = FERRY_CTL_ATTACH;
	snprintf(a->service, sizeof(a->service), "%s", service);
	a->rx_slots = rx_slots;
	a->tx_slots = tx_slots;
	a->slot_size = slot_size;
}

static bool inside(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

/* Every ring of the header inside the region: a ferryd that said otherwise would fault us, not itself. */
static int map_rings(struct ferry_test_raw *r, char *why, size_t whylen)
{
	const struct ferry_ring_header *h = r->h;

	if (h->magic != FERRY_RING_MAGIC || h->version != FERRY_RING_VERSION || h->header_size != sizeof(*h) ||
	    h->region_size != r->size || h->nworkers != r->nw || !h->rx_slots || (h->rx_slots & (h->rx_slots - 1)) ||
	    !h->tx_slots || (h->tx_slots & (h->tx_slots - 1)) || !h->slot_size) {
		snprintf(why, whylen, "the region's header is not what ring.h describes");
		return -EPROTO;
	}
	for (unsigned int i = 0; i < r->nw; i++) {
		const struct ferry_ring_worker *rw = &h->w[i];
		struct ferry_test_raw_wk *w = &r->w[i];
		uint64_t idx = sizeof(struct ferry_ring_idx);

		if (!inside(rw->rx, idx, r->size) || !inside(rw->rx_ret, idx, r->size) || !inside(rw->tx, idx, r->size) ||
		    !inside(rw->tx_ret, idx, r->size) || !inside(rw->stats, sizeof(struct ferry_ring_stats), r->size) ||
		    !inside(rw->rx_desc, (uint64_t)h->rx_slots * sizeof(struct ferry_rx_desc), r->size) ||
		    !inside(rw->rx_ret_desc, (uint64_t)h->rx_slots * sizeof(struct ferry_ret_desc), r->size) ||
		    !inside(rw->tx_desc, (uint64_t)h->tx_slots * sizeof(struct ferry_tx_desc), r->size) ||
		    !inside(rw->tx_ret_desc, (uint64_t)h->tx_slots * sizeof(struct ferry_ret_desc), r->size) ||
		    !inside(rw->rx_slot, (uint64_t)h->rx_slots * h->slot_size, r->size) ||
		    !inside(rw->tx_slot, (uint64_t)h->tx_slots * h->slot_size, r->size)) {
			snprintf(why, whylen, "worker %u's rings lie outside the region", i);
			return -EPROTO;
		}
		w->rx = (struct ferry_ring_idx *)(r->region + rw->rx);
		w->rx_ret = (struct ferry_ring_idx *)(r->region + rw->rx_ret);
		w->tx = (struct ferry_ring_idx *)(r->region + rw->tx);
		w->tx_ret = (struct ferry_ring_idx *)(r->region + rw->tx_ret);
		w->rx_desc = (struct ferry_rx_desc *)(r->region + rw->rx_desc);
		w->rx_ret_desc = (struct ferry_ret_desc *)(r->region + rw->rx_ret_desc);
		w->tx_desc = (struct ferry_tx_desc *)(r->region + rw->tx_desc);
		w->tx_ret_desc = (struct ferry_ret_desc *)(r->region + rw->tx_ret_desc);
		w->rx_slot = r->region + rw->rx_slot;
		w->tx_slot = r->region + rw->tx_slot;
		w->stats = (struct ferry_ring_stats *)(r->region + rw->stats);
	}
	return 0;
}

static void raw_init(struct ferry_test_raw *r)
{
	memset(r, 0, sizeof(*r));
	r->ctl = r->wake_rd = -1;
	for (unsigned int i = 0; i < FERRY_RING_MAX_WORKERS; i++)
		r->kick[i] = -1;
	for (unsigned int i = 0; i < FERRY_RING_MAX_AREAS; i++)
		r->area_fd[i] = -1;
	r->nareas = 0;
}

int ferry_test_raw_attach(struct ferry_test_raw *r, const char *control, const struct ferry_ctl_attach *a,
			  char *why, size_t whylen)
{
	struct ferry_ctl_reply rep;
	int fds[FERRY_CTL_MAX_FDS], memfd = -1;
	unsigned int nfds = 0;
	struct stat st;
	ssize_t n;
	int err;

	raw_init(r);
	why[0] = '\0';
	r->ctl = ferry_test_ctl_connect(control);
	if (r->ctl < 0) {
		err = r->ctl;
		r->ctl = -1;
		snprintf(why, whylen, "connecting to %s: %s", control, strerror(-err));
		return err;
	}
	err = ferry_test_ctl_send(r->ctl, a, sizeof(*a), NULL, 0);
	if (err) {
		snprintf(why, whylen, "sending the attach: %s", strerror(-err));
		goto fail;
	}
	n = ferry_test_ctl_recv(r->ctl, &r->rep, sizeof(r->rep), fds, FERRY_CTL_MAX_FDS, &nfds, ATTACH_MS);
	if (nfds > FERRY_CTL_MAX_FDS)
		nfds = FERRY_CTL_MAX_FDS;
	if (n != (ssize_t)sizeof(r->rep) || r->rep.magic != FERRY_CTL_MAGIC || r->rep.op != FERRY_CTL_REPLY) {
		err = n < 0 ? (int)n : -EPROTO;
		snprintf(why, whylen, "ferryd's answer: %zd bytes, op %u", n, n > 0 ? r->rep.op : 0);
		goto fail;
	}
	r->rep.why[sizeof(r->rep.why) - 1] = '\0';
	if (r->rep.status) {
		err = r->rep.status < 0 ? r->rep.status : -EPROTO;
		snprintf(why, whylen, "%s", r->rep.why);
		goto fail;
	}
	if (!r->rep.nworkers || r->rep.nworkers > FERRY_RING_MAX_WORKERS || r->rep.nareas > FERRY_RING_MAX_AREAS ||
	    nfds != 2 + r->rep.nworkers + r->rep.nareas) {
		err = -EPROTO;
		snprintf(why, whylen, "ferryd's answer: %u workers, %u areas, %u fds", r->rep.nworkers, r->rep.nareas,
			 nfds);
		goto fail;
	}
	/* ours now: closed by ferry_test_raw_close() from here on */
	r->nw = r->rep.nworkers;
	r->wake_rd = fds[1];
	for (unsigned int i = 0; i < r->nw; i++)
		r->kick[i] = fds[2 + i];
	r->nareas = r->rep.nareas;
	for (unsigned int i = 0; i < r->nareas; i++)
		r->area_fd[i] = fds[2 + r->nw + i];
	memfd = fds[0];
	nfds = 0;
	if (fstat(memfd, &st) || (uint64_t)st.st_size != r->rep.region_size ||
	    st.st_size < (off_t)sizeof(struct ferry_ring_header)) {
		err = -EPROTO;
		snprintf(why, whylen, "the memfd is not the %llu bytes ferryd said",
			 (unsigned long long)r->rep.region_size);
		goto fail;
	}
	r->size = (size_t)st.st_size;
	r->region = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (r->region == MAP_FAILED) {
		err = -errno;
		r->region = NULL;
		snprintf(why, whylen, "mapping %zu bytes: %s", r->size, strerror(-err));
		goto fail;
	}
	close(memfd);
	memfd = -1;
	r->h = (const struct ferry_ring_header *)r->region;
	err = map_rings(r, why, whylen);
	if (err)
		goto fail;
	return 0;
fail:
	for (unsigned int i = 0; i < nfds; i++)
		close(fds[i]);
	if (memfd >= 0)
		close(memfd);
	rep = r->rep;
	ferry_test_raw_close(r);
	r->rep = rep;
	return err;
}

size_t ferry_test_raw_rings_start(const struct ferry_test_raw *r)
{
	size_t first = r->size;

	for (unsigned int i = 0; i < r->nw; i++)
		if (r->h->w[i].rx < first)
			first = r->h->w[i].rx;
	return first;
}

int ferry_test_raw_kick(const struct ferry_test_raw *r, unsigned int w)
{
	if (w >= r->nw || r->kick[w] < 0)
		return -EBADF;
	return write(r->kick[w], "k", 1) == 1 ? 0 : -errno;
}

void ferry_test_raw_close(struct ferry_test_raw *r)
{
	if (r->region)
		munmap(r->region, r->size);
	if (r->ctl >= 0)
		close(r->ctl);
	if (r->wake_rd >= 0)
		close(r->wake_rd);
	for (unsigned int i = 0; i < FERRY_RING_MAX_WORKERS; i++)
		if (r->kick[i] >= 0)
			close(r->kick[i]);
	for (unsigned int i = 0; i < FERRY_RING_MAX_AREAS; i++)
		if (r->area_fd[i] >= 0)
			close(r->area_fd[i]);
	raw_init(r);
}

/* ---- queries --------------------------------------------------------------------------------------- */

void ferry_test_ctl_query(int fd, uint32_t verb, uint32_t seq)
{
	struct ferry_ctl_query q = { .magic = FERRY_CTL_MAGIC, .version = FERRY_RING_VERSION, .op = FERRY_CTL_QUERY,
				     .verb = verb, .seq = seq };

	cr_assert_eq(ferry_test_ctl_send(fd, &q, sizeof(q), NULL, 0), 0, "expected to send query %u", seq);
}

char *ferry_test_ctl_answer(int fd, uint32_t verb, uint32_t seq, int timeout_ms, int *status, unsigned int *parts)
{
	static uint8_t buf[FERRY_CTL_PART_MAX];
	char *doc = NULL;
	size_t len = 0;

	*parts = 0;
	for (;;) {
		struct ferry_ctl_answer h;
		ssize_t n = ferry_test_ctl_recv(fd, buf, sizeof(buf), NULL, 0, NULL, timeout_ms);

		cr_assert_geq(n, (ssize_t)sizeof(h), "expected part %u of the answer to query %u, got %zd", *parts, seq,
			      n);
		memcpy(&h, buf, sizeof(h));
		cr_assert(h.magic == FERRY_CTL_MAGIC && h.op == FERRY_CTL_ANSWER && h.version == FERRY_RING_VERSION,
			  "expected an answer (magic 0x%x, op %u, version %u)", h.magic, h.op, h.version);
		cr_assert(h.seq == seq && h.verb == verb && h.part == *parts,
			  "expected part %u of query %u (verb %u), got part %u of %u (verb %u)", *parts, seq, verb, h.part,
			  h.seq, h.verb);
		cr_assert_eq(h.len, (size_t)n - sizeof(h), "expected the part's length to be the message's");
		cr_assert(h.len > 0 || (h.flags & FERRY_CTL_ANSWER_LAST), "expected no empty part but the last");
		doc = realloc(doc, len + h.len + 1);
		cr_assert(doc, "out of memory");
		memcpy(doc + len, buf + sizeof(h), h.len);
		len += h.len;
		doc[len] = '\0';
		*status = h.status;
		(*parts)++;
		if (h.flags & FERRY_CTL_ANSWER_LAST)
			return doc;
	}
}
