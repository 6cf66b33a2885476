/* SPDX-License-Identifier: MIT */
/* What every bench program shares: clock, stop conditions, pacing, option parsing. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "bench.h"

volatile sig_atomic_t bench_signalled;

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

void bench_sleep_until(uint64_t t_ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(t_ns / NSEC_PER_SEC),
		.tv_nsec = (long)(t_ns % NSEC_PER_SEC),
	};

	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

static void on_signal(int sig)
{
	bench_signalled = 1;
}

void bench_catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
}

bool bench_limit_reached(const struct bench_limit *l, uint64_t n, uint64_t now_ns)
{
	if (bench_signalled)
		return true;
	if (l->count && n >= l->count)
		return true;
	return l->duration_ns && now_ns - l->start_ns >= l->duration_ns;
}

uint32_t bench_pacer_allow(const struct bench_pacer *p, uint64_t done, uint32_t want, uint64_t now_ns,
			   uint64_t *wake_ns)
{
	uint64_t due, burst = p->burst ? p->burst : 1;

	if (!p->rate)
		return want;
	/* 128-bit: rate * ns overflows 64 bits after ~18 s at 1 Mpps */
	due = (uint64_t)((unsigned __int128)(now_ns - p->start_ns) * p->rate / NSEC_PER_SEC);
	if (due > done) {
		/* A full burst is due, or what is due is all that is wanted:
		 * go. Behind schedule (a stall), keep sending at full speed
		 * until caught up, so the average rate holds. */
		uint64_t n = due - done;

		if (n >= burst || n >= want)
			return (uint32_t)(n < want ? n : want);
	}
	if (burst > want)
		burst = want;
	*wake_ns = p->start_ns + (uint64_t)((unsigned __int128)(done + burst) * NSEC_PER_SEC / p->rate);
	return 0;
}

int bench_parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	if (!s || *s == '-')
		return -EINVAL;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		v *= 1000;
		end++;
		break;
	case 'M':
		v *= 1000000;
		end++;
		break;
	case 'G':
		v *= 1000000000;
		end++;
		break;
	default:
		break;
	}
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

int bench_parse_seconds(const char *s, uint64_t *ns)
{
	double v;
	char *end;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < 0 || v > 1e6)
		return -EINVAL;
	*ns = (uint64_t)(v * 1e9);
	return 0;
}

void bench_die(const char *prog, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

void bench_ready(const char *prog)
{
	fprintf(stderr, "%s: ready\n", prog);
	fflush(stderr);
}
