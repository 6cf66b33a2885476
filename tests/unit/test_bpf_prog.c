/* SPDX-License-Identifier: MIT */
/*
 * The XDP program, loaded (not attached) from the object embedded in ferryd
 * and run on hand-built frames with BPF_PROG_TEST_RUN: the verdict, and that
 * exactly the right counter moved by exactly one.
 */
#include <errno.h>
#include <linux/bpf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <criterion/criterion.h>

#include "bpf_frames.h"
#include "ferry_maps.h"
#include "netns.h"
#include "prog.h"

extern const char ferryd_bpf_obj[];
extern const char ferryd_bpf_obj_end[];

static struct bpf_object *obj;
static int prog_fd = -1, services_fd = -1, counters_fd = -1, addrs_fd = -1, config_fd = -1;
static int ncpus;

static void set_config(const uint8_t mac[6], unsigned int max_frame)
{
	struct ferry_xdp_config c;
	__u32 zero = 0;

	memset(&c, 0, sizeof(c));
	memcpy(c.mac, mac, 6);
	c.max_frame = (__u16)max_frame;
	cr_assert_eq(bpf_map_update_elem(config_fd, &zero, &c, BPF_ANY), 0, "setting the config: %s", strerror(errno));
}

static void set_addr(int family, const char *addr, uint32_t flags)
{
	struct ferry_addr_key k;
	struct ferry_addr_val v = {.flags = flags};

	memset(&k, 0, sizeof(k));
	k.family = (uint8_t)family;
	cr_assert_eq(inet_pton(family == 4 ? AF_INET : AF_INET6, addr, k.addr), 1, "bad test address %s", addr);
	if (flags)
		cr_assert_eq(bpf_map_update_elem(addrs_fd, &k, &v, BPF_ANY), 0, "adding address %s", addr);
	else
		cr_assert_eq(bpf_map_delete_elem(addrs_fd, &k), 0, "removing address %s", addr);
}

static void add_service(int family, const char *addr, uint16_t port, uint32_t id)
{
	struct ferry_service_key k;
	struct ferry_service_val v = {.id = id};

	memset(&k, 0, sizeof(k));
	k.family = (uint8_t)family;
	k.port = htons(port);
	if (addr)
		cr_assert_eq(inet_pton(family == 4 ? AF_INET : AF_INET6, addr, k.addr), 1, "bad test address %s", addr);
	cr_assert_eq(bpf_map_update_elem(services_fd, &k, &v, BPF_NOEXIST), 0, "adding service %s:%u: %s",
		     addr ? addr : "*", port, strerror(errno));
}

static int silent(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN)
		vfprintf(stderr, fmt, ap);
	return 0;
}

