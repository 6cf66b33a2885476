/* SPDX-License-Identifier: MIT */
/*
 * What the libFuzzer harnesses share: a check that names the broken property
 * and aborts (libFuzzer then saves the input), and a reader that takes typed
 * values off the front of the fuzz data, zeros once it runs out.
 */
#ifndef FERRY_FUZZ_H
#define FERRY_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property that must hold for every input: abort with the reason when it does not. */
#define FUZZ_CHECK(cond, ...)                                                                    \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                            \
			fputc('\n', stderr);                                                     \
			abort();                                                                 \
		}                                                                                \
	} while (0)

struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

/* Copies n bytes off the front into out; what the data lacks reads as zero. */
static inline void fuzz_bytes(struct fuzz_in *in, void *out, size_t n)
{
	size_t k = n < in->n ? n : in->n;

	memcpy(out, in->p, k);
	memset((uint8_t *)out + k, 0, n - k);
	in->p += k;
	in->n -= k;
}

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
	uint8_t v;

	fuzz_bytes(in, &v, 1);
	return v;
}

/* Big-endian, so seeds written by hand read naturally. */
static inline uint16_t fuzz_u16(struct fuzz_in *in)
{
	uint8_t b[2];

	fuzz_bytes(in, b, 2);
	return (uint16_t)(b[0] << 8 | b[1]);
}

/* The RFC 1071 sum of len bytes as big-endian 16-bit words, written apart from daemon/packet.c. */
static inline uint32_t fuzz_sum16(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

/* Folded and complemented: 0 when the bytes summed include a correct checksum. */
static inline uint16_t fuzz_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static inline uint16_t fuzz_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/*
 * Rewrites the checksums of an Ethernet frame carrying IPv4 or IPv6: the
 * IPv4 header sum over the header's IHL, and the UDP sum (IPv4 without
 * options, IPv6 without extension headers) over the UDP length, cut to the
 * frame. A fuzzer rarely finds a sum that verifies; with this its other
 * fields reach the checks behind the sums. Returns whether a byte changed.
 */
static inline int fuzz_fix_sums(uint8_t *f, size_t len)
{
	uint16_t proto = len >= 14 ? fuzz_be16(f + 12) : 0, old = 0, sum;
	size_t udp = 0, ulen, alen = 0, aoff = 0;
	uint8_t pseudo[4];
	int changed = 0;

	if (proto == 0x0800 && len >= 14 + 20) {
		size_t ihl = (size_t)(f[14] & 0xf) * 4;

		if (ihl >= 20 && ihl <= len - 14) {
			old = fuzz_be16(f + 24);
			f[24] = f[25] = 0;
			sum = fuzz_fold(fuzz_sum16(0, f + 14, ihl));
			f[24] = (uint8_t)(sum >> 8);
			f[25] = (uint8_t)sum;
			changed = sum != old;
		}
		if (ihl == 20 && f[23] == 17) {
			udp = 14 + 20;
			aoff = 14 + 12;
			alen = 8;
		}
	} else if (proto == 0x86dd && len >= 14 + 40 && f[20] == 17) {
		udp = 14 + 40;
		aoff = 14 + 8;
		alen = 32;
	}
	if (!udp || len - udp < 8)
		return changed;
	ulen = fuzz_be16(f + udp + 4);
	pseudo[0] = 0;
	pseudo[1] = 17;
	pseudo[2] = f[udp + 4];
	pseudo[3] = f[udp + 5];
	old = fuzz_be16(f + udp + 6);
	f[udp + 6] = f[udp + 7] = 0;
	sum = fuzz_fold(fuzz_sum16(fuzz_sum16(fuzz_sum16(0, f + aoff, alen), pseudo, 4), f + udp,
				   ulen < len - udp ? ulen : len - udp));
	if (!sum)
		sum = 0xffff;
	f[udp + 6] = (uint8_t)(sum >> 8);
	f[udp + 7] = (uint8_t)sum;
	return changed || sum != old;
}

#endif
