/* SPDX-License-Identifier: MIT */
/*
 * Hand-built Ethernet frames for the XDP program's tests (test_bpf_prog.c
 * runs them with BPF_PROG_TEST_RUN, test_xdp_attach.c writes them on a veth).
 * Every field can be made wrong on purpose.
 */
#ifndef FERRY_TEST_BPF_FRAMES_H
#define FERRY_TEST_BPF_FRAMES_H

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include "testutil.h"

#define FT_MAX 2048

struct ft_spec {
	int family;		/* 4 or 6; 0: a bare ethertype with l4_len bytes after it */
	uint16_t ethertype;	/* family 0 only */
	uint16_t vlan[2];	/* TPIDs of up to two tags, 0 = none */
	const char *dst, *src;	/* addresses; defaults 198.18.0.1 / 2001:2::1 and the peer's */
	uint16_t dport;
	uint8_t proto;		/* IPv4 protocol / IPv6 next header; 0 = UDP unless proto_set */
	uint8_t proto_set;	/* write proto as given, even 0 (IPv6 hop-by-hop) */
	unsigned int ihl;	/* IPv4 header length in words, 0 = 5 (options are NOPs) */
	unsigned int ihl_field; /* when set, written instead of ihl (a lie) */
	uint8_t version;	/* when set, written instead of 4/6 */
	uint16_t frag_off;	/* IPv4 flags+offset, host order */
	unsigned int payload;	/* bytes after the UDP header */
	int ip_len_delta;	/* added to tot_len / payload_len */
	int udp_len_delta;	/* added to the UDP length */
	unsigned int l4_len;	/* bytes of the layer-4 header, 0 = 8 */
	unsigned int cut;	/* when set, the frame is cut to this many bytes */
	unsigned int pad_to;	/* when set, zero padding up to this many bytes */
	const uint8_t *dmac, *smac;
	uint16_t sport;		/* source port, 0 = 40000 unless sport_set */
	uint8_t sport_set;	/* write sport as given, even 0 */
	uint8_t csum;		/* UDP checksum: FT_CSUM_OK (default), _ZERO, _BAD */
};

enum { FT_CSUM_OK, FT_CSUM_ZERO, FT_CSUM_BAD };

/* The frames' default destination MAC: what the tests tell the program is the interface's. */
static const uint8_t ft_host_mac[6] = {0x02, 0, 0, 0, 0, 1};

static inline void ft_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Builds the frame into out[FT_MAX]; returns its length. */
static inline size_t ft_build(const struct ft_spec *s, uint8_t *out)
{
	static const uint8_t smac0[6] = {0x02, 0, 0, 0, 0, 2};
	unsigned int ihl = s->ihl ? s->ihl : 5, l4 = s->l4_len ? s->l4_len : 8;
	uint8_t proto = s->proto || s->proto_set ? s->proto : 17;
	size_t n = 0, ip, l4off, iplen, end;

	memset(out, 0, FT_MAX);
	memcpy(out, s->dmac ? s->dmac : ft_host_mac, 6);
	memcpy(out + 6, s->smac ? s->smac : smac0, 6);
	n = 12;
	for (int i = 0; i < 2 && s->vlan[i]; i++) {
		ft_put16(out + n, s->vlan[i]);
		ft_put16(out + n + 2, (uint16_t)(100 + i)); /* TCI: VLAN id */
		n += 4;
	}
	ft_put16(out + n, s->family == 4 ? 0x0800 : s->family == 6 ? 0x86dd : s->ethertype);
	n += 2;
	ip = n;
	if (s->family == 4) {
		n += ihl * 4;
		l4off = n;
		iplen = ihl * 4 + l4 + s->payload;
		out[ip] = (uint8_t)((s->version ? s->version : 4) << 4 | ((s->ihl_field ? s->ihl_field : ihl) & 0xf));
		ft_put16(out + ip + 2, (uint16_t)((int)iplen + s->ip_len_delta));
		ft_put16(out + ip + 4, 0x1234);
		ft_put16(out + ip + 6, s->frag_off);
		out[ip + 8] = 64;
		out[ip + 9] = proto;
		inet_pton(AF_INET, s->src ? s->src : "198.18.0.2", out + ip + 12);
		inet_pton(AF_INET, s->dst ? s->dst : "198.18.0.1", out + ip + 16);
		for (unsigned int i = 20; i < ihl * 4; i++)
			out[ip + i] = 1; /* NOP options */
		ft_put16(out + ip + 10, (uint16_t)~ferry_test_sum16(0, out + ip, ihl * 4));
	} else if (s->family == 6) {
		n += 40;
		l4off = n;
		iplen = l4 + s->payload;
		out[ip] = (uint8_t)((s->version ? s->version : 6) << 4);
		ft_put16(out + ip + 4, (uint16_t)((int)iplen + s->ip_len_delta));
		out[ip + 6] = proto;
		out[ip + 7] = 64;
		inet_pton(AF_INET6, s->src ? s->src : "2001:2::2", out + ip + 8);
		inet_pton(AF_INET6, s->dst ? s->dst : "2001:2::1", out + ip + 24);
	} else {
		l4off = n;
	}
	/* layer 4: a UDP header (for other protocols, just bytes), then payload */
	ft_put16(out + l4off, s->sport || s->sport_set ? s->sport : 40000);
	ft_put16(out + l4off + 2, s->dport);
	ft_put16(out + l4off + 4, (uint16_t)((int)(l4 + s->payload) + s->udp_len_delta));
	end = l4off + l4;
	for (unsigned int i = 0; i < s->payload; i++)
		out[end + i] = (uint8_t)('a' + i % 26);
	end += s->payload;
	/* The UDP checksum over the pseudo-header and the UDP length as written (when it fits). */
	if ((s->family == 4 || s->family == 6) && proto == 17 && l4 == 8) {
		size_t ulen = (size_t)((int)(l4 + s->payload) + s->udp_len_delta), alen = s->family == 4 ? 4 : 16;
		uint8_t ph[4] = {0, 17, (uint8_t)(ulen >> 8), (uint8_t)ulen};
		uint32_t sum;
		uint16_t c;

		if (ulen > l4 + s->payload)
			ulen = l4 + s->payload;
		sum = ferry_test_sum16(0, out + ip + (s->family == 4 ? 12 : 8), 2 * alen);
		sum = ferry_test_sum16(sum, ph, 4);
		sum = ferry_test_sum16(sum, out + l4off, ulen);
		c = (uint16_t)~sum;
		if (!c)
			c = 0xffff;
		if (s->csum == FT_CSUM_ZERO)
			c = 0;
		else if (s->csum == FT_CSUM_BAD)
			c ^= 0x0101;
		ft_put16(out + l4off + 6, c);
	}
	if (s->pad_to > end)
		end = s->pad_to;
	if (s->cut)
		end = s->cut;
	return end;
}

#endif
