/* SPDX-License-Identifier: MIT */
/*
 * Every operation of ferry/iobuf.h at each boundary: the exact fit, one short,
 * one past; on every error the four offsets and the bytes are unchanged.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <ferry/iobuf.h>

#define MEM 64

/* The four offsets, to check "unchanged" in one comparison. */
struct offs {
	size_t lo_min, lo, hi, hi_max;
};

static struct offs offs_of(const struct ferry_iobuf *b)
{
	return (struct offs){ b->lo_min, b->lo, b->hi, b->hi_max };
}

#define expect_offs(b, a0, a1, a2, a3, what)                                                          \
	do {                                                                                          \
		struct offs got_ = offs_of(b);                                                        \
		cr_assert(got_.lo_min == (size_t)(a0) && got_.lo == (size_t)(a1) &&                   \
				  got_.hi == (size_t)(a2) && got_.hi_max == (size_t)(a3),             \
			  "%s: expected offsets lo_min=%zu lo=%zu hi=%zu hi_max=%zu, got %zu %zu %zu %zu", \
			  what, (size_t)(a0), (size_t)(a1), (size_t)(a2), (size_t)(a3), got_.lo_min,   \
			  got_.lo, got_.hi, got_.hi_max);                                             \
	} while (0)

#define expect_same_offs(b, s, what) expect_offs(b, (s).lo_min, (s).lo, (s).hi, (s).hi_max, what)

#define expect_same_bytes(mem, snap, what)                                                            \
	cr_assert(!memcmp(mem, snap, MEM), "%s: expected the region's bytes unchanged", what)

/* A recognisable pattern: byte i is 0x80 + i, so a moved or written byte shows. */
static void pattern(uint8_t *mem)
{
	for (size_t i = 0; i < MEM; i++)
		mem[i] = (uint8_t)(0x80 + i);
}

/* A borrowed view of mem with the given offsets. */
static void view(struct ferry_iobuf *b, uint8_t *mem, size_t lo_min, size_t lo, size_t hi, size_t hi_max)
{
	ferry_iobuf_init(b, mem, MEM);
	b->lo_min = lo_min;
	b->lo = lo;
	b->hi = hi;
	b->hi_max = hi_max;
}

/* ---- init, length, capacity, is_empty, window ------------------------------------------------- */

Test(iobuf, init_makes_a_borrowed_view)
{
	uint8_t mem[MEM];
	struct ferry_iobuf b;

	memset(&b, 0xee, sizeof(b));
	ferry_iobuf_init(&b, mem, 40);
	cr_assert_eq(b.data, mem, "init: expected data to be the given region");
	expect_offs(&b, 0, 0, 40, 40, "init");
	cr_assert_eq(b.flags, 0, "init: expected no flags (borrowed, not truncated), got %#x", b.flags);
	cr_assert_eq(b.reserved, 0, "init: expected reserved zeroed");
	cr_assert_eq(b.cookie, 0, "init: expected cookie zeroed");
	cr_assert_eq(ferry_iobuf_window(&b), mem, "init: expected the window to start at the region");
}

Test(iobuf, init_of_empty_region)
{
	struct ferry_iobuf b;

	ferry_iobuf_init(&b, NULL, 0);
	expect_offs(&b, 0, 0, 0, 0, "init(NULL, 0)");
	cr_assert(ferry_iobuf_is_empty(&b), "init(NULL, 0): expected an empty window");
	cr_assert_eq(ferry_iobuf_capacity(&b), 0, "init(NULL, 0): expected capacity 0");
}

Test(iobuf, length_capacity_is_empty)
{
	uint8_t mem[MEM];
	struct ferry_iobuf b;

	view(&b, mem, 3, 5, 12, 20);
	cr_assert_eq(ferry_iobuf_length(&b), 7, "expected length hi - lo = 7, got %zu", ferry_iobuf_length(&b));
	cr_assert_eq(ferry_iobuf_capacity(&b), 17, "expected capacity hi_max - lo_min = 17, got %zu",
		     ferry_iobuf_capacity(&b));
	cr_assert(!ferry_iobuf_is_empty(&b), "expected a 7-byte window not to be empty");
	cr_assert_eq(ferry_iobuf_window(&b), mem + 5, "expected the window to start at data + lo");

	view(&b, mem, 3, 9, 9, 20);
	cr_assert_eq(ferry_iobuf_length(&b), 0, "expected length 0 when lo == hi");
	cr_assert(ferry_iobuf_is_empty(&b), "expected lo == hi to be empty");

	view(&b, mem, 0, 0, MEM, MEM);
	cr_assert_eq(ferry_iobuf_length(&b), MEM, "expected the whole region as window");
	cr_assert_eq(ferry_iobuf_capacity(&b), MEM, "expected the whole region as capacity");

	view(&b, mem, 7, 7, 7, 7);
	cr_assert_eq(ferry_iobuf_capacity(&b), 0, "expected capacity 0 for empty limits");
	cr_assert(ferry_iobuf_is_empty(&b), "expected empty limits to be empty");
}

/* ---- window moves ---------------------------------------------------------------------------- */

Test(iobuf, reset)
{
	uint8_t mem[MEM];
	struct ferry_iobuf b;

	view(&b, mem, 3, 5, 12, 20);
	ferry_iobuf_reset(&b);
	expect_offs(&b, 3, 3, 20, 20, "reset: window = limits");
	ferry_iobuf_reset(&b);
	expect_offs(&b, 3, 3, 20, 20, "reset twice");
}

Test(iobuf, flip_lo)
{
	uint8_t mem[MEM];
	struct ferry_iobuf b;

	view(&b, mem, 3, 9, 15, 20);
	ferry_iobuf_flip_lo(&b);
	expect_offs(&b, 3, 3, 9, 20, "flip_lo: [lo_min, lo) becomes the window");

	view(&b, mem, 3, 3, 15, 20);
	ferry_iobuf_flip_lo(&b);
	expect_offs(&b, 3, 3, 3, 20, "flip_lo with nothing written: empty window");
}

Test(iobuf, bounded_flip_lo_inside)
{
	uint8_t mem[MEM];
	struct ferry_iobuf b;

	view(&b, mem, 3, 9, 15, 20);
	cr_assert_eq(ferry_iobuf_bounded_flip_lo(&b, 6), 0, "bounded_flip_lo(6): expected 0");
	expect_offs(&b, 3, 6, 9, 20, "bounded_flip_lo(6)");
}

