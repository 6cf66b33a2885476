/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: ferryd's side of a client session (daemon/session.c) against
 * shared memory the client writes as it likes. Each input makes a real
 * session (ferryd_session_new) of 1 or 2 workers with small rings, zero-copy
 * or not (fake UMEM areas: their frames come back through a frame_back that
 * records them), maps its region again between guard pages, and runs ops:
 *
 *   - a well-behaved client's moves: read rx, give back what it read, send
 *     from a TX slot it owns, reap tx_ret, set or clear its wake-up flags,
 *     kick;
 *   - a hostile client's writes: any index (set, or moved by a delta), an
 *     rx_ret or tx entry of any value pushed on its ring, any bytes anywhere
 *     in the region (the header included);
 *   - ferryd's calls, as dispatch.c makes them (nothing but flush, reap and
 *     reclaim once a worker's side is dead): rx_put, rx_put_frame, rx_flush,
 *     rx_reap, tx_take, tx_give_back, tx_sleep, zc_reclaim, kick_clear.
 *
 * After every op, for every worker:
 *   - ferryd's private state is consistent: nout is the number of out[]
 *     flags, nfree + nout = rx_slots and the free list is distinct, in range
 *     and not out; nzc is the number of zc_out flags and each zc_held[q] its
 *     queue's; nout + nzc <= rx_slots; held[] is exactly what tx_take gave and
 *     tx_give_back did not take back (while alive);
 *   - frame_back returns only frames that were handed out, never one twice,
 *     and zc_out agrees with the frames handed out and not returned;
 *   - what tx_take gives lies inside the worker's TX slots, each slot once;
 *   - a dead side stays dead; the session says why, one worker reported it;
 *   - while only the well-behaved moves were made: the session is never
 *     ended, the client reads on rx exactly what ferryd put (order, slot,
 *     length, source, bytes) and ferryd takes exactly what the client sent.
 *
 * ASan watches ferryd's own arrays; guard pages the region's edges. Indices
 * may start near 2^32 (as after a long session) so that they wrap.
 *
 * Input: ring_ops.h (missing bytes read as zero).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <syslog.h>
#include <unistd.h>

#include "ferryd.h"
#include "fuzz.h"
#include "log.h"
#include "ring_ops.h"
#include "session.h"

#define PAGE 4096u
#define MAX_W 2
#define MAX_SLOTS 32	 /* RX and TX slots per worker at most */
#define MAX_QA 2	 /* areas per worker at most */
#define MAX_FRAMES 64	 /* frames per area at most */
#define MAX_OPS 2000
#define FIFO 64		 /* a power of two, > MAX_SLOTS */

static const uint32_t slot_sizes[4] = { 256, 320, 1024, 2048 };

/* An rx entry ferryd wrote, as the client must read it. */
struct put_rec {
	uint32_t seq, slot, area, off, len;
	uint16_t family;
};

/* A tx entry the client wrote, as ferryd must take it. */
struct sent_rec {
	uint32_t seq, slot, off, len;
	uint16_t family;
};

/* Where one worker's rings are, as the header says (read once, before any hostile write). */
struct view {
	struct ferry_ring_idx *rx, *rx_ret, *tx, *tx_ret;
	struct ferry_rx_desc *rx_desc;
	struct ferry_ret_desc *rx_ret_desc, *tx_ret_desc;
	struct ferry_tx_desc *tx_desc;
	uint8_t *rx_slot, *tx_slot;
};

struct model {
	struct view v;
	unsigned int w;
	/* ferryd's side, as this harness drove it */
	struct put_rec put[FIFO];
	uint32_t put_head, put_tail;	 /* put, not yet read by the client */
	uint32_t taken[MAX_SLOTS], ntaken; /* TX slots tx_take gave, not given back */
	uint8_t handed[MAX_QA][MAX_FRAMES]; /* frames on rx, not yet back */
	uint32_t nhanded;
	uint32_t seq_put;
	bool was_dead;
	/* the well-behaved client */
	uint32_t rx_cons, rx_ret_prod, tx_prod, tx_ret_cons;
	struct { uint32_t slot, area; } held[4 * MAX_SLOTS];
	uint32_t nheld;
	uint8_t owned[MAX_SLOTS]; /* TX slots the client may fill */
	struct sent_rec sent[FIFO];
	uint32_t sent_head, sent_tail; /* sent, not yet taken */
	uint32_t seq_sent;
};

static struct state {
	struct ferryd_session *s;
	struct model m[MAX_W];
	struct ferryd_service svc;
	uint32_t nframes;
	bool broke; /* a hostile move was made: the session may end, the data need not match */
	uint8_t data[2048 + 64];
} st;

static uint8_t pattern(uint32_t seq, uint32_t j)
{
	return (uint8_t)(seq * 31u + j * 7u + 1u);
}

