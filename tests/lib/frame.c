/* SPDX-License-Identifier: MIT */
/* The frame builder of frame.h. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "testutil.h"

#define NEXT_HOP 0
#define NEXT_ROUTING 43
#define NEXT_FRAGMENT 44
#define NEXT_DEST 60

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v);
}

int ferry_frame_parse_mac(const char *str, uint8_t mac[6])
{
	unsigned int m[6];

	if (sscanf(str, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6)
		return -1;
	for (int i = 0; i < 6; i++) {
		if (m[i] > 0xff)
			return -1;
		mac[i] = (uint8_t)m[i];
	}
	return 0;
}

static uint8_t ext6_code(enum ferry_frame_ext6_kind k)
{
	switch (k) {
	case FERRY_EXT6_HOP:
		return NEXT_HOP;
	case FERRY_EXT6_ROUTING:
		return NEXT_ROUTING;
	case FERRY_EXT6_DEST:
		return NEXT_DEST;
	default:
		return NEXT_FRAGMENT;
	}
}

/* Bytes of one extension header. */
static size_t ext6_len(const struct ferry_frame_ext6 *e)
{
	switch (e->kind) {
	case FERRY_EXT6_HOP:
	case FERRY_EXT6_DEST: {
		size_t n = 2 + e->opts_len;

		return n <= 8 ? 8 : (n + 7) / 8 * 8;
	}
	case FERRY_EXT6_ROUTING:
		return 8 + 16 * (size_t)e->naddr;
	case FERRY_EXT6_FRAGMENT:
		return 8;
	default:
		return 0;
	}
}

/* Writes e (len bytes, from ext6_len) at p with next header next. */
static void ext6_write(const struct ferry_frame_ext6 *e, uint8_t *p, size_t len, uint8_t next)
{
	memset(p, 0, len);
	p[0] = e->next_set ? e->next : next;
	switch (e->kind) {
	case FERRY_EXT6_HOP:
	case FERRY_EXT6_DEST: {
		size_t pad = len - 2 - e->opts_len;

		p[1] = (uint8_t)(len / 8 - 1);
		if (e->opts_len)
			memcpy(p + 2, e->opts, e->opts_len);
		if (pad == 1) {
			p[2 + e->opts_len] = 0; /* Pad1 */
		} else if (pad >= 2) {
			p[2 + e->opts_len] = 1; /* PadN */
			p[3 + e->opts_len] = (uint8_t)(pad - 2);
		}
		break;
	}
	case FERRY_EXT6_ROUTING: {
		struct in6_addr a;

		memset(&a, 0, sizeof(a));
		if (e->rt_addr)
			inet_pton(AF_INET6, e->rt_addr, &a);
		p[1] = (uint8_t)(2 * e->naddr);
		p[2] = e->rt_type;
		p[3] = e->segleft;
		if (e->rt_type == 4) /* SRH: last entry */
			p[4] = e->naddr ? (uint8_t)(e->naddr - 1) : 0;
		for (unsigned int i = 0; i < e->naddr; i++)
			memcpy(p + 8 + 16 * i, &a, 16);
		break;
	}
	case FERRY_EXT6_FRAGMENT:
		put16(p + 2, (uint32_t)(e->frag_off << 3 | (e->frag_more ? 1 : 0)));
		put32(p + 4, e->ident);
		break;
	default:
		break;
	}
}

static uint16_t bad_csum(uint16_t c)
{
	uint16_t b = c ^ 0x0100;

	return b ? b : (uint16_t)(c ^ 0x0200);
}

size_t ferry_frame_build(const struct ferry_frame_spec *s, uint8_t *out, size_t cap)
{
	return ferry_frame_build_layout(s, out, cap, NULL);
}

