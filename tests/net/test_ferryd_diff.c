/* SPDX-License-Identifier: MIT */
/*
 * The differential test of the XDP path against the kernel's: a corpus of
 * crafted frames, sent from the peer namespace through a raw packet socket on
 * fp0, to ferryd --handler echo
 * in xdp mode and then in socket mode (the kernel's own path): for every
 * frame xdp mode must answer exactly what socket mode answers (number of
 * replies, their addresses and ports, payload, VLAN tags, destination MAC),
 * and nothing else. A socket-vs-socket run checks that the test itself is
 * deterministic. FERRY_DIFF_VERBOSE=1 prints every case, not only mismatches;
 * FERRY_DIFF_ONLY="12,170-176" sends only those cases.
 *
 * Each corpus entry gets its own UDP source port (SPORT_BASE + index, unless
 * the case sets one) and a payload starting "diff-NNN-" (when it has room):
 * replies are attributed by that tag, else by their destination port.
 * Cases that can make ferryd loop (a source that is ferryd's own address and
 * port) come last; every wait is bounded, capture has a hard deadline and a
 * cap.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "ferryd_proc.h"
#include "frame.h"
#include "netns.h"
#include "rawsock.h"
#include "testutil.h"

#define E_PORT 7777 /* e4, e6: the host's own addresses */
#define W_PORT 7778 /* w4, w6: wildcards */
#define SPORT_BASE 20000
#define SPORT_ZERO (-1) /* a case's sport: literally 0 */
#define PACE_MS 2	/* between two frames of the corpus */
#define SETTLE_MS 500	/* after the last frame */
#define FINAL_MS 700	/* for the replies to the closing plain datagrams */
#define READY_TIMEOUT_MS 15000
#define EXIT_TIMEOUT_MS 10000
#define MAX_CAPTURE 8192 /* frames kept per run; beyond that they are counted and dropped */
#define KEEP 4		 /* replies kept per case (more are counted) */
#define TAG_LEN 9	 /* "diff-NNN-" */

#define H4 FERRY_TESTNS_HOST4
#define H6 FERRY_TESTNS_HOST6
#define HOST_LL "@host-ll" /* the host's link-local address (EUI-64 of its MAC) */
#define PEER_LL "@peer-ll"

#define TO_E4 .family = 4, .dst = H4, .dport = E_PORT
#define TO_W4 .family = 4, .dst = H4, .dport = W_PORT
#define TO_E6 .family = 6, .dst = H6, .dport = E_PORT
#define TO_W6 .family = 6, .dst = H6, .dport = W_PORT

enum dst_mac { MAC_HOST = 0, MAC_FOREIGN, MAC_BCAST, MAC_MCAST };

struct diff_case {
	const char *name;
	/* family, dst, dport, payload_len and every deliberate lie; src NULL: the
	 * peer's address; MACs, sport, payload, IP id are filled in per run */
	struct ferry_frame_spec f;
	enum dst_mac mac;	/* MAC_MCAST: the group MAC of dst, or 01:00:5e:7f:00:01 / 33:33:00:00:00:01 */
	int sport;		/* 0: SPORT_BASE + index; SPORT_ZERO: 0 */
	uint32_t frag_size;	/* when set, the datagram goes in fragments of this many bytes (a multiple of 8) */
	bool frag_reverse;	/* ... last fragment first */
	bool csum_partial;	/* send as CHECKSUM_PARTIAL (vnet header), f.udp_csum = FERRY_CSUM_PARTIAL */
};

static const uint8_t opt_nop4[] = {1, 1, 1, 1};
static const uint8_t opt_lsrr[] = {0x83, 7, 4, 198, 18, 0, 1, 1};
static const uint8_t opt_lsrr_done[] = {0x83, 7, 8, 198, 18, 0, 2, 1};
static const uint8_t opt_ssrr[] = {0x89, 7, 4, 198, 18, 0, 1, 1};
static const uint8_t opt_rr[] = {0x07, 7, 4, 0, 0, 0, 0, 1};
static const uint8_t opt_ts[] = {0x44, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0};
static const uint8_t opt_ra[] = {0x94, 4, 0, 0};
static const uint8_t opt_unknown[] = {0x1e, 4, 0, 0};
static const uint8_t opt_badlen[] = {0x07, 40, 4, 0};
static const uint8_t opt6_ra[] = {5, 2, 0, 0};		/* router alert (MLD) */
static const uint8_t opt6_skip[] = {0x1e, 2, 0, 0};	/* unknown, action 00: skip */
static const uint8_t opt6_discard[] = {0x5e, 2, 0, 0};	/* unknown, action 01: discard silently */
static const uint8_t opt6_icmp[] = {0x9e, 2, 0, 0};	/* unknown, action 10: discard, ICMP */

#define EXT_HOP {.kind = FERRY_EXT6_HOP}
#define EXT_DEST {.kind = FERRY_EXT6_DEST}

