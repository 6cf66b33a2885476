/* SPDX-License-Identifier: MIT */
/*
 * Writes the fuzzers' seed corpora (make fuzz-seeds): frames of every form
 * the parser and the XDP program tell apart (tests/unit/bpf_frames.h builds
 * them), round-trip requests, addresses and command lines. Deterministic:
 * running it again rewrites the same files.
 *   seeds DIR    writes DIR/packet_parse/, DIR/packet_roundtrip/, DIR/sockaddr_parse/, DIR/cmdline/
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bpf_frames.h"

static const char *root;
static int failed;

static void put(const char *dir, const char *name, const void *p, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, dir);
	if (mkdir(path, 0755) && errno != EEXIST) {
		perror(path);
		failed = 1;
		return;
	}
	snprintf(path, sizeof(path), "%s/%s/%s", root, dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
		perror(path);
		failed = 1;
	}
}

static void frame(const char *name, const struct ft_spec *s)
{
	uint8_t f[FT_MAX];

	put("packet_parse", name, f, ft_build(s, f));
}

#define FRAME(name, ...) frame(name, &(struct ft_spec){__VA_ARGS__})

static void frames(void)
{
	static const uint8_t g4[6] = {0x01, 0x00, 0x5e, 0x01, 0x02, 0x03};
	static const uint8_t g6[6] = {0x33, 0x33, 0x00, 0x01, 0x00, 0x03};

	FRAME("ipv4-udp", .family = 4, .dport = 7001, .payload = 32);
	FRAME("ipv4-udp-empty", .family = 4, .dport = 7001);
	FRAME("ipv4-udp-padded", .family = 4, .dport = 7001, .payload = 2, .pad_to = 60);
	FRAME("ipv4-udp-1472", .family = 4, .dport = 7001, .payload = 1472);
	FRAME("ipv4-udp-csum-zero", .family = 4, .dport = 7001, .payload = 21, .csum = FT_CSUM_ZERO);
	FRAME("ipv4-udp-csum-bad", .family = 4, .dport = 7001, .payload = 20, .csum = FT_CSUM_BAD);
	FRAME("ipv4-sport0", .family = 4, .dport = 7001, .payload = 4, .sport_set = 1);
	FRAME("ipv4-src-loopback", .family = 4, .src = "127.0.0.1", .dport = 7001, .payload = 4);
	FRAME("ipv4-group", .family = 4, .dst = "239.1.2.3", .dport = 7006, .payload = 4, .dmac = g4);
	FRAME("ipv4-bcast", .family = 4, .dst = "255.255.255.255", .dport = 7002);
	FRAME("ipv4-options", .family = 4, .ihl = 6, .dport = 7001, .payload = 10);
	FRAME("ipv4-ihl-lie", .family = 4, .ihl_field = 4, .dport = 7001, .payload = 8);
	FRAME("ipv4-ihl-15", .family = 4, .ihl_field = 15, .dport = 7001, .payload = 8);
	FRAME("ipv4-version-6", .family = 4, .version = 6, .dport = 7001);
	FRAME("ipv4-mf", .family = 4, .dport = 7001, .frag_off = 0x2000, .payload = 16);
	FRAME("ipv4-frag-offset", .family = 4, .dport = 7001, .frag_off = 185, .payload = 16);
	FRAME("ipv4-df", .family = 4, .dport = 7001, .frag_off = 0x4000, .payload = 16);
	FRAME("ipv4-tcp", .family = 4, .proto = 6, .dport = 7001, .l4_len = 20);
	FRAME("ipv4-icmp", .family = 4, .proto = 1, .payload = 56);
	FRAME("ipv4-totlen-long", .family = 4, .dport = 7001, .payload = 10, .ip_len_delta = 1);
	FRAME("ipv4-totlen-short", .family = 4, .dport = 7001, .payload = 10, .ip_len_delta = -31);
	FRAME("ipv4-udplen-long", .family = 4, .dport = 7001, .payload = 10, .udp_len_delta = 1);
	FRAME("ipv4-udplen-short", .family = 4, .dport = 7001, .payload = 10, .udp_len_delta = -4);
	FRAME("ipv4-udplen-under", .family = 4, .dport = 7001, .payload = 10, .udp_len_delta = -11);
	FRAME("ipv4-cut-ip", .family = 4, .dport = 7001, .cut = 14 + 10);
	FRAME("ipv4-cut-udp", .family = 4, .dport = 7001, .ip_len_delta = -4, .cut = 14 + 20 + 4);
	FRAME("vlan", .family = 4, .vlan = {0x8100}, .dport = 7001, .payload = 8);
	FRAME("qinq", .family = 4, .vlan = {0x88a8, 0x8100}, .dport = 7001);
	FRAME("arp", .ethertype = 0x0806, .l4_len = 28);
	FRAME("eth-only", .ethertype = 0x0800, .l4_len = 8, .cut = 14);
	FRAME("ipv6-udp", .family = 6, .dport = 7003, .payload = 100);
	FRAME("ipv6-udp-empty-padded", .family = 6, .dport = 7003, .pad_to = 80);
	FRAME("ipv6-udp-1452", .family = 6, .dport = 7003, .payload = 1452);
	FRAME("ipv6-udp-csum-zero", .family = 6, .dport = 7003, .payload = 21, .csum = FT_CSUM_ZERO);
	FRAME("ipv6-linklocal", .family = 6, .src = "fe80::2", .dst = "fe80::1", .dport = 7003, .payload = 4);
	FRAME("ipv6-group", .family = 6, .dst = "ff05::1:3", .dport = 7007, .payload = 4, .dmac = g6);
	FRAME("ipv6-mapped-src", .family = 6, .src = "::ffff:198.18.0.2", .dport = 7003, .payload = 4);
	FRAME("ipv6-hopopts", .family = 6, .proto = 0, .proto_set = 1, .l4_len = 8, .dport = 7003);
	FRAME("ipv6-routing", .family = 6, .proto = 43, .l4_len = 16, .dport = 7003);
	FRAME("ipv6-fragment", .family = 6, .proto = 44, .dport = 7003, .payload = 16);
	FRAME("ipv6-icmp", .family = 6, .dst = "ff02::1:ff00:1", .proto = 58, .l4_len = 24);
	FRAME("ipv6-version-4", .family = 6, .version = 4, .dport = 7003);
	FRAME("ipv6-plen-long", .family = 6, .dport = 7003, .payload = 10, .ip_len_delta = 1);
	FRAME("ipv6-plen-zero", .family = 6, .dport = 7003, .payload = 0, .ip_len_delta = -8, .cut = 14 + 40);
	FRAME("ipv6-udplen-long", .family = 6, .dport = 7003, .payload = 10, .udp_len_delta = 1);
	FRAME("ipv6-cut-header", .family = 6, .dport = 7003, .cut = 14 + 39);
}

/* packet_roundtrip.c's layout: flags, headroom, pad, MACs, addresses, ports, big, payload. */
static void roundtrip(const char *name, uint8_t flags, uint8_t headroom, uint8_t pad, const char *src,
		      const char *dst, uint16_t big, const char *payload)
{
	uint8_t b[256];
	size_t n = 0;
	int af = flags & 1 ? AF_INET6 : AF_INET;

	memset(b, 0, sizeof(b));
	b[n++] = flags;
	b[n++] = headroom;
	b[n++] = pad;
	memcpy(b + n, (const uint8_t[6]){0x02, 0, 0, 0, 0, 1}, 6);
	memcpy(b + n + 6, (const uint8_t[6]){0x02, 0, 0, 0, 0, 2}, 6);
	n += 12;
	inet_pton(af, src, b + n);
	inet_pton(af, dst, b + n + 16);
	n += 32;
	ft_put16(b + n, 9000);
	ft_put16(b + n + 2, 40000);
	ft_put16(b + n + 4, big);
	n += 6;
	memcpy(b + n, payload, strlen(payload));
	put("packet_roundtrip", name, b, n + strlen(payload));
}

