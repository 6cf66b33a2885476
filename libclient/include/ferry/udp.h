/* SPDX-License-Identifier: MIT */
/*
 * UDP over file descriptors: receive loops (recvfrom, read, recvmmsg) that
 * call back on iobufs, sends and binds. The API is modelled on the Udp module
 * of Jane Street's Async; docs/loops.md gives the whole contract on its own,
 * with examples of configurations and where ferry differs from Async.
 *
 * The loop contract, for all six loops. One iteration: receive into the
 * buffer(s), run config->before on each received buffer, the callback
 * (synchronously, once per datagram or per batch), then config->after on each.
 * Buffers are reused: after the callback returns the loop owns them again,
 * unless the callback replaced them (the _with_buffer_replacement variants,
 * entries of the recvmmsg bufs array): it then owns the ones it replaced.
 * A loop runs at most config->max_ready iterations per readiness
 * notification, then yields to other ready work on its reactor; it also
 * yields on EAGAIN and retries EINTR. Every loop ends in one of three ways,
 * whatever iteration it is in:
 *   - FERRY_END_STOPPED: config->stop fired. The stop is checked before every
 *     receive, so no iteration starts once it fired; the callback in progress
 *     finishes. What a receive already returned is never dropped: a stop that
 *     fires between a receive and its callback (from another thread, a signal
 *     handler, or before) still lets that callback run on what was received,
 *     and the loop ends after it. Datagrams not yet received stay queued on fd.
 *   - FERRY_END_CLOSED: end of stream, or fd was closed (EBADF), including by
 *     the callback on any iteration (the last one of a readiness too).
 *   - -errno: any other receive error.
 * Every loop runs either alone (blocking until it ends) or on a ferry_reactor
 * with other work. Loops, like reactors, are not thread-safe: a loop's
 * callbacks run on its reactor's thread; only ferry_stop_fire() comes from
 * elsewhere.
 */
#ifndef FERRY_UDP_H
#define FERRY_UDP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ferry/common.h>
#include <ferry/iobuf.h>
#include <ferry/reactor.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1500-byte Ethernet MTU less 20 (IPv4) and 8 (UDP) header bytes. */
#define FERRY_UDP_DEFAULT_CAPACITY 1472
#define FERRY_UDP_DEFAULT_MAX_READY 12

/* An IPv4 or IPv6 socket address; sa.sa_family says which. */
union ferry_sockaddr {
	struct sockaddr sa;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
};

/* Length of the sockaddr for its family (0 if neither IPv4 nor IPv6). */
FERRY_API socklen_t ferry_sockaddr_len(const union ferry_sockaddr *a);

/*
 * Parses "198.18.0.1:9000", "[2001:2::1]:9000", "*:9000" / "0.0.0.0:9000" /
 * "[::]:9000" (wildcards). 0, or -EINVAL.
 */
FERRY_API int ferry_sockaddr_parse(const char *s, union ferry_sockaddr *out);

/* Formats as parse accepts it. Returns the length written (snprintf rules). */
FERRY_API int ferry_sockaddr_format(const union ferry_sockaddr *a, char *buf, size_t len);

/* True when family, address and port are equal. */
FERRY_API bool ferry_sockaddr_equal(const union ferry_sockaddr *a, const union ferry_sockaddr *b);

/*
 * A hash of address and port (IPv4 and IPv6), well mixed: what ferryd's hash
 * fanout spreads flows over clients by, and what a client's sends pick a
 * ferryd worker by. 0 for other families.
 */
FERRY_API uint32_t ferry_sockaddr_hash(const union ferry_sockaddr *a);

typedef void (*ferry_iobuf_fn)(struct ferry_iobuf *b);

/*
 * Loop configuration. Fill with ferry_udp_config_init(), then change fields;
 * a NULL config pointer means all defaults. before/after may be NULL for "do
 * nothing" (e.g. when the callback manages the window itself);
 * after = ferry_iobuf_compact suits read loops on streams (an unread tail is
 * kept and the next read appends to it).
 */
struct ferry_udp_config {
	size_t sz;		 /* sizeof(struct ferry_udp_config) */
	size_t capacity;	 /* bytes per buffer the loop creates; default 1472 */
	struct ferry_iobuf *init; /* first buffer and prototype; NULL: a new one of capacity
				   * bytes. Caller keeps ownership of a given init. */
	ferry_iobuf_fn before;	 /* after receive, before callback; default flip_lo; NULL: nothing */
	ferry_iobuf_fn after;	 /* after callback, before next receive; default reset; NULL: nothing */
	struct ferry_stop *stop; /* NULL: never */
	unsigned int max_ready;	 /* iterations per readiness; default 12 */
	size_t : 0;
};
#define ferry_udp_config__last_field max_ready

