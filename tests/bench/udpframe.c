/* SPDX-License-Identifier: MIT */
/* Builds one complete Ethernet/IPv4-or-IPv6/UDP frame with correct IP and UDP checksums. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <string.h>

#include "udpframe.h"

/* One's-complement sum of len bytes, big-endian 16-bit words, added to sum. */
static uint32_t csum_add(uint32_t sum, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (; len > 1; p += 2, len -= 2)
		sum += (uint32_t)(p[0] << 8 | p[1]);
	if (len)
		sum += (uint32_t)(p[0] << 8);
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

int frame_build_udp(uint8_t *buf, size_t buflen, const uint8_t dst_mac[6], const uint8_t src_mac[6],
		    const union ferry_sockaddr *src, const union ferry_sockaddr *dst, size_t payload_len)
{
	int family = dst->sa.sa_family;
	size_t ip_len = family == AF_INET6 ? sizeof(struct ip6_hdr) : sizeof(struct iphdr);
	size_t udp_len = sizeof(struct udphdr) + payload_len;
	size_t len = FRAME_ETH_LEN + ip_len + udp_len;
	struct udphdr *udp;
	uint8_t *payload;
	uint32_t sum;
	uint16_t csum;

	if (src->sa.sa_family != family || (family != AF_INET && family != AF_INET6))
		return -EINVAL;
	if (len > buflen || udp_len > 0xffff)
		return -ENOSPC;
	memset(buf, 0, FRAME_ETH_LEN + ip_len + sizeof(*udp));
	memcpy(buf, dst_mac, 6);
	memcpy(buf + 6, src_mac, 6);
	buf[12] = (family == AF_INET6 ? ETH_P_IPV6 : ETH_P_IP) >> 8;
	buf[13] = (family == AF_INET6 ? ETH_P_IPV6 : ETH_P_IP) & 0xff;

	udp = (struct udphdr *)(buf + FRAME_ETH_LEN + ip_len);
	payload = (uint8_t *)(udp + 1);
	for (size_t i = 0; i < payload_len; i++)
		payload[i] = (uint8_t)('a' + i % 26);
	udp->len = htons((uint16_t)udp_len);
	udp->check = 0;

	/* The UDP checksum covers a pseudo-header: addresses, protocol, UDP length. */
	sum = IPPROTO_UDP + (uint32_t)udp_len;
	if (family == AF_INET) {
		struct iphdr *ip = (struct iphdr *)(buf + FRAME_ETH_LEN);

		udp->source = src->in4.sin_port;
		udp->dest = dst->in4.sin_port;
		ip->version = 4;
		ip->ihl = 5;
		ip->tot_len = htons((uint16_t)(ip_len + udp_len));
		ip->frag_off = htons(IP_DF);
		ip->ttl = 64;
		ip->protocol = IPPROTO_UDP;
		ip->saddr = src->in4.sin_addr.s_addr;
		ip->daddr = dst->in4.sin_addr.s_addr;
		ip->check = htons(csum_fold(csum_add(0, ip, ip_len)));
		sum = csum_add(sum, &ip->saddr, 8);
	} else {
		struct ip6_hdr *ip6 = (struct ip6_hdr *)(buf + FRAME_ETH_LEN);

		udp->source = src->in6.sin6_port;
		udp->dest = dst->in6.sin6_port;
		ip6->ip6_flow = htonl(6u << 28);
		ip6->ip6_plen = htons((uint16_t)udp_len);
		ip6->ip6_nxt = IPPROTO_UDP;
		ip6->ip6_hlim = 64;
		ip6->ip6_src = src->in6.sin6_addr;
		ip6->ip6_dst = dst->in6.sin6_addr;
		sum = csum_add(sum, &ip6->ip6_src, 32);
	}
	csum = csum_fold(csum_add(sum, udp, udp_len));
	/* 0 means "no checksum" (IPv4) and is invalid (IPv6): send its other form. */
	udp->check = htons(csum ? csum : 0xffff);
	return (int)len;
}

int frame_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int b[6];
	char tail;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		if (b[i] > 0xff)
			return -EINVAL;
		mac[i] = (uint8_t)b[i];
	}
	return 0;
}
