/* SPDX-License-Identifier: MIT */
/* A client session's region, pipes and rings (session.h); the rules ferry/ring.h states, enforced. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <syslog.h>
#include <unistd.h>

#include "ferryd.h"
#include "session.h"

#define PAGE 4096ull

/* A value of shared memory read once: the compiler may not read it again. */
#define READ_ONCE(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static bool pow2_in(uint32_t v, uint32_t lo, uint32_t hi)
{
	return v >= lo && v <= hi && !(v & (v - 1));
}

void ferryd_ring_addr_from(struct ferry_ring_addr *out, const union ferry_sockaddr *in)
{
	memset(out, 0, sizeof(*out));
	out->family = in->sa.sa_family;
	if (in->sa.sa_family == AF_INET) {
		out->port = in->in4.sin_port;
		memcpy(out->addr, &in->in4.sin_addr, 4);
	} else if (in->sa.sa_family == AF_INET6) {
		out->port = in->in6.sin6_port;
		out->scope_id = in->in6.sin6_scope_id;
		memcpy(out->addr, &in->in6.sin6_addr, 16);
	}
}

bool ferryd_ring_addr_to(union ferry_sockaddr *out, const struct ferry_ring_addr *in)
{
	memset(out, 0, sizeof(*out));
	if (in->family == AF_INET) {
		out->in4.sin_family = AF_INET;
		out->in4.sin_port = in->port;
		memcpy(&out->in4.sin_addr, in->addr, 4);
		return true;
	}
	if (in->family == AF_INET6) {
		out->in6.sin6_family = AF_INET6;
		out->in6.sin6_port = in->port;
		out->in6.sin6_scope_id = in->scope_id;
		memcpy(&out->in6.sin6_addr, in->addr, 16);
		return true;
	}
	return false;
}

/* ---- making and ending a session --------------------------------------------------------- */

/* Where each worker's rings and slots go; the region's size, or 0 when it passes the bound. */
static uint64_t layout(struct ferry_ring_header *h, unsigned int nw, uint32_t rx, uint32_t tx, uint32_t slot)
{
	uint64_t off = align_up(sizeof(*h), PAGE);

	for (unsigned int i = 0; i < nw; i++) {
		struct ferry_ring_worker *w = &h->w[i];

		w->rx = off, off += sizeof(struct ferry_ring_idx);
		w->rx_ret = off, off += sizeof(struct ferry_ring_idx);
		w->tx = off, off += sizeof(struct ferry_ring_idx);
		w->tx_ret = off, off += sizeof(struct ferry_ring_idx);
		w->stats = off, off = align_up(off + sizeof(struct ferry_ring_stats), FERRY_RING_ALIGN);
		w->rx_desc = off, off = align_up(off + (uint64_t)rx * sizeof(struct ferry_rx_desc), FERRY_RING_ALIGN);
		w->rx_ret_desc = off, off = align_up(off + (uint64_t)rx * sizeof(struct ferry_ret_desc), FERRY_RING_ALIGN);
		w->tx_desc = off, off = align_up(off + (uint64_t)tx * sizeof(struct ferry_tx_desc), FERRY_RING_ALIGN);
		w->tx_ret_desc = off, off = align_up(off + (uint64_t)tx * sizeof(struct ferry_ret_desc), PAGE);
		w->rx_slot = off, off += (uint64_t)rx * slot;
		w->tx_slot = off, off = align_up(off + (uint64_t)tx * slot, PAGE);
		if (off > FERRYD_SESS_MAX_REGION)
			return 0;
	}
	return off;
}

/* A pipe with both ends non-blocking and close-on-exec, holding little (a wake-up is one byte). */
static int wake_pipe(int fds[2])
{
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC))
		return -errno;
	fcntl(fds[1], F_SETPIPE_SZ, 4096);
	return 0;
}