/* Fills the defaults. */
FERRY_API void ferry_udp_config_init(struct ferry_udp_config *config);

/* Counters a loop keeps if given somewhere to keep them (opts.stats). */
struct ferry_udp_loop_stats {
	uint64_t iterations;	/* receive syscalls that returned data */
	uint64_t datagrams;	/* datagrams (or reads) handed to the callback */
	uint64_t bytes;
	uint64_t truncated;	/* datagrams longer than their buffer (MSG_TRUNC) */
	uint64_t wakeups;	/* readiness notifications served */
	uint64_t yields_max_ready; /* times the loop yielded because it hit max_ready */
	uint64_t yields_again;	/* times it yielded on EAGAIN */
};

/*
 * Called once when a loop ends: result is FERRY_END_STOPPED,
 * FERRY_END_CLOSED or -errno; last is the loop's current buffer (the one a
 * _with_buffer_replacement callback last returned; for recvmmsg, bufs[0]).
 * Buffers the loop created itself are freed right after this returns; keep
 * none of them. Buffers the caller gave remain the caller's.
 */
typedef void (*ferry_udp_end_cb)(void *user, int result, struct ferry_iobuf *last);

/* How and where a loop runs. Zero it, set .sz; all fields optional. */
struct ferry_udp_loop_opts {
	size_t sz; /* sizeof(struct ferry_udp_loop_opts) */
	/*
	 * NULL: the call runs the loop alone, blocking until it ends, and returns
	 * how it ended (calling on_end first, if set). Non-NULL: the call
	 * registers the loop on the reactor and returns 0; on_end reports the
	 * end. If the call fails before the loop starts, nothing was registered
	 * and on_end is never called. Free a reactor only after its loops ended.
	 */
	struct ferry_reactor *reactor;
	ferry_udp_end_cb on_end;
	void *end_user;
	struct ferry_udp_loop_stats *stats; /* caller-owned; updated while the loop runs */
	/* recvmmsg loops only */
	unsigned int max_count;	   /* datagrams per recvmmsg; default 65536 / capacity, at most 1024 */
	/* max_count caller-owned buffers, used in place (a callback's replacements
	 * show in this array); default: init + new ones */
	struct ferry_iobuf **bufs;
	bool create_srcs;	   /* ferry_udp_recvmmsg_loop: pass source addresses */
	size_t : 0;
};
#define ferry_udp_loop_opts__last_field create_srcs

/* One datagram; buf's window is the datagram (with default before). */
typedef void (*ferry_udp_recvfrom_cb)(void *user, struct ferry_iobuf *buf, const union ferry_sockaddr *src);
/*
 * The same, returning the buffer for the next receive. Returning another
 * buffer hands buf to the callback and the returned one stays the caller's
 * (the loop never frees a replacement). Returning NULL ends the loop with -EINVAL.
 */
typedef struct ferry_iobuf *(*ferry_udp_recvfrom_replace_cb)(void *user, struct ferry_iobuf *buf,
							     const union ferry_sockaddr *src);
typedef void (*ferry_udp_read_cb)(void *user, struct ferry_iobuf *buf);
typedef struct ferry_iobuf *(*ferry_udp_read_replace_cb)(void *user, struct ferry_iobuf *buf);

/*
 * The batch callback: the one shape every source calls (sockets, AF_XDP
 * frames, shared-memory rings). bufs[0..count) hold one datagram each; srcs
 * is NULL or srcs[i] is bufs[i]'s source. A buffer whose datagram was cut has
 * FERRY_IOBUF_TRUNCATED in flags. The callback may replace entries of bufs:
 * it then owns the originals and the loop uses the replacements.
 */
typedef void (*ferry_udp_batch_cb)(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs,
				   unsigned int count);

/*
 * Receive loops. Each sets O_NONBLOCK on fd, receives into its buffer(s),
 * runs before, the callback (synchronously, once per datagram or batch), then
 * after. At most config->max_ready receives per readiness, then it yields;
 * it yields on EAGAIN too, retries EINTR, and ends as the contract at the top
 * of this file says: when config->stop fires (no iteration starts after it;
 * what was already received is still delivered), on end of stream or a closed
 * fd (FERRY_END_CLOSED), or on any other error (-errno). The loop does not
 * close fd; the callback may.
 *
 * Without opts->reactor: blocks until the end and returns how it ended.
 * With it: returns 0 once registered, or -errno (then nothing happens).
 */
