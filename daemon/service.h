/* SPDX-License-Identifier: MIT */
/*
 * Services while ferryd runs: the control thread's registry (add, remove),
 * and the immutable table it publishes to the workers after each change.
 * A worker holds a reference to the table it uses and swaps it for the new
 * one between batches; the last reference frees it.
 */
#ifndef FERRYD_SERVICE_H
#define FERRYD_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "ferryd.h"

/* One service as the data path sees it. */
struct ferryd_svc_entry {
	struct ferryd_service *svc; /* the caller's: name, address, callback */
	union ferry_sockaddr addr;  /* canonical (IPv4-mapped IPv6 as IPv4) */
	uint8_t family;		    /* 4 or 6 */
	uint8_t key[16];	    /* the address as the XDP program's key holds it */
	bool wildcard, multicast;
	uint64_t gen;		    /* when it was added: a service removed and added again is another one */
};

struct ferryd_svc_table {
	uint32_t refs;		/* atomic */
	unsigned int n;		/* services */
	struct ferryd_svc_entry by_id[FERRY_MAX_SERVICES]; /* svc NULL: the id is free */
	uint16_t slots[2 * FERRY_MAX_SERVICES];		   /* hash of (family, port, addr) -> id + 1, 0 empty */
};

/* A table with nothing in it (refs 1), or NULL. */
struct ferryd_svc_table *ferryd_svc_table_new(void);
/* A copy of t (refs 1), or NULL. */
struct ferryd_svc_table *ferryd_svc_table_copy(const struct ferryd_svc_table *t);
void ferryd_svc_table_get(struct ferryd_svc_table *t);
void ferryd_svc_table_put(struct ferryd_svc_table *t);

/*
 * Adds svc at id svc->id (which must be free) to a table not yet published.
 * 0, -EINVAL (no IPv4/IPv6 address or port, id out of range, id taken) or
 * -EEXIST (another service has the address and port); why says which.
 */
int ferryd_svc_table_add(struct ferryd_svc_table *t, struct ferryd_service *svc, uint64_t gen, char *why,
			 size_t whylen);
/* Removes the service at id from a table not yet published. */
void ferryd_svc_table_remove(struct ferryd_svc_table *t, unsigned int id);

/* The service a datagram to dst (canonical) belongs to: the exact address first, then the wildcard; -1 if none. */
int ferryd_svc_table_find(const struct ferryd_svc_table *t, const union ferry_sockaddr *dst);

/* A free id, or -ENOSPC. */
int ferryd_svc_table_free_id(const struct ferryd_svc_table *t);

#endif
