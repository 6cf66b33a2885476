/* SPDX-License-Identifier: MIT */
/*
 * Writes the fuzzers' seed corpora (make fuzz-seeds): frames of every form
 * the parser and the XDP program tell apart (tests/unit/bpf_frames.h builds
 * them), round-trip requests, addresses, command lines, session scripts
 * (ring_ops.h) and control socket conversations. Deterministic: running it
 * again rewrites the same files.
 *   seeds DIR    writes DIR/packet_parse/, DIR/packet_roundtrip/, DIR/sockaddr_parse/, DIR/cmdline/,
 *                DIR/ring_read/, DIR/control_msg/
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <ferry/ring.h>

#include "bpf_frames.h"
#include "ring_ops.h"

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

/* ---- ring_read: session scripts (ring_ops.h) ---------------------------------------------- */

struct script {
	uint8_t b[1024];
	size_t n;
};

static void sb(struct script *s, size_t n, ...)
{
	va_list ap;

	va_start(ap, n);
	for (size_t i = 0; i < n && s->n < sizeof(s->b); i++)
		s->b[s->n++] = (uint8_t)va_arg(ap, int);
	va_end(ap);
}

#define SB(s, ...) sb(s, sizeof((int[]){__VA_ARGS__}) / sizeof(int), __VA_ARGS__)
#define W1 0x80 /* the op is worker 1's */

static void s16(struct script *s, uint16_t v)
{
	SB(s, v >> 8, v & 0xff);
}