static void roundtrips(void)
{
	roundtrip("ipv4", 0, 0, 0, "198.18.0.1", "198.18.0.2", 0, "hello");
	roundtrip("ipv4-by-pointer-padded", 2, 6, 18, "198.18.0.1", "198.18.0.2", 0, "x");
	roundtrip("ipv4-empty", 0, 3, 0, "198.18.0.1", "198.18.0.2", 0, "");
	roundtrip("ipv4-largest", 16, 0, 0, "198.18.0.1", "198.18.0.2", 65507, "");
	roundtrip("ipv4-too-big", 16, 0, 0, "198.18.0.1", "198.18.0.2", 65508, "");
	roundtrip("ipv6", 1, 0, 0, "2001:2::1", "2001:2::2", 0, "hello, world");
	roundtrip("ipv6-linklocal", 3, 9, 4, "fe80::1", "fe80::2", 0, "odd");
	roundtrip("ipv6-largest", 17, 0, 0, "2001:2::1", "2001:2::2", 65527, "");
	roundtrip("ipv6-too-big", 17, 0x80, 0, "2001:2::1", "2001:2::2", 65300, "");
	roundtrip("mixed-families", 4, 0, 0, "198.18.0.1", "198.18.0.2", 0, "no");
	roundtrip("short-headroom", 9, 0, 0, "2001:2::1", "2001:2::2", 0, "no");
}

