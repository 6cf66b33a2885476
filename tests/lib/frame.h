/* SPDX-License-Identifier: MIT */
/*
 * A frame builder for tests where every field can be wrong on purpose:
 * Ethernet, up to two VLAN tags, IPv4 (options, fragments, checksum, lengths)
 * or IPv6 (a chain of extension headers, fragments), UDP (lengths, four
 * checksum modes), payload, padding and truncation.
 *
 * A zeroed spec plus family, MACs, addresses and ports gives a correct frame;
 * every other field defaults to "correct" when 0, so a table of cases lists
 * only what it makes different:
 *
 *	{.family = 4, .src = "198.18.0.2", .dst = "198.18.0.1", .dport = 7777,
 *	 .udp_csum = FERRY_CSUM_BAD}
 */
#ifndef FERRY_TEST_FRAME_H
#define FERRY_TEST_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest frame ferry_frame_build() can make (a 64 KiB IP packet plus headers). */
#define FERRY_FRAME_MAX (65535 + 14 + 8 + 40 + 4 * 264)

enum ferry_frame_csum {
	FERRY_CSUM_CORRECT = 0,
	FERRY_CSUM_ZERO,    /* 0 in the field (UDP over IPv4: "no checksum") */
	FERRY_CSUM_BAD,	    /* the correct value with one bit flipped, never 0 */
	FERRY_CSUM_PARTIAL, /* UDP only: the folded pseudo-header sum alone, not complemented:
			     * what a veth peer with TX checksum offload hands over
			     * (the skb is CHECKSUM_PARTIAL; the wire form needs a
			     * vnet header to be sent that way, see rawsock.h) */
	FERRY_CSUM_VALUE,   /* the literal csum_value */
};

/* IPv6 extension headers, in the order they appear in ext6[]. */
enum ferry_frame_ext6_kind {
	FERRY_EXT6_NONE = 0,
	FERRY_EXT6_HOP,	     /* hop-by-hop options (next header 0) */
	FERRY_EXT6_ROUTING,  /* routing header: rt_type, segleft, naddr addresses */
	FERRY_EXT6_DEST,     /* destination options */
	FERRY_EXT6_FRAGMENT, /* fragment header with frag_off (8-byte units), frag_more, ident */
};

struct ferry_frame_ext6 {
	enum ferry_frame_ext6_kind kind;
	/* HOP, DEST: raw option bytes (TLVs), then PadN/Pad1 up to a multiple of 8
	 * (with the 2-byte header); none: one PadN, an 8-byte header. */
	const uint8_t *opts;
	size_t opts_len;
	/* ROUTING */
	uint8_t rt_type, segleft, naddr; /* naddr addresses of 16 bytes, all = rt_addr (or zero) */
	const char *rt_addr;
	/* FRAGMENT */
	uint16_t frag_off; /* in 8-byte units */
	bool frag_more;
	uint32_t ident;
	/* when set, written as the next-header field instead of the real next one */
	bool next_set;
	uint8_t next;
};

#define FERRY_FRAME_MAX_EXT6 4

struct ferry_frame_vlan {
	uint16_t tpid; /* 0x8100 (802.1Q), 0x88a8 (802.1ad), ...; 0 = no tag */
	uint16_t vid;  /* 12 bits */
	uint8_t pcp;   /* 3 bits */
};

struct ferry_frame_spec {
	/* ---- Ethernet */
	uint8_t dst_mac[6], src_mac[6];
	struct ferry_frame_vlan vlan[2]; /* outer first; a tag with tpid 0 ends the list */
	uint16_t ethertype;		 /* when set, written instead of 0x0800 / 0x86dd */

