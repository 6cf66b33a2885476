/* SPDX-License-Identifier: MIT */
/*
 * ferryctl, ferryd's command-line client: ferryctl.c asks ferryd over its
 * control socket (ferry/ring.h's queries) and takes the JSON answers apart
 * with jansson; ferryctl_show.c turns them into tables and the Prometheus
 * exposition.
 */
#ifndef FERRYCTL_H
#define FERRYCTL_H

#include <stdio.h>

#include <jansson.h>

/* Exit statuses (ferryctl --help says the same). */
enum {
	FERRYCTL_OK = 0,
	FERRYCTL_NO_DAEMON = 1, /* nothing at the socket's path, or nobody listening */
	FERRYCTL_USAGE = 2,	/* a bad command line */
	FERRYCTL_DENIED = 3,	/* not allowed: the socket's permissions, or ferryd refused (a reload) */
	FERRYCTL_FAILED = 4,	/* ferryd answered with an error (e.g. a reload it cannot do, or that failed) */
	FERRYCTL_BROKEN = 5,	/* no sensible answer: closed, timed out, not ferry's protocol, another version */
};

/* Human-readable: aligned tables, one per kind of thing in the document. */
void ferryctl_show_status(FILE *out, json_t *doc);
void ferryctl_show_stats(FILE *out, json_t *doc);
void ferryctl_show_services(FILE *out, json_t *doc);
void ferryctl_show_clients(FILE *out, json_t *doc);

/* The Prometheus text exposition of a status and a stats document. */
void ferryctl_show_metrics(FILE *out, json_t *status, json_t *stats);

#endif
