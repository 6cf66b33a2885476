/* SPDX-License-Identifier: MIT */
/*
 * A worker's send path: each datagram leaves by the cheapest way that is
 * right for it. Through the worker's AF_XDP queue when the next hop's MAC is
 * known (headers built here, in a UMEM frame); through a raw IP socket when
 * it is not (the kernel resolves and holds it meanwhile; the control thread
 * is asked to learn it); through the service's kernel socket when it is too
 * big for one frame or the MTU (the kernel fragments), and always in socket
 * mode. Nothing is sent that ferryd_dst_check() refuses.
 */
#ifndef FERRYD_TX_H
#define FERRYD_TX_H

#include <stdint.h>
#include <sys/socket.h>

#include <ferry/iobuf.h>
#include <ferry/udp.h>

#include "packet.h"

struct ferryd_worker;
struct ferryd_service;

#define FERRYD_TX_CHUNK 64 /* datagrams prepared per step */
#define FERRYD_TX_ASKED 256 /* destinations remembered as asked about, per worker */

/* One datagram that leaves through a raw socket instead of the TX ring. */
struct ferryd_slow_tx {
	const uint8_t *payload;
	size_t len;
	union ferry_sockaddr src, dst;
};

struct ferryd_tx {
	int raw4, raw6; /* IPPROTO_RAW sockets: the kernel routes and resolves what we cannot */
	struct {
		uint32_t hash;
		uint64_t at_ms;
	} asked[FERRYD_TX_ASKED]; /* asks not repeated within a while */
	/* scratch of the slow path */
	struct ferryd_slow_tx slow[FERRYD_TX_CHUNK];
	struct mmsghdr msgs[FERRYD_TX_CHUNK];
	struct iovec iov[FERRYD_TX_CHUNK][2];
	union ferry_sockaddr to[FERRYD_TX_CHUNK];
	uint8_t hdr[FERRYD_TX_CHUNK][FERRYD_TX_HEADROOM];
};

/* Opens the raw sockets (xdp mode). 0; a missing raw socket is logged, not fatal. */
int ferryd_tx_init(struct ferryd_tx *tx, bool xdp);
void ferryd_tx_destroy(struct ferryd_tx *tx);

/*
 * Sends bufs[i]'s window to dsts[i] from service svc, on worker w: what the
 * ferryd_engine_ops send promises (the caller keeps the buffers; the windows
 * are not changed; what is not accepted is counted by reason).
 */
unsigned int ferryd_tx_send(struct ferryd_worker *w, const struct ferryd_service *svc, struct ferry_iobuf **bufs,
			    const union ferry_sockaddr *dsts, unsigned int n);

#endif
