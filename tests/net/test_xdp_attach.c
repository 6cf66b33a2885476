/* SPDX-License-Identifier: MIT */
/*
 * ferryd's XDP program on a real (veth) interface: attach in native and skb
 * mode through libxdp, the kernel's own traffic unharmed, malformed frames
 * from the peer counted and passed, clean detach, the sweep of a dead
 * instance's program, and bpffs mounting.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <linux/magic.h>
#include <net/ethernet.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <criterion/criterion.h>
#include <xdp/xsk.h>

#include "../unit/bpf_frames.h"
#include "addrs.h"
#include "netns.h"
#include "prog.h"

#define SVC_PORT 7100
#define WAIT_MS 2000

static struct ferry_testns ns;
static struct ferryd_prog *prog;
static int orig_mnt_fd = -1;
static pid_t child = -1;

/* Our own mount namespace, so bpffs mounts stay inside this test. */
static void private_mounts(void)
{
	orig_mnt_fd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	cr_assert_geq(orig_mnt_fd, 0, "open our mount namespace: %s", strerror(errno));
	cr_assert_eq(unshare(CLONE_NEWNS), 0, "unshare(CLONE_NEWNS): %s", strerror(errno));
	cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0, "make / private: %s", strerror(errno));
}

static bool bpffs_mounted(void)
{
	struct statfs st;

	return !statfs("/sys/fs/bpf", &st) && st.f_type == BPF_FS_MAGIC;
}

/* Files (pins) under dir, recursively; directories themselves do not count. */
static int count_pins(const char *dir)
{
	char path[512];
	struct dirent *e;
	int n = 0;
	DIR *d = opendir(dir);

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		n += e->d_type == DT_DIR ? count_pins(path) : 1;
	}
	closedir(d);
	return n;
}

/* A bpffs of our own (the host's, if any, stays untouched outside this namespace). */
static void fresh_bpffs(void)
{
	if (bpffs_mounted())
		cr_assert_eq(umount2("/sys/fs/bpf", MNT_DETACH), 0, "unmount bpffs in our namespace");
	cr_assert_eq(ferryd_bpffs_ensure(), 0, "mount bpffs");
}

static void setup(void)
{
	int err;

	if (!ferry_test_is_root())
		cr_skip_test("XDP attach needs root and network namespaces");
	err = ferry_testns_setup(&ns);
	cr_assert_eq(err, 0, "namespace setup: %s", strerror(-err));
	private_mounts();
	cr_assert_eq(ferry_testns_enter(&ns, FERRY_TESTNS_HOST), 0, "enter the host namespace");
}

static void teardown(void)
{
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		child = -1;
	}
	ferryd_prog_detach(prog);
	prog = NULL;
	if (orig_mnt_fd >= 0) {
		setns(orig_mnt_fd, CLONE_NEWNS); /* so `ip netns del` runs where the namespaces were made */
		close(orig_mnt_fd);
		orig_mnt_fd = -1;
	}
	ferry_testns_teardown(&ns);
}

TestSuite(xdp_attach, .init = setup, .fini = teardown, .timeout = 60);

