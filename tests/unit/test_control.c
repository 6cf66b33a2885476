/* SPDX-License-Identifier: MIT */
/*
 * The control socket (daemon/control.c) in this process: a socket engine
 * whose one worker shares the test's reactor, services on loopback ports
 * nobody has, the control listening in a fresh directory. A test sends,
 * runs the reactor until it is idle, then reads what ferryd said; no
 * namespace, no root (tests/net/test_clients_hostile.c has the same rules
 * against a ferryd process).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <ferry/reactor.h>
#include <ferry/ring.h>

#include "control.h"
#include "ferryd.h"
#include "handlers.h"
#include "hostile_client.h"
#include "iface.h"
#include "testutil.h"

static struct {
	struct ferry_reactor *r;
	struct ferryd_iface *iface;
	struct ferryd_config cfg;
	struct ferryd_handler_ctx h;
	struct ferryd_engine *e;
	struct ferryd_control *c;
	char dir[64];
} fx;

static uint16_t free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0, "expected a UDP socket");
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "expected a free loopback port");
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0, "expected its port");
	close(fd);
	return ntohs(a.sin_port);
}

static void setup(void)
{
	struct ferryd_service *s;
	char why[256] = "";

	fx.r = ferry_reactor_new();
	cr_assert(fx.r, "expected a reactor");
	cr_assert_eq(ferryd_iface_new(fx.r, "", &fx.iface, why, sizeof(why)), 0, "expected the host's addresses: %s",
		     why);
	ferryd_config_defaults(&fx.cfg);
	fx.cfg.mode = FERRYD_MODE_SOCKET;
	fx.cfg.workers = 1;
	fx.cfg.handler = FERRYD_HANDLER_CLIENTS;
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/ferry-test-control.XXXXXX");
	cr_assert(mkdtemp(fx.dir), "expected a directory for the socket");
	snprintf(fx.cfg.control, sizeof(fx.cfg.control), "%s/ctl", fx.dir);
	fx.cfg.control_mode = 0600;
	s = &fx.cfg.services[fx.cfg.nservices];
	snprintf(s->name, sizeof(s->name), "svc");
	s->id = fx.cfg.nservices++;
	s->addr.in4.sin_family = AF_INET;
	s->addr.in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->addr.in4.sin_port = htons(free_port());
	ferryd_handlers_install(&fx.h, fx.cfg.handler, fx.cfg.services, fx.cfg.nservices);
	cr_assert_eq(ferryd_sock_engine_new(fx.r, fx.iface, &fx.cfg, fx.cfg.services, fx.cfg.nservices, &fx.e, why,
					    sizeof(why)),
		     0, "expected a socket engine: %s", why);
	ferryd_handlers_set_engine(&fx.h, fx.e);
	cr_assert_eq(ferryd_control_new(fx.r, &fx.cfg, fx.e, &fx.c, why, sizeof(why)), 0, "expected the control: %s",
		     why);
}

static void teardown(void)
{
	ferryd_control_stop(fx.c, NULL);
	if (fx.e) {
		fx.e->ops->drain(fx.e);
		ferryd_handlers_set_engine(&fx.h, NULL);
		fx.e->ops->free(fx.e);
	}
	ferryd_control_free(fx.c);
	ferryd_iface_free(fx.iface);
	ferry_reactor_free(fx.r);
	if (fx.dir[0])
		rmdir(fx.dir);
	memset(&fx, 0, sizeof(fx));
}

/* ferryd's side runs until it has nothing left to do. */
static void run_idle(void)
{
	for (int i = 0; i < 1000; i++) {
		int n = ferry_reactor_run_once(fx.r, 0);

		cr_assert_geq(n, 0, "expected the reactor to run: %s", strerror(-n));
		if (!n)
			return;
	}
	cr_assert_fail("expected ferryd's reactor to go idle");
}

