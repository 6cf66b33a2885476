/* SPDX-License-Identifier: MIT */
/*
 * ferryd under a service manager: the sd_notify(3) protocol against a real
 * notify socket the test listens on (NOTIFY_SOCKET). READY=1 only once the
 * program is attached, the workers run and the control socket listens;
 * STATUS= says what runs; WATCHDOG=1 keeps coming, and stops while a worker
 * is made to stall.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "ferryd_proc.h"
#include "netns.h"

#define WATCHDOG_USEC 400000 /* fed every 200 ms */

static struct {
	struct ferry_testns ns;
	struct ferry_test_ferryd d;
	int fd;
	char path[108];
} fx = {.d = FERRY_TEST_FERRYD_INIT, .fd = -1};

static void teardown(void)
{
	ferry_test_ferryd_stop(&fx.d);
	ferry_testns_teardown(&fx.ns);
	if (fx.fd >= 0)
		close(fx.fd);
	if (fx.path[0])
		unlink(fx.path);
}

/* The next notify message within ms (NUL-terminated in buf): its length, or 0 when none came. */
static ssize_t next_msg(char *buf, size_t len, int ms)
{
	struct pollfd p = {.fd = fx.fd, .events = POLLIN};
	ssize_t n;

	if (poll(&p, 1, ms) <= 0)
		return 0;
	n = recv(fx.fd, buf, len - 1, MSG_DONTWAIT);
	if (n < 0)
		return 0;
	buf[n] = '\0';
	return n;
}

/* Messages for ms: how many held "WATCHDOG=1"; the last STATUS= into status. */
static unsigned int count_watchdog(int ms, char *status, size_t slen)
{
	uint64_t end = ferry_test_now_ms() + (uint64_t)ms;
	unsigned int n = 0;
	char buf[512];

	while (ferry_test_now_ms() < end) {
		int left = (int)(end - ferry_test_now_ms());

		if (!next_msg(buf, sizeof(buf), left > 0 ? left : 1))
			continue;
		n += strstr(buf, "WATCHDOG=1") != NULL;
		if (status && strstr(buf, "STATUS="))
			snprintf(status, slen, "%s", strstr(buf, "STATUS=") + 7);
	}
	return n;
}

Test(notify, ready_status_and_a_watchdog_that_stops_for_a_stalled_worker, .fini = teardown, .timeout = 60)
{
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", "xdp", "--queues", "2", "--workers", "2",
			      "--service", "s=198.18.0.1:9000", NULL};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char buf[512], status[256] = "", env[32];
	bool ready = false;
	unsigned int fed;
	int c;

	if (!ferry_test_is_root())
		cr_skip_test("needs root for network namespaces and XDP");
	cr_assert_eq(ferry_testns_setup_queues(&fx.ns, 2), 0, "expected the namespaces");
	snprintf(fx.path, sizeof(fx.path), "/tmp/ferryt-notify-%d.sock", (int)getpid());
	unlink(fx.path);
	fx.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fx.path);
	cr_assert_eq(bind(fx.fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind: %s", strerror(errno));
	/* what systemd would set (Type=notify, WatchdogSec=); the fault hook makes SIGUSR2 stall worker 0 */
	snprintf(env, sizeof(env), "%d", WATCHDOG_USEC);
	setenv("NOTIFY_SOCKET", fx.path, 1);
	setenv("WATCHDOG_USEC", env, 1);
	setenv("FERRYD_FAULTS", "stall", 1);
	ferry_test_ferryd_spawn(&fx.d, &fx.ns, "notify", args);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("FERRYD_FAULTS");

	for (uint64_t end = ferry_test_now_ms() + 15000; !ready && ferry_test_now_ms() < end;) {
		if (!next_msg(buf, sizeof(buf), 100))
			continue;
		if (strstr(buf, "STATUS="))
			snprintf(status, sizeof(status), "%s", strstr(buf, "STATUS=") + 7);
		ready = strstr(buf, "READY=1") != NULL;
	}
	cr_assert(ready, "expected READY=1; log:\n%s", ferry_test_ferryd_log(&fx.d));
	/* READY means serving: the program is on the interface, the control socket answers */
	cr_assert(ferry_test_xdp_attached(&fx.ns), "expected the XDP program attached at READY");
	c = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.107s", fx.d.control);
	cr_assert_eq(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0, "expected the control socket to listen at READY");
	close(c);
	cr_assert(strstr(status, "xdp on " FERRY_TESTNS_HOST_IF ", 2 workers: 1 service, 0 clients"),
		  "expected a STATUS saying what runs, got '%s'", status);

	fed = count_watchdog(1200, status, sizeof(status));
	cr_assert_geq(fed, 3, "expected WATCHDOG=1 every 200 ms, got %u in 1.2 s", fed);

	/* worker 0 sleeps: its ping goes unanswered, so the watchdog is not fed */
	cr_assert_eq(ferry_test_ferryd_signal(&fx.d, SIGUSR2), 0, "SIGUSR2");
	count_watchdog(500, status, sizeof(status)); /* at most one ping answered before the worker slept */
	fed = count_watchdog(1500, status, sizeof(status));
	cr_assert_eq(fed, 0, "expected no WATCHDOG=1 while a worker stalls, got %u; log:\n%s", fed,
		     ferry_test_ferryd_log(&fx.d));
	cr_assert(strstr(status, "a worker is stalled"), "expected the STATUS to say so, got '%s'; log:\n%s", status,
		  ferry_test_ferryd_log(&fx.d));
	cr_assert(strstr(ferry_test_ferryd_log(&fx.d), "the watchdog is not fed"), "expected the log to say so");
}