/* The XDP word `ip link` shows for fh0: "xdp" (native), "xdpgeneric" (skb), or "" when none. */
static void xdp_state(char *out, size_t len)
{
	char cmd[256], line[512], *tok, *save;
	FILE *f;

	out[0] = '\0';
	/* stderr: ip maps link-netnsids by opening every /run/netns entry, and
	 * complains about those other tests are creating or removing right now */
	snprintf(cmd, sizeof(cmd), "ip -n %s link show " FERRY_TESTNS_HOST_IF " 2>/dev/null", ns.host);
	f = popen(cmd, "r");
	cr_assert_not_null(f, "run ip link show");
	if (fgets(line, sizeof(line), f)) /* "3: fh0@if2: <...> mtu 1500 xdpgeneric qdisc ..." */
		for (tok = strtok_r(line, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
			if (!strncmp(tok, "xdp", 3))
				snprintf(out, len, "%s", tok);
	while (fgets(line, sizeof(line), f))
		;
	pclose(f);
}

static void counters(uint64_t *c)
{
	int err = ferryd_prog_counters(prog, c);

	cr_assert_eq(err, 0, "read XDP counters: %s", strerror(-err));
}

/* Waits (bounded) until counter which reaches base + n, then asserts it is exactly that. */
static void wait_counter(unsigned int which, uint64_t base, uint64_t n, const char *what)
{
	uint64_t c[FERRY_XDP_NCOUNTERS], deadline = ferry_test_now_ms() + WAIT_MS;

	do {
		counters(c);
		if (c[which] >= base + n)
			break;
		usleep(2000);
	} while (ferry_test_now_ms() < deadline);
	usleep(20000); /* anything extra would show now */
	counters(c);
	cr_assert_eq(c[which] - base, n, "%s: counter %s expected +%llu, got +%llu", what, ferryd_xdp_counter_name(which),
		     (unsigned long long)n, (unsigned long long)(c[which] - base));
}

static int peer_packet_socket(void)
{
	struct sockaddr_ll sll;
	int fd;

	cr_assert_eq(ferry_testns_enter(&ns, FERRY_TESTNS_PEER), 0, "enter the peer namespace");
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0, "AF_PACKET socket: %s", strerror(errno));
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_ifindex = (int)if_nametoindex(FERRY_TESTNS_PEER_IF);
	cr_assert_gt(sll.sll_ifindex, 0, "fp0 in the peer namespace");
	cr_assert_eq(bind(fd, (struct sockaddr *)&sll, sizeof(sll)), 0, "bind AF_PACKET to fp0: %s", strerror(errno));
	cr_assert_eq(ferry_testns_enter(&ns, FERRY_TESTNS_HOST), 0, "back to the host namespace");
	return fd;
}

/* Writes one frame from the peer and expects exactly one more of counter which on the host. */
static void inject(int pfd, struct ft_spec s, unsigned int which, const char *what)
{
	uint8_t f[FT_MAX];
	uint64_t c[FERRY_XDP_NCOUNTERS];
	size_t n;

	s.dmac = ns.host_mac;
	s.smac = ns.peer_mac;
	n = ft_build(&s, f);
	counters(c);
	cr_assert_eq(send(pfd, f, n, 0), (ssize_t)n, "%s: write %zu bytes on fp0: %s", what, n, strerror(errno));
	wait_counter(which, c[which], 1, what);
}

/* A socket of type in a side's namespace, bound to addr:port (port 0: not bound). */
static int side_socket_proto(enum ferry_testns_side side, int type, int family, int proto, uint16_t port)
{
	union ferry_sockaddr a;
	int fd, one = 1;

	cr_assert_eq(ferry_testns_enter(&ns, side), 0, "enter namespace");
	fd = socket(family, type | SOCK_CLOEXEC, proto);
	cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (port) {
		ferry_testns_addr(side, family, port, &a);
		cr_assert_eq(bind(fd, &a.sa, ferry_sockaddr_len(&a)), 0, "bind port %u: %s", port, strerror(errno));
	}
	cr_assert_eq(ferry_testns_enter(&ns, FERRY_TESTNS_HOST), 0, "back to the host namespace");
	return fd;
}

static void wait_readable(int fd, const char *what)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	cr_assert_eq(poll(&p, 1, WAIT_MS), 1, "%s: nothing arrived within %d ms", what, WAIT_MS);
}

static int side_socket(enum ferry_testns_side side, int type, int family, uint16_t port)
{
	return side_socket_proto(side, type, family, 0, port);
}

/* UDP from the peer to the host's port: the kernel delivers it. */
static void udp_through_kernel(int family, uint16_t port, unsigned int which, const char *what)
{
	int rx = side_socket(FERRY_TESTNS_HOST, SOCK_DGRAM, family, port);
	int tx = side_socket(FERRY_TESTNS_PEER, SOCK_DGRAM, family, 0);
	uint64_t c[FERRY_XDP_NCOUNTERS];
	union ferry_sockaddr dst;
	char buf[64];

	ferry_testns_addr(FERRY_TESTNS_HOST, family, port, &dst);
	counters(c);
	cr_assert_eq(sendto(tx, "ferry", 5, 0, &dst.sa, ferry_sockaddr_len(&dst)), 5, "%s: send: %s", what,
		     strerror(errno));
	wait_readable(rx, what);
	cr_assert_eq(recv(rx, buf, sizeof(buf), 0), 5, "%s: the kernel delivered the datagram", what);
	wait_counter(which, c[which], 1, what);
	close(rx);
	close(tx);
}

