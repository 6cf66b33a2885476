/* SPDX-License-Identifier: MIT */
/*
 * xdpgen: an AF_XDP TX generator. Sends one fixed UDP frame (built once into
 * every UMEM frame, checksums complete) on a queue of an interface, paced to
 * a rate or unpaced, for a count and/or a duration, then prints one JSON line.
 *
 *   xdpgen -i IF --dst-mac MAC --src ADDR:PORT --dst ADDR:PORT [--size N]
 *          [--rate PPS] [--count N] [--duration S] [--burst N] [--queue Q]
 *          [--zero-copy] [--src-mac MAC]
 *
 * "sent" counts frames the driver took; a frame the driver dropped (veth:
 * the peer's queue was full; the kernel says EBUSY) is counted in
 * driver_drops instead. Each frame is one completion, reaped as it comes.
 */
#include <errno.h>
#include <getopt.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <xdp/xsk.h>

#include "bench.h"
#include "udpframe.h"

#define PROG "xdpgen"
#define NFRAMES 4096
#define FRAME_SIZE XSK_UMEM__DEFAULT_FRAME_SIZE
#define RING_SIZE 2048
#define DRAIN_NS (NSEC_PER_SEC / 2)

struct gen {
	struct xsk_umem *umem;
	struct xsk_socket *xsk;
	struct xsk_ring_prod fill;
	struct xsk_ring_cons comp;
	struct xsk_ring_prod tx;
	void *area;
	int fd;
	uint32_t frame_len;
	uint32_t next_frame;
	uint64_t submitted;
	uint64_t completed;
	uint64_t driver_drops;
	uint64_t kicks;
	uint64_t retries;
	bool zero_copy;
};

static void usage(void)
{
	fprintf(stderr,
		"usage: " PROG " -i IF --dst-mac MAC --src ADDR:PORT --dst ADDR:PORT [--size BYTES]\n"
		"       [--rate PPS (0 = unpaced)] [--count N] [--duration S] [--burst N] [--queue Q]\n"
		"       [--src-mac MAC] [--zero-copy]\n");
	exit(2);
}

static int iface_mac(const char *ifname, uint8_t mac[6])
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), err = 0;

	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr))
		err = -errno;
	else
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	close(fd);
	return err;
}

static void reap(struct gen *g)
{
	uint32_t idx, n = xsk_ring_cons__peek(&g->comp, RING_SIZE, &idx);

	if (n) {
		xsk_ring_cons__release(&g->comp, n);
		g->completed += n;
	}
}

