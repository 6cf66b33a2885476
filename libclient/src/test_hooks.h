/* SPDX-License-Identifier: MIT */
/*
 * Test hooks: libferry-internal (hidden in libferry.so, not part of the API),
 * reachable by the tests, which link libferry.a. NULL/the real call unless a
 * test sets them; nothing else may.
 */
#ifndef FERRY_TEST_HOOKS_H
#define FERRY_TEST_HOOKS_H

#include <sys/socket.h>
#include <sys/types.h>

/*
 * Called by a receive loop right after a receive returned data and before the
 * loop does anything with it: where a stop fired from another thread can land.
 */
extern void (*ferry__loop_received_hook)(void *arg);
extern void *ferry__loop_received_arg;

/* The sendto(2) the sends call: a test makes it fail (ENOBUFS) as no real socket does on demand. */
extern ssize_t (*ferry__sendto)(int fd, const void *p, size_t len, int flags, const struct sockaddr *addr,
				socklen_t alen);

#endif
