/* SPDX-License-Identifier: MIT */
/*
 * The XDP program and the user-space parser agree on every frame: each file
 * (the packet_parse corpus, or frames named on the command line) is run
 * through ferry_xdp with BPF_PROG_TEST_RUN and through ferryd_packet_parse().
 *   bpf_agree [--obj FILE] [-v] PATH...    PATH: a frame, or a directory of frames
 * Exit 0 when every verdict agrees, 1 on any disagreement, 2 on a setup
 * error, 77 (skipped) when not root.
 *
 * Before each frame the maps are set up so that the frame, were it well
 * formed, would be steered: the interface's MAC is the frame's destination
 * MAC, its destination address is the interface's and a service's (with the
 * destination port). The program's verdict (with no AF_XDP socket in the
 * XSKMAP a steered frame passes, counted pass_no_socket) must then agree:
 *   - steered: the parser accepts it, with the payload offset and length,
 *     addresses and ports the program steered on;
 *   - parser accepts: the program passes it for a reason the parser does not
 *     judge (service, MACs, addresses, source port, size, UDP checksum),
 *     never for the frame's form (VLAN, not IP/UDP, options, extension
 *     headers, fragments, malformed);
 *   - parser rejects: the program passes it for the same class of reason:
 *     VLAN/not IP/options/extension headers/not UDP for -EPROTONOSUPPORT,
 *     a fragment for -EOPNOTSUPP, malformed for -EINVAL (or what the program
 *     checks first: an IPv4 header sum that fails, an IPv6 destination that
 *     is no unicast peer's);
 *   - and the program returns XDP_PASS, leaves the frame as it was, and
 *     moves exactly one counter by one.
 * A frame whose checksums do not verify is also run as a copy with them
 * fixed (fuzz_fix_sums), so its other fields reach the checks behind them.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "ferry_maps.h"
#include "fuzz.h"
#include "packet.h"
#include "prog.h"

#define MAX_FRAME 65536
#define MAX_FRAME_STEERED (4096 - 256) /* what ferryd tells the program for 4 KiB UMEM frames */
#define MAX_REPORTS 20
#define STR_(x) #x
#define STR(x) STR_(x)

extern const char ferryd_bpf_obj[];
extern const char ferryd_bpf_obj_end[];

/* What the parser returned: the rows of the summary. */
enum { P_ACCEPTS, P_EINVAL, P_EPROTONOSUPPORT, P_EOPNOTSUPP, P_NRESULTS };
static const char *const result_names[P_NRESULTS] = {"accepts", "-EINVAL", "-EPROTONOSUPPORT", "-EOPNOTSUPP"};

static struct bpf_object *obj;
static int prog_fd, services_fd, addrs_fd, config_fd, counters_fd, ncpus;
static struct ferry_service_key last_service;
static struct ferry_addr_key last_addr;
static bool have_last;
static bool verbose;
static unsigned long frames, fixed, disagreements, refused_short;
static unsigned long matrix[P_NRESULTS][FERRY_XDP_NCOUNTERS];

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static int silent(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN)
		vfprintf(stderr, fmt, ap);
	return 0;
}

static int load(const char *path)
{
	LIBBPF_OPTS(bpf_object_open_opts, oopts, .object_name = "ferry");
	struct bpf_program *prog;
	int err;

	libbpf_set_print(silent);
	if (path)
		obj = bpf_object__open_file(path, NULL);
	else
		obj = bpf_object__open_mem(ferryd_bpf_obj, (size_t)(ferryd_bpf_obj_end - ferryd_bpf_obj), &oopts);
	err = (int)libbpf_get_error(obj);
	if (err) {
		obj = NULL;
		fprintf(stderr, "bpf_agree: opening %s: %s\n", path ? path : "the embedded object", strerror(-err));
		return err;
	}
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "bpf_agree: loading the object: %s\n", strerror(-err));
		return err;
	}
	prog = bpf_object__find_program_by_name(obj, "ferry_xdp");
	prog_fd = prog ? bpf_program__fd(prog) : -1;
	services_fd = bpf_object__find_map_fd_by_name(obj, "services");
	addrs_fd = bpf_object__find_map_fd_by_name(obj, "addrs");
	config_fd = bpf_object__find_map_fd_by_name(obj, "config");
	counters_fd = bpf_object__find_map_fd_by_name(obj, "counters");
	ncpus = libbpf_num_possible_cpus();
	if (prog_fd < 0 || services_fd < 0 || addrs_fd < 0 || config_fd < 0 || counters_fd < 0 || ncpus <= 0) {
		fprintf(stderr, "bpf_agree: the object lacks ferry_xdp or one of its maps\n");
		return -ENOENT;
	}
	return 0;
}

