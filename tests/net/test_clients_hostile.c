/* SPDX-License-Identifier: MIT */
/*
 * Hostile clients of ferryd: processes that attach with the raw ABI of
 * ferry/ring.h (tests/lib/hostile_client.h, no libferry) and then break its
 * rules, stall, or talk garbage on the control socket. What every test
 * proves, beside its own point:
 *
 *   - ferryd stays alive and keeps serving: a well-behaved libferry client
 *     (tests/lib/client_proc.h) attached to the same service with fanout
 *     "all" receives every datagram of a bounded burst from the peer,
 *     byte-exact (count, lengths, FNV hashes, source), before, while and
 *     after the hostile one misbehaves;
 *   - the hostile session ends the way ring.h says: ferryd logs why, sends a
 *     FERRY_CTL_END (-ECONNRESET, "ferryd ended the session: <why>") and
 *     closes the connection, and counts it in clients_failed;
 *   - on SIGTERM ferryd exits 0 (3 would mean its frame accounting is
 *     unbalanced).
 *
 * The tests:
 *   garbage_*        one rule of ring.h broken on the rings (rx_ret and tx,
 *                    each check of daemon/session.c), random bytes over the
 *                    whole rings area (with and without kicks, one and two
 *                    workers, both modes), and a fuzzer: session after
 *                    session of a correct client that breaks one rule at a
 *                    random moment (ferryd must end exactly those, for the
 *                    right ring, and never a session that kept the rules);
 *   never_consuming_* a client that never touches its rings costs only itself;
 *   control_*        garbage on the control socket, before and after attach.
 *
 * The hostile client is a forked child; it reports what it saw (its session,
 * the END message, the connection closing) in shared memory. Its random
 * bytes come from a seed the test logs; FERRY_HOSTILE_SEED sets it. Every
 * address it writes is the peer's (198.18.0.2 / 2001:2::2); random bytes
 * could name another only if a random tx producer landed within 16 of
 * ferryd's (2^-28 a round), and the host namespace has no route off the
 * veth pair.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <ferry/ring.h>

#include "client_proc.h"
#include "ferryd_proc.h"
#include "hostile_client.h"
#include "netns.h"
#include "testutil.h"

#define SERVICE "svc"
#define PORT 9000
#define READY_MS 15000
#define EXIT_MS 15000
#define HOSTILE_SLOTS 16u /* the hostile client's RX and TX slots per worker: ferryd's minimum */
#define BURST 384u	  /* datagrams from the peer per test, in two halves */
#define HALF (BURST / 2)

/* ---------------------------------------------------------------- the hostile child */

enum hostile_kind {
	RX_RET_PAST_HELD,     /* rx_ret producer moved one past the slots it holds */
	RX_RET_BACKWARDS,     /* rx_ret producer moved backwards (wraps to 2^32 - 1 entries) */
	RX_RET_OUT_OF_RANGE,  /* rx_ret names slot rx_slots + 7 */
	RX_RET_AREA,	      /* rx_ret names a slot of area 1 (the session has no areas) */
	RX_RET_TWICE,	      /* rx_ret gives back the same held slot twice: the second time it holds it no more */
	RX_RET_ONE_PAST,      /* rx_ret names slot rx_slots: one past the last */
	TX_FAR_AHEAD,	      /* tx producer 1000 entries past its ring */
	TX_SLOT_OUT_OF_RANGE, /* tx names slot tx_slots + 3 */
	TX_PAST_SLOT,	      /* tx: 64 bytes at slot_size - 8 */
	TX_OFFSET_WRAPS,      /* tx: off + len wraps 32 bits */
	TX_SLOT_TWICE,	      /* tx: the same slot twice in one batch */
	TX_BAD_FAMILY,	      /* tx: destination of family 1 (AF_UNIX) */
	TX_SLOT_ONE_PAST,     /* tx names slot tx_slots: one past the last */
	TX_RESERVED,	      /* tx: a descriptor's reserved field not 0 */
	RANDOM,		      /* everything after the header, random, again and again; every worker kicked */
	RANDOM_NO_KICK,	      /* the same, never kicking: only the RX path (rx_ret, read lazily) can notice */
	FUZZ,		      /* session after session: a correct client that breaks one rule at a random moment */
	ALL_WORKERS,	      /* session after session: the same rule broken on every worker's tx, every worker kicked */
	NEVER_CONSUMES,	      /* attaches, then touches nothing (never reads, never returns a slot) */
};

enum { H_STARTING, H_ATTACHED, H_REFUSED };

/* Written by the hostile child, read by the test (also after the child died). */
struct hostile_shared {
	int state; /* H_* */
	int err;
	char why[160]; /* why the attach failed, or what went wrong in the child */
	uint32_t session, nw, rx_slots, tx_slots, slot_size;
	int go;	       /* set by the test: break the rule now (NEVER_CONSUMES: ferryd is gone, read the socket) */
	int broke;     /* the rule is broken (the first round written, for RANDOM) */
	uint32_t held; /* RX slots ferryd had handed it when it broke the rule */
	uint32_t first_slot; /* the slot of its first rx entry */
	uint64_t seed, rounds, rounds_after_end;
	int got_end;   /* a message came on the control socket (below) */
	ssize_t end_len;
	unsigned int end_nfds;
	struct ferry_ctl_reply end;
	int closed;    /* the connection closed after that message */
	int extra;     /* messages after the first */
	/* FUZZ */
	int stop;      /* set by the test: no new session */
	int done;      /* the child is through */
	uint32_t sessions, faults, ended, undetected, detached, bad_end, false_end, attach_failed;
	uint64_t tx_sent, rx_returned, rounds_valid;
	uint32_t fault_count[16];
	char bad[256]; /* the first thing that went wrong, for the test's message */
};

struct hostile_cfg {
	const char *control;
	enum hostile_kind kind;
	int family; /* of the TX destinations it writes */
};

static void h_set(int *field, int v)
{
	__atomic_store_n(field, v, __ATOMIC_RELEASE);
}

static int h_get(const int *field)
{
	return __atomic_load_n(field, __ATOMIC_ACQUIRE);
}

/* A TX descriptor that keeps every rule but the one a case breaks: 32 bytes in slot of worker wi to the peer's port 9. */
static void tx_ok(struct ferry_test_raw *r, unsigned int wi, struct ferry_tx_desc *d, uint32_t slot, int family)
{
	union ferry_sockaddr a;

	memset(r->w[wi].tx_slot + (size_t)slot * r->h->slot_size, 'h', 32);
	memset(d, 0, sizeof(*d));
	d->slot = slot;
	d->len = 32;
	d->off = 0;
	ferry_testns_addr(FERRY_TESTNS_PEER, family, 9, &a);
	d->dst.family = (uint16_t)family;
	if (family == AF_INET6) {
		d->dst.port = a.in6.sin6_port;
		memcpy(d->dst.addr, &a.in6.sin6_addr, 16);
	} else {
		d->dst.port = a.in4.sin_port;
		memcpy(d->dst.addr, &a.in4.sin_addr, 4);
	}
}

static void publish_idx(uint32_t *idx, uint32_t v)
{
	__atomic_store_n(idx, v, __ATOMIC_RELEASE);
}

/* Breaks kind's rule on worker 0's rings (TX kinds: and kicks worker 0). */
static void break_rule(struct ferry_test_raw *r, const struct hostile_cfg *cfg, struct hostile_shared *hs)
{
	struct ferry_test_raw_wk *w = &r->w[0];
	uint32_t rxs = r->h->rx_slots, txs = r->h->tx_slots, ss = r->h->slot_size;
	uint32_t held = __atomic_load_n(&w->rx->producer, __ATOMIC_ACQUIRE); /* it consumed none: it holds them all */
	uint32_t first = held ? w->rx_desc[0].slot : 0;

	hs->held = held;
	hs->first_slot = first;
	switch (cfg->kind) {
	case RX_RET_PAST_HELD:
		for (uint32_t i = 0; i <= held; i++)
			w->rx_ret_desc[i & (rxs - 1)] = (struct ferry_ret_desc){
				.slot = i < held ? w->rx_desc[i & (rxs - 1)].slot : first };
		publish_idx(&w->rx_ret->producer, held + 1);
		break;
	case RX_RET_BACKWARDS:
		publish_idx(&w->rx_ret->producer, (uint32_t)-1);
		break;
	case RX_RET_OUT_OF_RANGE:
		w->rx_ret_desc[0] = (struct ferry_ret_desc){ .slot = rxs + 7 };
		publish_idx(&w->rx_ret->producer, 1);
		break;
	case RX_RET_ONE_PAST:
		w->rx_ret_desc[0] = (struct ferry_ret_desc){ .slot = rxs };
		publish_idx(&w->rx_ret->producer, 1);
		break;
	case RX_RET_AREA:
		w->rx_ret_desc[0] = (struct ferry_ret_desc){ .slot = first, .area = 1 };
		publish_idx(&w->rx_ret->producer, 1);
		break;
	case RX_RET_TWICE:
		w->rx_ret_desc[0] = (struct ferry_ret_desc){ .slot = first };
		w->rx_ret_desc[1] = (struct ferry_ret_desc){ .slot = first };
		publish_idx(&w->rx_ret->producer, 2);
		break;
	case TX_FAR_AHEAD:
		tx_ok(r, 0, &w->tx_desc[0], 0, cfg->family);
		publish_idx(&w->tx->producer, txs + 1000);
		break;
	case TX_SLOT_OUT_OF_RANGE:
		tx_ok(r, 0, &w->tx_desc[0], 0, cfg->family);
		w->tx_desc[0].slot = txs + 3;
		publish_idx(&w->tx->producer, 1);
		break;
	case TX_PAST_SLOT:
		tx_ok(r, 0, &w->tx_desc[0], 0, cfg->family);
		w->tx_desc[0].off = ss - 8;
		w->tx_desc[0].len = 64;
		publish_idx(&w->tx->producer, 1);
		break;
	case TX_OFFSET_WRAPS:
		tx_ok(r, 0, &w->tx_desc[0], 0, cfg->family);
		w->tx_desc[0].off = 0xfffffff0u;
		w->tx_desc[0].len = 0x20;
		publish_idx(&w->tx->producer, 1);
		break;
	case TX_SLOT_TWICE:
		tx_ok(r, 0, &w->tx_desc[0], 0, cfg->family);
		tx_ok(r, 0, &w->tx_desc[1], 0, cfg->family);
		publish_idx(&w->tx->producer, 2);
		break;
	case TX_BAD_FAMILY:
		tx_ok(r, 0, &w->tx_desc[0], 0, cfg->family);
		w->tx_desc[0].dst.family = AF_UNIX;
		publish_idx(&w->tx->producer, 1);
		break;
	case TX_SLOT_ONE_PAST:
		tx_ok(r, 0, &w->tx_desc[0], 0, cfg->family);
		w->tx_desc[0].slot = txs;
		publish_idx(&w->tx->producer, 1);
		break;
	case TX_RESERVED:
		tx_ok(r, 0, &w->tx_desc[0], 0, cfg->family);
		w->tx_desc[0].reserved = 0x100;
		publish_idx(&w->tx->producer, 1);
		break;
	default:
		break;
	}
	if (cfg->kind >= TX_FAR_AHEAD)
		ferry_test_raw_kick(r, 0);
}

