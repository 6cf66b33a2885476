/* SPDX-License-Identifier: MIT */
/*
 * The iobuf: a window [lo, hi) inside limits [lo_min, hi_max) over a byte
 * region, modelled on Jane Street Core's Iobuf. Receives fill at lo, readers
 * consume at lo. docs/loops.md (section 1) describes every operation.
 */
#ifndef FERRY_IOBUF_H
#define FERRY_IOBUF_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <ferry/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* flags */
#define FERRY_IOBUF_OWNED (1u << 0)	/* from ferry_iobuf_new(); ferry_iobuf_free() frees it */
#define FERRY_IOBUF_TRUNCATED (1u << 1) /* the last receive was cut to fit (MSG_TRUNC) */
#define FERRY_IOBUF_SLOT (1u << 2)	/* a slot of a ferryd client session (ferry/client.h): ferry_iobuf_free()
					 * gives a kept one back to ferryd */

/*
 * Offsets are relative to data and always satisfy
 * lo_min <= lo <= hi <= hi_max. The fields are public because the layout is
 * the contract (a UMEM frame or a shared-memory slot is presented as one),
 * but change them through the functions below, which keep the invariant.
 *
 * An iobuf is not thread-safe; hand it between threads, don't share it.
 */
struct ferry_iobuf {
	uint8_t *data;
	size_t lo_min;
	size_t lo;
	size_t hi;
	size_t hi_max;
	uint32_t flags;
	uint32_t reserved;
	uint64_t cookie; /* for the region's owner: e.g. ferryd keeps a UMEM address here */
};

/*
 * A new iobuf owning a zeroed region of capacity bytes, window = limits.
 * NULL on allocation failure (errno ENOMEM). Free it with ferry_iobuf_free().
 */
FERRY_API struct ferry_iobuf *ferry_iobuf_new(size_t capacity);

/*
 * A new owned iobuf with a copy of src's limits, window and bytes: the
 * prototype copy that loops use to make more buffers like `init`.
 */
FERRY_API struct ferry_iobuf *ferry_iobuf_clone(const struct ferry_iobuf *src);

/*
 * Frees an iobuf made by ferry_iobuf_new()/_clone(), or gives a kept client
 * slot (FERRY_IOBUF_SLOT) back to ferryd. NULL and borrowed views are ignored.
 */
FERRY_API void ferry_iobuf_free(struct ferry_iobuf *b);

/* Makes b a borrowed view of [data, data + len): the caller keeps the region. */
FERRY_INLINE void ferry_iobuf_init(struct ferry_iobuf *b, void *data, size_t len)
{
	b->data = (uint8_t *)data;
	b->lo_min = 0;
	b->lo = 0;
	b->hi = len;
	b->hi_max = len;
	b->flags = 0;
	b->reserved = 0;
	b->cookie = 0;
}

FERRY_INLINE size_t ferry_iobuf_length(const struct ferry_iobuf *b) { return b->hi - b->lo; }
FERRY_INLINE size_t ferry_iobuf_capacity(const struct ferry_iobuf *b) { return b->hi_max - b->lo_min; }
FERRY_INLINE bool ferry_iobuf_is_empty(const struct ferry_iobuf *b) { return b->hi == b->lo; }
/* The first byte of the window. */
FERRY_INLINE uint8_t *ferry_iobuf_window(const struct ferry_iobuf *b) { return b->data + b->lo; }

/* window = limits: ready to be written. */
FERRY_INLINE void ferry_iobuf_reset(struct ferry_iobuf *b)
{
	b->lo = b->lo_min;
	b->hi = b->hi_max;
}

/* What was written (from lo_min up to lo) becomes the window: ready to read. */
FERRY_INLINE void ferry_iobuf_flip_lo(struct ferry_iobuf *b)
{
	b->hi = b->lo;
	b->lo = b->lo_min;
}

/* hi = lo; lo = mark. -EINVAL (unchanged) unless lo_min <= mark <= lo. */
FERRY_INLINE int ferry_iobuf_bounded_flip_lo(struct ferry_iobuf *b, size_t mark)
{
	if (mark < b->lo_min || mark > b->lo)
		return -EINVAL;
	b->hi = b->lo;
	b->lo = mark;
	return 0;
}

/* The unread rest [hi, hi_max) becomes the window. */
FERRY_INLINE void ferry_iobuf_flip_hi(struct ferry_iobuf *b)
{
	b->lo = b->hi;
	b->hi = b->hi_max;
}

/* Moves the window's bytes to lo_min, then lo after them and hi = hi_max:
 * keeps an unread tail and appends after it. */
