/* SPDX-License-Identifier: MIT */
/* The fixture of the in-process engine tests (engine_fixture.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "engine_fixture.h"
#include "iface.h"

#ifndef AF_XDP
#define AF_XDP 44
#endif

void ferry_test_need_af_xdp(void)
{
	int fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);

	if (fd < 0)
		cr_skip_test("no AF_XDP sockets here: %s", strerror(errno));
	close(fd);
}

void ferry_test_ns_up(struct ferry_testns *ns, bool *up, const char *needs)
{
	ferry_test_ns_up_queues(ns, up, needs, 1);
}

void ferry_test_ns_up_queues(struct ferry_testns *ns, bool *up, const char *needs, unsigned int nq)
{
	int err;

	if (!ferry_test_is_root())
		cr_skip_test("%s", needs);
	err = ferry_testns_setup_queues(ns, nq);
	if (err)
		cr_skip_test("cannot create the test namespaces: %s", strerror(-err));
	*up = true;
}

void ferry_test_ns_down(struct ferry_testns *ns, bool *up)
{
	if (*up)
		ferry_testns_teardown(ns);
	*up = false;
}

void ferry_test_engine_fx_ns(struct ferry_test_engine_fx *fx)
{
	ferry_test_ns_up(&fx->ns, &fx->ns_up, "needs root for namespaces and AF_XDP");
}

void ferry_test_engine_fx_host(struct ferry_test_engine_fx *fx, bool need_af_xdp)
{
	char why[256] = "";

	cr_assert_eq(ferry_testns_enter(&fx->ns, FERRY_TESTNS_HOST), 0, "entering the host namespace");
	if (need_af_xdp)
		ferry_test_need_af_xdp();
	fx->r = ferry_reactor_new();
	cr_assert_not_null(fx->r, "a reactor");
	ferryd_config_defaults(&fx->cfg);
	snprintf(fx->cfg.ifname, sizeof(fx->cfg.ifname), "%s", FERRY_TESTNS_HOST_IF);
	fx->cfg.queues = 1;
	fx->cfg.workers = 1; /* the test's own thread runs the engine */
	fx->cfg.mode = FERRYD_MODE_XDP;
	cr_assert_eq(ferryd_iface_new(fx->r, fx->cfg.ifname, &fx->iface, why, sizeof(why)), 0, "watching %s: %s",
		     fx->cfg.ifname, why);
}

void ferry_test_engine_fx_setup(struct ferry_test_engine_fx *fx)
{
	ferry_test_engine_fx_ns(fx);
	ferry_test_engine_fx_host(fx, true);
}

pid_t ferry_test_engine_fx_fork(struct ferry_test_engine_fx *fx)
{
	fflush(NULL);
	fx->child = fork();
	cr_assert_geq(fx->child, 0, "fork");
	return fx->child;
}

void ferry_test_engine_fx_run_peer(struct ferry_test_engine_fx *fx, int timeout_ms, int *status)
{
	uint64_t deadline = ferry_test_now_ms() + (uint64_t)timeout_ms;

	while (fx->child > 0 && ferry_test_now_ms() < deadline) {
		cr_assert_geq(ferry_reactor_run_once(fx->r, 10), 0, "reactor");
		if (waitpid(fx->child, status, WNOHANG) == fx->child)
			fx->child = -1;
	}
}

void ferry_test_engine_fx_teardown(struct ferry_test_engine_fx *fx)
{
	ferry_test_reap_child(&fx->child);
	if (fx->e) {
		fx->e->ops->free(fx->e);
		fx->e = NULL;
	}
	ferryd_iface_free(fx->iface);
	fx->iface = NULL;
	ferry_reactor_free(fx->r);
	fx->r = NULL;
	ferry_test_ns_down(&fx->ns, &fx->ns_up);
}