/* What comes on the control socket within ms: the first message into hs, then whether it closes. */
static bool take_end(struct ferry_test_raw *r, struct hostile_shared *hs, int ms)
{
	struct ferry_ctl_reply rep;
	ssize_t n;

	if (!h_get(&hs->got_end)) {
		memset(&rep, 0, sizeof(rep));
		n = ferry_test_ctl_recv(r->ctl, &rep, sizeof(rep), NULL, 0, &hs->end_nfds, ms);
		if (n == -ETIMEDOUT)
			return false;
		rep.why[sizeof(rep.why) - 1] = '\0';
		hs->end = rep;
		hs->end_len = n;
		h_set(&hs->got_end, 1);
		if (n <= 0) {
			h_set(&hs->closed, 1); /* closed without a word */
			return true;
		}
		ms = 3000;
	}
	/* after the END: the connection closes (anything else counted) */
	for (int i = 0; i < 4 && !h_get(&hs->closed); i++) {
		n = ferry_test_ctl_recv(r->ctl, &rep, sizeof(rep), NULL, 0, NULL, ms);
		if (n == -ETIMEDOUT)
			break;
		if (n <= 0)
			h_set(&hs->closed, 1);
		else
			hs->extra++;
	}
	return true;
}

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/*
 * RANDOM: every byte after the header (every index, flag and descriptor of
 * every worker, the stats and the slots) random, every worker kicked, again
 * and again until ferryd ends the session (and 20 rounds more: kicks into
 * pipes ferryd closed), at most 4 s. RANDOM_NO_KICK: the same without the
 * kicks (a round every millisecond or so).
 */
static void random_rounds(struct ferry_test_raw *r, struct hostile_shared *hs, bool kick)
{
	size_t start = ferry_test_raw_rings_start(r), words = (r->size - start) / sizeof(uint64_t);
	uint64_t x = hs->seed, *p = (uint64_t *)(r->region + start);
	uint64_t deadline = ferry_test_now_ms() + 4000;
	uint64_t after = 0;

	while (ferry_test_now_ms() < deadline && hs->rounds < 100000) {
		for (size_t i = 0; i < words; i++)
			p[i] = xorshift(&x);
		for (unsigned int i = 0; kick && i < r->nw; i++)
			ferry_test_raw_kick(r, i);
		hs->rounds++;
		h_set(&hs->broke, 1);
		if (!h_get(&hs->got_end)) {
			take_end(r, hs, 1);
			if (!kick)
				usleep(1000);
		} else if (++after >= 20) {
			break;
		}
	}
	hs->rounds_after_end = after;
}

/* ---- FUZZ: a correct client (its own bookkeeping of every slot) that breaks one rule at a random moment */

#define FZ_SLOTS HOSTILE_SLOTS

enum fz_fault {
	FZ_RX_RET_PAST,	     /* producer rx_slots + 1 past what it published */
	FZ_RX_RET_BACKWARDS, /* producer one behind ferryd's consumer */
	FZ_RX_RET_RANGE,     /* a slot >= rx_slots */
	FZ_RX_RET_AREA,	     /* area 1 */
	FZ_RX_RET_TWICE,     /* the same slot twice */
	FZ_TX_AHEAD,	     /* producer tx_slots + 1 past what it published */
	FZ_TX_BACKWARDS,     /* producer one behind ferryd's consumer */
	FZ_TX_RANGE,	     /* a slot >= tx_slots */
	FZ_TX_PAST,	     /* off + len past the slot */
	FZ_TX_WRAPS,	     /* off + len wraps 32 bits */
	FZ_TX_TWICE,	     /* one of its slots twice in a batch */
	FZ_TX_FAMILY,	     /* a destination of neither family */
	FZ_NFAULTS,
};

struct fz_wk {
	uint32_t rx_cons, rx_ret_prod, tx_prod, tx_ret_cons;
	uint8_t held[FZ_SLOTS];	 /* RX slots it read off rx and has not given back */
	uint8_t owned[FZ_SLOTS]; /* TX slots that are its own (not on tx, or back on tx_ret) */
};

static uint32_t fz_rand(uint64_t *x)
{
	return (uint32_t)(xorshift(x) >> 17);
}

static void fz_dst(struct ferry_ring_addr *a, int family, uint16_t port)
{
	union ferry_sockaddr s;

	ferry_testns_addr(FERRY_TESTNS_PEER, family, port, &s);
	memset(a, 0, sizeof(*a));
	a->family = (uint16_t)family;
	if (family == AF_INET6) {
		a->port = s.in6.sin6_port;
		memcpy(a->addr, &s.in6.sin6_addr, 16);
	} else {
		a->port = s.in4.sin_port;
		memcpy(a->addr, &s.in4.sin_addr, 4);
	}
}

/* One round of a correct client on worker w's rings: reads rx and tx_ret, gives back some slots, sends some. */
static void fz_round(struct ferry_test_raw *r, unsigned int wi, struct fz_wk *z, const struct hostile_cfg *cfg,
		     struct hostile_shared *hs, uint64_t *x)
{
	struct ferry_test_raw_wk *w = &r->w[wi];
	uint32_t m = FZ_SLOTS - 1, prod;
	unsigned int k;

	prod = __atomic_load_n(&w->rx->producer, __ATOMIC_ACQUIRE);
	for (; z->rx_cons != prod; z->rx_cons++) {
		uint32_t slot = w->rx_desc[z->rx_cons & m].slot;

		if (slot < FZ_SLOTS)
			z->held[slot] = 1;
	}
	__atomic_store_n(&w->rx->consumer, z->rx_cons, __ATOMIC_RELEASE);
	for (uint32_t s = 0; s < FZ_SLOTS; s++)
		if (z->held[s] && (fz_rand(x) & 1)) {
			w->rx_ret_desc[z->rx_ret_prod++ & m] = (struct ferry_ret_desc){ .slot = s };
			z->held[s] = 0;
			hs->rx_returned++;
		}
	__atomic_store_n(&w->rx_ret->producer, z->rx_ret_prod, __ATOMIC_RELEASE);

	prod = __atomic_load_n(&w->tx_ret->producer, __ATOMIC_ACQUIRE);
	for (; z->tx_ret_cons != prod; z->tx_ret_cons++) {
		uint32_t slot = w->tx_ret_desc[z->tx_ret_cons & m].slot;

		if (slot < FZ_SLOTS)
			z->owned[slot] = 1;
	}
	__atomic_store_n(&w->tx_ret->consumer, z->tx_ret_cons, __ATOMIC_RELEASE);
	k = fz_rand(x) % 4;
	for (unsigned int i = 0; i < k; i++) {
		uint32_t s0 = fz_rand(x) % FZ_SLOTS, s = FZ_SLOTS;
		struct ferry_tx_desc *d;

		for (uint32_t j = 0; j < FZ_SLOTS && s == FZ_SLOTS; j++)
			if (z->owned[(s0 + j) & m])
				s = (s0 + j) & m;
		if (s == FZ_SLOTS)
			break;
		d = &w->tx_desc[z->tx_prod & m];
		memset(d, 0, sizeof(*d));
		d->slot = s;
		d->off = fz_rand(x) % 64;
		d->len = fz_rand(x) % 512;
		memset(w->tx_slot + (size_t)s * r->h->slot_size + d->off, 'f', d->len);
		/* mostly the service's family; the other one now and then (ferryd refuses it: a drop, not a fault) */
		fz_dst(&d->dst, fz_rand(x) % 8 ? cfg->family : cfg->family == AF_INET ? AF_INET6 : AF_INET,
		       (uint16_t)(40000 + fz_rand(x) % 1000));
		z->owned[s] = 0;
		z->tx_prod++;
		hs->tx_sent++;
	}
	__atomic_store_n(&w->tx->producer, z->tx_prod, __ATOMIC_RELEASE);
	if (k)
		ferry_test_raw_kick(r, wi);
}

