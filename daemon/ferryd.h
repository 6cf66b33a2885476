/* SPDX-License-Identifier: MIT */
/*
 * ferryd's internal contract: its configuration, its services and the engine
 * interface that both data paths (AF_XDP, sockets) implement, so handlers and
 * main.c never know which one runs.
 */
#ifndef FERRYD_H
#define FERRYD_H

#include <net/if.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <ferry/iobuf.h>
#include <ferry/reactor.h>
#include <ferry/udp.h>

#include "addrs.h"
#include "ferry_maps.h"

enum ferryd_mode { FERRYD_MODE_AUTO, FERRYD_MODE_XDP, FERRYD_MODE_SOCKET };
enum ferryd_xdp_mode { FERRYD_XDP_NATIVE, FERRYD_XDP_SKB };
enum ferryd_zero_copy { FERRYD_ZC_AUTO, FERRYD_ZC_ON, FERRYD_ZC_OFF };
enum ferryd_handler { FERRYD_HANDLER_CLIENTS, FERRYD_HANDLER_COUNT, FERRYD_HANDLER_ECHO };

/* How a service's datagrams are spread over its clients (--handler clients). */
enum ferryd_fanout {
	FERRYD_FANOUT_HASH,	   /* by source address and port: a flow stays on one client */
	FERRYD_FANOUT_ROUND_ROBIN, /* each datagram to the next client */
	FERRYD_FANOUT_ALL,	   /* each client a copy */
};

#define FERRYD_ALLOW_MAX 16

/* Who may attach to a service: a peer whose user is one of uid[] or who is in one of gid[]. */
struct ferryd_allow {
	bool set;		/* false: the default, root and ferryd's own group */
	unsigned int nuid, ngid;
	uint32_t uid[FERRYD_ALLOW_MAX];
	uint32_t gid[FERRYD_ALLOW_MAX];
};

#define FERRYD_MAX_CPUS 256
#define FERRYD_WORKERS_AUTO 0xffffffffu

struct ferryd_service {
	char name[32];
	union ferry_sockaddr addr; /* port != 0; an any address (0.0.0.0, ::) is a wildcard */
	unsigned int id;	   /* index in ferryd_config.services */
	/* Set by whoever installs the handler; the engine calls cb(user, ...)
	 * with runs of datagrams that all belong to this service, from inside
	 * the reactor's dispatch. A callback may send and release through its
	 * engine, but must not drain or free it, nor run the reactor. */
	ferry_udp_batch_cb cb;
	void *user;
	uint8_t fanout;		   /* enum ferryd_fanout */
	bool zero_copy_clients;	   /* its clients may map the UMEM and take frames as they are (hand-off = zero-copy) */
	struct ferryd_allow allow;
	uint32_t rx_slots, tx_slots, slot_size; /* its clients' sessions when they ask none; 0: ferryd's defaults */
};

struct ferryd_config {
	char ifname[IF_NAMESIZE];
	unsigned int queues; /* queues 0 .. queues-1 */
	enum ferryd_mode mode;
	enum ferryd_xdp_mode xdp_mode;
	enum ferryd_zero_copy zero_copy;
	unsigned int frames;	 /* UMEM frames per queue */
	unsigned int frame_size; /* bytes, power of two, 2048 or 4096 */
	unsigned int batch;	 /* descriptors per RX/TX batch */
	bool busy_poll;
	enum ferryd_handler handler;
	char run_dir[108]; /* where the interface lock lives (owner.h) */
	char control[108]; /* the control socket's path */
	unsigned int control_mode; /* its permission bits */
	int64_t control_uid, control_gid; /* its owner and group; -1: ferryd's */
	int log_level;	   /* syslog(3) level, -1: the default (info) */
	unsigned int workers;	      /* 1 (0 too): the control thread's; FERRYD_WORKERS_AUTO: one per queue, at most the CPUs */
	unsigned int ncpus;	      /* --cpus: workers run on cpus[i % ncpus]; 0: wherever the kernel likes */
	int cpus[FERRYD_MAX_CPUS];
	struct ferryd_service services[FERRY_MAX_SERVICES];
	unsigned int nservices;
};

void ferryd_config_defaults(struct ferryd_config *cfg);

