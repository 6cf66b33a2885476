/* SPDX-License-Identifier: MIT */
/*
 * ferryd as a process, on its control thread: what main.c starts and stops,
 * what a reload changes (reload.c) and what systemd is told (notify.c).
 */
#ifndef FERRYD_DAEMON_H
#define FERRYD_DAEMON_H

#include <stdbool.h>

#include <ferry/reactor.h>

#include "config.h"
#include "ferryd.h"
#include "handlers.h"

struct ferryd_iface;
struct ferryd_owner;
struct ferryd_control;

struct ferryd {
	struct ferryd_config cfg; /* the running configuration; services[] by id ("" name: a removed one's slot) */
	int argc;		  /* the command line, parsed again (with the file) by a reload */
	char **argv;
	struct ferryd_cmdline cl;
	struct ferry_reactor *r;
	struct ferryd_iface *iface;
	struct ferryd_owner *owner;
	struct ferryd_engine *engine;
	struct ferryd_control *control;
	struct ferryd_handler_ctx handler;
	int sigfd;
	bool quit;
	int quit_signal;
	bool reload_pending; /* SIGHUP came: the reload runs from the main loop (main.c) */
	bool stats_pending;  /* SIGUSR1 came: the stats are printed from the main loop */
	int exit_status; /* when not 0: why the loop ended other than by a signal */
	/* systemd (notify.c) */
	struct ferry_timer *status_timer, *watchdog_timer;
	char status[256]; /* the last STATUS= sent */
	bool stalled;	  /* a worker did not answer the last watchdog ping */
	uint64_t reloads, reload_failures;
	bool stall_on_usr2; /* FERRYD_FAULTS=stall: SIGUSR2 stalls worker 0 (the watchdog's tests) */
	bool nomem_on_usr2; /* FERRYD_FAULTS=attach-nomem: SIGUSR2 makes the next session fail (the fault tests) */
};

/*
 * Reads the configuration again (the same command line, the file anew) and
 * applies what changed: services removed, added, readdressed or given a new
 * fanout, access list, hand-off or ring sizes; the log level and the control
 * socket's access. Services that did not change, and their clients, are not
 * touched. Settings a running ferryd cannot change are logged and kept. A
 * configuration with an error changes nothing. 0 with what changed in why
 * ("1 service added, ..."), or -errno with the reason.
 */
int ferryd_reload(struct ferryd *d, char *why, size_t whylen);

/* Whether service svc's address is one ferryd may serve here (the interface has it); logs why not. */
int ferryd_check_service(struct ferryd *d, const struct ferryd_service *svc);

/*
 * systemd: READY=1 and STATUS= once ferryd serves; STATUS= kept current (a
 * reactor timer); WATCHDOG=1 at half of WatchdogSec, only while every worker
 * answers its ping. Nothing when not started by systemd.
 */
void ferryd_notify_ready(struct ferryd *d);
void ferryd_notify_status(struct ferryd *d);
void ferryd_notify_stopping(struct ferryd *d);

#endif