FERRY_INLINE void ferry_iobuf_compact(struct ferry_iobuf *b)
{
	size_t len = b->hi - b->lo;

	if (len && b->lo != b->lo_min)
		memmove(b->data + b->lo_min, b->data + b->lo, len);
	b->lo = b->lo_min + len;
	b->hi = b->hi_max;
}

/* lo += n. -EINVAL (unchanged) if n > length. */
FERRY_INLINE int ferry_iobuf_advance(struct ferry_iobuf *b, size_t n)
{
	if (n > b->hi - b->lo)
		return -EINVAL;
	b->lo += n;
	return 0;
}

FERRY_INLINE void ferry_iobuf_unsafe_advance(struct ferry_iobuf *b, size_t n) { b->lo += n; }

/* hi = lo + n. -ENOSPC (unchanged) if that passes hi_max. */
FERRY_INLINE int ferry_iobuf_resize(struct ferry_iobuf *b, size_t n)
{
	if (n > b->hi_max - b->lo)
		return -ENOSPC;
	b->hi = b->lo + n;
	return 0;
}

/* lo = lo_min. */
FERRY_INLINE void ferry_iobuf_rewind(struct ferry_iobuf *b) { b->lo = b->lo_min; }

/* The limits shrink to the window: lo_min = lo, hi_max = hi. */
FERRY_INLINE void ferry_iobuf_narrow(struct ferry_iobuf *b)
{
	b->lo_min = b->lo;
	b->hi_max = b->hi;
}

/*
 * *out becomes a borrowed view of b's bytes [lo + pos, lo + pos + len), with
 * limits = window = that range. It shares b's region: it is valid only while
 * that region is. -EINVAL (out untouched) if the range leaves b's window.
 */
FERRY_INLINE int ferry_iobuf_sub_shared(const struct ferry_iobuf *b, size_t pos, size_t len,
					struct ferry_iobuf *out)
{
	size_t win = b->hi - b->lo;

	if (pos > win || len > win - pos)
		return -EINVAL;
	ferry_iobuf_init(out, b->data + b->lo + pos, len);
	return 0;
}

/*
 * fill_X: write at lo, advance lo.          -ENOSPC if the window is too short.
 * consume_X: read at lo, advance lo.        -EINVAL if the window is too short.
 * peek_X: read at lo + pos, window stays.   -EINVAL if [pos, pos+size) leaves the window.
 * poke_X: write at lo + pos, window stays.  -ENOSPC if [pos, pos+size) leaves the window.
 * On error nothing changes. unsafe_ variants check nothing.
 */
FERRY_INLINE bool ferry_iobuf__fits(const struct ferry_iobuf *b, size_t pos, size_t n)
{
	size_t win = b->hi - b->lo;

	return pos <= win && n <= win - pos;
}

#define FERRY_IOBUF__LOAD_u8(p) ((uint8_t)(p)[0])
#define FERRY_IOBUF__STORE_u8(p, v) ((p)[0] = (uint8_t)(v))

FERRY_INLINE uint64_t ferry_iobuf__load_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

FERRY_INLINE uint64_t ferry_iobuf__load_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = n; i-- > 0;)
		v = (v << 8) | p[i];
	return v;
}

FERRY_INLINE void ferry_iobuf__store_be(uint8_t *p, unsigned n, uint64_t v)
{
	for (unsigned i = n; i-- > 0; v >>= 8)
		p[i] = (uint8_t)v;
}