static void text(const char *dir, const char *name, const char *s)
{
	put(dir, name, s, strlen(s));
}

static void addresses(void)
{
	static const char *const a[][2] = {
		{"ipv4", "198.18.0.1:9000"},	   {"ipv4-any", "*:53"},
		{"ipv4-zero", "0.0.0.0:0"},	   {"ipv4-port-max", "255.255.255.255:65535"},
		{"ipv6", "[2001:2::1]:9000"},	   {"ipv6-any", "[::]:9000"},
		{"ipv6-mapped", "[::ffff:198.18.0.1]:7"}, {"ipv6-scope-number", "[fe80::1%3]:9000"},
		{"ipv6-scope-name", "[fe80::1%lo]:9000"}, {"ipv6-full", "[2001:db8:1:2:3:4:5:6]:1"},
		{"ipv6-no-brackets", "2001:2::1:9000"},	  {"port-too-big", "198.18.0.1:65536"},
		{"port-empty", "198.18.0.1:"},		  {"port-sign", "198.18.0.1:+1"},
		{"ipv4-short", "1.2.3:4"},		  {"bracket-open", "[::1"},
		{"bracket-empty", "[]:1"},		  {"scope-empty", "[fe80::1%]:1"},
		{"scope-huge", "[fe80::1%4294967296]:1"}, {"hostname", "localhost:53"},
	};

	for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++)
		text("sockaddr_parse", a[i][0], a[i][1]);
}

/* An argv as cmdline.c splits it: arguments separated by NUL bytes. */
static void cmdline(const char *name, const char *const *args, size_t n)
{
	char b[1024];
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(args[i]) + 1;

		memcpy(b + len, args[i], l);
		len += l;
	}
	put("cmdline", name, b, len ? len - 1 : 0);
}

#define CMDLINE(name, ...) \
	cmdline(name, (const char *const[]){__VA_ARGS__}, sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *))

static void cmdlines(void)
{
	CMDLINE("empty", "");
	CMDLINE("one-service", "--service", "dns=198.18.0.1:53");
	CMDLINE("readme", "--interface", "eth0", "--service", "dns=198.18.0.1:53", "--service", "any6=[::]:9000",
		"--handler", "echo");
	CMDLINE("short-options", "-i", "veth0", "-q", "4", "-w", "2", "-s", "a=*:9000", "-m", "xdp", "-vv");
	CMDLINE("equals", "--service=a=198.18.0.1:1", "--queues=2", "--mode=socket", "--workers=8");
	CMDLINE("everything", "--interface", "eth0", "--queues", "2", "--workers", "2", "--cpus", "0-1", "--service",
		"a=198.18.0.1:53", "--service", "b=[2001:2::1]:53", "--mode", "auto", "--xdp-mode", "skb", "--zero-copy",
		"off", "--frames", "1024", "--frame-size", "2048", "--batch", "256", "--busy-poll", "--run-dir",
		"/tmp/ferry", "--verbose");
	CMDLINE("cpus-list", "--cpus", "2,3,4-7,255", "-s", "x=*:1");
	CMDLINE("help", "-s", "x", "--help");
	CMDLINE("same-name", "-s", "a=198.18.0.1:1", "-s", "a=198.18.0.2:1");
	CMDLINE("same-address", "-s", "a=*:1", "-s", "b=0.0.0.0:1");
	CMDLINE("mapped", "-s", "a=198.18.0.1:1", "-s", "b=[::ffff:198.18.0.2]:1");
	CMDLINE("port-zero", "-s", "a=198.18.0.1:0");
	CMDLINE("batch-over-frames", "-s", "a=*:1", "--frames", "64", "--batch", "33");
	CMDLINE("workers-over-queues", "-s", "a=*:1", "--queues", "2", "--workers", "3");
	CMDLINE("xdp-no-interface", "-s", "a=*:1", "--mode", "xdp");
	CMDLINE("missing-value", "-s", "a=*:1", "--frames");
	CMDLINE("unknown", "-s", "a=*:1", "-vx", "--nope=1");
	CMDLINE("stray-argument", "-s", "a=*:1", "eth0");
	CMDLINE("long-name", "-s", "abcdefghijklmnopqrstuvwxyz0123456=*:1", "-i", "abcdefghijklmnop");
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	root = argv[1];
	if (mkdir(root, 0755) && errno != EEXIST) {
		perror(root);
		return 1;
	}
	frames();
	roundtrips();
	addresses();
	cmdlines();
	return failed;
}
