/* SPDX-License-Identifier: MIT */
/*
 * AF_PACKET sockets on an interface inside one of the fixture's namespaces:
 * send crafted frames (also as CHECKSUM_PARTIAL, the way a veth peer with TX
 * checksum offload hands them over), and collect what arrives until a
 * deadline, parsed: VLAN tags, addresses and ports, UDP payload, with IP
 * fragments reassembled. Our own sends (PACKET_OUTGOING) are never reported.
 */
#ifndef FERRY_TEST_RAWSOCK_H
#define FERRY_TEST_RAWSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ferry/udp.h>

#include "netns.h"

#define FERRY_RAWSOCK_MAX_VLAN 4
#define FERRY_RAWSOCK_REASM_SLOTS 8

struct ferry_rawsock_reasm; /* pending IP fragments (rawsock.c) */

struct ferry_rawsock {
	int fd;	     /* ETH_P_ALL, bound to the interface: receives everything, sends */
	int vnet_fd; /* PACKET_VNET_HDR, protocol 0 (receives nothing): partial-checksum sends */
	int ifindex;
	uint64_t received;     /* frames read, our own sends excluded */
	uint64_t outgoing;     /* our own sends seen and skipped */
	uint64_t reasm_dropped; /* fragments given up on (table full, expired, too long) */
	struct ferry_rawsock_reasm *reasm;
	uint8_t *buf;
};

#define FERRY_RAWSOCK_INIT { .fd = -1, .vnet_fd = -1 }

enum ferry_rawsock_kind {
	FERRY_RAWSOCK_UDP = 1, /* a whole UDP datagram over IPv4/IPv6 (maybe reassembled) */
	FERRY_RAWSOCK_FRAGMENT, /* an IP fragment (only with FERRY_RAWSOCK_NO_REASSEMBLY) */
	FERRY_RAWSOCK_OTHER,	/* ARP, ICMP, ND, MLD, malformed, anything else */
};

struct ferry_rawsock_frame {
	enum ferry_rawsock_kind kind;
	unsigned int pkttype; /* PACKET_HOST, PACKET_BROADCAST, PACKET_MULTICAST, PACKET_OTHERHOST */
	size_t frame_len;     /* bytes received (a tag the kernel took out counted back in) */
	uint8_t dst_mac[6], src_mac[6];
	unsigned int nvlan; /* tags in wire order, outer first (the kernel's stripped tag restored) */
	struct {
		uint16_t tpid, vid;
		uint8_t pcp;
	} vlan[FERRY_RAWSOCK_MAX_VLAN];
	uint16_t ethertype; /* after the tags */
	/* IP (family 0 when not IP) */
	int family; /* AF_INET, AF_INET6 */
	uint8_t ip_proto; /* IPv4 protocol / IPv6 upper-layer next header */
	uint8_t ttl;	  /* TTL / hop limit */
	bool reassembled; /* the datagram came in IP fragments */
	union ferry_sockaddr src, dst; /* addresses; ports for UDP */
	/* UDP */
	uint16_t udp_len;  /* the length field */
	uint16_t udp_csum; /* the checksum field */
	uint8_t *payload;  /* malloc'd copy of the UDP payload (NULL when empty); ferry_rawsock_frame_release */
	size_t payload_len;
};

/* flags of ferry_rawsock_collect */
#define FERRY_RAWSOCK_UDP_ONLY 0x1	 /* skip everything but whole UDP datagrams */
#define FERRY_RAWSOCK_NO_REASSEMBLY 0x2 /* report fragments as FERRY_RAWSOCK_FRAGMENT */

/*
 * Opens the sockets on ifname in side's namespace (the calling thread enters
 * it and goes back to the root namespace; the sockets stay where they were
 * made): non-blocking, 8 MiB receive buffer, PACKET_AUXDATA. 0 or -errno
 * (then everything is closed again).
 */
int ferry_rawsock_open(struct ferry_rawsock *rs, const struct ferry_testns *ns, enum ferry_testns_side side,
		       const char *ifname);

/* Closes and frees; safe twice and after a failed open (with FERRY_RAWSOCK_INIT). */
void ferry_rawsock_close(struct ferry_rawsock *rs);

/* Sends one frame as it is. 0 or -errno. */
int ferry_rawsock_send(struct ferry_rawsock *rs, const void *frame, size_t len);

/*
 * Sends one frame as CHECKSUM_PARTIAL (virtio_net_hdr NEEDS_CSUM): the
 * checksum field at csum_start + csum_offset should hold the pseudo-header
 * sum (FERRY_CSUM_PARTIAL); the receiver treats the checksum as good, as it
 * does for what the peer's own stack sends over veth. 0 or -errno.
 */
int ferry_rawsock_send_csum_partial(struct ferry_rawsock *rs, const void *frame, size_t len, size_t csum_start,
				    size_t csum_offset);

/*
 * Receives until deadline_ms (ferry_test_now_ms() clock) or until cap frames
 * are stored in out (then it returns at once; the rest stays queued).
 * Returns how many were stored (each to be released), or -errno.
 */
int ferry_rawsock_collect(struct ferry_rawsock *rs, uint64_t deadline_ms, unsigned int flags,
			  struct ferry_rawsock_frame *out, unsigned int cap);

/* Discards everything queued now and all pending fragments. Returns how many frames. */
int ferry_rawsock_drain(struct ferry_rawsock *rs);

/* Frees f's payload copy; safe twice. */
void ferry_rawsock_frame_release(struct ferry_rawsock_frame *f);

/* One line: "udp [8100:100] 198.18.0.1:7777 > 198.18.0.2:20001 len 18 to 02:..:01". Returns buf. */
const char *ferry_rawsock_describe(const struct ferry_rawsock_frame *f, char *buf, size_t len);

#endif