static void tcp_through_kernel(int family, uint16_t port)
{
	int lfd = side_socket(FERRY_TESTNS_HOST, SOCK_STREAM, family, port);
	int cfd = side_socket(FERRY_TESTNS_PEER, SOCK_STREAM, family, 0);
	union ferry_sockaddr dst;
	struct pollfd p;
	char buf[16];
	int afd;

	cr_assert_eq(listen(lfd, 4), 0, "listen");
	ferry_testns_addr(FERRY_TESTNS_HOST, family, port, &dst);
	fcntl(cfd, F_SETFL, O_NONBLOCK);
	cr_assert(connect(cfd, &dst.sa, ferry_sockaddr_len(&dst)) == 0 || errno == EINPROGRESS, "connect: %s",
		  strerror(errno));
	p = (struct pollfd){.fd = cfd, .events = POLLOUT};
	cr_assert_eq(poll(&p, 1, WAIT_MS), 1, "TCP (family %d) connected within %d ms", family, WAIT_MS);
	wait_readable(lfd, "TCP accept");
	afd = accept(lfd, NULL, NULL);
	cr_assert_geq(afd, 0, "accept: %s", strerror(errno));
	cr_assert_eq(send(cfd, "hello", 5, MSG_NOSIGNAL), 5, "TCP send");
	wait_readable(afd, "TCP data");
	cr_assert_eq(recv(afd, buf, sizeof(buf), 0), 5, "TCP data through the kernel");
	close(afd);
	close(cfd);
	close(lfd);
}

/* One ICMP echo from the peer to the host, answered by the host's kernel (no ping(8) here). */
static void echo(int family)
{
	int proto = family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
	int fd = side_socket_proto(FERRY_TESTNS_PEER, SOCK_RAW, family, proto, 0);
	uint8_t req[64], rep[256];
	uint16_t id = (uint16_t)getpid();
	union ferry_sockaddr dst;
	uint64_t deadline;
	bool answered = false;

	memset(req, 0, sizeof(req));
	req[0] = family == AF_INET ? 8 : 128; /* echo request */
	ft_put16(req + 4, id);
	ft_put16(req + 6, 1);
	memcpy(req + 8, "ferry-echo", 10);
	if (family == AF_INET)
		ft_put16(req + 2, (uint16_t)~ferry_test_sum16(0, req, 18)); /* ICMPv6: the kernel sums raw ICMPv6 itself */
	ferry_testns_addr(FERRY_TESTNS_HOST, family, 0, &dst);
	cr_assert_eq(sendto(fd, req, 18, 0, &dst.sa, ferry_sockaddr_len(&dst)), 18, "send echo request: %s",
		     strerror(errno));
	deadline = ferry_test_now_ms() + WAIT_MS;
	while (!answered && ferry_test_now_ms() < deadline) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		const uint8_t *icmp = rep;
		ssize_t n;

		if (poll(&p, 1, 100) != 1)
			continue;
		n = recv(fd, rep, sizeof(rep), 0);
		if (n <= 0)
			continue;
		if (family == AF_INET) { /* raw IPv4 sockets see the IP header */
			if ((size_t)n < 20 || (size_t)n < (size_t)(rep[0] & 0xf) * 4 + 8)
				continue;
			icmp = rep + (rep[0] & 0xf) * 4;
		}
		answered = icmp[0] == (family == AF_INET ? 0 : 129) && icmp[4] == (uint8_t)(id >> 8) &&
			   icmp[5] == (uint8_t)id;
	}
	close(fd);
	cr_assert(answered, "IPv%d echo from the peer answered within %d ms while attached", family == AF_INET ? 4 : 6,
		  WAIT_MS);
}

static void ping_works(void)
{
	echo(AF_INET);
	echo(AF_INET6);
}

static void attach(enum ferryd_xdp_mode mode)
{
	char why[256] = "";
	int err = ferryd_prog_attach(FERRY_TESTNS_HOST_IF, mode, &prog, why, sizeof(why));

	cr_assert_eq(err, 0, "attach in %s mode: %s (%s)", mode == FERRYD_XDP_SKB ? "skb" : "native", strerror(-err),
		     why);
	cr_log_info("attached: %s", ferryd_prog_describe(prog));
}