size_t ferry_frame_build_layout(const struct ferry_frame_spec *s, uint8_t *out, size_t cap,
				struct ferry_frame_layout *layout)
{
	uint8_t saddr[16], daddr[16], *dg = NULL;
	size_t alen = s->family == 4 ? 4 : 16, n, l3, l4, dglen, slice_off = 0, slice_len, end, ihl = 0, extlen = 0;
	uint8_t upper = s->proto || s->proto_set ? s->proto : 17;
	uint32_t ulen_field, cov, sum;
	uint16_t csum;
	int af = s->family == 4 ? AF_INET : AF_INET6;

	if (layout)
		memset(layout, 0, sizeof(*layout));
	if ((s->family != 4 && s->family != 6) || !s->src || !s->dst || s->ip_opts_len > 40)
		return 0;
	if (inet_pton(af, s->src, saddr) != 1 || inet_pton(af, s->dst, daddr) != 1)
		return 0;

	/* the whole upper-layer datagram: UDP header + payload, checksummed */
	dglen = 8 + s->payload_len;
	if (dglen > 65535 + 8)
		return 0;
	dg = malloc(dglen);
	if (!dg)
		return 0;
	ulen_field = s->udp_len_set ? s->udp_len : (uint32_t)((int)dglen + s->udp_len_delta);
	put16(dg, s->sport);
	put16(dg + 2, s->dport);
	put16(dg + 4, ulen_field);
	put16(dg + 6, 0);
	if (s->payload)
		memcpy(dg + 8, s->payload, s->payload_len);
	else
		for (size_t i = 0; i < s->payload_len; i++)
			dg[8 + i] = (uint8_t)('a' + (i + s->pattern_seed) % 26);
	ulen_field &= 0xffff;
	cov = ulen_field >= 8 && ulen_field <= dglen ? ulen_field : (uint32_t)dglen;
	sum = ferry_test_sum16(0, saddr, alen);
	sum = ferry_test_sum16(sum, daddr, alen);
	sum += 17 + (cov & 0xffff) + (cov >> 16);
	sum = ferry_test_sum16(sum, NULL, 0); /* fold */
	switch (s->udp_csum) {
	case FERRY_CSUM_PARTIAL:
		csum = (uint16_t)sum;
		break;
	case FERRY_CSUM_ZERO:
		csum = 0;
		break;
	case FERRY_CSUM_VALUE:
		csum = s->udp_csum_value;
		break;
	default:
		csum = (uint16_t)~ferry_test_sum16(sum, dg, cov);
		if (!csum)
			csum = 0xffff;
		if (s->udp_csum == FERRY_CSUM_BAD)
			csum = bad_csum(csum);
		break;
	}
	put16(dg + 6, csum);

	if (s->frag.on) {
		slice_off = s->frag.off;
		if (slice_off > dglen)
			slice_off = dglen;
		slice_len = s->frag.len ? s->frag.len : dglen - slice_off;
		if (slice_off + slice_len > dglen)
			slice_len = dglen - slice_off;
	} else {
		slice_len = dglen;
	}

	/* Ethernet and tags */
	if (cap < 14 + 8) {
		free(dg);
		return 0;
	}
	memcpy(out, s->dst_mac, 6);
	memcpy(out + 6, s->src_mac, 6);
	n = 12;
	for (int i = 0; i < 2 && s->vlan[i].tpid; i++) {
		put16(out + n, s->vlan[i].tpid);
		put16(out + n + 2, (uint32_t)((s->vlan[i].pcp & 7) << 13 | (s->vlan[i].vid & 0xfff)));
		n += 4;
	}
	put16(out + n, s->ethertype ? s->ethertype : s->family == 4 ? 0x0800 : 0x86dd);
	n += 2;
	l3 = n;