/* Breaks fault's rule on worker wi. Whether it is an RX fault (then only traffic to wi lets ferryd see it). */
static bool fz_fault(struct ferry_test_raw *r, unsigned int wi, struct fz_wk *z, enum fz_fault f,
		     const struct hostile_cfg *cfg, uint64_t *x)
{
	struct ferry_test_raw_wk *w = &r->w[wi];
	uint32_t m = FZ_SLOTS - 1, held = FZ_SLOTS, owned = 0;
	struct ferry_tx_desc *d = &w->tx_desc[z->tx_prod & m];

	for (uint32_t s = 0; s < FZ_SLOTS; s++) {
		if (z->held[s] && held == FZ_SLOTS)
			held = s;
		if (z->owned[s])
			owned = s;
	}
	if (held == FZ_SLOTS)
		held = 0; /* none: slot 0 twice is as wrong */
	if (f >= FZ_TX_RANGE && f != FZ_TX_TWICE) {
		memset(d, 0, sizeof(*d));
		d->slot = owned;
		d->len = 16;
		fz_dst(&d->dst, cfg->family, 40000);
	}
	switch (f) {
	case FZ_RX_RET_PAST:
		__atomic_store_n(&w->rx_ret->producer, z->rx_ret_prod + FZ_SLOTS + 1, __ATOMIC_RELEASE);
		return true;
	case FZ_RX_RET_BACKWARDS:
		__atomic_store_n(&w->rx_ret->producer,
				 __atomic_load_n(&w->rx_ret->consumer, __ATOMIC_ACQUIRE) - 1, __ATOMIC_RELEASE);
		return true;
	case FZ_RX_RET_RANGE:
		w->rx_ret_desc[z->rx_ret_prod & m] = (struct ferry_ret_desc){ .slot = FZ_SLOTS + fz_rand(x) % 1000 };
		__atomic_store_n(&w->rx_ret->producer, z->rx_ret_prod + 1, __ATOMIC_RELEASE);
		return true;
	case FZ_RX_RET_AREA:
		w->rx_ret_desc[z->rx_ret_prod & m] = (struct ferry_ret_desc){ .slot = held, .area = 1 + fz_rand(x) % 64 };
		__atomic_store_n(&w->rx_ret->producer, z->rx_ret_prod + 1, __ATOMIC_RELEASE);
		return true;
	case FZ_RX_RET_TWICE:
		w->rx_ret_desc[z->rx_ret_prod & m] = (struct ferry_ret_desc){ .slot = held };
		w->rx_ret_desc[(z->rx_ret_prod + 1) & m] = (struct ferry_ret_desc){ .slot = held };
		__atomic_store_n(&w->rx_ret->producer, z->rx_ret_prod + 2, __ATOMIC_RELEASE);
		return true;
	case FZ_TX_AHEAD:
		__atomic_store_n(&w->tx->producer, z->tx_prod + FZ_SLOTS + 1 + fz_rand(x) % 1000, __ATOMIC_RELEASE);
		break;
	case FZ_TX_BACKWARDS:
		__atomic_store_n(&w->tx->producer, __atomic_load_n(&w->tx->consumer, __ATOMIC_ACQUIRE) - 1,
				 __ATOMIC_RELEASE);
		break;
	case FZ_TX_RANGE:
		d->slot = FZ_SLOTS + fz_rand(x) % 1000;
		__atomic_store_n(&w->tx->producer, z->tx_prod + 1, __ATOMIC_RELEASE);
		break;
	case FZ_TX_PAST:
		d->off = r->h->slot_size - fz_rand(x) % 16;
		d->len = 17 + fz_rand(x) % 100;
		__atomic_store_n(&w->tx->producer, z->tx_prod + 1, __ATOMIC_RELEASE);
		break;
	case FZ_TX_WRAPS:
		d->off = 0xffffffffu - fz_rand(x) % 64;
		d->len = 0x100;
		__atomic_store_n(&w->tx->producer, z->tx_prod + 1, __ATOMIC_RELEASE);
		break;
	case FZ_TX_TWICE:
		tx_ok(r, wi, &w->tx_desc[z->tx_prod & m], owned, cfg->family);
		tx_ok(r, wi, &w->tx_desc[(z->tx_prod + 1) & m], owned, cfg->family);
		__atomic_store_n(&w->tx->producer, z->tx_prod + 2, __ATOMIC_RELEASE);
		break;
	case FZ_TX_FAMILY:
		d->dst.family = (uint16_t)(fz_rand(x) % 2 ? 0 : 3 + fz_rand(x) % 7); /* AF_UNSPEC, or 3..9 */
		__atomic_store_n(&w->tx->producer, z->tx_prod + 1, __ATOMIC_RELEASE);
		break;
	default:
		break;
	}
	ferry_test_raw_kick(r, wi);
	return false;
}

static void fz_bad(struct hostile_shared *hs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fz_bad(struct hostile_shared *hs, const char *fmt, ...)
{
	va_list ap;

	if (hs->bad[0])
		return;
	va_start(ap, fmt);
	vsnprintf(hs->bad, sizeof(hs->bad), fmt, ap);
	va_end(ap);
}

/* One session: correct rounds until a fault (1 in 20 rounds), then ferryd must end it for that fault's ring. */
static void fz_session(const struct hostile_cfg *cfg, struct hostile_shared *hs, uint64_t *x)
{
	static struct fz_wk z[FERRY_RING_MAX_WORKERS];
	struct ferry_test_raw r;
	struct ferry_ctl_attach a;
	char why[160], want[16] = "";
	int fault = -1;
	uint64_t until = 0;
	bool clean = fz_rand(x) % 8 == 0; /* one session in 8 keeps every rule, 150 rounds, and detaches */

	ferry_test_ctl_attach_msg(&a, SERVICE, FZ_SLOTS, FZ_SLOTS, 0);
	if (ferry_test_raw_attach(&r, cfg->control, &a, why, sizeof(why))) {
		hs->attach_failed++;
		fz_bad(hs, "session %u: attach refused: %s", hs->sessions + 1, why);
		usleep(20000);
		return;
	}
	hs->sessions++;
	memset(z, 0, sizeof(z));
	for (unsigned int i = 0; i < r.nw; i++)
		memset(z[i].owned, 1, sizeof(z[i].owned));
	memset(&hs->end, 0, sizeof(hs->end));
	h_set(&hs->got_end, 0);
	h_set(&hs->closed, 0);
	for (unsigned int round = 0;; round++) {
		ssize_t n;

		if (fault < 0) {
			if (round >= (clean ? 150u : 400u) || h_get(&hs->stop))
				break; /* it kept every rule: it detaches below */
			if (!clean && fz_rand(x) % 20 == 0) {
				enum fz_fault f = (enum fz_fault)(fz_rand(x) % FZ_NFAULTS);
				unsigned int wi = fz_rand(x) % r.nw;
				bool rx_fault = f <= FZ_RX_RET_TWICE;

				if (rx_fault) {
					/* only a worker that has had datagrams for it gets more: ferryd reads rx_ret lazily */
					for (unsigned int j = 0; j < r.nw; j++)
						if (__atomic_load_n(&r.w[(wi + j) % r.nw].rx->producer, __ATOMIC_ACQUIRE)) {
							wi = (wi + j) % r.nw;
							break;
						}
					if (!__atomic_load_n(&r.w[wi].rx->producer, __ATOMIC_ACQUIRE))
						f = (enum fz_fault)(FZ_TX_AHEAD + fz_rand(x) % (FZ_NFAULTS - FZ_TX_AHEAD));
				}
				rx_fault = fz_fault(&r, wi, &z[wi], f, cfg, x);
				snprintf(want, sizeof(want), "%s", rx_fault ? "rx_ret" : "tx");
				fault = (int)f;
				hs->faults++;
				hs->fault_count[f]++;
				until = ferry_test_now_ms() + 3000;
			} else {
				for (unsigned int i = 0; i < r.nw; i++)
					fz_round(&r, i, &z[i], cfg, hs, x);
				hs->rounds_valid++;
			}
		} else if (ferry_test_now_ms() >= until) {
			hs->undetected++;
			fz_bad(hs, "session %u: fault %d (%s) not noticed within 3 s", hs->sessions, fault, want);
			break;
		}
		n = ferry_test_ctl_recv(r.ctl, &hs->end, sizeof(hs->end), NULL, 0, NULL, fault < 0 ? 0 : 5);
		if (n == -ETIMEDOUT) {
			if (fault < 0)
				usleep(fz_rand(x) % 1500);
			continue;
		}
		hs->end.why[sizeof(hs->end.why) - 1] = '\0';
		if (fault < 0) {
			hs->false_end++;
			fz_bad(hs, "session %u: ended while it kept every rule (after %u rounds): %zd bytes, op %u, "
				   "status %d: %s", hs->sessions, round, n, hs->end.op, hs->end.status, hs->end.why);
			break;
		}
		if (n != (ssize_t)sizeof(hs->end) || hs->end.op != FERRY_CTL_END || hs->end.status != -ECONNRESET ||
		    hs->end.session != r.rep.session || strncmp(hs->end.why, "ferryd ended the session: ", 26) ||
		    strncmp(hs->end.why + 26, want, strlen(want))) {
			hs->bad_end++;
			fz_bad(hs, "session %u: fault %d (%s): %zd bytes, op %u, status %d, session %u: '%s'", hs->sessions,
			       fault, want, n, hs->end.op, hs->end.status, hs->end.session, hs->end.why);
			break;
		}
		hs->ended++;
		n = ferry_test_ctl_recv(r.ctl, why, sizeof(why), NULL, 0, NULL, 3000);
		if (n != 0) {
			hs->bad_end++;
			fz_bad(hs, "session %u: after the END, %zd instead of the close", hs->sessions, n);
		}
		ferry_test_raw_close(&r);
		return;
	}
	if (fault < 0) {
		/* it kept every rule: a detach, answered by the close */
		struct ferry_ctl_attach d;
		struct ferry_ctl_reply rep;
		ssize_t n;

		memset(&d, 0, sizeof(d));
		d.magic = FERRY_CTL_MAGIC;
		d.version = FERRY_RING_VERSION;
		d.op = FERRY_CTL_DETACH;
		memset(&rep, 0, sizeof(rep));
		ferry_test_ctl_send(r.ctl, &d, sizeof(d), NULL, 0);
		n = ferry_test_ctl_recv(r.ctl, &rep, sizeof(rep), NULL, 0, NULL, 3000);
		rep.why[sizeof(rep.why) - 1] = '\0';
		if (n == 0) {
			hs->detached++;
		} else {
			hs->false_end++;
			fz_bad(hs, "session %u: kept every rule and detached: %zd instead of the close (op %u: %s)",
			       hs->sessions, n, rep.op, rep.why);
		}
	}
	ferry_test_raw_close(&r);
}

static void fuzz_main(const struct hostile_cfg *cfg, struct hostile_shared *hs)
{
	uint64_t x = hs->seed;

	h_set(&hs->state, H_ATTACHED);
	for (uint64_t deadline = ferry_test_now_ms() + 30000; !h_get(&hs->go); usleep(1000))
		if (ferry_test_now_ms() >= deadline)
			_exit(2);
	h_set(&hs->broke, 1);
	while (!h_get(&hs->stop) && hs->sessions + hs->attach_failed < 200)
		fz_session(cfg, hs, &x);
	h_set(&hs->done, 1);
	_exit(0);
}

/*
 * ALL_WORKERS: ALL_WORKERS_SESSIONS sessions one after the other, each breaking one
 * rule (a tx destination of family 1) on every worker's ring at once and
 * kicking every worker: every worker finds it, and ferryd must still end
 * (and count) each session once.
 */
#define ALL_WORKERS_SESSIONS 10

static void all_workers_main(const struct hostile_cfg *cfg, struct hostile_shared *hs)
{
	h_set(&hs->state, H_ATTACHED);
	for (uint64_t deadline = ferry_test_now_ms() + 30000; !h_get(&hs->go); usleep(1000))
		if (ferry_test_now_ms() >= deadline)
			_exit(2);
	h_set(&hs->broke, 1);
	for (unsigned int i = 0; i < ALL_WORKERS_SESSIONS; i++) {
		struct ferry_test_raw r;
		struct ferry_ctl_attach a;
		char why[160];
		ssize_t n;

		ferry_test_ctl_attach_msg(&a, SERVICE, HOSTILE_SLOTS, HOSTILE_SLOTS, 0);
		if (ferry_test_raw_attach(&r, cfg->control, &a, why, sizeof(why))) {
			hs->attach_failed++;
			fz_bad(hs, "session %u: attach refused: %s", i + 1, why);
			continue;
		}
		hs->sessions++;
		for (unsigned int w = 0; w < r.nw; w++) {
			tx_ok(&r, w, &r.w[w].tx_desc[0], 0, cfg->family);
			r.w[w].tx_desc[0].dst.family = AF_UNIX;
			publish_idx(&r.w[w].tx->producer, 1);
		}
		for (unsigned int w = 0; w < r.nw; w++)
			ferry_test_raw_kick(&r, w);
		memset(&hs->end, 0, sizeof(hs->end));
		n = ferry_test_ctl_recv(r.ctl, &hs->end, sizeof(hs->end), NULL, 0, NULL, 3000);
		hs->end.why[sizeof(hs->end.why) - 1] = '\0';
		if (n != (ssize_t)sizeof(hs->end) || hs->end.op != FERRY_CTL_END || hs->end.status != -ECONNRESET ||
		    !strstr(hs->end.why, "tx: destination of family 1")) {
			hs->bad_end++;
			fz_bad(hs, "session %u: %zd bytes, op %u, status %d: '%s'", i + 1, n, hs->end.op, hs->end.status,
			       hs->end.why);
		} else if (ferry_test_ctl_recv(r.ctl, why, sizeof(why), NULL, 0, NULL, 3000) != 0) {
			hs->bad_end++;
			fz_bad(hs, "session %u: no close after the END", i + 1);
		} else {
			hs->ended++;
		}
		ferry_test_raw_close(&r);
	}
	h_set(&hs->done, 1);
	_exit(0);
}

static void hostile_main(const struct hostile_cfg *cfg, struct hostile_shared *hs)
{
	struct ferry_test_raw r;
	struct ferry_ctl_attach a;
	sigset_t none;
	uint64_t deadline;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGPIPE, SIG_IGN); /* kicks into pipes ferryd closed: EPIPE, not death */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (cfg->kind == FUZZ)
		fuzz_main(cfg, hs); /* sessions of its own */
	if (cfg->kind == ALL_WORKERS)
		all_workers_main(cfg, hs);
	ferry_test_ctl_attach_msg(&a, SERVICE, HOSTILE_SLOTS, HOSTILE_SLOTS, 0);
	hs->err = ferry_test_raw_attach(&r, cfg->control, &a, hs->why, sizeof(hs->why));
	if (hs->err) {
		h_set(&hs->state, H_REFUSED);
		_exit(0);
	}
	hs->session = r.rep.session;
	hs->nw = r.nw;
	hs->rx_slots = r.h->rx_slots;
	hs->tx_slots = r.h->tx_slots;
	hs->slot_size = r.h->slot_size;
	h_set(&hs->state, H_ATTACHED);

	/* bounded: the test gives the word within its own timeout */
	for (deadline = ferry_test_now_ms() + 30000; !h_get(&hs->go); usleep(1000))
		if (ferry_test_now_ms() >= deadline)
			_exit(2);
	if (cfg->kind == NEVER_CONSUMES) {
		/* ferryd has exited: what it said on the way out is queued on the socket */
		take_end(&r, hs, 2000);
		_exit(0);
	}
	if (cfg->kind == RANDOM || cfg->kind == RANDOM_NO_KICK) {
		random_rounds(&r, hs, cfg->kind == RANDOM);
	} else {
		break_rule(&r, cfg, hs);
		h_set(&hs->broke, 1);
	}
	take_end(&r, hs, 8000);
	_exit(0);
}

