/* SPDX-License-Identifier: MIT */
/* What systemd is told (sd_notify(3)): READY, STATUS kept current, WATCHDOG while every worker answers. */
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include <systemd/sd-daemon.h>

#include "control.h"
#include "daemon.h"
#include "dataplane.h"
#include "iface.h"

#define STATUS_MS 1000

/* "xdp on eth0, 2 workers: 3 services, 5 clients; 123456 datagrams in" */
void ferryd_notify_status(struct ferryd *d)
{
	struct ferryd_stats st;
	char status[sizeof(d->status)], msg[sizeof(status) + 8];
	unsigned int nsvc = 0;

	if (!d->engine)
		return;
	for (unsigned int i = 0; i < d->cfg.nservices; i++)
		nsvc += d->cfg.services[i].name[0] != 0;
	memset(&st, 0, sizeof(st));
	d->engine->ops->get_stats(d->engine, &st);
	snprintf(status, sizeof(status), "%s on %s, %u worker%s: %u service%s, %u client%s; %llu datagrams in%s",
		 d->engine->ops->name, d->cfg.ifname[0] ? d->cfg.ifname : "any interface", ferryd_engine_workers(d->engine),
		 ferryd_engine_workers(d->engine) == 1 ? "" : "s", nsvc, nsvc == 1 ? "" : "s",
		 ferryd_control_sessions(d->control), ferryd_control_sessions(d->control) == 1 ? "" : "s",
		 (unsigned long long)st.rx_packets, d->stalled ? "; a worker is stalled" : "");
	if (!strcmp(status, d->status))
		return;
	snprintf(d->status, sizeof(d->status), "%s", status);
	snprintf(msg, sizeof(msg), "STATUS=%s", status);
	sd_notify(0, msg);
}

static void on_status(void *user, struct ferry_timer *t)
{
	(void)t;
	ferryd_notify_status(user);
}

/*
 * The watchdog is fed only while every worker answers its ping: a worker
 * stuck in a loop (or a syscall) stops the feeding, and systemd restarts
 * ferryd after WatchdogSec. One ping in flight per worker at a time.
 */
static void on_watchdog(void *user, struct ferry_timer *t)
{
	struct ferryd *d = user;
	bool alive = ferryd_dp_workers_alive(d->engine);

	(void)t;
	if (alive) {
		if (d->stalled)
			ferryd_log(LOG_NOTICE, "every worker answers again: feeding the watchdog");
		d->stalled = false;
		sd_notify(0, "WATCHDOG=1");
		return;
	}
	if (!d->stalled)
		ferryd_log(LOG_ERR, "a worker did not answer within a watchdog period: the watchdog is not fed");
	d->stalled = true;
	ferryd_notify_status(d);
}

void ferryd_notify_ready(struct ferryd *d)
{
	uint64_t usec = 0;

	ferryd_notify_status(d);
	sd_notify(0, "READY=1");
	d->status_timer = ferry_timer_new(d->r, on_status, d);
	if (d->status_timer)
		ferry_timer_arm(d->status_timer, STATUS_MS, STATUS_MS);
	/* WATCHDOG_USEC (and WATCHDOG_PID ours): fed at half the period, as sd_watchdog_enabled(3) says */
	if (sd_watchdog_enabled(0, &usec) > 0 && usec >= 2000) {
		d->watchdog_timer = ferry_timer_new(d->r, on_watchdog, d);
		if (d->watchdog_timer) {
			ferry_timer_arm(d->watchdog_timer, usec / 2000, usec / 2000);
			ferryd_log(LOG_INFO, "systemd watchdog: fed every %llu ms while the workers answer",
				   (unsigned long long)(usec / 2000));
		}
	}
}

void ferryd_notify_stopping(struct ferryd *d)
{
	ferry_timer_free(d->status_timer);
	ferry_timer_free(d->watchdog_timer);
	d->status_timer = d->watchdog_timer = NULL;
	sd_notify(0, "STOPPING=1\nSTATUS=draining");
}
