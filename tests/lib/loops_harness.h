/* SPDX-License-Identifier: MIT */
/*
 * Shared by the loop tests (tests/unit/test_loops.c, tests/net/test_loops_netns.c):
 * a numbered datagram format, a sender, and a receiver that runs any of the
 * six receive loops over a bounded burst and checks every datagram.
 */
#ifndef FERRY_TEST_LOOPS_HARNESS_H
#define FERRY_TEST_LOOPS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <ferry/udp.h>

enum lh_kind {
	LH_RECVFROM,
	LH_RECVFROM_REP,
	LH_READ,
	LH_READ_REP,
	LH_MMSG,
	LH_MMSG_NOSRC,
	LH_NKINDS
};

#define LH_MAX_BURST 1024

const char *lh_kind_name(enum lh_kind kind);
/* The loop hands the callback a source address. */
bool lh_kind_has_src(enum lh_kind kind);

/* Datagram seq: 4-byte big-endian seq then a pattern; its length is lh_len(seq) (16..215). */
size_t lh_len(unsigned int seq);
size_t lh_payload(unsigned int seq, uint8_t *out);
/* 0 and *seq when p/len is a well-formed datagram, -1 otherwise. */
int lh_check(const uint8_t *p, size_t len, unsigned int *seq);

/* A UDP socket bound to addr (port 0: ephemeral), blocking, with a large receive buffer. -errno on error. */
int lh_udp_socket(const union ferry_sockaddr *addr);
/* The address a socket is bound to. */
void lh_local(int fd, union ferry_sockaddr *out);
/* Loopback address of family with port. */
void lh_loopback(int family, uint16_t port, union ferry_sockaddr *out);

/* How many datagrams are queued on fd: receives (MSG_DONTWAIT) until none is left. */
unsigned int lh_queued(int fd);

/* Sends datagrams first..first+count-1 to dst. The number sent. */
unsigned int lh_send_burst(int fd, const union ferry_sockaddr *dst, unsigned int first, unsigned int count);

/*
 * Forks a child that (after entering ns_fd's namespace when ns_fd >= 0)
 * sends the burst from fd and exits 0 when all went out. The pid, or -errno.
 */
pid_t lh_spawn_sender(int fd, int ns_fd, const union ferry_sockaddr *dst, unsigned int count);
/* Waits (at most timeout_ms, then kills) for the child; its exit status or -1. */
int lh_reap(pid_t pid, unsigned int timeout_ms);

struct lh_burst {
	/* in */
	unsigned int want;		/* stop after this many datagrams */
	bool check_src;
	union ferry_sockaddr src;	/* expected source when check_src */
	/* out */
	unsigned int got, dup, bad, bad_src, bad_window;
	unsigned int callbacks;
	int result;
	bool timed_out, ended;
	struct ferry_udp_loop_stats stats;
	/* private */
	struct ferry_stop *stop;
	uint8_t seen[LH_MAX_BURST];
};

/*
 * Runs a loop of kind on fd until want datagrams arrived (then its stop is
 * fired from the callback) or timeout_ms passed (a watchdog fires it). With
 * use_reactor the loop runs on a reactor and ends through on_end. Returns the
 * loop's result (also in b->result).
 */
int lh_run_burst(enum lh_kind kind, int fd, struct lh_burst *b, bool use_reactor, unsigned int timeout_ms);

/* A thread that fires stop after timeout_ms unless the stop fired first. */
struct lh_watchdog;
struct lh_watchdog *lh_watchdog_start(struct ferry_stop *stop, unsigned int timeout_ms);
/* Joins it; true when it had to fire. */
bool lh_watchdog_end(struct lh_watchdog *w);

#endif
