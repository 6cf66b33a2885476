/* SPDX-License-Identifier: MIT */
/* iobuf allocation: one allocation holds the struct and its region, so an
 * owned iobuf is freed with one free() and its bytes sit next to its offsets. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/iobuf.h>

#include "reactor_internal.h"

static struct ferry_iobuf *alloc_owned(size_t size)
{
	struct ferry_iobuf *b;

	if (size > SIZE_MAX - sizeof(*b)) {
		errno = ENOMEM;
		return NULL;
	}
	b = calloc(1, sizeof(*b) + size);
	if (!b)
		return NULL;
	b->data = (uint8_t *)(b + 1);
	b->flags = FERRY_IOBUF_OWNED;
	return b;
}

struct ferry_iobuf *ferry_iobuf_new(size_t capacity)
{
	struct ferry_iobuf *b = alloc_owned(capacity);

	if (!b)
		return NULL;
	b->hi = b->hi_max = capacity;
	return b;
}

/*
 * The clone keeps src's offsets as they are (the region is allocated up to
 * hi_max), so code that remembered an offset into src can use it on the clone.
 * The bytes of the limits are copied; the cookie belongs to src's region owner
 * and is not.
 */
struct ferry_iobuf *ferry_iobuf_clone(const struct ferry_iobuf *src)
{
	struct ferry_iobuf *b;

	if (!src || src->lo_min > src->lo || src->lo > src->hi || src->hi > src->hi_max) {
		errno = EINVAL;
		return NULL;
	}
	b = alloc_owned(src->hi_max);
	if (!b)
		return NULL;
	b->lo_min = src->lo_min;
	b->lo = src->lo;
	b->hi = src->hi;
	b->hi_max = src->hi_max;
	if (src->hi_max > src->lo_min)
		memcpy(b->data + src->lo_min, src->data + src->lo_min, src->hi_max - src->lo_min);
	return b;
}

void ferry_iobuf_free(struct ferry_iobuf *b)
{
	if (!b)
		return;
	if (b->flags & FERRY_IOBUF_SLOT)
		ferry__client_slot_free(b);
	else if (b->flags & FERRY_IOBUF_OWNED)
		free(b);
}
