/* SPDX-License-Identifier: MIT */
/* What the engines share: the counter names, the frame-accounting check, address canonicalisation, the clock. */
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "dataplane.h"
#include "ferryd.h"
#include "iface.h"

#define FIELD(f) { #f, offsetof(struct ferryd_stats, f) }
const struct ferryd_stat_field ferryd_stat_fields[] = {
	FIELD(rx_packets),	 FIELD(rx_bytes),	  FIELD(rx_batches),	     FIELD(rx_truncated),
	FIELD(rx_bad_header),	 FIELD(rx_no_service),	  FIELD(rx_fill_empty),	     FIELD(rx_fill_short),
	FIELD(rx_via_socket),	 FIELD(tx_packets),	  FIELD(tx_bytes),	     FIELD(tx_no_frame),
	FIELD(tx_ring_full),	 FIELD(tx_waited),	  FIELD(tx_backlog_full),    FIELD(tx_neigh_miss),
	FIELD(tx_via_socket),	 FIELD(tx_too_big),	  FIELD(tx_errors),	     FIELD(tx_to_port0),
	FIELD(tx_to_unspec),	 FIELD(tx_to_loopback),	  FIELD(tx_to_multicast),    FIELD(tx_to_broadcast),
	FIELD(tx_to_local),	 FIELD(tx_to_self),	  FIELD(tx_dropped),	     FIELD(bad_desc),
	FIELD(mail_full),	 FIELD(rx_no_client),	  FIELD(rx_client_full),     FIELD(rx_client_big),
	FIELD(client_tx),	 FIELD(client_tx_deferred), FIELD(clients_failed),  FIELD(kicks),		  FIELD(kick_errors),	     FIELD(xsk_rx_dropped),
	FIELD(xsk_rx_invalid_descs), FIELD(xsk_rx_ring_full), FIELD(xsk_rx_fill_ring_empty), FIELD(xsk_tx_invalid_descs),
	FIELD(xsk_tx_ring_empty), FIELD(frames_total),	  FIELD(frames_free),	     FIELD(frames_kernel),
	FIELD(frames_user),	 FIELD(frames_tx),
};
#undef FIELD
const unsigned int ferryd_stat_nfields = sizeof(ferryd_stat_fields) / sizeof(ferryd_stat_fields[0]);

/* A counter added to the struct but not to the table would never be shown. */
_Static_assert(sizeof(ferryd_stat_fields) / sizeof(ferryd_stat_fields[0]) * sizeof(uint64_t) ==
		       sizeof(struct ferryd_stats),
	       "ferryd_stat_fields must list every field of struct ferryd_stats");

int ferryd_engine_free_id(struct ferryd_engine *e)
{
	return ferryd_svc_table_free_id(((struct ferryd_dp *)e)->table);
}

int ferryd_engine_check_frames(struct ferryd_engine *e)
{
	if (!e || !e->ops->check_frames)
		return 0; /* the socket engine holds no frames */
	return e->ops->check_frames(e);
}

void ferryd_sockaddr_canon(const union ferry_sockaddr *in, union ferry_sockaddr *out)
{
	if (in->sa.sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&in->in6.sin6_addr)) {
		union ferry_sockaddr v4;

		memset(&v4, 0, sizeof(v4));
		v4.in4.sin_family = AF_INET;
		v4.in4.sin_port = in->in6.sin6_port;
		memcpy(&v4.in4.sin_addr, (const uint8_t *)&in->in6.sin6_addr + 12, 4);
		*out = v4;
		return;
	}
	*out = *in;
}

bool ferryd_stats_dst_ok(struct ferryd_stats *st, const struct ferryd_link_state *ls, uint16_t svc_port,
			 const union ferry_sockaddr *dst)
{
	switch (ferryd_dst_check(&ls->addrs, dst, svc_port, !ls->ifindex || ls->loopback)) {
	case FERRYD_DST_OK:
		return true;
	case FERRYD_DST_PORT0:
		FERRYD_STAT_INC(st, tx_to_port0);
		break;
	case FERRYD_DST_UNSPEC:
		FERRYD_STAT_INC(st, tx_to_unspec);
		break;
	case FERRYD_DST_LOOPBACK:
		FERRYD_STAT_INC(st, tx_to_loopback);
		break;
	case FERRYD_DST_MULTICAST:
		FERRYD_STAT_INC(st, tx_to_multicast);
		break;
	case FERRYD_DST_BROADCAST:
		FERRYD_STAT_INC(st, tx_to_broadcast);
		break;
	case FERRYD_DST_LOCAL:
		FERRYD_STAT_INC(st, tx_to_local);
		break;
	case FERRYD_DST_SELF:
		FERRYD_STAT_INC(st, tx_to_self);
		break;
	case FERRYD_DST_FAMILY:
		FERRYD_STAT_INC(st, tx_errors);
		break;
	}
	FERRYD_STAT_INC(st, tx_dropped);
	return false;
}

uint64_t ferryd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