/* What ferryd tells the program before it steers anything: fh0's MAC, the frame size, the host's addresses. */
static void configure(void)
{
	struct ferryd_host_addr a[2] = {
		{.family = AF_INET, .prefixlen = 24, .usable = true},
		{.family = AF_INET6, .prefixlen = 64, .usable = true},
	};
	struct ferryd_addrset set;

	a[0].ifindex = a[1].ifindex = if_nametoindex(FERRY_TESTNS_HOST_IF);
	inet_pton(AF_INET, FERRY_TESTNS_HOST4, a[0].addr);
	inet_pton(AF_INET6, FERRY_TESTNS_HOST6, a[1].addr);
	cr_assert_eq(ferryd_addrset_build(&set, a, 2, a[0].ifindex), 0, "the address set");
	cr_assert_eq(ferryd_prog_set_config(prog, ns.host_mac, 4096 - 256), 0, "the program's interface facts");
	cr_assert_eq(ferryd_prog_set_addrs(prog, &set), 0, "the program's addresses");
	ferryd_addrset_free(&set);
}

static void add_services(void)
{
	struct ferryd_service s4 = {.name = "svc4", .id = 0}, s6 = {.name = "svc6", .id = 1};

	configure();
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, SVC_PORT, &s4.addr);
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET6, SVC_PORT, &s6.addr);
	cr_assert_eq(ferryd_prog_add_service(prog, &s4), 0, "add the IPv4 service");
	cr_assert_eq(ferryd_prog_add_service(prog, &s6), 0, "add the IPv6 service");
	cr_assert_eq(ferryd_prog_add_service(prog, &s4), 0, "adding the same service again is a no-op");
	s4.id = 7;
	cr_assert_eq(ferryd_prog_add_service(prog, &s4), -EEXIST, "another service on the same address is refused");
}

/* Everything a mode must survive, then a clean detach. */
static void exercise(enum ferryd_xdp_mode mode, const char *ip_word)
{
	char state[32];
	int pfd, pins = count_pins("/sys/fs/bpf"); /* a fresh bpffs has maps.debug, progs.debug */

	attach(mode);
	cr_assert(strstr(ferryd_prog_describe(prog), mode == FERRYD_XDP_SKB ? "skb mode" : "native mode"),
		  "describe names the mode: %s", ferryd_prog_describe(prog));
	cr_assert(strstr(ferryd_prog_describe(prog), "single program") ||
			  strstr(ferryd_prog_describe(prog), "libxdp dispatcher"),
		  "describe says whether the dispatcher is used: %s", ferryd_prog_describe(prog));
	xdp_state(state, sizeof(state));
	cr_assert_str_eq(state, ip_word, "ip link shows prog/%s on fh0, shows \"%s\"", ip_word, state);
	add_services();

	ping_works();
	tcp_through_kernel(AF_INET, 7101);
	tcp_through_kernel(AF_INET6, 7102);
	udp_through_kernel(AF_INET, 7103, FERRY_XDP_PASS_NO_SERVICE, "IPv4 UDP to another port");
	udp_through_kernel(AF_INET6, 7104, FERRY_XDP_PASS_NO_SERVICE, "IPv6 UDP to another port");
	/* matched, but no AF_XDP socket on the queue: the kernel still gets it */
	udp_through_kernel(AF_INET, SVC_PORT, FERRY_XDP_PASS_NO_SOCKET, "IPv4 UDP to the service, no socket");
	udp_through_kernel(AF_INET6, SVC_PORT, FERRY_XDP_PASS_NO_SOCKET, "IPv6 UDP to the service, no socket");

	pfd = peer_packet_socket();
	inject(pfd, (struct ft_spec){.family = 4, .dport = SVC_PORT, .cut = 14 + 10}, FERRY_XDP_PASS_MALFORMED,
	       "truncated IPv4 header");
	inject(pfd, (struct ft_spec){.family = 4, .dport = SVC_PORT, .ip_len_delta = -4, .cut = 14 + 24},
	       FERRY_XDP_PASS_MALFORMED, "truncated UDP header");
	inject(pfd, (struct ft_spec){.family = 4, .ihl_field = 4, .dport = SVC_PORT, .payload = 8},
	       FERRY_XDP_PASS_MALFORMED, "IHL 4");
	inject(pfd, (struct ft_spec){.family = 4, .ihl_field = 15, .dport = SVC_PORT, .payload = 8},
	       FERRY_XDP_PASS_MALFORMED, "IHL past the frame");
	inject(pfd, (struct ft_spec){.family = 4, .dport = SVC_PORT, .payload = 8, .ip_len_delta = 100},
	       FERRY_XDP_PASS_MALFORMED, "IP total length past the frame");
	inject(pfd, (struct ft_spec){.family = 4, .dport = SVC_PORT, .payload = 8, .udp_len_delta = 100},
	       FERRY_XDP_PASS_MALFORMED, "UDP length past the frame");
	inject(pfd, (struct ft_spec){.family = 6, .dport = SVC_PORT, .payload = 8, .udp_len_delta = 1},
	       FERRY_XDP_PASS_MALFORMED, "IPv6 UDP length past the frame");
	inject(pfd, (struct ft_spec){.family = 4, .dport = SVC_PORT, .frag_off = 0x2000, .payload = 16},
	       FERRY_XDP_PASS_FRAGMENT, "IPv4 first fragment");
	inject(pfd, (struct ft_spec){.family = 4, .dport = SVC_PORT, .frag_off = 100, .payload = 16},
	       FERRY_XDP_PASS_FRAGMENT, "IPv4 later fragment");
	inject(pfd, (struct ft_spec){.family = 6, .proto = 44, .dport = SVC_PORT, .payload = 16},
	       FERRY_XDP_PASS_FRAGMENT, "IPv6 fragment header");
	inject(pfd, (struct ft_spec){.family = 4, .vlan = {0x8100}, .dport = SVC_PORT, .payload = 8},
	       FERRY_XDP_PASS_VLAN, "802.1Q-tagged UDP to the service");
	inject(pfd, (struct ft_spec){.family = 6, .vlan = {0x88a8}, .dport = SVC_PORT, .payload = 8},
	       FERRY_XDP_PASS_VLAN, "802.1ad-tagged IPv6 UDP to the service");
	inject(pfd, (struct ft_spec){.family = 4, .vlan = {0x88a8, 0x8100}, .dport = SVC_PORT, .payload = 8},
	       FERRY_XDP_PASS_VLAN, "double-tagged UDP");
	inject(pfd, (struct ft_spec){.family = 4, .dport = SVC_PORT, .payload = 8}, FERRY_XDP_PASS_NO_SOCKET,
	       "an untagged, valid datagram to the service: matched");
	inject(pfd, (struct ft_spec){.family = 4, .dport = SVC_PORT, .payload = 8, .csum = FT_CSUM_BAD},
	       FERRY_XDP_PASS_CHECKSUM, "the same with a wrong checksum");
	close(pfd);
	ping_works(); /* nothing broke */

	ferryd_prog_detach(prog);
	prog = NULL;
	xdp_state(state, sizeof(state));
	cr_assert_str_eq(state, "", "nothing attached to fh0 after detach, ip link shows \"%s\"", state);
	/* this bpffs was mounted in our own mount namespace: all of it is ours */
	cr_assert_eq(count_pins("/sys/fs/bpf"), pins, "nothing left pinned in bpffs after detach");
}