/* The maps as ferryd would fill them for a host this frame is addressed to (see the top). */
static int setup_for(const uint8_t *f, size_t len)
{
	static const uint8_t mac0[6] = {0x02, 0, 0, 0, 0, 1};
	struct ferry_xdp_config c;
	struct ferry_service_val sv = {.id = 1};
	struct ferry_addr_val av = {.flags = FERRY_ADDR_IFACE | FERRY_ADDR_LOCAL};
	struct ferry_service_key sk;
	struct ferry_addr_key ak;
	uint16_t proto = len >= FERRYD_ETH_HLEN ? be16(f + 12) : 0;
	size_t alen = 0, aoff = 0, poff = 0;
	__u32 zero = 0;

	if (have_last) {
		bpf_map_delete_elem(services_fd, &last_service);
		bpf_map_delete_elem(addrs_fd, &last_addr);
		have_last = false;
	}
	memset(&c, 0, sizeof(c));
	memcpy(c.mac, len >= 6 ? f : mac0, 6);
	c.max_frame = MAX_FRAME_STEERED;
	if (bpf_map_update_elem(config_fd, &zero, &c, BPF_ANY))
		return -errno;

	if (proto == 0x0800 && len >= FERRYD_ETH_HLEN + FERRYD_IP4_HLEN) {
		alen = 4;
		aoff = FERRYD_ETH_HLEN + 16;
		poff = FERRYD_ETH_HLEN + (size_t)(f[FERRYD_ETH_HLEN] & 0xf) * 4 + 2;
	} else if (proto == 0x86dd && len >= FERRYD_ETH_HLEN + FERRYD_IP6_HLEN) {
		alen = 16;
		aoff = FERRYD_ETH_HLEN + 24;
		poff = FERRYD_ETH_HLEN + FERRYD_IP6_HLEN + 2;
	}
	if (!alen)
		return 0;
	memset(&sk, 0, sizeof(sk));
	memset(&ak, 0, sizeof(ak));
	sk.family = ak.family = alen == 4 ? 4 : 6;
	memcpy(sk.addr, f + aoff, alen);
	memcpy(ak.addr, f + aoff, alen);
	if (poff + 2 <= len)
		memcpy(&sk.port, f + poff, 2);
	if (bpf_map_update_elem(services_fd, &sk, &sv, BPF_ANY) || bpf_map_update_elem(addrs_fd, &ak, &av, BPF_ANY))
		return -errno;
	last_service = sk;
	last_addr = ak;
	have_last = true;
	return 0;
}

static int read_counters(uint64_t *out)
{
	uint64_t v[ncpus];

	for (__u32 i = 0; i < FERRY_XDP_NCOUNTERS; i++) {
		if (bpf_map_lookup_elem(counters_fd, &i, v))
			return -errno;
		out[i] = 0;
		for (int c = 0; c < ncpus; c++)
			out[i] += v[c];
	}
	return 0;
}

