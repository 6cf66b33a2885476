/* SPDX-License-Identifier: MIT */
/* A reload (SIGHUP, ferryctl reload): the configuration read again, what changed applied, the rest untouched. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "control.h"
#include "daemon.h"
#include "log.h"

/* A [daemon] setting the running ferryd keeps: said once per reload that changes it. */
static void keep(const char *key, const char *now, const char *asked)
{
	ferryd_log(LOG_WARNING, "reload: %s: a running ferryd keeps '%s' (restart it for '%s')", key, now, asked);
}

static void keep_uint(const char *key, unsigned int now, unsigned int asked)
{
	char a[16], b[16];

	snprintf(a, sizeof(a), "%u", now);
	snprintf(b, sizeof(b), "%u", asked);
	keep(key, a, b);
}

static void daemon_keys(struct ferryd *d, const struct ferryd_config *next)
{
	struct ferryd_config *cur = &d->cfg;
	char why[256];

	if (strcmp(cur->ifname, next->ifname))
		keep("interface", cur->ifname, next->ifname);
	if (cur->queues != next->queues)
		keep_uint("queues", cur->queues, next->queues);
	if (cur->workers != next->workers)
		keep_uint("workers", cur->workers, next->workers);
	if (cur->ncpus != next->ncpus || memcmp(cur->cpus, next->cpus, cur->ncpus * sizeof(cur->cpus[0])))
		keep("cpus", "as started", "another list");
	if (cur->mode != next->mode)
		keep("mode", ferryd_mode_name(cur->mode), ferryd_mode_name(next->mode));
	if (cur->xdp_mode != next->xdp_mode)
		keep("xdp-mode", ferryd_xdp_mode_name(cur->xdp_mode), ferryd_xdp_mode_name(next->xdp_mode));
	if (cur->zero_copy != next->zero_copy)
		keep("zero-copy", ferryd_zero_copy_name(cur->zero_copy), ferryd_zero_copy_name(next->zero_copy));
	if (cur->frames != next->frames)
		keep_uint("frames", cur->frames, next->frames);
	if (cur->frame_size != next->frame_size)
		keep_uint("frame-size", cur->frame_size, next->frame_size);
	if (cur->batch != next->batch)
		keep_uint("batch", cur->batch, next->batch);
	if (cur->busy_poll != next->busy_poll)
		keep("busy-poll", cur->busy_poll ? "yes" : "no", next->busy_poll ? "yes" : "no");
	if (cur->handler != next->handler)
		keep("handler", ferryd_handler_name(cur->handler), ferryd_handler_name(next->handler));
	if (strcmp(cur->control, next->control))
		keep("control", cur->control, next->control);
	if (strcmp(cur->run_dir, next->run_dir))
		keep("run-dir", cur->run_dir, next->run_dir);

	/* what a running ferryd takes */
	if (cur->log_level != next->log_level) {
		cur->log_level = next->log_level;
		if (!d->cl.verbose)
			ferryd_log_level = next->log_level >= 0 ? next->log_level : LOG_INFO;
		ferryd_log(LOG_NOTICE, "reload: log level %s", ferryd_log_level_name(ferryd_log_level));
	}
	if (cur->control_uid != next->control_uid || cur->control_gid != next->control_gid ||
	    cur->control_mode != next->control_mode) {
		cur->control_uid = next->control_uid;
		cur->control_gid = next->control_gid;
		cur->control_mode = next->control_mode;
		if (ferryd_control_set_access(d->control, why, sizeof(why)))
			ferryd_log(LOG_ERR, "reload: %s", why);
		else
			ferryd_log(LOG_NOTICE, "reload: control socket access changed (mode %04o)", cur->control_mode);
	}
}

static struct ferryd_service *by_name(struct ferryd_config *cfg, const char *name)
{
	for (unsigned int i = 0; i < cfg->nservices; i++)
		if (cfg->services[i].name[0] && !strcmp(cfg->services[i].name, name))
			return &cfg->services[i];
	return NULL;
}

static bool same_addr(const struct ferryd_service *a, const struct ferryd_service *b)
{
	union ferry_sockaddr x, y;

	ferryd_sockaddr_canon(&a->addr, &x);
	ferryd_sockaddr_canon(&b->addr, &y);
	return ferry_sockaddr_equal(&x, &y);
}

/* A free slot of the running configuration for a new service (its index is its id), or NULL. */
static struct ferryd_service *free_slot(struct ferryd_config *cfg)
{
	for (unsigned int i = 0; i < cfg->nservices; i++)
		if (!cfg->services[i].name[0])
			return &cfg->services[i];
	if (cfg->nservices == FERRY_MAX_SERVICES)
		return NULL;
	cfg->services[cfg->nservices].id = cfg->nservices;
	return &cfg->services[cfg->nservices++];
}