Test(xdp_attach, native_mode)
{
	fresh_bpffs();
	exercise(FERRYD_XDP_NATIVE, "xdp");
}

Test(xdp_attach, skb_mode)
{
	fresh_bpffs();
	exercise(FERRYD_XDP_SKB, "xdpgeneric");
}

Test(xdp_attach, works_without_bpffs)
{
	char state[32];

	if (bpffs_mounted())
		cr_assert_eq(umount2("/sys/fs/bpf", MNT_DETACH), 0, "unmount bpffs in our namespace");
	cr_assert(!bpffs_mounted(), "no bpffs at /sys/fs/bpf");
	attach(FERRYD_XDP_NATIVE);
	cr_assert(strstr(ferryd_prog_describe(prog), "single program"), "no dispatcher without bpffs: %s",
		  ferryd_prog_describe(prog));
	ferryd_prog_detach(prog);
	prog = NULL;
	xdp_state(state, sizeof(state));
	cr_assert_str_eq(state, "", "nothing attached after detach");
}

Test(xdp_attach, second_attach_is_refused_with_a_reason)
{
	struct ferryd_prog *other = NULL;
	char why[256] = "";
	int err;

	fresh_bpffs();
	attach(FERRYD_XDP_NATIVE);
	err = ferryd_prog_attach(FERRY_TESTNS_HOST_IF, FERRYD_XDP_NATIVE, &other, why, sizeof(why));
	if (!err)
		/* a working dispatcher would take both; say so */
		cr_assert(strstr(ferryd_prog_describe(other), "dispatcher"), "two programs only behind a dispatcher");
	else
		cr_assert(strstr(why, "ferry_xdp"), "the reason names what is attached: %s", why);
	cr_log_info("second attach: %d %s", err, why);
	ferryd_prog_detach(other);
	cr_assert_eq(ferryd_prog_attach("ferry-nonexistent0", FERRYD_XDP_NATIVE, &other, why, sizeof(why)), -ENODEV,
		     "no such interface");
	cr_assert_null(other, "nothing returned on failure");
}