/* ---------------------------------------------------------------- the fixture */

static struct {
	struct ferry_testns ns;
	bool ns_up;
	struct ferry_test_ferryd d;
	struct ferry_test_client good;
	pid_t hostile;	    /* the hostile child while it runs, or -1 */
	pid_t hostile_pid;  /* its pid, also once reaped (ferryd's logs name it) */
	struct hostile_shared *hs;
	int peer_fd;
	int family;
	union ferry_sockaddr peer_src, dst;
} fx = { .d = FERRY_TEST_FERRYD_INIT, .good = { .pid = -1 }, .hostile = -1, .peer_fd = -1 };

static void teardown(void)
{
	ferry_test_reap_child(&fx.hostile);
	ferry_test_client_free(&fx.good);
	ferry_test_ferryd_stop(&fx.d);
	if (fx.hs)
		munmap(fx.hs, sizeof(*fx.hs));
	fx.hs = NULL;
	if (fx.peer_fd >= 0)
		close(fx.peer_fd);
	fx.peer_fd = -1;
	if (fx.ns_up)
		ferry_testns_teardown(&fx.ns);
	fx.ns_up = false;
}

/* Skips unless root; the namespaces with nq queues on the veth pair. */
static void env_up(unsigned int nq)
{
	int err;

	if (!ferry_test_is_root())
		cr_skip_test("needs root for network namespaces and XDP");
	err = ferry_testns_setup_queues(&fx.ns, nq);
	cr_assert_eq(err, 0, "expected the namespace fixture to come up: %s", strerror(-err));
	fx.ns_up = true;
}

static const char *flog(void)
{
	return ferry_test_ferryd_log(&fx.d);
}

/* ferryd on fh0 in mode, service SERVICE on the host's address of family, fanout all, nq queues and workers. */
static void start_ferryd(const char *mode, int family, unsigned int nq)
{
	char svc[64], q[8];
	const char *args[] = { "--interface", FERRY_TESTNS_HOST_IF, "--mode", mode, "--queues", q, "--workers", q,
			       "--handler", "clients", "--service", svc, "--fanout", SERVICE "=all", NULL };

	snprintf(q, sizeof(q), "%u", nq);
	snprintf(svc, sizeof(svc), SERVICE "=%s:%d",
		 family == AF_INET6 ? "[" FERRY_TESTNS_HOST6 "]" : FERRY_TESTNS_HOST4, PORT);
	fx.family = family;
	ferry_test_ferryd_start(&fx.d, &fx.ns, "hostile", args, READY_MS);
}

/* SIGTERM: ferryd must drain and exit 0 (3: frame accounting unbalanced). */
static void stop_ferryd(void)
{
	ferry_test_ferryd_stop_clean(&fx.d, EXIT_MS);
}

/* The well-behaved libferry client on SERVICE, attached. */
static void start_good(void)
{
	static struct ferry_test_client_cfg cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.control = fx.d.control;
	cfg.service = SERVICE;
	ferry_test_client_start(&fx.good, &cfg);
	cr_assert(ferry_test_client_wait(&fx.good, FERRY_TEST_CLIENT_ATTACHED, 5000),
		  "expected the good client to attach (state %d, err %d: %s); log:\n%s", fx.good.sh->state,
		  fx.good.sh->err, fx.good.sh->why, flog());
	cr_assert_eq(fx.good.sh->state, FERRY_TEST_CLIENT_ATTACHED, "expected the good client attached: %s",
		     fx.good.sh->why);
}

static bool wait_flag(const int *field, int value, int ms)
{
	uint64_t deadline = ferry_test_now_ms() + (uint64_t)ms;

	while (h_get(field) < value) {
		if (ferry_test_now_ms() >= deadline)
			return false;
		if (fx.hostile > 0 && waitpid(fx.hostile, NULL, WNOHANG) == fx.hostile)
			fx.hostile = -1; /* what it wrote last is there now */
		if (fx.hostile < 0)
			return h_get(field) >= value;
		usleep(2000);
	}
	return true;
}

/* The hostile child, attached (asserted). */
static void start_hostile(enum hostile_kind kind)
{
	static struct hostile_cfg cfg;
	const char *seed;

	fx.hs = mmap(NULL, sizeof(*fx.hs), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(fx.hs, MAP_FAILED, "expected shared memory: %s", strerror(errno));
	seed = getenv("FERRY_HOSTILE_SEED");
	fx.hs->seed = seed && *seed ? strtoull(seed, NULL, 0) | 1
				    : ((uint64_t)getpid() << 32 ^ (uint64_t)ferry_test_now_ms()) | 1;
	cfg.control = fx.d.control;
	cfg.kind = kind;
	cfg.family = fx.family;
	fflush(NULL);
	fx.hostile = fork();
	cr_assert_geq(fx.hostile, 0, "fork: %s", strerror(errno));
	if (fx.hostile == 0)
		hostile_main(&cfg, fx.hs);
	fx.hostile_pid = fx.hostile;
	cr_assert(wait_flag(&fx.hs->state, H_ATTACHED, 5000), "expected the hostile client to get an answer; log:\n%s",
		  flog());
	if (kind == FUZZ || kind == ALL_WORKERS)
		return; /* it attaches when told to, again and again */
	cr_assert_eq(h_get(&fx.hs->state), H_ATTACHED, "expected the hostile client attached: %s (%s)", fx.hs->why,
		     strerror(-fx.hs->err));
	cr_assert_eq(fx.hs->rx_slots, HOSTILE_SLOTS, "expected the RX slots it asked for");
	cr_assert_neq(fx.hs->session, fx.good.sh->stats.session, "expected two sessions");
}

/* The peer's UDP socket (bound, so its source is known) and the service's address. */
static void peer_up(void)
{
	union ferry_sockaddr any;
	socklen_t len = sizeof(fx.peer_src);
	int big = 1 << 20;

	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER), 0, "peer namespace");
	fx.peer_fd = socket(fx.family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fx.peer_fd, 0, "a UDP socket: %s", strerror(errno));
	setsockopt(fx.peer_fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	ferry_testns_addr(FERRY_TESTNS_PEER, fx.family, 0, &any);
	cr_assert_eq(bind(fx.peer_fd, &any.sa, ferry_sockaddr_len(&any)), 0, "binding the peer: %s", strerror(errno));
	cr_assert_eq(getsockname(fx.peer_fd, &fx.peer_src.sa, &len), 0, "getsockname");
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_ROOT), 0, "root namespace");
	ferry_testns_addr(FERRY_TESTNS_HOST, fx.family, PORT, &fx.dst);
}

static size_t dgram_len(uint32_t seq)
{
	return 16 + (seq * 131u) % 1200u;
}

/* Datagrams [from, to) from the peer to the service, paced (a pause every 16). */
static void send_range(uint32_t from, uint32_t to)
{
	static uint8_t buf[2048];

	for (uint32_t seq = from; seq < to; seq++) {
		size_t len = dgram_len(seq);

		ferry_test_client_payload(buf, len, seq);
		cr_assert_eq(sendto(fx.peer_fd, buf, len, 0, &fx.dst.sa, ferry_sockaddr_len(&fx.dst)), (ssize_t)len,
			     "sending datagram %u: %s", seq, strerror(errno));
		if (seq % 16 == 15)
			usleep(1000);
	}
}

/* Waits (bounded) until the good client has n datagrams. */
static bool good_has(uint64_t n, int ms)
{
	uint64_t deadline = ferry_test_now_ms() + (uint64_t)ms;

	while (__atomic_load_n(&fx.good.sh->datagrams, __ATOMIC_ACQUIRE) < n) {
		if (ferry_test_now_ms() >= deadline)
			return false;
		usleep(2000);
	}
	return true;
}

