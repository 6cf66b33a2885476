/* SPDX-License-Identifier: MIT */
/* AF_PACKET sockets in a test namespace (rawsock.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "rawsock.h"

#define BUF_SIZE (65536 + 256)
#define REASM_MAX 65535	     /* bytes of one reassembled upper-layer datagram */
#define REASM_TIMEOUT_MS 10000
#define RCVBUF (8 << 20)

struct reasm_slot {
	bool used, have_first;
	int family;
	uint8_t src[16], dst[16];
	uint32_t id;
	uint8_t proto; /* IPv4 protocol / the fragment header's next header (from the first piece) */
	uint64_t born_ms;
	size_t total; /* 0 until the last piece came */
	size_t have;  /* distinct bytes present */
	uint8_t *data, *map;
	struct ferry_rawsock_frame hdr; /* link and IP facts of the first piece (or any, until it comes) */
};

struct ferry_rawsock_reasm {
	struct reasm_slot slot[FERRY_RAWSOCK_REASM_SLOTS];
};

static uint64_t now_ms(void)
{
	return ferry_test_now_ms();
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static void slot_free(struct reasm_slot *s)
{
	free(s->data);
	free(s->map);
	memset(s, 0, sizeof(*s));
}

static void reasm_clear(struct ferry_rawsock *rs)
{
	if (!rs->reasm)
		return;
	for (int i = 0; i < FERRY_RAWSOCK_REASM_SLOTS; i++)
		if (rs->reasm->slot[i].used)
			slot_free(&rs->reasm->slot[i]);
}

void ferry_rawsock_close(struct ferry_rawsock *rs)
{
	if (rs->fd >= 0)
		close(rs->fd);
	if (rs->vnet_fd >= 0)
		close(rs->vnet_fd);
	rs->fd = rs->vnet_fd = -1;
	reasm_clear(rs);
	free(rs->reasm);
	free(rs->buf);
	rs->reasm = NULL;
	rs->buf = NULL;
}

static int packet_socket(int ifindex, uint16_t proto)
{
	struct sockaddr_ll sll;
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(proto));

	if (fd < 0)
		return -errno;
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(proto);
	sll.sll_ifindex = ifindex;
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int ferry_rawsock_open(struct ferry_rawsock *rs, const struct ferry_testns *ns, enum ferry_testns_side side,
		       const char *ifname)
{
	int err, one = 1, size = RCVBUF, back;

	memset(rs, 0, sizeof(*rs));
	rs->fd = rs->vnet_fd = -1;
	rs->reasm = calloc(1, sizeof(*rs->reasm));
	rs->buf = malloc(BUF_SIZE);
	if (!rs->reasm || !rs->buf) {
		ferry_rawsock_close(rs);
		return -ENOMEM;
	}
	err = ferry_testns_enter(ns, side);
	if (err) {
		ferry_rawsock_close(rs);
		return err;
	}
	rs->ifindex = (int)if_nametoindex(ifname);
	if (!rs->ifindex) {
		err = -errno;
		goto out;
	}
	rs->fd = packet_socket(rs->ifindex, ETH_P_ALL);
	if (rs->fd < 0) {
		err = rs->fd;
		goto out;
	}
	if (setsockopt(rs->fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) &&
	    setsockopt(rs->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size))) {
		err = -errno;
		goto out;
	}
	if (setsockopt(rs->fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one))) {
		err = -errno;
		goto out;
	}
	/* protocol 0: this one receives nothing, it only sends */
	rs->vnet_fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (rs->vnet_fd < 0 || setsockopt(rs->vnet_fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one))) {
		err = -errno;
		goto out;
	}
	err = 0;
out:
	back = ferry_testns_enter(ns, FERRY_TESTNS_ROOT);
	if (!err)
		err = back;
	if (err)
		ferry_rawsock_close(rs);
	return err;
}

static void ll_addr(const struct ferry_rawsock *rs, const uint8_t *frame, size_t len, struct sockaddr_ll *sll)
{
	memset(sll, 0, sizeof(*sll));
	sll->sll_family = AF_PACKET;
	sll->sll_ifindex = rs->ifindex;
	sll->sll_protocol = len >= 14 ? htons(get16(frame + 12)) : 0;
	sll->sll_halen = 6;
	memcpy(sll->sll_addr, frame, len >= 6 ? 6 : len);
}

