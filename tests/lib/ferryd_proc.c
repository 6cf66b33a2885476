/* SPDX-License-Identifier: MIT */
/* The ferryd binary as a test's child (ferryd_proc.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "ferryd_proc.h"
#include "testutil.h"

#define ARGV_MAX 64

static char logbuf[FERRY_TEST_FERRYD_LOG_MAX];

const char *ferry_test_ferryd_path(void)
{
	static char path[512];
	const char *b = getenv("FERRY_BUILD");

	snprintf(path, sizeof(path), "%s/ferryd", b && *b ? b : "build");
	return path;
}

void ferry_test_ferryd_spawn(struct ferry_test_ferryd *d, const struct ferry_testns *ns, const char *tag,
			     const char *const *args)
{
	static unsigned int seq;
	char *argv[ARGV_MAX];
	unsigned int n = 0;
	bool control = false;
	pid_t pid;
	int fd;

	if (!d->log[0]) {
		snprintf(d->log, sizeof(d->log), "/tmp/ferryt-%s-%d-%u.log", tag, (int)getpid(), seq);
		snprintf(d->control, sizeof(d->control), "/tmp/ferryt-%s-%d-%u.sock", tag, (int)getpid(), seq++);
	}
	argv[n++] = (char *)ferry_test_ferryd_path();
	for (; *args && n < ARGV_MAX - 3; args++) {
		if (!strcmp(*args, "--control") && args[1]) {
			control = true;
			snprintf(d->control, sizeof(d->control), "%s", args[1]);
		}
		argv[n++] = (char *)*args;
	}
	if (!control) {
		argv[n++] = "--control";
		argv[n++] = d->control;
	}
	argv[n] = NULL;
	cr_assert_eq(access(argv[0], X_OK), 0, "expected an executable ferryd at %s (set FERRY_BUILD)", argv[0]);
	/* Emptied here, not only in the child: a wait right after this must not
	 * read the previous run's "ready" before the child got to truncate it. */
	fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0, "expected to create %s: %s", d->log, strerror(errno));
	close(fd);
	pid = fork();
	cr_assert_geq(pid, 0, "fork failed: %s", strerror(errno));
	if (pid == 0) {
		sigset_t none;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (ferry_testns_enter(ns, FERRY_TESTNS_HOST))
			_exit(126);
		fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0)
			_exit(126);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	d->pid = pid;
}

const char *ferry_test_ferryd_log(const struct ferry_test_ferryd *d)
{
	ssize_t n = 0, r;
	int fd = d->log[0] ? open(d->log, O_RDONLY | O_CLOEXEC) : -1;

	logbuf[0] = '\0';
	if (fd < 0)
		return logbuf;
	while ((r = read(fd, logbuf + n, sizeof(logbuf) - 1 - (size_t)n)) > 0)
		n += r;
	close(fd);
	logbuf[n] = '\0';
	return logbuf;
}

bool ferry_test_ferryd_reaped(struct ferry_test_ferryd *d)
{
	if (d->pid <= 0)
		return true;
	if (waitpid(d->pid, &d->status, WNOHANG) == d->pid) {
		d->pid = -1;
		return true;
	}
	return false;
}

int ferry_test_ferryd_wait_ready(struct ferry_test_ferryd *d, int timeout_ms)
{
	uint64_t deadline = ferry_test_now_ms() + (uint64_t)timeout_ms;

	while (ferry_test_now_ms() < deadline) {
		if (strstr(ferry_test_ferryd_log(d), "ferryd: ready"))
			return 0;
		if (ferry_test_ferryd_reaped(d))
			return -ESRCH;
		usleep(20000);
	}
	return -ETIMEDOUT;
}

int ferry_test_ferryd_wait_exit(struct ferry_test_ferryd *d, int timeout_ms)
{
	uint64_t deadline = ferry_test_now_ms() + (uint64_t)timeout_ms;

	while (ferry_test_now_ms() < deadline) {
		if (ferry_test_ferryd_reaped(d))
			return 0;
		usleep(10000);
	}
	return -ETIMEDOUT;
}