/* The good client has exactly datagrams 0..n-1, in order, byte-exact, from the peer. */
static void expect_good_has_all(uint32_t n)
{
	static uint8_t buf[2048];
	const struct ferry_test_client_shared *sh = fx.good.sh;
	uint64_t got;

	if (!good_has(n, 5000))
		ferry_test_ferryd_ask(&fx.d, "rx_packets"); /* the counters into the log below */
	got = __atomic_load_n(&sh->datagrams, __ATOMIC_ACQUIRE);
	cr_assert_eq(got, n, "expected the good client to receive all %u datagrams, it has %" PRIu64
		     " (ferryd dropped for it: %" PRIu64 " ring full); log:\n%s", n, got, sh->stats.rx_dropped_full, flog());
	usleep(50000); /* nothing more may come */
	cr_assert_eq(__atomic_load_n(&sh->datagrams, __ATOMIC_ACQUIRE), n, "expected no datagram beyond the %u sent", n);
	cr_assert_eq(sh->nrec, n, "expected %u records", n);
	for (uint32_t i = 0; i < n; i++) {
		size_t len = dgram_len(i);
		char want[64], saw[64];

		ferry_test_client_payload(buf, len, i);
		cr_assert_eq(sh->rec[i].len, len, "datagram %u: expected %zu bytes, got %u", i, len, sh->rec[i].len);
		cr_assert_eq(sh->rec[i].hash, ferry_test_hash(buf, len), "datagram %u: expected its bytes exact", i);
		ferry_sockaddr_format(&fx.peer_src, want, sizeof(want));
		ferry_sockaddr_format(&sh->rec[i].src, saw, sizeof(saw));
		cr_assert(ferry_sockaddr_equal(&sh->rec[i].src, &fx.peer_src),
			  "datagram %u: expected it from %s, it came from %s", i, want, saw);
	}
}

/* The good client stopped by SIGTERM: its loop ended because it was told to, not because ferryd ended it. */
static void stop_good(void)
{
	ferry_test_client_stop(&fx.good);
	cr_assert_eq(fx.good.sh->state, FERRY_TEST_CLIENT_ENDED, "expected the good client's loop to end");
	cr_assert_eq(fx.good.sh->loop_result, FERRY_END_STOPPED,
		     "expected the good client stopped by the test, not ended (%d: %s)", fx.good.sh->loop_result,
		     fx.good.sh->why);
}

/* The line of the log that contains all of pat, or NULL (into a static buffer). */
static const char *log_line(const char *log, const char *pat)
{
	static char line[1024];
	const char *p = strstr(log, pat), *s, *e;

	if (!p)
		return NULL;
	for (s = p; s > log && s[-1] != '\n'; s--)
		;
	e = s + strcspn(s, "\n");
	snprintf(line, sizeof(line), "%.*s", (int)(e - s), s);
	return line;
}

/* ---------------------------------------------------------------- garbage on the rings */

struct garbage_case {
	enum hostile_kind kind;
	const char *mode;
	int family;
	unsigned int queues;
	const char *why[3]; /* each in ferryd's reason; none for RANDOM (any reason) */
};

/*
 * The course of every garbage test: the good and the hostile client attached;
 * the first half of the burst (the hostile one's 16 RX slots fill, it returns
 * none); the hostile one breaks its rule; the second half (which makes
 * ferryd read rx_ret: it has no free slot for the hostile one); then the
 * checks of the file's comment.
 */
static void run_garbage(const struct garbage_case *c)
{
	char pat[128], want[256];
	const struct hostile_shared *hs;
	const char *line, *log;
	int64_t failed;

	env_up(c->queues);
	start_ferryd(c->mode, c->family, c->queues);
	start_good();
	start_hostile(c->kind);
	hs = fx.hs;
	peer_up();

	send_range(0, HALF);
	cr_assert(good_has(HALF, 5000), "expected the first half to reach the good client; log:\n%s", flog());
	h_set(&fx.hs->go, 1);
	cr_assert(wait_flag(&fx.hs->broke, 1, 5000), "expected the hostile client to break its rule");
	send_range(HALF, BURST);

	/* the hostile one: told why, then the connection closed */
	cr_assert(wait_flag(&fx.hs->closed, 1, 8000),
		  "expected ferryd to end the hostile session and close its connection (got a message: %d); log:\n%s",
		  h_get(&hs->got_end), flog());
	if (c->kind != RANDOM && c->kind != RANDOM_NO_KICK)
		cr_assert_eq(hs->held, HOSTILE_SLOTS, "expected the hostile client to hold its %u slots when it broke "
			     "the rule (it held %u)", HOSTILE_SLOTS, hs->held);
	cr_assert_eq(hs->end_len, (ssize_t)sizeof(hs->end), "expected a FERRY_CTL_END before the close (got %zd "
		     "bytes); log:\n%s", hs->end_len, flog());
	cr_assert_eq(hs->end.magic, FERRY_CTL_MAGIC, "expected the END's magic");
	cr_assert_eq(hs->end.op, FERRY_CTL_END, "expected op FERRY_CTL_END, got %u", hs->end.op);
	cr_assert_eq(hs->end.status, -ECONNRESET, "expected status -ECONNRESET, got %d", hs->end.status);
	cr_assert_eq(hs->end.session, hs->session, "expected the END to name the session");
	cr_assert_eq(hs->end_nfds, 0, "expected no fds with the END");
	cr_assert_eq(hs->extra, 0, "expected nothing after the END");
	cr_assert_eq(strncmp(hs->end.why, "ferryd ended the session: ", 26), 0, "expected the reason, got '%s'",
		     hs->end.why);
	cr_assert_gt(strlen(hs->end.why), 26, "expected a reason after the prefix: '%s'", hs->end.why);
	for (int i = 0; i < 3 && c->why[i]; i++)
		cr_assert(strstr(hs->end.why, c->why[i]), "expected '%s' in the reason '%s'", c->why[i], hs->end.why);
	if (c->kind == RX_RET_TWICE) {
		snprintf(want, sizeof(want), "slot %u, which it did not hold", hs->first_slot);
		cr_assert(strstr(hs->end.why, want), "expected '%s' in the reason '%s'", want, hs->end.why);
	}
	if (c->kind == RANDOM || c->kind == RANDOM_NO_KICK)
		cr_log_info("random: seed %" PRIu64 ", %" PRIu64 " rounds (%" PRIu64 " after the END): %s", hs->seed,
			    hs->rounds, hs->rounds_after_end, hs->end.why);

	/* ferryd: the good client got everything, byte-exact, around the hostile one's end */
	expect_good_has_all(BURST);
	cr_assert(!ferry_test_ferryd_reaped(&fx.d), "expected ferryd alive; log:\n%s", flog());
	failed = ferry_test_ferryd_ask(&fx.d, "clients_failed");
	log = flog();
	snprintf(pat, sizeof(pat), "session %u (service " SERVICE ", pid %d): worker ", hs->session, (int)fx.hostile_pid);
	line = log_line(log, pat);
	cr_assert_not_null(line, "expected ferryd to log '%s...: ending it'; log:\n%s", pat, log);
	cr_assert(strstr(line, ": ending it"), "expected '%s' to say it ends the session", line);
	cr_assert(strstr(line, hs->end.why + 26), "expected the log line '%s' to give the reason the client got ('%s')",
		  line, hs->end.why + 26);
	snprintf(pat, sizeof(pat), "session %u (service " SERVICE ", pid %d) ended: ferryd ended the session: ",
		 hs->session, (int)fx.hostile_pid);
	cr_assert_not_null(log_line(log, pat), "expected ferryd to log '%s...'; log:\n%s", pat, log);
	/* however many workers found the random rings broken, it is one session */
	cr_assert_eq(failed, 1, "expected clients_failed=1 (one session broke the rules), got %" PRId64 "; log:\n%s",
		     failed, log);

	stop_good();
	stop_ferryd();
	/* the good client was never ended: it was the only session left */
	snprintf(pat, sizeof(pat), "session %u (service " SERVICE ", pid ", fx.good.sh->stats.session);
	line = log_line(flog(), pat);
	cr_assert(!line || !strstr(line, "ending it"), "expected the good session never ended by ferryd: %s", line);
}

#define GARBAGE(name, ...)                                                                                      \
	Test(clients_hostile, name, .fini = teardown, .timeout = 60)                                            \
	{                                                                                                       \
		static const struct garbage_case c = __VA_ARGS__;                                               \
		run_garbage(&c);                                                                                \
	}