/* Copy mode sends in the syscall, at most a kernel budget (32) a call. */
static void kick(struct gen *g)
{
	if (xsk_prod_nb_free(&g->tx, RING_SIZE) == RING_SIZE || !xsk_ring_prod__needs_wakeup(&g->tx))
		return; /* nothing on the ring, or the kernel is on it */
	g->kicks++;
	if (sendto(g->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0)
		return;
	switch (errno) {
	case EBUSY: /* the driver dropped a frame: completed, not sent */
		g->driver_drops++;
		break;
	case EAGAIN: /* budget used up, or the driver is busy: again next round */
	case ENOBUFS:
	case EINTR:
		g->retries++;
		break;
	default:
		bench_die(PROG, "TX wake-up: %s", strerror(errno));
	}
}

static uint32_t submit(struct gen *g, uint32_t n)
{
	uint32_t idx;

	if (xsk_ring_prod__reserve(&g->tx, n, &idx) != n)
		return 0;
	for (uint32_t i = 0; i < n; i++) {
		struct xdp_desc *d = xsk_ring_prod__tx_desc(&g->tx, idx + i);

		d->addr = (uint64_t)(g->next_frame++ % NFRAMES) * FRAME_SIZE;
		d->len = g->frame_len;
		d->options = 0;
	}
	xsk_ring_prod__submit(&g->tx, n);
	g->submitted += n;
	return n;
}

static int open_xsk(struct gen *g, const char *ifname, uint32_t queue, bool zero_copy)
{
	struct xsk_umem_config ucfg = {
		.fill_size = RING_SIZE,
		.comp_size = RING_SIZE,
		.frame_size = FRAME_SIZE,
	};
	struct xsk_socket_config scfg = {
		.rx_size = 0,
		.tx_size = RING_SIZE,
		/* TX only: no XDP program, nothing attached to the interface */
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.bind_flags = (uint16_t)(XDP_USE_NEED_WAKEUP | (zero_copy ? XDP_ZEROCOPY : XDP_COPY)),
	};
	int err;

	err = xsk_umem__create(&g->umem, g->area, (uint64_t)NFRAMES * FRAME_SIZE, &g->fill, &g->comp, &ucfg);
	if (err)
		return err < 0 ? err : -err;
	err = xsk_socket__create(&g->xsk, ifname, queue, g->umem, NULL, &g->tx, &scfg);
	if (err) {
		xsk_umem__delete(g->umem);
		return err < 0 ? err : -err;
	}
	g->fd = xsk_socket__fd(g->xsk);
	g->zero_copy = zero_copy;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "interface", required_argument, NULL, 'i' },
		{ "dst-mac", required_argument, NULL, 'M' },
		{ "src-mac", required_argument, NULL, 'm' },
		{ "src", required_argument, NULL, 's' },
		{ "dst", required_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 'l' },
		{ "rate", required_argument, NULL, 'r' },
		{ "count", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 't' },
		{ "burst", required_argument, NULL, 'b' },
		{ "queue", required_argument, NULL, 'q' },
		{ "zero-copy", no_argument, NULL, 'z' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t size = 18, rate = 0, burst = 32, queue = 0, now, wake = 0, end;
	struct bench_limit lim = { 0 };
	struct bench_pacer pacer;
	union ferry_sockaddr src, dst;
	uint8_t dmac[6], smac[6];
	bool have_dmac = false, have_smac = false, have_src = false, have_dst = false, zc = false;
	const char *ifname = NULL;
	struct xdp_statistics xs;
	socklen_t xslen = sizeof(xs);
	struct gen g;
	int c, len, err;

	while ((c = getopt_long(argc, argv, "i:", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			ifname = optarg;
			break;
		case 'M':
			if (frame_parse_mac(optarg, dmac))
				usage();
			have_dmac = true;
			break;
		case 'm':
			if (frame_parse_mac(optarg, smac))
				usage();
			have_smac = true;
			break;
		case 's':
			if (ferry_sockaddr_parse(optarg, &src))
				usage();
			have_src = true;
			break;
		case 'd':
			if (ferry_sockaddr_parse(optarg, &dst))
				usage();
			have_dst = true;
			break;
		case 'l':
			if (bench_parse_u64(optarg, &size) || size > FRAME_SIZE - FRAME_MAX_HDR)
				usage();
			break;
		case 'r':
			if (bench_parse_u64(optarg, &rate))
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
			if (bench_parse_u64(optarg, &burst) || !burst || burst > RING_SIZE)
				usage();
			break;
		case 'q':
			if (bench_parse_u64(optarg, &queue) || queue > 1024)
				usage();
			break;
		case 'z':
			zc = true;
			break;
		default:
			usage();
		}
	}
	if (!ifname || !have_dmac || !have_src || !have_dst || optind != argc)
		usage();
	if (!lim.count && !lim.duration_ns)
		bench_die(PROG, "give --count and/or --duration: every run must end by itself");
	if (!have_smac && (err = iface_mac(ifname, smac)))
		bench_die(PROG, "MAC address of %s: %s", ifname, strerror(-err));

	memset(&g, 0, sizeof(g));
	g.area = mmap(NULL, (size_t)NFRAMES * FRAME_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (g.area == MAP_FAILED)
		bench_die(PROG, "mmap UMEM: %s", strerror(errno));
	len = frame_build_udp(g.area, FRAME_SIZE, dmac, smac, &src, &dst, size);
	if (len < 0)
		bench_die(PROG, "cannot build the frame: %s (same family for --src and --dst?)", strerror(-len));
	g.frame_len = (uint32_t)len;
	for (uint32_t i = 1; i < NFRAMES; i++)
		memcpy((uint8_t *)g.area + (size_t)i * FRAME_SIZE, g.area, g.frame_len);

	err = open_xsk(&g, ifname, (uint32_t)queue, zc);
	if (err)
		bench_die(PROG, "AF_XDP socket on %s queue %llu (%s): %s", ifname, (unsigned long long)queue,
			  zc ? "zero-copy" : "copy", strerror(-err));
	bench_catch_signals();

	pacer = (struct bench_pacer){ .rate = rate, .burst = (uint32_t)burst };
	lim.start_ns = pacer.start_ns = now = bench_now_ns();
	while (!bench_limit_reached(&lim, g.submitted, now)) {
		uint64_t in_flight = g.submitted - g.completed;
		uint64_t want = burst;
		uint32_t n;

		reap(&g);
		if (lim.count && lim.count - g.submitted < want)
			want = lim.count - g.submitted;
		if (NFRAMES - in_flight < want)
			want = NFRAMES - in_flight;
		n = want ? bench_pacer_allow(&pacer, g.submitted, (uint32_t)want, now, &wake) : 0;
		if (n)
			n = submit(&g, n);
		kick(&g);
		/* Sleep only when the kernel has taken everything off the ring:
		 * copy mode sends only inside a kick. */
		if (!n && want && pacer.rate && wake > now && xsk_prod_nb_free(&g.tx, RING_SIZE) == RING_SIZE)
			bench_sleep_until(wake);
		now = bench_now_ns();
	}
	end = now;
	/* Let the kernel finish what is on the ring, so every frame is accounted for. */
	while (g.completed < g.submitted && bench_now_ns() - end < DRAIN_NS) {
		kick(&g);
		reap(&g);
	}
	if (getsockopt(g.fd, SOL_XDP, XDP_STATISTICS, &xs, &xslen))
		memset(&xs, 0, sizeof(xs));

	printf("{\"prog\":\"" PROG "\",\"family\":%d,\"size\":%llu,\"frame_len\":%u,\"rate\":%llu,"
	       "\"sent\":%llu,\"submitted\":%llu,\"completed\":%llu,\"driver_drops\":%llu,\"kicks\":%llu,"
	       "\"retries\":%llu,\"tx_invalid\":%llu,\"duration_s\":%.6f,\"pps\":%.0f,\"bind\":\"%s\"}\n",
	       dst.sa.sa_family == AF_INET6 ? 6 : 4, (unsigned long long)size, g.frame_len,
	       (unsigned long long)rate, (unsigned long long)(g.completed - g.driver_drops),
	       (unsigned long long)g.submitted, (unsigned long long)g.completed,
	       (unsigned long long)g.driver_drops, (unsigned long long)g.kicks, (unsigned long long)g.retries,
	       (unsigned long long)xs.tx_invalid_descs, bench_secs(lim.start_ns, end),
	       (double)(g.completed - g.driver_drops) / bench_secs(lim.start_ns, end),
	       g.zero_copy ? "zero-copy" : "copy");
	xsk_socket__delete(g.xsk);
	xsk_umem__delete(g.umem);
	munmap(g.area, (size_t)NFRAMES * FRAME_SIZE);
	return g.completed == g.submitted ? 0 : 1;
}