FERRY_API int ferry_udp_recvfrom_loop(const struct ferry_udp_config *config, int fd,
				      const struct ferry_udp_loop_opts *opts, ferry_udp_recvfrom_cb cb, void *user);
FERRY_API int ferry_udp_recvfrom_loop_with_buffer_replacement(const struct ferry_udp_config *config, int fd,
							      const struct ferry_udp_loop_opts *opts,
							      ferry_udp_recvfrom_replace_cb cb, void *user);
/* read() instead of recvfrom; works on pipes, streams, files. A read of 0 ends the loop: FERRY_END_CLOSED. */
FERRY_API int ferry_udp_read_loop(const struct ferry_udp_config *config, int fd,
				  const struct ferry_udp_loop_opts *opts, ferry_udp_read_cb cb, void *user);
FERRY_API int ferry_udp_read_loop_with_buffer_replacement(const struct ferry_udp_config *config, int fd,
							  const struct ferry_udp_loop_opts *opts,
							  ferry_udp_read_replace_cb cb, void *user);
/* Up to max_count datagrams per recvmmsg(); srcs only if opts->create_srcs. */
FERRY_API int ferry_udp_recvmmsg_loop(const struct ferry_udp_config *config, int fd,
				      const struct ferry_udp_loop_opts *opts, ferry_udp_batch_cb cb, void *user);
/* The same, cheaper: no source addresses (srcs is always NULL). */
FERRY_API int ferry_udp_recvmmsg_no_sources_loop(const struct ferry_udp_config *config, int fd,
						 const struct ferry_udp_loop_opts *opts, ferry_udp_batch_cb cb,
						 void *user);

/*
 * One non-blocking sendto(MSG_NOSIGNAL) of buf's window to dst (NULL: the
 * connected peer). FERRY_OK: sent, window consumed (a stream may take part of
 * it: the rest stays in the window). FERRY_NOT_READY: no room, window
 * unchanged: the socket's buffer is full (EAGAIN), or the queue below it is
 * (ENOBUFS: a full device or qdisc queue; UDP reports it only with
 * IP_RECVERR). -errno otherwise, window unchanged. The caller keeps buf.
 */
FERRY_API int ferry_udp_sendto_sync(int fd, struct ferry_iobuf *buf, const union ferry_sockaddr *dst);

/*
 * Like sendto_sync, but tries until sent (FERRY_OK), stopped
 * (FERRY_END_STOPPED) or failed (-errno). When the socket is full (EAGAIN) it
 * waits for writability, at most config->max_ready tries per notification.
 * ENOBUFS (the queue below the socket is full) brings no writability
 * notification and may last: it retries on a timer of the reactor instead,
 * 1 ms after the first ENOBUFS, then doubling the wait up to 64 ms between
 * tries for as long as ENOBUFS lasts: it never spins, and ENOBUFS alone never
 * ends the send (config->stop does). Any other outcome of a try resets the
 * wait to 1 ms.
 *
 * Blocking without opts->reactor; with one, returns 0 once registered and
 * reports through opts->on_end(end_user, result, buf) (never from inside this
 * call). buf and dst must stay valid until then. The caller keeps buf.
 */
FERRY_API int ferry_udp_sendto(const struct ferry_udp_config *config, int fd, struct ferry_iobuf *buf,
			       const union ferry_sockaddr *dst, const struct ferry_udp_loop_opts *opts);

/*
 * A new non-blocking, close-on-exec UDP socket with SO_REUSEADDR bound to
 * addr; joins addr's group when it is multicast (on ifname if non-NULL).
 * Returns the fd (caller owns it) or -errno.
 */
FERRY_API int ferry_udp_bind(const union ferry_sockaddr *addr, const char *ifname);

/* A new socket on an ephemeral port of family (AF_INET, AF_INET6; 0 = AF_INET), no SO_REUSEADDR. fd or -errno. */
FERRY_API int ferry_udp_bind_any(int family);

/* SO_BINDTODEVICE. 0 or -errno. */
FERRY_API int ferry_udp_bind_to_interface(int fd, const char *ifname);

#ifdef __cplusplus
}
#endif
#endif
