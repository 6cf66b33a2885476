/* SPDX-License-Identifier: MIT */
/*
 * The answers to ferryctl's queries (ferry/ring.h, FERRY_CTL_QUERY) as JSON
 * documents: status, stats, services, clients. Written on the control thread
 * from what it owns (the configuration, the sessions) and from the workers'
 * counters, read as they read them everywhere: relaxed atomic loads, no lock,
 * no message to a worker, so an answer never waits for the data path.
 */
#ifndef FERRYD_QUERY_H
#define FERRYD_QUERY_H

#include <stdint.h>

#include "control.h"
#include "ferryd.h"
#include "json.h"

struct ferryd_client_table;
struct ferryd_session;

/* What a query reads; the control socket fills it in for each query. */
struct ferryd_query_src {
	const struct ferryd_config *cfg; /* the services, the handler */
	struct ferryd_engine *e;	 /* what runs, and its counters */
	struct ferryd_control_info info; /* fields NULL when not given */
	const char *control;		 /* the control socket's path */
	uint64_t started_ms;		 /* ferryd_now_ms() when the control socket opened */
	const struct ferryd_client_table *table;  /* the clients of each service */
	const struct ferryd_session *const *sess; /* every session, by id */
	unsigned int nsess;
};

/* "status", "stats", ... or NULL for a verb this ferryd does not know. */
const char *ferryd_query_verb_name(uint32_t verb);

/*
 * Writes the document that answers verb (not a reload: the control socket
 * answers that itself) as j's top-level value: 0, or -EINVAL for a verb
 * there is no document for (j untouched then).
 */
int ferryd_query_answer(const struct ferryd_query_src *q, uint32_t verb, struct ferryd_json *j);

#endif