/* rx_ret's producer one past the 16 slots the client holds (the entries name its slots): the count is the lie. */
GARBAGE(garbage_rx_ret_past_held, { RX_RET_PAST_HELD, "xdp", AF_INET, 1, { "rx_ret", "17 entries", "held 16" } })
/* rx_ret's producer moved backwards: 2^32 - 1 entries from ferryd's point of view. */
GARBAGE(garbage_rx_ret_backwards, { RX_RET_BACKWARDS, "xdp", AF_INET, 1, { "rx_ret", "4294967295", "held 16" } })
/* rx_ret names slot 23 of 16. */
GARBAGE(garbage_rx_ret_out_of_range, { RX_RET_OUT_OF_RANGE, "xdp", AF_INET, 1, { "rx_ret", "slot 23", "out of range" } })
/* rx_ret names slot 16 of 16: the first past the end. */
GARBAGE(garbage_rx_ret_one_past, { RX_RET_ONE_PAST, "xdp", AF_INET, 1, { "rx_ret", "slot 16", "out of range" } })
/* rx_ret names area 1: a copy session has none. */
GARBAGE(garbage_rx_ret_area, { RX_RET_AREA, "xdp", AF_INET, 1, { "rx_ret", "area 1", "no areas" } })
/* rx_ret gives back a slot it holds twice: the second time it does not hold it. */
GARBAGE(garbage_rx_ret_twice, { RX_RET_TWICE, "xdp", AF_INET, 1, { "rx_ret", "did not hold", NULL } })
/* The same in socket mode, over IPv6. */
GARBAGE(garbage_rx_ret_twice_socket_ipv6, { RX_RET_TWICE, "socket", AF_INET6, 1, { "rx_ret", "did not hold", NULL } })
/* tx's producer 1016 entries ahead of ferryd's 0, on a ring of 16. */
GARBAGE(garbage_tx_far_ahead, { TX_FAR_AHEAD, "xdp", AF_INET, 1, { "tx: producer index 1016", "ring's 16", NULL } })
/* tx names slot 19 of 16. */
GARBAGE(garbage_tx_slot_out_of_range, { TX_SLOT_OUT_OF_RANGE, "xdp", AF_INET, 1, { "tx: slot 19", "out of range", NULL } })
/* tx names slot 16 of 16: the first past the end. */
GARBAGE(garbage_tx_slot_one_past, { TX_SLOT_ONE_PAST, "xdp", AF_INET, 1, { "tx: slot 16", "out of range", NULL } })
/* tx: a descriptor whose reserved field is 0x100. */
GARBAGE(garbage_tx_reserved, { TX_RESERVED, "xdp", AF_INET, 1, { "tx: reserved field is 0x100", NULL, NULL } })
/* tx: 64 bytes at offset slot_size - 8. */
GARBAGE(garbage_tx_past_slot, { TX_PAST_SLOT, "xdp", AF_INET, 1, { "tx: 64 bytes", "offset 2040", "slot of 2048" } })
/* tx: offset 2^32 - 16 and 32 bytes: off + len wraps 32 bits to 16. */
GARBAGE(garbage_tx_offset_wraps, { TX_OFFSET_WRAPS, "xdp", AF_INET, 1, { "tx: 32 bytes", "offset 4294967280", NULL } })
/* tx: slot 0 twice in one batch: the second before ferryd gave it back. */
GARBAGE(garbage_tx_slot_twice, { TX_SLOT_TWICE, "xdp", AF_INET, 1, { "tx: slot 0", "sent again", NULL } })
/* tx: a destination of family 1 (AF_UNIX). */
GARBAGE(garbage_tx_bad_family, { TX_BAD_FAMILY, "xdp", AF_INET, 1, { "tx: destination of family 1", NULL, NULL } })
/* The same in socket mode, over IPv6. */
GARBAGE(garbage_tx_bad_family_socket_ipv6, { TX_BAD_FAMILY, "socket", AF_INET6, 1, { "family 1", NULL, NULL } })
/* Random bytes over all of it, again and again, every worker kicked: one worker. */
GARBAGE(garbage_random, { RANDOM, "xdp", AF_INET, 1, { NULL, NULL, NULL } })
/* The same with two queues and two workers (both workers' rings random, both kicked). */
GARBAGE(garbage_random_two_workers, { RANDOM, "xdp", AF_INET, 2, { NULL, NULL, NULL } })
/* The same in socket mode. */
GARBAGE(garbage_random_socket, { RANDOM, "socket", AF_INET, 1, { NULL, NULL, NULL } })
/* Random bytes again and again, never a kick: only the datagrams of the second half can make ferryd look (rx_ret). */
GARBAGE(garbage_random_no_kick, { RANDOM_NO_KICK, "xdp", AF_INET, 1, { "rx_ret", NULL, NULL } })

/*
 * FUZZ: session after session, a client that keeps every rule (its own
 * bookkeeping of every RX and TX slot: it reads rx and tx_ret, gives RX
 * slots back, sends up to 3 datagrams a round to the peer on worker after
 * worker) and, in 1 round of 20, breaks one rule of ring.h, chosen at random,
 * on one worker's rings, then waits. Proves, for every session, over about 4
 * s of traffic: ferryd ends it for a fault of that ring (the END's reason
 * names rx_ret or tx), never ends a session that kept the rules (or one that
 * detached), notices every fault (an RX fault needs traffic: the peer sends
 * all along), counts each failed session once; and the good client beside it
 * gets every datagram.
 */
static void run_fuzz(const char *mode, unsigned int nq)
{
	const struct hostile_shared *hs;
	uint64_t start, stop_at, deadline;
	uint32_t sent = 0;
	int64_t failed;
	const char *log;
	unsigned int endings = 0;

	env_up(nq);
	start_ferryd(mode, AF_INET, nq);
	start_good();
	start_hostile(FUZZ);
	hs = fx.hs;
	peer_up();
	h_set(&fx.hs->go, 1);
	start = ferry_test_now_ms();
	stop_at = start + 4000;
	deadline = start + 15000;
	/* the peer sends all along (one every 3 ms), until the fuzzer is through */
	while (!h_get(&hs->done) && sent < 4000 && ferry_test_now_ms() < deadline) {
		send_range(sent, sent + 1);
		sent++;
		usleep(3000);
		if (ferry_test_now_ms() >= stop_at)
			h_set(&fx.hs->stop, 1);
	}
	cr_assert(h_get(&hs->done), "expected the fuzzer through within 15 s (%u sessions); log:\n%s", hs->sessions,
		  flog());
	{
		char dist[256];
		size_t n = 0;

		for (unsigned int f = 0; f < FZ_NFAULTS && n < sizeof(dist); f++)
			n += (size_t)snprintf(dist + n, sizeof(dist) - n, " %u", hs->fault_count[f]);
		cr_log_info("fuzz: faults by kind (rx_ret past, backwards, range, area, twice; tx ahead, backwards, range, "
			    "past, wraps, twice, family):%s", dist);
	}
	cr_log_info("fuzz (%s, %u workers): seed %" PRIu64 ", %u sessions: %u faults, %u ended by ferryd, %u detached; "
		    "%" PRIu64 " correct rounds, %" PRIu64 " sent, %" PRIu64 " RX slots given back; %u datagrams from the peer",
		    mode, nq, hs->seed, hs->sessions, hs->faults, hs->ended, hs->detached, hs->rounds_valid, hs->tx_sent,
		    hs->rx_returned, sent);
	cr_assert_eq(hs->false_end, 0, "BUG: ferryd ended a session that kept every rule: %s; log:\n%s", hs->bad,
		     flog());
	cr_assert_eq(hs->undetected, 0, "BUG: a broken rule went unnoticed: %s; log:\n%s", hs->bad, flog());
	cr_assert_eq(hs->bad_end, 0, "expected each fault's session ended with an END naming its ring: %s; log:\n%s",
		     hs->bad, flog());
	cr_assert_eq(hs->attach_failed, 0, "expected every attach served: %s", hs->bad);
	cr_assert_geq(hs->sessions, 5, "expected at least 5 sessions in 4 s (seed %" PRIu64 ")", hs->seed);
	cr_assert_eq(hs->ended, hs->faults, "expected every faulty session ended (%u of %u)", hs->ended, hs->faults);

	expect_good_has_all(sent);
	failed = ferry_test_ferryd_ask(&fx.d, "clients_failed");
	log = flog();
	for (const char *p = log; (p = strstr(p, ": ending it\n")); p++)
		endings++;
	cr_assert_eq(endings, hs->ended, "expected ferryd to log the end of each of the %u failed sessions, it logged %u"
		     "; log:\n%s", hs->ended, endings, log);
	cr_assert_eq(failed, (int64_t)hs->ended, "expected clients_failed=%u (one per failed session), got %" PRId64
		     "; log:\n%s", hs->ended, failed, log);
	stop_good();
	stop_ferryd();
}

/* Over two workers in xdp mode (RX faults on the worker that gets the peer's flow, TX faults on either). */
Test(clients_hostile, garbage_fuzz, .fini = teardown, .timeout = 60)
{
	run_fuzz("xdp", 2);
}

/* In socket mode, one worker. */
Test(clients_hostile, garbage_fuzz_socket, .fini = teardown, .timeout = 60)
{
	run_fuzz("socket", 1);
}

/*
 * One session, its rule broken on every worker's ring at once: every worker
 * finds it, but it is one session that ferryd ends, so clients_failed
 * ("sessions ended because the client broke the ring rules") must grow by
 * one. Ten sessions in a row (the workers race each other), two workers.
 * (Each worker used to count the session it found broken.)
 */
Test(clients_hostile, garbage_broken_on_all_workers_counted_once, .fini = teardown, .timeout = 60)
{
	const struct hostile_shared *hs;
	unsigned int endings = 0;
	int64_t failed;
	const char *log;

	env_up(2);
	start_ferryd("xdp", AF_INET, 2);
	start_good();
	start_hostile(ALL_WORKERS);
	hs = fx.hs;
	peer_up();
	send_range(0, HALF);
	h_set(&fx.hs->go, 1);
	cr_assert(wait_flag(&fx.hs->done, 1, 20000), "expected the %d sessions through; log:\n%s", ALL_WORKERS_SESSIONS,
		  flog());
	send_range(HALF, BURST);
	cr_assert_eq(hs->bad_end, 0, "expected every session ended with an END for its fault, then closed: %s; log:\n%s",
		     hs->bad, flog());
	cr_assert_eq(hs->attach_failed, 0, "expected every attach served: %s", hs->bad);
	cr_assert_eq(hs->ended, ALL_WORKERS_SESSIONS, "expected all %d sessions ended", ALL_WORKERS_SESSIONS);
	expect_good_has_all(BURST);
	failed = ferry_test_ferryd_ask(&fx.d, "clients_failed");
	log = flog();
	for (const char *p = log; (p = strstr(p, ": ending it\n")); p++)
		endings++;
	cr_assert_eq(endings, ALL_WORKERS_SESSIONS, "expected ferryd to log each session's end once; log:\n%s", log);
	cr_assert_eq(failed, ALL_WORKERS_SESSIONS,
		     "%d sessions broke the rules, clients_failed=%" PRId64 ": expected each counted once, however many "
		     "workers found it broken; log:\n%s",
		     ALL_WORKERS_SESSIONS, failed, log);
	stop_good();
	stop_ferryd();
}

/* ---------------------------------------------------------------- a client that never consumes */

/*
 * A client that attaches and then touches nothing (never reads its rings,
 * never gives a slot back, never reads its wake pipe or its control socket)
 * loses only its own datagrams: its 16 RX slots fill, everything after is
 * dropped for it alone (rx_client_full, exactly the rest), the good client
 * beside it gets every datagram, and ferryd neither ends the silent session
 * (it broke no rule) nor waits for it. At shutdown it is told, like every
 * session, with an END that waits on its socket.
 */