/* clang-format off */
static const struct diff_case cases[] = {
	/* ---- valid datagrams to each service */
	{.name = "v4 e4 valid 0B", .f = {TO_E4, .payload_len = 0}},
	{.name = "v4 e4 valid 1B", .f = {TO_E4, .payload_len = 1}},
	{.name = "v4 e4 valid 18B", .f = {TO_E4, .payload_len = 18}},
	{.name = "v4 e4 valid 1472B", .f = {TO_E4, .payload_len = 1472}},
	{.name = "v4 w4 valid 0B", .f = {TO_W4, .payload_len = 0}},
	{.name = "v4 w4 valid 1B", .f = {TO_W4, .payload_len = 1}},
	{.name = "v4 w4 valid 18B", .f = {TO_W4, .payload_len = 18}},
	{.name = "v4 w4 valid 1472B", .f = {TO_W4, .payload_len = 1472}},
	{.name = "v6 e6 valid 0B", .f = {TO_E6, .payload_len = 0}},
	{.name = "v6 e6 valid 1B", .f = {TO_E6, .payload_len = 1}},
	{.name = "v6 e6 valid 18B", .f = {TO_E6, .payload_len = 18}},
	{.name = "v6 e6 valid 1452B (one frame)", .f = {TO_E6, .payload_len = 1452}},
	{.name = "v6 e6 valid 1472B (2 fragments)", .f = {TO_E6, .payload_len = 1472}, .frag_size = 1448},
	{.name = "v6 w6 valid 0B", .f = {TO_W6, .payload_len = 0}},
	{.name = "v6 w6 valid 1B", .f = {TO_W6, .payload_len = 1}},
	{.name = "v6 w6 valid 18B", .f = {TO_W6, .payload_len = 18}},
	{.name = "v6 w6 valid 1452B (one frame)", .f = {TO_W6, .payload_len = 1452}},
	{.name = "v6 w6 valid 1472B (2 fragments)", .f = {TO_W6, .payload_len = 1472}, .frag_size = 1448},
	{.name = "v4 e4 valid 0B padded to 60", .f = {TO_E4, .payload_len = 0, .pad_to = 60}},
	{.name = "v4 e4 valid DF 100B", .f = {TO_E4, .payload_len = 100, .df = true}},
	/* ---- odd sizes */
	{.name = "v4 e4 3B", .f = {TO_E4, .payload_len = 3}},
	{.name = "v4 e4 9B", .f = {TO_E4, .payload_len = 9}},
	{.name = "v4 w4 33B", .f = {TO_W4, .payload_len = 33}},
	{.name = "v4 e4 257B", .f = {TO_E4, .payload_len = 257}},
	{.name = "v4 e4 1001B", .f = {TO_E4, .payload_len = 1001}},
	{.name = "v6 e6 5B", .f = {TO_E6, .payload_len = 5}},
	{.name = "v6 e6 11B", .f = {TO_E6, .payload_len = 11}},
	{.name = "v6 w6 65B", .f = {TO_W6, .payload_len = 65}},
	{.name = "v6 e6 333B", .f = {TO_E6, .payload_len = 333}},
	{.name = "v6 e6 999B", .f = {TO_E6, .payload_len = 999}},
	/* ---- wrong destination port, wrong protocol */
	{.name = "v4 dport 7779 (no service)", .f = {.family = 4, .dst = H4, .dport = 7779, .payload_len = 18}},
	{.name = "v6 dport 7779 (no service)", .f = {.family = 6, .dst = H6, .dport = 7779, .payload_len = 18}},
	{.name = "v4 dport 0", .f = {.family = 4, .dst = H4, .dport = 0, .payload_len = 18}},
	{.name = "v4 e4 protocol 136 (UDP-Lite)", .f = {TO_E4, .payload_len = 18, .proto = 136}},
	{.name = "v6 e6 next header 6 (TCP)", .f = {TO_E6, .payload_len = 18, .proto = 6}},
	/* ---- link layer: someone else's MAC, broadcast, multicast */
	{.name = "v4 e4 foreign unicast MAC", .f = {TO_E4, .payload_len = 18}, .mac = MAC_FOREIGN},
	{.name = "v4 w4 foreign unicast MAC", .f = {TO_W4, .payload_len = 18}, .mac = MAC_FOREIGN},
	{.name = "v6 e6 foreign unicast MAC", .f = {TO_E6, .payload_len = 18}, .mac = MAC_FOREIGN},
	{.name = "v6 w6 foreign unicast MAC", .f = {TO_W6, .payload_len = 18}, .mac = MAC_FOREIGN},
	{.name = "v4 e4 broadcast MAC", .f = {TO_E4, .payload_len = 18}, .mac = MAC_BCAST},
	{.name = "v6 e6 broadcast MAC", .f = {TO_E6, .payload_len = 18}, .mac = MAC_BCAST},
	{.name = "v4 e4 multicast MAC", .f = {TO_E4, .payload_len = 18}, .mac = MAC_MCAST},
	{.name = "v6 e6 multicast MAC", .f = {TO_E6, .payload_len = 18}, .mac = MAC_MCAST},
	/* ---- VLAN tags (no VLAN interface is configured) */
	{.name = "v4 e4 802.1Q vid 0 (priority tag)", .f = {TO_E4, .payload_len = 18, .vlan = {{0x8100, 0, 5}}}},
	{.name = "v6 e6 802.1Q vid 0 (priority tag)", .f = {TO_E6, .payload_len = 18, .vlan = {{0x8100, 0, 3}}}},
	{.name = "v4 e4 802.1Q vid 1", .f = {TO_E4, .payload_len = 18, .vlan = {{0x8100, 1, 0}}}},
	{.name = "v4 e4 802.1Q vid 100", .f = {TO_E4, .payload_len = 18, .vlan = {{0x8100, 100, 0}}}},
	{.name = "v4 w4 802.1Q vid 100", .f = {TO_W4, .payload_len = 18, .vlan = {{0x8100, 100, 0}}}},
	{.name = "v6 e6 802.1Q vid 100", .f = {TO_E6, .payload_len = 18, .vlan = {{0x8100, 100, 0}}}},
	{.name = "v4 e4 802.1Q vid 4094", .f = {TO_E4, .payload_len = 18, .vlan = {{0x8100, 4094, 0}}}},
	{.name = "v4 e4 802.1ad vid 100", .f = {TO_E4, .payload_len = 18, .vlan = {{0x88a8, 100, 0}}}},
	{.name = "v6 e6 802.1ad vid 100", .f = {TO_E6, .payload_len = 18, .vlan = {{0x88a8, 100, 0}}}},
	{.name = "v4 e4 QinQ 88a8:100 8100:200", .f = {TO_E4, .payload_len = 18, .vlan = {{0x88a8, 100, 0}, {0x8100, 200, 0}}}},
	{.name = "v6 e6 QinQ 88a8:100 8100:200", .f = {TO_E6, .payload_len = 18, .vlan = {{0x88a8, 100, 0}, {0x8100, 200, 0}}}},
	{.name = "v4 e4 8100:0 8100:100", .f = {TO_E4, .payload_len = 18, .vlan = {{0x8100, 0, 0}, {0x8100, 100, 0}}}},
	/* ---- IPv4 options */
	{.name = "v4 e4 options 4x NOP", .f = {TO_E4, .payload_len = 18, .ip_opts = opt_nop4, .ip_opts_len = sizeof(opt_nop4)}},
	{.name = "v4 w4 options 4x NOP", .f = {TO_W4, .payload_len = 18, .ip_opts = opt_nop4, .ip_opts_len = sizeof(opt_nop4)}},
	{.name = "v4 e4 option loose source route", .f = {TO_E4, .payload_len = 18, .ip_opts = opt_lsrr, .ip_opts_len = sizeof(opt_lsrr)}},
	{.name = "v4 e4 option LSRR, route done", .f = {TO_E4, .payload_len = 18, .ip_opts = opt_lsrr_done, .ip_opts_len = sizeof(opt_lsrr_done)}},
	{.name = "v4 e4 option strict source route", .f = {TO_E4, .payload_len = 18, .ip_opts = opt_ssrr, .ip_opts_len = sizeof(opt_ssrr)}},
	{.name = "v4 e4 option record route", .f = {TO_E4, .payload_len = 18, .ip_opts = opt_rr, .ip_opts_len = sizeof(opt_rr)}},
	{.name = "v4 e4 option timestamp", .f = {TO_E4, .payload_len = 18, .ip_opts = opt_ts, .ip_opts_len = sizeof(opt_ts)}},
	{.name = "v4 e4 option router alert", .f = {TO_E4, .payload_len = 18, .ip_opts = opt_ra, .ip_opts_len = sizeof(opt_ra)}},
	{.name = "v4 e4 option unknown type 0x1e", .f = {TO_E4, .payload_len = 18, .ip_opts = opt_unknown, .ip_opts_len = sizeof(opt_unknown)}},
	{.name = "v4 e4 option length past the header", .f = {TO_E4, .payload_len = 18, .ip_opts = opt_badlen, .ip_opts_len = sizeof(opt_badlen)}},
	/* ---- IPv4 header lies */
	{.name = "v4 e4 bad header checksum", .f = {TO_E4, .payload_len = 18, .ip_csum = FERRY_CSUM_BAD}},
	{.name = "v4 w4 bad header checksum", .f = {TO_W4, .payload_len = 18, .ip_csum = FERRY_CSUM_BAD}},
	{.name = "v4 e4 zero header checksum", .f = {TO_E4, .payload_len = 18, .ip_csum = FERRY_CSUM_ZERO}},
	{.name = "v4 e4 ihl 4", .f = {TO_E4, .payload_len = 18, .ihl_field = 4}},
	{.name = "v4 e4 version 6 in IPv4", .f = {TO_E4, .payload_len = 18, .version = 6}},
	{.name = "v4 e4 under ethertype 0x86dd", .f = {TO_E4, .payload_len = 18, .ethertype = 0x86dd}},
	{.name = "v6 e6 version 4 in IPv6", .f = {TO_E6, .payload_len = 18, .version = 4}},
	/* ---- IP length lies */
	{.name = "v4 e4 tot_len +4 (past the frame)", .f = {TO_E4, .payload_len = 18, .ip_len_delta = 4}},
	{.name = "v4 e4 tot_len -4 (cuts UDP)", .f = {TO_E4, .payload_len = 18, .ip_len_delta = -4}},
	{.name = "v4 e4 tot_len -4 and UDP len -4", .f = {TO_E4, .payload_len = 18, .ip_len_delta = -4, .udp_len_delta = -4}},
	{.name = "v6 e6 payload_len +4 (past the frame)", .f = {TO_E6, .payload_len = 18, .ip_len_delta = 4}},
	{.name = "v6 e6 payload_len -4 (cuts UDP)", .f = {TO_E6, .payload_len = 18, .ip_len_delta = -4}},
	{.name = "v6 e6 payload_len -4 and UDP len -4", .f = {TO_E6, .payload_len = 18, .ip_len_delta = -4, .udp_len_delta = -4}},
	/* ---- UDP length lies */
	{.name = "v4 e4 UDP len 0", .f = {TO_E4, .payload_len = 18, .udp_len_set = true, .udp_len = 0}},
	{.name = "v6 e6 UDP len 0", .f = {TO_E6, .payload_len = 18, .udp_len_set = true, .udp_len = 0}},
	{.name = "v4 e4 UDP len 4", .f = {TO_E4, .payload_len = 18, .udp_len_set = true, .udp_len = 4}},
	{.name = "v6 e6 UDP len 4", .f = {TO_E6, .payload_len = 18, .udp_len_set = true, .udp_len = 4}},
	{.name = "v4 e4 UDP len +4 (past IP)", .f = {TO_E4, .payload_len = 18, .udp_len_delta = 4}},
	{.name = "v6 e6 UDP len +4 (past IP)", .f = {TO_E6, .payload_len = 18, .udp_len_delta = 4}},
	{.name = "v4 e4 UDP len -4 (short of IP)", .f = {TO_E4, .payload_len = 18, .udp_len_delta = -4}},
	{.name = "v6 e6 UDP len -4 (short of IP)", .f = {TO_E6, .payload_len = 18, .udp_len_delta = -4}},
	{.name = "v4 w4 UDP len -10 (short of IP)", .f = {TO_W4, .payload_len = 30, .udp_len_delta = -10}},
	/* ---- truncated at each header (v4: 14+20+8+18 = 60 bytes; v6: 14+40+8+18 = 80) */
	{.name = "v4 e4 cut to 14 (Ethernet only)", .f = {TO_E4, .payload_len = 18, .cut = 14}},
	{.name = "v4 e4 cut to 30 (in IPv4 header)", .f = {TO_E4, .payload_len = 18, .cut = 30}},
	{.name = "v4 e4 cut to 34 (no UDP header)", .f = {TO_E4, .payload_len = 18, .cut = 34}},
	{.name = "v4 e4 cut to 38 (in UDP header)", .f = {TO_E4, .payload_len = 18, .cut = 38}},
	{.name = "v4 e4 cut to 50 (in payload)", .f = {TO_E4, .payload_len = 18, .cut = 50}},
	{.name = "v4 e4 802.1Q cut to 16 (in tag)", .f = {TO_E4, .payload_len = 18, .vlan = {{0x8100, 100, 0}}, .cut = 16}},
	{.name = "v6 e6 cut to 14 (Ethernet only)", .f = {TO_E6, .payload_len = 18, .cut = 14}},
	{.name = "v6 e6 cut to 40 (in IPv6 header)", .f = {TO_E6, .payload_len = 18, .cut = 40}},
	{.name = "v6 e6 cut to 54 (no UDP header)", .f = {TO_E6, .payload_len = 18, .cut = 54}},
	{.name = "v6 e6 cut to 58 (in UDP header)", .f = {TO_E6, .payload_len = 18, .cut = 58}},
	{.name = "v6 e6 cut to 70 (in payload)", .f = {TO_E6, .payload_len = 18, .cut = 70}},
	/* ---- IPv4 fragments */
	{.name = "v4 e4 100B in 2 fragments", .f = {TO_E4, .payload_len = 100}, .frag_size = 64},
	{.name = "v4 w4 100B in 2 fragments, last first", .f = {TO_W4, .payload_len = 100}, .frag_size = 64, .frag_reverse = true},
	{.name = "v4 e4 3000B in 3 fragments", .f = {TO_E4, .payload_len = 3000}, .frag_size = 1480},
	{.name = "v4 e4 lone first fragment (MF)", .f = {TO_E4, .payload_len = 18, .mf = true}},
	{.name = "v4 e4 lone last fragment (offset 8)", .f = {TO_E4, .payload_len = 18, .frag_off = 8}},
	{.name = "v4 e4 2 fragments, bad UDP checksum", .f = {TO_E4, .payload_len = 100, .udp_csum = FERRY_CSUM_BAD}, .frag_size = 64},
	/* ---- IPv6 extension headers and fragments */
	{.name = "v6 e6 atomic fragment header", .f = {TO_E6, .payload_len = 18, .ext6 = {{.kind = FERRY_EXT6_FRAGMENT, .ident = 77}}}},
	{.name = "v6 w6 atomic fragment header", .f = {TO_W6, .payload_len = 18, .ext6 = {{.kind = FERRY_EXT6_FRAGMENT, .ident = 78}}}},
	{.name = "v6 e6 100B in 2 fragments", .f = {TO_E6, .payload_len = 100}, .frag_size = 64},
	{.name = "v6 e6 3000B in 3 fragments", .f = {TO_E6, .payload_len = 3000}, .frag_size = 1448},
	{.name = "v6 e6 lone first fragment", .f = {TO_E6, .payload_len = 100, .frag = {.on = true, .len = 64, .more = true}}},
	{.name = "v6 e6 hop-by-hop (PadN)", .f = {TO_E6, .payload_len = 18, .ext6 = {EXT_HOP}}},
	{.name = "v6 w6 hop-by-hop (PadN)", .f = {TO_W6, .payload_len = 18, .ext6 = {EXT_HOP}}},
	{.name = "v6 e6 hop-by-hop router alert", .f = {TO_E6, .payload_len = 18, .ext6 = {{.kind = FERRY_EXT6_HOP, .opts = opt6_ra, .opts_len = sizeof(opt6_ra)}}}},
	{.name = "v6 e6 hop-by-hop unknown opt, skip", .f = {TO_E6, .payload_len = 18, .ext6 = {{.kind = FERRY_EXT6_HOP, .opts = opt6_skip, .opts_len = sizeof(opt6_skip)}}}},
	{.name = "v6 e6 hop-by-hop unknown opt, discard", .f = {TO_E6, .payload_len = 18, .ext6 = {{.kind = FERRY_EXT6_HOP, .opts = opt6_discard, .opts_len = sizeof(opt6_discard)}}}},
	{.name = "v6 e6 dst-options (PadN)", .f = {TO_E6, .payload_len = 18, .ext6 = {EXT_DEST}}},
	{.name = "v6 e6 dst-options unknown opt, ICMP", .f = {TO_E6, .payload_len = 18, .ext6 = {{.kind = FERRY_EXT6_DEST, .opts = opt6_icmp, .opts_len = sizeof(opt6_icmp)}}}},
	{.name = "v6 e6 hop-by-hop after dst-options", .f = {TO_E6, .payload_len = 18, .ext6 = {EXT_DEST, EXT_HOP}}},
	{.name = "v6 e6 routing type 0, segleft 0", .f = {TO_E6, .payload_len = 18, .ext6 = {{.kind = FERRY_EXT6_ROUTING, .rt_type = 0, .segleft = 0, .naddr = 1, .rt_addr = "2001:2::2"}}}},
	{.name = "v6 e6 routing type 0, segleft 1", .f = {TO_E6, .payload_len = 18, .ext6 = {{.kind = FERRY_EXT6_ROUTING, .rt_type = 0, .segleft = 1, .naddr = 1, .rt_addr = "2001:2::1"}}}},
	{.name = "v6 e6 routing type 4 (SRH), segleft 0", .f = {TO_E6, .payload_len = 18, .ext6 = {{.kind = FERRY_EXT6_ROUTING, .rt_type = 4, .segleft = 0, .naddr = 1, .rt_addr = "2001:2::1"}}}},
	{.name = "v6 e6 hbh+dst+rt0+atomic frag", .f = {TO_E6, .payload_len = 18, .ext6 = {EXT_HOP, EXT_DEST, {.kind = FERRY_EXT6_ROUTING, .naddr = 1, .rt_addr = "2001:2::2"}, {.kind = FERRY_EXT6_FRAGMENT, .ident = 79}}}},
	/* ---- source addresses and ports */
	{.name = "v4 e4 src 0.0.0.0", .f = {TO_E4, .src = "0.0.0.0", .payload_len = 18}},
	{.name = "v4 e4 src 127.0.0.1", .f = {TO_E4, .src = "127.0.0.1", .payload_len = 18}},
	{.name = "v4 e4 src 224.0.0.5 (multicast)", .f = {TO_E4, .src = "224.0.0.5", .payload_len = 18}},
	{.name = "v4 e4 src 255.255.255.255", .f = {TO_E4, .src = "255.255.255.255", .payload_len = 18}},
	{.name = "v4 e4 src 198.18.0.255 (directed bcast)", .f = {TO_E4, .src = "198.18.0.255", .payload_len = 18}},
	{.name = "v4 w4 src 198.18.0.255 (directed bcast)", .f = {TO_W4, .src = "198.18.0.255", .payload_len = 18}},
	{.name = "v4 e4 src 198.18.0.1 (host's own)", .f = {TO_E4, .src = H4, .payload_len = 18}},
	{.name = "v4 e4 src 10.1.2.3 (no route back)", .f = {TO_E4, .src = "10.1.2.3", .payload_len = 18}},
	{.name = "v4 e4 sport 0", .f = {TO_E4, .payload_len = 18}, .sport = SPORT_ZERO},
	{.name = "v6 e6 src ::", .f = {TO_E6, .src = "::", .payload_len = 18}},
	{.name = "v6 e6 src ::1", .f = {TO_E6, .src = "::1", .payload_len = 18}},
	{.name = "v6 e6 src ff02::1 (multicast)", .f = {TO_E6, .src = "ff02::1", .payload_len = 18}},
	{.name = "v6 e6 src 2001:2::1 (host's own)", .f = {TO_E6, .src = H6, .payload_len = 18}},
	{.name = "v6 e6 src ::ffff:198.18.0.2 (v4-mapped)", .f = {TO_E6, .src = "::ffff:198.18.0.2", .payload_len = 18}},
	{.name = "v6 w6 src ::ffff:198.18.0.2 (v4-mapped)", .f = {TO_W6, .src = "::ffff:198.18.0.2", .payload_len = 18}},
	{.name = "v6 e6 src peer link-local", .f = {TO_E6, .src = PEER_LL, .payload_len = 18}},
	{.name = "v6 e6 src 2001:db8::5 (no route back)", .f = {TO_E6, .src = "2001:db8::5", .payload_len = 18}},
	{.name = "v6 e6 sport 0", .f = {TO_E6, .payload_len = 18}, .sport = SPORT_ZERO},
	/* ---- destinations on the wildcard port */
	{.name = "v4 w4 dst 198.18.0.77 (not ours)", .f = {.family = 4, .dst = "198.18.0.77", .dport = W_PORT, .payload_len = 18}},
	{.name = "v6 w6 dst 2001:2::77 (not ours)", .f = {.family = 6, .dst = "2001:2::77", .dport = W_PORT, .payload_len = 18}},
	{.name = "v4 w4 dst 255.255.255.255", .f = {.family = 4, .dst = "255.255.255.255", .dport = W_PORT, .payload_len = 18}, .mac = MAC_BCAST},
	{.name = "v4 w4 dst 198.18.0.255", .f = {.family = 4, .dst = "198.18.0.255", .dport = W_PORT, .payload_len = 18}, .mac = MAC_BCAST},
	{.name = "v4 w4 dst 198.18.0.255, unicast MAC", .f = {.family = 4, .dst = "198.18.0.255", .dport = W_PORT, .payload_len = 18}},
	{.name = "v4 e4-port dst 198.18.0.255", .f = {.family = 4, .dst = "198.18.0.255", .dport = E_PORT, .payload_len = 18}, .mac = MAC_BCAST},
	{.name = "v4 w4 dst 239.9.9.9 (not joined)", .f = {.family = 4, .dst = "239.9.9.9", .dport = W_PORT, .payload_len = 18}, .mac = MAC_MCAST},
	{.name = "v4 w4 dst 224.0.0.1 (all hosts)", .f = {.family = 4, .dst = "224.0.0.1", .dport = W_PORT, .payload_len = 18}, .mac = MAC_MCAST},
	{.name = "v6 w6 dst ff0e::1234 (not joined)", .f = {.family = 6, .dst = "ff0e::1234", .dport = W_PORT, .payload_len = 18}, .mac = MAC_MCAST},
	{.name = "v6 w6 dst ff02::1 (all nodes)", .f = {.family = 6, .dst = "ff02::1", .dport = W_PORT, .payload_len = 18}, .mac = MAC_MCAST},
	{.name = "v4 w4 dst 127.0.0.1", .f = {.family = 4, .dst = "127.0.0.1", .dport = W_PORT, .payload_len = 18}},
	{.name = "v6 w6 dst ::1", .f = {.family = 6, .dst = "::1", .dport = W_PORT, .payload_len = 18}},
	{.name = "v4 w4 dst 0.0.0.0", .f = {.family = 4, .dst = "0.0.0.0", .dport = W_PORT, .payload_len = 18}},
	{.name = "v6 w6 dst ::", .f = {.family = 6, .dst = "::", .dport = W_PORT, .payload_len = 18}},
	{.name = "v6 w6 dst host link-local", .f = {.family = 6, .dst = HOST_LL, .dport = W_PORT, .payload_len = 18}},
	{.name = "v4 w4 src 0.0.0.0 dst 255.255.255.255", .f = {.family = 4, .src = "0.0.0.0", .dst = "255.255.255.255", .dport = W_PORT, .payload_len = 18}, .mac = MAC_BCAST},
	/* ---- UDP checksums */
	{.name = "v4 e4 bad UDP checksum", .f = {TO_E4, .payload_len = 18, .udp_csum = FERRY_CSUM_BAD}},
	{.name = "v4 w4 bad UDP checksum", .f = {TO_W4, .payload_len = 18, .udp_csum = FERRY_CSUM_BAD}},
	{.name = "v6 e6 bad UDP checksum", .f = {TO_E6, .payload_len = 18, .udp_csum = FERRY_CSUM_BAD}},
	{.name = "v4 e4 zero UDP checksum (legal)", .f = {TO_E4, .payload_len = 18, .udp_csum = FERRY_CSUM_ZERO}},
	{.name = "v6 e6 zero UDP checksum (illegal)", .f = {TO_E6, .payload_len = 18, .udp_csum = FERRY_CSUM_ZERO}},
	{.name = "v4 e4 partial sum, sent as complete", .f = {TO_E4, .payload_len = 18, .udp_csum = FERRY_CSUM_PARTIAL}},
	{.name = "v6 e6 partial sum, sent as complete", .f = {TO_E6, .payload_len = 18, .udp_csum = FERRY_CSUM_PARTIAL}},
	{.name = "v4 e4 partial sum, CHECKSUM_PARTIAL", .f = {TO_E4, .payload_len = 18, .udp_csum = FERRY_CSUM_PARTIAL}, .csum_partial = true},
	{.name = "v6 e6 partial sum, CHECKSUM_PARTIAL", .f = {TO_E6, .payload_len = 18, .udp_csum = FERRY_CSUM_PARTIAL}, .csum_partial = true},
	{.name = "v4 w4 partial sum, CHECKSUM_PARTIAL 333B", .f = {TO_W4, .payload_len = 333, .udp_csum = FERRY_CSUM_PARTIAL}, .csum_partial = true},
	/* ---- TTL / hop limit */
	{.name = "v4 e4 TTL 0", .f = {TO_E4, .payload_len = 18, .ttl = 0, .ttl_set = true}},
	{.name = "v4 e4 TTL 1", .f = {TO_E4, .payload_len = 18, .ttl = 1}},
	{.name = "v6 e6 hop limit 0", .f = {TO_E6, .payload_len = 18, .ttl = 0, .ttl_set = true}},
	{.name = "v6 e6 hop limit 1", .f = {TO_E6, .payload_len = 18, .ttl = 1}},
	{.name = "v6 e6 hop limit 255, tclass 0xb8", .f = {TO_E6, .payload_len = 18, .ttl = 255, .tos = 0xb8}},
	/* ---- last: sources that can make ferryd answer itself */
	{.name = "v4 e4 src = e4 (198.18.0.1:7777)", .f = {TO_E4, .src = H4, .payload_len = 18}, .sport = E_PORT},
	{.name = "v4 w4 src 198.18.0.1:7778 (own port)", .f = {TO_W4, .src = H4, .payload_len = 18}, .sport = W_PORT},
	{.name = "v4 w4 src 127.0.0.1:7778 (own port)", .f = {TO_W4, .src = "127.0.0.1", .payload_len = 18}, .sport = W_PORT},
	{.name = "v4 w4 src 0.0.0.0:7778 dst 255.255.255.255", .f = {.family = 4, .src = "0.0.0.0", .dst = "255.255.255.255", .dport = W_PORT, .payload_len = 18}, .mac = MAC_BCAST, .sport = W_PORT},
	{.name = "v6 e6 src = e6 ([2001:2::1]:7777)", .f = {TO_E6, .src = H6, .payload_len = 18}, .sport = E_PORT},
	{.name = "v6 w6 src [2001:2::1]:7778 (own port)", .f = {TO_W6, .src = H6, .payload_len = 18}, .sport = W_PORT},
	{.name = "v6 w6 src [::]:7778 (own port)", .f = {TO_W6, .src = "::", .payload_len = 18}, .sport = W_PORT},
};
/* clang-format on */

