/* SPDX-License-Identifier: MIT */
/*
 * The control socket (a unix SOCK_SEQPACKET socket, ferry/ring.h's protocol)
 * and the client sessions made through it, on the control thread: a client
 * asks to attach to a service; ferryd checks who it is (SO_PEERCRED, the
 * service's --allow), makes the session, gives it to the workers, and hands
 * the client its memory and pipes. The session ends when the connection
 * does, when the client breaks the ring rules, or when ferryd stops.
 * ferryctl asks its queries on the same socket (query.h writes the answers).
 */
#ifndef FERRYD_CONTROL_H
#define FERRYD_CONTROL_H

#include <stddef.h>
#include <stdio.h>

#include <ferry/reactor.h>

#include "ferryd.h"

struct ferryd_control;

/*
 * Listens on cfg->control (its directory made if missing; a stale socket of
 * a dead ferryd replaced; a live one refused with -EADDRINUSE) for the
 * services of cfg, whose datagrams e hands over. 0, or -errno with a
 * reason in why.
 */
int ferryd_control_new(struct ferry_reactor *r, struct ferryd_config *cfg, struct ferryd_engine *e,
		       struct ferryd_control **out, char *why, size_t whylen);

/*
 * Stops: no more attaches (the socket is removed), and every client is told
 * why its session ends and disconnected. The sessions' memory stays until
 * ferryd_control_free(), after the engine is freed (its workers may still
 * hold them until then).
 */
void ferryd_control_stop(struct ferryd_control *c, const char *why);
void ferryd_control_free(struct ferryd_control *c);

/*
 * What ferryctl's queries read beyond the configuration and the engine
 * (ferry/ring.h's FERRY_CTL_QUERY), given by whoever owns them; both must
 * outlive c. Until it is set, those parts of the answers are null.
 */
struct ferryd_handler_ctx;
struct ferryd_iface;

struct ferryd_control_info {
	const struct ferryd_handler_ctx *handler; /* what the handler saw (handler_datagrams, handler_bytes) */
	const struct ferryd_iface *iface;	  /* the link: its state and events */
};
void ferryd_control_set_info(struct ferryd_control *c, const struct ferryd_control_info *info);

/*
 * Who re-reads the configuration when a client asks (FERRY_CTL_RELOAD, from
 * root or ferryd's own user only): fn runs on the control thread and returns
 * 0 or -errno, with what it did or why it failed in why (both go back to the
 * client). It must not stop or free c. Until one is set (or with fn NULL),
 * a reload is answered -EOPNOTSUPP.
 */
void ferryd_control_set_reload(struct ferryd_control *c, int (*fn)(void *user, char *why, size_t whylen),
			       void *user);

/*
 * An attach, a session's end and a reload each wait for the workers, and
 * the control reactor runs meanwhile (where the one worker runs on it, it
 * must). None may start inside another: each would change the sessions and
 * services the other is working on. Connections wait their turn by
 * themselves; a reload from elsewhere (SIGHUP) runs from the top of the
 * event loop, where none is under way, through this: fn(user, why, whylen),
 * with connections waiting meanwhile. Returns fn's result.
 */
int ferryd_control_exclusive(struct ferryd_control *c, int (*fn)(void *user, char *why, size_t whylen), void *user,
			     char *why, size_t whylen);

/* A reload removed (or readdressed) svc: its sessions end, each client told why. */
void ferryd_control_end_service(struct ferryd_control *c, const struct ferryd_service *svc, const char *why);

/* A reload changed svc's fanout: the workers take it. 0 or -errno. */
int ferryd_control_set_fanout(struct ferryd_control *c, const struct ferryd_service *svc);

/* The socket's owner, group and mode as the configuration now says. 0 or -errno with why. */
int ferryd_control_set_access(struct ferryd_control *c, char *why, size_t whylen);

/* One line per session: "client N service=... pid=... key=value ...". */
void ferryd_control_print(struct ferryd_control *c, FILE *out);

/* Sessions now. */
unsigned int ferryd_control_sessions(const struct ferryd_control *c);

#endif
