/* SPDX-License-Identifier: MIT */
/*
 * The shared-memory ABI between ferryd and a client process: the only
 * contract between the two. Versioned (FERRY_RING_VERSION); a daemon and a
 * client of different versions refuse each other at attach.
 *
 * A client attaches to one service over ferryd's control socket (a unix
 * SOCK_SEQPACKET socket): it sends a struct ferry_ctl_attach and gets a
 * struct ferry_ctl_reply with, on success, the fds of the session in one
 * SCM_RIGHTS message, in this order:
 *
 *   1. a memfd holding the region described below (sealed against resizing);
 *   2. the read end of a pipe ferryd writes a byte to to wake the client;
 *   3. for each ferryd worker w, the write end of a pipe worker w sleeps on:
 *      the client writes a byte to it to wake worker w;
 *   4. for a zero-copy session, one memfd per area (a queue's UMEM, sealed
 *      so that it can only be mapped read-only).
 *
 * Wake-ups are pipes, not eventfds, on purpose: an eventfd is one file
 * description shared by both processes, so a client could clear its
 * O_NONBLOCK or fill its counter and make ferryd's read or write block. Each
 * end of a pipe is its own description; ferryd's ends are its alone.
 *
 * The session lasts as long as the control connection: closing it (or
 * dying) detaches. ferryd may end a session itself (a client that broke the
 * rules below, its service removed, a shutdown): it then sends a struct
 * ferry_ctl_reply with op FERRY_CTL_END and the reason, and closes the
 * connection. What ferryd put on the rings before it stays readable: the
 * region is the client's mapping.
 *
 * The region: a struct ferry_ring_header at offset 0, then, for each worker
 * w, four rings and two slot areas, at the offsets the header gives (every
 * offset is 64-byte aligned):
 *
 *   rx      ferryd -> client   struct ferry_rx_desc: a datagram in an RX slot
 *   rx_ret  client -> ferryd   struct ferry_ret_desc: an RX slot the client is done with
 *   tx      client -> ferryd   struct ferry_tx_desc: a datagram in a TX slot to send
 *   tx_ret  ferryd -> client   struct ferry_ret_desc: a TX slot ferryd is done with
 *
 * Each ring has one producer and one consumer (worker w of ferryd on one
 * side, the client on the other). Indices are free-running uint32_t; an
 * entry's place is index & (size - 1). The producer writes entries, then
 * stores its index with release semantics; the consumer loads it with
 * acquire semantics, reads the entries, then stores its own index with
 * release semantics. RX slots belong to ferryd until it hands them over on
 * rx and come back on rx_ret; TX slots belong to the client until it hands
 * them over on tx and come back on tx_ret. A ring has as many entries as
 * there are slots of its kind, so no ring can overflow while both sides keep
 * to the rules.
 *
 * Wake-ups only when asked: a consumer that is about to sleep sets
 * FERRY_RING_NEED_WAKEUP in its ring's flags, then (after a full barrier)
 * looks at the producer index once more; a producer stores its index, then
 * (after a full barrier) writes the consumer's pipe if the flag is set.
 * The client sleeps on its pipe for rx and tx_ret of every worker; worker w
 * sleeps on its pipe for tx.
 *
 * ferryd treats the region as hostile: it reads each index and entry the
 * client writes once, checks it, and ends the session of a client that
 * breaks these rules: an index that moved backwards or past what it may, a
 * slot out of range or returned while the client did not hold it, a TX
 * datagram past its slot or to an address of neither family. It never reads
 * the indices a rule does not need (the client's consumer indices), so a
 * client that stops consuming only loses its own datagrams.
 */
#ifndef FERRY_RING_H
#define FERRY_RING_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FERRY_RING_MAGIC 0x4e49525952524546ull /* "FERRYRIN" in memory on little-endian hosts */
#define FERRY_RING_VERSION 1
#define FERRY_RING_MAX_WORKERS 64
#define FERRY_RING_MAX_AREAS 64
/* The most fds one reply brings: the memfd, the wake pipe, a pipe per worker, an area's memfd each. */
#define FERRY_CTL_MAX_FDS (2 + FERRY_RING_MAX_WORKERS + FERRY_RING_MAX_AREAS)
#define FERRY_RING_ALIGN 64