FERRY_INLINE void ferry_iobuf__store_le(uint8_t *p, unsigned n, uint64_t v)
{
	for (unsigned i = 0; i < n; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

/* One set of the eight accessors for a type T of n bytes in byte order E (be/le). */
#define FERRY_IOBUF__ACCESSORS(NAME, T, n, E)                                                     \
	FERRY_INLINE T ferry_iobuf_unsafe_peek_##NAME(const struct ferry_iobuf *b, size_t pos)     \
	{                                                                                         \
		return (T)ferry_iobuf__load_##E(b->data + b->lo + pos, n);                        \
	}                                                                                         \
	FERRY_INLINE void ferry_iobuf_unsafe_poke_##NAME(struct ferry_iobuf *b, size_t pos, T v)   \
	{                                                                                         \
		ferry_iobuf__store_##E(b->data + b->lo + pos, n, v);                              \
	}                                                                                         \
	FERRY_INLINE T ferry_iobuf_unsafe_consume_##NAME(struct ferry_iobuf *b)                    \
	{                                                                                         \
		T v = ferry_iobuf_unsafe_peek_##NAME(b, 0);                                       \
		b->lo += n;                                                                       \
		return v;                                                                         \
	}                                                                                         \
	FERRY_INLINE void ferry_iobuf_unsafe_fill_##NAME(struct ferry_iobuf *b, T v)               \
	{                                                                                         \
		ferry_iobuf_unsafe_poke_##NAME(b, 0, v);                                          \
		b->lo += n;                                                                       \
	}                                                                                         \
	FERRY_INLINE int ferry_iobuf_peek_##NAME(const struct ferry_iobuf *b, size_t pos, T *v)    \
	{                                                                                         \
		if (!ferry_iobuf__fits(b, pos, n))                                                \
			return -EINVAL;                                                           \
		*v = ferry_iobuf_unsafe_peek_##NAME(b, pos);                                      \
		return 0;                                                                         \
	}                                                                                         \
	FERRY_INLINE int ferry_iobuf_poke_##NAME(struct ferry_iobuf *b, size_t pos, T v)           \
	{                                                                                         \
		if (!ferry_iobuf__fits(b, pos, n))                                                \
			return -ENOSPC;                                                           \
		ferry_iobuf_unsafe_poke_##NAME(b, pos, v);                                        \
		return 0;                                                                         \
	}                                                                                         \
	FERRY_INLINE int ferry_iobuf_consume_##NAME(struct ferry_iobuf *b, T *v)                   \
	{                                                                                         \
		if (!ferry_iobuf__fits(b, 0, n))                                                  \
			return -EINVAL;                                                           \
		*v = ferry_iobuf_unsafe_consume_##NAME(b);                                        \
		return 0;                                                                         \
	}                                                                                         \
	FERRY_INLINE int ferry_iobuf_fill_##NAME(struct ferry_iobuf *b, T v)                       \
	{                                                                                         \
		if (!ferry_iobuf__fits(b, 0, n))                                                  \
			return -ENOSPC;                                                           \
		ferry_iobuf_unsafe_fill_##NAME(b, v);                                             \
		return 0;                                                                         \
	}

FERRY_IOBUF__ACCESSORS(u8, uint8_t, 1, be)
FERRY_IOBUF__ACCESSORS(be16, uint16_t, 2, be)
FERRY_IOBUF__ACCESSORS(le16, uint16_t, 2, le)
FERRY_IOBUF__ACCESSORS(be32, uint32_t, 4, be)
FERRY_IOBUF__ACCESSORS(le32, uint32_t, 4, le)
FERRY_IOBUF__ACCESSORS(be64, uint64_t, 8, be)
FERRY_IOBUF__ACCESSORS(le64, uint64_t, 8, le)

/* Byte strings: the same four operations over n bytes. */
FERRY_INLINE int ferry_iobuf_peek_bytes(const struct ferry_iobuf *b, size_t pos, void *dst, size_t n)
{
	if (!ferry_iobuf__fits(b, pos, n))
		return -EINVAL;
	if (n)
		memcpy(dst, b->data + b->lo + pos, n);
	return 0;
}

FERRY_INLINE int ferry_iobuf_poke_bytes(struct ferry_iobuf *b, size_t pos, const void *src, size_t n)
{
	if (!ferry_iobuf__fits(b, pos, n))
		return -ENOSPC;
	if (n)
		memcpy(b->data + b->lo + pos, src, n);
	return 0;
}

FERRY_INLINE int ferry_iobuf_consume_bytes(struct ferry_iobuf *b, void *dst, size_t n)
{
	int err = ferry_iobuf_peek_bytes(b, 0, dst, n);

	if (!err)
		b->lo += n;
	return err;
}

FERRY_INLINE int ferry_iobuf_fill_bytes(struct ferry_iobuf *b, const void *src, size_t n)
{
	int err = ferry_iobuf_poke_bytes(b, 0, src, n);

	if (!err)
		b->lo += n;
	return err;
}

FERRY_INLINE void ferry_iobuf_unsafe_peek_bytes(const struct ferry_iobuf *b, size_t pos, void *dst, size_t n)
{
	memcpy(dst, b->data + b->lo + pos, n);
}

FERRY_INLINE void ferry_iobuf_unsafe_poke_bytes(struct ferry_iobuf *b, size_t pos, const void *src, size_t n)
{
	memcpy(b->data + b->lo + pos, src, n);
}

FERRY_INLINE void ferry_iobuf_unsafe_consume_bytes(struct ferry_iobuf *b, void *dst, size_t n)
{
	memcpy(dst, b->data + b->lo, n);
	b->lo += n;
}

FERRY_INLINE void ferry_iobuf_unsafe_fill_bytes(struct ferry_iobuf *b, const void *src, size_t n)
{
	memcpy(b->data + b->lo, src, n);
	b->lo += n;
}

#ifdef __cplusplus
}
#endif
#endif
