/* SPDX-License-Identifier: MIT */
/*
 * Frames in and out of UMEM: parse an Ethernet/VLAN/IPv4/IPv6/UDP frame into
 * its payload and addresses, build the headers in front of a payload. Pure
 * functions over byte arrays; the parser trusts nothing in the frame.
 */
#ifndef FERRYD_PACKET_H
#define FERRYD_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include <ferry/udp.h>

#define FERRYD_ETH_HLEN 14
#define FERRYD_IP4_HLEN 20
#define FERRYD_IP6_HLEN 40
#define FERRYD_UDP_HLEN 8
/* Room to leave in front of a payload for any header ferryd builds (no VLAN on TX). */
#define FERRYD_TX_HEADROOM (FERRYD_ETH_HLEN + FERRYD_IP6_HLEN + FERRYD_UDP_HLEN)

/* What ferryd_packet_parse() found. */
struct ferryd_packet {
	size_t payload_off; /* from the first byte of the frame (the Ethernet header) */
	size_t payload_len; /* the UDP length less its header: Ethernet padding is not in it */
	union ferry_sockaddr src, dst;
};

/*
 * Parses an untagged Ethernet frame carrying IPv4 (no options) or IPv6 (no
 * extension headers) and UDP: exactly the forms the XDP program steers,
 * everything else being the kernel's. Every length field is checked against
 * the frame and the other layers; the IPv4 header checksum is verified. The
 * UDP checksum is not: the program verified it. A link-local IPv6 address
 * gets ifindex as its scope id.
 *
 * Returns 0 with *out filled, or:
 *   -EPROTONOSUPPORT  VLAN-tagged, not IPv4/IPv6, IPv4 options, IPv6
 *                     extension headers, or not UDP
 *   -EOPNOTSUPP       an IPv4 fragment or an IPv6 fragment header
 *   -EINVAL           truncated or inconsistent headers, bad IPv4 checksum
 */
int ferryd_packet_parse(const uint8_t *frame, size_t len, unsigned int ifindex, struct ferryd_packet *out);

/* Bytes of Ethernet + IP + UDP headers for a family (AF_INET/AF_INET6), 0 for another. */
size_t ferryd_packet_header_len(int family);

/*
 * Writes Ethernet, IPv4 or IPv6 (by dst's family) and UDP headers so that they
 * end at buf + payload_off. The payload_len bytes of payload are at payload,
 * or, when payload is NULL, already in place at buf + payload_off (they are
 * read for the checksum, never copied).
 * src and dst must be of the same family; src gives the source address and
 * port. Fills the IPv4 header checksum and the UDP checksum (also for IPv4; a
 * sum of 0 is sent as 0xffff). TTL / hop limit 64, IPv4 DF set.
 *
 * Returns the offset of the first header byte (payload_off less the header
 * length), or -EINVAL (families differ or are not IP, payload_off too small
 * for the headers), -EMSGSIZE (payload too long for one UDP datagram).
 */
long ferryd_packet_build(uint8_t *buf, size_t payload_off, const uint8_t *payload, size_t payload_len,
			 const uint8_t src_mac[6], const uint8_t dst_mac[6], const union ferry_sockaddr *src,
			 const union ferry_sockaddr *dst);

/*
 * The Internet checksum (RFC 1071), summed in the machine's byte order (the
 * one's complement sum does not depend on it). Adds len bytes at p to a
 * running sum, an odd last byte padded with zero: only the last piece of a
 * sum may have an odd length.
 */
uint64_t ferryd_csum_add(uint64_t sum, const void *p, size_t len);

/*
 * Folds a running sum to 16 bits and complements it. The result is in
 * network byte order as it lies in memory: store it into the checksum field
 * as is (memcpy or a uint16_t store). 0 when the bytes summed include a
 * correct checksum.
 */
uint16_t ferryd_csum_fold(uint64_t sum);

#endif
