/* SPDX-License-Identifier: MIT */
/*
 * xdpcost: the program callgrind counts ferryd's AF_XDP RX path in (figure
 * d). It links ferryd's own objects and runs one queue of a worker without a
 * socket: the UMEM is ferryd's (ferryd_umem_init), the fill and RX rings are
 * plain memory that a stand-in for the kernel serves (it takes frame
 * addresses off the fill ring, writes a prebuilt Ethernet/IPv4/UDP frame at
 * the kernel's headroom in each, and puts their descriptors on the RX ring,
 * 64 at a time), and the service's callback is ferryd's own count handler
 * (--handler count). ferryd_xq_rx_batch() is what runs per batch, as on a
 * readiness of the socket: descriptors off the RX ring, frame checks, parse,
 * service lookup, iobuf setup, the batch callback, the frames back on the
 * free list and the fill ring topped up.
 *
 * --handler clients: the service's callback is ferryd's dispatcher instead
 * (--handler clients), handing every datagram to one client session made by
 * ferryd_session_new() (copy hand-off, default sizes and fanout), on a worker
 * made by ferryd_worker_init(); a stand-in for the client (no libferry)
 * takes every entry off the session's RX ring after each batch and gives its
 * slot back on rx_ret, as a client that keeps up does.
 *
 * Only the function named is meant to be counted, with what it calls:
 *   valgrind --tool=callgrind --toggle-collect=ferryd_xq_rx_batch xdpcost --count N
 *   valgrind --tool=callgrind --toggle-collect=ferryd_dispatch_cb xdpcost --handler clients --count N
 * and (Ir at 2N - Ir at N) / N is the cost per datagram without fixed costs.
 *
 *   xdpcost --count N [--size BYTES] [--handler count|clients]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "dataplane.h"
#include "dispatch.h"
#include "handlers.h"
#include "session.h"
#include "udpframe.h"
#include "worker.h"

#define PROG "xdpcost"
#define BATCH 64
#define FRAMES 4096	/* ferryd's defaults: --frames, --frame-size, --batch */
#define FRAME_SIZE 4096
#define RING FRAMES	/* fill and RX ring entries */
#define SVC_PORT 9000

/* The rings' shared words and entries, as the kernel would map them. */
static uint32_t fill_prod, fill_cons, rx_prod, rx_cons, ring_flags;
static uint64_t fill_ring[RING];
static struct xdp_desc rx_ring[RING];

static uint8_t frame[FRAME_SIZE];
static size_t frame_len;

static void usage(void)
{
	fprintf(stderr, "usage: " PROG " --count N [--size BYTES] [--handler count|clients]\n");
	exit(2);
}

/* The kernel's side: up to n frames from the fill ring, received, on the RX ring. */
static uint32_t kernel_rx(struct ferryd_xq *q, uint32_t n)
{
	uint32_t k;

	for (k = 0; k < n && fill_cons != fill_prod && rx_prod - rx_cons < RING; k++) {
		uint64_t a = fill_ring[fill_cons++ & (RING - 1)] + XDP_PACKET_HEADROOM;

		memcpy(q->umem.area + a, frame, frame_len);
		rx_ring[rx_prod++ & (RING - 1)] = (struct xdp_desc){ .addr = a, .len = (uint32_t)frame_len };
	}
	return k;
}

