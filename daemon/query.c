/* SPDX-License-Identifier: MIT */
/* The answers to ferryctl's queries (query.h). */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <ferry/ring.h>

#include "config.h"
#include "dataplane.h"
#include "dispatch.h"
#include "handlers.h"
#include "iface.h"
#include "prog.h"
#include "query.h"
#include "session.h"
#include "worker.h"
#include "xsk.h"

#ifndef FERRY_VERSION
#define FERRY_VERSION "unknown"
#endif

/* Every counter of a client session and of a service, by name: nothing counted goes unreported. */
#define SESS_FIELD(f) { #f, offsetof(struct ferryd_sess_stats, f) }
static const struct ferryd_stat_field sess_fields[] = {
	SESS_FIELD(rx_packets), SESS_FIELD(rx_bytes),	SESS_FIELD(rx_dropped_full), SESS_FIELD(rx_dropped_big),
	SESS_FIELD(rx_zero_copy), SESS_FIELD(tx_packets), SESS_FIELD(tx_bytes),	     SESS_FIELD(tx_dropped),
	SESS_FIELD(wakeups),	SESS_FIELD(kicks),
};
_Static_assert(sizeof(sess_fields) / sizeof(sess_fields[0]) * sizeof(uint64_t) == sizeof(struct ferryd_sess_stats),
	       "sess_fields must list every field of struct ferryd_sess_stats");

#define SVC_FIELD(f) { #f, offsetof(struct ferryd_svc_stats, f) }
static const struct ferryd_stat_field svc_fields[] = {
	SVC_FIELD(rx_packets),	      SVC_FIELD(rx_bytes),	      SVC_FIELD(delivered),
	SVC_FIELD(dropped_no_client), SVC_FIELD(dropped_client_full), SVC_FIELD(dropped_client_big),
	SVC_FIELD(tx_packets),	      SVC_FIELD(tx_dropped),
};
_Static_assert(sizeof(svc_fields) / sizeof(svc_fields[0]) * sizeof(uint64_t) == sizeof(struct ferryd_svc_stats),
	       "svc_fields must list every field of struct ferryd_svc_stats");

static const char *const verb_names[] = {
	[FERRY_CTL_STATUS] = "status",	   [FERRY_CTL_STATS] = "stats",	  [FERRY_CTL_SERVICES] = "services",
	[FERRY_CTL_CLIENTS] = "clients", [FERRY_CTL_RELOAD] = "reload",
};

const char *ferryd_query_verb_name(uint32_t verb)
{
	return verb < sizeof(verb_names) / sizeof(verb_names[0]) ? verb_names[verb] : NULL;
}

static const struct ferryd_dp *dp_of(const struct ferryd_query_src *q)
{
	return (const struct ferryd_dp *)q->e;
}

static bool xdp_mode(const struct ferryd_query_src *q)
{
	return dp_of(q)->xdp;
}

static void fields(struct ferryd_json *j, const char *key, const void *st, const struct ferryd_stat_field *f,
		   unsigned int n)
{
	ferryd_json_object(j, key);
	for (unsigned int i = 0; i < n; i++)
		ferryd_json_u64(j, f[i].name,
				__atomic_load_n((const uint64_t *)((const char *)st + f[i].offset), __ATOMIC_RELAXED));
	ferryd_json_end(j);
}

/* "on", "off" or "partial": how the engine's queues are bound (NULL in socket mode). */
static const char *zero_copy_now(const struct ferryd_query_src *q)
{
	unsigned int zc = 0, n = 0;

	if (!xdp_mode(q))
		return NULL;
	for (unsigned int i = 0; i < dp_of(q)->cfg.queues; i++) {
		struct ferryd_xdp_queue_stats qs;

		if (ferryd_xdp_queue_stats(q->e, i, &qs))
			continue;
		n++;
		zc += qs.zero_copy;
	}
	return !zc ? "off" : zc == n ? "on" : "partial";
}