Test(iobuf, bounded_flip_lo_at_both_ends)
{
	uint8_t mem[MEM];
	struct ferry_iobuf b;

	view(&b, mem, 3, 9, 15, 20);
	cr_assert_eq(ferry_iobuf_bounded_flip_lo(&b, 3), 0, "bounded_flip_lo(lo_min): expected 0");
	expect_offs(&b, 3, 3, 9, 20, "bounded_flip_lo(lo_min) is flip_lo");

	view(&b, mem, 3, 9, 15, 20);
	cr_assert_eq(ferry_iobuf_bounded_flip_lo(&b, 9), 0, "bounded_flip_lo(lo): expected 0");
	expect_offs(&b, 3, 9, 9, 20, "bounded_flip_lo(lo): empty window at lo");
}

Test(iobuf, bounded_flip_lo_out_of_range)
{
	uint8_t mem[MEM];
	struct ferry_iobuf b;
	struct offs s;

	view(&b, mem, 3, 9, 15, 20);
	s = offs_of(&b);
	cr_assert_eq(ferry_iobuf_bounded_flip_lo(&b, 2), -EINVAL, "mark below lo_min: expected -EINVAL");
	expect_same_offs(&b, s, "mark below lo_min");
	cr_assert_eq(ferry_iobuf_bounded_flip_lo(&b, 10), -EINVAL, "mark one above lo: expected -EINVAL");
	expect_same_offs(&b, s, "mark one above lo");
	cr_assert_eq(ferry_iobuf_bounded_flip_lo(&b, SIZE_MAX), -EINVAL, "mark SIZE_MAX: expected -EINVAL");
	expect_same_offs(&b, s, "mark SIZE_MAX");
	cr_assert_eq(ferry_iobuf_bounded_flip_lo(&b, 0), -EINVAL, "mark 0 below lo_min 3: expected -EINVAL");
	expect_same_offs(&b, s, "mark 0");
}

Test(iobuf, flip_hi)
{
	uint8_t mem[MEM];
	struct ferry_iobuf b;

	view(&b, mem, 3, 5, 12, 20);
	ferry_iobuf_flip_hi(&b);
	expect_offs(&b, 3, 12, 20, 20, "flip_hi: [hi, hi_max) becomes the window");

	view(&b, mem, 3, 5, 20, 20);
	ferry_iobuf_flip_hi(&b);
	expect_offs(&b, 3, 20, 20, 20, "flip_hi with hi = hi_max: empty window at the end");
}

Test(iobuf, compact_moves_the_tail)
{
	uint8_t mem[MEM], want[MEM];
	struct ferry_iobuf b;

	pattern(mem);
	view(&b, mem, 3, 10, 14, 20);
	memcpy(want, mem, MEM);
	memcpy(want + 3, mem + 10, 4); /* the 4-byte tail moves to lo_min */
	ferry_iobuf_compact(&b);
	expect_offs(&b, 3, 7, 20, 20, "compact with a 4-byte tail");
	cr_assert(!memcmp(mem, want, MEM),
		  "compact: expected the tail's bytes at lo_min and nothing else in the region touched");
}

Test(iobuf, compact_overlapping_tail)
{
	uint8_t mem[MEM], want[MEM];
	struct ferry_iobuf b;

	pattern(mem);
	view(&b, mem, 0, 2, 12, 16); /* source and destination overlap: needs memmove */
	memcpy(want, mem, MEM);
	memmove(want, mem + 2, 10);
	ferry_iobuf_compact(&b);
	expect_offs(&b, 0, 10, 16, 16, "compact with an overlapping 10-byte tail");
	cr_assert(!memcmp(mem, want, MEM), "compact (overlap): expected the tail moved intact to lo_min");
}

Test(iobuf, compact_without_tail)
{
	uint8_t mem[MEM], snap[MEM];
	struct ferry_iobuf b;

	pattern(mem);
	memcpy(snap, mem, MEM);
	view(&b, mem, 3, 11, 11, 20);
	ferry_iobuf_compact(&b);
	expect_offs(&b, 3, 3, 20, 20, "compact of an empty window is reset");
	expect_same_bytes(mem, snap, "compact of an empty window");
}

Test(iobuf, compact_tail_already_at_lo_min)
{
	uint8_t mem[MEM], snap[MEM];
	struct ferry_iobuf b;

	pattern(mem);
	memcpy(snap, mem, MEM);
	view(&b, mem, 3, 3, 8, 20);
	ferry_iobuf_compact(&b);
	expect_offs(&b, 3, 8, 20, 20, "compact with the tail at lo_min");
	expect_same_bytes(mem, snap, "compact with the tail at lo_min");
}

Test(iobuf, advance)
{
	uint8_t mem[MEM];
	struct ferry_iobuf b;
	struct offs s;

	view(&b, mem, 3, 5, 12, 20);
	cr_assert_eq(ferry_iobuf_advance(&b, 0), 0, "advance(0): expected 0");
	expect_offs(&b, 3, 5, 12, 20, "advance(0)");
	cr_assert_eq(ferry_iobuf_advance(&b, 2), 0, "advance(2): expected 0");
	expect_offs(&b, 3, 7, 12, 20, "advance(2)");
	cr_assert_eq(ferry_iobuf_advance(&b, 5), 0, "advance(length): expected 0");
	expect_offs(&b, 3, 12, 12, 20, "advance(length) empties the window");
	cr_assert_eq(ferry_iobuf_advance(&b, 0), 0, "advance(0) on an empty window: expected 0");

	view(&b, mem, 3, 5, 12, 20);
	s = offs_of(&b);
	cr_assert_eq(ferry_iobuf_advance(&b, 8), -EINVAL, "advance(length + 1): expected -EINVAL");
	expect_same_offs(&b, s, "advance(length + 1)");
	cr_assert_eq(ferry_iobuf_advance(&b, SIZE_MAX), -EINVAL, "advance(SIZE_MAX): expected -EINVAL");
	expect_same_offs(&b, s, "advance(SIZE_MAX)");
}

Test(iobuf, unsafe_advance)
{
	uint8_t mem[MEM];
	struct ferry_iobuf b;

	view(&b, mem, 3, 5, 12, 20);
	ferry_iobuf_unsafe_advance(&b, 7);
	expect_offs(&b, 3, 12, 12, 20, "unsafe_advance(7)");
	ferry_iobuf_unsafe_advance(&b, 0);
	expect_offs(&b, 3, 12, 12, 20, "unsafe_advance(0)");
}