static int connect_ctl(void)
{
	int fd = ferry_test_ctl_connect(fx.cfg.control);

	cr_assert_geq(fd, 0, "expected to connect to the control socket: %s", strerror(-fd));
	run_idle(); /* accepted */
	return fd;
}

/* Whether every pipe whose read end is in rd has no write end left open (in this process: ferryd's too). */
static bool all_closed(const int *rd, int n)
{
	for (int i = 0; i < n; i++) {
		char b;

		if (read(rd[i], &b, 1) != 0)
			return false;
	}
	return true;
}

Test(control, attach_served_then_detached, .init = setup, .fini = teardown)
{
	struct ferry_ctl_attach a;
	struct ferry_ctl_reply rep;
	unsigned int nfds = 0;
	int fds[8], fd = connect_ctl();
	ssize_t n;

	ferry_test_ctl_attach_msg(&a, "svc", 16, 16, 256);
	cr_assert_eq(ferry_test_ctl_send(fd, &a, sizeof(a), NULL, 0), 0, "expected the attach sent");
	run_idle();
	n = ferry_test_ctl_recv(fd, &rep, sizeof(rep), fds, 8, &nfds, 0);
	cr_assert_eq(n, (ssize_t)sizeof(rep), "expected a reply, got %zd", n);
	cr_assert_eq(rep.status, 0, "expected a session: %d %s", rep.status, rep.why);
	cr_assert_eq(nfds, 3u, "expected the memfd, the wake pipe and one kick pipe, got %u fds", nfds);
	cr_assert_eq(ferryd_control_sessions(fx.c), 1u, "expected one session");
	for (unsigned int i = 0; i < nfds; i++)
		close(fds[i]);
	memset(&a, 0, sizeof(a));
	a.magic = FERRY_CTL_MAGIC;
	a.version = FERRY_RING_VERSION;
	a.op = FERRY_CTL_DETACH;
	cr_assert_eq(ferry_test_ctl_send(fd, &a, sizeof(a), NULL, 0), 0, "expected the detach sent");
	run_idle();
	n = ferry_test_ctl_recv(fd, &rep, sizeof(rep), NULL, 0, NULL, 0);
	cr_assert_eq(n, 0, "expected a detach answered by the close, got %zd", n);
	cr_assert_eq(ferryd_control_sessions(fx.c), 0u, "expected no session after the detach");
	close(fd);
}

/*
 * Found by fuzzing (tests/fuzz/control_msg): an empty message reads as the
 * peer's close, and ferryd closed the fds a message brought only when it had
 * bytes: those of an empty one stayed open in ferryd, any number of them, as
 * often as a client cared to send one.
 */
Test(control, empty_message_fds_closed, .init = setup, .fini = teardown)
{
	int rd[4], wr[4], fd, before, after;
	char buf[8];

	for (int i = 0; i < 4; i += 2) {
		int p[2];

		cr_assert_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0, "expected a pipe");
		rd[i] = p[0], wr[i] = p[1];
		cr_assert_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0, "expected a pipe");
		rd[i + 1] = p[0], wr[i + 1] = p[1];
	}
	before = ferry_test_count_fds();
	fd = connect_ctl();
	cr_assert_eq(ferry_test_ctl_send(fd, "", 0, wr, 4), 0, "expected an empty message with 4 fds sent");
	for (int i = 0; i < 4; i++)
		close(wr[i]);
	run_idle();
	cr_assert_eq(ferry_test_ctl_recv(fd, buf, sizeof(buf), NULL, 0, NULL, 0), 0,
		     "expected an empty message to close the connection");
	close(fd);
	run_idle();
	cr_assert(all_closed(rd, 4), "expected ferryd to close the 4 fds an empty message brought");
	after = ferry_test_count_fds();
	cr_assert_eq(after, before - 4, "expected %d fds open (ours less the 4 write ends), %d are", before - 4, after);
	for (int i = 0; i < 4; i++)
		close(rd[i]);
}
