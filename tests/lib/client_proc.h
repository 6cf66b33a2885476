/* SPDX-License-Identifier: MIT */
/*
 * A client of ferryd as a test's child process: libferry's client, attached
 * to a service through ferryd's control socket, running its batch loop until
 * told to stop, and writing what it saw (each datagram's source, length and
 * a hash of its bytes; its counters; how it ended) into memory the test
 * reads, also after the child died.
 */
#ifndef FERRY_TEST_CLIENT_PROC_H
#define FERRY_TEST_CLIENT_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <ferry/client.h>

#define FERRY_TEST_CLIENT_RECS (1u << 17)

/* What the child does. */
enum {
	FERRY_TEST_CLIENT_ECHO = 1 << 0,      /* sends each datagram back to its source */
	FERRY_TEST_CLIENT_RECONNECT = 1 << 1, /* reconnect on */
	FERRY_TEST_CLIENT_KEEP = 1 << 2,      /* keeps slots for a while: frees some, gives others back */
	FERRY_TEST_CLIENT_ZERO_COPY = 1 << 3, /* asks for a zero-copy session */
	FERRY_TEST_CLIENT_HOARD = 1 << 4,     /* keeps every slot it gets, gives none back until it ends */
};

enum ferry_test_client_state {
	FERRY_TEST_CLIENT_STARTING,
	FERRY_TEST_CLIENT_ATTACHED,
	FERRY_TEST_CLIENT_REFUSED, /* err and why say why */
	FERRY_TEST_CLIENT_SENT,	   /* its sends are all queued */
	FERRY_TEST_CLIENT_ENDED,   /* the loop ended: loop_result */
};

struct ferry_test_client_rec {
	union ferry_sockaddr src;
	uint32_t len, hash;
};

/* Written by the child (atomically where the test polls), read by the test. */
struct ferry_test_client_shared {
	int state;
	int err;
	char why[160];
	int loop_result;
	uint64_t datagrams, bytes, batches, sent, send_retries;
	struct ferry_client_stats stats; /* refreshed after every batch, and at the end */
	uint32_t nrec;
	struct ferry_test_client_rec rec[FERRY_TEST_CLIENT_RECS];
};

struct ferry_test_client_cfg {
	const char *control;
	const char *service;
	unsigned int flags;
	unsigned int slow_us;		 /* sleeps this long in each batch */
	unsigned int rx_slots, tx_slots; /* 0: ferryd's defaults */
	unsigned int slot_size;
	uint32_t uid, gid;		 /* not 0: becomes them before it connects */
	/* after attaching: send_count datagrams of send_len bytes to send_to (ferry_test_client_payload) */
	unsigned int send_count, send_len;
	union ferry_sockaddr send_to;
};

struct ferry_test_client {
	pid_t pid; /* -1 once reaped */
	int status;
	struct ferry_test_client_shared *sh;
};

/* Forks the client (it dies with the test process); asserts the fork worked. */
void ferry_test_client_start(struct ferry_test_client *c, const struct ferry_test_client_cfg *cfg);

/* Waits up to timeout_ms for the child's state to reach at least state: true, or false (then it is as it is). */
bool ferry_test_client_wait(struct ferry_test_client *c, enum ferry_test_client_state state, int timeout_ms);

/* Datagrams the client's callback has seen so far. */
uint64_t ferry_test_client_delivered(const struct ferry_test_client *c);

/* Waits (bounded: timeout_ms) until the client has seen at least n datagrams; true if it did. */
bool ferry_test_client_wait_delivered(const struct ferry_test_client *c, uint64_t n, int timeout_ms);

/* SIGTERM (its loop stops), then waits for it (bounded; SIGKILL after). Its shared memory stays readable. */
void ferry_test_client_stop(struct ferry_test_client *c);

/* SIGKILL and reap. */
void ferry_test_client_kill(struct ferry_test_client *c);

/* Stops it if it runs, and frees the shared memory. Safe twice, and on one never started. */
void ferry_test_client_free(struct ferry_test_client *c);

/* FNV-1a: what the child records of each datagram's bytes. */
uint32_t ferry_test_hash(const void *p, size_t len);

/* The bytes of datagram seq of len bytes the test clients send: its seq first, then a pattern. */
void ferry_test_client_payload(uint8_t *p, size_t len, uint32_t seq);

#endif
