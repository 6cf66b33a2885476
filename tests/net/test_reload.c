/* SPDX-License-Identifier: MIT */
/*
 * ferryd's reload (SIGHUP) end to end: a service added and one removed while
 * a client of a third receives a continuous stream, every datagram of which
 * it must have; a bad configuration refused with its error while the running
 * one goes on.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "client_proc.h"
#include "ferryd_proc.h"
#include "hostile_client.h"
#include "netns.h"

#define READY_MS 15000
#define ATTACH_MS 5000
#define STREAM 6000
#define STREAM_PPS 3000

static struct {
	struct ferry_testns ns;
	struct ferry_test_ferryd d;
	struct ferry_test_client c[3];
	char conf[64];
} fx = {.d = FERRY_TEST_FERRYD_INIT};

static void teardown(void)
{
	for (int i = 0; i < 3; i++)
		ferry_test_client_free(&fx.c[i]);
	ferry_test_ferryd_stop(&fx.d);
	ferry_testns_teardown(&fx.ns);
	if (fx.conf[0])
		unlink(fx.conf);
}

static void write_conf(const char *services)
{
	FILE *f = fopen(fx.conf, "w");

	cr_assert_not_null(f, "expected to write %s", fx.conf);
	fprintf(f, "[daemon]\ninterface = " FERRY_TESTNS_HOST_IF "\nmode = xdp\nqueues = 1\n\n%s", services);
	fclose(f);
}

static void start(const char *services)
{
	const char *args[] = {"--config", fx.conf, NULL};
	int r;

	if (!ferry_test_is_root())
		cr_skip_test("needs root for network namespaces and XDP");
	for (int i = 0; i < 3; i++)
		fx.c[i].pid = -1;
	cr_assert_eq(ferry_testns_setup(&fx.ns), 0, "expected the namespaces");
	snprintf(fx.conf, sizeof(fx.conf), "/tmp/ferryt-reload-%d.conf", (int)getpid());
	write_conf(services);
	ferry_test_ferryd_spawn(&fx.d, &fx.ns, "reload", args);
	r = ferry_test_ferryd_wait_ready(&fx.d, READY_MS);
	cr_assert_eq(r, 0, "expected ferryd ready; log:\n%s", ferry_test_ferryd_log(&fx.d));
}

static void attach(int i, const char *service)
{
	struct ferry_test_client_cfg cfg = {.control = fx.d.control, .service = service};

	ferry_test_client_start(&fx.c[i], &cfg);
	cr_assert(ferry_test_client_wait(&fx.c[i], FERRY_TEST_CLIENT_ATTACHED, ATTACH_MS) &&
			  fx.c[i].sh->state == FERRY_TEST_CLIENT_ATTACHED,
		  "expected a client of %s (%s); log:\n%s", service, fx.c[i].sh->why, ferry_test_ferryd_log(&fx.d));
}

/* Waits for a log line holding text, after the log had been at offset from. */
static bool wait_log(const char *text, size_t from, int ms)
{
	for (uint64_t t = ferry_test_now_ms() + (uint64_t)ms; ferry_test_now_ms() < t; usleep(10000)) {
		const char *log = ferry_test_ferryd_log(&fx.d);

		if (strlen(log) > from && strstr(log + from, text))
			return true;
	}
	return false;
}

static void reload(const char *services, const char *expect)
{
	size_t from = strlen(ferry_test_ferryd_log(&fx.d));

	write_conf(services);
	cr_assert_eq(ferry_test_ferryd_signal(&fx.d, SIGHUP), 0, "SIGHUP");
	cr_assert(wait_log(expect, from, 5000), "expected '%s' after the reload; log:\n%s", expect,
		  ferry_test_ferryd_log(&fx.d));
}

/* The peer's stream to 198.18.0.1:9000: STREAM datagrams, paced, each numbered. */
struct stream {
	struct ferry_testns *ns;
	unsigned int sent;
	int err;
};

static void *stream_main(void *arg)
{
	struct stream *s = arg;
	union ferry_sockaddr dst;
	uint8_t buf[64];
	uint64_t start;
	int fd;

	if (ferry_testns_enter(s->ns, FERRY_TESTNS_PEER)) {
		s->err = -1;
		return NULL;
	}
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, 9000, &dst);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	start = ferry_test_now_ms();
	while (s->sent < STREAM && ferry_test_now_ms() < start + 20000) {
		if (ferry_test_now_ms() < start + (uint64_t)s->sent * 1000 / STREAM_PPS) {
			usleep(300);
			continue;
		}
		ferry_test_client_payload(buf, sizeof(buf), s->sent);
		if (sendto(fd, buf, sizeof(buf), 0, &dst.sa, ferry_sockaddr_len(&dst)) == sizeof(buf))
			s->sent++;
		else
			usleep(200);
	}
	close(fd);
	return NULL;
}