int ferry_rawsock_send(struct ferry_rawsock *rs, const void *frame, size_t len)
{
	struct sockaddr_ll sll;
	ssize_t r;

	if (rs->fd < 0)
		return -EBADF;
	ll_addr(rs, frame, len, &sll);
	r = sendto(rs->fd, frame, len, 0, (struct sockaddr *)&sll, sizeof(sll));
	if (r < 0)
		return -errno;
	return (size_t)r == len ? 0 : -EIO;
}

int ferry_rawsock_send_csum_partial(struct ferry_rawsock *rs, const void *frame, size_t len, size_t csum_start,
				    size_t csum_offset)
{
	struct virtio_net_hdr vh;
	struct sockaddr_ll sll;
	struct iovec iov[2];
	struct msghdr msg;
	ssize_t r;

	if (rs->vnet_fd < 0)
		return -EBADF;
	memset(&vh, 0, sizeof(vh));
	vh.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	vh.gso_type = VIRTIO_NET_HDR_GSO_NONE;
	vh.csum_start = (uint16_t)csum_start; /* host order: the vnet header is little-endian on x86 */
	vh.csum_offset = (uint16_t)csum_offset;
	ll_addr(rs, frame, len, &sll);
	iov[0] = (struct iovec){.iov_base = &vh, .iov_len = sizeof(vh)};
	iov[1] = (struct iovec){.iov_base = (void *)frame, .iov_len = len};
	memset(&msg, 0, sizeof(msg));
	msg.msg_name = &sll;
	msg.msg_namelen = sizeof(sll);
	msg.msg_iov = iov;
	msg.msg_iovlen = 2;
	r = sendmsg(rs->vnet_fd, &msg, 0);
	if (r < 0)
		return -errno;
	return (size_t)r == len + sizeof(vh) ? 0 : -EIO;
}

void ferry_rawsock_frame_release(struct ferry_rawsock_frame *f)
{
	free(f->payload);
	f->payload = NULL;
}

/* ------------------------------------------------------------ parsing */

static void set_addr(union ferry_sockaddr *a, int family, const uint8_t *addr, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->sa.sa_family = (sa_family_t)family;
	if (family == AF_INET) {
		memcpy(&a->in4.sin_addr, addr, 4);
		a->in4.sin_port = htons(port);
	} else {
		memcpy(&a->in6.sin6_addr, addr, 16);
		a->in6.sin6_port = htons(port);
	}
}

/*
 * The UDP datagram at l4 (len bytes of IP payload) into f: ports, length and
 * checksum fields, the payload per the UDP length when that fits, else what
 * is there. Returns false (f becomes OTHER) without a whole UDP header.
 */
static bool parse_udp(struct ferry_rawsock_frame *f, const uint8_t *l4, size_t len)
{
	size_t ulen, plen;

	if (len < 8)
		return false;
	ulen = get16(l4 + 4);
	plen = ulen >= 8 && ulen <= len ? ulen - 8 : len - 8;
	if (f->family == AF_INET) {
		f->src.in4.sin_port = htons(get16(l4));
		f->dst.in4.sin_port = htons(get16(l4 + 2));
	} else {
		f->src.in6.sin6_port = htons(get16(l4));
		f->dst.in6.sin6_port = htons(get16(l4 + 2));
	}
	f->udp_len = (uint16_t)ulen;
	f->udp_csum = get16(l4 + 6);
	f->payload_len = plen;
	f->payload = NULL;
	if (plen) {
		f->payload = malloc(plen);
		if (!f->payload)
			return false;
		memcpy(f->payload, l4 + 8, plen);
	}
	f->kind = FERRY_RAWSOCK_UDP;
	return true;
}

/*
 * Walks IPv6 extension headers from next at p (len bytes). Stops at the first
 * header that is none of hop-by-hop, routing, destination options (or at a
 * fragment header, when frag is non-NULL: *frag then points at it). Returns
 * the offset of what follows and sets *next, or -1 if the chain is cut.
 */
static long walk_ext6(uint8_t *next, const uint8_t *p, size_t len, const uint8_t **frag)
{
	size_t off = 0;

	if (frag)
		*frag = NULL;
	for (int guard = 0; guard < 16; guard++) {
		size_t hl;

		if (*next == 44 && frag) {
			if (off + 8 > len)
				return -1;
			*frag = p + off;
			return (long)off;
		}
		if (*next != 0 && *next != 43 && *next != 60)
			return (long)off;
		if (off + 8 > len)
			return -1;
		hl = ((size_t)p[off + 1] + 1) * 8;
		if (off + hl > len)
			return -1;
		*next = p[off];
		off += hl;
	}
	return -1;
}