/* What ferryd_xq_open() sets up for one queue, less the socket: the rings are ours. */
static void queue_init(struct ferryd_xq *q, struct ferryd_worker *w)
{
	char why[160];
	uint32_t idx;
	int err;

	memset(q, 0, sizeof(*q));
	q->w = w;
	q->fd = -1;
	err = ferryd_umem_init(&q->umem, FRAMES, FRAME_SIZE, why, sizeof(why));
	if (err)
		bench_die(PROG, "UMEM: %s", why);
	q->fill_target = FRAMES - 8 * BATCH; /* ferryd_xq_open()'s, for the defaults */
	q->bufs = calloc(BATCH, sizeof(*q->bufs));
	q->orig = calloc(BATCH, sizeof(*q->orig));
	q->srcs = calloc(BATCH, sizeof(*q->srcs));
	q->svc_of = calloc(BATCH, sizeof(*q->svc_of));
	if (!q->bufs || !q->orig || !q->srcs || !q->svc_of)
		bench_die(PROG, "out of memory");
	q->fill = (struct xsk_ring_prod){ .cached_cons = RING, .mask = RING - 1, .size = RING, .producer = &fill_prod,
					  .consumer = &fill_cons, .ring = fill_ring, .flags = &ring_flags };
	q->rx = (struct xsk_ring_cons){ .mask = RING - 1, .size = RING, .producer = &rx_prod, .consumer = &rx_cons,
					.ring = rx_ring, .flags = &ring_flags };
	/* the first top-up of the fill ring, as ferryd_xq_start() leaves it */
	if (xsk_ring_prod__reserve(&q->fill, q->fill_target, &idx) != q->fill_target)
		bench_die(PROG, "fill ring");
	for (uint32_t i = 0; i < q->fill_target; i++) {
		uint32_t fi = 0;

		ferryd_umem_take(&q->umem, FERRYD_FRAME_KERNEL, &fi);
		*xsk_ring_prod__fill_addr(&q->fill, idx + i) = ferryd_umem_addr(&q->umem, fi);
	}
	xsk_ring_prod__submit(&q->fill, q->fill_target);
}

/* The client's side, kept up: every rx entry read and its slot given back on rx_ret. */
static uint64_t client_take(struct ferryd_sess_wk *k)
{
	uint32_t prod = __atomic_load_n(&k->rx->producer, __ATOMIC_ACQUIRE), cons = k->rx->consumer;
	uint32_t ret = k->rx_ret->producer, mask = k->s->rx_slots - 1;
	uint64_t n = 0;

	for (; cons != prod; cons++, ret++, n++) {
		const struct ferry_rx_desc *d = &k->rx_desc[cons & mask];

		k->rx_ret_desc[ret & mask] = (struct ferry_ret_desc){ .slot = d->slot, .area = d->area };
	}
	__atomic_store_n(&k->rx->consumer, cons, __ATOMIC_RELEASE);
	__atomic_store_n(&k->rx_ret->producer, ret, __ATOMIC_RELEASE);
	return n;
}

/* A worker on this thread (ferryd_worker_current()) and one client session of svc on it. */
static struct ferryd_sess_wk *clients_init(struct ferryd_dp *dp, struct ferryd_worker *w, struct ferryd_service *svc)
{
	struct ferryd_client_table *t;
	struct ferryd_session *s;
	char why[200];
	int err;