static void setup(void)
{
	LIBBPF_OPTS(bpf_object_open_opts, oopts, .object_name = "ferry");
	struct bpf_program *prog;
	int err;

	if (!ferry_test_is_root())
		cr_skip_test("loading a BPF program needs root");
	libbpf_set_print(silent);
	obj = bpf_object__open_mem(ferryd_bpf_obj, (size_t)(ferryd_bpf_obj_end - ferryd_bpf_obj), &oopts);
	err = (int)libbpf_get_error(obj);
	cr_assert_eq(err, 0, "open the embedded object: %s", strerror(-err));
	err = bpf_object__load(obj);
	cr_assert_eq(err, 0, "the verifier should accept ferry_xdp: %s", strerror(-err));
	prog = bpf_object__find_program_by_name(obj, "ferry_xdp");
	cr_assert_not_null(prog, "program ferry_xdp in the object");
	cr_assert_eq(bpf_program__type(prog), BPF_PROG_TYPE_XDP, "section xdp.frags makes an XDP program");
	cr_assert_str_eq(bpf_program__section_name(prog), "xdp.frags",
			 "the program takes multi-buffer frames (jumbo MTUs): section xdp.frags");
	prog_fd = bpf_program__fd(prog);
	services_fd = bpf_object__find_map_fd_by_name(obj, "services");
	counters_fd = bpf_object__find_map_fd_by_name(obj, "counters");
	addrs_fd = bpf_object__find_map_fd_by_name(obj, "addrs");
	config_fd = bpf_object__find_map_fd_by_name(obj, "config");
	cr_assert(prog_fd >= 0 && services_fd >= 0 && counters_fd >= 0 && addrs_fd >= 0 && config_fd >= 0,
		  "program and maps have fds");
	cr_assert(bpf_object__find_map_fd_by_name(obj, "xsks") >= 0, "xsks map exists");
	ncpus = libbpf_num_possible_cpus();
	cr_assert_gt(ncpus, 0, "possible CPUs");

	add_service(4, "198.18.0.1", 7001, 1);	 /* exact IPv4 */
	add_service(4, NULL, 7002, 2);		 /* wildcard IPv4 */
	add_service(6, "2001:2::1", 7003, 3);	 /* exact IPv6 */
	add_service(6, NULL, 7004, 4);		 /* wildcard IPv6 */
	add_service(4, "198.18.0.1", 7005, 5);	 /* exact and wildcard on one port: */
	add_service(4, NULL, 7005, 6);		 /* the exact one wins (not visible here, both match) */
	add_service(4, "239.1.2.3", 7006, 7);	 /* a group */
	add_service(6, "ff05::1:3", 7007, 8);	 /* an IPv6 group */

	/* What ferryd tells the program: the interface (MAC, frame size) and the host's addresses. */
	set_config(ft_host_mac, 4096 - 256);
	set_addr(4, "198.18.0.1", FERRY_ADDR_IFACE | FERRY_ADDR_LOCAL);
	set_addr(4, "198.18.0.255", FERRY_ADDR_BCAST);
	set_addr(4, "198.18.9.1", FERRY_ADDR_LOCAL); /* another interface's */
	set_addr(6, "2001:2::1", FERRY_ADDR_IFACE | FERRY_ADDR_LOCAL);
	set_addr(6, "2001:2::9", FERRY_ADDR_LOCAL);
}

static void teardown(void)
{
	bpf_object__close(obj);
	obj = NULL;
}

static void read_counters(uint64_t out[FERRY_XDP_NCOUNTERS])
{
	uint64_t *v = calloc((size_t)ncpus, sizeof(*v));

	cr_assert_not_null(v);
	for (uint32_t i = 0; i < FERRY_XDP_NCOUNTERS; i++) {
		cr_assert_eq(bpf_map_lookup_elem(counters_fd, &i, v), 0, "read counter %u", i);
		out[i] = 0;
		for (int c = 0; c < ncpus; c++)
			out[i] += v[c];
	}
	free(v);
}

/* Runs one frame; asserts the verdict, an untouched frame and the one counter that moved. */
static void expect(const uint8_t *frame, size_t len, int verdict, unsigned int counter, const char *what)
{
	uint8_t out[FT_MAX + 64];
	uint64_t before[FERRY_XDP_NCOUNTERS], after[FERRY_XDP_NCOUNTERS];
	LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = frame, .data_size_in = (uint32_t)len, .data_out = out,
		    .data_size_out = sizeof(out), .repeat = 1);
	int err;

	read_counters(before);
	err = bpf_prog_test_run_opts(prog_fd, &t);
	cr_assert_eq(err, 0, "%s: test run of a %zu-byte frame: %s", what, len, strerror(errno));
	cr_assert_eq(t.retval, (uint32_t)verdict, "%s: expected verdict %d, got %u", what, verdict, t.retval);
	cr_assert_eq(t.data_size_out, len, "%s: frame length unchanged (%zu), got %u", what, len, t.data_size_out);
	cr_assert(!memcmp(out, frame, len), "%s: frame bytes unchanged", what);
	read_counters(after);
	for (unsigned int i = 0; i < FERRY_XDP_NCOUNTERS; i++)
		cr_assert_eq(after[i] - before[i], i == counter ? 1u : 0u,
			     "%s: counter %s expected to move by %u, moved by %llu", what, ferryd_xdp_counter_name(i),
			     i == counter ? 1u : 0u, (unsigned long long)(after[i] - before[i]));
}

static void expect_spec(const struct ft_spec *s, int verdict, unsigned int counter, const char *what)
{
	uint8_t f[FT_MAX];
	size_t n = ft_build(s, f);

	expect(f, n, verdict, counter, what);
}