Test(iobuf, resize)
{
	uint8_t mem[MEM];
	struct ferry_iobuf b;
	struct offs s;

	view(&b, mem, 3, 5, 12, 20);
	cr_assert_eq(ferry_iobuf_resize(&b, 0), 0, "resize(0): expected 0");
	expect_offs(&b, 3, 5, 5, 20, "resize(0)");
	cr_assert_eq(ferry_iobuf_resize(&b, 4), 0, "resize(4): expected 0");
	expect_offs(&b, 3, 5, 9, 20, "resize(4)");
	cr_assert_eq(ferry_iobuf_resize(&b, 15), 0, "resize up to hi_max: expected 0");
	expect_offs(&b, 3, 5, 20, 20, "resize up to hi_max");

	s = offs_of(&b);
	cr_assert_eq(ferry_iobuf_resize(&b, 16), -ENOSPC, "resize one past hi_max: expected -ENOSPC");
	expect_same_offs(&b, s, "resize one past hi_max");
	cr_assert_eq(ferry_iobuf_resize(&b, SIZE_MAX), -ENOSPC, "resize(SIZE_MAX): expected -ENOSPC");
	expect_same_offs(&b, s, "resize(SIZE_MAX)");
}

Test(iobuf, rewind)
{
	uint8_t mem[MEM];
	struct ferry_iobuf b;

	view(&b, mem, 3, 9, 12, 20);
	ferry_iobuf_rewind(&b);
	expect_offs(&b, 3, 3, 12, 20, "rewind: lo = lo_min, hi stays");
}

Test(iobuf, narrow)
{
	uint8_t mem[MEM];
	struct ferry_iobuf b;

	view(&b, mem, 3, 9, 12, 20);
	ferry_iobuf_narrow(&b);
	expect_offs(&b, 9, 9, 12, 12, "narrow: limits = window");
	ferry_iobuf_reset(&b);
	expect_offs(&b, 9, 9, 12, 12, "reset after narrow stays inside the new limits");
	cr_assert_eq(ferry_iobuf_capacity(&b), 3, "narrow: expected capacity = the old length 3");
}

/* ---- sub_shared --------------------------------------------------------------------------------- */

Test(iobuf, sub_shared_shares_bytes)
{
	uint8_t mem[MEM];
	struct ferry_iobuf b, sub;
	struct offs s;

	pattern(mem);
	view(&b, mem, 3, 5, 15, 20);
	s = offs_of(&b);
	cr_assert_eq(ferry_iobuf_sub_shared(&b, 2, 4, &sub), 0, "sub_shared(2, 4): expected 0");
	expect_same_offs(&b, s, "sub_shared leaves the parent");
	cr_assert_eq(sub.data + sub.lo, mem + 7, "sub_shared: expected the view to start at lo + pos");
	cr_assert_eq(ferry_iobuf_length(&sub), 4, "sub_shared: expected length 4");
	cr_assert_eq(ferry_iobuf_capacity(&sub), 4, "sub_shared: expected limits = window (capacity 4)");
	cr_assert_eq(sub.lo_min, sub.lo, "sub_shared: expected lo_min = lo");
	cr_assert_eq(sub.hi_max, sub.hi, "sub_shared: expected hi_max = hi");
	cr_assert_eq(sub.flags & FERRY_IOBUF_OWNED, 0, "sub_shared: expected a borrowed view");

	cr_assert_eq(ferry_iobuf_poke_u8(&sub, 0, 0x11), 0, "poke into the sub view: expected 0");
	cr_assert_eq(mem[7], 0x11, "a write through the sub view shows in the parent's bytes");
	mem[10] = 0x22;
	cr_assert_eq(ferry_iobuf_unsafe_peek_u8(&sub, 3), 0x22, "a write to the parent shows in the sub view");

	/* the sub view's limits hold: its reset cannot reach the parent's bytes around it */
	ferry_iobuf_reset(&sub);
	cr_assert_eq(ferry_iobuf_length(&sub), 4, "reset of the sub view stays inside its 4 bytes");
	cr_assert_eq(ferry_iobuf_fill_be32(&sub, 0x01020304), 0, "fill of 4 bytes fits the sub view");
	cr_assert_eq(ferry_iobuf_fill_u8(&sub, 0), -ENOSPC, "a fifth byte does not fit the sub view");
	cr_assert_eq(mem[11], 0x80 + 11, "the byte after the sub view is untouched");
	cr_assert_eq(mem[6], 0x80 + 6, "the byte before the sub view is untouched");
}

Test(iobuf, sub_shared_edges)
{
	uint8_t mem[MEM];
	struct ferry_iobuf b, sub;

	view(&b, mem, 3, 5, 15, 20);
	cr_assert_eq(ferry_iobuf_sub_shared(&b, 0, 10, &sub), 0, "sub_shared of the whole window: expected 0");
	cr_assert_eq(sub.data + sub.lo, mem + 5, "whole window: expected start at lo");
	cr_assert_eq(ferry_iobuf_length(&sub), 10, "whole window: expected length 10");
	cr_assert_eq(ferry_iobuf_sub_shared(&b, 10, 0, &sub), 0, "empty sub view at the window's end: expected 0");
	cr_assert_eq(ferry_iobuf_length(&sub), 0, "empty sub view: expected length 0");
	cr_assert_eq(ferry_iobuf_sub_shared(&b, 6, 4, &sub), 0, "sub view ending exactly at hi: expected 0");
}

Test(iobuf, sub_shared_out_of_range)
{
	static const struct {
		size_t pos, len;
		const char *what;
	} bad[] = {
		{ 11, 0, "pos one past the window" },
		{ 7, 4, "ends one past hi" },
		{ 0, 11, "len one past the window" },
		{ 0, 15, "len up to hi_max (past the window)" },
		{ 1, SIZE_MAX, "len SIZE_MAX (pos + len wraps)" },
		{ SIZE_MAX, 2, "pos SIZE_MAX" },
	};
	uint8_t mem[MEM];
	struct ferry_iobuf b, out, untouched;
	struct offs s;

	view(&b, mem, 3, 5, 15, 20);
	s = offs_of(&b);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&out, 0xa5, sizeof(out));
		memcpy(&untouched, &out, sizeof(out));
		cr_assert_eq(ferry_iobuf_sub_shared(&b, bad[i].pos, bad[i].len, &out), -EINVAL,
			     "sub_shared %s: expected -EINVAL", bad[i].what);
		cr_assert(!memcmp(&out, &untouched, sizeof(out)), "sub_shared %s: expected out untouched",
			  bad[i].what);
		expect_same_offs(&b, s, bad[i].what);
	}
}

