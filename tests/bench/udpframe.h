/* SPDX-License-Identifier: MIT */
/* Builds one complete Ethernet/IPv4-or-IPv6/UDP frame with correct IP and UDP checksums. */
#ifndef FERRY_BENCH_UDPFRAME_H
#define FERRY_BENCH_UDPFRAME_H

#include <stddef.h>
#include <stdint.h>

#include <ferry/udp.h>

#define FRAME_ETH_LEN 14
#define FRAME_MAX_HDR (FRAME_ETH_LEN + 40 + 8)

/*
 * Writes the frame from src to dst (same family, ports included) with a
 * payload of payload_len bytes (a repeating byte pattern) into buf. Returns
 * the frame length, or -EINVAL (families differ or not IP) / -ENOSPC (buflen
 * too small).
 */
int frame_build_udp(uint8_t *buf, size_t buflen, const uint8_t dst_mac[6], const uint8_t src_mac[6],
		    const union ferry_sockaddr *src, const union ferry_sockaddr *dst, size_t payload_len);

/* Parses "aa:bb:cc:dd:ee:ff". 0 or -EINVAL. */
int frame_parse_mac(const char *s, uint8_t mac[6]);

#endif