/* Sizes ferryd accepts (it may be configured to accept less). */
#define FERRY_RING_MIN_SLOTS 16u
#define FERRY_RING_MAX_SLOTS 65536u
#define FERRY_RING_MIN_SLOT_SIZE 256u
#define FERRY_RING_MAX_SLOT_SIZE 65536u

#define FERRY_RING_NEED_WAKEUP (1u << 0)

/* The indices of one ring: each on its own cache line. */
struct ferry_ring_idx {
	uint32_t producer;
	uint8_t pad0[FERRY_RING_ALIGN - 4];
	uint32_t consumer;
	uint8_t pad1[FERRY_RING_ALIGN - 4];
	uint32_t flags; /* written by the consumer: FERRY_RING_NEED_WAKEUP */
	uint8_t pad2[FERRY_RING_ALIGN - 4];
};

/* An address: family AF_INET (2) or AF_INET6 (10); port in network byte order. */
struct ferry_ring_addr {
	uint16_t family;
	uint16_t port;
	uint32_t scope_id; /* IPv6: the interface of a link-local address */
	uint8_t addr[16];  /* IPv4: the first 4 bytes */
};

/*
 * rx: ferryd -> client. The datagram is len bytes at off in slot `slot` of
 * area `area`: area 0 is this worker's RX slots (a copy); area k > 0 is the
 * header's areas[k - 1] (zero-copy: `slot` is a frame of that UMEM).
 */
struct ferry_rx_desc {
	uint32_t slot;
	uint32_t len;
	uint32_t off;
	uint32_t area;
	struct ferry_ring_addr src;
};

/* tx: client -> ferryd. len bytes at off in TX slot `slot` of this worker, to dst. */
struct ferry_tx_desc {
	uint32_t slot;
	uint32_t len;
	uint32_t off;
	uint32_t reserved; /* 0 */
	struct ferry_ring_addr dst;
};

/* rx_ret and tx_ret: a slot given back (area as in struct ferry_rx_desc; 0 on tx_ret). */
struct ferry_ret_desc {
	uint32_t slot;
	uint32_t area;
};

/* What worker w counted for this session; written by ferryd only, for the client to read. */
struct ferry_ring_stats {
	uint64_t rx_packets, rx_bytes; /* put on rx */
	uint64_t rx_dropped_full;      /* no free RX slot: the client did not give them back in time */
	uint64_t rx_dropped_big;       /* longer than a slot */
	uint64_t tx_packets, tx_bytes; /* taken from tx and accepted by ferryd's send path */
	uint64_t tx_dropped;	       /* taken from tx and refused by it (ferryd counts why) */
	uint64_t wakeups;	       /* wake-ups of the client (pipe writes) */
	uint64_t rx_zero_copy;	       /* of rx_packets: handed in their UMEM frames (area > 0) */
};

/* Where one worker's rings and slots are: offsets from the region's start. */
struct ferry_ring_worker {
	uint64_t rx, rx_ret, tx, tx_ret; /* struct ferry_ring_idx */
	uint64_t rx_desc;		 /* struct ferry_rx_desc[rx_slots] */
	uint64_t rx_ret_desc;		 /* struct ferry_ret_desc[rx_slots] */
	uint64_t tx_desc;		 /* struct ferry_tx_desc[tx_slots] */
	uint64_t tx_ret_desc;		 /* struct ferry_ret_desc[tx_slots] */
	uint64_t rx_slot;		 /* RX slot i at rx_slot + i * slot_size */
	uint64_t tx_slot;		 /* TX slot i at tx_slot + i * slot_size */
	uint64_t stats;			 /* struct ferry_ring_stats */
};

/* A zero-copy area: one UMEM, mapped read-only from the memfd that comes with it. */
struct ferry_ring_area {
	uint64_t size;
	uint32_t frame_size;
	uint32_t worker; /* whose rings carry its frames */
};