/* ---- integer accessors, generated for each of the seven types --------------------------------- */

#define UNPAREN(...) __VA_ARGS__

/* name, C type, size, a value with high bits set, its bytes in memory order */
#define INT_TYPES(X)                                                                                   \
	X(u8, uint8_t, 1, UINT8_C(0xf1), (0xf1))                                                        \
	X(be16, uint16_t, 2, UINT16_C(0xf1e2), (0xf1, 0xe2))                                           \
	X(le16, uint16_t, 2, UINT16_C(0xf1e2), (0xe2, 0xf1))                                           \
	X(be32, uint32_t, 4, UINT32_C(0xf1e2d3c4), (0xf1, 0xe2, 0xd3, 0xc4))                           \
	X(le32, uint32_t, 4, UINT32_C(0xf1e2d3c4), (0xc4, 0xd3, 0xe2, 0xf1))                           \
	X(be64, uint64_t, 8, UINT64_C(0xf1e2d3c4b5a69788), (0xf1, 0xe2, 0xd3, 0xc4, 0xb5, 0xa6, 0x97, 0x88)) \
	X(le64, uint64_t, 8, UINT64_C(0xf1e2d3c4b5a69788), (0x88, 0x97, 0xa6, 0xb5, 0xc4, 0xd3, 0xe2, 0xf1))

/*
 * Layout of every accessor test: limits [2, 4 + N + 3 + 2), window starting
 * at lo = 4. The bytes outside what an operation may write keep the pattern.
 */
#define LO 4