	if (s->family == 4) {
		size_t optlen = (s->ip_opts_len + 3) / 4 * 4;
		uint16_t fo;

		ihl = 20 + optlen;
		if (l3 + ihl + slice_len > cap)
			goto toobig;
		memset(out + l3, 0, ihl);
		out[l3] = (uint8_t)((s->version ? s->version : 4) << 4 | (s->ihl_field ? s->ihl_field : ihl / 4));
		out[l3 + 1] = s->tos;
		put16(out + l3 + 2, (uint32_t)((int)(ihl + slice_len) + s->ip_len_delta));
		put16(out + l3 + 4, s->ip_id);
		fo = s->frag.on ? (uint16_t)(slice_off / 8) : s->frag_off;
		put16(out + l3 + 6, (uint32_t)((s->df ? 0x4000 : 0) | (s->mf || (s->frag.on && s->frag.more) ? 0x2000 : 0) |
					       (fo & 0x1fff)));
		out[l3 + 8] = s->ttl || s->ttl_set ? s->ttl : 64;
		out[l3 + 9] = upper;
		memcpy(out + l3 + 12, saddr, 4);
		memcpy(out + l3 + 16, daddr, 4);
		if (s->ip_opts_len)
			memcpy(out + l3 + 20, s->ip_opts, s->ip_opts_len);
		switch (s->ip_csum) {
		case FERRY_CSUM_ZERO:
			csum = 0;
			break;
		case FERRY_CSUM_VALUE:
			csum = s->ip_csum_value;
			break;
		default:
			csum = (uint16_t)~ferry_test_sum16(0, out + l3, ihl);
			if (s->ip_csum == FERRY_CSUM_BAD)
				csum = bad_csum(csum);
			break;
		}
		put16(out + l3 + 10, csum);
		l4 = l3 + ihl;
	} else {
		struct ferry_frame_ext6 chain[FERRY_FRAME_MAX_EXT6 + 1];
		size_t nch = 0, p;

		for (int i = 0; i < FERRY_FRAME_MAX_EXT6 && s->ext6[i].kind != FERRY_EXT6_NONE; i++)
			chain[nch++] = s->ext6[i];
		if (s->frag.on) {
			memset(&chain[nch], 0, sizeof(chain[nch]));
			chain[nch].kind = FERRY_EXT6_FRAGMENT;
			chain[nch].frag_off = (uint16_t)(slice_off / 8);
			chain[nch].frag_more = s->frag.more;
			chain[nch].ident = s->ip_id;
			nch++;
		}
		for (size_t i = 0; i < nch; i++)
			extlen += ext6_len(&chain[i]);
		if (l3 + 40 + extlen + slice_len > cap)
			goto toobig;
		memset(out + l3, 0, 40);
		put32(out + l3, (uint32_t)(s->version ? s->version : 6) << 28 | (uint32_t)s->tos << 20 | (s->flow & 0xfffff));
		put16(out + l3 + 4, (uint32_t)((int)(extlen + slice_len) + s->ip_len_delta));
		out[l3 + 6] = nch ? ext6_code(chain[0].kind) : upper;
		out[l3 + 7] = s->ttl || s->ttl_set ? s->ttl : 64;
		memcpy(out + l3 + 8, saddr, 16);
		memcpy(out + l3 + 24, daddr, 16);
		p = l3 + 40;
		for (size_t i = 0; i < nch; i++) {
			size_t len = ext6_len(&chain[i]);

			ext6_write(&chain[i], out + p, len, i + 1 < nch ? ext6_code(chain[i + 1].kind) : upper);
			p += len;
		}
		l4 = p;
	}
	memcpy(out + l4, dg + slice_off, slice_len);
	end = l4 + slice_len;
	if (s->pad_to > end) {
		if (s->pad_to > cap)
			goto toobig;
		memset(out + end, 0, s->pad_to - end);
		end = s->pad_to;
	}
	if (layout) {
		layout->l3_off = l3;
		layout->l4_off = l4;
		layout->payload_off = slice_off == 0 ? l4 + 8 : l4;
		layout->len = s->cut && s->cut < end ? s->cut : end;
		layout->udp_csum = (uint16_t)(dg[6] << 8 | dg[7]);
	}
	if (s->cut && s->cut < end)
		end = s->cut;
	free(dg);
	return end;

toobig:
	free(dg);
	return 0;
}
