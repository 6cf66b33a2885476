/* SPDX-License-Identifier: MIT */
/* A bound UDP socket with big buffers and a recvmmsg batch, for the plain-socket bench programs. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "udpsock.h"

int udpsock_bind(const union ferry_sockaddr *addr, int bufsize)
{
	int fd = socket(addr->sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsize, sizeof(bufsize)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsize, sizeof(bufsize)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
	if (bind(fd, &addr->sa, ferry_sockaddr_len(addr))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

void udpsock_batch_init(struct udpsock_batch *b, unsigned int n)
{
	memset(b->msgs, 0, sizeof(b->msgs));
	b->n = n;
	for (unsigned int i = 0; i < n; i++) {
		b->iov[i].iov_base = b->bufs[i];
		b->iov[i].iov_len = UDPSOCK_BUFSIZE;
		b->msgs[i].msg_hdr.msg_iov = &b->iov[i];
		b->msgs[i].msg_hdr.msg_iovlen = 1;
		b->msgs[i].msg_hdr.msg_name = &b->names[i];
		b->msgs[i].msg_hdr.msg_namelen = sizeof(b->names[i]);
	}
}
