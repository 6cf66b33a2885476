/* SPDX-License-Identifier: MIT */
/* ferryd's built-in handlers, in the one batch-callback shape every engine calls. */
#include <string.h>

#include "dispatch.h"
#include "ferryd.h"
#include "handlers.h"

static void account(struct ferryd_handler_ctx *ctx, struct ferry_iobuf **bufs, unsigned int count)
{
	uint64_t bytes = 0;

	for (unsigned int i = 0; i < count; i++)
		bytes += ferry_iobuf_length(bufs[i]);
	/* every worker runs the handlers: the totals are shared */
	__atomic_add_fetch(&ctx->datagrams, count, __ATOMIC_RELAXED);
	__atomic_add_fetch(&ctx->bytes, bytes, __ATOMIC_RELAXED);
}

static void count_cb(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int count)
{
	struct ferryd_handler_slot *slot = user;

	account(slot->ctx, bufs, count);
}

static void echo_cb(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int count)
{
	struct ferryd_handler_slot *slot = user;
	struct ferryd_handler_ctx *ctx = slot->ctx;
	struct ferryd_engine *e = __atomic_load_n(&ctx->engine, __ATOMIC_ACQUIRE);
	unsigned int sent;

	account(ctx, bufs, count);
	if (!e || !srcs || !count)
		return;
	/* The engine copies or sends before it returns, so the batch stays ours
	 * (and the engine's loop reuses it); what it refuses it counts by reason. */
	sent = e->ops->send(e, slot->svc, bufs, srcs, count);
	if (sent < count)
		__atomic_add_fetch(&ctx->echo_short, count - sent, __ATOMIC_RELAXED);
}

void ferryd_handlers_install(struct ferryd_handler_ctx *ctx, enum ferryd_handler kind, struct ferryd_service *svcs,
			     unsigned int nsvc)
{
	ferry_udp_batch_cb cb = kind == FERRYD_HANDLER_ECHO ? echo_cb : kind == FERRYD_HANDLER_COUNT ? count_cb
									: ferryd_dispatch_cb;

	memset(ctx, 0, sizeof(*ctx));
	ctx->kind = kind;
	for (unsigned int i = 0; i < nsvc && i < FERRY_MAX_SERVICES; i++) {
		ctx->slots[i].ctx = ctx;
		ctx->slots[i].svc = &svcs[i];
		svcs[i].cb = cb;
		svcs[i].user = &ctx->slots[i];
	}
}

void ferryd_handlers_install_one(struct ferryd_handler_ctx *ctx, struct ferryd_service *svc)
{
	ferry_udp_batch_cb cb = ctx->kind == FERRYD_HANDLER_ECHO    ? echo_cb
				: ctx->kind == FERRYD_HANDLER_COUNT ? count_cb
								    : ferryd_dispatch_cb;

	if (svc->id >= FERRY_MAX_SERVICES)
		return;
	ctx->slots[svc->id].ctx = ctx;
	ctx->slots[svc->id].svc = svc;
	svc->cb = cb;
	svc->user = &ctx->slots[svc->id];
}

void ferryd_handlers_set_engine(struct ferryd_handler_ctx *ctx, struct ferryd_engine *e)
{
	__atomic_store_n(&ctx->engine, e, __ATOMIC_RELEASE);
}