static void disagree(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void disagree(const char *name, const char *fmt, ...)
{
	va_list ap;

	if (++disagreements > MAX_REPORTS)
		return;
	fprintf(stderr, "bpf_agree: DISAGREE %s: ", name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static bool ip4_header_sum_fails(const uint8_t *f, size_t len)
{
	uint32_t sum = 0;

	if (len < FERRYD_ETH_HLEN + FERRYD_IP4_HLEN)
		return false;
	for (size_t i = 0; i < FERRYD_IP4_HLEN; i += 2)
		sum += be16(f + FERRYD_ETH_HLEN + i);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum != 0xffff;
}

/* As the program judges a destination that no Ethernet peer sends to: ::, ::1, ::ffff:0:0/96. */
static bool ip6_dst_martian(const uint8_t *f, size_t len)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	const uint8_t *a = f + FERRYD_ETH_HLEN + 24;

	if (len < FERRYD_ETH_HLEN + FERRYD_IP6_HLEN || a[0] == 0xff)
		return false;
	for (int i = 0; i < 15; i++)
		if (a[i])
			return !memcmp(a, mapped, 12);
	return a[15] <= 1;
}

static bool reason_in(unsigned int r, const unsigned int *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == r)
			return true;
	return false;
}

#define IN(r, ...) reason_in(r, (const unsigned int[]){__VA_ARGS__}, sizeof((const unsigned int[]){__VA_ARGS__}) / sizeof(unsigned int))

/* A steered frame as the program saw it: its fixed layout, IPv4 without options or IPv6 then UDP. */
static void check_steered(const char *name, const uint8_t *f, size_t len, const struct ferryd_packet *p)
{
	bool v4 = be16(f + 12) == 0x0800;
	size_t ip = FERRYD_ETH_HLEN, udp = ip + (v4 ? FERRYD_IP4_HLEN : FERRYD_IP6_HLEN), alen = v4 ? 4 : 16;
	const uint8_t *src = f + ip + (v4 ? 12 : 8), *dst = src + alen;
	const void *psrc = v4 ? (const void *)&p->src.in4.sin_addr : (const void *)&p->src.in6.sin6_addr;
	const void *pdst = v4 ? (const void *)&p->dst.in4.sin_addr : (const void *)&p->dst.in6.sin6_addr;
	size_t ulen = be16(f + udp + 4);

	if (p->payload_off != udp + FERRYD_UDP_HLEN || p->payload_len != ulen - FERRYD_UDP_HLEN)
		disagree(name, "steered with payload [%zu, +%zu), parsed as [%zu, +%zu)", udp + FERRYD_UDP_HLEN,
			 ulen - FERRYD_UDP_HLEN, p->payload_off, p->payload_len);
	if (p->src.sa.sa_family != (v4 ? AF_INET : AF_INET6) || p->dst.sa.sa_family != p->src.sa.sa_family ||
	    memcmp(psrc, src, alen) || memcmp(pdst, dst, alen) || memcmp(&p->src.in4.sin_port, f + udp, 2) ||
	    memcmp(&p->dst.in4.sin_port, f + udp + 2, 2))
		disagree(name, "steered, but parsed to other addresses or ports");
	if (p->payload_off + p->payload_len > len)
		disagree(name, "parsed payload beyond the %zu-byte frame", len);
}

static int run_frame(const char *name, const uint8_t *f, size_t len)
{
	static uint8_t out[MAX_FRAME + 256];
	uint64_t before[FERRY_XDP_NCOUNTERS], after[FERRY_XDP_NCOUNTERS];
	LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = f, .data_size_in = (__u32)len, .data_out = out,
		    .data_size_out = sizeof(out), .repeat = 1);
	struct ferryd_packet p;
	unsigned int reason = FERRY_XDP_NCOUNTERS, moved = 0, res;
	int err, perr;

	frames++;
	memset(&p, 0, sizeof(p));
	perr = ferryd_packet_parse(f, len, 0, &p);
	res = perr == 0 ? P_ACCEPTS : perr == -EINVAL ? P_EINVAL : perr == -EPROTONOSUPPORT ? P_EPROTONOSUPPORT
	      : perr == -EOPNOTSUPP ? P_EOPNOTSUPP : P_NRESULTS;
	if (res == P_NRESULTS) {
		disagree(name, "the parser returned %d", perr);
		return 0;
	}
	err = setup_for(f, len);
	if (!err)
		err = read_counters(before);
	if (err) {
		fprintf(stderr, "bpf_agree: %s: setting up the maps: %s\n", name, strerror(-err));
		return err;
	}
	if (bpf_prog_test_run_opts(prog_fd, &t)) {
		err = -errno;
		if (err == -EINVAL && len < FERRYD_ETH_HLEN) {
			/* The kernel runs no program on less than an Ethernet header: nothing to steer. */
			refused_short++;
			if (perr != -EINVAL)
				disagree(name, "a %zu-byte frame: the parser returned %d", len, perr);
			return 0;
		}
		fprintf(stderr, "bpf_agree: %s: test run of a %zu-byte frame: %s\n", name, len, strerror(-err));
		return err;
	}
	err = read_counters(after);
	if (err) {
		fprintf(stderr, "bpf_agree: %s: reading the counters: %s\n", name, strerror(-err));
		return err;
	}
	for (unsigned int i = 0; i < FERRY_XDP_NCOUNTERS; i++) {
		if (after[i] == before[i])
			continue;
		moved += after[i] - before[i] == 1 ? 1 : 2;
		reason = i;
	}
	if (moved != 1) {
		disagree(name, "counters moved %u times (one counter by one expected)", moved);
		return 0;
	}
	matrix[res][reason]++;
	if (t.retval != XDP_PASS)
		disagree(name, "verdict %u (%s), XDP_PASS expected with no socket", t.retval,
			 ferryd_xdp_counter_name(reason));
	if (t.data_size_out != len || memcmp(out, f, len))
		disagree(name, "the program changed the frame (%u bytes out of %zu)", t.data_size_out, len);

	if (reason == FERRY_XDP_REDIRECTED || reason == FERRY_XDP_PASS_NO_SOCKET) {
		if (perr)
			disagree(name, "steered by the program, the parser returned %d", perr);
		else
			check_steered(name, f, len, &p);
		return 0;
	}
	switch (res) {
	case P_ACCEPTS:
		if (IN(reason, FERRY_XDP_PASS_NOT_IP, FERRY_XDP_PASS_VLAN, FERRY_XDP_PASS_MALFORMED,
		       FERRY_XDP_PASS_IP_OPTIONS, FERRY_XDP_PASS_IPV6_EXT, FERRY_XDP_PASS_FRAGMENT,
		       FERRY_XDP_PASS_NOT_UDP))
			disagree(name, "the parser accepts, the program passes it as %s", ferryd_xdp_counter_name(reason));
		break;
	case P_EPROTONOSUPPORT:
		if (!IN(reason, FERRY_XDP_PASS_NOT_IP, FERRY_XDP_PASS_VLAN, FERRY_XDP_PASS_IP_OPTIONS,
			FERRY_XDP_PASS_IPV6_EXT, FERRY_XDP_PASS_NOT_UDP))
			disagree(name, "the parser returned -EPROTONOSUPPORT, the program passes it as %s",
				 ferryd_xdp_counter_name(reason));
		break;
	case P_EOPNOTSUPP:
		if (reason != FERRY_XDP_PASS_FRAGMENT)
			disagree(name, "the parser returned -EOPNOTSUPP, the program passes it as %s",
				 ferryd_xdp_counter_name(reason));
		break;
	case P_EINVAL:
		if (reason == FERRY_XDP_PASS_MALFORMED)
			break;
		/* The program looks at fragments and the protocol before the IPv4 header sum. */
		if (be16(f + 12) == 0x0800 && ip4_header_sum_fails(f, len) &&
		    IN(reason, FERRY_XDP_PASS_FRAGMENT, FERRY_XDP_PASS_NOT_UDP, FERRY_XDP_PASS_CHECKSUM))
			break;
		/* ... and at an IPv6 destination before the UDP header. */
		if (be16(f + 12) == 0x86dd && ip6_dst_martian(f, len) && reason == FERRY_XDP_PASS_NOT_LOCAL)
			break;
		disagree(name, "the parser returned -EINVAL, the program passes it as %s", ferryd_xdp_counter_name(reason));
		break;
	}
	if (verbose)
		printf("%s: parser %s, program %s\n", name, result_names[res], ferryd_xdp_counter_name(reason));
	return 0;
}

