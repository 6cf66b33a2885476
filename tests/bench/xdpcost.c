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
 * (--handler clients), on a worker of this thread (ferryd_worker_init()),
 * and one libferry client attaches through ferryd's own control socket (a
 * temporary path; the control thread runs here while the client connects
 * from a second thread, then everything runs on this one). The client's
 * ferry_client_recvmmsg_loop() (batches of 64, a counting callback) reads
 * the session's RX ring; its callback feeds the next batch of frames through
 * the RX path (xdpcost_feed()) until all are in, so every batch of either
 * side is 64 datagrams and the run is deterministic. Copy hand-off, ferryd's
 * default session sizes and fanout.
 *
 * Only the function named is meant to be counted, with what it calls:
 *   valgrind --tool=callgrind --toggle-collect=ferryd_xq_rx_batch xdpcost --count N
 *   valgrind --tool=callgrind --toggle-collect=ferryd_dispatch_cb xdpcost --handler clients --count N
 *   valgrind --tool=callgrind --toggle-collect=ferry_client_recvmmsg_loop --toggle-collect=xdpcost_feed \
 *            xdpcost --handler clients --count N
 * (the last: the client loop, less the feeding nested in its callback, which
 * toggles collection off and on again) and (Ir at 2N - Ir at N) / N is the
 * cost per datagram without fixed costs.
 *
 *   xdpcost --count N [--size BYTES] [--handler count|clients]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/bpf.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ferry/client.h>

#include "bench.h"
#include "dataplane.h"
#include "dispatch.h"
#include "control.h"
#include "handlers.h"
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

/* One batch of frames from the stand-in kernel through ferryd's RX path. */
static void feed_now(struct ferryd_xq *q, uint64_t n)
{
	uint32_t k = kernel_rx(q, n < BATCH ? (uint32_t)n : BATCH), took;

	if (!k)
		bench_die(PROG, "no frame on the fill ring");
	took = ferryd_xq_rx_batch(q);
	if (took != k)
		bench_die(PROG, "the RX path took %u of %u descriptors", took, k);
}

struct run {
	struct ferryd_xq *q;
	uint64_t want, fed, got;
	struct ferry_stop *stop;
};

/* Called in the client's callback: toggled off by name when the client loop is counted. */
void xdpcost_feed(struct run *r);
__attribute__((noinline)) void xdpcost_feed(struct run *r)
{
	uint64_t n = r->want - r->fed < BATCH ? r->want - r->fed : BATCH;

	feed_now(r->q, n);
	r->fed += n;
}

/* The client's callback: counts, and has the next batch fed while datagrams are still to come. */
static void client_cb(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int count)
{
	struct run *r = user;

	(void)bufs;
	(void)srcs;
	r->got += count;
	if (r->fed < r->want)
		xdpcost_feed(r);
	else if (r->got >= r->want)
		ferry_stop_fire(r->stop);
}

struct attach {
	const char *path;
	struct ferry_client *c;
	char why[200];
	int err;
	int done; /* atomic */
};