#define FERRY_RING_ZEROCOPY (1u << 0) /* header flags: rx descriptors may name areas */

/* At offset 0 of the region. Written by ferryd before it hands the region over; never changed afterwards. */
struct ferry_ring_header {
	uint64_t magic;	  /* FERRY_RING_MAGIC */
	uint32_t version; /* FERRY_RING_VERSION */
	uint32_t header_size; /* bytes of this header, w[] and areas[] included */
	uint64_t region_size;
	uint32_t flags;
	uint32_t nworkers;
	uint32_t nareas;
	uint32_t slot_size; /* bytes per slot, a multiple of 64 */
	uint32_t rx_slots;  /* per worker, a power of two: also the size of rx and rx_ret */
	uint32_t tx_slots;  /* per worker, a power of two: also the size of tx and tx_ret */
	uint32_t session;   /* ferryd's number for this session */
	uint32_t reserved;
	char service[32];
	struct ferry_ring_addr service_addr; /* what the service is bound to; sends leave from it */
	struct ferry_ring_worker w[FERRY_RING_MAX_WORKERS]; /* nworkers used */
	struct ferry_ring_area areas[FERRY_RING_MAX_AREAS]; /* nareas used */
};

/* ---- the control socket --------------------------------------------------------- */

#define FERRY_CTL_MAGIC 0x4b595246u /* "FRYK" in memory on little-endian hosts */
#define FERRY_CTL_DEFAULT_PATH "/run/ferry/ferryd.sock"

enum ferry_ctl_op {
	FERRY_CTL_ATTACH = 1, /* client -> ferryd: struct ferry_ctl_attach */
	FERRY_CTL_REPLY = 2,  /* ferryd -> client: struct ferry_ctl_reply (+ SCM_RIGHTS on success) */
	FERRY_CTL_DETACH = 3, /* client -> ferryd: struct ferry_ctl_attach with only magic, version, op */
	FERRY_CTL_END = 4,    /* ferryd -> client: struct ferry_ctl_reply: ferryd ended the session, why */
	FERRY_CTL_QUERY = 5,  /* client -> ferryd: struct ferry_ctl_query (ferryctl) */
	FERRY_CTL_ANSWER = 6, /* ferryd -> client: struct ferry_ctl_answer, then its text: one part of an answer */
};

#define FERRY_CTL_ZEROCOPY (1u << 0) /* attach flags: ask for a zero-copy session */

struct ferry_ctl_attach {
	uint32_t magic;	  /* FERRY_CTL_MAGIC */
	uint32_t version; /* FERRY_RING_VERSION */
	uint32_t op;	  /* FERRY_CTL_ATTACH */
	uint32_t flags;	  /* FERRY_CTL_ZEROCOPY or 0 */
	char service[32]; /* NUL-terminated */
	uint32_t rx_slots, tx_slots; /* 0: ferryd's defaults; else powers of two */
	uint32_t slot_size;	     /* 0: ferryd's default; else a multiple of 64 */
	uint32_t reserved[5];	     /* 0 */
};

struct ferry_ctl_reply {
	uint32_t magic;
	uint32_t version; /* ferryd's FERRY_RING_VERSION */
	uint32_t op;	  /* FERRY_CTL_REPLY or FERRY_CTL_END */
	int32_t status;	  /* 0, or -errno: -ESRCH no such service, -EACCES not allowed, -EPROTO version, ... */
	char why[160];	  /* a reason a person can act on, when status is not 0 */
	uint64_t region_size;
	uint32_t nworkers; /* on success: the fds are the memfd, the wake pipe, nworkers pipes, nareas memfds */
	uint32_t nareas;
	uint32_t session; /* ferryd's number for this session (in its logs and stats) */
	uint32_t reserved[3];
};