int ferry_test_ferryd_signal(const struct ferry_test_ferryd *d, int sig)
{
	if (d->pid <= 0)
		return -ESRCH;
	return kill(d->pid, sig) ? -errno : 0;
}

void ferry_test_ferryd_stop(struct ferry_test_ferryd *d)
{
	ferry_test_reap_child(&d->pid);
	if (d->log[0])
		unlink(d->log);
	d->log[0] = '\0';
	/* a killed ferryd leaves its socket: the next one would take it over, but nothing should be left */
	if (d->control[0])
		unlink(d->control);
	d->control[0] = '\0';
}

void ferry_test_ferryd_start(struct ferry_test_ferryd *d, const struct ferry_testns *ns, const char *tag,
			     const char *const *args, int timeout_ms)
{
	int r;

	ferry_test_ferryd_spawn(d, ns, tag, args);
	r = ferry_test_ferryd_wait_ready(d, timeout_ms);
	cr_assert_eq(r, 0, "expected ferryd to become ready (%s); log:\n%s", r == -ESRCH ? "it exited" : "timed out",
		     ferry_test_ferryd_log(d));
}

void ferry_test_ferryd_stop_clean(struct ferry_test_ferryd *d, int timeout_ms)
{
	ferry_test_ferryd_signal(d, SIGTERM);
	cr_assert_eq(ferry_test_ferryd_wait_exit(d, timeout_ms), 0, "expected ferryd to exit on SIGTERM; log:\n%s",
		     ferry_test_ferryd_log(d));
	cr_assert(WIFEXITED(d->status) && WEXITSTATUS(d->status) == 0,
		  "expected exit 0 (3: frame accounting unbalanced), wait status 0x%x; log:\n%s", d->status,
		  ferry_test_ferryd_log(d));
}

int64_t ferry_test_stats_value(const char *log, const char *key)
{
	const char *line = NULL, *p;
	char pat[64];

	for (p = log; (p = strstr(p, "stats ")); p++)
		if (p == log || p[-1] == '\n')
			line = p;
	if (!line)
		return -1;
	snprintf(pat, sizeof(pat), " %s=", key);
	p = strstr(line, pat);
	if (!p || p > line + strcspn(line, "\n"))
		return -1;
	return strtoll(p + strlen(pat), NULL, 10);
}

/* The log from byte off on, into buf after a '\n' standing for what came before (cut at size - 2). */
static void read_log_from(const struct ferry_test_ferryd *d, off_t off, char *buf, size_t size)
{
	size_t n = 1;
	ssize_t r;
	int fd = open(d->log, O_RDONLY | O_CLOEXEC);

	buf[0] = '\n';
	while (fd >= 0 && n < size - 1 && (r = pread(fd, buf + n, size - 1 - n, off + (off_t)(n - 1))) > 0)
		n += (size_t)r;
	if (fd >= 0)
		close(fd);
	buf[n] = '\0';
}

/*
 * Looks for the answer after the log's end as it was before the signal, not
 * by counting stats lines in ferry_test_ferryd_log()'s copy, which stops at
 * FERRY_TEST_FERRYD_LOG_MAX; and takes the line only once it is whole: stdout
 * into a file is written in blocks, and a line can reach the file in two.
 */
int64_t ferry_test_ferryd_ask(struct ferry_test_ferryd *d, const char *key)
{
	static char buf[FERRY_TEST_FERRYD_LOG_MAX];
	uint64_t deadline = ferry_test_now_ms() + 3000;
	struct stat st;
	off_t from = d->log[0] && stat(d->log, &st) == 0 ? st.st_size : 0;

	/* from the last '\n' on: a line that starts exactly at the old end is found too */
	from = from > 0 ? from - 1 : 0;
	cr_assert_eq(ferry_test_ferryd_signal(d, SIGUSR1), 0, "expected to signal ferryd");
	while (ferry_test_now_ms() < deadline) {
		char *line, *end;

		read_log_from(d, from, buf, sizeof(buf));
		line = strstr(buf, "\nstats ");
		end = line ? strchr(line + 1, '\n') : NULL;
		if (end) {
			*end = '\0';
			return ferry_test_stats_value(line + 1, key);
		}
		usleep(10000);
	}
	cr_assert_fail("expected a stats line after SIGUSR1; log:\n%s", ferry_test_ferryd_log(d));
	return -1;
}