#define MATCH FERRY_XDP_PASS_NO_SOCKET /* a match without a socket on the queue passes */

TestSuite(bpf_prog, .init = setup, .fini = teardown);

/* ---- matches: bpf_redirect_map finds no socket in test_run and returns XDP_PASS ---- */

Test(bpf_prog, ipv4_exact_service_matches)
{
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .payload = 32}, XDP_PASS, MATCH, "IPv4 exact");
}

Test(bpf_prog, ipv4_wildcard_service_matches_the_interface_addresses_only)
{
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7002, .payload = 5}, XDP_PASS, MATCH,
		    "IPv4 wildcard, the interface's address");
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7002}, XDP_PASS, MATCH, "IPv4 wildcard, empty datagram");
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7005}, XDP_PASS, MATCH, "IPv4 exact + wildcard port");
	expect_spec(&(struct ft_spec){.family = 4, .dst = "198.18.0.77", .dport = 7002, .payload = 5}, XDP_PASS,
		    FERRY_XDP_PASS_NOT_LOCAL, "IPv4 wildcard, an address the host does not have");
	expect_spec(&(struct ft_spec){.family = 4, .dst = "198.18.9.1", .dport = 7002, .payload = 5}, XDP_PASS,
		    FERRY_XDP_PASS_NOT_LOCAL, "IPv4 wildcard, another interface's address");
	expect_spec(&(struct ft_spec){.family = 4, .dst = "198.18.0.255", .dport = 7002, .payload = 5}, XDP_PASS,
		    FERRY_XDP_PASS_NOT_LOCAL, "IPv4 wildcard, the subnet's broadcast");
	expect_spec(&(struct ft_spec){.family = 4, .dst = "255.255.255.255", .dport = 7002}, XDP_PASS,
		    FERRY_XDP_PASS_NOT_LOCAL, "IPv4 wildcard, limited broadcast");
	expect_spec(&(struct ft_spec){.family = 4, .dst = "239.9.9.9", .dport = 7002}, XDP_PASS,
		    FERRY_XDP_PASS_NO_SERVICE, "IPv4 wildcard, a group no service joined");
}

Test(bpf_prog, ipv6_exact_service_matches)
{
	expect_spec(&(struct ft_spec){.family = 6, .dport = 7003, .payload = 100}, XDP_PASS, MATCH, "IPv6 exact");
}

Test(bpf_prog, ipv6_wildcard_service_matches_the_interface_addresses_only)
{
	expect_spec(&(struct ft_spec){.family = 6, .dport = 7004, .payload = 1}, XDP_PASS, MATCH, "IPv6 wildcard");
	expect_spec(&(struct ft_spec){.family = 6, .dst = "2001:2::99", .dport = 7004, .payload = 1}, XDP_PASS,
		    FERRY_XDP_PASS_NOT_LOCAL, "IPv6 wildcard, an address the host does not have");
	expect_spec(&(struct ft_spec){.family = 6, .dst = "::1", .dport = 7004, .payload = 1}, XDP_PASS,
		    FERRY_XDP_PASS_NOT_LOCAL, "IPv6 wildcard, loopback on the wire");
}

Test(bpf_prog, address_removed_from_the_interface_passes)
{
	set_addr(4, "198.18.0.1", 0);
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .payload = 4}, XDP_PASS, FERRY_XDP_PASS_NOT_LOCAL,
		    "exact service whose address is gone");
	set_addr(4, "198.18.0.1", FERRY_ADDR_IFACE | FERRY_ADDR_LOCAL);
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .payload = 4}, XDP_PASS, MATCH, "and back");
}

Test(bpf_prog, nothing_is_steered_before_ferryd_configures_the_program)
{
	set_config((const uint8_t[6]){0}, 0);
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .payload = 4}, XDP_PASS, FERRY_XDP_PASS_NOT_LOCAL,
		    "no config");
}