static void run_never_consumes(const char *mode)
{
	const struct hostile_shared *hs;
	char pat[96];
	const char *line, *log;
	int64_t full, failed;

	env_up(1);
	start_ferryd(mode, AF_INET, 1);
	start_good();
	start_hostile(NEVER_CONSUMES);
	hs = fx.hs;
	peer_up();

	send_range(0, HALF);
	cr_assert(good_has(HALF, 5000), "expected the first half to reach the good client; log:\n%s", flog());
	usleep(300000); /* a tick of ferryd's control thread: nothing may change for the silent one */
	send_range(HALF, BURST);
	expect_good_has_all(BURST);

	full = ferry_test_ferryd_ask(&fx.d, "rx_client_full");
	failed = ferry_test_stats_value(flog(), "clients_failed");
	log = flog();
	cr_assert_eq(full, BURST - HOSTILE_SLOTS, "expected rx_client_full=%u (all but its %u slots), got %" PRId64
		     "; log:\n%s", BURST - HOSTILE_SLOTS, HOSTILE_SLOTS, full, log);
	cr_assert_eq(failed, 0, "expected clients_failed=0: a client that does nothing breaks no rule; log:\n%s", log);
	snprintf(pat, sizeof(pat), "client %u service=" SERVICE " ", hs->session);
	line = log_line(log, pat);
	cr_assert_not_null(line, "expected the silent session in the stats; log:\n%s", log);
	snprintf(pat, sizeof(pat), " rx_packets=%u ", HOSTILE_SLOTS);
	cr_assert(strstr(line, pat), "expected the silent session to have its %u slots' worth: %s", HOSTILE_SLOTS, line);
	snprintf(pat, sizeof(pat), " rx_dropped_full=%u ", BURST - HOSTILE_SLOTS);
	cr_assert(strstr(line, pat), "expected the rest dropped for it alone: %s", line);
	cr_assert(!strstr(log, "ending it"), "expected no session ended; log:\n%s", log);
	cr_assert_eq(h_get(&hs->got_end), 0, "expected the silent client not told anything yet");

	stop_good();
	stop_ferryd();
	/* now it looks: the END ferryd left on its socket at shutdown, then the close */
	h_set(&fx.hs->go, 1);
	cr_assert(wait_flag(&fx.hs->closed, 1, 5000), "expected the silent client's connection closed by ferryd's exit");
	cr_assert_eq(hs->end_len, (ssize_t)sizeof(hs->end), "expected an END waiting for it (got %zd bytes)", hs->end_len);
	cr_assert_eq(hs->end.op, FERRY_CTL_END, "expected op FERRY_CTL_END, got %u", hs->end.op);
	cr_assert_eq(hs->end.status, -ECONNRESET, "expected status -ECONNRESET, got %d", hs->end.status);
	cr_assert(strstr(hs->end.why, "shutting down"), "expected the reason to be the shutdown: '%s'", hs->end.why);
}

Test(clients_hostile, never_consuming_cannot_stall_ferryd, .fini = teardown, .timeout = 60)
{
	run_never_consumes("xdp");
}

Test(clients_hostile, never_consuming_cannot_stall_ferryd_socket, .fini = teardown, .timeout = 60)
{
	run_never_consumes("socket");
}

/* ---------------------------------------------------------------- garbage on the control socket */

/* The write ends of n pipes in w[], the read ends in r[]. */
static void pipes(int *r, int *w, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		int p[2];

		cr_assert_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0, "pipe: %s", strerror(errno));
		r[i] = p[0];
		w[i] = p[1];
	}
}

/* Every read end in r[] at EOF within ms: no copy of a write end is left open anywhere (in ferryd). */
static bool all_closed(const int *r, unsigned int n, int ms)
{
	uint64_t deadline = ferry_test_now_ms() + (uint64_t)ms;

	for (unsigned int i = 0; i < n; i++) {
		char b;

		for (;;) {
			ssize_t k = read(r[i], &b, 1);

			if (k == 0)
				break;
			if (ferry_test_now_ms() >= deadline)
				return false;
			usleep(5000);
		}
	}
	return true;
}

static int count_fds_of(pid_t pid)
{
	char cmd[64], out[64];

	snprintf(cmd, sizeof(cmd), "ls /proc/%d/fd | wc -l", (int)pid);
	if (ferry_test_capture(out, sizeof(out), "%s", cmd))
		return -1;
	return atoi(out);
}

struct ctl_case {
	const char *name;
	size_t len;	       /* bytes sent (an attach is sizeof(struct ferry_ctl_attach)) */
	uint32_t magic, version, op, flags;
	const char *service;
	uint32_t rx_slots, tx_slots, slot_size;
	unsigned int nfds;     /* pipes' write ends sent along */
	int status;	       /* the refusal's status */
	const char *why;       /* in its reason */
	unsigned int reserved; /* not 0: reserved[reserved - 1] is not 0 */
};

#define A sizeof(struct ferry_ctl_attach)
#define M FERRY_CTL_MAGIC
#define V FERRY_RING_VERSION
#define OP FERRY_CTL_ATTACH

static const struct ctl_case ctl_cases[] = {
	{ "wrong magic", A, 0x12345678, V, OP, 0, SERVICE, 0, 0, 0, 0, -EPROTO, "not a ferry client", 0 },
	{ "2 bytes", 2, M, V, OP, 0, SERVICE, 0, 0, 0, 0, -EPROTO, "not a ferry client", 0 },
	{ "8 bytes: magic and version only", 8, M, V, OP, 0, SERVICE, 0, 0, 0, 0, -EPROTO, "8-byte message", 0 },
	{ "a short attach", 20, M, V, OP, 0, SERVICE, 0, 0, 0, 0, -EPROTO, "not 20", 0 },
	{ "a long attach (cut by ferryd)", 700, M, V, OP, 0, SERVICE, 0, 0, 0, 0, -EPROTO, "an attach is", 0 },
	{ "wrong version", A, M, 99, OP, 0, SERVICE, 0, 0, 0, 0, -EPROTO, "version 99", 0 },
	{ "wrong version, short", 40, M, 7, OP, 0, SERVICE, 0, 0, 0, 0, -EPROTO, "version 7", 0 },
	{ "an older version", A, M, 0, OP, 0, SERVICE, 0, 0, 0, 0, -EPROTO, "version 0", 0 },
	{ "an unknown op", A, M, V, 77, 0, SERVICE, 0, 0, 0, 0, -EPROTO, "got op 77", 0 },
	{ "a detach before any attach", A, M, V, FERRY_CTL_DETACH, 0, SERVICE, 0, 0, 0, 0, -EPROTO, "got op 3", 0 },
	{ "an END from the client", A, M, V, FERRY_CTL_END, 0, SERVICE, 0, 0, 0, 0, -EPROTO, "got op 4", 0 },
	{ "unknown flags", A, M, V, OP, 0x80, SERVICE, 0, 0, 0, 0, -EINVAL, "unknown attach flags", 0 },
	{ "the first reserved field not 0", A, M, V, OP, 0, SERVICE, 0, 0, 0, 0, -EINVAL, "reserved field 0", 1 },
	{ "the last reserved field not 0", A, M, V, OP, 0, SERVICE, 0, 0, 0, 0, -EINVAL, "reserved field 4", 5 },
	{ "zero-copy (not offered)", A, M, V, OP, FERRY_CTL_ZEROCOPY, SERVICE, 0, 0, 0, 0, -EPERM, "--client-zero-copy", 0 },
	{ "3 RX slots", A, M, V, OP, 0, SERVICE, 3, 0, 0, 0, -EINVAL, "power of two", 0 },
	{ "2^31 TX slots", A, M, V, OP, 0, SERVICE, 0, 0x80000000u, 0, 0, -EINVAL, "power of two", 0 },
	{ "slots of 100 bytes", A, M, V, OP, 0, SERVICE, 0, 0, 100, 0, -EINVAL, "multiple of 64", 0 },
	{ "slots of 300 bytes (more than the least, no multiple of 64)", A, M, V, OP, 0, SERVICE, 0, 0, 300, 0, -EINVAL,
	  "multiple of 64", 0 },
	{ "slots of 2^32 - 64 bytes", A, M, V, OP, 0, SERVICE, 0, 0, 0xffffffc0u, 0, -EINVAL, "multiple of 64", 0 },
	{ "a region past the bound", A, M, V, OP, 0, SERVICE, 65536, 65536, 65536, 0, -E2BIG, "MiB", 0 },
	{ "a region just past the bound (1 GiB of slots, then the rings)", A, M, V, OP, 0, SERVICE, 65536, 65536, 8192, 0,
	  -E2BIG, "1024 MiB", 0 },
	{ "no such service", A, M, V, OP, 0, "nope", 0, 0, 0, 0, -ESRCH, "no service 'nope'", 0 },
	{ "a service name of 32 bytes, unterminated", A, M, V, OP, 0, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 0, 0,
	  0, 0, -ESRCH, "no service 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'", 0 },
	{ "wrong magic with 3 fds", A, 0xdeadbeef, V, OP, 0, SERVICE, 0, 0, 0, 3, -EPROTO, "not a ferry client", 0 },
	{ "wrong version with 40 fds (more than ferryd takes)", A, M, 42, OP, 0, SERVICE, 0, 0, 0, 40, -EPROTO,
	  "version 42", 0 },
	{ "an unknown op with 2 fds", A, M, V, 9, 0, SERVICE, 0, 0, 0, 2, -EPROTO, "got op 9", 0 },
};

#undef A
#undef M
#undef V
#undef OP

/* The message of case c: an attach as c says, laid out in a buffer of c->len bytes (garbage past the attach). */
static size_t ctl_message(const struct ctl_case *c, uint8_t *buf, size_t cap)
{
	struct ferry_ctl_attach a;
	size_t len = c->len < cap ? c->len : cap;

	for (size_t i = 0; i < cap; i++)
		buf[i] = (uint8_t)(0xa5 ^ i);
	memset(&a, 0, sizeof(a));
	a.magic = c->magic;
	a.version = c->version;
	a.op = c->op;
	a.flags = c->flags;
	memcpy(a.service, c->service, strnlen(c->service, sizeof(a.service)));
	a.rx_slots = c->rx_slots;
	a.tx_slots = c->tx_slots;
	a.slot_size = c->slot_size;
	if (c->reserved)
		a.reserved[c->reserved - 1] = 0x5a;
	memcpy(buf, &a, len < sizeof(a) ? len : sizeof(a));
	return len;
}

/* Sends case c on a new connection: ferryd must answer with its refusal and close. */
static void ctl_refused(const struct ctl_case *c)
{
	uint8_t buf[1024];
	int rd[64], wr[64], fd;
	struct ferry_ctl_reply rep;
	unsigned int nfds = 0;
	size_t len = ctl_message(c, buf, sizeof(buf));
	char want[256];
	ssize_t n;

	cr_assert_leq(c->nfds, 64, "test bug");
	pipes(rd, wr, c->nfds);
	fd = ferry_test_ctl_connect(fx.d.control);
	cr_assert_geq(fd, 0, "%s: connecting: %s", c->name, strerror(-fd));
	cr_assert_eq(ferry_test_ctl_send(fd, buf, len, wr, c->nfds), 0, "%s: sending", c->name);
	for (unsigned int i = 0; i < c->nfds; i++)
		close(wr[i]); /* ferryd's copies are the only ones left */
	memset(&rep, 0, sizeof(rep));
	n = ferry_test_ctl_recv(fd, &rep, sizeof(rep), NULL, 0, &nfds, 3000);
	cr_assert_eq(n, (ssize_t)sizeof(rep), "%s: expected a reply, got %zd (%s); log:\n%s", c->name, n,
		     n < 0 ? strerror((int)-n) : "", flog());
	rep.why[sizeof(rep.why) - 1] = '\0';
	cr_assert_eq(rep.magic, FERRY_CTL_MAGIC, "%s: the reply's magic", c->name);
	cr_assert_eq(rep.op, FERRY_CTL_REPLY, "%s: expected op FERRY_CTL_REPLY, got %u", c->name, rep.op);
	cr_assert_eq(rep.status, c->status, "%s: expected status %d (%s), got %d: %s", c->name, c->status,
		     strerror(-c->status), rep.status, rep.why);
	cr_assert(strstr(rep.why, c->why), "%s: expected '%s' in the reason '%s'", c->name, c->why, rep.why);
	cr_assert_eq(nfds, 0, "%s: expected no fds with a refusal", c->name);
	cr_assert_eq(rep.session, 0, "%s: expected no session", c->name);
	n = ferry_test_ctl_recv(fd, &rep, sizeof(rep), NULL, 0, NULL, 3000);
	cr_assert_eq(n, 0, "%s: expected ferryd to close the connection after refusing, got %zd", c->name, n);
	close(fd);
	cr_assert(all_closed(rd, c->nfds, 2000), "%s: expected ferryd to close the %u fds it was sent", c->name,
		  c->nfds);
	for (unsigned int i = 0; i < c->nfds; i++)
		close(rd[i]);
	snprintf(want, sizeof(want), "control: pid %d (uid 0) refused: %s", (int)getpid(), rep.why);
	cr_assert(strstr(flog(), want), "%s: expected ferryd to log '%s'; log:\n%s", c->name, want, flog());
}