static int wk_init(struct ferryd_session *s, unsigned int i, const struct ferry_ring_worker *rw)
{
	struct ferryd_sess_wk *k = &s->wk[i];
	uint8_t *r = s->region;
	int fds[2], err;

	k->s = s;
	k->wid = i;
	k->kick_rd = -1;
	k->rx = (struct ferry_ring_idx *)(r + rw->rx);
	k->rx_ret = (struct ferry_ring_idx *)(r + rw->rx_ret);
	k->tx = (struct ferry_ring_idx *)(r + rw->tx);
	k->tx_ret = (struct ferry_ring_idx *)(r + rw->tx_ret);
	k->rx_desc = (struct ferry_rx_desc *)(r + rw->rx_desc);
	k->rx_ret_desc = (struct ferry_ret_desc *)(r + rw->rx_ret_desc);
	k->tx_desc = (struct ferry_tx_desc *)(r + rw->tx_desc);
	k->tx_ret_desc = (struct ferry_ret_desc *)(r + rw->tx_ret_desc);
	k->rx_slot = r + rw->rx_slot;
	k->tx_slot = r + rw->tx_slot;
	k->shared = (struct ferry_ring_stats *)(r + rw->stats);
	/* we sleep on tx from the start: the client's first send kicks us */
	k->tx->flags = FERRY_RING_NEED_WAKEUP;
	k->free = calloc(s->rx_slots, sizeof(*k->free));
	k->out = calloc(s->rx_slots, 1);
	k->held = calloc(s->tx_slots, 1);
	if (!k->free || !k->out || !k->held)
		return -ENOMEM;
	for (uint32_t n = 0; n < s->rx_slots; n++)
		k->free[k->nfree++] = s->rx_slots - 1 - n; /* slot 0 first */
	k->occ.rx_free = k->nfree;
	for (unsigned int a = 0; a < s->nareas; a++) {
		if (s->areas[a].worker != i)
			continue;
		if (!k->nareas)
			k->area_base = a;
		k->nareas++;
	}
	if (k->nareas) {
		k->zc_out = calloc(k->nareas, sizeof(*k->zc_out));
		k->zc_held = calloc(k->nareas, sizeof(*k->zc_held));
		if (!k->zc_out || !k->zc_held)
			return -ENOMEM;
		for (unsigned int q = 0; q < k->nareas; q++) {
			k->zc_out[q] = calloc(s->areas[k->area_base + q].nframes, 1);
			if (!k->zc_out[q])
				return -ENOMEM;
		}
	}
	err = wake_pipe(fds);
	if (err)
		return err;
	k->kick_rd = fds[0];
	s->kick_wr[i] = fds[1];
	return 0;
}

static unsigned int inject_nomem;
unsigned int ferryd_session_fault_handover_ms;

void ferryd_session_inject_nomem(unsigned int n)
{
	inject_nomem += n;
}

/* memfd_create(2), or the failure a test asked for. */
static int session_memfd(void)
{
	if (inject_nomem) {
		inject_nomem--;
		errno = ENOMEM;
		return -1;
	}
	return memfd_create("ferry-session", MFD_CLOEXEC | MFD_ALLOW_SEALING);
}