static void src_of(union ferry_sockaddr *a, uint16_t family, uint32_t seq)
{
	memset(a, 0, sizeof(*a));
	if (family == AF_INET6) {
		a->in6.sin6_family = AF_INET6;
		a->in6.sin6_port = htons((uint16_t)seq);
		a->in6.sin6_addr.s6_addr[0] = 0x20;
		a->in6.sin6_addr.s6_addr[1] = 0x01;
		a->in6.sin6_addr.s6_addr[3] = 0x02;
		a->in6.sin6_addr.s6_addr[15] = 0x02;
	} else {
		a->in4.sin_family = AF_INET;
		a->in4.sin_port = htons((uint16_t)seq);
		a->in4.sin_addr.s_addr = htonl(0xc6120002); /* 198.18.0.2 */
	}
}

static uint32_t fuzz_u32(struct fuzz_in *in)
{
	uint8_t b[4];

	fuzz_bytes(in, b, 4);
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* ---- frames: what ferryd's queues would take back ---------------------------------------------- */

static void frame_back(struct ferryd_sess_wk *k, unsigned int qi, uint32_t fi)
{
	struct model *m = k->frame_back_ctx;

	FUZZ_CHECK(m == &st.m[k->wid], "frame_back: worker %u's side with another's context", k->wid);
	FUZZ_CHECK(qi < k->nareas && qi < MAX_QA, "frame_back: queue %u of %u", qi, k->nareas);
	FUZZ_CHECK(fi < st.nframes, "frame_back: frame %u of %u", fi, st.nframes);
	FUZZ_CHECK(m->handed[qi][fi], "frame_back: worker %u queue %u frame %u was not handed out (or came back twice)",
		   k->wid, qi, fi);
	m->handed[qi][fi] = 0;
	m->nhanded--;
}

/* ---- the session, between guard pages ---------------------------------------------------------- */

static void check_span(const struct ferryd_session *s, uint64_t off, uint64_t len, const char *what, unsigned int w)
{
	FUZZ_CHECK(off % FERRY_RING_ALIGN == 0, "worker %u: %s at %llu: not aligned", w, what, (unsigned long long)off);
	FUZZ_CHECK(off >= sizeof(struct ferry_ring_header) && off + len <= s->region_size,
		   "worker %u: %s [%llu, +%llu) outside the region of %zu", w, what, (unsigned long long)off,
		   (unsigned long long)len, s->region_size);
}

/*
 * The header ferryd wrote: every part of every worker inside the region, no
 * two overlapping; and ferryd's private pointers are where the header says.
 * Then the region is mapped again between two PROT_NONE pages and ferryd's
 * pointers moved with it (the same offsets).
 */
static void guard(struct ferryd_session *s)
{
	const struct ferry_ring_header *h = (const void *)s->region;
	struct { uint64_t off, len; } span[MAX_W * 11];
	unsigned int n = 0;
	uint8_t *res, *r;

	FUZZ_CHECK(h->magic == FERRY_RING_MAGIC && h->version == FERRY_RING_VERSION && h->region_size == s->region_size &&
			   h->nworkers == s->nw && h->rx_slots == s->rx_slots && h->tx_slots == s->tx_slots &&
			   h->slot_size == s->slot_size && h->nareas == s->nareas,
		   "the header does not describe the session");
	FUZZ_CHECK(s->region_size % PAGE == 0, "region size %zu", s->region_size);
	for (unsigned int i = 0; i < s->nw; i++) {
		const struct ferry_ring_worker *rw = &h->w[i];
		const struct ferryd_sess_wk *k = &s->wk[i];
		uint64_t parts[11][2] = {
			{ rw->rx, sizeof(struct ferry_ring_idx) },
			{ rw->rx_ret, sizeof(struct ferry_ring_idx) },
			{ rw->tx, sizeof(struct ferry_ring_idx) },
			{ rw->tx_ret, sizeof(struct ferry_ring_idx) },
			{ rw->stats, sizeof(struct ferry_ring_stats) },
			{ rw->rx_desc, (uint64_t)s->rx_slots * sizeof(struct ferry_rx_desc) },
			{ rw->rx_ret_desc, (uint64_t)s->rx_slots * sizeof(struct ferry_ret_desc) },
			{ rw->tx_desc, (uint64_t)s->tx_slots * sizeof(struct ferry_tx_desc) },
			{ rw->tx_ret_desc, (uint64_t)s->tx_slots * sizeof(struct ferry_ret_desc) },
			{ rw->rx_slot, (uint64_t)s->rx_slots * s->slot_size },
			{ rw->tx_slot, (uint64_t)s->tx_slots * s->slot_size },
		};
		const void *ptrs[11] = { k->rx, k->rx_ret, k->tx, k->tx_ret, k->shared, k->rx_desc, k->rx_ret_desc,
					 k->tx_desc, k->tx_ret_desc, k->rx_slot, k->tx_slot };

		for (unsigned int p = 0; p < 11; p++) {
			check_span(s, parts[p][0], parts[p][1], "a ring part", i);
			FUZZ_CHECK(ptrs[p] == s->region + parts[p][0], "worker %u: part %u: ferryd's pointer is not where "
				   "the header says", i, p);
			span[n].off = parts[p][0];
			span[n++].len = parts[p][1];
		}
	}
	for (unsigned int a = 0; a < n; a++)
		for (unsigned int b = a + 1; b < n; b++)
			FUZZ_CHECK(span[a].off + span[a].len <= span[b].off || span[b].off + span[b].len <= span[a].off,
				   "ring parts %u and %u overlap", a, b);

	res = mmap(NULL, s->region_size + 2 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	FUZZ_CHECK(res != MAP_FAILED, "mmap: %s", strerror(errno));
	r = mmap(res + PAGE, s->region_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, s->memfd, 0);
	FUZZ_CHECK(r == res + PAGE, "mmap of the memfd: %s", strerror(errno));
	h = (const void *)r;
	for (unsigned int i = 0; i < s->nw; i++) {
		const struct ferry_ring_worker *rw = &h->w[i];
		struct ferryd_sess_wk *k = &s->wk[i];

		k->rx = (void *)(r + rw->rx);
		k->rx_ret = (void *)(r + rw->rx_ret);
		k->tx = (void *)(r + rw->tx);
		k->tx_ret = (void *)(r + rw->tx_ret);
		k->shared = (void *)(r + rw->stats);
		k->rx_desc = (void *)(r + rw->rx_desc);
		k->rx_ret_desc = (void *)(r + rw->rx_ret_desc);
		k->tx_desc = (void *)(r + rw->tx_desc);
		k->tx_ret_desc = (void *)(r + rw->tx_ret_desc);
		k->rx_slot = r + rw->rx_slot;
		k->tx_slot = r + rw->tx_slot;
		st.m[i].v = (struct view){ k->rx, k->rx_ret, k->tx, k->tx_ret, k->rx_desc, k->rx_ret_desc,
					   k->tx_ret_desc, k->tx_desc, k->rx_slot, k->tx_slot };
	}
	munmap(s->region, s->region_size);
	s->region = r;
}

static void unguard_free(struct ferryd_session *s)
{
	uint8_t *r = s->region;
	size_t size = s->region_size;

	ferryd_session_free(s); /* unmaps the region itself */
	munmap(r - PAGE, PAGE);
	munmap(r + size, PAGE);
}

/* As if base entries had passed on every ring already. */
static void set_base(struct ferryd_sess_wk *k, struct model *m, uint32_t base)
{
	struct ferry_ring_idx *rings[4] = { k->rx, k->rx_ret, k->tx, k->tx_ret };

	k->rx_prod = k->rx_ret_cons = k->tx_cons = k->tx_ret_prod = base;
	m->rx_cons = m->rx_ret_prod = m->tx_prod = m->tx_ret_cons = base;
	for (unsigned int i = 0; i < 4; i++)
		rings[i]->producer = rings[i]->consumer = base;
}

static void setup(struct fuzz_in *in)
{
	struct ferryd_sess_area areas[MAX_W * MAX_QA];
	uint8_t shape = fuzz_u8(in), b1 = fuzz_u8(in), b2 = fuzz_u8(in);
	unsigned int nw = shape & RR_TWO_WORKERS ? 2 : 1, nareas = 0;
	unsigned int napw = shape & RR_ZEROCOPY ? (shape & RR_TWO_AREAS ? 2 : 1) : 0;
	uint32_t rx = shape & RR_RX32 ? 32 : 16, tx = shape & RR_TX32 ? 32 : 16, slot = slot_sizes[(shape >> 4) & 3];
	uint32_t base = b1 & 0x80 ? UINT32_MAX - (b1 & 0x7f) : b1;
	union ferry_sockaddr addr;
	char why[256];
	int err;

	memset(&st.m, 0, sizeof(st.m));
	st.broke = false;
	st.nframes = 8u << (b2 & 3);
	for (unsigned int w = 0; w < nw; w++)
		for (unsigned int q = 0; q < napw; q++)
			areas[nareas++] = (struct ferryd_sess_area){ .fd = -1, .size = (uint64_t)st.nframes * 2048,
								     .frame_size = 2048, .nframes = st.nframes,
								     .worker = w, .qi = q };
	src_of(&addr, AF_INET, 9000);
	err = ferryd_session_new(&st.svc, 0, &addr, nw, 1, rx, tx, slot, areas, nareas, &st.s, why, sizeof(why));
	FUZZ_CHECK(!err, "ferryd_session_new of %u workers, %u/%u slots of %u, %u areas: %d %s", nw, rx, tx, slot, nareas,
		   err, why);
	guard(st.s);
	for (unsigned int w = 0; w < nw; w++) {
		struct ferryd_sess_wk *k = &st.s->wk[w];
		struct model *m = &st.m[w];

		FUZZ_CHECK(k->nareas == napw, "worker %u: %u areas, %u given", w, k->nareas, napw);
		FUZZ_CHECK(k->tx->flags == FERRY_RING_NEED_WAKEUP, "worker %u: tx not asleep at the start", w);
		m->w = w;
		k->frame_back = frame_back;
		k->frame_back_ctx = m;
		set_base(k, m, base);
		memset(m->owned, 1, sizeof(m->owned));
	}
}

/* ---- invariants -------------------------------------------------------------------------------- */

static void check_worker(struct ferryd_sess_wk *k, struct model *m)
{
	const struct ferryd_session *s = k->s;
	uint8_t seen[MAX_SLOTS] = { 0 };
	uint32_t nout = 0, nzc = 0, nheld = 0;

	FUZZ_CHECK(!m->was_dead || k->dead, "worker %u: dead, then alive again", m->w);
	m->was_dead = k->dead;
	for (uint32_t i = 0; i < s->rx_slots; i++)
		nout += k->out[i] != 0;
	FUZZ_CHECK(nout == k->nout, "worker %u: nout %u, out[] has %u", m->w, k->nout, nout);
	FUZZ_CHECK(k->nfree + k->nout == s->rx_slots, "worker %u: %u free + %u out != %u slots", m->w, k->nfree, k->nout,
		   s->rx_slots);
	for (uint32_t i = 0; i < k->nfree; i++) {
		uint32_t slot = k->free[i];

		FUZZ_CHECK(slot < s->rx_slots, "worker %u: free slot %u out of range", m->w, slot);
		FUZZ_CHECK(!seen[slot], "worker %u: slot %u free twice", m->w, slot);
		FUZZ_CHECK(!k->out[slot], "worker %u: slot %u both free and out", m->w, slot);
		seen[slot] = 1;
	}
	for (unsigned int q = 0; q < k->nareas; q++) {
		uint32_t held = 0;

		for (uint32_t f = 0; f < st.nframes; f++) {
			held += k->zc_out[q][f] != 0;
			FUZZ_CHECK(!k->zc_out[q][f] == !m->handed[q][f], "worker %u queue %u frame %u: zc_out %u, handed %u",
				   m->w, q, f, k->zc_out[q][f], m->handed[q][f]);
		}
		FUZZ_CHECK(held == k->zc_held[q], "worker %u queue %u: zc_held %u, zc_out has %u", m->w, q, k->zc_held[q],
			   held);
		nzc += held;
	}
	FUZZ_CHECK(nzc == k->nzc && nzc == m->nhanded, "worker %u: nzc %u, zc_out has %u, %u handed out", m->w, k->nzc,
		   nzc, m->nhanded);
	FUZZ_CHECK(k->nout + k->nzc <= s->rx_slots, "worker %u: %u + %u entries out on a ring of %u", m->w, k->nout,
		   k->nzc, s->rx_slots);
	for (uint32_t i = 0; i < s->tx_slots; i++)
		nheld += k->held[i] != 0;
	if (!k->dead) {
		FUZZ_CHECK(nheld == m->ntaken, "worker %u: held[] has %u, %u taken and not given back", m->w, nheld,
			   m->ntaken);
		for (uint32_t i = 0; i < m->ntaken; i++)
			FUZZ_CHECK(k->held[m->taken[i]], "worker %u: taken slot %u not held", m->w, m->taken[i]);
	}
}

static void check_all(void)
{
	struct ferryd_session *s = st.s;
	unsigned int dead = 0, first = 0;
	char why[256] = "";

	for (unsigned int w = 0; w < s->nw; w++) {
		check_worker(&s->wk[w], &st.m[w]);
		dead += s->wk[w].dead;
		first += s->wk[w].first_to_fail;
		FUZZ_CHECK(!s->wk[w].first_to_fail || s->wk[w].dead, "worker %u reported, but is not dead", w);
	}
	FUZZ_CHECK(first <= 1, "%u workers reported the session broken", first);
	FUZZ_CHECK(ferryd_session_failed(s, why, sizeof(why)) == (dead > 0), "%u dead sides, failed %d", dead, s->failed);
	FUZZ_CHECK(!dead || (first == 1 && why[0]), "the session failed without one report and a reason");
	FUZZ_CHECK(st.broke || !dead, "a client that kept the rules was ended: %s", why);
}

/* ---- the well-behaved client ------------------------------------------------------------------- */

static void c_read_rx(struct model *m, uint32_t max)
{
	const struct ferryd_session *s = st.s;
	uint32_t prod = __atomic_load_n(&m->v.rx->producer, __ATOMIC_ACQUIRE), mask = s->rx_slots - 1;

	for (uint32_t i = 0; i < max && m->rx_cons != prod && m->nheld < sizeof(m->held) / sizeof(m->held[0]); i++) {
		const struct ferry_rx_desc *d = &m->v.rx_desc[m->rx_cons++ & mask];

		m->held[m->nheld].slot = d->slot;
		m->held[m->nheld++].area = d->area;
		if (st.broke)
			continue;
		FUZZ_CHECK(m->put_head != m->put_tail, "worker %u: the client read an entry ferryd never put", m->w);
		{
			const struct put_rec *p = &m->put[m->put_head++ % FIFO];
			union ferry_sockaddr src, want;

			FUZZ_CHECK(d->slot == p->slot && d->area == p->area && d->len == p->len && d->off == p->off,
				   "worker %u: read slot %u area %u len %u off %u, ferryd put slot %u area %u len %u off %u",
				   m->w, d->slot, d->area, d->len, d->off, p->slot, p->area, p->len, p->off);
			FUZZ_CHECK(ferryd_ring_addr_to(&src, &d->src), "worker %u: source of family %u", m->w, d->src.family);
			src_of(&want, p->family, p->seq);
			FUZZ_CHECK(ferry_sockaddr_equal(&src, &want), "worker %u: source not the one put", m->w);
			if (!p->area)
				for (uint32_t j = 0; j < p->len; j++)
					FUZZ_CHECK(m->v.rx_slot[(size_t)p->slot * s->slot_size + j] == pattern(p->seq, j),
						   "worker %u: slot %u byte %u is not what was put", m->w, p->slot, j);
		}
	}
	__atomic_store_n(&m->v.rx->consumer, m->rx_cons, __ATOMIC_RELEASE);
}

static void c_return(struct model *m, uint32_t pick, uint32_t n)
{
	uint32_t mask = st.s->rx_slots - 1;

	for (uint32_t i = 0; i < n && m->nheld; i++) {
		uint32_t at = (pick + i) % m->nheld;
		struct ferry_ret_desc *d = &m->v.rx_ret_desc[m->rx_ret_prod++ & mask];

		d->slot = m->held[at].slot;
		d->area = m->held[at].area;
		m->held[at] = m->held[--m->nheld];
	}
	__atomic_store_n(&m->v.rx_ret->producer, m->rx_ret_prod, __ATOMIC_RELEASE);
}

static void c_send(struct model *m, uint32_t pick, uint32_t len, uint32_t off, uint8_t fam)
{
	const struct ferryd_session *s = st.s;
	struct ferry_tx_desc *d;
	union ferry_sockaddr dst;
	uint32_t slot = UINT32_MAX;
	struct sent_rec *r;

	for (uint32_t i = 0; i < s->tx_slots; i++)
		if (m->owned[(pick + i) % s->tx_slots]) {
			slot = (pick + i) % s->tx_slots;
			break;
		}
	if (slot == UINT32_MAX)
		return; /* everything in flight */
	off %= s->slot_size + 1;
	len %= s->slot_size - off + 1;
	m->owned[slot] = 0;
	for (uint32_t j = 0; j < len; j++)
		m->v.tx_slot[(size_t)slot * s->slot_size + off + j] = pattern(m->seq_sent, j);
	d = &m->v.tx_desc[m->tx_prod & (s->tx_slots - 1)];
	d->slot = slot;
	d->len = len;
	d->off = off;
	d->reserved = 0;
	src_of(&dst, fam & 1 ? AF_INET6 : AF_INET, m->seq_sent);
	ferryd_ring_addr_from(&d->dst, &dst);
	r = &m->sent[m->sent_tail++ % FIFO];
	*r = (struct sent_rec){ m->seq_sent++, slot, off, len, dst.sa.sa_family };
	if (m->sent_tail - m->sent_head > FIFO)
		m->sent_head++; /* only when broken: ferryd took nothing, the client sent past it */
	m->tx_prod++;
	__atomic_store_n(&m->v.tx->producer, m->tx_prod, __ATOMIC_RELEASE);
}

static void c_reap_tx_ret(struct model *m, uint32_t max)
{
	uint32_t prod = __atomic_load_n(&m->v.tx_ret->producer, __ATOMIC_ACQUIRE), mask = st.s->tx_slots - 1;

	for (uint32_t i = 0; i < max && m->tx_ret_cons != prod; i++) {
		const struct ferry_ret_desc *d = &m->v.tx_ret_desc[m->tx_ret_cons++ & mask];

		if (!st.broke)
			FUZZ_CHECK(d->slot < st.s->tx_slots && !m->owned[d->slot] && !d->area,
				   "worker %u: tx_ret gave back slot %u area %u, which the client did not send", m->w,
				   d->slot, d->area);
		if (d->slot < st.s->tx_slots)
			m->owned[d->slot] = 1;
	}
	__atomic_store_n(&m->v.tx_ret->consumer, m->tx_ret_cons, __ATOMIC_RELEASE);
}

/* ---- the hostile client ------------------------------------------------------------------------ */

static void h_index(struct model *m, uint8_t field, uint8_t mode, uint32_t value)
{
	struct ferry_ring_idx *rings[4] = { m->v.rx, m->v.rx_ret, m->v.tx, m->v.tx_ret };
	struct ferry_ring_idx *x = rings[field % 4];
	uint32_t *p = (field >> 2) % 3 == 0 ? &x->producer : (field >> 2) % 3 == 1 ? &x->consumer : &x->flags;

	/* a delta (-128..127) finds the edges of a rule; a value anything */
	*p = mode & 1 ? *p + (uint32_t)(int32_t)(int8_t)value : value;
}

/* ---- ferryd's calls ---------------------------------------------------------------------------- */

static void d_put(struct ferryd_sess_wk *k, struct model *m, uint32_t len, uint8_t fam)
{
	const struct ferryd_session *s = k->s;
	uint64_t big = k->st.rx_dropped_big, full = k->st.rx_dropped_full;
	union ferry_sockaddr src;
	uint16_t family = fam & 1 ? AF_INET6 : AF_INET;
	bool ok;

	if (k->dead)
		return; /* dispatch.c never puts to a dead side */
	len %= s->slot_size + 65;
	for (uint32_t j = 0; j < len; j++)
		st.data[j] = pattern(m->seq_put, j);
	src_of(&src, family, m->seq_put);
	ok = ferryd_sess_rx_put(k, st.data, len, &src);
	if (len > s->slot_size) {
		FUZZ_CHECK(!ok && k->st.rx_dropped_big == big + 1, "worker %u: %u bytes into slots of %u", m->w, len,
			   s->slot_size);
		return;
	}
	if (!ok) {
		FUZZ_CHECK(k->st.rx_dropped_full == full + 1, "worker %u: a refused put not counted", m->w);
		FUZZ_CHECK(k->dead || !k->nfree || k->nout + k->nzc >= s->rx_slots,
			   "worker %u: put refused with %u free, %u + %u out", m->w, k->nfree, k->nout, k->nzc);
		return;
	}
	{
		const struct ferry_rx_desc *d = &k->rx_desc[(k->rx_prod - 1) & (s->rx_slots - 1)];

		FUZZ_CHECK(d->slot < s->rx_slots && k->out[d->slot] && d->len == len && !d->area && !d->off,
			   "worker %u: the entry put is slot %u len %u area %u", m->w, d->slot, d->len, d->area);
		FUZZ_CHECK(!memcmp(k->rx_slot + (size_t)d->slot * s->slot_size, st.data, len),
			   "worker %u: slot %u does not hold the datagram", m->w, d->slot);
		m->put[m->put_tail++ % FIFO] = (struct put_rec){ m->seq_put, d->slot, 0, 0, len, family };
	}
	if (m->put_tail - m->put_head > FIFO)
		m->put_head++;
	m->seq_put++;
}

static void d_put_frame(struct ferryd_sess_wk *k, struct model *m, uint8_t q, uint8_t f, uint16_t off, uint16_t len,
			uint8_t fam)
{
	unsigned int qi = q % (k->nareas + 1);
	uint32_t fi = f % st.nframes, nzc = k->nzc;
	union ferry_sockaddr src;
	uint16_t family = fam & 1 ? AF_INET6 : AF_INET;
	bool ok;

	if (k->dead)
		return;
	/* a frame the queue has (not on the client's ring now) */
	for (uint32_t i = 0; qi < k->nareas && i < st.nframes && m->handed[qi][fi]; i++)
		fi = (fi + 1) % st.nframes;
	if (qi < k->nareas && m->handed[qi][fi])
		return;
	src_of(&src, family, m->seq_put);
	ok = ferryd_sess_rx_put_frame(k, qi, fi, off, len, &src);
	if (qi >= k->nareas || k->nout + nzc >= k->s->rx_slots) {
		FUZZ_CHECK(!ok, "worker %u: frame put on queue %u of %u, %u + %u out", m->w, qi, k->nareas, k->nout, nzc);
		return;
	}
	FUZZ_CHECK(ok, "worker %u: frame refused with room", m->w);
	m->handed[qi][fi] = 1;
	m->nhanded++;
	m->put[m->put_tail++ % FIFO] = (struct put_rec){ m->seq_put++, fi, k->area_base + qi + 1, off, len, family };
	if (m->put_tail - m->put_head > FIFO)
		m->put_head++;
}

static void d_take(struct ferryd_sess_wk *k, struct model *m, uint32_t max)
{
	const struct ferryd_session *s = k->s;
	struct ferry_iobuf bufs[MAX_SLOTS];
	union ferry_sockaddr dsts[MAX_SLOTS];
	uint32_t slots[MAX_SLOTS];
	uint8_t before[MAX_SLOTS];
	unsigned int n;
	const uint8_t *lo = k->tx_slot, *hi = k->tx_slot + (size_t)s->tx_slots * s->slot_size;

	if (k->dead)
		return;
	max = 1 + max % MAX_SLOTS;
	memcpy(before, k->held, s->tx_slots);
	n = ferryd_sess_tx_take(k, bufs, dsts, slots, max);
	FUZZ_CHECK(n <= max, "worker %u: took %u of at most %u", m->w, n, max);
	FUZZ_CHECK(!n || !k->dead, "worker %u: took %u and died", m->w, n);
	for (unsigned int i = 0; i < n; i++) {
		const struct ferry_iobuf *b = &bufs[i];
		const uint8_t *slot_lo;

		FUZZ_CHECK(slots[i] < s->tx_slots, "worker %u: took slot %u of %u", m->w, slots[i], s->tx_slots);
		FUZZ_CHECK(!before[slots[i]], "worker %u: took slot %u, held already", m->w, slots[i]);
		before[slots[i]] = 1;
		slot_lo = k->tx_slot + (size_t)slots[i] * s->slot_size;
		FUZZ_CHECK(b->data + b->lo >= slot_lo && b->hi >= b->lo && b->data + b->hi <= slot_lo + s->slot_size &&
				   b->data + b->hi <= hi && b->data >= lo,
			   "worker %u: a view of slot %u leaves it (lo %zu hi %zu)", m->w, slots[i], b->lo, b->hi);
		FUZZ_CHECK(dsts[i].sa.sa_family == AF_INET || dsts[i].sa.sa_family == AF_INET6,
			   "worker %u: destination of family %u", m->w, dsts[i].sa.sa_family);
		m->taken[m->ntaken++] = slots[i];
		if (!st.broke) {
			const struct sent_rec *r;
			union ferry_sockaddr want;

			FUZZ_CHECK(m->sent_head != m->sent_tail, "worker %u: took what the client never sent", m->w);
			r = &m->sent[m->sent_head++ % FIFO];
			src_of(&want, r->family, r->seq);
			FUZZ_CHECK(slots[i] == r->slot && b->data + b->lo == slot_lo + r->off && b->hi - b->lo == r->len,
				   "worker %u: took slot %u (%zu bytes), the client sent slot %u (%u at %u)", m->w, slots[i],
				   b->hi - b->lo, r->slot, r->len, r->off);
			FUZZ_CHECK(ferry_sockaddr_equal(&dsts[i], &want), "worker %u: destination not the one sent", m->w);
			for (uint32_t j = 0; j < r->len; j++)
				FUZZ_CHECK(b->data[b->lo + j] == pattern(r->seq, j), "worker %u: byte %u not the one sent",
					   m->w, j);
		}
	}
}

static void d_give(struct ferryd_sess_wk *k, struct model *m, uint32_t n)
{
	if (k->dead)
		return; /* dispatch.c gives back right after it took, on a live side */
	n = n % (m->ntaken + 1);
	ferryd_sess_tx_give_back(k, m->taken, n);
	memmove(m->taken, m->taken + n, (m->ntaken - n) * sizeof(m->taken[0]));
	m->ntaken -= n;
}

static void d_sleep(struct ferryd_sess_wk *k, struct model *m)
{
	uint32_t prod;
	bool empty;

	if (k->dead)
		return;
	prod = k->tx->producer;
	empty = ferryd_sess_tx_sleep(k);
	FUZZ_CHECK(empty == (prod == k->tx_cons), "worker %u: tx_sleep says %s with producer %u, ferryd at %u", m->w,
		   empty ? "empty" : "work", prod, k->tx_cons);
	FUZZ_CHECK(k->tx->flags == (empty ? FERRY_RING_NEED_WAKEUP : 0), "worker %u: tx flags %#x after tx_sleep",
		   m->w, k->tx->flags);
}

static void d_reclaim(struct ferryd_sess_wk *k, struct model *m)
{
	/* the frames the client still has are taken back: a correct client's returns of them now break the rules */
	if (m->nhanded)
		st.broke = true;
	ferryd_sess_zc_reclaim(k);
	FUZZ_CHECK(!k->nzc && !m->nhanded, "worker %u: %u frames out after reclaim", m->w, k->nzc);
}

/* ---- the run ----------------------------------------------------------------------------------- */

static void step(struct fuzz_in *in)
{
	uint8_t b = fuzz_u8(in);
	unsigned int w = (b >> 7) % st.s->nw;
	struct ferryd_sess_wk *k = &st.s->wk[w];
	struct model *m = &st.m[w];

	switch ((b & 0x7f) % RR_NOPS) {
	case RR_C_READ_RX:
		c_read_rx(m, 1 + fuzz_u8(in) % MAX_SLOTS);
		break;
	case RR_C_RETURN: {
		uint8_t pick = fuzz_u8(in);

		c_return(m, pick, 1 + fuzz_u8(in) % MAX_SLOTS);
		break;
	}
	case RR_C_SEND: {
		uint8_t pick = fuzz_u8(in);
		uint16_t len = fuzz_u16(in);
		uint8_t off = fuzz_u8(in);

		c_send(m, pick, len, off, fuzz_u8(in));
		break;
	}
	case RR_C_REAP_TX_RET:
		c_reap_tx_ret(m, 1 + fuzz_u8(in) % MAX_SLOTS);
		break;
	case RR_C_FLAGS: {
		uint8_t f = fuzz_u8(in);

		__atomic_store_n(f & 1 ? &m->v.rx->flags : &m->v.tx_ret->flags, f & 2 ? FERRY_RING_NEED_WAKEUP : 0,
				 __ATOMIC_RELAXED);
		break;
	}
	case RR_C_KICK:
		if (write(st.s->kick_wr[w], "", 1) < 0 && errno != EAGAIN)
			FUZZ_CHECK(0, "kick: %s", strerror(errno));
		break;
	case RR_H_INDEX: {
		uint8_t field = fuzz_u8(in), mode = fuzz_u8(in);

		st.broke = true;
		h_index(m, field, mode, fuzz_u32(in));
		break;
	}
	case RR_H_RX_RET: {
		struct ferry_ret_desc *d = &m->v.rx_ret_desc[m->rx_ret_prod++ & (st.s->rx_slots - 1)];

		st.broke = true;
		d->slot = fuzz_u32(in);
		d->area = fuzz_u32(in);
		__atomic_store_n(&m->v.rx_ret->producer, m->rx_ret_prod, __ATOMIC_RELEASE);
		break;
	}
	case RR_H_TX: {
		struct ferry_tx_desc *d = &m->v.tx_desc[m->tx_prod++ & (st.s->tx_slots - 1)];

		st.broke = true;
		d->slot = fuzz_u32(in);
		d->len = fuzz_u32(in);
		d->off = fuzz_u32(in);
		d->reserved = fuzz_u32(in);
		d->dst.family = fuzz_u16(in);
		d->dst.port = fuzz_u16(in);
		d->dst.scope_id = fuzz_u32(in);
		fuzz_bytes(in, d->dst.addr, sizeof(d->dst.addr));
		__atomic_store_n(&m->v.tx->producer, m->tx_prod, __ATOMIC_RELEASE);
		break;
	}
	case RR_H_RAW: {
		uint32_t off = fuzz_u32(in) % st.s->region_size;
		uint32_t len = fuzz_u8(in);

		st.broke = true;
		if (len > st.s->region_size - off)
			len = (uint32_t)(st.s->region_size - off);
		fuzz_bytes(in, st.s->region + off, len);
		break;
	}
	case RR_D_PUT: {
		uint16_t len = fuzz_u16(in);

		d_put(k, m, len, fuzz_u8(in));
		break;
	}
	case RR_D_PUT_FRAME: {
		uint8_t q = fuzz_u8(in), f = fuzz_u8(in);
		uint16_t off = fuzz_u16(in), len = fuzz_u16(in);

		d_put_frame(k, m, q, f, off, len, fuzz_u8(in));
		break;
	}
	case RR_D_FLUSH:
		ferryd_sess_rx_flush(k);
		FUZZ_CHECK(k->dead || k->rx->producer == k->rx_prod || st.broke, "worker %u: rx producer %u after a flush, "
			   "ferryd at %u", w, k->rx->producer, k->rx_prod);
		break;
	case RR_D_REAP: {
		bool ok = ferryd_sess_rx_reap(k);

		FUZZ_CHECK(ok == !k->dead, "worker %u: reap says %d, dead %d", w, ok, k->dead);
		break;
	}
	case RR_D_TAKE:
		d_take(k, m, fuzz_u8(in));
		break;
	case RR_D_GIVE:
		d_give(k, m, fuzz_u8(in));
		break;
	case RR_D_SLEEP:
		d_sleep(k, m);
		break;
	case RR_D_RECLAIM:
		d_reclaim(k, m);
		break;
	case RR_D_KICK_CLEAR:
		ferryd_sess_kick_clear(k);
		break;
	}
	check_all();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };

	if (!st.svc.name[0]) {
		snprintf(st.svc.name, sizeof(st.svc.name), "fuzz");
		/* a session ended is a warning: not printed at every run (FERRY_FUZZ_LOG=1 to see ferryd's log) */
		ferryd_log_level = getenv("FERRY_FUZZ_LOG") ? LOG_DEBUG : LOG_ERR;
	}
	if (size < 3)
		return 0;
	setup(&in);
	check_all();
	for (unsigned int i = 0; i < MAX_OPS && in.n; i++)
		step(&in);
	/* the end of a session: every frame the client held goes back, once */
	for (unsigned int w = 0; w < st.s->nw; w++) {
		ferryd_sess_zc_reclaim(&st.s->wk[w]);
		FUZZ_CHECK(!st.m[w].nhanded, "worker %u: %u frames never came back", w, st.m[w].nhanded);
	}
	unguard_free(st.s);
	st.s = NULL;
	return 0;
}