/* Counters of one engine; every field counts up from 0, but the frames say where they are now. */
struct ferryd_stats {
	uint64_t rx_packets, rx_bytes, rx_batches; /* datagrams handed to a service's callback */
	uint64_t rx_truncated;	/* socket engine: longer than the buffer; dropped, never handed on cut */
	uint64_t rx_bad_header; /* AF_XDP: frame the engine could not parse (the program should not send these) */
	uint64_t rx_no_service; /* frame or datagram for no service (one removed while it was in flight) */
	uint64_t rx_fill_empty; /* AF_XDP: refills that found the fill ring drained (the kernel had no frame left) */
	uint64_t rx_fill_short; /* AF_XDP: refills that could not top the fill ring up (no free frame) */
	uint64_t rx_via_socket; /* AF_XDP: the kernel delivered it on the service socket (fragments); in rx_packets too */
	uint64_t tx_packets, tx_bytes;
	uint64_t tx_no_frame;	/* AF_XDP: no free UMEM frame for a send: sent by the kernel instead */
	uint64_t tx_ring_full;	/* AF_XDP: the TX ring had no room: the frame waited in the queue's backlog */
	uint64_t tx_waited;	/* sockets: the socket took no more (EAGAIN/ENOBUFS): waited in its backlog */
	uint64_t tx_backlog_full; /* dropped: the backlog it would have waited in was full */
	uint64_t tx_neigh_miss; /* AF_XDP: next hop unresolved: queued, or sent by socket */
	uint64_t tx_via_socket; /* AF_XDP: sent by the kernel instead (next hop unresolved, larger than a frame or the MTU) */
	uint64_t tx_too_big;	/* refused as too big (EMSGSIZE) even by the kernel's path */
	uint64_t tx_errors;	/* other send failures, e.g. sendmmsg errors */
	/* Never sent, by the destination's kind (ferryd_dst_check(): nothing is reflected) */
	uint64_t tx_to_port0, tx_to_unspec, tx_to_loopback, tx_to_multicast, tx_to_broadcast, tx_to_local, tx_to_self;
	uint64_t tx_dropped;	/* datagrams given up on (every one also counted by reason above) */
	uint64_t bad_desc;	/* AF_XDP: descriptors from the kernel naming frames it did not hold */
	uint64_t mail_full;	/* messages to the control thread dropped, its mailbox full */
	/* Clients (--handler clients): each one's own counters are in its "client" line */
	uint64_t rx_no_client;	/* for a service no client (that keeps the rules) is attached to */
	uint64_t rx_client_full; /* a client had no free RX slot: it did not give them back in time */
	uint64_t rx_client_big;	/* longer than a client's slots */
	uint64_t client_tx;	/* datagrams taken from the clients' TX rings (sent, or counted why not) */
	uint64_t client_tx_deferred; /* times a client's TX ring waited for room on the send path */
	uint64_t clients_failed; /* sessions ended because the client broke the ring rules */
	uint64_t kicks;		/* wake-up syscalls made (need_wakeup) */
	uint64_t kick_errors;	/* wake-up syscalls that failed other than EAGAIN/EBUSY/ENOBUFS */
	/* What the kernel counted on the AF_XDP sockets (XDP_STATISTICS), summed over queues */
	uint64_t xsk_rx_dropped, xsk_rx_invalid_descs, xsk_rx_ring_full, xsk_rx_fill_ring_empty;
	uint64_t xsk_tx_invalid_descs, xsk_tx_ring_empty;
	/* AF_XDP frame accounting: where every UMEM frame is now. The sum is frames_total. */
	uint64_t frames_total, frames_free, frames_kernel, frames_user, frames_tx;
};

/* Counters have one writer (their worker) and readers on other threads: stores and loads are relaxed atomics. */
#define FERRYD_STAT_ADD(st, field, n) __atomic_store_n(&(st)->field, (st)->field + (n), __ATOMIC_RELAXED)
#define FERRYD_STAT_INC(st, field) FERRYD_STAT_ADD(st, field, 1)

/* Every field of struct ferryd_stats by name, in declaration order: the one
 * list that printing (and later ferryctl, Prometheus) walks. */
struct ferryd_stat_field {
	const char *name;
	size_t offset;
};
extern const struct ferryd_stat_field ferryd_stat_fields[];
extern const unsigned int ferryd_stat_nfields;

static inline uint64_t ferryd_stat_get(const struct ferryd_stats *s, unsigned int i)
{
	return *(const uint64_t *)((const char *)s + ferryd_stat_fields[i].offset);
}

struct ferryd_engine;