int64_t ferry_test_ferryd_wait_value(struct ferry_test_ferryd *d, const char *key, int64_t want, int timeout_ms)
{
	uint64_t deadline = ferry_test_now_ms() + (uint64_t)timeout_ms;
	int64_t v;

	while ((v = ferry_test_ferryd_ask(d, key)) != want && ferry_test_now_ms() < deadline)
		usleep(20000);
	return v;
}

static int wait_readable(int fd, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, timeout_ms);
}

#define MAX_DGRAM 65536

void ferry_test_expect_echo(const struct ferry_test_ferryd *d, const union ferry_sockaddr *dst, size_t len)
{
	static uint8_t out[MAX_DGRAM], in[MAX_DGRAM];
	union ferry_sockaddr from;
	socklen_t fromlen;
	int fd = socket(dst->sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0), big = 1 << 20;
	ssize_t got = -1;
	char want[64], saw[64];

	cr_assert_geq(fd, 0, "expected a UDP socket: %s", strerror(errno));
	cr_assert_leq(len, sizeof(out), "test bug: %zu bytes is more than a UDP datagram", len);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(i * 7 + len);
	for (int attempt = 0; attempt < 3 && got < 0; attempt++) {
		ssize_t r = sendto(fd, out, len, 0, &dst->sa, ferry_sockaddr_len(dst));

		cr_assert_eq(r, (ssize_t)len, "expected to send %zu bytes: %s", len, strerror(errno));
		if (wait_readable(fd, 1000) > 0) {
			fromlen = sizeof(from);
			got = recvfrom(fd, in, sizeof(in), MSG_DONTWAIT, &from.sa, &fromlen);
		}
	}
	ferry_sockaddr_format(dst, want, sizeof(want));
	cr_assert_geq(got, 0, "expected an echo of %zu bytes from %s within 3 tries; ferryd log:\n%s", len, want,
		      ferry_test_ferryd_log(d));
	ferry_sockaddr_format(&from, saw, sizeof(saw));
	cr_assert_eq((size_t)got, len, "expected %zu bytes back from %s, got %zd", len, want, got);
	cr_assert_eq(memcmp(in, out, len), 0, "expected the echo of %zu bytes to be byte-exact", len);
	cr_assert(ferry_sockaddr_equal(&from, dst), "expected the echo to come from %s, it came from %s", want, saw);
	close(fd);
}

bool ferry_test_no_echo(const union ferry_sockaddr *dst, size_t len, int wait_ms)
{
	static uint8_t buf[2048];
	int fd = socket(dst->sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool none;

	cr_assert_geq(fd, 0, "expected a UDP socket: %s", strerror(errno));
	memset(buf, 'n', sizeof(buf));
	cr_assert_eq(sendto(fd, buf, len, 0, &dst->sa, ferry_sockaddr_len(dst)), (ssize_t)len, "expected to send");
	none = wait_readable(fd, wait_ms) == 0;
	close(fd);
	return none;
}

int ferry_test_capture(char *out, size_t len, const char *fmt, ...)
{
	char cmd[8192];
	size_t n = 0;
	va_list ap;
	FILE *f;
	int st, w;

	va_start(ap, fmt);
	w = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	out[0] = '\0';
	if (w < 0 || (size_t)w >= sizeof(cmd)) /* a cut command could do anything: run none */
		return -1;
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (n + 1 < len) {
		size_t r = fread(out + n, 1, len - 1 - n, f);

		if (!r)
			break;
		n += r;
	}
	out[n] = '\0';
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

bool ferry_test_xdp_attached(const struct ferry_testns *ns)
{
	char out[4096];

	ferry_test_capture(out, sizeof(out), "ip -n %s link show " FERRY_TESTNS_HOST_IF " 2>/dev/null", ns->host);
	return strstr(out, " xdp") != NULL;
}