#define NCASES (sizeof(cases) / sizeof(cases[0]))
#define UNATTRIBUTED NCASES /* the extra slot of a run's results */

/* One reply as compared: everything but IP id, TTL and checksums. */
struct reply {
	uint8_t dst_mac[6];
	unsigned int nvlan;
	uint16_t tpid[2], vid[2];
	union ferry_sockaddr src, dst;
	bool reassembled;
	uint8_t *payload;
	size_t len;
};

struct case_result {
	unsigned int n; /* replies attributed to the case */
	struct reply r[KEEP];
	int send_err; /* first send error (-errno), 0 */
};

struct run {
	char mode[16];
	struct case_result res[NCASES + 1];
	unsigned int final4, final6; /* replies to the closing plain datagrams */
	unsigned int sent; /* datagrams sent to ferryd: corpus entries and the closing two */
	unsigned int captured, not_udp, overflow;
	int64_t rx_packets, tx_packets, tx_dropped;
	int status; /* wait status; -1 if it did not exit */
	uint64_t reasm_dropped;
};

static struct {
	struct ferry_testns ns;
	struct ferry_test_ferryd d;
	struct ferry_rawsock rs, host_rs; /* fp0 in the peer namespace; fh0 (rawsock's own test only) */
	struct run runs[2];
	char host_ll[INET6_ADDRSTRLEN], peer_ll[INET6_ADDRSTRLEN];
} fx = {.d = FERRY_TEST_FERRYD_INIT, .rs = FERRY_RAWSOCK_INIT, .host_rs = FERRY_RAWSOCK_INIT};

