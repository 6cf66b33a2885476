/* SPDX-License-Identifier: MIT */
/*
 * The client of ferryd: attach to a service of a running ferryd and receive
 * and send its datagrams through shared-memory rings (ferry/ring.h), with
 * the same batch callback as the socket loops of ferry/udp.h. A consumer
 * written against ferry_udp_recvmmsg_loop() moves to ferryd by changing how
 * it gets its source, not its callback.
 *
 * A client is not thread-safe: connect, loop, send, free kept buffers and
 * close on one thread (the loop's reactor's, when it has one).
 */
#ifndef FERRY_CLIENT_H
#define FERRY_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ferry/common.h>
#include <ferry/iobuf.h>
#include <ferry/ring.h>
#include <ferry/udp.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ferry_client;

/* libbpf-style: set sz to sizeof(struct ferry_client_opts); fields this library does not know must be zero. */
struct ferry_client_opts {
	size_t sz;
	const char *socket_path; /* NULL: FERRY_CTL_DEFAULT_PATH, /run/ferry/ferryd.sock */
	const char *service;	 /* the service's name, as ferryd was configured */
	unsigned int rx_slots, tx_slots; /* per ferryd worker; 0: ferryd's defaults (1024, 512); powers of two */
	bool reconnect;		 /* attach again when ferryd restarts (see ferry_client_recvmmsg_loop) */
	char *why;		 /* optional: the reason for a refusal, from ferryd or from here */
	size_t whylen;
	unsigned int slot_size;	 /* bytes per slot, the largest datagram either way; 0: ferryd's default (2048) */
	/*
	 * Ask for a zero-copy session: datagrams arrive in the UMEM frames
	 * ferryd received them in, mapped read-only (a callback must not write
	 * into them), when the service allows it (ferryd --client-zero-copy)
	 * and the datagram goes to this client alone; copies otherwise.
	 */
	bool zero_copy;
	size_t : 0;
};
#define ferry_client_opts__last_field zero_copy

/*
 * Attaches to opts->service of the ferryd at opts->socket_path. 0 and *out,
 * or -errno, with the reason in opts->why when given:
 *   -ENOENT, -ECONNREFUSED  no ferryd listens at the path
 *   -EACCES                 ferryd does not let this user or group attach to the service
 *                           (or the socket's permissions do not)
 *   -ESRCH                  no service of that name
 *   -EPROTO                 ferryd speaks another ring ABI version (or not this protocol)
 *   -EINVAL                 bad options, or sizes ferryd does not accept
 *   -E2BIG                  the sizes asked for need more memory than ferryd gives a session
 *   -ENOSPC                 the service has all the clients it takes
 *   -EOPNOTSUPP             the ferryd runs a built-in handler, not clients (or sockets, and
 *                           zero_copy was asked)
 *   -EPERM                  zero_copy asked of a service that does not share its frames
 *   -ETIMEDOUT              ferryd did not answer within a second
 * and -ENOMEM, -EMFILE and the like from the system.
 */
FERRY_API int ferry_client_connect(const struct ferry_client_opts *opts, struct ferry_client **out);

/*
 * Detaches and frees the client. A loop running on it ends with
 * FERRY_END_CLOSED (its on_end runs from inside this call, or, when called
 * from the loop's own callback, once the callback returns). Buffers the
 * callback kept stay valid until freed. NULL is ignored.
 */
FERRY_API void ferry_client_close(struct ferry_client *c);

/*
 * An fd that is readable when the client has something to do: datagrams
 * arrived, send slots came back, ferryd said something or went away, a
 * reconnect is due. For embedding in poll/epoll: when it is readable, run
 * the loop's reactor (a loop runs) or ferry_client_process() (none does).
 * It stays the same fd across reconnects.
 */
FERRY_API int ferry_client_fd(const struct ferry_client *c);

/*
 * What a loop does when the fd is readable, for a client without a loop
 * (one that only sends): reads what ferryd said, reconnects when due. 0
 * while attached or reconnecting, FERRY_END_CLOSED when the session ended
 * for good, or -errno. Datagrams that arrive meanwhile wait on the rings.
 */