static const struct ferryd_link_state *link_of(const struct ferryd_query_src *q)
{
	const struct ferryd_link_state *ls = q->info.iface ? ferryd_iface_state(q->info.iface) : NULL;

	return ls && ls->ifindex ? ls : NULL;
}

/* ---- status -------------------------------------------------------------------------------- */

static void status(const struct ferryd_query_src *q, struct ferryd_json *j)
{
	const struct ferryd_dp *dp = dp_of(q);
	const struct ferryd_link_state *ls = link_of(q);

	ferryd_json_str(j, "version", FERRY_VERSION);
	ferryd_json_u64(j, "abi", FERRY_RING_VERSION);
	ferryd_json_i64(j, "pid", (int64_t)getpid());
	ferryd_json_u64(j, "uptime_ms", ferryd_now_ms() - q->started_ms);
	ferryd_json_str(j, "mode", q->e->ops->name);
	ferryd_json_str(j, "interface", q->cfg->ifname[0] ? q->cfg->ifname : NULL);
	if (ls) {
		ferryd_json_u64(j, "ifindex", ls->ifindex);
		ferryd_json_bool(j, "link_up", ls->running);
	} else {
		ferryd_json_null(j, "ifindex");
		ferryd_json_null(j, "link_up");
	}
	ferryd_json_u64(j, "queues", dp->cfg.queues);
	ferryd_json_u64(j, "workers", ferryd_engine_workers(q->e));
	ferryd_json_str(j, "xdp_mode", dp->xdp ? ferryd_xdp_mode_name(dp->cfg.xdp_mode) : NULL);
	ferryd_json_str(j, "xdp_program", dp->prog ? ferryd_prog_describe(dp->prog) : NULL);
	ferryd_json_str(j, "zero_copy", zero_copy_now(q));
	ferryd_json_str(j, "zero_copy_asked", ferryd_zero_copy_name(dp->cfg.zero_copy));
	ferryd_json_str(j, "handler", ferryd_handler_name(q->cfg->handler));
	ferryd_json_u64(j, "services", q->cfg->nservices);
	ferryd_json_u64(j, "clients", q->nsess);
	ferryd_json_str(j, "control", q->control);
	ferryd_json_str(j, "engine", q->e->describe);
}

/* ---- stats --------------------------------------------------------------------------------- */

static void engine_counters(const struct ferryd_query_src *q, struct ferryd_json *j)
{
	struct ferryd_stats s;

	q->e->ops->get_stats(q->e, &s);
	ferryd_json_object(j, "counters");
	for (unsigned int i = 0; i < ferryd_stat_nfields; i++)
		ferryd_json_u64(j, ferryd_stat_fields[i].name, ferryd_stat_get(&s, i));
	if (q->info.handler) {
		ferryd_json_u64(j, "handler_datagrams", __atomic_load_n(&q->info.handler->datagrams, __ATOMIC_RELAXED));
		ferryd_json_u64(j, "handler_bytes", __atomic_load_n(&q->info.handler->bytes, __ATOMIC_RELAXED));
	}
	ferryd_json_end(j);
}

static void link_state(const struct ferryd_query_src *q, struct ferryd_json *j)
{
	const struct ferryd_link_state *ls = link_of(q);
	struct ferryd_iface_stats is;

	if (!ls) {
		ferryd_json_null(j, "link");
		return;
	}
	ferryd_iface_get_stats(q->info.iface, &is);
	ferryd_json_object(j, "link");
	ferryd_json_str(j, "interface", ls->ifname);
	ferryd_json_bool(j, "up", ls->up);
	ferryd_json_bool(j, "running", ls->running);
	ferryd_json_u64(j, "mtu", ls->mtu);
	ferryd_json_u64(j, "down_events", is.link_down);
	ferryd_json_u64(j, "up_events", is.link_up);
	ferryd_json_u64(j, "changes", is.changes);
	ferryd_json_u64(j, "overruns", is.overruns);
	ferryd_json_end(j);
}

