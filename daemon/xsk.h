/* SPDX-License-Identifier: MIT */
/* The AF_XDP engine's per-queue view: what each queue received and sent, and where its frames are. */
#ifndef FERRYD_XSK_H
#define FERRYD_XSK_H

#include <stdbool.h>
#include <stdint.h>

#include "ferryd.h"

/* One queue's counters; every counter counts up from 0, the frames say where they are now. */
struct ferryd_xdp_queue_stats {
	uint64_t rx_packets;   /* datagrams of this queue's RX ring handed to a service callback */
	uint64_t rx_batches;   /* callback rounds of this queue */
	uint64_t tx_completed; /* frames sent on this queue's TX ring whose completion came back */
	uint32_t frames_total, frames_free, frames_kernel, frames_user, frames_tx;
	bool zero_copy;
	unsigned int worker; /* the worker that owns the queue */
};

/*
 * Counters of queue q (0 .. queues-1) of e, which must be an AF_XDP engine.
 * 0; -EINVAL when e is not one; -ENOENT when it has no queue q.
 */
int ferryd_xdp_queue_stats(struct ferryd_engine *e, unsigned int q, struct ferryd_xdp_queue_stats *out);

#endif