/*
 * A peer that is no ferry client, or a client of another version or with
 * impossible wishes, on the control socket: each message gets a refusal
 * (FERRY_CTL_REPLY, its status, a reason, no fds), logged; the connection is
 * closed; fds sent along (clients send none) are closed by ferryd, however
 * many; an empty message and a connection that never speaks are closed. After
 * all that ferryd has no more fds than before, no session, a good client
 * attaches and receives a burst, and ferryd exits 0.
 */
Test(clients_hostile, control_socket_garbage_refused, .fini = teardown, .timeout = 60)
{
	struct ferry_ctl_reply rep;
	uint64_t idle_since;
	int64_t left;
	int idle, fd, before, after = -1;
	int rd[4], wr[4];
	ssize_t n;

	env_up(1);
	start_ferryd("xdp", AF_INET, 1);
	before = count_fds_of(fx.d.pid);
	cr_assert_gt(before, 0, "expected to count ferryd's fds");

	/* a connection that never speaks: closed after ferryd's attach timeout (5 s), whatever else goes on */
	idle = ferry_test_ctl_connect(fx.d.control);
	cr_assert_geq(idle, 0, "connecting: %s", strerror(-idle));
	idle_since = ferry_test_now_ms();

	for (size_t i = 0; i < sizeof(ctl_cases) / sizeof(ctl_cases[0]); i++)
		ctl_refused(&ctl_cases[i]);

	/* an empty message reads as the end of the connection: closed without a word (there is none to say) */
	fd = ferry_test_ctl_connect(fx.d.control);
	cr_assert_geq(fd, 0, "connecting");
	cr_assert_eq(ferry_test_ctl_send(fd, "", 0, NULL, 0), 0, "an empty message");
	n = ferry_test_ctl_recv(fd, &rep, sizeof(rep), NULL, 0, NULL, 3000);
	cr_assert_eq(n, 0, "expected an empty message to close the connection, got %zd", n);
	close(fd);

	/* fds along with a good attach: it is served (clients send none: they are dropped), the fds closed */
	pipes(rd, wr, 4);
	{
		struct ferry_ctl_attach a;
		int got[80];
		unsigned int ngot = 0;

		ferry_test_ctl_attach_msg(&a, SERVICE, 0, 0, 0);
		fd = ferry_test_ctl_connect(fx.d.control);
		cr_assert_geq(fd, 0, "connecting");
		cr_assert_eq(ferry_test_ctl_send(fd, &a, sizeof(a), wr, 4), 0, "an attach with 4 fds");
		for (int i = 0; i < 4; i++)
			close(wr[i]);
		n = ferry_test_ctl_recv(fd, &rep, sizeof(rep), got, 80, &ngot, 3000);
		cr_assert_eq(n, (ssize_t)sizeof(rep), "expected an answer to the attach, got %zd; log:\n%s", n, flog());
		cr_assert_eq(rep.status, 0, "expected the attach served (the fds dropped): %d %s", rep.status, rep.why);
		for (unsigned int i = 0; i < ngot && i < 80; i++)
			close(got[i]);
		cr_assert(all_closed(rd, 4, 2000), "expected ferryd to close the 4 fds that came with an attach");
		for (int i = 0; i < 4; i++)
			close(rd[i]);
		/* and a detach ends it quietly */
		memset(&a, 0, sizeof(a));
		a.magic = FERRY_CTL_MAGIC;
		a.version = FERRY_RING_VERSION;
		a.op = FERRY_CTL_DETACH;
		cr_assert_eq(ferry_test_ctl_send(fd, &a, sizeof(a), NULL, 0), 0, "a detach");
		n = ferry_test_ctl_recv(fd, &rep, sizeof(rep), NULL, 0, NULL, 3000);
		cr_assert_eq(n, 0, "expected a detach answered by the close, got %zd", n);
		close(fd);
	}

	/* the silent one */
	left = (int64_t)(idle_since + 8000) - (int64_t)ferry_test_now_ms();
	n = ferry_test_ctl_recv(idle, &rep, sizeof(rep), NULL, 0, NULL, left > 0 ? (int)left : 0);
	cr_assert_eq(n, 0, "expected a connection that never asked to attach closed after about 5 s, got %zd (after %"
		     PRIu64 " ms)", n, ferry_test_now_ms() - idle_since);
	close(idle);

	/* ferryd: alive, every connection and fd gone, serving */
	for (uint64_t t = ferry_test_now_ms() + 3000; ferry_test_now_ms() < t; usleep(20000))
		if ((after = count_fds_of(fx.d.pid)) == before)
			break;
	cr_assert_eq(after, before, "expected ferryd's fds back to %d after the garbage, it has %d", before, after);
	cr_assert_eq(ferry_test_ferryd_ask(&fx.d, "clients_failed"), 0, "expected no session failed");
	start_good();
	peer_up();
	send_range(0, 64);
	expect_good_has_all(64);
	stop_good();
	stop_ferryd();
}

/*
 * Anything but a detach on an attached session ends it, and ring.h says how
 * ferryd ends a session: FERRY_CTL_END with the reason, then the close. A
 * detach is answered by the close alone. The good client beside them keeps
 * its session.
 */
Test(clients_hostile, control_garbage_on_an_attached_session, .fini = teardown, .timeout = 60)
{
	static const struct {
		const char *name;
		uint32_t magic, op;
		size_t len;
		const char *why; /* NULL: a detach, closed without a word */
	} cases[] = {
		{ "a detach", FERRY_CTL_MAGIC, FERRY_CTL_DETACH, sizeof(struct ferry_ctl_attach), NULL },
		{ "a second attach", FERRY_CTL_MAGIC, FERRY_CTL_ATTACH, sizeof(struct ferry_ctl_attach), "other than detach" },
		{ "an unknown op", FERRY_CTL_MAGIC, 77, sizeof(struct ferry_ctl_attach), "other than detach" },
		{ "a short message", FERRY_CTL_MAGIC, 77, 12, "other than detach" },
		{ "wrong magic", 0x12345678, FERRY_CTL_DETACH, sizeof(struct ferry_ctl_attach), "other than detach" },
	};

	env_up(1);
	start_ferryd("xdp", AF_INET, 1);
	start_good();
	peer_up();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ferry_test_raw r;
		struct ferry_ctl_attach a;
		struct ferry_ctl_reply rep;
		uint8_t buf[sizeof(a)];
		char why[160], pat[96];
		unsigned int nfds = 0;
		ssize_t n;
		int err;

		ferry_test_ctl_attach_msg(&a, SERVICE, HOSTILE_SLOTS, HOSTILE_SLOTS, 0);
		err = ferry_test_raw_attach(&r, fx.d.control, &a, why, sizeof(why));
		cr_assert_eq(err, 0, "%s: expected to attach: %s", cases[i].name, why);
		memset(buf, 0x5a, sizeof(buf));
		a.magic = cases[i].magic;
		a.op = cases[i].op;
		memcpy(buf, &a, sizeof(a));
		cr_assert_eq(ferry_test_ctl_send(r.ctl, buf, cases[i].len, NULL, 0), 0, "%s: sending", cases[i].name);
		memset(&rep, 0, sizeof(rep));
		n = ferry_test_ctl_recv(r.ctl, &rep, sizeof(rep), NULL, 0, &nfds, 3000);
		rep.why[sizeof(rep.why) - 1] = '\0';
		if (!cases[i].why) {
			cr_assert_eq(n, 0, "%s: expected the close alone, got %zd bytes (op %u: %s)", cases[i].name, n,
				     rep.op, rep.why);
		} else {
			cr_assert_eq(n, (ssize_t)sizeof(rep), "%s: expected an END, got %zd; log:\n%s", cases[i].name, n,
				     flog());
			/* a session ferryd ends gets FERRY_CTL_END and the reason (ring.h), whatever ended it */
			cr_assert_eq(rep.op, FERRY_CTL_END,
				     "%s: expected op FERRY_CTL_END (%d) and the reason, got op %u (status %d: %s)",
				     cases[i].name, FERRY_CTL_END, rep.op, rep.status, rep.why);
			cr_assert_eq(rep.status, -ECONNRESET, "%s: expected -ECONNRESET, got %d", cases[i].name,
				     rep.status);
			cr_assert(strstr(rep.why, cases[i].why), "%s: expected '%s' in '%s'", cases[i].name,
				  cases[i].why, rep.why);
			n = ferry_test_ctl_recv(r.ctl, &rep, sizeof(rep), NULL, 0, NULL, 3000);
			cr_assert_eq(n, 0, "%s: expected the close after the END, got %zd", cases[i].name, n);
		}
		snprintf(pat, sizeof(pat), "session %u (service " SERVICE ", pid %d) ended: ", r.rep.session,
			 (int)getpid());
		for (uint64_t t = ferry_test_now_ms() + 2000; !strstr(flog(), pat) && ferry_test_now_ms() < t;)
			usleep(10000);
		cr_assert_not_null(log_line(flog(), pat), "%s: expected ferryd to log the session's end; log:\n%s",
				   cases[i].name, flog());
		ferry_test_raw_close(&r);
	}
	/* the good client never noticed */
	send_range(0, 64);
	expect_good_has_all(64);
	cr_assert_eq(ferry_test_ferryd_ask(&fx.d, "clients_failed"), 0, "expected no ring failure counted");
	stop_good();
	stop_ferryd();
}