FERRY_API int ferry_client_process(struct ferry_client *c);

/*
 * Receives the service's datagrams in batches, exactly as
 * ferry_udp_recvmmsg_loop() does on a socket: config's before, after, stop
 * and max_ready; opts->reactor, on_end, stats and max_count (default 64, at
 * most 1024); blocking without a reactor. srcs is always filled (create_srcs
 * need not be set). A datagram's buffer is its slot in shared memory: its
 * window is the datagram, its limits the slot. config->capacity and
 * config->init do not apply (ferryd's slots are the buffers), opts->bufs
 * must be NULL.
 *
 * The callback may replace entries of bufs: it then keeps that slot, which
 * goes back to ferryd when the kept buffer is freed with ferry_iobuf_free()
 * or given back as a replacement in a later batch. A replacement that is not
 * one of this client's slots stays the caller's: the loop does not keep it.
 * Slots the callback did not keep go back to ferryd when it returns.
 *
 * Ends with FERRY_END_STOPPED (config->stop; what was taken off the rings
 * is delivered first), FERRY_END_CLOSED (ferry_client_close(), or ferryd
 * ended the session and reconnect is off: what it put on the rings before is
 * delivered first), or -errno. With reconnect on, the loop outlives ferryd:
 * it attaches again (after 10 ms, then twice as long each time, up to 1 s)
 * and goes on.
 */
FERRY_API int ferry_client_recvmmsg_loop(const struct ferry_udp_config *config, struct ferry_client *c,
					 const struct ferry_udp_loop_opts *opts, ferry_udp_batch_cb cb, void *user);

/*
 * Queues bufs[i]'s window for dsts[i], sent from the service's address and
 * port. Copies; the caller keeps the buffers, their windows unchanged.
 * Returns how many were queued, in order (the rest: retry them when
 * ferry_client_fd() is readable; it never blocks), or -errno when the first
 * one cannot go: -EMSGSIZE longer than a slot, -EAFNOSUPPORT neither IPv4
 * nor IPv6, -ENOTCONN not attached (reconnecting, or the session ended).
 * What ferryd does not send after all (a destination it never sends to, a
 * full send path) it counts: tx_dropped in ferry_client_stats().
 */
FERRY_API int ferry_client_send(struct ferry_client *c, struct ferry_iobuf *const *bufs,
				const union ferry_sockaddr *dsts, unsigned int count);

/* What a session counted: ferryd's view (summed over its workers) and the client's own. */
struct ferry_client_stats {
	uint64_t rx_packets, rx_bytes;	/* put on the rings by ferryd */
	uint64_t rx_dropped_full;	/* dropped by ferryd: no free slot (the client fell behind) */
	uint64_t rx_dropped_big;	/* dropped by ferryd: longer than a slot */
	uint64_t rx_zero_copy;		/* of rx_packets: handed in their UMEM frames (zero-copy sessions) */
	uint64_t tx_packets, tx_bytes;	/* taken and sent by ferryd */
	uint64_t tx_dropped;		/* taken and not sent (ferryd's stats say why) */
	uint64_t wakeups;		/* times ferryd woke the client */
	uint64_t delivered;		/* datagrams handed to callbacks, in all sessions */
	uint64_t kept;			/* slots callbacks hold now */
	uint64_t reconnects;		/* sessions after the first */
	uint32_t session;		/* ferryd's number of this session; 0 while not attached */
	uint32_t workers;		/* ferryd's workers (ring sets) */
};

/* 0 and *out (the ferryd counters are this session's), or -EINVAL. */
FERRY_API int ferry_client_stats(const struct ferry_client *c, struct ferry_client_stats *out);

/*
 * Whether the client is attached: 0; or why not: -ENOTCONN (reconnecting),
 * -ECONNRESET (ferryd ended the session), with the last reason in why.
 */
FERRY_API int ferry_client_status(const struct ferry_client *c, char *why, size_t whylen);

#ifdef __cplusplus
}
#endif
#endif