static void xdp_counters(const struct ferryd_query_src *q, struct ferryd_json *j)
{
	uint64_t c[FERRY_XDP_NCOUNTERS];

	if (!q->e->ops->xdp_counters || q->e->ops->xdp_counters(q->e, c)) {
		ferryd_json_null(j, "xdp");
		return;
	}
	ferryd_json_object(j, "xdp");
	for (unsigned int i = 0; i < FERRY_XDP_NCOUNTERS; i++)
		ferryd_json_u64(j, ferryd_xdp_counter_name(i), c[i]);
	ferryd_json_end(j);
}

static void worker_queues(const struct ferryd_query_src *q, unsigned int wid, struct ferryd_json *j)
{
	ferryd_json_array(j, "queues");
	for (unsigned int i = 0; xdp_mode(q) && i < dp_of(q)->cfg.queues; i++) {
		struct ferryd_xdp_queue_stats qs;

		if (ferryd_xdp_queue_stats(q->e, i, &qs) || qs.worker != wid)
			continue;
		ferryd_json_object(j, NULL);
		ferryd_json_u64(j, "queue", i);
		ferryd_json_bool(j, "zero_copy", qs.zero_copy);
		ferryd_json_u64(j, "rx_packets", qs.rx_packets);
		ferryd_json_u64(j, "rx_batches", qs.rx_batches);
		ferryd_json_u64(j, "tx_completed", qs.tx_completed);
		ferryd_json_u64(j, "frames_total", qs.frames_total);
		ferryd_json_u64(j, "frames_free", qs.frames_free);
		ferryd_json_u64(j, "frames_kernel", qs.frames_kernel);
		ferryd_json_u64(j, "frames_user", qs.frames_user);
		ferryd_json_u64(j, "frames_tx", qs.frames_tx);
		ferryd_json_end(j);
	}
	ferryd_json_end(j);
}

static void workers(const struct ferryd_query_src *q, struct ferryd_json *j)
{
	ferryd_json_array(j, "workers");
	for (unsigned int i = 0; i < ferryd_engine_workers(q->e); i++) {
		struct ferryd_stats s;

		if (ferryd_engine_worker_stats(q->e, i, &s))
			continue;
		ferryd_json_object(j, NULL);
		ferryd_json_u64(j, "worker", i);
		ferryd_json_str(j, "mode", q->e->ops->name);
		ferryd_json_bool(j, "threaded", dp_of(q)->w[i].threaded);
		if (dp_of(q)->w[i].cpu >= 0)
			ferryd_json_i64(j, "cpu", dp_of(q)->w[i].cpu);
		else
			ferryd_json_null(j, "cpu");
		ferryd_json_object(j, "counters");
		for (unsigned int k = 0; k < ferryd_stat_nfields; k++)
			ferryd_json_u64(j, ferryd_stat_fields[k].name, ferryd_stat_get(&s, k));
		ferryd_json_end(j);
		worker_queues(q, i, j);
		ferryd_json_end(j);
	}
	ferryd_json_end(j);
}

static unsigned int clients_of(const struct ferryd_query_src *q, const struct ferryd_service *svc)
{
	return q->table && svc->id < FERRY_MAX_SERVICES ? q->table->svc[svc->id].n : 0;
}

static void service_counters(const struct ferryd_query_src *q, struct ferryd_json *j)
{
	ferryd_json_array(j, "services");
	for (unsigned int i = 0; i < q->cfg->nservices; i++) {
		const struct ferryd_service *svc = &q->cfg->services[i];
		struct ferryd_svc_stats ss;

		ferryd_dp_svc_stats(q->e, svc->id, &ss);
		ferryd_json_object(j, NULL);
		ferryd_json_str(j, "name", svc->name);
		ferryd_json_u64(j, "id", svc->id);
		ferryd_json_u64(j, "clients", clients_of(q, svc));
		fields(j, "counters", &ss, svc_fields, sizeof(svc_fields) / sizeof(svc_fields[0]));
		ferryd_json_end(j);
	}
	ferryd_json_end(j);
}

