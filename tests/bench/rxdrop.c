/* SPDX-License-Identifier: MIT */
/*
 * rxdrop: a bare libxdp AF_XDP receiver that counts and drops everything:
 * rxdrop.bpf.o redirects every frame of the queue to one socket, the loop
 * moves RX descriptors straight back to the fill ring. What any AF_XDP
 * receiver costs on this path; it sleeps in poll() when idle. --busy-poll sets
 * the socket options ferryd's --busy-poll sets (SO_PREFER_BUSY_POLL, SO_BUSY_POLL
 * 20 us, SO_BUSY_POLL_BUDGET = the batch): its poll() then busy-polls the
 * device's NAPI before it sleeps.
 *
 *   rxdrop -i IF [--queue Q] [--count N] [--duration S] [--batch N] [--skb]
 *          [--zero-copy auto|on|off] [--busy-poll] [--obj PATH]
 */
#include <errno.h>
#include <getopt.h>
#include <linux/if_xdp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <xdp/xsk.h>

#include "bench.h"
#include "xdp_load.h"

#define PROG "rxdrop"
#define NFRAMES 4096
#define FRAME_SIZE XSK_UMEM__DEFAULT_FRAME_SIZE
#define RING_SIZE NFRAMES
#define POLL_MS 50
#define MAX_BATCH 1024
#define BUSY_POLL_USEC 20 /* as ferryd's */

enum zc_mode { ZC_AUTO, ZC_ON, ZC_OFF };

struct rx {
	struct xsk_umem *umem;
	struct xsk_socket *xsk;
	struct xsk_ring_prod fill;
	struct xsk_ring_cons comp;
	struct xsk_ring_cons rx;
	void *area;
	int fd;
	bool zero_copy;
	uint64_t packets;
	uint64_t bytes;
	uint64_t wakeups;
};

static void usage(void)
{
	fprintf(stderr, "usage: " PROG " -i IF [--queue Q] [--count N] [--duration S] [--batch N] [--skb]\n"
			"       [--zero-copy auto|on|off] [--busy-poll] [--obj PATH]\n");
	exit(2);
}

static int open_xsk(struct rx *r, const char *ifname, uint32_t queue, bool zero_copy)
{
	struct xsk_umem_config ucfg = {
		.fill_size = RING_SIZE,
		.comp_size = RING_SIZE,
		.frame_size = FRAME_SIZE,
	};
	struct xsk_socket_config scfg = {
		.rx_size = RING_SIZE,
		.tx_size = 0,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD, /* our own program, attached by us */
		.bind_flags = (uint16_t)(XDP_USE_NEED_WAKEUP | (zero_copy ? XDP_ZEROCOPY : XDP_COPY)),
	};
	int err;

	err = xsk_umem__create(&r->umem, r->area, (uint64_t)NFRAMES * FRAME_SIZE, &r->fill, &r->comp, &ucfg);
	if (err)
		return err < 0 ? err : -err;
	err = xsk_socket__create(&r->xsk, ifname, queue, r->umem, &r->rx, NULL, &scfg);
	if (err) {
		xsk_umem__delete(r->umem);
		return err < 0 ? err : -err;
	}
	r->fd = xsk_socket__fd(r->xsk);
	r->zero_copy = zero_copy;
	return 0;
}

/* Every frame starts on the fill ring: the kernel owns them all until they come back on RX. */
static void fill_all(struct rx *r)
{
	uint32_t idx;

	if (xsk_ring_prod__reserve(&r->fill, NFRAMES, &idx) != NFRAMES)
		bench_die(PROG, "fill ring shorter than %d", NFRAMES);
	for (uint32_t i = 0; i < NFRAMES; i++)
		*xsk_ring_prod__fill_addr(&r->fill, idx + i) = (uint64_t)i * FRAME_SIZE;
	xsk_ring_prod__submit(&r->fill, NFRAMES);
}

