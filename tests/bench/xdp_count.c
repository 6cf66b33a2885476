/* SPDX-License-Identifier: MIT */
/*
 * xdp_count: attaches xdp_count.bpf.o (count and drop: the floor) to an
 * interface, waits for a duration and/or until a count was reached or a
 * signal, detaches, and prints the frames counted (per-CPU slots summed).
 *
 *   xdp_count -i IF [--count N] [--duration S] [--skb] [--obj PATH]
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bench.h"
#include "xdp_count.h"
#include "xdp_load.h"

#define PROG "xdp_count"
#define POLL_NS (20 * 1000 * 1000ull)

static void usage(void)
{
	fprintf(stderr, "usage: " PROG " -i IF [--count N] [--duration S] [--skb] [--obj PATH]\n");
	exit(2);
}

/* Sum of every CPU's slot; per has room for ncpu slots. */
static int read_counts(int map_fd, struct xdp_count_slot *per, int ncpu, struct xdp_count_slot *sum)
{
	__u32 key = 0;

	if (bpf_map_lookup_elem(map_fd, &key, per))
		return -errno;
	memset(sum, 0, sizeof(*sum));
	for (int i = 0; i < ncpu; i++) {
		sum->packets += per[i].packets;
		sum->bytes += per[i].bytes;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "interface", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 't' },
		{ "skb", no_argument, NULL, 'S' },
		{ "obj", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ifname = NULL, *obj = "xdp_count.bpf.o";
	struct bench_limit lim = { 0 };
	struct xdp_count_slot sum = { 0 }, *per;
	struct xdp_loaded x;
	bool skb = false;
	uint64_t now;
	char why[256];
	int c, map_fd, ncpu, err;

	while ((c = getopt_long(argc, argv, "i:", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			ifname = optarg;
			break;
		case 'c':
			if (bench_parse_u64(optarg, &lim.count))
				usage();
			break;
		case 't':
			if (bench_parse_seconds(optarg, &lim.duration_ns))
				usage();
			break;
		case 'S':
			skb = true;
			break;
		case 'o':
			obj = optarg;
			break;
		default:
			usage();
		}
	}
	if (!ifname || optind != argc)
		usage();
	if (!lim.count && !lim.duration_ns)
		bench_die(PROG, "give --count and/or --duration: every run must end by itself");
	ncpu = libbpf_num_possible_cpus();
	per = ncpu > 0 ? calloc((size_t)ncpu, sizeof(*per)) : NULL;
	if (!per)
		bench_die(PROG, "possible CPUs: %d", ncpu);
	bench_catch_signals();
	if (xdp_load_attach(&x, obj, ifname, skb, why, sizeof(why)))
		bench_die(PROG, "%s", why);
	map_fd = xdp_load_map_fd(&x, "counts");
	if (map_fd < 0) {
		xdp_load_detach(&x);
		bench_die(PROG, "no 'counts' map in %s", obj);
	}
	bench_ready(PROG);

	lim.start_ns = now = bench_now_ns();
	while (!bench_limit_reached(&lim, sum.packets, now)) {
		uint64_t wake = now + POLL_NS;

		if (lim.duration_ns && wake > lim.start_ns + lim.duration_ns)
			wake = lim.start_ns + lim.duration_ns;
		bench_sleep_until(wake);
		if (lim.count && (err = read_counts(map_fd, per, ncpu, &sum))) {
			xdp_load_detach(&x);
			bench_die(PROG, "reading the counters: %s", strerror(-err));
		}
		now = bench_now_ns();
	}
	err = read_counts(map_fd, per, ncpu, &sum);
	xdp_load_detach(&x);
	if (err)
		bench_die(PROG, "reading the counters: %s", strerror(-err));
	printf("{\"prog\":\"" PROG "\",\"received\":%llu,\"bytes\":%llu,\"xdp_mode\":\"%s\",\"duration_s\":%.6f}\n",
	       (unsigned long long)sum.packets, (unsigned long long)sum.bytes, skb ? "skb" : "native",
	       bench_secs(lim.start_ns, now));
	free(per);
	return 0;
}
