/* SPDX-License-Identifier: MIT */
/*
 * A client of ferryd that speaks the raw ABI of ferry/ring.h itself, without
 * libferry: the control socket's messages (any bytes, any fds), the attach
 * and its fds, the region mapped read-write, every ring of every worker as a
 * pointer. For tests that break the rules ferryd enforces: nothing here
 * checks what the caller writes into the rings.
 */
#ifndef FERRY_TEST_HOSTILE_CLIENT_H
#define FERRY_TEST_HOSTILE_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <ferry/ring.h>

/* One worker's rings and slots in the mapped region. */
struct ferry_test_raw_wk {
	struct ferry_ring_idx *rx, *rx_ret, *tx, *tx_ret;
	struct ferry_rx_desc *rx_desc;
	struct ferry_ret_desc *rx_ret_desc, *tx_ret_desc;
	struct ferry_tx_desc *tx_desc;
	uint8_t *rx_slot, *tx_slot;
	struct ferry_ring_stats *stats;
};

/* An attached raw session. */
struct ferry_test_raw {
	int ctl;     /* the control connection (blocking), or -1 */
	int wake_rd; /* ferryd's pipe to us, or -1 */
	int kick[FERRY_RING_MAX_WORKERS]; /* our pipes to the workers */
	unsigned int nw;
	int area_fd[FERRY_RING_MAX_AREAS]; /* zero-copy: each queue's UMEM (read-only), or -1 */
	unsigned int nareas;
	uint8_t *region;
	size_t size;
	const struct ferry_ring_header *h;
	struct ferry_ctl_reply rep; /* ferryd's answer to the attach */
	struct ferry_test_raw_wk w[FERRY_RING_MAX_WORKERS];
};

/* A connection to the control socket at path: its fd (SOCK_SEQPACKET, blocking, close-on-exec), or -errno. */
int ferry_test_ctl_connect(const char *path);

/* One message of len bytes with nfds fds (SCM_RIGHTS) attached: 0 once all of it was sent, or -errno. */
int ferry_test_ctl_send(int fd, const void *msg, size_t len, const int *fds, unsigned int nfds);

/*
 * One message, waiting up to timeout_ms: its length (cut at len), 0 when the
 * peer closed the connection, or -errno (-ETIMEDOUT when nothing came). The
 * fds that came with it: the first maxfds into fds, the rest closed; how many
 * came in *nfds (fds and nfds may be NULL: then all are closed).
 */
ssize_t ferry_test_ctl_recv(int fd, void *buf, size_t len, int *fds, unsigned int maxfds, unsigned int *nfds,
			    int timeout_ms);

/* A query for verb, numbered seq, sent on fd. Asserts it went. */
void ferry_test_ctl_query(int fd, uint32_t verb, uint32_t seq);

/*
 * The whole answer to query seq (verb) on fd, its parts put together and
 * NUL-terminated (the caller frees it); its status in *status, the number of
 * parts in *parts. Asserts each part comes within timeout_ms and is one of
 * that answer's, in order.
 */
char *ferry_test_ctl_answer(int fd, uint32_t verb, uint32_t seq, int timeout_ms, int *status, unsigned int *parts);

/* A well-formed attach to service with these sizes (0: ferryd's defaults). */
void ferry_test_ctl_attach_msg(struct ferry_ctl_attach *a, const char *service, uint32_t rx_slots,
			       uint32_t tx_slots, uint32_t slot_size);

/*
 * Connects to control, sends a, and takes ferryd's answer: 0 with the region
 * mapped (every offset of the header checked to lie inside it) and r's fds
 * and rings set; or -errno with why (ferryd's reason when it refused: then
 * r->rep holds its reply). r is all -1/NULL on failure.
 */
int ferry_test_raw_attach(struct ferry_test_raw *r, const char *control, const struct ferry_ctl_attach *a,
			  char *why, size_t whylen);

/* Where the rings start: the first byte after the header's pages (all the rest is rings and slots). */
size_t ferry_test_raw_rings_start(const struct ferry_test_raw *r);

/* A byte to worker w's pipe (wake it to read tx). 0, or -errno (ignored by a client that does not care). */
int ferry_test_raw_kick(const struct ferry_test_raw *r, unsigned int w);

/* Closes every fd and unmaps the region. Safe twice. */
void ferry_test_raw_close(struct ferry_test_raw *r);

#endif