#define INT_TESTS(NAME, T, N, VAL, BYTES)                                                              \
	Test(iobuf_int, fill_exact_##NAME)                                                             \
	{                                                                                              \
		static const uint8_t want[N] = { UNPAREN BYTES };                                      \
		uint8_t mem[MEM], expect[MEM];                                                         \
		struct ferry_iobuf b;                                                                  \
                                                                                                       \
		pattern(mem);                                                                          \
		memcpy(expect, mem, MEM);                                                              \
		memcpy(expect + LO, want, N);                                                          \
		view(&b, mem, 2, LO, LO + N, LO + N + 2);                                              \
		cr_assert_eq(ferry_iobuf_fill_##NAME(&b, VAL), 0, "fill_" #NAME " of an exact fit: expected 0"); \
		expect_offs(&b, 2, LO + N, LO + N, LO + N + 2, "fill_" #NAME " advances lo by " #N);    \
		cr_assert(!memcmp(mem, expect, MEM), "fill_" #NAME ": expected bytes " #BYTES          \
						     " at lo and nothing else written");                \
	}                                                                                              \
	Test(iobuf_int, fill_one_short_##NAME)                                                         \
	{                                                                                              \
		uint8_t mem[MEM], snap[MEM];                                                           \
		struct ferry_iobuf b;                                                                  \
		struct offs s;                                                                         \
                                                                                                       \
		pattern(mem);                                                                          \
		memcpy(snap, mem, MEM);                                                                \
		view(&b, mem, 2, LO, LO + N - 1, LO + N + 2);                                          \
		s = offs_of(&b);                                                                       \
		cr_assert_eq(ferry_iobuf_fill_##NAME(&b, VAL), -ENOSPC,                                \
			     "fill_" #NAME " into " #N " - 1 bytes: expected -ENOSPC");                \
		expect_same_offs(&b, s, "fill_" #NAME " one short");                                   \
		expect_same_bytes(mem, snap, "fill_" #NAME " one short");                              \
	}                                                                                              \
	Test(iobuf_int, consume_exact_##NAME)                                                          \
	{                                                                                              \
		static const uint8_t have[N] = { UNPAREN BYTES };                                      \
		uint8_t mem[MEM], snap[MEM];                                                           \
		struct ferry_iobuf b;                                                                  \
		T v = 0;                                                                               \
                                                                                                       \
		pattern(mem);                                                                          \
		memcpy(mem + LO, have, N);                                                             \
		memcpy(snap, mem, MEM);                                                                \
		view(&b, mem, 2, LO, LO + N, LO + N + 2);                                              \
		cr_assert_eq(ferry_iobuf_consume_##NAME(&b, &v), 0, "consume_" #NAME " of an exact fit: expected 0"); \
		cr_assert_eq(v, (T)(VAL), "consume_" #NAME " of bytes " #BYTES ": expected %#llx, got %#llx", \
			     (unsigned long long)(VAL), (unsigned long long)v);                        \
		expect_offs(&b, 2, LO + N, LO + N, LO + N + 2, "consume_" #NAME " advances lo by " #N); \
		expect_same_bytes(mem, snap, "consume_" #NAME " writes nothing");                      \
	}                                                                                              \
	Test(iobuf_int, consume_one_short_##NAME)                                                      \
	{                                                                                              \
		uint8_t mem[MEM], snap[MEM];                                                           \
		struct ferry_iobuf b;                                                                  \
		struct offs s;                                                                         \
		T v = (T)0x5a;                                                                         \
                                                                                                       \
		pattern(mem);                                                                          \
		memcpy(snap, mem, MEM);                                                                \
		view(&b, mem, 2, LO, LO + N - 1, LO + N + 2);                                          \
		s = offs_of(&b);                                                                       \
		cr_assert_eq(ferry_iobuf_consume_##NAME(&b, &v), -EINVAL,                              \
			     "consume_" #NAME " from " #N " - 1 bytes: expected -EINVAL");             \
		cr_assert_eq(v, (T)0x5a, "consume_" #NAME " one short: expected the output untouched"); \
		expect_same_offs(&b, s, "consume_" #NAME " one short");                                \
		expect_same_bytes(mem, snap, "consume_" #NAME " one short");                           \
	}                                                                                              \
	Test(iobuf_int, peek_##NAME)                                                                   \
	{                                                                                              \
		static const uint8_t have[N] = { UNPAREN BYTES };                                      \
		const size_t len = N + 3;                                                              \
		uint8_t mem[MEM], snap[MEM];                                                           \
		struct ferry_iobuf b;                                                                  \
		struct offs s;                                                                         \
		T v = 0;                                                                               \
                                                                                                       \
		pattern(mem);                                                                          \
		memcpy(mem + LO + 3, have, N);                                                         \
		memcpy(snap, mem, MEM);                                                                \
		view(&b, mem, 2, LO, LO + len, LO + len + 2);                                          \
		s = offs_of(&b);                                                                       \
		cr_assert_eq(ferry_iobuf_peek_##NAME(&b, 3, &v), 0,                                    \
			     "peek_" #NAME " ending exactly at hi: expected 0");                       \
		cr_assert_eq(v, (T)(VAL), "peek_" #NAME " of bytes " #BYTES ": expected %#llx, got %#llx", \
			     (unsigned long long)(VAL), (unsigned long long)v);                        \
		expect_same_offs(&b, s, "peek_" #NAME " leaves the window");                           \
		cr_assert_eq(ferry_iobuf_unsafe_peek_##NAME(&b, 3), (T)(VAL),                          \
			     "unsafe_peek_" #NAME ": expected the same value");                         \
		const size_t bad[] = { 4, len, len + 1, SIZE_MAX };                                    \
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {                            \
			v = (T)0x5a;                                                                   \
			cr_assert_eq(ferry_iobuf_peek_##NAME(&b, bad[i], &v), -EINVAL,                 \
				     "peek_" #NAME " at pos %zu (window %zu): expected -EINVAL", bad[i], len); \
			cr_assert_eq(v, (T)0x5a, "peek_" #NAME " at pos %zu: expected the output untouched", \
				     bad[i]);                                                          \
			expect_same_offs(&b, s, "peek_" #NAME " out of the window");                   \
		}                                                                                      \
		expect_same_bytes(mem, snap, "peek_" #NAME " writes nothing");                         \
	}                                                                                              \
	Test(iobuf_int, poke_##NAME)                                                                   \
	{                                                                                              \
		static const uint8_t want[N] = { UNPAREN BYTES };                                      \
		const size_t len = N + 3;                                                              \
		uint8_t mem[MEM], expect[MEM];                                                         \
		struct ferry_iobuf b;                                                                  \
		struct offs s;                                                                         \
                                                                                                       \
		pattern(mem);                                                                          \
		memcpy(expect, mem, MEM);                                                              \
		memcpy(expect + LO + 3, want, N);                                                      \
		view(&b, mem, 2, LO, LO + len, LO + len + 2);                                          \
		s = offs_of(&b);                                                                       \
		const size_t bad[] = { 4, len, len + 1, SIZE_MAX };                                    \
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {                            \
			cr_assert_eq(ferry_iobuf_poke_##NAME(&b, bad[i], VAL), -ENOSPC,                \
				     "poke_" #NAME " at pos %zu (window %zu): expected -ENOSPC", bad[i], len); \
			expect_same_offs(&b, s, "poke_" #NAME " out of the window");                   \
		}                                                                                      \
		pattern(expect);                                                                       \
		cr_assert(!memcmp(mem, expect, MEM), "poke_" #NAME " out of the window: expected no byte written"); \
		memcpy(expect + LO + 3, want, N);                                                      \
		cr_assert_eq(ferry_iobuf_poke_##NAME(&b, 3, VAL), 0, "poke_" #NAME " ending exactly at hi: expected 0"); \
		expect_same_offs(&b, s, "poke_" #NAME " leaves the window");                           \
		cr_assert(!memcmp(mem, expect, MEM), "poke_" #NAME ": expected bytes " #BYTES          \
						     " at lo + 3 and nothing else written");            \
		pattern(mem);                                                                          \
		ferry_iobuf_unsafe_poke_##NAME(&b, 3, VAL);                                            \
		cr_assert(!memcmp(mem, expect, MEM), "unsafe_poke_" #NAME ": expected the same bytes"); \
	}                                                                                              \
	Test(iobuf_int, unsafe_fill_consume_##NAME)                                                    \
	{                                                                                              \
		static const uint8_t want[N] = { UNPAREN BYTES };                                      \
		uint8_t mem[MEM];                                                                      \
		struct ferry_iobuf b;                                                                  \
		T v;                                                                                   \
                                                                                                       \
		pattern(mem);                                                                          \
		view(&b, mem, 2, LO, LO + N, LO + N + 2);                                              \
		ferry_iobuf_unsafe_fill_##NAME(&b, VAL);                                               \
		expect_offs(&b, 2, LO + N, LO + N, LO + N + 2, "unsafe_fill_" #NAME);                  \
		cr_assert(!memcmp(mem + LO, want, N), "unsafe_fill_" #NAME ": expected bytes " #BYTES); \
		cr_assert_eq(mem[LO - 1], 0x80 + LO - 1, "unsafe_fill_" #NAME ": byte before lo untouched"); \
		cr_assert_eq(mem[LO + N], 0x80 + LO + N, "unsafe_fill_" #NAME ": byte after untouched"); \
		ferry_iobuf_bounded_flip_lo(&b, LO);                                                   \
		v = ferry_iobuf_unsafe_consume_##NAME(&b);                                             \
		cr_assert_eq(v, (T)(VAL), "unsafe_consume_" #NAME ": expected %#llx, got %#llx",       \
			     (unsigned long long)(VAL), (unsigned long long)v);                        \
		expect_offs(&b, 2, LO + N, LO + N, LO + N + 2, "unsafe_consume_" #NAME);               \
	}                                                                                              \
	Test(iobuf_int, round_trip_##NAME)                                                             \
	{                                                                                              \
		const T values[] = { 0, 1, (T)(VAL), (T)~(T)0, (T)((T)~(T)0 >> 1) };                   \
		const size_t nv = sizeof(values) / sizeof(values[0]);                                  \
		uint8_t mem[MEM];                                                                      \
		struct ferry_iobuf b;                                                                  \
		T v;                                                                                   \
                                                                                                       \
		view(&b, mem, 0, 0, nv * N, nv * N);                                                   \
		for (size_t i = 0; i < nv; i++)                                                        \
			cr_assert_eq(ferry_iobuf_fill_##NAME(&b, values[i]), 0, "fill_" #NAME " #%zu: expected 0", i); \
		cr_assert(ferry_iobuf_is_empty(&b), "fill_" #NAME ": expected the window used up");    \
		ferry_iobuf_flip_lo(&b);                                                               \
		for (size_t i = 0; i < nv; i++) {                                                      \
			cr_assert_eq(ferry_iobuf_consume_##NAME(&b, &v), 0, "consume_" #NAME " #%zu: expected 0", i); \
			cr_assert_eq(v, values[i], "consume_" #NAME " #%zu: expected %#llx, got %#llx", i, \
				     (unsigned long long)values[i], (unsigned long long)v);            \
		}                                                                                      \
		cr_assert(ferry_iobuf_is_empty(&b), "consume_" #NAME ": expected the window read up"); \
	}

INT_TYPES(INT_TESTS)

/* be and le of the same value are each other's reverse; u8 is the same either way. */
Test(iobuf_int, be_and_le_differ)
{
	uint8_t mem[MEM];
	struct ferry_iobuf b;
	uint16_t v16;
	uint32_t v32;
	uint64_t v64;

	view(&b, mem, 0, 0, 8, 8);
	ferry_iobuf_poke_be16(&b, 0, 0x0102);
	cr_assert_eq(ferry_iobuf_peek_le16(&b, 0, &v16), 0, "peek_le16: expected 0");
	cr_assert_eq(v16, 0x0201, "be16 0x0102 read as le16: expected 0x0201, got %#x", v16);
	ferry_iobuf_poke_le32(&b, 0, 0x01020304);
	cr_assert_eq(ferry_iobuf_peek_be32(&b, 0, &v32), 0, "peek_be32: expected 0");
	cr_assert_eq(v32, 0x04030201, "le32 0x01020304 read as be32: expected 0x04030201, got %#x", v32);
	ferry_iobuf_poke_be64(&b, 0, UINT64_C(0x0102030405060708));
	cr_assert_eq(ferry_iobuf_peek_le64(&b, 0, &v64), 0, "peek_le64: expected 0");
	cr_assert_eq(v64, UINT64_C(0x0807060504030201), "be64 read as le64: expected 0x0807060504030201, got %#llx",
		     (unsigned long long)v64);
}

/* ---- bytes ------------------------------------------------------------------------------------- */

static const uint8_t abc[5] = { 'a', 'b', 'c', 'd', 'e' };

Test(iobuf_bytes, fill_exact_and_one_short)
{
	uint8_t mem[MEM], expect[MEM], snap[MEM];
	struct ferry_iobuf b;
	struct offs s;

	pattern(mem);
	memcpy(expect, mem, MEM);
	memcpy(expect + LO, abc, 5);
	view(&b, mem, 2, LO, LO + 5, LO + 7);
	cr_assert_eq(ferry_iobuf_fill_bytes(&b, abc, 5), 0, "fill_bytes of an exact fit: expected 0");
	expect_offs(&b, 2, LO + 5, LO + 5, LO + 7, "fill_bytes advances lo by 5");
	cr_assert(!memcmp(mem, expect, MEM), "fill_bytes: expected \"abcde\" at lo and nothing else written");

	pattern(mem);
	memcpy(snap, mem, MEM);
	view(&b, mem, 2, LO, LO + 4, LO + 7);
	s = offs_of(&b);
	cr_assert_eq(ferry_iobuf_fill_bytes(&b, abc, 5), -ENOSPC, "fill_bytes of 5 into 4: expected -ENOSPC");
	expect_same_offs(&b, s, "fill_bytes one short");
	expect_same_bytes(mem, snap, "fill_bytes one short");

	cr_assert_eq(ferry_iobuf_fill_bytes(&b, NULL, 0), 0, "fill_bytes of 0 bytes: expected 0");
	expect_same_offs(&b, s, "fill_bytes of 0 bytes");
}

Test(iobuf_bytes, consume_exact_and_one_short)
{
	uint8_t mem[MEM], snap[MEM], out[8];
	struct ferry_iobuf b;
	struct offs s;

	pattern(mem);
	memcpy(mem + LO, abc, 5);
	memcpy(snap, mem, MEM);
	view(&b, mem, 2, LO, LO + 5, LO + 7);
	memset(out, 0, sizeof(out));
	cr_assert_eq(ferry_iobuf_consume_bytes(&b, out, 5), 0, "consume_bytes of an exact fit: expected 0");
	cr_assert(!memcmp(out, abc, 5), "consume_bytes: expected \"abcde\"");
	cr_assert_eq(out[5], 0, "consume_bytes: expected nothing written past n");
	expect_offs(&b, 2, LO + 5, LO + 5, LO + 7, "consume_bytes advances lo by 5");
	expect_same_bytes(mem, snap, "consume_bytes writes nothing in the region");

	view(&b, mem, 2, LO, LO + 4, LO + 7);
	s = offs_of(&b);
	memset(out, 0x5a, sizeof(out));
	cr_assert_eq(ferry_iobuf_consume_bytes(&b, out, 5), -EINVAL, "consume_bytes of 5 from 4: expected -EINVAL");
	for (size_t i = 0; i < sizeof(out); i++)
		cr_assert_eq(out[i], 0x5a, "consume_bytes one short: expected the output untouched");
	expect_same_offs(&b, s, "consume_bytes one short");
}

Test(iobuf_bytes, peek_and_poke_at_pos)
{
	uint8_t mem[MEM], expect[MEM], snap[MEM], out[8];
	struct ferry_iobuf b;
	struct offs s;
	const size_t len = 8;
	const size_t bad[] = { 4, len, len + 1, SIZE_MAX };
	/* not a constant, so the compiler does not warn about the memcpy it proves unreachable */
	volatile size_t huge = SIZE_MAX;

	pattern(mem);
	memcpy(expect, mem, MEM);
	memcpy(expect + LO + 3, abc, 5);
	view(&b, mem, 2, LO, LO + len, LO + len + 2);
	s = offs_of(&b);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(ferry_iobuf_poke_bytes(&b, bad[i], abc, 5), -ENOSPC,
			     "poke_bytes of 5 at pos %zu (window 8): expected -ENOSPC", bad[i]);
		expect_same_offs(&b, s, "poke_bytes out of the window");
	}
	pattern(snap);
	expect_same_bytes(mem, snap, "poke_bytes out of the window");
	cr_assert_eq(ferry_iobuf_poke_bytes(&b, 3, abc, 5), 0, "poke_bytes ending exactly at hi: expected 0");
	expect_same_offs(&b, s, "poke_bytes leaves the window");
	cr_assert(!memcmp(mem, expect, MEM), "poke_bytes: expected \"abcde\" at lo + 3, nothing else written");

	memset(out, 0, sizeof(out));
	cr_assert_eq(ferry_iobuf_peek_bytes(&b, 3, out, 5), 0, "peek_bytes ending exactly at hi: expected 0");
	cr_assert(!memcmp(out, abc, 5), "peek_bytes: expected \"abcde\"");
	expect_same_offs(&b, s, "peek_bytes leaves the window");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(out, 0x5a, sizeof(out));
		cr_assert_eq(ferry_iobuf_peek_bytes(&b, bad[i], out, 5), -EINVAL,
			     "peek_bytes of 5 at pos %zu (window 8): expected -EINVAL", bad[i]);
		cr_assert_eq(out[0], 0x5a, "peek_bytes out of the window: expected the output untouched");
		expect_same_offs(&b, s, "peek_bytes out of the window");
	}

	/* zero bytes at pos = length is inside the window; at length + 1 it is not */
	cr_assert_eq(ferry_iobuf_peek_bytes(&b, len, out, 0), 0, "peek_bytes of 0 at pos = length: expected 0");
	cr_assert_eq(ferry_iobuf_poke_bytes(&b, len, abc, 0), 0, "poke_bytes of 0 at pos = length: expected 0");
	cr_assert_eq(ferry_iobuf_peek_bytes(&b, len + 1, out, 0), -EINVAL,
		     "peek_bytes of 0 at pos = length + 1: expected -EINVAL");
	cr_assert_eq(ferry_iobuf_poke_bytes(&b, len + 1, abc, 0), -ENOSPC,
		     "poke_bytes of 0 at pos = length + 1: expected -ENOSPC");
	cr_assert_eq(ferry_iobuf_peek_bytes(&b, 0, out, huge), -EINVAL, "peek_bytes of SIZE_MAX: expected -EINVAL");
	cr_assert_eq(ferry_iobuf_poke_bytes(&b, 1, abc, huge), -ENOSPC,
		     "poke_bytes of SIZE_MAX (pos + n wraps): expected -ENOSPC");
	expect_same_offs(&b, s, "zero-length and huge peek/poke");
}

Test(iobuf_bytes, unsafe_variants)
{
	uint8_t mem[MEM], out[8];
	struct ferry_iobuf b;

	pattern(mem);
	view(&b, mem, 2, LO, LO + 8, LO + 10);
	ferry_iobuf_unsafe_poke_bytes(&b, 3, abc, 5);
	cr_assert(!memcmp(mem + LO + 3, abc, 5), "unsafe_poke_bytes: expected \"abcde\" at lo + 3");
	expect_offs(&b, 2, LO, LO + 8, LO + 10, "unsafe_poke_bytes leaves the window");
	memset(out, 0, sizeof(out));
	ferry_iobuf_unsafe_peek_bytes(&b, 3, out, 5);
	cr_assert(!memcmp(out, abc, 5), "unsafe_peek_bytes: expected \"abcde\"");
	expect_offs(&b, 2, LO, LO + 8, LO + 10, "unsafe_peek_bytes leaves the window");

	ferry_iobuf_unsafe_fill_bytes(&b, abc, 5);
	cr_assert(!memcmp(mem + LO, abc, 5), "unsafe_fill_bytes: expected \"abcde\" at lo");
	expect_offs(&b, 2, LO + 5, LO + 8, LO + 10, "unsafe_fill_bytes advances lo by 5");
	ferry_iobuf_rewind(&b);
	ferry_iobuf_unsafe_advance(&b, LO - 2);
	memset(out, 0, sizeof(out));
	ferry_iobuf_unsafe_consume_bytes(&b, out, 5);
	cr_assert(!memcmp(out, abc, 5), "unsafe_consume_bytes: expected \"abcde\"");
	expect_offs(&b, 2, LO + 5, LO + 8, LO + 10, "unsafe_consume_bytes advances lo by 5");
}

/* A sequence a protocol writes: header, payload, flip, read back. */
Test(iobuf_bytes, write_then_read_a_record)
{
	uint8_t mem[MEM], out[5];
	struct ferry_iobuf b;
	uint16_t type;
	uint32_t len;

	ferry_iobuf_init(&b, mem, sizeof(mem));
	cr_assert_eq(ferry_iobuf_fill_be16(&b, 7), 0, "fill_be16: expected 0");
	cr_assert_eq(ferry_iobuf_fill_le32(&b, 5), 0, "fill_le32: expected 0");
	cr_assert_eq(ferry_iobuf_fill_bytes(&b, abc, 5), 0, "fill_bytes: expected 0");
	ferry_iobuf_flip_lo(&b);
	cr_assert_eq(ferry_iobuf_length(&b), 11, "after flip_lo: expected the 11 written bytes as window");
	cr_assert_eq(ferry_iobuf_consume_be16(&b, &type), 0, "consume_be16: expected 0");
	cr_assert_eq(ferry_iobuf_consume_le32(&b, &len), 0, "consume_le32: expected 0");
	cr_assert_eq(type, 7, "expected type 7");
	cr_assert_eq(len, 5, "expected len 5");
	cr_assert_eq(ferry_iobuf_consume_bytes(&b, out, len), 0, "consume_bytes: expected 0");
	cr_assert(!memcmp(out, abc, 5), "expected the payload back");
	cr_assert(ferry_iobuf_is_empty(&b), "expected the record read up");
}

/* ---- owned buffers: new, clone, free ------------------------------------------------------------ */

Test(iobuf_alloc, new_is_owned_and_zeroed)
{
	struct ferry_iobuf *b = ferry_iobuf_new(100);

	cr_assert_not_null(b, "ferry_iobuf_new(100): expected a buffer");
	cr_assert_not_null(b->data, "new: expected a region");
	expect_offs(b, 0, 0, 100, 100, "new(100): window = limits = [0, 100)");
	cr_assert(b->flags & FERRY_IOBUF_OWNED, "new: expected FERRY_IOBUF_OWNED");
	cr_assert_eq(b->flags & FERRY_IOBUF_TRUNCATED, 0, "new: expected not truncated");
	for (size_t i = 0; i < 100; i++)
		cr_assert_eq(b->data[i], 0, "new: expected byte %zu zeroed", i);
	ferry_iobuf_free(b);
}

Test(iobuf_alloc, clone_copies_limits_window_and_bytes)
{
	uint8_t mem[MEM];
	struct ferry_iobuf src, *c;
	struct offs s;

	pattern(mem);
	view(&src, mem, 3, 6, 15, 20);
	src.cookie = 42;
	s = offs_of(&src);
	c = ferry_iobuf_clone(&src);
	cr_assert_not_null(c, "clone: expected a buffer");
	expect_same_offs(&src, s, "clone leaves the source");
	cr_assert(c->flags & FERRY_IOBUF_OWNED, "clone of a borrowed view: expected FERRY_IOBUF_OWNED");
	cr_assert_neq(c->data, src.data, "clone: expected its own region");
	cr_assert_eq(ferry_iobuf_capacity(c), 17, "clone: expected the limits' size 17, got %zu", ferry_iobuf_capacity(c));
	cr_assert_eq(ferry_iobuf_length(c), 9, "clone: expected the window's size 9, got %zu", ferry_iobuf_length(c));
	cr_assert_eq(c->lo - c->lo_min, 3, "clone: expected the window at lo_min + 3");
	cr_assert(!memcmp(c->data + c->lo_min, mem + 3, 17), "clone: expected the bytes of the limits copied");
	cr_assert(!memcmp(ferry_iobuf_window(c), mem + 6, 9), "clone: expected the window's bytes copied");

	/* independent: writes to one do not show in the other */
	ferry_iobuf_poke_u8(c, 0, 0x01);
	cr_assert_eq(mem[6], 0x86, "a write to the clone must not reach the source");
	ferry_iobuf_reset(c);
	cr_assert_eq(ferry_iobuf_length(c), 17, "reset of the clone: expected window = its limits");
	ferry_iobuf_free(c);
}

Test(iobuf_alloc, clone_of_owned)
{
	struct ferry_iobuf *a = ferry_iobuf_new(32), *c;

	cr_assert_not_null(a, "new(32): expected a buffer");
	cr_assert_eq(ferry_iobuf_fill_be32(a, 0xdeadbeef), 0, "fill_be32: expected 0");
	c = ferry_iobuf_clone(a);
	cr_assert_not_null(c, "clone of an owned buffer: expected a buffer");
	cr_assert(c->flags & FERRY_IOBUF_OWNED, "clone: expected FERRY_IOBUF_OWNED");
	cr_assert_eq(c->lo - c->lo_min, 4, "clone: expected lo after the 4 bytes written");
	ferry_iobuf_rewind(c);
	uint32_t v = 0;
	cr_assert_eq(ferry_iobuf_consume_be32(c, &v), 0, "consume_be32 on the clone: expected 0");
	cr_assert_eq(v, 0xdeadbeef, "clone: expected the bytes copied (0xdeadbeef), got %#x", v);
	ferry_iobuf_free(a);
	ferry_iobuf_free(c);
}

/* A buffer written to its end (lo = hi = hi_max, the window empty): its clone still has every byte. */
Test(iobuf_alloc, clone_of_a_full_buffer_copies_its_bytes)
{
	struct ferry_iobuf *a = ferry_iobuf_new(8), *c;
	uint64_t v = 0;

	cr_assert_not_null(a, "new(8): expected a buffer");
	cr_assert_eq(ferry_iobuf_fill_be64(a, 0x0102030405060708ull), 0, "fill_be64: expected 0");
	cr_assert(ferry_iobuf_is_empty(a) && a->lo == a->hi_max, "filled to the end: lo = hi = hi_max");
	c = ferry_iobuf_clone(a);
	cr_assert_not_null(c, "clone of a full buffer: expected a buffer");
	expect_offs(c, 0, 8, 8, 8, "clone of a full buffer: the same offsets");
	ferry_iobuf_flip_lo(c);
	cr_assert_eq(ferry_iobuf_consume_be64(c, &v), 0, "consume_be64 on the clone: expected 0");
	cr_assert_eq(v, 0x0102030405060708ull, "clone: expected the 8 bytes written copied, got %#llx",
		     (unsigned long long)v);
	ferry_iobuf_free(a);
	ferry_iobuf_free(c);
}

/* A source that breaks lo_min <= lo <= hi <= hi_max, or NULL: NULL with EINVAL, the source untouched. */
Test(iobuf_alloc, clone_refuses_a_broken_invariant)
{
	static const size_t bad[][4] = { { 5, 4, 10, 20 }, { 0, 11, 10, 20 }, { 0, 5, 21, 20 } };
	uint8_t mem[MEM];
	struct ferry_iobuf src;

	pattern(mem);
	errno = 0;
	cr_assert_null(ferry_iobuf_clone(NULL), "clone(NULL): expected NULL");
	cr_assert_eq(errno, EINVAL, "clone(NULL): expected EINVAL, got %d", errno);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ferry_iobuf_init(&src, mem, sizeof(mem));
		src.lo_min = bad[i][0];
		src.lo = bad[i][1];
		src.hi = bad[i][2];
		src.hi_max = bad[i][3];
		errno = 0;
		cr_assert_null(ferry_iobuf_clone(&src), "clone of lo_min %zu lo %zu hi %zu hi_max %zu: expected NULL",
			       bad[i][0], bad[i][1], bad[i][2], bad[i][3]);
		cr_assert_eq(errno, EINVAL, "clone of a broken source %zu: expected EINVAL, got %d", i, errno);
		cr_assert(src.lo_min == bad[i][0] && src.lo == bad[i][1] && src.hi == bad[i][2] && src.hi_max == bad[i][3],
			  "clone of a broken source %zu: expected it untouched", i);
	}
}

Test(iobuf_alloc, free_null_and_borrowed)
{
	uint8_t mem[MEM];
	struct ferry_iobuf b, copy;

	ferry_iobuf_free(NULL);
	pattern(mem);
	ferry_iobuf_init(&b, mem, sizeof(mem));
	b.lo = 5;
	memcpy(&copy, &b, sizeof(b));
	ferry_iobuf_free(&b); /* a stack view of a stack region: freeing it would crash under ASan */
	cr_assert(!memcmp(&copy, &b, sizeof(b)), "free of a borrowed view: expected it left as it was");
	cr_assert_eq(mem[5], 0x85, "free of a borrowed view: expected the region left as it was");
}

Test(iobuf_alloc, many_new_and_free)
{
	for (size_t cap = 1; cap <= 4096; cap *= 2) {
		struct ferry_iobuf *b = ferry_iobuf_new(cap);

		cr_assert_not_null(b, "new(%zu): expected a buffer", cap);
		cr_assert_eq(ferry_iobuf_capacity(b), cap, "new(%zu): expected that capacity", cap);
		memset(b->data, 0xff, cap); /* the whole region is writable (ASan checks) */
		ferry_iobuf_free(b);
	}
}