/* One batch from RX straight back to fill. Returns the frames moved. */
static uint32_t rx_batch(struct rx *r, uint32_t batch)
{
	uint32_t idx_rx, idx_fill, n;

	n = xsk_ring_cons__peek(&r->rx, batch, &idx_rx);
	if (!n)
		return 0;
	/* Fill has room: it holds every frame not on RX, and these n are on RX. */
	while (xsk_ring_prod__reserve(&r->fill, n, &idx_fill) != n)
		;
	for (uint32_t i = 0; i < n; i++) {
		const struct xdp_desc *d = xsk_ring_cons__rx_desc(&r->rx, idx_rx + i);

		r->bytes += d->len;
		*xsk_ring_prod__fill_addr(&r->fill, idx_fill + i) = xsk_umem__extract_addr(d->addr);
	}
	xsk_ring_prod__submit(&r->fill, n);
	xsk_ring_cons__release(&r->rx, n);
	r->packets += n;
	return n;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "interface", required_argument, NULL, 'i' },
		{ "queue", required_argument, NULL, 'q' },
		{ "count", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 't' },
		{ "batch", required_argument, NULL, 'b' },
		{ "skb", no_argument, NULL, 'S' },
		{ "zero-copy", required_argument, NULL, 'z' },
		{ "obj", required_argument, NULL, 'o' },
		{ "busy-poll", no_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ifname = NULL, *obj = "rxdrop.bpf.o";
	uint64_t queue = 0, batch = 64, now;
	struct bench_limit lim = { 0 };
	enum zc_mode zc = ZC_OFF;
	struct xdp_statistics xs;
	socklen_t xslen = sizeof(xs);
	struct xdp_loaded x;
	bool skb = false, busy_poll = false;
	struct rx r;
	char why[256];
	int c, err, map_fd;

	while ((c = getopt_long(argc, argv, "i:", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			ifname = optarg;
			break;
		case 'q':
			if (bench_parse_u64(optarg, &queue) || queue >= 64)
				usage();
			break;
		case 'c':
			if (bench_parse_u64(optarg, &lim.count))
				usage();
			break;
		case 't':
			if (bench_parse_seconds(optarg, &lim.duration_ns))
				usage();
			break;
		case 'b':
			if (bench_parse_u64(optarg, &batch) || !batch || batch > MAX_BATCH)
				usage();
			break;
		case 'S':
			skb = true;
			break;
		case 'z':
			if (!strcmp(optarg, "auto"))
				zc = ZC_AUTO;
			else if (!strcmp(optarg, "on"))
				zc = ZC_ON;
			else if (!strcmp(optarg, "off"))
				zc = ZC_OFF;
			else
				usage();
			break;
		case 'o':
			obj = optarg;
			break;
		case 'P':
			busy_poll = true;
			break;
		default:
			usage();
		}
	}
	if (!ifname || optind != argc)
		usage();
	if (!lim.count && !lim.duration_ns)
		bench_die(PROG, "give --count and/or --duration: every run must end by itself");
	bench_catch_signals();

	memset(&r, 0, sizeof(r));
	r.area = mmap(NULL, (size_t)NFRAMES * FRAME_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (r.area == MAP_FAILED)
		bench_die(PROG, "mmap UMEM: %s", strerror(errno));
	if (xdp_load_attach(&x, obj, ifname, skb, why, sizeof(why)))
		bench_die(PROG, "%s", why);
	err = zc == ZC_OFF ? -EOPNOTSUPP : open_xsk(&r, ifname, (uint32_t)queue, true);
	if (err && zc != ZC_ON)
		err = open_xsk(&r, ifname, (uint32_t)queue, false);
	if (err) {
		xdp_load_detach(&x);
		bench_die(PROG, "AF_XDP socket on %s queue %llu: %s", ifname, (unsigned long long)queue,
			  strerror(-err));
	}
	map_fd = xdp_load_map_fd(&x, "xsks");
	err = map_fd < 0 ? map_fd : xsk_socket__update_xskmap(r.xsk, map_fd);
	if (err) {
		xsk_socket__delete(r.xsk);
		xdp_load_detach(&x);
		bench_die(PROG, "registering the socket in the XSKMAP: %s", strerror(-err));
	}
	if (busy_poll) {
		int one = 1, usec = BUSY_POLL_USEC, budget = (int)batch;

		if (setsockopt(r.fd, SOL_SOCKET, SO_PREFER_BUSY_POLL, &one, sizeof(one)) ||
		    setsockopt(r.fd, SOL_SOCKET, SO_BUSY_POLL, &usec, sizeof(usec)) ||
		    setsockopt(r.fd, SOL_SOCKET, SO_BUSY_POLL_BUDGET, &budget, sizeof(budget))) {
			err = -errno;
			xsk_socket__delete(r.xsk);
			xdp_load_detach(&x);
			bench_die(PROG, "busy polling: %s", strerror(-err));
		}
	}
	fill_all(&r);
	bench_ready(PROG);

	lim.start_ns = now = bench_now_ns();
	while (!bench_limit_reached(&lim, r.packets, now)) {
		uint32_t want = (uint32_t)batch;

		if (lim.count && lim.count - r.packets < want)
			want = (uint32_t)(lim.count - r.packets);
		if (!rx_batch(&r, want)) {
			struct pollfd pfd = { .fd = r.fd, .events = POLLIN };

			/* Copy mode: poll also lets the kernel know we wait. */
			r.wakeups++;
			poll(&pfd, 1, POLL_MS);
		}
		now = bench_now_ns();
	}
	if (getsockopt(r.fd, SOL_XDP, XDP_STATISTICS, &xs, &xslen))
		memset(&xs, 0, sizeof(xs));
	printf("{\"prog\":\"" PROG "\",\"received\":%llu,\"bytes\":%llu,\"wakeups\":%llu,\"rx_dropped\":%llu,"
	       "\"rx_ring_full\":%llu,\"rx_fill_ring_empty\":%llu,\"rx_invalid\":%llu,\"xdp_mode\":\"%s\","
	       "\"bind\":\"%s\",\"busy_poll\":%s,\"duration_s\":%.6f}\n",
	       (unsigned long long)r.packets, (unsigned long long)r.bytes, (unsigned long long)r.wakeups,
	       (unsigned long long)xs.rx_dropped, (unsigned long long)xs.rx_ring_full,
	       (unsigned long long)xs.rx_fill_ring_empty_descs, (unsigned long long)xs.rx_invalid_descs,
	       skb ? "skb" : "native", r.zero_copy ? "zero-copy" : "copy", busy_poll ? "true" : "false",
	       bench_secs(lim.start_ns, now));
	xsk_socket__delete(r.xsk);
	xsk_umem__delete(r.umem);
	xdp_load_detach(&x);
	munmap(r.area, (size_t)NFRAMES * FRAME_SIZE);
	return 0;
}