static struct reasm_slot *reasm_find(struct ferry_rawsock *rs, int family, const uint8_t *src, const uint8_t *dst,
				     uint32_t id, uint8_t proto4)
{
	struct reasm_slot *free_slot = NULL, *oldest = NULL;
	size_t alen = family == AF_INET ? 4 : 16;
	uint64_t now = now_ms();

	for (int i = 0; i < FERRY_RAWSOCK_REASM_SLOTS; i++) {
		struct reasm_slot *s = &rs->reasm->slot[i];

		if (s->used && now - s->born_ms > REASM_TIMEOUT_MS) {
			slot_free(s);
			rs->reasm_dropped++;
		}
		if (!s->used) {
			if (!free_slot)
				free_slot = s;
			continue;
		}
		if (s->family == family && s->id == id && !memcmp(s->src, src, alen) && !memcmp(s->dst, dst, alen) &&
		    (family != AF_INET || s->proto == proto4))
			return s;
		if (!oldest || s->born_ms < oldest->born_ms)
			oldest = s;
	}
	if (!free_slot) {
		slot_free(oldest);
		rs->reasm_dropped++;
		free_slot = oldest;
	}
	free_slot->data = malloc(REASM_MAX);
	free_slot->map = calloc(1, REASM_MAX / 8 + 1);
	if (!free_slot->data || !free_slot->map) {
		slot_free(free_slot);
		return NULL;
	}
	free_slot->used = true;
	free_slot->family = family;
	memcpy(free_slot->src, src, alen);
	memcpy(free_slot->dst, dst, alen);
	free_slot->id = id;
	free_slot->proto = proto4;
	free_slot->born_ms = now;
	return free_slot;
}

/*
 * Adds a fragment (data at offset off, more fragments follow if more) with
 * f's link facts. When the datagram is whole, f becomes it and true is
 * returned; false: nothing to report yet (or it was given up on).
 */
static bool reasm_add(struct ferry_rawsock *rs, struct ferry_rawsock_frame *f, const uint8_t *src,
		      const uint8_t *dst, uint32_t id, uint8_t proto, size_t off, bool more, const uint8_t *data,
		      size_t len)
{
	struct reasm_slot *s = reasm_find(rs, f->family, src, dst, id, f->family == AF_INET ? proto : 0);
	uint8_t next;

	if (!s) {
		rs->reasm_dropped++;
		return false;
	}
	if (off + len > REASM_MAX || (!more && s->total && s->total != off + len)) {
		slot_free(s);
		rs->reasm_dropped++;
		return false;
	}
	if (off == 0 || !s->have_first) {
		s->hdr = *f;
		if (off == 0) {
			s->have_first = true;
			s->proto = proto;
		}
	}
	if (!more)
		s->total = off + len;
	memcpy(s->data + off, data, len);
	for (size_t i = off; i < off + len; i++)
		if (!(s->map[i / 8] & (1u << (i % 8)))) {
			s->map[i / 8] |= (uint8_t)(1u << (i % 8));
			s->have++;
		}
	if (!s->total || s->have != s->total || !s->have_first)
		return false;

	*f = s->hdr;
	f->reassembled = true;
	f->kind = FERRY_RAWSOCK_OTHER;
	next = s->proto;
	if (f->family == AF_INET6) {
		long o = walk_ext6(&next, s->data, s->total, NULL);

		if (o < 0) {
			slot_free(s);
			return true; /* reported as OTHER */
		}
		f->ip_proto = next;
		if (next == 17)
			parse_udp(f, s->data + o, s->total - (size_t)o);
	} else {
		f->ip_proto = next;
		if (next == 17)
			parse_udp(f, s->data, s->total);
	}
	slot_free(s);
	return true;
}

/* Parses frame into f. Returns true to report it, false when it was absorbed (a fragment). */
static bool parse_frame(struct ferry_rawsock *rs, const uint8_t *p, size_t len, unsigned int flags,
			struct ferry_rawsock_frame *f)
{
	size_t off = 12;
	uint16_t et;