/*
 * Queries: what ferryctl asks. On a connection that has not attached, a
 * client may send any number of struct ferry_ctl_query (exactly that many
 * bytes), one after the other; ferryd reads the next one only once it has
 * sent the whole answer to the last. Each answer is one JSON document
 * (RFC 8259, UTF-8) sent in parts: every part is one message, a struct
 * ferry_ctl_answer followed by `len` bytes of the document, in order
 * (`part` counts from 0), the last one flagged FERRY_CTL_ANSWER_LAST. No
 * message is larger than FERRY_CTL_PART_MAX, header included: a client that
 * receives into a buffer of that size gets every part whole, however large
 * the document (it grows with the services and clients). Only the parts
 * put together are a document: a part may end inside a string.
 *
 * status is the same in every part of one answer: 0, or -errno, and the
 * document is then {"schema": 1, "verb": "...", "status": -errno, "error":
 * "a reason a person can act on"}: -EINVAL an unknown verb or non-zero
 * flags or reserved fields; -EPERM a reload from a user other than root or
 * ferryd's own (SO_PEERCRED); -EOPNOTSUPP a reload this ferryd cannot do;
 * for a reload, whatever the reload itself returned. A query of another
 * size or version is answered -EPROTO, and the connection closed.
 *
 * The documents (fields are only ever added within a schema; one removed,
 * renamed or changed in meaning makes FERRY_CTL_SCHEMA the next number):
 *
 *   every one   {"schema": FERRY_CTL_SCHEMA, "verb": "status", ...}
 *   status      ferryd's version, pid, uptime, mode, interface, queues,
 *               workers, XDP attach mode and program, zero-copy, handler,
 *               how many services and clients, the control socket's path
 *   stats       "counters": every engine counter (ferryd's struct
 *               ferryd_stats, by name), "link", "xdp" (the XDP program's
 *               counters by verdict, or null), "workers": [each one's
 *               counters and queues], "services": [each one's counters],
 *               "clients": [each session's counters and ring occupancy]
 *   services    "services": [name, address, fanout, who may attach,
 *               zero-copy, clients attached]
 *   clients     "clients": [session, service, pid, uid, gid, zero-copy,
 *               ring sizes, counters, ring occupancy]
 *   reload      "reason": what ferryd said (status: the reload's result)
 *
 * Counters count up from 0 while ferryd runs and are read without a lock:
 * each is exact, but two of them may be a few datagrams apart.
 */
#define FERRY_CTL_SCHEMA 1
#define FERRY_CTL_PART_MAX 16384u
#define FERRY_CTL_ANSWER_LAST (1u << 0) /* answer flags: the last part */

enum ferry_ctl_verb {
	FERRY_CTL_STATUS = 1,	/* what runs */
	FERRY_CTL_STATS = 2,	/* every counter */
	FERRY_CTL_SERVICES = 3, /* the services and who may attach */
	FERRY_CTL_CLIENTS = 4,	/* the sessions */
	FERRY_CTL_RELOAD = 5,	/* read the configuration again (root or ferryd's own user only) */
};

struct ferry_ctl_query {
	uint32_t magic;	  /* FERRY_CTL_MAGIC */
	uint32_t version; /* FERRY_RING_VERSION */
	uint32_t op;	  /* FERRY_CTL_QUERY */
	uint32_t verb;	  /* enum ferry_ctl_verb */
	uint32_t seq;	  /* the client's number for the query: every part of the answer carries it */
	uint32_t flags;	  /* 0 */
	uint32_t reserved[2]; /* 0 */
};

struct ferry_ctl_answer {
	uint32_t magic;	  /* FERRY_CTL_MAGIC */
	uint32_t version; /* ferryd's FERRY_RING_VERSION */
	uint32_t op;	  /* FERRY_CTL_ANSWER */
	int32_t status;	  /* 0, or -errno (the document says why) */
	uint32_t seq;	  /* the query's */
	uint32_t verb;	  /* the query's */
	uint32_t part;	  /* 0, 1, ... */
	uint32_t flags;	  /* FERRY_CTL_ANSWER_LAST on the last part */
	uint32_t len;	  /* bytes of the document that follow this header in the message */
	uint32_t reserved[3];
};

#ifdef __cplusplus
}
#endif
#endif