Test(reload, services_come_and_go_the_others_lose_nothing, .fini = teardown, .timeout = 90)
{
	static const char one[] = "[service a]\nlisten = 198.18.0.1:9000\n\n[service b]\nlisten = 198.18.0.1:9001\n";
	static const char two[] = "[service a]\nlisten = 198.18.0.1:9000\nfanout = round-robin\n\n"
				  "[service c]\nlisten = [2001:2::1]:9002\n";
	static const char three[] = "[service a]\nlisten = 198.18.0.1:9000\n\n[service c]\nlisten = [2001:2::1]:9002\n"
				    "[service b]\nlisten = 198.18.0.1:9001\n";
	struct stream s = {.ns = &fx.ns};
	uint8_t *seen = calloc(STREAM, 1);
	pthread_t t;
	unsigned int dup = 0, missing = 0;

	start(one);
	attach(0, "a");
	attach(1, "b");
	cr_assert_eq(pthread_create(&t, NULL, stream_main, &s), 0, "the stream's thread");
	usleep(300000);
	/* b goes (its client is told), c comes, a's fanout changes: a's stream goes on */
	reload(two, "reload: 1 service added, 1 removed, 1 changed, 0 unchanged");
	cr_assert(ferry_test_client_wait(&fx.c[1], FERRY_TEST_CLIENT_ENDED, 5000), "expected b's client ended");
	cr_assert(strstr(fx.c[1].sh->why, "service b was removed by a reload"), "got '%s'", fx.c[1].sh->why);
	attach(2, "c");
	usleep(300000);
	/* a file with an error changes nothing */
	{
		size_t from = strlen(ferry_test_ferryd_log(&fx.d));
		FILE *f = fopen(fx.conf, "a");

		fprintf(f, "[service d]\nlisten = 198.18.0.1\n");
		fclose(f);
		cr_assert_eq(ferry_test_ferryd_signal(&fx.d, SIGHUP), 0, "SIGHUP");
		cr_assert(wait_log("reload refused", from, 5000), "expected the bad file refused; log:\n%s",
			  ferry_test_ferryd_log(&fx.d));
		cr_assert(strstr(ferry_test_ferryd_log(&fx.d) + from, ":13: listen: 198.18.0.1: bad address"),
			  "expected the located error; log:\n%s", ferry_test_ferryd_log(&fx.d) + from);
	}
	reload(three, "reload: 1 service added, 0 removed, 1 changed, 1 unchanged");
	pthread_join(t, NULL);
	cr_assert_eq(s.sent, STREAM, "expected the whole stream sent, %u", s.sent);
	for (uint64_t d = ferry_test_now_ms() + 5000;
	     __atomic_load_n(&fx.c[0].sh->datagrams, __ATOMIC_ACQUIRE) < STREAM && ferry_test_now_ms() < d;)
		usleep(10000);
	ferry_test_client_stop(&fx.c[0]);
	for (uint32_t k = 0; k < fx.c[0].sh->nrec; k++) {
		uint32_t seq;
		uint8_t want[64];

		cr_assert_eq(fx.c[0].sh->rec[k].len, 64, "expected 64-byte datagrams");
		/* the records keep a hash: find the datagram by its number, which starts the payload */
		for (seq = 0; seq < STREAM; seq++) {
			ferry_test_client_payload(want, sizeof(want), seq);
			if (ferry_test_hash(want, sizeof(want)) == fx.c[0].sh->rec[k].hash)
				break;
		}
		cr_assert_lt(seq, STREAM, "datagram %u is none the peer sent", k);
		dup += seen[seq]++ > 0;
	}
	for (uint32_t k = 0; k < STREAM; k++)
		missing += !seen[k];
	cr_assert_eq(missing + dup, 0, "expected a's client to have every datagram once: %u missing, %u twice; log:\n%s",
		     missing, dup, ferry_test_ferryd_log(&fx.d));
	/* c is served, b again */
	cr_assert_eq(fx.c[2].sh->state, FERRY_TEST_CLIENT_ATTACHED, "expected c's client still attached");
	free(seen);
	ferry_test_ferryd_signal(&fx.d, SIGTERM);
	cr_assert_eq(ferry_test_ferryd_wait_exit(&fx.d, 15000), 0, "expected ferryd to exit");
	cr_assert(WIFEXITED(fx.d.status) && WEXITSTATUS(fx.d.status) == 0, "expected exit 0, status 0x%x", fx.d.status);
}

/* How many times the log says that the session of the client with pid ended. */
static unsigned int ends_of(pid_t pid)
{
	const char *log = ferry_test_ferryd_log(&fx.d);
	unsigned int n = 0;
	char said[64];

	snprintf(said, sizeof(said), "(service a, pid %d) ended: ", (int)pid);
	for (const char *p = log; (p = strstr(p, said)); p++)
		n++;
	return n;
}