Test(bpf_prog, other_hosts_frames_pass)
{
	static const uint8_t other[6] = {0x02, 0, 0, 0, 0, 9}, bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
			     mcast[6] = {0x01, 0x00, 0x5e, 0, 0, 1};

	expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .payload = 4, .dmac = other}, XDP_PASS,
		    FERRY_XDP_PASS_OTHER_HOST, "IPv4 to another host's MAC");
	expect_spec(&(struct ft_spec){.family = 6, .dport = 7003, .payload = 4, .dmac = other}, XDP_PASS,
		    FERRY_XDP_PASS_OTHER_HOST, "IPv6 to another host's MAC");
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .payload = 4, .dmac = bcast}, XDP_PASS,
		    FERRY_XDP_PASS_OTHER_HOST, "unicast IP in a broadcast frame: the kernel's to judge");
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .payload = 4, .dmac = mcast}, XDP_PASS,
		    FERRY_XDP_PASS_OTHER_HOST, "unicast IP in a multicast frame");
}

Test(bpf_prog, groups_match_with_their_own_mac)
{
	static const uint8_t g4[6] = {0x01, 0x00, 0x5e, 0x01, 0x02, 0x03}, g6[6] = {0x33, 0x33, 0x00, 0x01, 0x00, 0x03},
			     wrong[6] = {0x01, 0x00, 0x5e, 0x01, 0x02, 0x04};

	expect_spec(&(struct ft_spec){.family = 4, .dst = "239.1.2.3", .dport = 7006, .payload = 4, .dmac = g4},
		    XDP_PASS, MATCH, "IPv4 group");
	expect_spec(&(struct ft_spec){.family = 4, .dst = "239.129.2.3", .dport = 7006, .payload = 4, .dmac = g4},
		    XDP_PASS, FERRY_XDP_PASS_NO_SERVICE, "another group on the same MAC");
	expect_spec(&(struct ft_spec){.family = 4, .dst = "239.1.2.3", .dport = 7006, .payload = 4, .dmac = wrong},
		    XDP_PASS, FERRY_XDP_PASS_OTHER_HOST, "IPv4 group in another group's frame");
	expect_spec(&(struct ft_spec){.family = 4, .dst = "239.1.2.3", .dport = 7006, .payload = 4}, XDP_PASS,
		    FERRY_XDP_PASS_OTHER_HOST, "IPv4 group in a unicast frame: the kernel's to judge");
	expect_spec(&(struct ft_spec){.family = 6, .dst = "ff05::1:3", .dport = 7007, .payload = 4, .dmac = g6},
		    XDP_PASS, MATCH, "IPv6 group");
	expect_spec(&(struct ft_spec){.family = 4, .dst = "239.1.2.3", .dport = 7002, .payload = 4, .dmac = g4},
		    XDP_PASS, FERRY_XDP_PASS_NO_SERVICE, "a group on a wildcard service's port");
}

Test(bpf_prog, martian_sources_pass)
{
	static const char *const v4[] = {"0.0.0.0",	  "0.1.2.3",	  "127.0.0.1",	  "224.0.0.1",
					 "239.1.2.3",	  "255.255.255.255", "198.18.0.255", "198.18.0.1",
					 "198.18.9.1",	  "240.0.0.1"};
	static const char *const v6[] = {"::", "::1", "ff02::1", "::ffff:198.18.0.2", "2001:2::1", "2001:2::9"};

	for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++)
		expect_spec(&(struct ft_spec){.family = 4, .src = v4[i], .dport = 7001, .payload = 4}, XDP_PASS,
			    FERRY_XDP_PASS_BAD_SOURCE, v4[i]);
	for (size_t i = 0; i < sizeof(v6) / sizeof(v6[0]); i++)
		expect_spec(&(struct ft_spec){.family = 6, .src = v6[i], .dport = 7003, .payload = 4}, XDP_PASS,
			    FERRY_XDP_PASS_BAD_SOURCE, v6[i]);
	expect_spec(&(struct ft_spec){.family = 6, .src = "fe80::2", .dport = 7003, .payload = 4}, XDP_PASS, MATCH,
		    "a link-local peer is a peer");
}

