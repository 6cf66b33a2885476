/* SPDX-License-Identifier: MIT */
/*
 * The ferryd binary as a test's child: started in the fixture's host namespace
 * with stdout and stderr in a log file, waited for ("ferryd: ready", exit),
 * signalled, and always reaped. Its log's "stats " lines read by key.
 */
#ifndef FERRY_TEST_FERRYD_PROC_H
#define FERRY_TEST_FERRYD_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "netns.h"

/* The log read back is cut at this many bytes. */
#define FERRY_TEST_FERRYD_LOG_MAX (1 << 20)

struct ferry_test_ferryd {
	pid_t pid;     /* the running child, or -1 (never started, or reaped) */
	int status;    /* its wait status once reaped */
	char log[128]; /* its stdout and stderr; "" until the first spawn */
	char control[128]; /* its control socket: the one args gave, or one of its own next to the log */
};

#define FERRY_TEST_FERRYD_INIT { .pid = -1 }

/* $FERRY_BUILD/ferryd, or build/ferryd when FERRY_BUILD is unset or empty. */
const char *ferry_test_ferryd_path(void);

/*
 * Starts ferryd with args (NULL-terminated) appended, in ns's host namespace,
 * its output in d->log (named /tmp/ferryt-<tag>-<pid>-<n>.log on the first
 * spawn, kept by later ones; truncated at each start). Does not wait. Asserts
 * (Criterion) that the binary is executable and the fork worked. The child
 * dies with the test process (PR_SET_PDEATHSIG).
 */
void ferry_test_ferryd_spawn(struct ferry_test_ferryd *d, const struct ferry_testns *ns, const char *tag,
			     const char *const *args);

/* The whole log so far, NUL-terminated, cut at FERRY_TEST_FERRYD_LOG_MAX; "" if none. One static buffer. */
const char *ferry_test_ferryd_log(const struct ferry_test_ferryd *d);

/* Reaps the child if it has exited: true then (d->pid -1, d->status set), or when there is none. */
bool ferry_test_ferryd_reaped(struct ferry_test_ferryd *d);

/*
 * Polls the log for "ferryd: ready" (checked before the exit, each round) for
 * up to timeout_ms: 0 when it is there; -ESRCH when ferryd exited first
 * (d->status set); -ETIMEDOUT when neither happened.
 */
int ferry_test_ferryd_wait_ready(struct ferry_test_ferryd *d, int timeout_ms);

/* Waits up to timeout_ms for the child to exit: 0 (d->status set), or -ETIMEDOUT. */
int ferry_test_ferryd_wait_exit(struct ferry_test_ferryd *d, int timeout_ms);

/* kill(2) to the running child: 0, or -ESRCH when there is none (never signals pid -1 or 0). */
int ferry_test_ferryd_signal(const struct ferry_test_ferryd *d, int sig);

/* Teardown: SIGKILL and reap a running child, remove the log. Safe at any point and twice. */
void ferry_test_ferryd_stop(struct ferry_test_ferryd *d);

/* ferry_test_ferryd_spawn(), then asserts "ready" within timeout_ms (the log in the message otherwise). */
void ferry_test_ferryd_start(struct ferry_test_ferryd *d, const struct ferry_testns *ns, const char *tag,
			     const char *const *args, int timeout_ms);

/*
 * SIGTERM, then asserts that ferryd exits within timeout_ms with status 0:
 * it drains and exits 0 only when every UMEM frame is accounted for (3 if not).
 */
void ferry_test_ferryd_stop_clean(struct ferry_test_ferryd *d, int timeout_ms);

/* The value of key in the last line of log that starts with "stats "; -1 if there is none or no key. */
int64_t ferry_test_stats_value(const char *log, const char *key);

/* SIGUSR1, then waits (3 s) for the new stats line; returns key's value there. Asserts it comes. */
int64_t ferry_test_ferryd_ask(struct ferry_test_ferryd *d, const char *key);

/*
 * Asks for key until it reads want or timeout_ms have passed; returns the last
 * value read. For state ferryd settles on its own time, after the test's
 * action: a session's end, the link's state, frames coming back.
 */
int64_t ferry_test_ferryd_wait_value(struct ferry_test_ferryd *d, const char *key, int64_t want, int timeout_ms);

/*
 * From the namespace the calling thread is in: sends len bytes (a pattern;
 * up to the largest UDP datagram) to dst and expects them back byte-exact
 * from dst itself, within 3 tries of 1 s. Asserts, with d's log on failure.
 */
void ferry_test_expect_echo(const struct ferry_test_ferryd *d, const union ferry_sockaddr *dst, size_t len);

/* Whether nothing comes back to a datagram sent to dst within wait_ms (no echo expected). */
bool ferry_test_no_echo(const union ferry_sockaddr *dst, size_t len, int wait_ms);

/* Runs a shell command; its exit status (-1 if it did not run or was too long), its stdout in out. */
int ferry_test_capture(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Whether an XDP program is attached to the host's fh0. */
bool ferry_test_xdp_attached(const struct ferry_testns *ns);

#endif