static int run_file(const char *path)
{
	static uint8_t buf[MAX_FRAME + 1];
	FILE *f = fopen(path, "rb");
	char name[4200];
	size_t n;
	int err;

	if (!f) {
		fprintf(stderr, "bpf_agree: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (n > MAX_FRAME) {
		fprintf(stderr, "bpf_agree: %s: longer than %d bytes, skipped\n", path, MAX_FRAME);
		return 0;
	}
	err = run_frame(path, buf, n);
	if (!err && fuzz_fix_sums(buf, n)) {
		snprintf(name, sizeof(name), "%s (sums fixed)", path);
		fixed++;
		err = run_frame(name, buf, n);
	}
	return err;
}

static int run_path(const char *path)
{
	struct dirent **names;
	struct stat st;
	char sub[4096];
	int n, err = 0;

	if (stat(path, &st)) {
		fprintf(stderr, "bpf_agree: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode))
		return run_file(path);
	n = scandir(path, &names, NULL, alphasort);
	if (n < 0) {
		fprintf(stderr, "bpf_agree: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	for (int i = 0; i < n; i++) {
		snprintf(sub, sizeof(sub), "%s/%s", path, names[i]->d_name);
		if (!err && names[i]->d_name[0] != '.' && !stat(sub, &st) && S_ISREG(st.st_mode))
			err = run_file(sub);
		free(names[i]);
	}
	free(names);
	return err;
}

static void summary(void)
{
	printf("bpf_agree: %lu frames (%lu of them a file's copy with its sums fixed", frames, fixed);
	if (refused_short)
		printf("; %lu shorter than an Ethernet header: no program run", refused_short);
	printf(")\n");
	for (unsigned int r = 0; r < P_NRESULTS; r++) {
		bool any = false;

		for (unsigned int c = 0; c < FERRY_XDP_NCOUNTERS; c++) {
			if (!matrix[r][c])
				continue;
			if (!any)
				printf("  parser %-17s program:", result_names[r]);
			printf("%s %s %lu", any ? "," : "", ferryd_xdp_counter_name(c), matrix[r][c]);
			any = true;
		}
		if (any)
			printf("\n");
	}
}

int main(int argc, char **argv)
{
	const char *objpath = NULL;
	int i, err = 0;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-v"))
			verbose = true;
		else if (!strcmp(argv[i], "--obj") && i + 1 < argc)
			objpath = argv[++i];
		else
			break;
	}
	if (i == argc || argv[i][0] == '-') {
		fprintf(stderr, "usage: %s [--obj FILE] [-v] PATH...\n", argv[0]);
		return 2;
	}
	if (geteuid() != 0) {
		printf("bpf_agree: skipped: loading a BPF program needs root\n");
		return 77;
	}
	if (load(objpath)) {
		bpf_object__close(obj);
		return 2;
	}
	for (; i < argc && !err; i++)
		err = run_path(argv[i]);
	bpf_object__close(obj);
	if (err)
		return 2;
	summary();
	if (disagreements) {
		printf("bpf_agree: %lu disagreement%s (%s above)\n", disagreements, disagreements == 1 ? "" : "s",
		       disagreements > MAX_REPORTS ? "the first " STR(MAX_REPORTS) : "each");
		return 1;
	}
	printf("bpf_agree: the program and the parser agree on every frame\n");
	return 0;
}