static struct ferry_rawsock_frame capbuf[MAX_CAPTURE];
static unsigned int ncap;
static uint8_t framebuf[FERRY_FRAME_MAX];
static unsigned int run_salt; /* makes IP ids and fragment idents differ between runs */

static void free_run(struct run *run)
{
	for (size_t i = 0; i <= NCASES; i++)
		for (unsigned int k = 0; k < KEEP; k++) {
			free(run->res[i].r[k].payload);
			run->res[i].r[k].payload = NULL;
		}
}

static void free_capture(void)
{
	for (unsigned int i = 0; i < ncap; i++)
		ferry_rawsock_frame_release(&capbuf[i]);
	ncap = 0;
}

static void teardown(void)
{
	ferry_test_ferryd_stop(&fx.d);
	ferry_rawsock_close(&fx.rs);
	ferry_rawsock_close(&fx.host_rs);
	free_capture();
	free_run(&fx.runs[0]);
	free_run(&fx.runs[1]);
	ferry_testns_teardown(&fx.ns);
}

/* The EUI-64 link-local address of mac. */
static void link_local(const uint8_t mac[6], char *out, size_t len)
{
	snprintf(out, len, "fe80::%02x%02x:%02xff:fe%02x:%02x%02x", mac[0] ^ 2, mac[1], mac[2], mac[3], mac[4],
		 mac[5]);
}