	dp->r = ferry_reactor_new();
	if (!dp->r)
		bench_die(PROG, "a reactor: %s", strerror(errno));
	err = ferryd_iface_new(dp->r, NULL, &dp->iface, why, sizeof(why));
	if (err)
		bench_die(PROG, "addresses: %s", why);
	err = ferryd_worker_init(w, dp, 0, false, -1, why, sizeof(why));
	if (err)
		bench_die(PROG, "worker: %s", why);
	err = ferryd_session_new(svc, svc->id, &svc->addr, 1, 0, 0, 0, 0, NULL, 0, &s, why, sizeof(why));
	if (err)
		bench_die(PROG, "session: %s", why);
	t = ferryd_client_table_new();
	if (!t || ferryd_client_table_add(t, s))
		bench_die(PROG, "client table");
	t->svc[svc->id].fanout = svc->fanout;
	ferryd_dispatch_worker_take(w, t);
	return &s->wk[0];
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'c' },
		{ "size", required_argument, NULL, 'l' },
		{ "handler", required_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	static const uint8_t dmac[6] = { 2, 0, 0, 0, 0, 1 }, smac[6] = { 2, 0, 0, 0, 0, 2 };
	static struct ferryd_link_state ls = { .ifindex = 1, .ethernet = true, .up = true, .running = true };
	static struct ferryd_dp dp;
	static struct ferryd_worker w;
	static struct ferryd_xq q;
	static struct ferryd_handler_ctx hctx;
	static struct ferryd_service svc = { .name = "bench", .id = 0 };
	union ferry_sockaddr src;
	uint64_t want = 0, size = 18, got = 0, taken = 0, handled;
	enum ferryd_handler handler = FERRYD_HANDLER_COUNT;
	struct ferryd_sess_wk *k = NULL;
	char why[200];
	int c, len;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (bench_parse_u64(optarg, &want) || !want)
				usage();
			break;
		case 'l':
			if (bench_parse_u64(optarg, &size) || size > 1472)
				usage();
			break;
		case 'H':
			if (!strcmp(optarg, "count"))
				handler = FERRYD_HANDLER_COUNT;
			else if (!strcmp(optarg, "clients"))
				handler = FERRYD_HANDLER_CLIENTS;
			else
				usage();
			break;
		default:
			usage();
		}
	}
	if (!want || optind != argc)
		usage();

	/* the service and ferryd's count handler, as ferryd --handler count makes them */
	svc.addr.in4.sin_family = AF_INET;
	svc.addr.in4.sin_port = htons(SVC_PORT);
	svc.addr.in4.sin_addr.s_addr = htonl(0xc6120001); /* 198.18.0.1 */
	memset(&src, 0, sizeof(src));
	src.in4.sin_family = AF_INET;
	src.in4.sin_port = htons(40000);
	src.in4.sin_addr.s_addr = htonl(0xc6120002); /* 198.18.0.2 */
	ferryd_handlers_install(&hctx, handler, &svc, 1);
	len = frame_build_udp(frame, sizeof(frame) - XDP_PACKET_HEADROOM, dmac, smac, &src, &svc.addr, size);
	if (len < 0)
		bench_die(PROG, "building the frame: %s", strerror(-len));
	frame_len = (size_t)len;

	/* one worker with one queue, as ferryd --queues 1 --workers 1 has them */
	dp.xdp = true;
	dp.cfg.batch = BATCH;
	dp.nw = 1;
	if (handler == FERRYD_HANDLER_CLIENTS) {
		k = clients_init(&dp, &w, &svc);
		ferryd_svc_table_put(w.svcs);
	}
	w.dp = &dp;
	w.ls = &ls;
	w.svcs = ferryd_svc_table_new();
	if (!w.svcs || ferryd_svc_table_add(w.svcs, &svc, 1, why, sizeof(why)))
		bench_die(PROG, "service table: %s", w.svcs ? why : "out of memory");
	queue_init(&q, &w);
	w.q = &q;
	w.nq = 1;

	while (got < want) {
		uint32_t n = kernel_rx(&q, want - got < BATCH ? (uint32_t)(want - got) : BATCH), took;

		if (!n)
			bench_die(PROG, "no frame on the fill ring after %llu datagrams", (unsigned long long)got);
		took = ferryd_xq_rx_batch(&q);
		if (took != n)
			bench_die(PROG, "the RX path took %u of %u descriptors", took, n);
		got += n;
		if (k)
			taken += client_take(k);
	}
	handled = k ? taken : hctx.datagrams;
	if (handled != want || w.st.rx_bad_header || w.st.rx_no_service || ferryd_umem_check(&q.umem, 0))
		bench_die(PROG, "the handler took %llu of %llu datagrams (bad header %llu, no service %llu)",
			  (unsigned long long)handled, (unsigned long long)want,
			  (unsigned long long)w.st.rx_bad_header, (unsigned long long)w.st.rx_no_service);
	printf("{\"prog\":\"" PROG "\",\"handler\":\"%s\",\"count\":%llu,\"received\":%llu,\"size\":%llu,"
	       "\"batches\":%llu}\n",
	       k ? "clients" : "count", (unsigned long long)want, (unsigned long long)handled, (unsigned long long)size,
	       (unsigned long long)w.st.rx_batches);
	ferryd_umem_destroy(&q.umem);
	ferryd_svc_table_put(w.svcs);
	free(q.bufs);
	free(q.orig);
	free(q.srcs);
	free(q.svc_of);
	return 0;
}