static void s32(struct script *s, uint32_t v)
{
	SB(s, v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
}

static void put_n(struct script *s, int w, unsigned int n, uint16_t len)
{
	for (unsigned int i = 0; i < n; i++) {
		SB(s, RR_D_PUT | w);
		s16(s, len);
		SB(s, i & 1);
	}
}

static void send_n(struct script *s, int w, unsigned int n, uint16_t len, uint8_t off)
{
	for (unsigned int i = 0; i < n; i++) {
		SB(s, RR_C_SEND | w, i);
		s16(s, len);
		SB(s, off, i & 1);
	}
}

/* A well-behaved round on worker w: puts, flush, read, give back, reap; sends, take, give back, reap tx_ret. */
static void round_trip(struct script *s, int w, unsigned int n)
{
	put_n(s, w, n, 100);
	SB(s, RR_D_FLUSH | w, RR_C_READ_RX | w, 31, RR_C_RETURN | w, 0, 31, RR_D_REAP | w);
	send_n(s, w, n, 64, 8);
	SB(s, RR_D_TAKE | w, 31, RR_D_GIVE | w, 255, RR_C_REAP_TX_RET | w, 31, RR_D_SLEEP | w);
}

static void script(const char *name, const struct script *s)
{
	put("ring_read", name, s->b, s->n);
}

static void ring_reads(void)
{
	struct script s;

	s = (struct script){ .n = 0 };
	SB(&s, RR_SLOT(0), 0, 0);
	round_trip(&s, 0, 3);
	script("copy-round", &s);

	s = (struct script){ .n = 0 };
	SB(&s, RR_TWO_WORKERS | RR_RX32 | RR_TX32 | RR_SLOT(1), 0x80 | 5, 0);
	for (int i = 0; i < 4; i++) {
		round_trip(&s, 0, 9);
		round_trip(&s, W1, 7);
	}
	script("two-workers-wrap", &s);

	s = (struct script){ .n = 0 };
	SB(&s, RR_ZEROCOPY | RR_TWO_AREAS | RR_SLOT(2), 0, 1);
	for (int i = 0; i < 3; i++) {
		SB(&s, RR_D_PUT_FRAME, i & 1, i);
		s16(&s, 256);
		s16(&s, 200);
		SB(&s, 0);
	}
	put_n(&s, 0, 2, 40);
	SB(&s, RR_D_FLUSH, RR_C_READ_RX, 31, RR_C_RETURN, 1, 2, RR_D_REAP, RR_D_RECLAIM);
	script("zero-copy-frames", &s);

	s = (struct script){ .n = 0 };
	SB(&s, RR_SLOT(0), 0, 0);
	put_n(&s, 0, 20, 10);
	put_n(&s, 0, 1, 300);
	SB(&s, RR_D_FLUSH, RR_C_FLAGS, 3, RR_C_READ_RX, 31, RR_C_RETURN, 5, 31, RR_D_REAP);
	put_n(&s, 0, 2, 256);
	SB(&s, RR_D_FLUSH);
	script("full-and-big", &s);

	s = (struct script){ .n = 0 };
	SB(&s, RR_SLOT(0), 0, 0);
	put_n(&s, 0, 2, 10);
	SB(&s, RR_D_FLUSH, RR_H_INDEX, 1, 1);
	s32(&s, 3); /* rx_ret producer 3 ahead: it held 2 */
	SB(&s, RR_D_REAP);
	script("hostile-rx-ret-ahead", &s);

	s = (struct script){ .n = 0 };
	SB(&s, RR_SLOT(0), 0, 0);
	put_n(&s, 0, 2, 10);
	SB(&s, RR_D_FLUSH, RR_H_RX_RET);
	s32(&s, 1);
	s32(&s, 0);
	SB(&s, RR_H_RX_RET);
	s32(&s, 1); /* the same slot twice */
	s32(&s, 0);
	SB(&s, RR_D_REAP);
	script("hostile-rx-ret-twice", &s);

	s = (struct script){ .n = 0 };
	SB(&s, RR_TWO_WORKERS | RR_SLOT(0), 0, 0);
	SB(&s, RR_H_TX | W1);
	s32(&s, 3);
	s32(&s, 200);
	s32(&s, 100); /* past the slot */
	s32(&s, 0);
	s16(&s, 2);
	s16(&s, 9);
	s32(&s, 0);
	for (int i = 0; i < 16; i++)
		SB(&s, 198 * (i == 0), 18 * (i == 1), 0, 2 * (i == 3));
	SB(&s, RR_D_TAKE | W1, 8, RR_D_TAKE, 8);
	script("hostile-tx-past-slot", &s);

	s = (struct script){ .n = 0 };
	SB(&s, RR_SLOT(3), 0, 0);
	round_trip(&s, 0, 2);
	SB(&s, RR_H_RAW);
	s32(&s, 4096);
	SB(&s, 32);
	for (int i = 0; i < 32; i++)
		SB(&s, 0xff);
	SB(&s, RR_D_REAP, RR_D_TAKE, 8, RR_D_FLUSH);
	script("hostile-raw-rings", &s);
}

/* ---- control_msg: conversations (control_msg.c's ops) --------------------------------------- */

enum { CM_CONNECT, CM_SEND, CM_CLOSE, CM_SHUT, CM_DEAF };
#define CM_NOPUMP 4
#define CM_TIMES(n) (((n) - 1) << 3)

static void cm_send(struct script *s, int conn, int flags, const void *msg, size_t len)
{
	SB(s, CM_SEND | conn << 4, flags);
	s16(s, (uint16_t)len);
	for (size_t i = 0; i < len && s->n < sizeof(s->b); i++)
		s->b[s->n++] = ((const uint8_t *)msg)[i];
}

static struct ferry_ctl_attach attach_msg(const char *service, uint32_t rx, uint32_t tx, uint32_t slot)
{
	struct ferry_ctl_attach a;

	memset(&a, 0, sizeof(a));
	a.magic = FERRY_CTL_MAGIC;
	a.version = FERRY_RING_VERSION;
	a.op = FERRY_CTL_ATTACH;
	snprintf(a.service, sizeof(a.service), "%s", service);
	a.rx_slots = rx;
	a.tx_slots = tx;
	a.slot_size = slot;
	return a;
}

/* A query, as ring.h has it (struct ferry_ctl_query): written by hand, so it also builds without. */
static void cm_query(struct script *s, int conn, int flags, uint32_t verb, uint32_t seq)
{
	uint32_t q[8] = { FERRY_CTL_MAGIC, FERRY_RING_VERSION, 5 /* FERRY_CTL_QUERY */, verb, seq, 0, 0, 0 };

	cm_send(s, conn, flags, q, sizeof(q));
}

static void control_msgs(void)
{
	struct ferry_ctl_attach a = attach_msg("svc", 16, 16, 256), d;
	struct script s;

	memset(&d, 0, sizeof(d));
	d.magic = FERRY_CTL_MAGIC;
	d.version = FERRY_RING_VERSION;
	d.op = FERRY_CTL_DETACH;

	s = (struct script){ .n = 0 };
	cm_send(&s, 0, 0, &a, sizeof(a));
	cm_send(&s, 0, 0, &d, sizeof(d));
	put("control_msg", "attach-detach", s.b, s.n);

	s = (struct script){ .n = 0 };
	cm_send(&s, 0, 0, &a, sizeof(a));
	cm_send(&s, 0, 0, "hello", 5);
	put("control_msg", "attach-then-garbage", s.b, s.n);

	s = (struct script){ .n = 0 };
	a = attach_msg("svc", 0, 0, 0);
	cm_send(&s, 0, 3, &a, sizeof(a)); /* with 3 fds */
	a = attach_msg("zc", 16, 16, 256);
	a.flags = FERRY_CTL_ZEROCOPY;
	cm_send(&s, 1, 0, &a, sizeof(a));
	a = attach_msg("nope", 16, 16, 256);
	cm_send(&s, 2, 1, &a, sizeof(a));
	a = attach_msg("svc", 65536, 65536, 65536);
	cm_send(&s, 3, 0, &a, sizeof(a));
	SB(&s, CM_SHUT);
	put("control_msg", "four-conns", s.b, s.n);

	s = (struct script){ .n = 0 };
	a = attach_msg("svc", 24, 16, 100);
	a.reserved[2] = 1;
	cm_send(&s, 0, 0, &a, sizeof(a));
	cm_send(&s, 1, 0, &a, sizeof(a) - 4);
	cm_send(&s, 2, 0, "", 0);
	cm_send(&s, 3, 1, "FRYK", 4);
	put("control_msg", "malformed", s.b, s.n);

	s = (struct script){ .n = 0 };
	for (int p = 1; p <= 4; p++) {
		SB(&s, CM_CONNECT | (p % 4) << 4, p);
		a = attach_msg(p & 1 ? "guarded" : "svc", 16, 16, 256);
		cm_send(&s, p % 4, 0, &a, sizeof(a));
	}
	SB(&s, CM_CONNECT | 1 << 4, 2);
	cm_query(&s, 1, 0, 5, 1); /* a reload from a user who may not */
	put("control_msg", "peers", s.b, s.n);

	s = (struct script){ .n = 0 };
	for (uint32_t v = 0; v <= 6; v++)
		cm_query(&s, 0, 0, v, v);
	cm_send(&s, 0, 0, &d, sizeof(d));
	a = attach_msg("svc", 16, 16, 256);
	cm_send(&s, 1, 0, &a, sizeof(a));
	cm_query(&s, 0, 0, 4, 9);
	put("control_msg", "queries", s.b, s.n);

	s = (struct script){ .n = 0 };
	SB(&s, CM_DEAF);
	cm_query(&s, 0, CM_TIMES(32), 2, 1);
	cm_send(&s, 0, CM_NOPUMP, &a, sizeof(a));
	cm_query(&s, 0, CM_NOPUMP, 1, 2);
	SB(&s, CM_DEAF);
	cm_send(&s, 0, 0, &d, sizeof(d));
	put("control_msg", "deaf-queries", s.b, s.n);
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
	ring_reads();
	control_msgs();
	return failed;
}
