/* SPDX-License-Identifier: MIT */
/*
 * What every bench program shares: the clock, when to stop (a count, a
 * duration, SIGINT/SIGTERM), pacing to a rate, option parsing.
 */
#ifndef FERRY_BENCH_H
#define FERRY_BENCH_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#define NSEC_PER_SEC 1000000000ull

/* CLOCK_MONOTONIC in ns. */
uint64_t bench_now_ns(void);

/* Sleeps until CLOCK_MONOTONIC reaches t_ns (returns early on a signal). */
void bench_sleep_until(uint64_t t_ns);

/* Set by SIGINT/SIGTERM once bench_catch_signals() ran. */
extern volatile sig_atomic_t bench_signalled;

/* SIGINT and SIGTERM set bench_signalled; without SA_RESTART, so a blocking
 * call returns EINTR and the program notices. Timer slack is set to 1 ns,
 * so paced sleeps end on time. */
void bench_catch_signals(void);

/*
 * The bound every program runs under: at most count units (0 = no bound) and
 * at most duration_ns (0 = no bound) after start_ns, or until a signal.
 */
struct bench_limit {
	uint64_t count;
	uint64_t duration_ns;
	uint64_t start_ns;
};

/* True when n units are done or the time is up or a signal came. */
bool bench_limit_reached(const struct bench_limit *l, uint64_t n, uint64_t now_ns);

/*
 * Pacing: rate units per second from start_ns (0 = unpaced), released in
 * bursts of up to burst units. bench_pacer_allow() says how many of want may
 * go now, given done already went; 0 means wait until *wake_ns.
 */
struct bench_pacer {
	uint64_t rate;
	uint32_t burst;
	uint64_t start_ns;
};

uint32_t bench_pacer_allow(const struct bench_pacer *p, uint64_t done, uint32_t want, uint64_t now_ns,
			   uint64_t *wake_ns);

/* Options: non-negative integers with an optional k/M/G suffix (1000s), seconds as a decimal. */
int bench_parse_u64(const char *s, uint64_t *out);
int bench_parse_seconds(const char *s, uint64_t *ns);

/* Prints "prog: message" to stderr and exits 1 (these are programs, not library code). */
void bench_die(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

/* Tells the script the program is set up: "prog: ready" on stderr. */
void bench_ready(const char *prog);

/* Seconds between two bench_now_ns() readings. */
static inline double bench_secs(uint64_t from_ns, uint64_t to_ns)
{
	return (double)(to_ns - from_ns) / 1e9;
}

#endif