struct ferryd_engine_ops {
	const char *name; /* "xdp" or "socket" */
	/*
	 * Sends bufs[i]'s window to dsts[i] from svc's address (for a wildcard
	 * service: the interface's address of that family). The caller keeps
	 * every buffer (they are copied or sent before the call returns);
	 * windows are not changed. Returns the number accepted; what was not
	 * accepted is counted in the stats by reason, never dropped silently.
	 */
	unsigned int (*send)(struct ferryd_engine *e, const struct ferryd_service *svc, struct ferry_iobuf **bufs,
			     const union ferry_sockaddr *dsts, unsigned int n);
	/* Gives back buffers a callback kept (replaced in its bufs array). */
	void (*release)(struct ferryd_engine *e, struct ferry_iobuf **bufs, unsigned int n);
	void (*get_stats)(struct ferryd_engine *e, struct ferryd_stats *out);
	/* Stops receiving, sends what is queued, waits (bounded) for completions. */
	void (*drain)(struct ferryd_engine *e);
	void (*free)(struct ferryd_engine *e);
	/* Optional (NULL: nothing to check): what ferryd_engine_check_frames() returns. */
	int (*check_frames)(struct ferryd_engine *e);
	/* Optional (NULL: no XDP program): its counters, out[FERRY_XDP_NCOUNTERS]
	 * (ferryd_prog_counters()). 0 or -errno. */
	int (*xdp_counters)(struct ferryd_engine *e, uint64_t *out);
	/*
	 * A service while the engine runs (control thread only): its sockets
	 * opened on every worker, then steered by the XDP program. svc->id must
	 * be an id no service of the engine has (ferryd_engine_free_id()); svc
	 * must stay valid until removed. 0, or -errno with a reason in why; then
	 * nothing of it is left.
	 */
	int (*add_service)(struct ferryd_engine *e, struct ferryd_service *svc, char *why, size_t whylen);
	/*
	 * Ends a service: no longer steered, no datagram of it delivered any
	 * more, its sockets closed (its port is free) when this returns; frames
	 * in flight go back to their queues, counted. 0 or -ENOENT.
	 */
	int (*remove_service)(struct ferryd_engine *e, struct ferryd_service *svc);
};

/* An id no service of e has now, or -ENOSPC. */
int ferryd_engine_free_id(struct ferryd_engine *e);

/* How many workers e runs; worker i's share of the counters (get_stats adds them all up). 0 or -ENOENT. */
unsigned int ferryd_engine_workers(struct ferryd_engine *e);
int ferryd_engine_worker_stats(struct ferryd_engine *e, unsigned int i, struct ferryd_stats *out);

struct ferryd_engine {
	const struct ferryd_engine_ops *ops;
	/* A human-readable line on what runs: mode, XDP attach mode, zero-copy, dispatcher. */
	char describe[256];
};

struct ferryd_iface;
struct ferryd_link_state;

/*
 * Engine constructors. Both register their fds on r and call each service's
 * cb as datagrams arrive while r runs. iface (iface.h) says what the host's
 * addresses and the interface are; it must outlive the engine. On failure
 * they return -errno, put a reason a user can act on in why, and leave
 * nothing behind (no XDP program attached, no socket open).
 */
int ferryd_xdp_engine_new(struct ferry_reactor *r, struct ferryd_iface *iface, const struct ferryd_config *cfg,
			  struct ferryd_service *svcs, unsigned int nsvc, struct ferryd_engine **out, char *why,
			  size_t whylen);
int ferryd_sock_engine_new(struct ferry_reactor *r, struct ferryd_iface *iface, const struct ferryd_config *cfg,
			   struct ferryd_service *svcs, unsigned int nsvc, struct ferryd_engine **out, char *why,
			   size_t whylen);

/*
 * The send paths' guard: whether dst (canonical) may be sent to from a
 * service on port svc_port (network order), per ferryd_dst_check(), given
 * what ls says ferryd serves (no interface, or loopback: local peers); a
 * refusal is counted by its reason and in tx_dropped.
 */
bool ferryd_stats_dst_ok(struct ferryd_stats *st, const struct ferryd_link_state *ls, uint16_t svc_port,
			 const union ferry_sockaddr *dst);

/* The largest UDP payload (IPv6 without jumbograms: 65535 less the UDP header). */
#define FERRYD_MAX_UDP_PAYLOAD 65527

/* Frame accounting check: 0 when every frame is in exactly one place (always 0 for sockets), -EUCLEAN otherwise. */
int ferryd_engine_check_frames(struct ferryd_engine *e);

/*
 * The one rule for IPv4-mapped IPv6 addresses: ::ffff:a.b.c.d is IPv4 on the
 * wire, so the XDP program's key, the AF_XDP engine's look-ups and the socket
 * a service binds all use the IPv4 form. Any other address is copied as is.
 */
void ferryd_sockaddr_canon(const union ferry_sockaddr *in, union ferry_sockaddr *out);

/* Milliseconds on CLOCK_MONOTONIC (deadlines, retry times, cache ages). */
uint64_t ferryd_now_ms(void);

/* Logging: one line to stderr, "ferryd: " prefixed; level per syslog(3). */
void ferryd_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