int ferryd_session_new(struct ferryd_service *svc, unsigned int svc_id, const union ferry_sockaddr *addr,
		       unsigned int nw, unsigned int id, uint32_t rx_slots, uint32_t tx_slots, uint32_t slot_size,
		       const struct ferryd_sess_area *areas, unsigned int nareas, struct ferryd_session **out,
		       char *why, size_t whylen)
{
	struct ferry_ring_header h;
	struct ferryd_session *s;
	uint64_t size;
	int fds[2], err;

	*out = NULL;
	rx_slots = rx_slots ? rx_slots : FERRYD_SESS_RX_SLOTS;
	tx_slots = tx_slots ? tx_slots : FERRYD_SESS_TX_SLOTS;
	slot_size = slot_size ? slot_size : FERRYD_SESS_SLOT_SIZE;
	if (!pow2_in(rx_slots, FERRY_RING_MIN_SLOTS, FERRY_RING_MAX_SLOTS) ||
	    !pow2_in(tx_slots, FERRY_RING_MIN_SLOTS, FERRY_RING_MAX_SLOTS)) {
		snprintf(why, whylen, "rx_slots %u, tx_slots %u: each must be a power of two from %u to %u", rx_slots,
			 tx_slots, FERRY_RING_MIN_SLOTS, FERRY_RING_MAX_SLOTS);
		return -EINVAL;
	}
	if (slot_size % 64 || slot_size < FERRY_RING_MIN_SLOT_SIZE || slot_size > FERRY_RING_MAX_SLOT_SIZE) {
		snprintf(why, whylen, "slot size %u: must be a multiple of 64 from %u to %u", slot_size,
			 FERRY_RING_MIN_SLOT_SIZE, FERRY_RING_MAX_SLOT_SIZE);
		return -EINVAL;
	}
	if (!nw || nw > FERRY_RING_MAX_WORKERS) {
		snprintf(why, whylen, "%u workers: sessions serve 1 to %u", nw, FERRY_RING_MAX_WORKERS);
		return -EINVAL;
	}
	if (nareas > FERRY_RING_MAX_AREAS) {
		snprintf(why, whylen, "%u queues: a zero-copy session shares at most %u", nareas, FERRY_RING_MAX_AREAS);
		return -EINVAL;
	}
	memset(&h, 0, sizeof(h));
	size = layout(&h, nw, rx_slots, tx_slots, slot_size);
	if (!size) {
		snprintf(why, whylen, "%u workers x (%u + %u slots of %u bytes) is more than the %llu MiB a session may map",
			 nw, rx_slots, tx_slots, slot_size, FERRYD_SESS_MAX_REGION >> 20);
		return -E2BIG;
	}
	s = calloc(1, sizeof(*s) + nw * sizeof(s->wk[0]));
	if (!s)
		goto nomem;
	s->id = id;
	s->svc = svc;
	s->svc_id = svc_id;
	s->nw = nw;
	s->rx_slots = rx_slots;
	s->tx_slots = tx_slots;
	s->slot_size = slot_size;
	s->zc = nareas > 0;
	s->nareas = nareas;
	for (unsigned int a = 0; a < nareas; a++)
		s->areas[a] = areas[a];
	s->memfd = s->wake_rd = s->wake_wr = -1;
	s->kick_wr = malloc(nw * sizeof(*s->kick_wr));
	if (!s->kick_wr)
		goto nomem;
	for (unsigned int i = 0; i < nw; i++)
		s->kick_wr[i] = -1;
	for (unsigned int i = 0; i < nw; i++)
		s->wk[i].kick_rd = -1;

	/* Sealed against resizing: a client that shrank it would fault ferryd on its next access. */
	s->memfd = session_memfd();
	if (s->memfd < 0)
		goto sys;
	if (ftruncate(s->memfd, (off_t)size) ||
	    fcntl(s->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL))
		goto sys;
	s->region = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, s->memfd, 0);
	if (s->region == MAP_FAILED) {
		s->region = NULL;
		goto sys;
	}
	s->region_size = size;

	h.magic = FERRY_RING_MAGIC;
	h.version = FERRY_RING_VERSION;
	h.header_size = sizeof(h);
	h.region_size = size;
	h.nworkers = nw;
	h.slot_size = slot_size;
	h.rx_slots = rx_slots;
	h.tx_slots = tx_slots;
	h.session = id;
	h.flags = nareas ? FERRY_RING_ZEROCOPY : 0;
	h.nareas = nareas;
	for (unsigned int a = 0; a < nareas; a++) {
		h.areas[a].size = areas[a].size;
		h.areas[a].frame_size = areas[a].frame_size;
		h.areas[a].worker = areas[a].worker;
	}
	snprintf(h.service, sizeof(h.service), "%s", svc->name);
	ferryd_ring_addr_from(&h.service_addr, addr);
	memcpy(s->region, &h, sizeof(h));

	err = wake_pipe(fds);
	if (err)
		goto fail;
	s->wake_rd = fds[0];
	s->wake_wr = fds[1];
	for (unsigned int i = 0; i < nw; i++) {
		err = wk_init(s, i, &h.w[i]);
		if (err)
			goto fail;
	}
	*out = s;
	return 0;
nomem:
	err = -ENOMEM;
	goto fail;
sys:
	err = -errno;
fail:
	snprintf(why, whylen, "ferryd could not make the session's memory and pipes: %s", strerror(-err));
	ferryd_session_free(s);
	return err;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void ferryd_session_handed(struct ferryd_session *s)
{
	close_fd(&s->wake_rd);
	for (unsigned int i = 0; s->kick_wr && i < s->nw; i++)
		close_fd(&s->kick_wr[i]);
}

void ferryd_session_free(struct ferryd_session *s)
{
	if (!s)
		return;
	ferryd_session_handed(s);
	for (unsigned int i = 0; i < s->nw; i++) {
		struct ferryd_sess_wk *k = &s->wk[i];

		close_fd(&k->kick_rd);
		for (unsigned int q = 0; k->zc_out && q < k->nareas; q++)
			free(k->zc_out[q]);
		free(k->zc_out);
		free(k->zc_held);
		free(k->free);
		free(k->out);
		free(k->held);
	}
	free(s->kick_wr);
	close_fd(&s->wake_wr);
	if (s->region)
		munmap(s->region, s->region_size);
	close_fd(&s->memfd);
	free(s);
}