static void *attach_thread(void *arg)
{
	struct attach *a = arg;
	struct ferry_client_opts o = { .sz = sizeof(o), .socket_path = a->path, .service = "bench",
				       .why = a->why, .whylen = sizeof(a->why) };

	a->err = ferry_client_connect(&o, &a->c);
	__atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * ferryd's control side on dp (one inline worker, w, made here) and a
 * libferry client attached to the service through it; the control socket under dir.
 */
static struct ferry_client *clients_init(struct ferryd_dp *dp, struct ferryd_worker *w, const char *dir,
					 struct ferryd_control **ctl)
{
	struct attach a = { 0 };
	pthread_t th;
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
	dp->w = w;
	dp->peer = calloc(1, sizeof(*dp->peer));
	if (!dp->peer)
		bench_die(PROG, "out of memory");
	snprintf(dp->cfg.control, sizeof(dp->cfg.control), "%s/ferryd.sock", dir);
	dp->cfg.control_mode = 0600;
	dp->cfg.control_uid = dp->cfg.control_gid = -1;
	err = ferryd_control_new(dp->r, &dp->cfg, &dp->e, ctl, why, sizeof(why));
	if (err)
		bench_die(PROG, "control socket: %s", why);
	a.path = dp->cfg.control;
	err = pthread_create(&th, NULL, attach_thread, &a);
	if (err)
		bench_die(PROG, "a thread: %s", strerror(err));
	while (!__atomic_load_n(&a.done, __ATOMIC_ACQUIRE))
		ferry_reactor_run_once(dp->r, 10);
	pthread_join(th, NULL);
	if (a.err)
		bench_die(PROG, "attaching: %s", a.why[0] ? a.why : strerror(-a.err));
	return a.c;
}

/* The client loop, fed from its own callback. */
static int client_run(struct ferry_client *c, struct run *r)
{
	struct ferry_udp_loop_opts lo = { .sz = sizeof(lo), .max_count = BATCH };
	struct ferry_udp_config cfg;
	int ret;

	ferry_udp_config_init(&cfg);
	r->stop = ferry_stop_new();
	if (!r->stop)
		return -errno;
	cfg.stop = r->stop;
	feed_now(r->q, r->want < BATCH ? r->want : BATCH); /* the first batch */
	r->fed = r->want < BATCH ? r->want : BATCH;
	ret = ferry_client_recvmmsg_loop(&cfg, c, &lo, client_cb, r);
	ferry_stop_free(r->stop);
	return ret == FERRY_END_STOPPED ? 0 : ret < 0 ? ret : -EPIPE;
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
	static struct ferryd_service *svcp = &dp.cfg.services[0]; /* the control socket finds it there */
	struct ferryd_control *ctl = NULL;
	struct ferry_client *client = NULL;
	struct run run = { 0 };
	char dir[64] = "";
	union ferry_sockaddr src;
	uint64_t want = 0, size = 18, handled;
	enum ferryd_handler handler = FERRYD_HANDLER_COUNT;
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

	/* the service and ferryd's handler, as ferryd --handler count|clients makes them */
	ferryd_config_defaults(&dp.cfg);
	dp.cfg.handler = handler;
	dp.cfg.nservices = 1;
	snprintf(svcp->name, sizeof(svcp->name), "bench");
	svcp->id = 0;
	svcp->addr.in4.sin_family = AF_INET;
	svcp->addr.in4.sin_port = htons(SVC_PORT);
	svcp->addr.in4.sin_addr.s_addr = htonl(0xc6120001); /* 198.18.0.1 */
	memset(&src, 0, sizeof(src));
	src.in4.sin_family = AF_INET;
	src.in4.sin_port = htons(40000);
	src.in4.sin_addr.s_addr = htonl(0xc6120002); /* 198.18.0.2 */
	ferryd_handlers_install(&hctx, handler, svcp, 1);
	len = frame_build_udp(frame, sizeof(frame) - XDP_PACKET_HEADROOM, dmac, smac, &src, &svcp->addr, size);
	if (len < 0)
		bench_die(PROG, "building the frame: %s", strerror(-len));
	frame_len = (size_t)len;

	/* one worker with one queue, as ferryd --queues 1 --workers 1 has them */
	dp.xdp = true;
	dp.cfg.batch = BATCH;
	dp.nw = 1;
	dp.cfg.frames = FRAMES;
	dp.cfg.frame_size = FRAME_SIZE;
	if (handler == FERRYD_HANDLER_CLIENTS) {
		snprintf(dir, sizeof(dir), "/tmp/" PROG "-%d", (int)getpid());
		client = clients_init(&dp, &w, dir, &ctl);
		ferryd_svc_table_put(w.svcs);
		ferryd_link_state_put(w.ls);
	}
	w.dp = &dp;
	w.ls = &ls;
	w.svcs = ferryd_svc_table_new();
	if (!w.svcs || ferryd_svc_table_add(w.svcs, svcp, 1, why, sizeof(why)))
		bench_die(PROG, "service table: %s", w.svcs ? why : "out of memory");
	queue_init(&q, &w);
	w.q = &q;
	w.nq = 1;

	run.q = &q;
	run.want = want;
	if (client) {
		int err = client_run(client, &run);

		if (err)
			bench_die(PROG, "client loop: %s", strerror(-err));
	} else {
		for (; run.fed < want; run.fed += BATCH)
			feed_now(&q, want - run.fed);
		run.got = hctx.datagrams;
	}
	handled = run.got;
	if (handled != want || w.st.rx_bad_header || w.st.rx_no_service || ferryd_umem_check(&q.umem, 0))
		bench_die(PROG, "the handler took %llu of %llu datagrams (bad header %llu, no service %llu)",
			  (unsigned long long)handled, (unsigned long long)want,
			  (unsigned long long)w.st.rx_bad_header, (unsigned long long)w.st.rx_no_service);
	printf("{\"prog\":\"" PROG "\",\"handler\":\"%s\",\"count\":%llu,\"received\":%llu,\"size\":%llu,"
	       "\"batches\":%llu}\n",
	       client ? "clients" : "count", (unsigned long long)want, (unsigned long long)handled, (unsigned long long)size,
	       (unsigned long long)w.st.rx_batches);
	if (client) {
		ferry_client_close(client);
		ferryd_control_stop(ctl, "done");
		rmdir(dir);
	}
	ferryd_umem_destroy(&q.umem);
	ferryd_svc_table_put(w.svcs);
	free(q.bufs);
	free(q.orig);
	free(q.srcs);
	free(q.svc_of);
	return 0;
}
