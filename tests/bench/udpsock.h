/* SPDX-License-Identifier: MIT */
/*
 * What the plain-socket bench programs share: a bound UDP socket with big
 * buffers, and a recvmmsg/sendmmsg batch with buffers and source addresses.
 */
#ifndef FERRY_BENCH_UDPSOCK_H
#define FERRY_BENCH_UDPSOCK_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ferry/udp.h>

#define UDPSOCK_BUFSIZE 2048
#define UDPSOCK_MAX_BATCH 1024

/* A non-blocking UDP socket bound to addr with rcvbuf/sndbuf bytes of
 * buffer (forced past rmem_max when root). fd or -errno. */
int udpsock_bind(const union ferry_sockaddr *addr, int bufsize);

/* n messages, each with one UDPSOCK_BUFSIZE buffer and room for a source address. */
struct udpsock_batch {
	unsigned int n;
	struct mmsghdr msgs[UDPSOCK_MAX_BATCH];
	struct iovec iov[UDPSOCK_MAX_BATCH];
	struct sockaddr_storage names[UDPSOCK_MAX_BATCH];
	uint8_t bufs[UDPSOCK_MAX_BATCH][UDPSOCK_BUFSIZE];
};

/* Sets up b for n (<= UDPSOCK_MAX_BATCH) receives. */
void udpsock_batch_init(struct udpsock_batch *b, unsigned int n);

/* recvmmsg overwrites the name and data lengths of the first used messages:
 * restore them before the next receive. */
static inline void udpsock_batch_rearm(struct udpsock_batch *b, unsigned int used)
{
	for (unsigned int i = 0; i < used; i++) {
		b->msgs[i].msg_hdr.msg_namelen = sizeof(b->names[i]);
		b->iov[i].iov_len = UDPSOCK_BUFSIZE;
	}
}

#endif