	f->kind = FERRY_RAWSOCK_OTHER;
	if (len < 14)
		return true;
	memcpy(f->dst_mac, p, 6);
	memcpy(f->src_mac, p + 6, 6);
	et = get16(p + off);
	while ((et == 0x8100 || et == 0x88a8 || et == 0x9100) && off + 6 <= len) {
		if (f->nvlan < FERRY_RAWSOCK_MAX_VLAN) {
			uint16_t tci = get16(p + off + 2);

			f->vlan[f->nvlan].tpid = et;
			f->vlan[f->nvlan].vid = tci & 0xfff;
			f->vlan[f->nvlan].pcp = (uint8_t)(tci >> 13);
			f->nvlan++;
		}
		off += 4;
		et = get16(p + off);
	}
	off += 2;
	f->ethertype = et;
	if (et == 0x0800) {
		const uint8_t *ip = p + off;
		size_t avail = len - off, ihl, tot, fo;

		if (avail < 20 || (ip[0] >> 4) != 4)
			return true;
		ihl = (size_t)(ip[0] & 0xf) * 4;
		tot = get16(ip + 2);
		if (ihl < 20 || tot < ihl || tot > avail)
			return true;
		f->family = AF_INET;
		f->ip_proto = ip[9];
		f->ttl = ip[8];
		set_addr(&f->src, AF_INET, ip + 12, 0);
		set_addr(&f->dst, AF_INET, ip + 16, 0);
		fo = get16(ip + 6);
		if (fo & 0x3fff) { /* MF or an offset */
			if (flags & FERRY_RAWSOCK_NO_REASSEMBLY) {
				f->kind = FERRY_RAWSOCK_FRAGMENT;
				return true;
			}
			return reasm_add(rs, f, ip + 12, ip + 16, get16(ip + 4), ip[9], (fo & 0x1fff) * 8,
					 fo & 0x2000, ip + ihl, tot - ihl);
		}
		if (ip[9] == 17)
			parse_udp(f, ip + ihl, tot - ihl);
		return true;
	}
	if (et == 0x86dd) {
		const uint8_t *ip = p + off, *fh;
		size_t avail = len - off, plen;
		uint8_t next;
		long o;

		if (avail < 40 || (ip[0] >> 4) != 6)
			return true;
		plen = get16(ip + 4);
		if (40 + plen > avail)
			return true;
		f->family = AF_INET6;
		f->ttl = ip[7];
		set_addr(&f->src, AF_INET6, ip + 8, 0);
		set_addr(&f->dst, AF_INET6, ip + 24, 0);
		next = ip[6];
		o = walk_ext6(&next, ip + 40, plen, &fh);
		if (o < 0)
			return true;
		f->ip_proto = next;
		if (fh) {
			uint16_t fo = get16(fh + 2);
			const uint8_t *data = fh + 8;
			size_t dlen = plen - (size_t)o - 8;

			if ((fo & 0xfff9) == 0) { /* an atomic fragment: the whole datagram follows */
				next = fh[0];
				o = walk_ext6(&next, data, dlen, NULL);
				if (o < 0)
					return true;
				f->ip_proto = next;
				if (next == 17)
					parse_udp(f, data + o, dlen - (size_t)o);
				return true;
			}
			if (flags & FERRY_RAWSOCK_NO_REASSEMBLY) {
				f->kind = FERRY_RAWSOCK_FRAGMENT;
				return true;
			}
			return reasm_add(rs, f, ip + 8, ip + 24, get32(fh + 4), fh[0], fo & 0xfff8, fo & 1, data, dlen);
		}
		if (next == 17)
			parse_udp(f, ip + 40 + o, plen - (size_t)o);
		return true;
	}
	return true;
}

/*
 * One frame from the socket into f. 1: f filled (to report or skip per
 * flags), 0: nothing (EAGAIN, our own send, an absorbed fragment),
 * -errno. *again tells whether the socket had anything.
 */
static int recv_one(struct ferry_rawsock *rs, unsigned int flags, struct ferry_rawsock_frame *f, bool *again)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
	} cbuf;
	struct tpacket_auxdata *aux = NULL;
	struct sockaddr_ll sll;
	struct iovec iov;
	struct msghdr msg;
	size_t len;
	uint8_t *data = rs->buf + 4; /* room to put a stripped tag back */
	ssize_t r;

	*again = false;
	iov.iov_base = data;
	iov.iov_len = BUF_SIZE - 4;
	memset(&msg, 0, sizeof(msg));
	msg.msg_name = &sll;
	msg.msg_namelen = sizeof(sll);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf.buf;
	msg.msg_controllen = sizeof(cbuf.buf);
	r = recvmsg(rs->fd, &msg, MSG_DONTWAIT);
	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
	*again = true;
	if (sll.sll_pkttype == PACKET_OUTGOING) {
		rs->outgoing++;
		return 0;
	}
	rs->received++;
	len = (size_t)r;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA)
			aux = (struct tpacket_auxdata *)CMSG_DATA(c);
	if (aux && (aux->tp_status & TP_STATUS_VLAN_VALID) && len >= 12) {
		/* the kernel took the outer tag out of the frame: put it back */
		uint16_t tpid = aux->tp_status & TP_STATUS_VLAN_TPID_VALID ? aux->tp_vlan_tpid : 0x8100;

		memmove(data - 4, data, 12);
		data -= 4;
		data[12] = (uint8_t)(tpid >> 8);
		data[13] = (uint8_t)tpid;
		data[14] = (uint8_t)(aux->tp_vlan_tci >> 8);
		data[15] = (uint8_t)aux->tp_vlan_tci;
		len += 4;
	}
	memset(f, 0, sizeof(*f));
	f->pkttype = sll.sll_pkttype;
	f->frame_len = len;
	if (!parse_frame(rs, data, len, flags, f))
		return 0;
	if ((flags & FERRY_RAWSOCK_UDP_ONLY) && f->kind != FERRY_RAWSOCK_UDP) {
		ferry_rawsock_frame_release(f);
		return 0;
	}
	return 1;
}