/* True when ns has no tentative IPv6 address left (DAD done), waiting up to timeout_ms. */
static bool dad_done(const char *ns, int timeout_ms)
{
	uint64_t deadline = ferry_test_now_ms() + (uint64_t)timeout_ms;
	char cmd[256], line[256];

	snprintf(cmd, sizeof(cmd), "ip -n %s -6 addr show tentative 2>/dev/null", ns);
	do {
		FILE *f = popen(cmd, "r");
		bool any = false;

		if (!f)
			return false;
		while (fgets(line, sizeof(line), f))
			any = true;
		pclose(f);
		if (!any)
			return true;
		usleep(50000);
	} while (ferry_test_now_ms() < deadline);
	return false;
}

static void env_up(void)
{
	int err;

	if (!ferry_test_is_root())
		cr_skip_test("needs root for network namespaces, raw sockets and XDP");
	err = ferry_testns_setup(&fx.ns);
	cr_assert_eq(err, 0, "expected the namespace fixture to come up, got %s", strerror(-err));
	fx.d.pid = -1;
	/* link-local addresses take part in the corpus: wait until they are usable on both sides */
	cr_assert(dad_done(fx.ns.host, 5000) && dad_done(fx.ns.peer, 5000),
		  "expected IPv6 duplicate address detection to finish within 5 s");
	/* CHECKSUM_PARTIAL sends need fp0's TX checksum offload on (else the
	 * kernel finishes the sum before veth); the raw socket's other frames
	 * are sent as they are either way */
	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_PEER, "ethtool -K " FERRY_TESTNS_PEER_IF " tx on >/dev/null"),
		     0, "expected ethtool to turn " FERRY_TESTNS_PEER_IF "'s TX checksum offload on");
	link_local(fx.ns.host_mac, fx.host_ll, sizeof(fx.host_ll));
	link_local(fx.ns.peer_mac, fx.peer_ll, sizeof(fx.peer_ll));
	err = ferry_rawsock_open(&fx.rs, &fx.ns, FERRY_TESTNS_PEER, FERRY_TESTNS_PEER_IF);
	cr_assert_eq(err, 0, "expected a raw packet socket on " FERRY_TESTNS_PEER_IF ": %s", strerror(-err));
}

/* ------------------------------------------------------------ sending */

static const char *resolve(const char *a, int family)
{
	if (!a)
		return family == 4 ? FERRY_TESTNS_PEER4 : FERRY_TESTNS_PEER6;
	if (!strcmp(a, HOST_LL))
		return fx.host_ll;
	if (!strcmp(a, PEER_LL))
		return fx.peer_ll;
	return a;
}

static void dst_mac_of(const struct diff_case *c, uint8_t mac[6])
{
	static const uint8_t foreign[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x77};
	uint8_t a[16];

	switch (c->mac) {
	case MAC_FOREIGN:
		memcpy(mac, foreign, 6);
		return;
	case MAC_BCAST:
		memset(mac, 0xff, 6);
		return;
	case MAC_MCAST:
		if (c->f.family == 4) {
			uint8_t m[6] = {0x01, 0x00, 0x5e, 0x7f, 0x00, 0x01};

			if (inet_pton(AF_INET, resolve(c->f.dst, 4), a) == 1 && (a[0] & 0xf0) == 0xe0) {
				m[3] = a[1] & 0x7f;
				m[4] = a[2];
				m[5] = a[3];
			}
			memcpy(mac, m, 6);
		} else {
			uint8_t m[6] = {0x33, 0x33, 0x00, 0x00, 0x00, 0x01};

			if (inet_pton(AF_INET6, resolve(c->f.dst, 6), a) == 1 && a[0] == 0xff)
				memcpy(m + 2, a + 12, 4);
			memcpy(mac, m, 6);
		}
		return;
	default:
		memcpy(mac, fx.ns.host_mac, 6);
		return;
	}
}

/* "diff-NNN-" then the alphabet, cut to len. */
static void make_payload(uint8_t *p, size_t len, const char *tag)
{
	size_t t = strlen(tag);

	for (size_t i = 0; i < len; i++)
		p[i] = i < t ? (uint8_t)tag[i] : (uint8_t)('a' + (i - t) % 26);
}

/* Moves whatever arrives into capbuf until deadline; beyond MAX_CAPTURE it is counted and dropped. */
static void capture_until(struct run *run, uint64_t deadline)
{
	while (ferry_test_now_ms() < deadline) {
		int r;

		if (ncap >= MAX_CAPTURE) {
			run->overflow += (unsigned int)ferry_rawsock_drain(&fx.rs);
			usleep(1000);
			continue;
		}
		r = ferry_rawsock_collect(&fx.rs, deadline, 0, capbuf + ncap, MAX_CAPTURE - ncap);
		cr_assert_geq(r, 0, "expected to read the raw socket: %s", strerror(-r));
		ncap += (unsigned int)r;
	}
}

/* Sends case i (one frame, or its fragments). Returns 0 or the first -errno. */
static int send_case(size_t i, unsigned int salt)
{
	const struct diff_case *c = &cases[i];
	struct ferry_frame_spec s = c->f;
	struct ferry_frame_layout lay;
	uint8_t payload[4096];
	char tag[16];
	uint32_t total, pieces[8][2];
	unsigned int np = 0;
	int err = 0;

	cr_assert_leq(c->f.payload_len, sizeof(payload), "case %zu: payload too large for the test", i);
	snprintf(tag, sizeof(tag), "diff-%03zu-", i);
	make_payload(payload, s.payload_len, tag);
	s.payload = payload;
	dst_mac_of(c, s.dst_mac);
	memcpy(s.src_mac, fx.ns.peer_mac, 6);
	s.src = resolve(c->f.src, s.family);
	s.dst = resolve(c->f.dst, s.family);
	s.sport = c->sport == SPORT_ZERO ? 0 : c->sport ? (uint16_t)c->sport : (uint16_t)(SPORT_BASE + i);
	if (!s.ip_id)
		s.ip_id = (salt << 12 | (uint32_t)i) & (s.family == 4 ? 0xffff : 0xffffffff);
	for (int k = 0; k < FERRY_FRAME_MAX_EXT6; k++)
		if (s.ext6[k].kind == FERRY_EXT6_FRAGMENT)
			s.ext6[k].ident += salt << 16;

	total = (uint32_t)(8 + s.payload_len);
	if (c->frag_size) {
		for (uint32_t off = 0; off < total && np < 8; off += c->frag_size) {
			pieces[np][0] = off;
			pieces[np][1] = total - off < c->frag_size ? total - off : c->frag_size;
			np++;
		}
	} else {
		np = 1;
	}
	for (unsigned int k = 0; k < np; k++) {
		unsigned int p = c->frag_reverse ? np - 1 - k : k;
		size_t len;
		int r;

		if (c->frag_size) {
			s.frag.on = true;
			s.frag.off = pieces[p][0];
			s.frag.len = pieces[p][1];
			s.frag.more = pieces[p][0] + pieces[p][1] < total;
		}
		len = ferry_frame_build_layout(&s, framebuf, sizeof(framebuf), &lay);
		cr_assert_gt(len, 0, "expected case %zu (%s) to build", i, c->name);
		if (c->csum_partial)
			r = ferry_rawsock_send_csum_partial(&fx.rs, framebuf, len, lay.l4_off, 6);
		else
			r = ferry_rawsock_send(&fx.rs, framebuf, len);
		if (r && !err)
			err = r;
	}
	return err;
}

/* A plain valid datagram to e4 or e6 with its own tag (after the corpus). */
static int send_final(int family, const char *tag)
{
	struct ferry_frame_spec s = {.family = family, .dst = family == 4 ? H4 : H6, .dport = E_PORT,
				     .src = family == 4 ? FERRY_TESTNS_PEER4 : FERRY_TESTNS_PEER6,
				     .sport = (uint16_t)(family == 4 ? 30004 : 30006), .payload_len = 32};
	uint8_t payload[32];
	size_t len;

	make_payload(payload, sizeof(payload), tag);
	s.payload = payload;
	memcpy(s.dst_mac, fx.ns.host_mac, 6);
	memcpy(s.src_mac, fx.ns.peer_mac, 6);
	len = ferry_frame_build(&s, framebuf, sizeof(framebuf));
	cr_assert_gt(len, 0, "expected the closing datagram to build");
	return ferry_rawsock_send(&fx.rs, framebuf, len);
}

/* ------------------------------------------------------------ attribution */

static uint16_t port_of(const union ferry_sockaddr *a)
{
	return ntohs(a->sa.sa_family == AF_INET6 ? a->in6.sin6_port : a->in4.sin_port);
}

/* The case a reply belongs to: by payload tag, else by destination port; UNATTRIBUTED if neither. */
static size_t attribute(const struct ferry_rawsock_frame *f)
{
	uint16_t port = port_of(&f->dst);

	if (f->payload_len >= TAG_LEN && !memcmp(f->payload, "diff-", 5) && f->payload[8] == '-') {
		unsigned int n = 0;
		bool digits = true;

		for (int k = 5; k < 8; k++) {
			digits = digits && f->payload[k] >= '0' && f->payload[k] <= '9';
			n = n * 10 + (unsigned int)(f->payload[k] - '0');
		}
		if (digits && n < NCASES)
			return n;
	}
	if (port >= SPORT_BASE && port < SPORT_BASE + NCASES)
		return port - SPORT_BASE;
	for (size_t i = 0; i < NCASES; i++) /* a case with its own source port */
		if (cases[i].sport > 0 && cases[i].sport == port)
			return i;
	return UNATTRIBUTED;
}