/*
 * Clients of a service go and a reload removes it, all while ferryd is
 * stopped: it finds them together. Each session ends once, then the reload
 * runs. (A session's end waits for the worker, and with one worker that
 * wait runs the event loop: a reload used to run inside it, end the same
 * session again and free it under the first end.)
 */
Test(reload, a_reload_waits_for_the_session_ends_under_way, .fini = teardown, .timeout = 60)
{
	static const char both[] = "[service a]\nlisten = 198.18.0.1:9000\n\n[service b]\nlisten = 198.18.0.1:9001\n";
	static const char only_b[] = "[service b]\nlisten = 198.18.0.1:9001\n";
	pid_t pids[3];

	start(both);
	for (int i = 0; i < 3; i++) {
		attach(i, "a");
		pids[i] = fx.c[i].pid;
	}
	cr_assert_eq(ferry_test_ferryd_signal(&fx.d, SIGSTOP), 0, "expected to stop ferryd");
	for (int i = 0; i < 3; i++)
		ferry_test_client_kill(&fx.c[i]);
	write_conf(only_b);
	cr_assert_eq(ferry_test_ferryd_signal(&fx.d, SIGHUP), 0, "SIGHUP");
	cr_assert_eq(ferry_test_ferryd_signal(&fx.d, SIGCONT), 0, "expected to continue ferryd");
	cr_assert(wait_log("reload: 0 services added, 1 removed, 0 changed, 1 unchanged", 0, 5000),
		  "expected the reload done; log:\n%s", ferry_test_ferryd_log(&fx.d));
	for (int i = 0; i < 3; i++)
		cr_assert_eq(ends_of(pids[i]), 1, "expected the session of pid %d ended once; log:\n%s", (int)pids[i],
			     ferry_test_ferryd_log(&fx.d));
	/* and the control socket serves on: no operation was left half done */
	attach(0, "b");
	ferry_test_client_stop(&fx.c[0]);
	ferry_test_ferryd_signal(&fx.d, SIGTERM);
	cr_assert_eq(ferry_test_ferryd_wait_exit(&fx.d, 15000), 0, "expected ferryd to exit");
	cr_assert(WIFEXITED(fx.d.status) && WEXITSTATUS(fx.d.status) == 0, "expected exit 0 (every frame back), "
		  "status 0x%x; log:\n%s", fx.d.status, ferry_test_ferryd_log(&fx.d));
}

/* The status of the answer to query seq (verb) on fd: every part asserted to come, within 10 s. */
static int ctl_status(int fd, uint32_t verb, uint32_t seq)
{
	unsigned int parts;
	int status;

	free(ferry_test_ctl_answer(fd, verb, seq, 10000, &status, &parts));
	return status;
}

/* Whether the host's interface has no tentative IPv6 address left (its link-local one's DAD done), within 10 s. */
static bool dad_done(void)
{
	char out[512];

	for (uint64_t t = ferry_test_now_ms() + 10000; ferry_test_now_ms() < t; usleep(50000))
		if (!ferry_test_capture(out, sizeof(out), "ip -n %s -6 addr show tentative", fx.ns.host) && !out[0])
			return true;
	return false;
}

/*
 * A reload removes a service and adds another in its place (its id), and the
 * interface changes while the removal waits for the worker: ferryd reads the
 * reload and the change together, after a stop. The worker closes a removed
 * service's sockets before it answers; a new view of the interface sent in
 * that wait used to be answered first and pass for the removal's answer, and
 * the new service found the old sockets still there and opened none: it
 * received nothing. It echoes.
 */
Test(reload, an_interface_change_inside_a_removal_waits_its_turn, .fini = teardown, .timeout = 60)
{
	static const char before[] = "handler = echo\n\n[service a]\nlisten = 198.18.0.1:9000\n\n"
				     "[service b]\nlisten = 198.18.0.1:9001\n";
	static const char after[] = "handler = echo\n\n[service b]\nlisten = 198.18.0.1:9001\n\n"
				    "[service c]\nlisten = 198.18.0.1:9002\n";
	union ferry_sockaddr dst;
	int fd;

	start(before);
	/* no change of the interface is left to read but the test's own */
	cr_assert(dad_done(), "expected the link-local address's DAD done");
	fd = ferry_test_ctl_connect(fx.d.control);
	cr_assert_geq(fd, 0, "expected to connect: %s", strerror(-fd));
	ferry_test_ctl_query(fd, FERRY_CTL_STATUS, 1);
	/* answered: the connection is ferryd's, and DAD's end read */
	cr_assert_eq(ctl_status(fd, FERRY_CTL_STATUS, 1), 0, "expected the status");
	cr_assert_eq(ferry_test_ferryd_signal(&fx.d, SIGSTOP), 0, "expected to stop ferryd");
	write_conf(after);
	/* the reload asked first, then the interface changes: in that order when ferryd goes on */
	ferry_test_ctl_query(fd, FERRY_CTL_RELOAD, 2);
	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_HOST, "ip addr add 198.18.0.9/24 dev " FERRY_TESTNS_HOST_IF),
		     0, "expected an address added");
	cr_assert_eq(ferry_test_ferryd_signal(&fx.d, SIGCONT), 0, "expected to continue ferryd");
	cr_assert_eq(ctl_status(fd, FERRY_CTL_RELOAD, 2), 0, "expected the reload done; log:\n%s",
		     ferry_test_ferryd_log(&fx.d));
	close(fd);
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER), 0, "expected to enter the peer namespace");
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, 9002, &dst);
	ferry_test_expect_echo(&fx.d, &dst, 32);
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, 9001, &dst);
	ferry_test_expect_echo(&fx.d, &dst, 32);
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_ROOT), 0, "expected to leave the peer namespace");
	ferry_test_ferryd_stop_clean(&fx.d, 15000);
}

