/* SPDX-License-Identifier: MIT */
/*
 * A client session: the shared-memory region of ferry/ring.h that ferryd
 * and one client process share, its wake-up pipes, and ferryd's private
 * side of every ring.
 *
 * The control thread makes a session and frees it; in between, worker w is
 * the only thread that touches wk[w] and the rings it names. Everything
 * ferryd needs to know about the region (where each ring is, how many
 * slots, which slot the client holds) is private and fixed at creation; what
 * the client writes (indices, entries, flags) is read once, checked, and
 * never trusted.
 */
#ifndef FERRYD_SESSION_H
#define FERRYD_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <ferry/ring.h>
#include <ferry/udp.h>

struct ferryd_service;
struct ferry_watch;

/* ferryd's defaults and bounds for what a client may ask. */
#define FERRYD_SESS_RX_SLOTS 1024u
#define FERRYD_SESS_TX_SLOTS 512u
#define FERRYD_SESS_SLOT_SIZE 2048u
#define FERRYD_SESS_MAX_REGION (1ull << 30)

/* A queue's UMEM as a zero-copy session shares it (read-only). */
struct ferryd_sess_area {
	int fd;		     /* ferryd's memfd (sealed: a client can only map it read-only) */
	uint64_t size;
	uint32_t frame_size, nframes;
	uint32_t worker, qi; /* the worker that owns the queue, and the queue's index among its queues */
};

/* The counters of one worker's side of a session (ferryd's own copy: the shared one is for the client). */
struct ferryd_sess_stats {
	uint64_t rx_packets, rx_bytes, rx_dropped_full, rx_dropped_big;
	uint64_t tx_packets, tx_bytes, tx_dropped, wakeups, kicks;
	uint64_t rx_zero_copy; /* of rx_packets: handed as UMEM frames, not copied */
};

/*
 * What worker w's side of a session holds now, as the worker last published
 * it (relaxed stores after each batch and each return, read by the control
 * thread's queries without a lock).
 */
struct ferryd_sess_occ {
	uint32_t rx_out;  /* RX slots the client holds: on rx, or read and not yet given back */
	uint32_t rx_free; /* RX slots ferryd has free for it */
	uint32_t zc_held; /* UMEM frames the client holds (zero-copy) */
	uint32_t tx_held; /* TX slots ferryd took off tx and has not given back yet */
};

/* Worker w's side of a session: touched by worker w only while the session is published. */
struct ferryd_sess_wk {
	struct ferryd_session *s;
	unsigned int wid;
	/* the region, as ferryd computed it (never read back from the header) */
	struct ferry_ring_idx *rx, *rx_ret, *tx, *tx_ret;
	struct ferry_rx_desc *rx_desc;
	struct ferry_ret_desc *rx_ret_desc, *tx_ret_desc;
	struct ferry_tx_desc *tx_desc;
	uint8_t *rx_slot, *tx_slot;
	struct ferry_ring_stats *shared;
	/* RX: our producer index, the client's returns read so far, the slots that are ours */
	uint32_t rx_prod, rx_ret_cons;
	uint32_t *free, nfree;
	uint8_t *out; /* per RX slot: 1 while the client holds it */
	uint32_t nout;
	/* TX: what we took, what we gave back */
	uint32_t tx_cons, tx_ret_prod;
	uint8_t *held; /* per TX slot: 1 between taking it off tx and giving it back */
	bool dirty;    /* rx entries written, the producer index not yet stored */
	bool stats_dirty; /* counters changed since the client's copy was written */
	bool dead;     /* the client broke a rule here: its rings are not touched again */
	bool first_to_fail; /* this worker found the session broken first: it reports it (once) */
	bool told;     /* the control thread was told (and the watch dropped) */
	bool tx_queued; /* on the worker's list of sessions whose TX waits for room */
	/* zero-copy: this worker's queues' frames the client holds (area_base + qi + 1 on the ring) */
	unsigned int area_base, nareas;
	uint8_t **zc_out;  /* per queue, per frame: 1 while the client holds it */
	uint32_t *zc_held; /* per queue: frames the client holds */
	uint32_t nzc;
	/* gives a frame the client returned (or that is taken back) to its queue */
	void (*frame_back)(struct ferryd_sess_wk *k, unsigned int qi, uint32_t fi);
	void *frame_back_ctx;
	int kick_rd;   /* our end of the client's pipe to us */
	struct ferry_watch *watch; /* kick_rd on the worker's reactor */
	struct ferryd_sess_stats st;
	struct ferryd_sess_occ occ;
};

struct ferryd_session {
	unsigned int id;
	struct ferryd_service *svc;
	unsigned int svc_id;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	int memfd;
	uint8_t *region;
	size_t region_size;
	int wake_wr;	/* our end of the pipe to the client */
	int wake_rd;	/* the client's end: handed over, then closed here */
	int *kick_wr;	/* the client's ends of the pipes to the workers: handed over, then closed */
	uint32_t rx_slots, tx_slots, slot_size;
	unsigned int nw;
	bool zc; /* RX descriptors may name UMEM frames (areas[]) */
	unsigned int nareas;
	struct ferryd_sess_area areas[FERRY_RING_MAX_AREAS];
	/* a worker found the client breaking a rule: 1 while it writes why, 2 when why is there (atomic) */
	int failed;
	char failed_why[128];
	void *ctl; /* the control side's own state */
	struct ferryd_sess_wk wk[];
};