static void add_reply(struct case_result *cr, const struct ferry_rawsock_frame *f)
{
	struct reply *r;

	if (cr->n++ >= KEEP)
		return;
	r = &cr->r[cr->n - 1];
	memset(r, 0, sizeof(*r));
	memcpy(r->dst_mac, f->dst_mac, 6);
	r->nvlan = f->nvlan < 2 ? f->nvlan : 2;
	for (unsigned int k = 0; k < r->nvlan; k++) {
		r->tpid[k] = f->vlan[k].tpid;
		r->vid[k] = f->vlan[k].vid;
	}
	r->src = f->src;
	r->dst = f->dst;
	r->reassembled = f->reassembled;
	r->len = f->payload_len;
	if (f->payload_len) {
		r->payload = malloc(f->payload_len);
		cr_assert_not_null(r->payload, "out of memory");
		memcpy(r->payload, f->payload, f->payload_len);
	}
}

static void attribute_all(struct run *run)
{
	for (unsigned int i = 0; i < ncap; i++) {
		const struct ferry_rawsock_frame *f = &capbuf[i];

		if (f->kind != FERRY_RAWSOCK_UDP) {
			run->not_udp++;
			continue;
		}
		if (f->payload_len >= 9 && !memcmp(f->payload, "diff-fin4", 9)) {
			run->final4++;
			continue;
		}
		if (f->payload_len >= 9 && !memcmp(f->payload, "diff-fin6", 9)) {
			run->final6++;
			continue;
		}
		add_reply(&run->res[attribute(f)], f);
	}
}

/* ------------------------------------------------------------ one run */

/* FERRY_DIFF_ONLY="3,170-176" limits the corpus (to investigate a case); unset: all. */
static bool case_selected(size_t i)
{
	const char *only = getenv("FERRY_DIFF_ONLY");

	if (!only || !*only)
		return true;
	for (const char *p = only; *p;) {
		char *end;
		unsigned long lo = strtoul(p, &end, 10), hi = lo;

		if (end == p)
			break;
		if (*end == '-')
			hi = strtoul(end + 1, &end, 10);
		if (i >= lo && i <= hi)
			return true;
		p = *end ? end + 1 : end;
	}
	return false;
}

static void run_mode(const char *mode, struct run *run)
{
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", mode, "--handler", "echo",
			      "--service", "e4=198.18.0.1:7777", "--service", "e6=[2001:2::1]:7777",
			      "--service", "w4=0.0.0.0:7778", "--service", "w6=[::]:7778", NULL};
	unsigned int salt = ++run_salt;
	uint64_t next;
	const char *log;
	int r;

	memset(run, 0, sizeof(*run));
	snprintf(run->mode, sizeof(run->mode), "%s", mode);
	run->status = -1;
	ferry_test_ferryd_spawn(&fx.d, &fx.ns, "ferryd-diff", args);
	r = ferry_test_ferryd_wait_ready(&fx.d, READY_TIMEOUT_MS);
	cr_assert_eq(r, 0, "expected ferryd --mode %s to log 'ferryd: ready' (%s); log:\n%s", mode,
		     r == -ESRCH ? "it exited" : "timed out", ferry_test_ferryd_log(&fx.d));

	/* nothing from before this run (setup's ND, the last run's stragglers) */
	capture_until(run, ferry_test_now_ms() + 100);
	free_capture();
	ferry_rawsock_drain(&fx.rs);

	next = ferry_test_now_ms();
	for (size_t i = 0; i < NCASES; i++) {
		if (!case_selected(i))
			continue;
		run->res[i].send_err = send_case(i, salt);
		run->sent++;
		next += PACE_MS;
		capture_until(run, next);
	}
	capture_until(run, ferry_test_now_ms() + SETTLE_MS);

	/* ferryd still works: one plain datagram per family, exactly one reply each */
	cr_assert_eq(send_final(4, "diff-fin4-"), 0, "expected to send the closing IPv4 datagram");
	cr_assert_eq(send_final(6, "diff-fin6-"), 0, "expected to send the closing IPv6 datagram");
	run->sent += 2;
	capture_until(run, ferry_test_now_ms() + FINAL_MS);

	ferry_test_ferryd_signal(&fx.d, SIGTERM);
	if (ferry_test_ferryd_wait_exit(&fx.d, EXIT_TIMEOUT_MS) == 0)
		run->status = fx.d.status;
	log = ferry_test_ferryd_log(&fx.d);
	run->rx_packets = ferry_test_stats_value(log, "rx_packets");
	run->tx_packets = ferry_test_stats_value(log, "tx_packets");
	run->tx_dropped = ferry_test_stats_value(log, "tx_dropped");
	if (run->status == -1) {
		fprintf(stderr, "ferryd --mode %s did not exit within %d ms of SIGTERM; log:\n%s\n", mode,
			EXIT_TIMEOUT_MS, log);
		ferry_test_ferryd_stop(&fx.d); /* SIGKILL, reap */
	} else if (!(WIFEXITED(run->status) && WEXITSTATUS(run->status) == 0)) {
		fprintf(stderr, "ferryd --mode %s exited with status 0x%x; log:\n%s\n", mode, run->status, log);
	}
	run->captured = ncap;
	run->reasm_dropped = fx.rs.reasm_dropped;
	attribute_all(run);
	free_capture();
}

/* ------------------------------------------------------------ comparing */

static int sa_cmp(const union ferry_sockaddr *a, const union ferry_sockaddr *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return a->sa.sa_family < b->sa.sa_family ? -1 : 1;
	if (a->sa.sa_family == AF_INET) {
		int c = memcmp(&a->in4.sin_addr, &b->in4.sin_addr, 4);

		return c ? c : (int)port_of(a) - (int)port_of(b);
	}
	if (a->sa.sa_family == AF_INET6) {
		int c = memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 16);

		return c ? c : (int)port_of(a) - (int)port_of(b);
	}
	return 0;
}

/* Orders replies; 0 when equal in everything compared (not IP id, TTL, checksums, how it was fragmented). */
static int reply_cmp(const void *pa, const void *pb)
{
	const struct reply *a = pa, *b = pb;
	int c;

	if ((c = sa_cmp(&a->src, &b->src)) || (c = sa_cmp(&a->dst, &b->dst)))
		return c;
	if ((c = memcmp(a->dst_mac, b->dst_mac, 6)))
		return c;
	if (a->nvlan != b->nvlan)
		return a->nvlan < b->nvlan ? -1 : 1;
	for (unsigned int k = 0; k < a->nvlan; k++)
		if (a->tpid[k] != b->tpid[k] || a->vid[k] != b->vid[k])
			return a->tpid[k] != b->tpid[k] ? (int)a->tpid[k] - (int)b->tpid[k]
							  : (int)a->vid[k] - (int)b->vid[k];
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return a->len ? memcmp(a->payload, b->payload, a->len) : 0;
}

static bool results_equal(struct case_result *a, struct case_result *b, bool count_only)
{
	unsigned int n = a->n < KEEP ? a->n : KEEP;

	if (a->n != b->n)
		return false;
	if (count_only)
		return true;
	qsort(a->r, n, sizeof(a->r[0]), reply_cmp);
	qsort(b->r, n, sizeof(b->r[0]), reply_cmp);
	for (unsigned int k = 0; k < n; k++)
		if (reply_cmp(&a->r[k], &b->r[k]))
			return false;
	return true;
}

static void sa_str(const union ferry_sockaddr *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (a->sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &a->in4.sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, port_of(a));
	} else {
		inet_ntop(AF_INET6, &a->in6.sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, port_of(a));
	}
}

/* "none", or the first reply ("src > dst 18B [8100:100] to ff:..") and "+N more". */
static void describe(const struct case_result *cr, const struct case_result *other, char *buf, size_t len)
{
	const struct reply *r = &cr->r[0];
	char s[64], d[64], tags[32] = "", mac[40] = "", more[32] = "", note[48] = "";

	if (cr->send_err) {
		snprintf(buf, len, "send failed: %s", strerror(-cr->send_err));
		return;
	}
	if (!cr->n) {
		snprintf(buf, len, "none");
		return;
	}
	sa_str(&r->src, s, sizeof(s));
	sa_str(&r->dst, d, sizeof(d));
	for (unsigned int k = 0; k < r->nvlan; k++)
		snprintf(tags + strlen(tags), sizeof(tags) - strlen(tags), " [%04x:%u]", r->tpid[k], r->vid[k]);
	if (memcmp(r->dst_mac, fx.ns.peer_mac, 6))
		snprintf(mac, sizeof(mac), " to %02x:%02x:%02x:%02x:%02x:%02x", r->dst_mac[0], r->dst_mac[1],
			 r->dst_mac[2], r->dst_mac[3], r->dst_mac[4], r->dst_mac[5]);
	if (cr->n > 1)
		snprintf(more, sizeof(more), " (%u replies)", cr->n);
	if (other && other->n && !reply_cmp(r, &other->r[0]))
		note[0] = '\0';
	else if (other && other->n && other->r[0].len == r->len && !sa_cmp(&r->src, &other->r[0].src) &&
		 !sa_cmp(&r->dst, &other->r[0].dst))
		snprintf(note, sizeof(note), " (payload/MAC/tags differ)");
	snprintf(buf, len, "%s > %s %zuB%s%s%s%s", s, d, r->len, tags, mac, more, note);
}