/* A child attaches and dies without cleaning up, like a SIGKILLed ferryd. */
static void dead_instance(enum ferryd_xdp_mode mode)
{
	int status;

	child = fork();
	cr_assert_geq(child, 0, "fork");
	if (child == 0) {
		struct ferryd_prog *p;
		char why[256];

		_exit(ferryd_prog_attach(FERRY_TESTNS_HOST_IF, mode, &p, why, sizeof(why)) ? 1 : 0);
	}
	cr_assert_eq(waitpid(child, &status, 0), child, "reap the child");
	child = -1;
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child attached");
}

Test(xdp_attach, sweep_removes_a_dead_instance)
{
	char state[32];
	int n;

	fresh_bpffs();
	cr_assert_eq(ferryd_prog_sweep(FERRY_TESTNS_HOST_IF, 0), 0, "nothing to sweep on a fresh interface");

	dead_instance(FERRYD_XDP_NATIVE);
	xdp_state(state, sizeof(state));
	cr_assert_str_eq(state, "xdp", "the dead instance's program stayed attached (native)");
	n = ferryd_prog_sweep(FERRY_TESTNS_HOST_IF, 0);
	cr_assert_eq(n, 1, "sweep removed one program, returned %d", n);
	xdp_state(state, sizeof(state));
	cr_assert_str_eq(state, "", "nothing attached after the sweep, ip link shows \"%s\"", state);

	dead_instance(FERRYD_XDP_SKB);
	xdp_state(state, sizeof(state));
	cr_assert_str_eq(state, "xdpgeneric", "the dead instance's program stayed attached (skb)");
	cr_assert_eq(ferryd_prog_sweep(FERRY_TESTNS_HOST_IF, 0), 1, "sweep removed the skb-mode program");
	xdp_state(state, sizeof(state));
	cr_assert_str_eq(state, "", "nothing attached after the second sweep");
	cr_assert_eq(ferryd_prog_sweep(FERRY_TESTNS_HOST_IF, 0), 0, "a second sweep finds nothing");

	/* and a new instance can attach again */
	attach(FERRYD_XDP_NATIVE);
}

Test(xdp_attach, sweep_leaves_other_programs_alone)
{
	struct bpf_insn pass[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS},
		{.code = BPF_JMP | BPF_EXIT},
	};
	LIBBPF_OPTS(bpf_prog_load_opts, lopts);
	char state[32];
	int fd, ifindex = (int)if_nametoindex(FERRY_TESTNS_HOST_IF);

	fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "other_xdp", "GPL", pass, 2, &lopts);
	cr_assert_geq(fd, 0, "load a foreign XDP program: %s", strerror(errno));
	cr_assert_eq(bpf_xdp_attach(ifindex, fd, XDP_FLAGS_DRV_MODE, NULL), 0, "attach it: %s", strerror(errno));
	cr_assert_eq(ferryd_prog_sweep(FERRY_TESTNS_HOST_IF, 0), 0, "sweep removes nothing that is not ours");
	xdp_state(state, sizeof(state));
	cr_assert_str_eq(state, "xdp", "the foreign program is still attached");
	cr_assert_eq(bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, NULL), 0, "detach the foreign program");
	close(fd);
	cr_assert_eq(ferryd_prog_sweep("ferry-nonexistent0", 0), -ENODEV, "sweep of a missing interface");
}

Test(xdp_attach, bpffs_ensure_mounts_once)
{
	char line[512];
	FILE *f;
	int mounts = 0;

	/* setns into a network namespace leaves the mount namespace as it was */
	if (bpffs_mounted())
		cr_assert_eq(umount2("/sys/fs/bpf", MNT_DETACH), 0, "unmount bpffs in our namespace");
	cr_assert(!bpffs_mounted(), "start without bpffs");
	cr_assert_eq(ferryd_bpffs_ensure(), 0, "mount bpffs");
	cr_assert(bpffs_mounted(), "bpffs at /sys/fs/bpf");
	cr_assert_eq(ferryd_bpffs_ensure(), 0, "a second call succeeds");
	f = fopen("/proc/self/mountinfo", "r");
	cr_assert_not_null(f, "mountinfo");
	while (fgets(line, sizeof(line), f))
		if (strstr(line, " /sys/fs/bpf ") && strstr(line, " - bpf "))
			mounts++;
	fclose(f);
	cr_assert_eq(mounts, 1, "bpffs mounted exactly once, found %d", mounts);
}