int ferry_rawsock_collect(struct ferry_rawsock *rs, uint64_t deadline_ms, unsigned int flags,
			  struct ferry_rawsock_frame *out, unsigned int cap)
{
	unsigned int n = 0;

	if (rs->fd < 0)
		return -EBADF;
	while (n < cap) {
		bool again;
		int r = recv_one(rs, flags, &out[n], &again);
		uint64_t now;
		struct pollfd pfd = {.fd = rs->fd, .events = POLLIN};

		if (r < 0)
			return n ? (int)n : r;
		n += (unsigned int)r;
		now = now_ms();
		if (now >= deadline_ms)
			break; /* a hard deadline, even while frames keep coming */
		if (again)
			continue;
		if (poll(&pfd, 1, (int)(deadline_ms - now)) < 0 && errno != EINTR)
			return n ? (int)n : -errno;
	}
	return (int)n;
}

int ferry_rawsock_drain(struct ferry_rawsock *rs)
{
	int n = 0;

	if (rs->fd < 0)
		return 0;
	for (int i = 0; i < 1000000 && recv(rs->fd, rs->buf, BUF_SIZE, MSG_DONTWAIT | MSG_TRUNC) >= 0; i++)
		n++;
	reasm_clear(rs);
	return n;
}

static const char *addr_str(const union ferry_sockaddr *a, bool port, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (a->sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &a->in4.sin_addr, ip, sizeof(ip));
		if (port)
			snprintf(buf, len, "%s:%u", ip, ntohs(a->in4.sin_port));
		else
			snprintf(buf, len, "%s", ip);
	} else if (a->sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &a->in6.sin6_addr, ip, sizeof(ip));
		if (port)
			snprintf(buf, len, "[%s]:%u", ip, ntohs(a->in6.sin6_port));
		else
			snprintf(buf, len, "%s", ip);
	} else {
		snprintf(buf, len, "-");
	}
	return buf;
}

const char *ferry_rawsock_describe(const struct ferry_rawsock_frame *f, char *buf, size_t len)
{
	char tags[64] = "", s[64], d[64];
	size_t t = 0;
	bool udp = f->kind == FERRY_RAWSOCK_UDP;

	for (unsigned int i = 0; i < f->nvlan && t < sizeof(tags); i++)
		t += (size_t)snprintf(tags + t, sizeof(tags) - t, "[%04x:%u] ", f->vlan[i].tpid, f->vlan[i].vid);
	if (udp)
		snprintf(buf, len, "udp %s%s > %s len %zu%s to %02x:%02x:%02x:%02x:%02x:%02x", tags,
			 addr_str(&f->src, true, s, sizeof(s)), addr_str(&f->dst, true, d, sizeof(d)), f->payload_len,
			 f->reassembled ? " (reassembled)" : "", f->dst_mac[0], f->dst_mac[1], f->dst_mac[2],
			 f->dst_mac[3], f->dst_mac[4], f->dst_mac[5]);
	else if (f->family)
		snprintf(buf, len, "%s %sip proto %u %s > %s", f->kind == FERRY_RAWSOCK_FRAGMENT ? "fragment" : "other",
			 tags, f->ip_proto, addr_str(&f->src, false, s, sizeof(s)), addr_str(&f->dst, false, d, sizeof(d)));
	else
		snprintf(buf, len, "other %sethertype 0x%04x, %zu bytes", tags, f->ethertype, f->frame_len);
	return buf;
}
