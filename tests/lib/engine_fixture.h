/* SPDX-License-Identifier: MIT */
/*
 * The fixture of the in-process engine tests: the namespaces of netns.h, the
 * test thread in the host namespace, a reactor, a ferryd_config for fh0, the
 * engine under test and a forked peer child; and the teardown of all of it.
 */
#ifndef FERRY_TEST_ENGINE_FIXTURE_H
#define FERRY_TEST_ENGINE_FIXTURE_H

#include <stdbool.h>
#include <sys/types.h>

#include <ferry/reactor.h>

#include "ferryd.h"
#include "netns.h"
#include "testutil.h"

struct ferry_test_engine_fx {
	struct ferry_testns ns;
	bool ns_up;		  /* ns is set up (tear it down) */
	struct ferry_reactor *r;
	struct ferryd_iface *iface; /* fh0's watch, for the engine under test */
	struct ferryd_config cfg;
	struct ferryd_engine *e;  /* the engine under test, freed by the teardown */
	pid_t child;		  /* the peer, or -1 */
};

#define FERRY_TEST_ENGINE_FX_INIT { .child = -1 }

/* Skips the test (cr_skip_test) unless this kernel opens AF_XDP sockets. */
void ferry_test_need_af_xdp(void);

/* Skips the test unless root ("needs" says for what), creates the namespaces (skips if it cannot), sets *up. */
void ferry_test_ns_up(struct ferry_testns *ns, bool *up, const char *needs);

/* The same with nq queues on each end of the veth pair. */
void ferry_test_ns_up_queues(struct ferry_testns *ns, bool *up, const char *needs, unsigned int nq);

/* Tears the namespaces down if *up, clears it. */
void ferry_test_ns_down(struct ferry_testns *ns, bool *up);

/* The namespaces: ferry_test_ns_up() with "needs root for namespaces and AF_XDP". */
void ferry_test_engine_fx_ns(struct ferry_test_engine_fx *fx);

/*
 * After the namespaces: the calling thread into the host namespace, the AF_XDP
 * probe when need_af_xdp, a reactor, fh0's watch (fx->iface) and fx->cfg:
 * defaults, fh0, one queue, FERRYD_MODE_XDP. Asserts each step.
 */
void ferry_test_engine_fx_host(struct ferry_test_engine_fx *fx, bool need_af_xdp);

/* Both of the above, with the AF_XDP probe: the whole setup of a plain AF_XDP engine test. */
void ferry_test_engine_fx_setup(struct ferry_test_engine_fx *fx);

/* Forks the peer into fx->child (stdio flushed first; asserts the fork). Returns fork()'s value. */
pid_t ferry_test_engine_fx_fork(struct ferry_test_engine_fx *fx);

/*
 * Runs the reactor (10 ms rounds, each asserted) until the peer has exited
 * and is reaped (fx->child -1, its wait status in *status) or timeout_ms passed.
 */
void ferry_test_engine_fx_run_peer(struct ferry_test_engine_fx *fx, int timeout_ms, int *status);

/* Teardown: reaps the peer, frees the engine, the watch and the reactor, removes the namespaces. Safe twice. */
void ferry_test_engine_fx_teardown(struct ferry_test_engine_fx *fx);

#endif
