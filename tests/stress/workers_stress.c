/* SPDX-License-Identifier: MIT */
/*
 * The engine with two worker threads, driven hard from the control thread
 * while datagrams flow: services added and removed again and again, counters
 * read all the while. A plain program (no Criterion), so that it can run
 * under ThreadSanitizer (make tsan); tests/net/test_ferryd_workers.c runs it.
 * Exit 0: every datagram echoed, every frame accounted for; 77: cannot run here.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ferryd.h"
#include "handlers.h"
#include "iface.h"
#include "netns.h"

#define STREAM 20000
#define FLOWS 8
#define CYCLES 30

static int fail(const char *what)
{
	fprintf(stderr, "workers-stress: %s\n", what);
	return 1;
}

/* The peer: STREAM datagrams over FLOWS sockets (every queue), each echo counted; exit 0 when all came back. */
static int peer(void)
{
	union ferry_sockaddr dst;
	int fds[FLOWS], back = 0;
	char buf[64];

	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, 9600, &dst);
	for (int f = 0; f < FLOWS; f++) {
		int big = 4 << 20;

		fds[f] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fds[f] < 0 || connect(fds[f], &dst.sa, ferry_sockaddr_len(&dst)))
			return 10;
		setsockopt(fds[f], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	}
	for (int i = 0; i < STREAM; i++) {
		if (send(fds[i % FLOWS], "stress", 6, 0) != 6)
			return 11;
		if (i % 50 == 49)
			usleep(5000);
		for (int f = 0; f < FLOWS; f++)
			while (recv(fds[f], buf, sizeof(buf), 0) == 6)
				back++;
	}
	for (uint64_t end = ferry_test_now_ms() + 3000; back < STREAM && ferry_test_now_ms() < end;) {
		usleep(1000);
		for (int f = 0; f < FLOWS; f++)
			while (recv(fds[f], buf, sizeof(buf), 0) == 6)
				back++;
	}
	return back == STREAM ? 0 : 12;
}

int main(void)
{
	static struct ferryd_handler_ctx hctx;
	struct ferryd_service svcs[2];
	struct ferryd_config cfg;
	struct ferryd_engine *e = NULL;
	struct ferryd_iface *ifc = NULL;
	struct ferry_reactor *r = NULL;
	struct ferry_testns ns;
	struct ferryd_stats st;
	char why[256] = "";
	int status = 1, pst = -1, cycles = 0;
	pid_t child;

	signal(SIGPIPE, SIG_IGN);
	if (geteuid() != 0)
		return 77;
	if (ferry_testns_setup_queues(&ns, 2))
		return 77;
	if (ferry_testns_enter(&ns, FERRY_TESTNS_HOST) || !(r = ferry_reactor_new()) ||
	    ferryd_iface_new(r, FERRY_TESTNS_HOST_IF, &ifc, why, sizeof(why))) {
		status = fail(why[0] ? why : "the host side");
		goto out;
	}
	ferryd_config_defaults(&cfg);
	snprintf(cfg.ifname, sizeof(cfg.ifname), "%s", FERRY_TESTNS_HOST_IF);
	cfg.mode = FERRYD_MODE_XDP;
	cfg.queues = 2;
	cfg.workers = 2;
	cfg.frames = 1024;
	memset(svcs, 0, sizeof(svcs));
	snprintf(svcs[0].name, sizeof(svcs[0].name), "stream");
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, 9600, &svcs[0].addr);
	snprintf(svcs[1].name, sizeof(svcs[1].name), "comes-and-goes");
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, 9601, &svcs[1].addr);
	ferryd_handlers_install(&hctx, FERRYD_HANDLER_ECHO, svcs, 2);
	if (ferryd_xdp_engine_new(r, ifc, &cfg, svcs, 1, &e, why, sizeof(why))) {
		status = fail(why);
		goto out;
	}
	ferryd_handlers_set_engine(&hctx, e);
	fflush(NULL);
	child = fork();
	if (child < 0) {
		status = fail("fork");
		goto out;
	}
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(ferry_testns_enter(&ns, FERRY_TESTNS_PEER) ? 9 : peer());
	}
	for (uint64_t end = ferry_test_now_ms() + 60000; ferry_test_now_ms() < end;) {
		ferry_reactor_run_once(r, 5);
		e->ops->get_stats(e, &st);
		if (cycles < CYCLES) {
			svcs[1].id = (unsigned int)ferryd_engine_free_id(e);
			if (e->ops->add_service(e, &svcs[1], why, sizeof(why)) || e->ops->remove_service(e, &svcs[1])) {
				status = fail(why[0] ? why : "adding and removing a service");
				kill(child, SIGKILL);
				waitpid(child, &pst, 0);
				goto out;
			}
			cycles++;
		}
		if (waitpid(child, &pst, WNOHANG) == child) {
			child = -1;
			break;
		}
	}
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, &pst, 0);
		status = fail("the peer did not finish within 60 s");
		goto out;
	}
	e->ops->drain(e);
	e->ops->get_stats(e, &st);
	if (!WIFEXITED(pst) || WEXITSTATUS(pst)) {
		fprintf(stderr, "workers-stress: peer status %d: %llu received, %llu sent\n",
			WIFEXITED(pst) ? WEXITSTATUS(pst) : -1, (unsigned long long)st.rx_packets,
			(unsigned long long)st.tx_packets);
		status = 1;
	} else if (ferryd_engine_check_frames(e)) {
		status = fail("frames out of balance");
	} else {
		printf("workers-stress: %d datagrams echoed by 2 workers while a service came and went %d times\n",
		       STREAM, cycles);
		status = 0;
	}
out:
	if (e)
		e->ops->free(e);
	ferryd_iface_free(ifc);
	ferry_reactor_free(r);
	ferry_testns_teardown(&ns);
	return status;
}