/* A session's counters, summed over its workers, and what it holds now. */
static void session_counters(const struct ferryd_session *s, struct ferryd_json *j)
{
	struct ferryd_sess_stats t;
	struct ferryd_sess_occ o = {0};
	uint64_t *out = (uint64_t *)&t;

	memset(&t, 0, sizeof(t));
	for (unsigned int w = 0; w < s->nw; w++) {
		const uint64_t *in = (const uint64_t *)&s->wk[w].st;

		for (size_t k = 0; k < sizeof(t) / sizeof(uint64_t); k++)
			out[k] += __atomic_load_n(&in[k], __ATOMIC_RELAXED);
		o.rx_out += __atomic_load_n(&s->wk[w].occ.rx_out, __ATOMIC_RELAXED);
		o.rx_free += __atomic_load_n(&s->wk[w].occ.rx_free, __ATOMIC_RELAXED);
		o.zc_held += __atomic_load_n(&s->wk[w].occ.zc_held, __ATOMIC_RELAXED);
		o.tx_held += __atomic_load_n(&s->wk[w].occ.tx_held, __ATOMIC_RELAXED);
	}
	fields(j, "counters", &t, sess_fields, sizeof(sess_fields) / sizeof(sess_fields[0]));
	ferryd_json_object(j, "ring");
	ferryd_json_u64(j, "rx_slots", (uint64_t)s->rx_slots * s->nw);
	ferryd_json_u64(j, "rx_out", o.rx_out);
	ferryd_json_u64(j, "rx_free", o.rx_free);
	ferryd_json_u64(j, "zc_held", o.zc_held);
	ferryd_json_u64(j, "tx_slots", (uint64_t)s->tx_slots * s->nw);
	ferryd_json_u64(j, "tx_held", o.tx_held);
	ferryd_json_end(j);
}

/* A session's object opened, with what names it: its id, service and pid. */
static void session_head(const struct ferryd_session *s, struct ferryd_json *j)
{
	ferryd_json_object(j, NULL);
	ferryd_json_u64(j, "session", s->id);
	ferryd_json_str(j, "service", s->svc->name);
	ferryd_json_i64(j, "pid", (int64_t)s->pid);
}

static void client_counters(const struct ferryd_query_src *q, struct ferryd_json *j)
{
	ferryd_json_array(j, "clients");
	for (unsigned int i = 0; i < q->nsess; i++) {
		const struct ferryd_session *s = q->sess[i];

		session_head(s, j);
		session_counters(s, j);
		ferryd_json_end(j);
	}
	ferryd_json_end(j);
}

static void stats(const struct ferryd_query_src *q, struct ferryd_json *j)
{
	ferryd_json_str(j, "mode", q->e->ops->name);
	ferryd_json_u64(j, "uptime_ms", ferryd_now_ms() - q->started_ms);
	engine_counters(q, j);
	link_state(q, j);
	xdp_counters(q, j);
	workers(q, j);
	service_counters(q, j);
	client_counters(q, j);
}

/* ---- services -------------------------------------------------------------------------------- */

static void user(struct ferryd_json *j, const char *idkey, uint32_t uid)
{
	struct passwd pw, *res = NULL;
	char tmp[4096];

	ferryd_json_u64(j, idkey, uid);
	ferryd_json_str(j, "name", !getpwuid_r(uid, &pw, tmp, sizeof(tmp), &res) && res ? res->pw_name : NULL);
}

static void group(struct ferryd_json *j, const char *idkey, uint32_t gid)
{
	struct group gr, *res = NULL;
	char tmp[16384];

	ferryd_json_u64(j, idkey, gid);
	ferryd_json_str(j, "name", !getgrgid_r(gid, &gr, tmp, sizeof(tmp), &res) && res ? res->gr_name : NULL);
}