/*
 * Compares run b against run a case by case; prints a table of the
 * mismatches (and a summary of both runs) to stderr. Returns how many cases differ.
 */
static unsigned int compare_runs(struct run *a, struct run *b)
{
	bool all = getenv("FERRY_DIFF_VERBOSE") && *getenv("FERRY_DIFF_VERBOSE");
	unsigned int bad = 0, shown = 0;
	char da[160], db[160];

	fprintf(stderr, "\n== ferryd differential: %zu cases, %s vs %s ==\n", NCASES, a->mode, b->mode);
	for (int k = 0; k < 2; k++) {
		struct run *r = k ? b : a;

		fprintf(stderr,
			"  %-7s datagrams sent %u, frames captured %u (not UDP %u, over the cap %u), unattributed UDP %u, "
			"closing replies v4 %u v6 %u, ferryd rx_packets %" PRId64 " tx_packets %" PRId64
			" tx_dropped %" PRId64 ", exit 0x%x\n",
			r->mode, r->sent, r->captured, r->not_udp, r->overflow, r->res[UNATTRIBUTED].n, r->final4, r->final6,
			r->rx_packets, r->tx_packets, r->tx_dropped, r->status);
	}
	for (size_t i = 0; i <= NCASES; i++) {
		struct case_result *ca = &a->res[i], *cb = &b->res[i];

		bool same = ca->send_err == cb->send_err && results_equal(ca, cb, i == UNATTRIBUTED);

		bad += !same;
		if (same && !all)
			continue;
		if (!shown++)
			fprintf(stderr, "  %-4s %-44s | %-58s | %s\n", "#", "case", a->mode, b->mode);
		describe(ca, cb, da, sizeof(da));
		describe(cb, ca, db, sizeof(db));
		fprintf(stderr, "%s %-4zu %-44s | %-58s | %s\n", same ? " " : "!", i,
			i == UNATTRIBUTED ? "(unattributed UDP)" : cases[i].name, da, db);
	}
	if (!bad)
		fprintf(stderr, "  every case answered alike\n");
	else
		fprintf(stderr, "  %u of %zu cases differ\n", bad, NCASES);
	return bad;
}

/*
 * The verdict on two runs. bounded: also expect each ferryd to have sent at
 * most one datagram per datagram it was sent (more means it answered itself:
 * a loop the wire does not show).
 */
static void check_runs(struct run *a, struct run *b, bool bounded)
{
	unsigned int bad = compare_runs(a, b);

	for (int k = 0; k < 2; k++) {
		struct run *r = k ? b : a;

		cr_expect(r->status != -1 && WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0,
			  "expected ferryd --mode %s to exit 0 on SIGTERM, wait status 0x%x (-1: still running)",
			  r->mode, r->status);
		cr_expect_eq(r->final4, 1, "expected exactly one reply to the closing IPv4 datagram in %s mode, got %u",
			     r->mode, r->final4);
		cr_expect_eq(r->final6, 1, "expected exactly one reply to the closing IPv6 datagram in %s mode, got %u",
			     r->mode, r->final6);
		if (bounded)
			cr_expect(r->tx_packets >= 0 && r->tx_packets <= (int64_t)r->sent,
				  "expected ferryd --mode %s to send at most one datagram per datagram sent to it "
				  "(%u), it sent %" PRId64 ": it answered itself (a loop)", r->mode, r->sent, r->tx_packets);
		cr_expect_eq(r->overflow, 0, "expected fewer than %d frames captured in %s mode", MAX_CAPTURE, r->mode);
	}
	cr_expect_eq(bad, 0, "expected %s mode to answer every crafted frame exactly as %s mode does: %u of %zu "
		     "cases differ (table on stderr)", a->mode, b->mode, bad, NCASES);
	for (size_t i = 0; i < NCASES; i++)
		cr_expect_eq(a->res[i].send_err, 0, "expected case %zu (%s) to be sent: %s", i, cases[i].name,
			     strerror(-a->res[i].send_err));
}

/* ------------------------------------------------------------ tests */

Test(ferryd_diff, corpus_has_100_cases, .timeout = 10)
{
	cr_assert_geq(NCASES, 100, "expected a corpus of at least 100 frames, have %zu", NCASES);
	cr_assert_lt(NCASES, 1000, "the payload tag has three digits");
	for (size_t i = 0; i < NCASES; i++)
		for (size_t j = i + 1; j < NCASES; j++)
			cr_assert_str_neq(cases[i].name, cases[j].name, "expected case names to be unique");
}

/* The test checks itself: the kernel's path against itself must agree on every case. */
Test(ferryd_diff, socket_vs_socket_self_check, .fini = teardown, .timeout = 120)
{
	env_up();
	run_mode("socket", &fx.runs[0]);
	run_mode("socket", &fx.runs[1]);
	check_runs(&fx.runs[0], &fx.runs[1], false);
}

Test(ferryd_diff, xdp_answers_what_socket_answers, .fini = teardown, .timeout = 120)
{
	env_up();
	run_mode("xdp", &fx.runs[0]);
	run_mode("socket", &fx.runs[1]);
	check_runs(&fx.runs[0], &fx.runs[1], true);
}

/* ------------------------------------------------- the tools themselves */

static uint32_t pseudo_sum(int family, const uint8_t *ip, uint32_t len)
{
	uint32_t sum = family == 4 ? ferry_test_sum16(0, ip + 12, 8) : ferry_test_sum16(0, ip + 8, 32);

	return sum + 17 + len;
}

