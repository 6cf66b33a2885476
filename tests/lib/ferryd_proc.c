/* SPDX-License-Identifier: MIT */
/* The ferryd binary as a test's child (ferryd_proc.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
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
	pid_t pid;

	if (!d->log[0])
		snprintf(d->log, sizeof(d->log), "/tmp/ferryt-%s-%d-%u.log", tag, (int)getpid(), seq++);
	argv[n++] = (char *)ferry_test_ferryd_path();
	for (; *args && n < ARGV_MAX - 1; args++)
		argv[n++] = (char *)*args;
	argv[n] = NULL;
	cr_assert_eq(access(argv[0], X_OK), 0, "expected an executable ferryd at %s (set FERRY_BUILD)", argv[0]);
	pid = fork();
	cr_assert_geq(pid, 0, "fork failed: %s", strerror(errno));
	if (pid == 0) {
		sigset_t none;
		int fd;

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
