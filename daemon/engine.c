/* SPDX-License-Identifier: MIT */
/* What every engine shares behind struct ferryd_engine_ops: the counter names and the frame-accounting check. */
#include <stddef.h>

#include "ferryd.h"

#define FIELD(f) { #f, offsetof(struct ferryd_stats, f) }
const struct ferryd_stat_field ferryd_stat_fields[] = {
	FIELD(rx_packets),    FIELD(rx_bytes),	   FIELD(rx_batches),	 FIELD(rx_truncated),
	FIELD(rx_bad_header), FIELD(rx_no_service), FIELD(rx_fill_empty), FIELD(rx_via_socket),
	FIELD(tx_packets),    FIELD(tx_bytes),	   FIELD(tx_no_frame),	 FIELD(tx_ring_full),
	FIELD(tx_neigh_miss), FIELD(tx_via_socket), FIELD(tx_too_big),	 FIELD(tx_errors),
	FIELD(tx_dropped),    FIELD(kicks),	   FIELD(kick_errors),	 FIELD(frames_total),	 FIELD(frames_free),
	FIELD(frames_kernel), FIELD(frames_user),   FIELD(frames_tx),
};
#undef FIELD
const unsigned int ferryd_stat_nfields = sizeof(ferryd_stat_fields) / sizeof(ferryd_stat_fields[0]);

/* A counter added to the struct but not to the table would never be shown. */
_Static_assert(sizeof(ferryd_stat_fields) / sizeof(ferryd_stat_fields[0]) * sizeof(uint64_t) ==
		       sizeof(struct ferryd_stats),
	       "ferryd_stat_fields must list every field of struct ferryd_stats");

int ferryd_engine_check_frames(struct ferryd_engine *e)
{
	if (!e || !e->ops->check_frames)
		return 0; /* the socket engine holds no frames */
	return e->ops->check_frames(e);
}