Test(bpf_prog, source_port_zero_passes)
{
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .payload = 4, .sport_set = 1}, XDP_PASS,
		    FERRY_XDP_PASS_SOURCE_PORT, "IPv4 from port 0");
	expect_spec(&(struct ft_spec){.family = 6, .dport = 7003, .payload = 4, .sport_set = 1}, XDP_PASS,
		    FERRY_XDP_PASS_SOURCE_PORT, "IPv6 from port 0");
}

Test(bpf_prog, checksums_that_fail_pass)
{
	uint8_t f[FT_MAX];
	size_t n = ft_build(&(struct ft_spec){.family = 4, .dport = 7001, .payload = 20}, f);

	expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .payload = 20, .csum = FT_CSUM_BAD}, XDP_PASS,
		    FERRY_XDP_PASS_CHECKSUM, "IPv4, wrong UDP checksum");
	expect_spec(&(struct ft_spec){.family = 6, .dport = 7003, .payload = 21, .csum = FT_CSUM_BAD}, XDP_PASS,
		    FERRY_XDP_PASS_CHECKSUM, "IPv6, wrong UDP checksum");
	expect_spec(&(struct ft_spec){.family = 6, .dport = 7003, .payload = 21, .csum = FT_CSUM_ZERO}, XDP_PASS,
		    FERRY_XDP_PASS_CHECKSUM, "IPv6, no UDP checksum (forbidden)");
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .payload = 21, .csum = FT_CSUM_ZERO}, XDP_PASS, MATCH,
		    "IPv4, no UDP checksum (allowed)");
	f[14 + 10] ^= 0x40; /* the IPv4 header checksum */
	expect(f, n, XDP_PASS, FERRY_XDP_PASS_CHECKSUM, "IPv4, wrong header checksum");
	f[14 + 10] ^= 0x40;
	f[n - 1] ^= 0x01; /* the payload */
	expect(f, n, XDP_PASS, FERRY_XDP_PASS_CHECKSUM, "IPv4, payload changed after the checksum");
}

Test(bpf_prog, checksums_verify_at_every_length)
{
	/* Every piece size the program sums with: odd tails, 2-byte tails, each power of two. */
	for (unsigned int len = 0; len <= 1472; len += len < 80 ? 1 : 37) {
		char what[64];

		snprintf(what, sizeof(what), "IPv4 payload of %u bytes", len);
		expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .payload = len}, XDP_PASS, MATCH, what);
		snprintf(what, sizeof(what), "IPv6 payload of %u bytes", len);
		expect_spec(&(struct ft_spec){.family = 6, .dport = 7003, .payload = len}, XDP_PASS, MATCH, what);
		snprintf(what, sizeof(what), "IPv6 payload of %u bytes, one bit off", len);
		expect_spec(&(struct ft_spec){.family = 6, .dport = 7003, .payload = len, .csum = FT_CSUM_BAD}, XDP_PASS,
			    FERRY_XDP_PASS_CHECKSUM, what);
	}
}

Test(bpf_prog, frames_larger_than_a_socket_frame_pass)
{
	set_config(ft_host_mac, 14 + 20 + 8 + 100);
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .payload = 100}, XDP_PASS, MATCH, "exactly the limit");
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .payload = 101}, XDP_PASS, FERRY_XDP_PASS_TOO_BIG,
		    "one byte over");
}

Test(bpf_prog, vlan_tagged_frames_pass)
{
	expect_spec(&(struct ft_spec){.family = 4, .vlan = {0x8100}, .dport = 7001, .payload = 8}, XDP_PASS,
		    FERRY_XDP_PASS_VLAN, "802.1Q IPv4");
	expect_spec(&(struct ft_spec){.family = 6, .vlan = {0x88a8}, .dport = 7003, .payload = 8}, XDP_PASS,
		    FERRY_XDP_PASS_VLAN, "802.1ad IPv6");
	expect_spec(&(struct ft_spec){.family = 4, .vlan = {0x88a8, 0x8100}, .dport = 7001}, XDP_PASS,
		    FERRY_XDP_PASS_VLAN, "QinQ IPv4");
}

