/* SPDX-License-Identifier: MIT */
/* The map layouts shared by the XDP program (bpf/ferry.bpf.c) and ferryd. */
#ifndef FERRY_MAPS_H
#define FERRY_MAPS_H

#include <linux/types.h>

#define FERRY_MAX_SERVICES 64
#define FERRY_MAX_QUEUES 64

/*
 * services map (BPF_MAP_TYPE_HASH): key -> struct ferry_service_val.
 * family is 4 or 6; addr holds the IPv4 address in its first 4 bytes (rest
 * zero) or the IPv6 address; port is in network byte order. A wildcard
 * service has an all-zero addr. The program looks up the exact destination
 * first, then the wildcard.
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

/* Per-CPU counters (BPF_MAP_TYPE_PERCPU_ARRAY, __u64 values), one per verdict/reason. */
enum ferry_xdp_counter {
	FERRY_XDP_REDIRECTED = 0,  /* to an AF_XDP socket */
	FERRY_XDP_PASS_NOT_IP,	   /* ARP, other ethertypes */
	FERRY_XDP_PASS_NOT_UDP,	   /* TCP, ICMP, ... */
	FERRY_XDP_PASS_NO_SERVICE, /* UDP to a port/address no service has */
	FERRY_XDP_PASS_FRAGMENT,   /* IPv4 fragment or IPv6 fragment header */
	FERRY_XDP_PASS_MALFORMED,  /* truncated or inconsistent headers */
	FERRY_XDP_PASS_NO_SOCKET,  /* service matched, no socket on this queue */
	FERRY_XDP_NCOUNTERS,
};

#endif
