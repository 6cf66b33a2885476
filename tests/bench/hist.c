/* SPDX-License-Identifier: MIT */
/* A log-linear histogram of nanosecond values: 64 buckets per power of two. */
#include <string.h>

#include "hist.h"

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

static unsigned int bucket_of(uint64_t v)
{
	unsigned int e, idx;

	if (v < HIST_SUB)
		return (unsigned int)v;
	e = 63u - (unsigned int)__builtin_clzll(v); /* v in [2^e, 2^(e+1)), e >= HIST_SUB_BITS */
	if (e > HIST_MAX_EXP)
		return HIST_BUCKETS - 1;
	idx = HIST_SUB + (e - HIST_SUB_BITS) * HIST_SUB + (unsigned int)((v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1));
	return idx;
}

/* The lowest value of bucket i and its width. */
static void bucket_range(unsigned int i, uint64_t *lo, uint64_t *width)
{
	unsigned int e, m;

	if (i < HIST_SUB) {
		*lo = i;
		*width = 1;
		return;
	}
	e = (i - HIST_SUB) / HIST_SUB + HIST_SUB_BITS;
	m = (i - HIST_SUB) % HIST_SUB;
	*width = 1ull << (e - HIST_SUB_BITS);
	*lo = (1ull << e) + m * *width;
}

void hist_add(struct hist *h, uint64_t v)
{
	h->buckets[bucket_of(v)]++;
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (!h->count)
		return 0;
	/* the smallest value with at least q of the samples at or below it */
	rank = (uint64_t)(q * (double)h->count + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	for (unsigned int i = 0; i < HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank) {
			uint64_t lo, width, v;

			bucket_range(i, &lo, &width);
			v = lo + width / 2;
			return v < h->min ? h->min : v > h->max ? h->max : v;
		}
	}
	return h->max;
}