Test(bpf_prog, ipv4_options_pass)
{
	expect_spec(&(struct ft_spec){.family = 4, .ihl = 6, .dport = 7001, .payload = 10}, XDP_PASS,
		    FERRY_XDP_PASS_IP_OPTIONS, "IHL 6");
	expect_spec(&(struct ft_spec){.family = 4, .ihl = 15, .dport = 7001, .payload = 10}, XDP_PASS,
		    FERRY_XDP_PASS_IP_OPTIONS, "IHL 15 (60-byte header)");
}

Test(bpf_prog, ethernet_padding_is_allowed)
{
	/* A minimum-size frame: 60 bytes, the IP datagram shorter. */
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .payload = 2, .pad_to = 60}, XDP_PASS, MATCH,
		    "padded IPv4");
	expect_spec(&(struct ft_spec){.family = 6, .dport = 7003, .payload = 0, .pad_to = 80}, XDP_PASS, MATCH,
		    "padded IPv6");
}

/* ---- UDP to no service ---- */

Test(bpf_prog, other_port_passes)
{
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7999, .payload = 4}, XDP_PASS, FERRY_XDP_PASS_NO_SERVICE,
		    "IPv4 other port");
	expect_spec(&(struct ft_spec){.family = 6, .dport = 7999, .payload = 4}, XDP_PASS, FERRY_XDP_PASS_NO_SERVICE,
		    "IPv6 other port");
}

Test(bpf_prog, other_address_passes)
{
	expect_spec(&(struct ft_spec){.family = 4, .dst = "198.18.0.5", .dport = 7001}, XDP_PASS,
		    FERRY_XDP_PASS_NO_SERVICE, "IPv4 exact service, other address");
	expect_spec(&(struct ft_spec){.family = 6, .dst = "2001:2::5", .dport = 7003}, XDP_PASS,
		    FERRY_XDP_PASS_NO_SERVICE, "IPv6 exact service, other address");
}

Test(bpf_prog, services_are_per_family)
{
	expect_spec(&(struct ft_spec){.family = 6, .dport = 7001}, XDP_PASS, FERRY_XDP_PASS_NO_SERVICE,
		    "IPv6 to an IPv4 service's port");
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7004}, XDP_PASS, FERRY_XDP_PASS_NO_SERVICE,
		    "IPv4 to an IPv6 wildcard's port");
}

/* ---- not UDP, not IP ---- */

Test(bpf_prog, tcp_passes)
{
	expect_spec(&(struct ft_spec){.family = 4, .proto = 6, .dport = 7001, .l4_len = 20}, XDP_PASS,
		    FERRY_XDP_PASS_NOT_UDP, "IPv4 TCP to a service port");
	expect_spec(&(struct ft_spec){.family = 6, .proto = 6, .dport = 7003, .l4_len = 20}, XDP_PASS,
		    FERRY_XDP_PASS_NOT_UDP, "IPv6 TCP to a service port");
}

Test(bpf_prog, icmp_passes)
{
	expect_spec(&(struct ft_spec){.family = 4, .proto = 1, .payload = 56}, XDP_PASS, FERRY_XDP_PASS_NOT_UDP,
		    "ICMP echo");
}

Test(bpf_prog, arp_passes)
{
	expect_spec(&(struct ft_spec){.ethertype = 0x0806, .l4_len = 28}, XDP_PASS, FERRY_XDP_PASS_NOT_IP, "ARP");
}

Test(bpf_prog, ipv6_neighbour_discovery_passes)
{
	expect_spec(&(struct ft_spec){.family = 6, .dst = "ff02::1:ff00:1", .proto = 58, .l4_len = 24}, XDP_PASS,
		    FERRY_XDP_PASS_NOT_UDP, "ICMPv6 neighbour solicitation");
}

Test(bpf_prog, ipv6_extension_headers_pass)
{
	/* Hop-by-hop, routing, destination options, ...: the kernel's to process. */
	expect_spec(&(struct ft_spec){.family = 6, .proto = 0, .proto_set = 1, .l4_len = 8, .dport = 7003}, XDP_PASS,
		    FERRY_XDP_PASS_IPV6_EXT, "hop-by-hop options header");
	expect_spec(&(struct ft_spec){.family = 6, .proto = 43, .l4_len = 16, .dport = 7003}, XDP_PASS,
		    FERRY_XDP_PASS_IPV6_EXT, "routing header");
	expect_spec(&(struct ft_spec){.family = 6, .proto = 60, .l4_len = 16, .dport = 7003}, XDP_PASS,
		    FERRY_XDP_PASS_IPV6_EXT, "destination options header");
	expect_spec(&(struct ft_spec){.family = 6, .proto = 51, .l4_len = 16, .dport = 7003}, XDP_PASS,
		    FERRY_XDP_PASS_IPV6_EXT, "authentication header");
}