bool ferryd_session_failed(const struct ferryd_session *s, char *why, size_t whylen)
{
	if (__atomic_load_n(&s->failed, __ATOMIC_ACQUIRE) != 2)
		return false;
	snprintf(why, whylen, "%s", s->failed_why);
	return true;
}

/* ---- worker w's side --------------------------------------------------------------------- */

void ferryd_sess_fail(struct ferryd_sess_wk *k, const char *fmt, ...)
{
	struct ferryd_session *s = k->s;
	int expected = 0;
	va_list ap;

	if (k->dead)
		return;
	k->dead = true;
	if (!__atomic_compare_exchange_n(&s->failed, &expected, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return; /* another worker said why first */
	k->first_to_fail = true;
	va_start(ap, fmt);
	vsnprintf(s->failed_why, sizeof(s->failed_why), fmt, ap);
	va_end(ap);
	__atomic_store_n(&s->failed, 2, __ATOMIC_RELEASE);
	ferryd_log(LOG_WARNING, "session %u (service %s, pid %d): worker %u: %s: ending it", s->id, s->svc->name,
		   (int)s->pid, k->wid, s->failed_why);
}

static void wake_client(struct ferryd_sess_wk *k)
{
	/* Full, or the client's end closed: it has a wake-up pending, or is gone. Never waits. */
	if (write(k->s->wake_wr, "", 1) == 1 || errno == EAGAIN)
		FERRYD_STAT_INC(&k->st, wakeups);
}

/* One frame the client gave back: checked, then its queue's again. */
static bool frame_back(struct ferryd_sess_wk *k, uint32_t area, uint32_t fi)
{
	unsigned int qi = area - 1 - k->area_base;

	if (area < 1 + k->area_base || qi >= k->nareas) {
		ferryd_sess_fail(k, "rx_ret: gave back a frame of area %u, which worker %u's ring never carried", area,
				 k->wid);
		return false;
	}
	if (fi >= k->s->areas[k->area_base + qi].nframes || !k->zc_out[qi][fi]) {
		ferryd_sess_fail(k, "rx_ret: gave back frame %u of area %u, %s", fi, area,
				 fi >= k->s->areas[k->area_base + qi].nframes ? "out of range" : "which it did not hold");
		return false;
	}
	k->zc_out[qi][fi] = 0;
	k->zc_held[qi]--;
	k->nzc--;
	k->frame_back(k, qi, fi);
	return true;
}

/* What the session holds now, for the control thread's queries (session.h). */
static void publish_occ(struct ferryd_sess_wk *k)
{
	__atomic_store_n(&k->occ.rx_out, k->nout, __ATOMIC_RELAXED);
	__atomic_store_n(&k->occ.rx_free, k->nfree, __ATOMIC_RELAXED);
	__atomic_store_n(&k->occ.zc_held, k->nzc, __ATOMIC_RELAXED);
	__atomic_store_n(&k->occ.tx_held, k->tx_cons - k->tx_ret_prod, __ATOMIC_RELAXED);
}

bool ferryd_sess_rx_reap(struct ferryd_sess_wk *k)
{
	uint32_t mask = k->s->rx_slots - 1;
	uint32_t prod = __atomic_load_n(&k->rx_ret->producer, __ATOMIC_ACQUIRE);
	uint32_t n = prod - k->rx_ret_cons;

	if (k->dead)
		return false;
	if (!n)
		return true;
	if (n > k->nout + k->nzc) {
		ferryd_sess_fail(k, "rx_ret: %u entries given back, but it held %u", n, k->nout + k->nzc);
		return false;
	}
	for (uint32_t i = 0, cons = k->rx_ret_cons, rx_slots = mask + 1; i < n; i++) {
		const struct ferry_ret_desc *d = &k->rx_ret_desc[(cons + i) & mask];
		uint32_t slot = READ_ONCE(d->slot), area = READ_ONCE(d->area);
		uint8_t *out = k->out;

		if (area) {
			if (!k->nareas) {
				ferryd_sess_fail(k, "rx_ret: gave back a slot of area %u, but the session has no areas here",
						 area);
				return false;
			}
			if (!frame_back(k, area, slot))
				return false;
			continue;
		}
		if (slot >= rx_slots || !out[slot]) {
			ferryd_sess_fail(k, "rx_ret: gave back slot %u, %s", slot,
					 slot >= rx_slots ? "out of range" : "which it did not hold");
			return false;
		}
		out[slot] = 0;
		k->nout--;
		k->free[k->nfree++] = slot;
	}
	k->rx_ret_cons = prod;
	__atomic_store_n(&k->rx_ret->consumer, prod, __ATOMIC_RELEASE);
	publish_occ(k);
	return true;
}

void ferryd_sess_zc_reclaim(struct ferryd_sess_wk *k)
{
	for (unsigned int qi = 0; qi < k->nareas; qi++)
		for (uint32_t fi = 0; k->zc_held[qi] && fi < k->s->areas[k->area_base + qi].nframes; fi++) {
			if (!k->zc_out[qi][fi])
				continue;
			k->zc_out[qi][fi] = 0;
			k->zc_held[qi]--;
			k->nzc--;
			k->frame_back(k, qi, fi);
		}
	publish_occ(k);
}

bool ferryd_sess_rx_put(struct ferryd_sess_wk *k, const void *data, uint32_t len, const union ferry_sockaddr *src)
{
	const struct ferryd_session *s = k->s;
	struct ferry_rx_desc *d;
	uint32_t slot;

	if (ferry_unlikely(len > s->slot_size)) {
		FERRYD_STAT_INC(&k->st, rx_dropped_big);
		k->stats_dirty = true;
		return false;
	}
	/* a free slot, and room on the ring (which the client's frames share, in a zero-copy session) */
	if (ferry_unlikely(!k->nfree || k->nout + k->nzc >= s->rx_slots) &&
	    (!ferryd_sess_rx_reap(k) || !k->nfree || k->nout + k->nzc >= s->rx_slots)) {
		FERRYD_STAT_INC(&k->st, rx_dropped_full);
		k->stats_dirty = true;
		return false;
	}
	slot = k->free[--k->nfree];
	memcpy(k->rx_slot + (size_t)slot * s->slot_size, data, len);
	d = &k->rx_desc[k->rx_prod & (s->rx_slots - 1)];
	d->slot = slot;
	d->len = len;
	d->off = 0;
	d->area = 0;
	ferryd_ring_addr_from(&d->src, src);
	k->out[slot] = 1;
	k->nout++;
	k->rx_prod++;
	k->dirty = true;
	FERRYD_STAT_INC(&k->st, rx_packets);
	FERRYD_STAT_ADD(&k->st, rx_bytes, len);
	return true;
}

bool ferryd_sess_rx_put_frame(struct ferryd_sess_wk *k, unsigned int qi, uint32_t fi, uint32_t off, uint32_t len,
			      const union ferry_sockaddr *src)
{
	const struct ferryd_session *s = k->s;
	struct ferry_rx_desc *d;

	if (qi >= k->nareas || k->nout + k->nzc >= s->rx_slots)
		return false;
	d = &k->rx_desc[k->rx_prod & (s->rx_slots - 1)];
	d->slot = fi;
	d->len = len;
	d->off = off;
	d->area = k->area_base + qi + 1;
	ferryd_ring_addr_from(&d->src, src);
	k->zc_out[qi][fi] = 1;
	k->zc_held[qi]++;
	k->nzc++;
	k->rx_prod++;
	k->dirty = true;
	FERRYD_STAT_INC(&k->st, rx_packets);
	FERRYD_STAT_ADD(&k->st, rx_bytes, len);
	FERRYD_STAT_INC(&k->st, rx_zero_copy);
	return true;
}

/* ferryd's counters of this worker, where the client can read them. */
static void share_stats(struct ferryd_sess_wk *k)
{
	struct ferry_ring_stats *o = k->shared;

	publish_occ(k);

	o->rx_packets = k->st.rx_packets;
	o->rx_bytes = k->st.rx_bytes;
	o->rx_dropped_full = k->st.rx_dropped_full;
	o->rx_dropped_big = k->st.rx_dropped_big;
	o->tx_packets = k->st.tx_packets;
	o->tx_bytes = k->st.tx_bytes;
	o->tx_dropped = k->st.tx_dropped;
	o->wakeups = k->st.wakeups;
	o->rx_zero_copy = k->st.rx_zero_copy;
}

void ferryd_sess_rx_flush(struct ferryd_sess_wk *k)
{
	if (k->stats_dirty && !k->dirty)
		share_stats(k); /* only drops: the client sees them counted */
	k->stats_dirty = false;
	if (!k->dirty)
		return;
	k->dirty = false;
	share_stats(k);
	__atomic_store_n(&k->rx->producer, k->rx_prod, __ATOMIC_RELEASE);
	/* the producer index before the flag: the client sets the flag, then looks at the index */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (READ_ONCE(k->rx->flags) & FERRY_RING_NEED_WAKEUP)
		wake_client(k);
}

unsigned int ferryd_sess_tx_take(struct ferryd_sess_wk *k, struct ferry_iobuf *bufs, union ferry_sockaddr *dsts,
				 uint32_t *slots, unsigned int max)
{
	const struct ferryd_session *s = k->s;
	uint32_t mask = s->tx_slots - 1;
	uint32_t prod = __atomic_load_n(&k->tx->producer, __ATOMIC_ACQUIRE);
	uint32_t n = prod - k->tx_cons;

	if (n > s->tx_slots) {
		ferryd_sess_fail(k, "tx: producer index %u is %u entries ahead of ferryd's %u, past the ring's %u", prod, n,
				 k->tx_cons, s->tx_slots);
		return 0;
	}
	if (n > max)
		n = max;
	for (uint32_t i = 0; i < n; i++) {
		const struct ferry_tx_desc *d = &k->tx_desc[(k->tx_cons + i) & mask];
		uint32_t slot = READ_ONCE(d->slot), len = READ_ONCE(d->len), off = READ_ONCE(d->off);
		uint32_t reserved = READ_ONCE(d->reserved);
		struct ferry_ring_addr a;

		/* one copy of the address, then only the copy is looked at */
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		memcpy(&a, &d->dst, sizeof(a));
		if (slot >= s->tx_slots) {
			ferryd_sess_fail(k, "tx: slot %u out of range (%u slots)", slot, s->tx_slots);
			return 0;
		}
		if (k->held[slot]) {
			ferryd_sess_fail(k, "tx: slot %u sent again before ferryd gave it back", slot);
			return 0;
		}
		if (off > s->slot_size || len > s->slot_size - off) {
			ferryd_sess_fail(k, "tx: %u bytes at offset %u run past a slot of %u", len, off, s->slot_size);
			return 0;
		}
		if (reserved) {
			/* 0 now, so that it can mean something in a later version */
			ferryd_sess_fail(k, "tx: reserved field is %#x, not 0", reserved);
			return 0;
		}
		if (!ferryd_ring_addr_to(&dsts[i], &a)) {
			ferryd_sess_fail(k, "tx: destination of family %u (neither AF_INET nor AF_INET6)", a.family);
			return 0;
		}
		k->held[slot] = 1;
		slots[i] = slot;
		ferry_iobuf_init(&bufs[i], k->tx_slot + (size_t)slot * s->slot_size + off, len);
	}
	k->tx_cons += n;
	__atomic_store_n(&k->tx->consumer, k->tx_cons, __ATOMIC_RELEASE);
	return n;
}

void ferryd_sess_tx_give_back(struct ferryd_sess_wk *k, const uint32_t *slots, unsigned int n)
{
	uint32_t mask = k->s->tx_slots - 1;

	if (!n)
		return;
	for (unsigned int i = 0; i < n; i++) {
		struct ferry_ret_desc *d = &k->tx_ret_desc[(k->tx_ret_prod + i) & mask];

		d->slot = slots[i];
		d->area = 0;
		k->held[slots[i]] = 0;
	}
	k->tx_ret_prod += n;
	share_stats(k);
	__atomic_store_n(&k->tx_ret->producer, k->tx_ret_prod, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (READ_ONCE(k->tx_ret->flags) & FERRY_RING_NEED_WAKEUP)
		wake_client(k);
}

bool ferryd_sess_tx_sleep(struct ferryd_sess_wk *k)
{
	__atomic_store_n(&k->tx->flags, FERRY_RING_NEED_WAKEUP, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&k->tx->producer, __ATOMIC_ACQUIRE) == k->tx_cons)
		return true;
	__atomic_store_n(&k->tx->flags, 0, __ATOMIC_RELAXED);
	return false;
}

void ferryd_sess_kick_clear(struct ferryd_sess_wk *k)
{
	char buf[256];

	while (read(k->kick_rd, buf, sizeof(buf)) == (ssize_t)sizeof(buf))
		;
	FERRYD_STAT_INC(&k->st, kicks);
}