Test(ferryd_diff, frame_builder_fields_and_sums, .timeout = 10)
{
	static const uint8_t nops[] = {1, 1, 1, 1};
	uint8_t a[2048], b[2048], whole[2048], mac[6] = {2, 0, 0, 0, 0, 1};
	struct ferry_frame_spec s = {.family = 4, .src = "198.18.0.2", .dst = "198.18.0.1", .sport = 1234,
				     .dport = 7777, .payload_len = 18, .ip_opts = nops, .ip_opts_len = 4,
				     .vlan = {{0x88a8, 100, 1}, {0x8100, 200, 0}}, .ip_id = 0x4242, .df = true};
	struct ferry_frame_layout lay;
	size_t n, off;
	uint8_t *ip, *udp;

	memcpy(s.dst_mac, mac, 6);
	n = ferry_frame_build_layout(&s, a, sizeof(a), &lay);
	cr_assert_eq(n, 14 + 8 + 24 + 8 + 18, "expected the IPv4 frame's length, got %zu", n);
	cr_assert_eq(memcmp(a, mac, 6), 0, "expected the destination MAC first");
	cr_assert(a[12] == 0x88 && a[13] == 0xa8 && a[14] == 0x20 && a[15] == 100, "expected the outer tag 88a8, pcp 1, vid 100");
	cr_assert(a[16] == 0x81 && a[17] == 0x00 && a[18] == 0 && a[19] == 200, "expected the inner tag 8100 vid 200");
	cr_assert(a[20] == 0x08 && a[21] == 0x00, "expected ethertype IPv4 after the tags");
	ip = a + lay.l3_off;
	udp = a + lay.l4_off;
	cr_assert_eq(lay.l3_off, 22, "expected IP after two tags");
	cr_assert_eq(ip[0], 0x46, "expected version 4, IHL 6 (one word of options)");
	cr_assert(ip[6] == 0x40 && ip[7] == 0, "expected DF only");
	cr_assert_eq(ferry_test_sum16(0, ip, 24), 0xffff, "expected a correct IPv4 header checksum");
	cr_assert_eq(ferry_test_sum16(pseudo_sum(4, ip, 26), udp, 26), 0xffff, "expected a correct UDP checksum");
	cr_assert_eq(memcmp(udp + 8, "abcdefghijklmnopqr", 18), 0, "expected the default pattern");

	s.udp_csum = FERRY_CSUM_BAD;
	s.ip_csum = FERRY_CSUM_BAD;
	ferry_frame_build(&s, b, sizeof(b));
	cr_assert_neq(ferry_test_sum16(0, b + 22, 24), 0xffff, "expected a wrong IPv4 header checksum");
	cr_assert_neq(ferry_test_sum16(pseudo_sum(4, b + 22, 26), b + 46, 26), 0xffff, "expected a wrong UDP checksum");
	cr_assert_neq(b[46 + 6] | b[46 + 7], 0, "expected a wrong UDP checksum never to be 0 (\"none\")");
	s.udp_csum = FERRY_CSUM_PARTIAL;
	ferry_frame_build(&s, b, sizeof(b));
	cr_assert_eq((uint16_t)(b[52] << 8 | b[53]), ferry_test_sum16(pseudo_sum(4, b + 22, 26), NULL, 0),
		     "expected the partial checksum to be the folded pseudo-header sum");

	/* IPv6 with a chain, UDP length 0 (checksummed over what is there) */
	struct ferry_frame_spec s6 = {.family = 6, .src = "2001:2::2", .dst = "2001:2::1", .sport = 1, .dport = 2,
				      .payload_len = 5, .udp_len_set = true, .udp_len = 0,
				      .ext6 = {{.kind = FERRY_EXT6_HOP}, {.kind = FERRY_EXT6_FRAGMENT, .ident = 9}}};

	n = ferry_frame_build_layout(&s6, a, sizeof(a), &lay);
	cr_assert_eq(n, 14 + 40 + 8 + 8 + 8 + 5, "expected the IPv6 frame's length, got %zu", n);
	ip = a + 14;
	cr_assert(ip[6] == 0 && ip[40] == 44 && ip[41] == 0 && ip[48] == 17, "expected hop-by-hop, fragment, UDP");
	cr_assert(ip[4] == 0 && ip[5] == 8 + 8 + 13, "expected payload_len over the chain and UDP");
	cr_assert(ip[42] == 1 && ip[43] == 4, "expected PadN filling the hop-by-hop header");
	cr_assert(ip[52] == 0 && ip[53] == 0 && ip[54] == 0 && ip[55] == 9, "expected the fragment ident");
	cr_assert_eq(ferry_test_sum16(pseudo_sum(6, ip, 13), a + lay.l4_off, 13), 0xffff,
		     "expected a UDP checksum over the 13 bytes there");

	/* fragments carry consecutive slices of one datagram */
	s = (struct ferry_frame_spec){.family = 4, .src = "198.18.0.2", .dst = "198.18.0.1", .sport = 5, .dport = 6,
				      .payload_len = 100};
	n = ferry_frame_build_layout(&s, whole, sizeof(whole), &lay);
	off = 0;
	for (int k = 0; k < 2; k++) {
		s.frag.on = true;
		s.frag.off = k ? 64 : 0;
		s.frag.len = k ? 0 : 64;
		s.frag.more = !k;
		n = ferry_frame_build_layout(&s, a, sizeof(a), &lay);
		cr_assert_eq(a[20] & 0x20, k ? 0 : 0x20, "expected MF on the first piece only");
		cr_assert_eq(a[21], k ? 8 : 0, "expected fragment offset %d", k ? 8 : 0);
		cr_assert_eq(ferry_test_sum16(0, a + 14, 20), 0xffff, "expected each piece's header checksum right");
		cr_assert_eq(memcmp(a + 34, whole + 34 + off, n - 34), 0, "expected piece %d to be its slice", k);
		off += n - 34;
	}
	cr_assert_eq(off, 108, "expected the pieces to add up to the datagram");

	s = (struct ferry_frame_spec){.family = 4, .src = "198.18.0.2", .dst = "198.18.0.1", .pad_to = 60};
	cr_assert_eq(ferry_frame_build(&s, a, sizeof(a)), 60, "expected padding to 60");
	s.cut = 20;
	cr_assert_eq(ferry_frame_build(&s, a, sizeof(a)), 20, "expected the cut");
	cr_assert_eq(ferry_frame_build(&s, a, 30), 0, "expected 0 when it does not fit");
	s.src = "not an address";
	cr_assert_eq(ferry_frame_build(&s, a, sizeof(a)), 0, "expected 0 for an address that does not parse");
}

/* Frames from fp0 seen on fh0 (no ferryd): tags the kernel strips put back, fragments reassembled. */
Test(ferryd_diff, rawsock_parses_what_arrives, .fini = teardown, .timeout = 60)
{
	struct ferry_frame_spec specs[] = {
		{.family = 4, .src = "198.18.0.2", .dst = "198.18.0.1", .sport = 1111, .dport = 7001,
		 .payload_len = 20, .vlan = {{0x8100, 100, 0}}},
		{.family = 6, .src = "2001:2::2", .dst = "2001:2::1", .sport = 2222, .dport = 7002, .payload_len = 21,
		 .vlan = {{0x88a8, 10, 0}, {0x8100, 20, 0}}},
		{.family = 4, .src = "198.18.0.2", .dst = "198.18.0.1", .sport = 3333, .dport = 7003,
		 .payload_len = 3000},
		{.family = 6, .src = "2001:2::2", .dst = "2001:2::1", .sport = 4444, .dport = 7004,
		 .payload_len = 3000, .ip_id = 0x1234567},
	};
	struct ferry_rawsock_frame got[64];
	uint8_t other[60];
	unsigned int seen[4] = {0}, others = 0;
	int n, err;

	env_up();
	err = ferry_rawsock_open(&fx.host_rs, &fx.ns, FERRY_TESTNS_HOST, FERRY_TESTNS_HOST_IF);
	cr_assert_eq(err, 0, "expected a raw socket on fh0: %s", strerror(-err));
	ferry_rawsock_drain(&fx.host_rs);
	for (size_t i = 0; i < 4; i++) {
		struct ferry_frame_spec s = specs[i];
		uint32_t total = (uint32_t)(8 + s.payload_len), step = s.family == 4 ? 1480 : 1448;

		memcpy(s.dst_mac, fx.ns.host_mac, 6);
		memcpy(s.src_mac, fx.ns.peer_mac, 6);
		for (uint32_t off = 0; off < total; off += step) {
			size_t len;

			if (s.payload_len > 1000) {
				s.frag.on = true;
				s.frag.off = off;
				s.frag.len = step;
				s.frag.more = off + step < total;
			}
			len = ferry_frame_build(&s, framebuf, sizeof(framebuf));
			cr_assert_gt(len, 0, "expected frame %zu to build", i);
			cr_assert_eq(ferry_rawsock_send(&fx.rs, framebuf, len), 0, "expected to send frame %zu", i);
			if (!s.frag.on)
				break;
		}
	}
	memset(other, 0, sizeof(other));
	memcpy(other, fx.ns.host_mac, 6);
	memcpy(other + 6, fx.ns.peer_mac, 6);
	other[12] = 0x88;
	other[13] = 0xb5; /* local experimental ethertype */
	cr_assert_eq(ferry_rawsock_send(&fx.rs, other, sizeof(other)), 0, "expected to send a non-IP frame");

	n = ferry_rawsock_collect(&fx.host_rs, ferry_test_now_ms() + 500, 0, got, 64);
	cr_assert_geq(n, 0, "expected to collect: %s", strerror(-n));
	for (int k = 0; k < n; k++) {
		struct ferry_rawsock_frame *f = &got[k];
		char d[256];

		if (f->kind != FERRY_RAWSOCK_UDP) {
			others += f->ethertype == 0x88b5;
			ferry_rawsock_frame_release(f);
			continue;
		}
		for (size_t i = 0; i < 4; i++) {
			const struct ferry_frame_spec *s = &specs[i];

			if (port_of(&f->src) != s->sport)
				continue;
			seen[i]++;
			ferry_rawsock_describe(f, d, sizeof(d));
			cr_expect_eq(f->family, s->family == 4 ? AF_INET : AF_INET6, "%s: family", d);
			cr_expect_eq(port_of(&f->dst), s->dport, "%s: destination port", d);
			cr_expect_eq(f->payload_len, s->payload_len, "%s: payload length", d);
			cr_expect_eq(f->payload[0], 'a', "%s: payload", d);
			cr_expect_eq(f->reassembled, s->payload_len > 1000, "%s: reassembled", d);
			cr_expect_eq(memcmp(f->dst_mac, fx.ns.host_mac, 6), 0, "%s: destination MAC", d);
			for (unsigned int t = 0; t < 2; t++) {
				cr_expect_eq(f->nvlan > t ? f->vlan[t].tpid : 0, s->vlan[t].tpid, "%s: tag %u TPID", d, t);
				cr_expect_eq(f->nvlan > t ? f->vlan[t].vid : 0, s->vlan[t].vid, "%s: tag %u VID", d, t);
			}
		}
		ferry_rawsock_frame_release(f);
	}
	for (size_t i = 0; i < 4; i++)
		cr_expect_eq(seen[i], 1, "expected frame %zu (source port %u) once, saw it %u times", i, specs[i].sport,
			     seen[i]);
	cr_expect_eq(others, 1, "expected the non-IP frame reported as such once, got %u", others);

	/* the sender never sees its own frames */
	n = ferry_rawsock_collect(&fx.rs, ferry_test_now_ms() + 100, FERRY_RAWSOCK_UDP_ONLY, got, 64);
	cr_assert_geq(n, 0, "expected to collect on fp0");
	for (int k = 0; k < n; k++) {
		cr_expect(port_of(&got[k].src) < 1111 || port_of(&got[k].src) > 4444,
			  "expected fp0's socket not to report its own sends");
		ferry_rawsock_frame_release(&got[k]);
	}
}
