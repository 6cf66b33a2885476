/* SPDX-License-Identifier: MIT */
/*
 * The test fixture: a "host" and a "peer" network namespace joined by a veth
 * pair, named per run, addressed from 198.18.0.0/15 and 2001:2::/48 only.
 *
 *   peer ns: veth "fp0"  198.18.0.2/24  2001:2::2/64
 *   host ns: veth "fh0"  198.18.0.1/24  2001:2::1/64   (ferryd runs here)
 *
 * Names are "ferryt-<pid>-<n>-{host,peer}"; a namespace whose pid is dead is
 * a leftover of a crashed run and ferry_testns_sweep() removes it.
 */
#ifndef FERRY_TEST_NETNS_H
#define FERRY_TEST_NETNS_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <ferry/udp.h>

#define FERRY_TESTNS_HOST4 "198.18.0.1"
#define FERRY_TESTNS_PEER4 "198.18.0.2"
#define FERRY_TESTNS_HOST6 "2001:2::1"
#define FERRY_TESTNS_PEER6 "2001:2::2"
#define FERRY_TESTNS_HOST_IF "fh0"
#define FERRY_TESTNS_PEER_IF "fp0"

enum ferry_testns_side { FERRY_TESTNS_ROOT, FERRY_TESTNS_HOST, FERRY_TESTNS_PEER };

struct ferry_testns {
	char host[64], peer[64]; /* namespace names */
	int root_fd, host_fd, peer_fd;
	uint8_t host_mac[6], peer_mac[6];
	bool up;
};

/* True when running as root with CAP_NET_ADMIN and CAP_SYS_ADMIN. */
bool ferry_test_is_root(void);

/*
 * Creates both namespaces, the veth pair, addresses (IPv6 nodad), static
 * neighbour entries both ways, loopback up, and the peer's TX checksum
 * offload off (its datagrams carry full UDP checksums, as from a NIC). Sweeps dead runs' namespaces first.
 * 0, or -errno (and everything created is removed again).
 */
int ferry_testns_setup(struct ferry_testns *ns);

/* The same with nq TX and RX queues on each end of the veth pair (XPS and RSS of veth then spread flows). */
int ferry_testns_setup_queues(struct ferry_testns *ns, unsigned int nq);

/* Removes what setup made; safe to call twice and on a failed setup. */
void ferry_testns_teardown(struct ferry_testns *ns);

/* Moves the calling thread into a side's namespace (setns). 0 or -errno. */
int ferry_testns_enter(const struct ferry_testns *ns, enum ferry_testns_side side);

/* Runs a shell command inside a side's namespace (ip netns exec). Returns its exit status, or -errno. */
int ferry_testns_run(const struct ferry_testns *ns, enum ferry_testns_side side, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* An IPv4/IPv6 address of a side (AF_INET or AF_INET6) with port. */
void ferry_testns_addr(enum ferry_testns_side side, int family, uint16_t port, union ferry_sockaddr *out);

/* Removes ferryt-* namespaces whose creating pid is gone. Returns how many. */
int ferry_testns_sweep(void);

/* Milliseconds on CLOCK_MONOTONIC. */
uint64_t ferry_test_now_ms(void);

#endif