/* With an AF_XDP socket in the XSKMAP, a matched datagram is redirected to it. */
Test(xdp_attach, redirect_to_an_af_xdp_socket)
{
	struct xsk_socket_config cfg = {.rx_size = 64,
					.tx_size = 64,
					.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
					.bind_flags = XDP_COPY};
	const size_t nframes = 64, fsize = 4096;
	/* zeroed: libxdp leaves the rings' cached producer index as it finds it */
	struct xsk_ring_prod fill = {0};
	struct xsk_ring_cons comp = {0}, rx = {0};
	struct xsk_umem *umem = NULL;
	struct xsk_socket *xsk = NULL;
	uint64_t c[FERRY_XDP_NCOUNTERS];
	union ferry_sockaddr dst;
	struct pollfd p;
	uint32_t idx;
	void *area;
	int err, tx;

	fresh_bpffs();
	attach(FERRYD_XDP_NATIVE);
	add_services();
	area = mmap(NULL, nframes * fsize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(area, MAP_FAILED, "UMEM");
	err = xsk_umem__create(&umem, area, nframes * fsize, &fill, &comp, NULL);
	cr_assert_eq(err, 0, "xsk_umem__create: %s", strerror(-err));
	err = xsk_socket__create(&xsk, FERRY_TESTNS_HOST_IF, 0, umem, &rx, NULL, &cfg);
	cr_assert_eq(err, 0, "xsk_socket__create on fh0 queue 0: %s", strerror(-err));
	cr_assert_eq(xsk_ring_prod__reserve(&fill, 32, &idx), 32u, "fill ring");
	for (uint32_t i = 0; i < 32; i++)
		*xsk_ring_prod__fill_addr(&fill, idx + i) = i * fsize;
	xsk_ring_prod__submit(&fill, 32);
	cr_assert_eq(ferryd_prog_set_socket(prog, 0, xsk_socket__fd(xsk)), 0, "register the socket for queue 0");
	cr_assert_eq(ferryd_prog_set_socket(prog, FERRY_MAX_QUEUES, xsk_socket__fd(xsk)), -EINVAL, "queue range");

	tx = side_socket(FERRY_TESTNS_PEER, SOCK_DGRAM, AF_INET, 0);
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, SVC_PORT, &dst);
	counters(c);
	cr_assert_eq(sendto(tx, "ferry!", 6, 0, &dst.sa, ferry_sockaddr_len(&dst)), 6, "send to the service");
	p = (struct pollfd){.fd = xsk_socket__fd(xsk), .events = POLLIN};
	cr_assert_eq(poll(&p, 1, WAIT_MS), 1, "the datagram reached the AF_XDP socket");
	cr_assert_eq(xsk_ring_cons__peek(&rx, 1, &idx), 1u, "one frame on the RX ring");
	cr_assert_eq(xsk_ring_cons__rx_desc(&rx, idx)->len, 14u + 20 + 8 + 6, "the whole frame");
	xsk_ring_cons__release(&rx, 1);
	wait_counter(FERRY_XDP_REDIRECTED, c[FERRY_XDP_REDIRECTED], 1, "redirected to the socket");

	/* removed again: the kernel gets the next one */
	cr_assert_eq(ferryd_prog_set_socket(prog, 0, -1), 0, "remove the socket");
	cr_assert_eq(ferryd_prog_set_socket(prog, 0, -1), 0, "removing twice is fine");
	counters(c);
	cr_assert_eq(sendto(tx, "ferry!", 6, 0, &dst.sa, ferry_sockaddr_len(&dst)), 6, "send to the service");
	wait_counter(FERRY_XDP_PASS_NO_SOCKET, c[FERRY_XDP_PASS_NO_SOCKET], 1, "no socket on the queue");
	close(tx);
	xsk_socket__delete(xsk);
	xsk_umem__delete(umem);
	munmap(area, nframes * fsize);
}
