/* SPDX-License-Identifier: MIT */
/* Small helpers any test file may use, kept independent of the code under test. */
#ifndef FERRY_TEST_UTIL_H
#define FERRY_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * The textbook RFC 1071 sum over big-endian 16-bit words, starting from sum,
 * folded, not complemented. A correct checksum field makes the sum over its
 * header 0xffff. Written plainly on purpose: it checks daemon/packet.c.
 */
uint16_t ferry_test_sum16(uint32_t sum, const void *p, size_t len);

/* The number of open fds of this process (to prove a call leaked none). */
int ferry_test_count_fds(void);

/* Teardown of a forked child: SIGKILL and reap *child if it is > 0; then *child = -1. */
void ferry_test_reap_child(pid_t *child);

#endif
