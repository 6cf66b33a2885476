/* SPDX-License-Identifier: MIT */
/*
 * The dispatcher: the batch callback ferryd installs for a service whose
 * datagrams go to client processes (--handler clients), and each worker's
 * side of the client sessions: their TX rings drained into the worker's send
 * path, their kick pipes on its reactor.
 *
 * Which clients a service has is the control thread's: it publishes an
 * immutable table (refcounted, like the service table) that each worker
 * takes between two batches and answers; a session left out of a table the
 * workers answered is touched by none of them any more, and may be freed.
 */
#ifndef FERRYD_DISPATCH_H
#define FERRYD_DISPATCH_H

#include <stdint.h>

#include "ferryd.h"
#include "session.h"

struct ferryd_worker;
struct ferry_timer;

#define FERRYD_MAX_CLIENTS 64	/* per service */
#define FERRYD_MAX_SESSIONS 256 /* in all */

struct ferryd_client_set {
	uint8_t fanout; /* enum ferryd_fanout */
	unsigned int n;
	struct ferryd_session *s[FERRYD_MAX_CLIENTS];
};

struct ferryd_client_table {
	uint32_t refs; /* atomic */
	unsigned int nsess;
	struct ferryd_client_set svc[FERRY_MAX_SERVICES];
};

/* An empty table (refs 1), a copy of t (refs 1), or NULL. */
struct ferryd_client_table *ferryd_client_table_new(void);
struct ferryd_client_table *ferryd_client_table_copy(const struct ferryd_client_table *t);
void ferryd_client_table_get(struct ferryd_client_table *t);
void ferryd_client_table_put(struct ferryd_client_table *t);
/* In a table not yet published: adds s to its service (-ENOSPC when full), removes it (false: not there). */
int ferryd_client_table_add(struct ferryd_client_table *t, struct ferryd_session *s);
bool ferryd_client_table_remove(struct ferryd_client_table *t, const struct ferryd_session *s);

const char *ferryd_fanout_name(enum ferryd_fanout f);
/* "hash", "round-robin" (or "rr"), "all": 0, or -EINVAL. */
int ferryd_fanout_parse(const char *s, enum ferryd_fanout *out);

/* The batch callback of services handled by clients; user is the service's struct ferryd_handler_slot. */
void ferryd_dispatch_cb(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int n);

/* A worker's side. */
struct ferryd_dispatch_wk {
	struct ferryd_client_table *t; /* the table this worker took last */
	uint32_t rr[FERRY_MAX_SERVICES];
	struct ferryd_sess_wk *pending[FERRYD_MAX_SESSIONS]; /* sessions whose TX waits for room or its turn */
	unsigned int npending;
	struct ferry_timer *timer; /* runs the pending ones */
};

/* On the worker's reactor (w->r set). 0 or -errno. */
int ferryd_dispatch_worker_init(struct ferryd_worker *w);
void ferryd_dispatch_worker_destroy(struct ferryd_worker *w);
/* Takes a new table (a reference that is now the worker's): watches for the new sessions, none for the gone ones. */
void ferryd_dispatch_worker_take(struct ferryd_worker *w, struct ferryd_client_table *t);
/* Shutting down: what the clients queued to send goes once more (bounded). */
void ferryd_dispatch_worker_drain(struct ferryd_worker *w);

#endif
