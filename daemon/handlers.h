/* SPDX-License-Identifier: MIT */
/*
 * ferryd's handlers: clients (the dispatcher of dispatch.h: each datagram to
 * the client processes attached to its service), count (accept and let the
 * engine count) and echo (send each datagram back).
 */
#ifndef FERRYD_HANDLERS_H
#define FERRYD_HANDLERS_H

#include "ferryd.h"

/*
 * What a built-in handler needs. The services' callbacks must be set before
 * the engine exists (an engine may call them as soon as it is created), so
 * they point at this context, and whoever creates the engine fills in
 * engine right after; until then the handlers do nothing but count.
 */
struct ferryd_handler_ctx;

/* Each service's user pointer: tells a handler which service a batch is for. */
struct ferryd_handler_slot {
	struct ferryd_handler_ctx *ctx;
	struct ferryd_service *svc;
};

struct ferryd_handler_ctx {
	struct ferryd_engine *engine; /* ferryd_handlers_set_engine() */
	enum ferryd_handler kind;
	uint64_t datagrams, bytes; /* everything the handler saw (atomic: every worker adds) */
	uint64_t echo_short;	   /* echo: datagrams the engine did not accept (it counts why); atomic */
	struct ferryd_handler_slot slots[FERRY_MAX_SERVICES];
};

/*
 * Sets cb/user of svcs[0..nsvc) to the handler of the given kind with ctx
 * as its context. ctx must outlive the engine.
 */

void ferryd_handlers_install(struct ferryd_handler_ctx *ctx, enum ferryd_handler kind, struct ferryd_service *svcs,
			     unsigned int nsvc);

/* The same for one service added later (its id within FERRY_MAX_SERVICES), with ctx's kind. */
void ferryd_handlers_install_one(struct ferryd_handler_ctx *ctx, struct ferryd_service *svc);

/*
 * Tells the handlers which engine to send through (NULL: none, they only
 * count). Workers may be running their callbacks already: the pointer is
 * published with a release store, read with an acquire load.
 */
void ferryd_handlers_set_engine(struct ferryd_handler_ctx *ctx, struct ferryd_engine *e);

#endif
