/* SPDX-License-Identifier: MIT */
/* The map layouts shared by the XDP program (bpf/ferry.bpf.c) and ferryd. */
#ifndef FERRY_MAPS_H
#define FERRY_MAPS_H

#include <linux/types.h>

#define FERRY_MAX_SERVICES 64
#define FERRY_MAX_QUEUES 64
#define FERRY_MAX_ADDRS 1024

/*
 * services map (BPF_MAP_TYPE_HASH): key -> struct ferry_service_val.
 * family is 4 or 6; addr holds the IPv4 address in its first 4 bytes (rest
 * zero) or the IPv6 address; port is in network byte order. A wildcard
 * service has an all-zero addr. The program looks up the exact destination
 * first, then the wildcard. A multicast addr is a group the service joined.
 */
struct ferry_service_key {
	__u8 family;
	__u8 pad;
	__be16 port;
	__u8 addr[16];
};

struct ferry_service_val {
	__u32 id; /* ferryd's index of the service */
};

/*
 * addrs map (BPF_MAP_TYPE_HASH): the addresses the host's kernel treats as its
 * own, kept current by ferryd from rtnetlink. A destination must carry
 * FERRY_ADDR_IFACE to be steered; a source with any flag is a martian (the
 * kernel would drop it) and goes to the kernel.
 */
struct ferry_addr_key {
	__u8 family; /* 4 or 6 */
	__u8 pad[3];
	__u8 addr[16];
};

enum {
	FERRY_ADDR_IFACE = 1, /* an address of the interface ferryd serves */
	FERRY_ADDR_LOCAL = 2, /* an address of the host (any interface) */
	FERRY_ADDR_BCAST = 4, /* an IPv4 broadcast address of a host subnet */
	FERRY_ADDR_TENTATIVE = 8, /* on the interface, not usable yet (IPv6 duplicate address detection) */
};

struct ferry_addr_val {
	__u32 flags;
};

/* config map (BPF_MAP_TYPE_ARRAY, one entry): what the program knows of the interface. */
struct ferry_xdp_config {
	__u8 mac[6];	 /* the interface's MAC: other unicast destinations are other hosts' */
	__u16 max_frame; /* longest frame an AF_XDP socket takes (UMEM frame less headroom); 0: none */
};

/* Per-CPU counters (BPF_MAP_TYPE_PERCPU_ARRAY, __u64 values), one per verdict/reason. */
enum ferry_xdp_counter {
	FERRY_XDP_REDIRECTED = 0,   /* to an AF_XDP socket */
	FERRY_XDP_PASS_NOT_IP,	    /* ARP, other ethertypes */
	FERRY_XDP_PASS_NOT_UDP,	    /* TCP, ICMP, ... */
	FERRY_XDP_PASS_NO_SERVICE,  /* UDP to a port/address no service has */
	FERRY_XDP_PASS_FRAGMENT,    /* IPv4 fragment or IPv6 fragment header */
	FERRY_XDP_PASS_MALFORMED,   /* truncated or inconsistent headers */
	FERRY_XDP_PASS_NO_SOCKET,   /* service matched, no socket on this queue */
	FERRY_XDP_PASS_VLAN,	    /* 802.1Q/802.1ad tagged: the kernel knows the VLANs */
	FERRY_XDP_PASS_OTHER_HOST,  /* destination MAC neither ours nor the group's */
	FERRY_XDP_PASS_IP_OPTIONS,  /* IPv4 options (source routes, ...) */
	FERRY_XDP_PASS_IPV6_EXT,    /* IPv6 extension headers before UDP */
	FERRY_XDP_PASS_NOT_LOCAL,   /* destination address not on the interface, group not a service's */
	FERRY_XDP_PASS_BAD_SOURCE,  /* martian source: unspecified, loopback, multicast, broadcast, our own */
	FERRY_XDP_PASS_SOURCE_PORT, /* source port 0 */
	FERRY_XDP_PASS_TOO_BIG,	    /* longer than an AF_XDP frame, or in several buffers */
	FERRY_XDP_PASS_CHECKSUM,    /* IPv4 header or UDP checksum does not verify, IPv6 UDP checksum 0 */
	FERRY_XDP_NCOUNTERS,
};

#endif
