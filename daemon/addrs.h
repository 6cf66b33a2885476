/* SPDX-License-Identifier: MIT */
/*
 * The host's addresses as a set ferryd can ask "is this one of ours?" without
 * a syscall: built once from an rtnetlink dump, then only read. The same facts
 * fill the XDP program's addrs map (FERRY_ADDR_* flags of ferry_maps.h).
 */
#ifndef FERRYD_ADDRS_H
#define FERRYD_ADDRS_H

#include <stdbool.h>
#include <stdint.h>

#include <ferry/udp.h>

#include "ferry_maps.h"

/* One address of the host, as rtnetlink gave it. */
struct ferryd_host_addr {
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t prefixlen;
	bool usable;	/* a destination the kernel delivers to (not tentative, not failed DAD) */
	unsigned int ifindex;
	uint8_t addr[16];  /* IPv4 in the first 4 bytes */
	uint8_t brd[4];	   /* IPv4: IFA_BROADCAST, 0.0.0.0 if none */
	int scope;	   /* RT_SCOPE_* */
};

struct ferryd_addrset_entry {
	uint8_t family; /* 4 or 6, as in the XDP maps; 0: empty slot */
	uint32_t flags; /* FERRY_ADDR_* */
	uint8_t addr[16];
};

/* Immutable once built; the entries are what the XDP map holds. */
struct ferryd_addrset {
	unsigned int n, mask; /* entries used; table size - 1 (a power of two, at most half full) */
	struct ferryd_addrset_entry *slots;
};

/*
 * Builds the set from the host's addresses: each is FERRY_ADDR_LOCAL, and
 * when on ifindex FERRY_ADDR_IFACE too (FERRY_ADDR_TENTATIVE while it is not
 * usable yet); each IPv4 subnet wider
 * than /31 adds its broadcast address as FERRY_ADDR_BCAST (as the kernel's
 * local table does), and an explicit broadcast address too. 0 or -ENOMEM. Free with ferryd_addrset_free().
 */
int ferryd_addrset_build(struct ferryd_addrset *s, const struct ferryd_host_addr *a, unsigned int n,
			 unsigned int ifindex);
void ferryd_addrset_free(struct ferryd_addrset *s);

/* The FERRY_ADDR_* flags of an address (family 4 or 6; 4 or 16 bytes at addr); 0 if not the host's. */
uint32_t ferryd_addrset_flags(const struct ferryd_addrset *s, uint8_t family, const void *addr);

/* Whether two sets hold the same entries. */
bool ferryd_addrset_equal(const struct ferryd_addrset *a, const struct ferryd_addrset *b);

/*
 * Why a datagram must not be sent to dst (canonical: no IPv4-mapped IPv6)
 * from a service on port svc_port (network order): the one rule behind
 * "ferryd never reflects", for every engine and every sender. A reply to any
 * of these would go to a whole segment, nowhere a peer can be, or (when
 * ferryd serves a network interface, where no datagram from the host itself
 * arrives: local_peers false) back into the host. A datagram to the very
 * address and port it would be sent from never goes anywhere but round.
 */
enum ferryd_dst_refusal {
	FERRYD_DST_OK = 0,
	FERRYD_DST_PORT0,     /* port 0 */
	FERRYD_DST_UNSPEC,    /* 0.0.0.0/8, :: */
	FERRYD_DST_LOOPBACK,  /* 127.0.0.0/8, ::1 (unless local_peers) */
	FERRYD_DST_MULTICAST, /* 224.0.0.0/4, ff00::/8 */
	FERRYD_DST_BROADCAST, /* 255.255.255.255, a subnet's broadcast address */
	FERRYD_DST_LOCAL,     /* an address of this host (unless local_peers) */
	FERRYD_DST_SELF,      /* the service's own port on an address of this host */
	FERRYD_DST_FAMILY,    /* neither IPv4 nor IPv6 */
};
enum ferryd_dst_refusal ferryd_dst_check(const struct ferryd_addrset *s, const union ferry_sockaddr *dst,
					 uint16_t svc_port, bool local_peers);

#endif