/* What a service's clients see of it, apart from its address: taken in place. */
static bool update(struct ferryd *d, struct ferryd_service *cur, const struct ferryd_service *next)
{
	bool changed = false;

	if (cur->fanout != next->fanout) {
		cur->fanout = next->fanout;
		if (ferryd_control_set_fanout(d->control, cur))
			ferryd_log(LOG_ERR, "reload: service %s: the workers did not take the new fanout", cur->name);
		changed = true;
	}
	/* read when a client attaches (control thread): the sessions it has keep what they were given */
	if (memcmp(&cur->allow, &next->allow, sizeof(cur->allow))) {
		cur->allow = next->allow;
		changed = true;
	}
	if (cur->zero_copy_clients != next->zero_copy_clients || cur->rx_slots != next->rx_slots ||
	    cur->tx_slots != next->tx_slots || cur->slot_size != next->slot_size) {
		cur->zero_copy_clients = next->zero_copy_clients;
		cur->rx_slots = next->rx_slots;
		cur->tx_slots = next->tx_slots;
		cur->slot_size = next->slot_size;
		changed = true;
	}
	return changed;
}

static void remove_service(struct ferryd *d, struct ferryd_service *svc, const char *why)
{
	char msg[128];
	unsigned int id = svc->id;

	snprintf(msg, sizeof(msg), "service %s %s", svc->name, why);
	ferryd_control_end_service(d->control, svc, msg);
	if (d->engine->ops->remove_service(d->engine, svc))
		ferryd_log(LOG_ERR, "reload: service %s: the engine did not have it", svc->name);
	memset(svc, 0, sizeof(*svc));
	svc->id = id;
}

int ferryd_reload(struct ferryd *d, char *why, size_t whylen)
{
	static struct ferryd_config next; /* as large as the running one: not on the stack */
	struct ferryd_config *cur = &d->cfg;
	struct ferryd_cmdline cl;
	unsigned int added = 0, removed = 0, changed = 0, kept = 0;
	bool readdressed[FERRY_MAX_SERVICES] = {false};
	int err;

	err = ferryd_config_load(&next, &cl, d->argc, d->argv, FERRYD_DEFAULT_CONFIG, why, whylen);
	if (err) {
		d->reload_failures++;
		return err;
	}
	/* every new address servable here, or nothing changes */
	for (unsigned int i = 0; i < next.nservices; i++) {
		const struct ferryd_service *n = &next.services[i], *c = by_name(cur, n->name);

		if ((!c || !same_addr(c, n)) && ferryd_check_service(d, n)) {
			snprintf(why, whylen, "service %s: its address is not one ferryd can serve here", n->name);
			d->reload_failures++;
			return -EADDRNOTAVAIL;
		}
	}
	daemon_keys(d, &next);

	/* gone, or at another address: ended first, so an address can move between services */
	for (unsigned int i = 0; i < cur->nservices; i++) {
		struct ferryd_service *c = &cur->services[i];
		const struct ferryd_service *n;

		if (!c->name[0])
			continue;
		n = by_name(&next, c->name);
		if (!n) {
			ferryd_log(LOG_NOTICE, "reload: service %s removed", c->name);
			remove_service(d, c, "was removed by a reload");
			removed++;
		} else if (!same_addr(c, n)) {
			ferryd_log(LOG_NOTICE, "reload: service %s moves to another address", c->name);
			readdressed[n - next.services] = true;
			remove_service(d, c, "moved to another address (attach again)");
		} else if (update(d, c, n)) {
			ferryd_log(LOG_NOTICE, "reload: service %s changed", c->name);
			changed++;
		} else {
			kept++;
		}
	}
	for (unsigned int i = 0; i < next.nservices; i++) {
		const struct ferryd_service *n = &next.services[i];
		struct ferryd_service *svc;
		unsigned int id;
		char why2[256] = "";

		if (by_name(cur, n->name))
			continue;
		svc = free_slot(cur);
		if (!svc) {
			ferryd_log(LOG_ERR, "reload: service %s: no room for another service", n->name);
			continue;
		}
		id = svc->id;
		*svc = *n;
		svc->id = id;
		svc->cb = NULL;
		svc->user = NULL;
		ferryd_handlers_install_one(&d->handler, svc);
		if (ferryd_control_set_fanout(d->control, svc))
			ferryd_log(LOG_ERR, "reload: service %s: the workers did not take its fanout", svc->name);
		err = d->engine->ops->add_service(d->engine, svc, why2, sizeof(why2));
		if (err) {
			ferryd_log(LOG_ERR, "reload: service %s: %s", svc->name, why2);
			memset(svc, 0, sizeof(*svc));
			svc->id = id;
			continue;
		}
		if (readdressed[i]) {
			changed++;
		} else {
			ferryd_log(LOG_NOTICE, "reload: service %s added", svc->name);
			added++;
		}
	}
	d->reloads++;
	snprintf(why, whylen, "%u service%s added, %u removed, %u changed, %u unchanged", added, added == 1 ? "" : "s",
		 removed, changed, kept);
	ferryd_log(LOG_INFO, "reload: %s", why);
	ferryd_notify_status(d);
	return 0;
}