/*
 * SIGTERM, a reload asked and an attach, all while ferryd is stopped: it
 * reads them together, stops and drains. The drain waits for the worker
 * (with one, the event loop runs there): the reload and the attach used to
 * run inside it, a service removed and a session made while ferryd shut
 * down. Now neither starts: both connections are closed unanswered, the
 * session there was told ferryd shuts down, and ferryd exits 0.
 */
Test(reload, nothing_starts_while_ferryd_drains, .fini = teardown, .timeout = 60)
{
	static const char both[] = "[service a]\nlisten = 198.18.0.1:9000\n\n[service b]\nlisten = 198.18.0.1:9001\n";
	static const char only_b[] = "[service b]\nlisten = 198.18.0.1:9001\n";
	struct ferry_ctl_attach a;
	struct ferry_ctl_reply rep;
	int rfd, afd;
	ssize_t n;

	start(both);
	attach(0, "a");
	cr_assert_eq(ferry_test_ferryd_signal(&fx.d, SIGSTOP), 0, "expected to stop ferryd");
	cr_assert_eq(ferry_test_ferryd_signal(&fx.d, SIGTERM), 0, "SIGTERM");
	write_conf(only_b);
	rfd = ferry_test_ctl_connect(fx.d.control);
	cr_assert_geq(rfd, 0, "expected to connect: %s", strerror(-rfd));
	ferry_test_ctl_query(rfd, FERRY_CTL_RELOAD, 1);
	afd = ferry_test_ctl_connect(fx.d.control);
	cr_assert_geq(afd, 0, "expected to connect: %s", strerror(-afd));
	ferry_test_ctl_attach_msg(&a, "b", 0, 0, 0);
	cr_assert_eq(ferry_test_ctl_send(afd, &a, sizeof(a), NULL, 0), 0, "expected to ask for a session");
	cr_assert_eq(ferry_test_ferryd_signal(&fx.d, SIGCONT), 0, "expected to continue ferryd");
	cr_assert_eq(ferry_test_ferryd_wait_exit(&fx.d, 15000), 0, "expected ferryd to exit");
	cr_assert(WIFEXITED(fx.d.status) && WEXITSTATUS(fx.d.status) == 0, "expected exit 0, status 0x%x; log:\n%s",
		  fx.d.status, ferry_test_ferryd_log(&fx.d));
	n = ferry_test_ctl_recv(rfd, &rep, sizeof(rep), NULL, 0, NULL, 1000);
	close(rfd);
	/* closed with the request unread: a reset, or an end */
	cr_assert(n == 0 || n == -ECONNRESET, "expected the reload's connection closed unanswered, got %zd; log:\n%s",
		  n, ferry_test_ferryd_log(&fx.d));
	n = ferry_test_ctl_recv(afd, &rep, sizeof(rep), NULL, 0, NULL, 1000);
	close(afd);
	cr_assert(n == 0 || n == -ECONNRESET,
		  "expected the attach's connection closed unanswered, got %zd (status %d); log:\n%s", n,
		  n > 0 ? rep.status : 0, ferry_test_ferryd_log(&fx.d));
	cr_assert_not(strstr(ferry_test_ferryd_log(&fx.d), "reload asked") ||
			      strstr(ferry_test_ferryd_log(&fx.d), "attached to service b"),
		      "expected no reload and no session once ferryd stopped; log:\n%s", ferry_test_ferryd_log(&fx.d));
	cr_assert(ferry_test_client_wait(&fx.c[0], FERRY_TEST_CLIENT_ENDED, 5000) &&
			  strstr(fx.c[0].sh->why, "shutting down"),
		  "expected the client told ferryd shuts down (%s)", fx.c[0].sh->why);
}