	/* ---- IP, both families */
	int family;	      /* 4 or 6 */
	const char *src, *dst; /* "198.18.0.2", "2001:2::1", "::ffff:198.18.0.2" */
	uint8_t tos;	      /* IPv4 TOS / IPv6 traffic class */
	uint8_t ttl;	      /* IPv4 TTL / IPv6 hop limit; 0 = 64 unless ttl_set */
	bool ttl_set;	      /* write ttl as given, even 0 */
	uint8_t proto;	      /* IPv4 protocol / next header before UDP; 0 = 17 unless proto_set */
	bool proto_set;
	uint8_t version;      /* when set, written instead of 4 / 6 */
	int ip_len_delta;     /* added to IPv4 tot_len / IPv6 payload_len */
	uint32_t ip_id;	      /* IPv4 id (16 bits); IPv6 fragment ident when frag.on */

	/* ---- IPv4 only */
	const uint8_t *ip_opts; /* raw option bytes, padded with EOL (0) to a multiple of 4 */
	size_t ip_opts_len;	/* at most 40 */
	uint8_t ihl_field;	/* when set, written instead of the real IHL (a lie) */
	bool df;		/* don't-fragment flag */
	bool mf;		/* more-fragments flag (a lie unless frag.on) */
	uint16_t frag_off;	/* fragment offset in 8-byte units (a lie unless frag.on) */
	enum ferry_frame_csum ip_csum;
	uint16_t ip_csum_value; /* with FERRY_CSUM_VALUE */

	/* ---- IPv6 only */
	uint32_t flow; /* flow label, 20 bits */
	struct ferry_frame_ext6 ext6[FERRY_FRAME_MAX_EXT6]; /* before UDP (or the fragment header) */

	/*
	 * ---- Fragmentation of the whole upper-layer datagram (UDP header +
	 * payload, checksum over all of it): the frame carries bytes
	 * [off, off + len) of it (len 0: to the end). IPv4: MF = more, offset =
	 * off / 8. IPv6: a fragment header (ident = ip_id) after ext6[].
	 */
	struct {
		bool on;
		uint32_t off, len; /* off a multiple of 8 */
		bool more;
	} frag;

	/* ---- UDP */
	uint16_t sport, dport;
	int udp_len_delta;	/* added to the UDP length */
	bool udp_len_set;	/* write udp_len instead of the real length */
	uint16_t udp_len;
	enum ferry_frame_csum udp_csum;
	uint16_t udp_csum_value; /* with FERRY_CSUM_VALUE */

	/* ---- payload */
	const void *payload;  /* NULL: a pattern of payload_len bytes */
	size_t payload_len;
	uint8_t pattern_seed; /* the pattern: byte i = 'a' + (i + seed) % 26 */

	/* ---- the frame as a whole */
	size_t pad_to; /* zero bytes after the packet up to this frame length (60: Ethernet's minimum) */
	size_t cut;    /* when set, the frame is cut to this many bytes (after padding) */
};

/* Where the layers of a built frame start (offsets into the frame, before any cut). */
struct ferry_frame_layout {
	size_t l3_off;	    /* the IP header */
	size_t l4_off;	    /* the UDP header (for a non-first fragment: the fragment's data) */
	size_t payload_off; /* the UDP payload */
	size_t len;	    /* the frame's length, as returned */
	uint16_t udp_csum;  /* the checksum field written (network value as a number) */
};

/*
 * Builds the frame into out (cap bytes). Returns its length, or 0 when it
 * does not fit or the spec is unusable (family not 4/6, an address that does
 * not parse, more than 40 option bytes).
 *
 * The "correct" UDP checksum covers what the receiving kernel checks: the
 * bytes the UDP length field claims when that is between 8 and the bytes
 * present, else all bytes present (IPv6 length 0 included), with that length
 * in the pseudo-header; for IPv6 the pseudo-header's destination is the IPv6
 * header's (routing headers are not followed).
 */
size_t ferry_frame_build(const struct ferry_frame_spec *s, uint8_t *out, size_t cap);
size_t ferry_frame_build_layout(const struct ferry_frame_spec *s, uint8_t *out, size_t cap,
				struct ferry_frame_layout *layout);

/* "aa:bb:cc:dd:ee:ff" into mac. 0, or -1 if it does not parse. */
int ferry_frame_parse_mac(const char *str, uint8_t mac[6]);

#endif
