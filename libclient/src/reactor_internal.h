/* SPDX-License-Identifier: MIT */
/* libferry-internal helpers: reactor hooks and options (hidden symbols, not part of the API). */
#ifndef FERRY_REACTOR_INTERNAL_H
#define FERRY_REACTOR_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <ferry/reactor.h>

#define offsetofend(T, m) (offsetof(T, m) + sizeof(((T *)0)->m))

/*
 * libbpf's OPTS_VALID/OPTS_GET: copies min(sz, known) bytes of a caller's
 * struct over dst (already holding defaults). A larger sz is accepted only if
 * the bytes this version does not know are zero.
 */
static inline int ferry__copy_opts(void *dst, size_t known, const void *src)
{
	const unsigned char *p = src;
	size_t sz;

	if (!src)
		return 0;
	memcpy(&sz, src, sizeof(sz));
	if (sz < sizeof(size_t))
		return -EINVAL;
	for (size_t i = known; i < sz; i++)
		if (p[i])
			return -EINVAL;
	memcpy(dst, src, sz < known ? sz : known);
	return 0;
}

/*
 * release(user) runs if the reactor is freed while w is still on it, so what
 * the watch's owner hangs on it (a loop and its buffers) is not leaked. It
 * runs during ferry_reactor_free() and must not call the reactor.
 */
void ferry_reactor__on_free(struct ferry_watch *w, void (*release)(void *user));

/* A kept slot of a client session given back (client.c); ferry_iobuf_free() of a FERRY_IOBUF_SLOT buffer. */
struct ferry_iobuf;
void ferry__client_slot_free(struct ferry_iobuf *b);

/*
 * Whether f is the default before (ferry_iobuf_flip_lo) or after
 * (ferry_iobuf_reset) as ferry_udp_config_init() sets them: those are static
 * inline, each file has its own copy, so only udp_loop.c can tell (client.c).
 */
bool ferry__udp_default_before(void (*f)(struct ferry_iobuf *b));
bool ferry__udp_default_after(void (*f)(struct ferry_iobuf *b));

#endif