/* ---- fragments ---- */

Test(bpf_prog, ipv4_fragments_pass)
{
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .frag_off = 0x2000, .payload = 16}, XDP_PASS,
		    FERRY_XDP_PASS_FRAGMENT, "first fragment (MF)");
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .frag_off = 185, .payload = 16}, XDP_PASS,
		    FERRY_XDP_PASS_FRAGMENT, "last fragment (offset)");
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .frag_off = 0x2000 | 3, .payload = 16}, XDP_PASS,
		    FERRY_XDP_PASS_FRAGMENT, "middle fragment");
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .frag_off = 0x4000, .payload = 16}, XDP_PASS, MATCH,
		    "DF is not a fragment");
}

Test(bpf_prog, ipv6_fragment_header_passes)
{
	expect_spec(&(struct ft_spec){.family = 6, .proto = 44, .dport = 7003, .payload = 16}, XDP_PASS,
		    FERRY_XDP_PASS_FRAGMENT, "IPv6 fragment header");
}

/* ---- malformed ---- */

Test(bpf_prog, truncated_ip_headers_pass)
{
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .cut = 14 + 10}, XDP_PASS, FERRY_XDP_PASS_MALFORMED,
		    "10 bytes of IPv4 header");
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .cut = 14}, XDP_PASS, FERRY_XDP_PASS_MALFORMED,
		    "IPv4 ethertype, no header");
	expect_spec(&(struct ft_spec){.family = 6, .dport = 7003, .cut = 14 + 39}, XDP_PASS, FERRY_XDP_PASS_MALFORMED,
		    "39 bytes of IPv6 header");
}

Test(bpf_prog, truncated_udp_header_passes)
{
	/* The IP length agrees with the cut frame: only the UDP header is short. */
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .ip_len_delta = -4, .cut = 14 + 20 + 4}, XDP_PASS,
		    FERRY_XDP_PASS_MALFORMED, "IPv4, 4 bytes of UDP header");
	expect_spec(&(struct ft_spec){.family = 6, .dport = 7003, .ip_len_delta = -2, .cut = 14 + 40 + 6}, XDP_PASS,
		    FERRY_XDP_PASS_MALFORMED, "IPv6, 6 bytes of UDP header");
}

Test(bpf_prog, bad_ihl_passes)
{
	expect_spec(&(struct ft_spec){.family = 4, .ihl_field = 4, .dport = 7001, .payload = 8}, XDP_PASS,
		    FERRY_XDP_PASS_MALFORMED, "IHL 4");
	expect_spec(&(struct ft_spec){.family = 4, .ihl_field = 15, .dport = 7001, .payload = 8}, XDP_PASS,
		    FERRY_XDP_PASS_MALFORMED, "IHL 15 past the end of a 50-byte frame");
	expect_spec(&(struct ft_spec){.family = 4, .ihl_field = 1, .dport = 7001, .payload = 8}, XDP_PASS,
		    FERRY_XDP_PASS_MALFORMED, "IHL 1");
}

Test(bpf_prog, wrong_ip_version_passes)
{
	expect_spec(&(struct ft_spec){.family = 4, .version = 6, .dport = 7001}, XDP_PASS, FERRY_XDP_PASS_MALFORMED,
		    "version 6 in an IPv4 ethertype");
	expect_spec(&(struct ft_spec){.family = 6, .version = 4, .dport = 7003}, XDP_PASS, FERRY_XDP_PASS_MALFORMED,
		    "version 4 in an IPv6 ethertype");
}

