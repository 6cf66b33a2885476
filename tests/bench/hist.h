/* SPDX-License-Identifier: MIT */
/*
 * A log-linear histogram of nanosecond values (HdrHistogram's layout): 64
 * buckets per power of two, so any percentile is within 1/64 (1.6%) of the
 * true value, in fixed memory, from 1 ns to about 18 minutes.
 */
#ifndef FERRY_BENCH_HIST_H
#define FERRY_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_EXP 40
#define HIST_BUCKETS (HIST_SUB + (HIST_MAX_EXP - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t sum;
	uint64_t min;
	uint64_t max;
	uint64_t buckets[HIST_BUCKETS];
};

void hist_init(struct hist *h);
void hist_add(struct hist *h, uint64_t v);
/* The value at quantile q (0..1): the middle of its bucket, clamped to [min, max]. 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);

#endif