/*
 * A session of svc (id svc_id, bound to addr) for nw workers with the sizes
 * given (0: the defaults); zero-copy when nareas (the queues' UMEMs, in
 * worker order) are given. 0, or -errno with a reason a client can act on:
 * -EINVAL sizes out of bounds, -E2BIG a region too large, -ENOMEM/-EMFILE.
 */
int ferryd_session_new(struct ferryd_service *svc, unsigned int svc_id, const union ferry_sockaddr *addr,
		       unsigned int nw, unsigned int id, uint32_t rx_slots, uint32_t tx_slots, uint32_t slot_size,
		       const struct ferryd_sess_area *areas, unsigned int nareas, struct ferryd_session **out,
		       char *why, size_t whylen);
/*
 * Fault injection for tests (FERRYD_FAULTS=attach-nomem, main.c): the next n
 * sessions made fail at their memory as if memfd_create(2) returned ENOMEM.
 * Control thread only, as ferryd_session_new().
 */
void ferryd_session_inject_nomem(unsigned int n);
/*
 * FERRYD_FAULTS=attach-slow: a client gets its session's fds this many ms
 * after the workers serve it (a control thread descheduled at the worst
 * moment), so its rings hold datagrams before it first looks. 0: at once.
 */
extern unsigned int ferryd_session_fault_handover_ms;
/* Unmaps and closes everything (no worker may use it any more). NULL is ignored. */
void ferryd_session_free(struct ferryd_session *s);
/* Closes the ends that were the client's, once they are handed over. */
void ferryd_session_handed(struct ferryd_session *s);

/* Whether a worker found the client breaking a rule; the reason in why. */
bool ferryd_session_failed(const struct ferryd_session *s, char *why, size_t whylen);

/* ---- worker w's side: called by that worker only -------------------------------------------- */

/* The client broke a rule: logged once, the session marked, its rings on this worker left alone. */
void ferryd_sess_fail(struct ferryd_sess_wk *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Copies one datagram into a free RX slot and writes its rx entry (not yet
 * published: ferryd_sess_rx_flush()). false when it could not: counted as
 * rx_dropped_big (longer than a slot) or rx_dropped_full (no free slot, even
 * after taking back what the client returned).
 */
bool ferryd_sess_rx_put(struct ferryd_sess_wk *k, const void *data, uint32_t len, const union ferry_sockaddr *src);

/*
 * Zero-copy: hands frame fi of this worker's queue qi (len bytes at off in
 * the frame) to the client as it is. false when the client holds as many
 * entries as its ring has (counted as rx_dropped_full by the caller's
 * choice: it may copy instead) or the session is not zero-copy.
 */
bool ferryd_sess_rx_put_frame(struct ferryd_sess_wk *k, unsigned int qi, uint32_t fi, uint32_t off, uint32_t len,
			      const union ferry_sockaddr *src);

/* Takes back what the client returned on rx_ret (slots, and frames through frame_back). false: it lied. */
bool ferryd_sess_rx_reap(struct ferryd_sess_wk *k);

/* Every frame the client still holds goes back through frame_back (the session ends, or ferryd drains). */
void ferryd_sess_zc_reclaim(struct ferryd_sess_wk *k);

/* Publishes the rx entries written since the last flush and wakes the client if it asked. */
void ferryd_sess_rx_flush(struct ferryd_sess_wk *k);

/*
 * Takes up to max datagrams off tx: bufs[i] a view of each (in the region),
 * dsts[i] its destination, slots[i] its slot, now held. Returns how many;
 * 0 when tx is empty or the client broke a rule (then k->dead).
 */
unsigned int ferryd_sess_tx_take(struct ferryd_sess_wk *k, struct ferry_iobuf *bufs, union ferry_sockaddr *dsts,
				 uint32_t *slots, unsigned int max);

/* Gives held TX slots back on tx_ret, publishes, and wakes the client if it asked. */
void ferryd_sess_tx_give_back(struct ferryd_sess_wk *k, const uint32_t *slots, unsigned int n);

/*
 * Before the worker sleeps on kick_rd: asks the client for a kick and looks
 * at tx once more. true: tx is empty (a kick will come); false: there is
 * work (the flag is cleared again).
 */
bool ferryd_sess_tx_sleep(struct ferryd_sess_wk *k);

/* Empties the kick pipe. */
void ferryd_sess_kick_clear(struct ferryd_sess_wk *k);

/* A ring address from a socket address, and back (false: neither IPv4 nor IPv6). */
void ferryd_ring_addr_from(struct ferry_ring_addr *out, const union ferry_sockaddr *in);
bool ferryd_ring_addr_to(union ferry_sockaddr *out, const struct ferry_ring_addr *in);

#endif