Test(bpf_prog, ip_length_larger_than_frame_passes)
{
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .payload = 10, .ip_len_delta = 1}, XDP_PASS,
		    FERRY_XDP_PASS_MALFORMED, "IPv4 total length one past the frame");
	expect_spec(&(struct ft_spec){.family = 6, .dport = 7003, .payload = 10, .ip_len_delta = 1}, XDP_PASS,
		    FERRY_XDP_PASS_MALFORMED, "IPv6 payload length one past the frame");
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .payload = 10, .ip_len_delta = -31}, XDP_PASS,
		    FERRY_XDP_PASS_MALFORMED, "IPv4 total length shorter than its header");
}

Test(bpf_prog, udp_length_inconsistent_passes)
{
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .payload = 10, .udp_len_delta = 1}, XDP_PASS,
		    FERRY_XDP_PASS_MALFORMED, "IPv4: UDP length past the IP datagram and the frame");
	expect_spec(&(struct ft_spec){.family = 6, .dport = 7003, .payload = 10, .udp_len_delta = 1}, XDP_PASS,
		    FERRY_XDP_PASS_MALFORMED, "IPv6: UDP length past the IP datagram and the frame");
	/* within the padded frame, but past what the IP header says */
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .payload = 2, .udp_len_delta = 4, .pad_to = 60},
		    XDP_PASS, FERRY_XDP_PASS_MALFORMED, "UDP length past the IP datagram, inside the padding");
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .payload = 10, .udp_len_delta = -11}, XDP_PASS,
		    FERRY_XDP_PASS_MALFORMED, "UDP length 7");
	expect_spec(&(struct ft_spec){.family = 6, .dport = 7003, .payload = 0, .udp_len_delta = -8}, XDP_PASS,
		    FERRY_XDP_PASS_MALFORMED, "UDP length 0 (IPv6 jumbogram style)");
	expect_spec(&(struct ft_spec){.family = 6, .dport = 7003, .payload = 0, .ip_len_delta = -8, .cut = 14 + 40},
		    XDP_PASS, FERRY_XDP_PASS_MALFORMED, "IPv6 payload length 0 (a jumbogram)");
	expect_spec(&(struct ft_spec){.family = 4, .dport = 7001, .payload = 10, .udp_len_delta = -4}, XDP_PASS, MATCH,
		    "UDP length shorter than the IP payload is still a datagram");
}

Test(bpf_prog, too_short_ethernet_frames)
{
	uint8_t f[FT_MAX], out[FT_MAX];
	size_t n = ft_build(&(struct ft_spec){.family = 4, .vlan = {0x8100}, .dport = 7001}, f);
	/* (an output buffer the kernel does not need: valgrind checks data_out, NULL or not) */
	LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = f, .data_size_in = 13, .data_out = out,
		    .data_size_out = sizeof(out), .repeat = 1);

	(void)n;
	/* a tag, whole or not, is the kernel's */
	expect(f, 14, XDP_PASS, FERRY_XDP_PASS_VLAN, "VLAN ethertype, no room for the tag");
	expect(f, 16, XDP_PASS, FERRY_XDP_PASS_VLAN, "half a VLAN tag");
	f[12] = 0x08, f[13] = 0x00;
	expect(f, 14, XDP_PASS, FERRY_XDP_PASS_MALFORMED, "IPv4 ethertype, no IP header");
	/* Below the Ethernet header the kernel itself refuses to run the program. */
	cr_assert_neq(bpf_prog_test_run_opts(prog_fd, &t), 0, "a 13-byte frame is refused by BPF_PROG_TEST_RUN");
	cr_assert_eq(errno, EINVAL, "refused with EINVAL, got %s", strerror(errno));
}

Test(bpf_prog, counter_names)
{
	cr_assert_str_eq(ferryd_xdp_counter_name(FERRY_XDP_REDIRECTED), "redirected", "name of counter 0");
	cr_assert_str_eq(ferryd_xdp_counter_name(FERRY_XDP_PASS_NOT_UDP), "pass_not_udp", "name of not-udp");
	cr_assert_str_eq(ferryd_xdp_counter_name(FERRY_XDP_NCOUNTERS), "unknown", "past the end");
	for (unsigned int i = 0; i < FERRY_XDP_NCOUNTERS; i++)
		cr_assert_not_null(ferryd_xdp_counter_name(i), "every counter has a name");
}