/* Who may attach: root always, then the users and groups of --allow, or by default ferryd's own group. */
static void allow(const struct ferryd_allow *a, struct ferryd_json *j)
{
	ferryd_json_object(j, "allow");
	ferryd_json_bool(j, "default", !a->set);
	ferryd_json_array(j, "users");
	ferryd_json_object(j, NULL);
	user(j, "uid", 0);
	ferryd_json_end(j);
	for (unsigned int i = 0; a->set && i < a->nuid; i++) {
		ferryd_json_object(j, NULL);
		user(j, "uid", a->uid[i]);
		ferryd_json_end(j);
	}
	ferryd_json_end(j);
	ferryd_json_array(j, "groups");
	for (unsigned int i = 0; i < (a->set ? a->ngid : 1); i++) {
		ferryd_json_object(j, NULL);
		group(j, "gid", a->set ? a->gid[i] : (uint32_t)getegid());
		ferryd_json_end(j);
	}
	ferryd_json_end(j);
	ferryd_json_end(j);
}

static void services(const struct ferryd_query_src *q, struct ferryd_json *j)
{
	ferryd_json_array(j, "services");
	for (unsigned int i = 0; i < q->cfg->nservices; i++) {
		const struct ferryd_service *svc = &q->cfg->services[i];
		char addr[64];

		ferry_sockaddr_format(&svc->addr, addr, sizeof(addr));
		ferryd_json_object(j, NULL);
		ferryd_json_str(j, "name", svc->name);
		ferryd_json_u64(j, "id", svc->id);
		ferryd_json_str(j, "address", addr);
		ferryd_json_str(j, "fanout", ferryd_fanout_name(svc->fanout));
		allow(&svc->allow, j);
		ferryd_json_bool(j, "zero_copy", svc->zero_copy_clients);
		ferryd_json_u64(j, "clients", clients_of(q, svc));
		ferryd_json_end(j);
	}
	ferryd_json_end(j);
}

/* ---- clients --------------------------------------------------------------------------------- */

static void clients(const struct ferryd_query_src *q, struct ferryd_json *j)
{
	ferryd_json_array(j, "clients");
	for (unsigned int i = 0; i < q->nsess; i++) {
		const struct ferryd_session *s = q->sess[i];

		session_head(s, j);
		ferryd_json_u64(j, "uid", s->uid);
		ferryd_json_u64(j, "gid", s->gid);
		ferryd_json_bool(j, "zero_copy", s->zc);
		ferryd_json_u64(j, "workers", s->nw);
		ferryd_json_u64(j, "rx_slots", s->rx_slots);
		ferryd_json_u64(j, "tx_slots", s->tx_slots);
		ferryd_json_u64(j, "slot_size", s->slot_size);
		ferryd_json_u64(j, "region_bytes", s->region_size);
		session_counters(s, j);
		ferryd_json_end(j);
	}
	ferryd_json_end(j);
}

int ferryd_query_answer(const struct ferryd_query_src *q, uint32_t verb, struct ferryd_json *j)
{
	static void (*const write[])(const struct ferryd_query_src *, struct ferryd_json *) = {
		[FERRY_CTL_STATUS] = status,
		[FERRY_CTL_STATS] = stats,
		[FERRY_CTL_SERVICES] = services,
		[FERRY_CTL_CLIENTS] = clients,
	};

	if (verb >= sizeof(write) / sizeof(write[0]) || !write[verb])
		return -EINVAL;
	ferryd_json_object(j, NULL);
	ferryd_json_u64(j, "schema", FERRY_CTL_SCHEMA);
	ferryd_json_str(j, "verb", ferryd_query_verb_name(verb));
	ferryd_json_i64(j, "status", 0);
	write[verb](q, j);
	ferryd_json_end(j);
	return 0;
}
