/* SPDX-License-Identifier: MIT */
/*
 * One queue's UMEM: its frames, and where each one is. Exactly one place per
 * frame at any time (free list, kernel, a callback, kept by a handler, TX),
 * with a counter per place, so the accounting can be checked whole. Single
 * threaded: the worker that owns the queue.
 */
#ifndef FERRYD_UMEM_H
#define FERRYD_UMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ferry/iobuf.h>

enum ferryd_frame_state {
	FERRYD_FRAME_FREE,	   /* on the free list */
	FERRYD_FRAME_KERNEL,	   /* on the fill ring, in the kernel, or on the RX ring not yet consumed */
	FERRYD_FRAME_USER,	   /* in a callback */
	FERRYD_FRAME_KEPT,	   /* a callback replaced it in its array: the handler holds it until release */
	FERRYD_FRAME_TX,	   /* waiting for the TX ring, on it, or waiting for its completion */
	FERRYD_FRAME_USER_RELEASED, /* in a callback that already released it (after replacing it): freed when it returns */
	FERRYD_FRAME_NSTATES,
};

struct ferryd_umem {
	uint8_t *area;
	size_t area_len;
	int memfd; /* the area's; sealed so that only ferryd's mapping may write it */
	bool has_memfd;
	uint32_t nframes, frame_size, frame_shift;
	uint32_t *free_list, nfree;
	uint8_t *state;		  /* enum ferryd_frame_state per frame */
	struct ferry_iobuf *iob;  /* one per frame: a kept frame's iobuf stays valid */
	uint32_t n_kernel, n_user, n_tx; /* frames in each place but the free list */
};

/* nframes frames of frame_size bytes (2048 or 4096), all free. 0 or -errno with a reason in why. */
int ferryd_umem_init(struct ferryd_umem *u, uint32_t nframes, uint32_t frame_size, char *why, size_t whylen);
void ferryd_umem_destroy(struct ferryd_umem *u);

static inline uint64_t ferryd_umem_addr(const struct ferryd_umem *u, uint32_t fi)
{
	return (uint64_t)fi << u->frame_shift;
}

/* A free frame, now in state st (KERNEL or TX), or false when none is free. */
static inline bool ferryd_umem_take(struct ferryd_umem *u, enum ferryd_frame_state st, uint32_t *fi)
{
	if (!u->nfree)
		return false;
	*fi = u->free_list[--u->nfree];
	u->state[*fi] = (uint8_t)st;
	if (st == FERRYD_FRAME_KERNEL)
		u->n_kernel++;
	else
		u->n_tx++;
	return true;
}

/* A frame (in state from: USER/KEPT/USER_RELEASED, KERNEL or TX) back on the free list. */
static inline void ferryd_umem_put(struct ferryd_umem *u, uint32_t fi)
{
	switch (u->state[fi]) {
	case FERRYD_FRAME_KERNEL:
		u->n_kernel--;
		break;
	case FERRYD_FRAME_TX:
		u->n_tx--;
		break;
	default:
		u->n_user--;
		break;
	}
	u->state[fi] = FERRYD_FRAME_FREE;
	u->free_list[u->nfree++] = fi;
}

/* A frame the kernel gave back on the RX ring is now in a callback. */
static inline void ferryd_umem_to_user(struct ferryd_umem *u, uint32_t fi)
{
	u->state[fi] = FERRYD_FRAME_USER;
	u->n_kernel--;
	u->n_user++;
}

/* The frame index of a UMEM address, or UINT32_MAX when it names no frame. */
static inline uint32_t ferryd_umem_frame(const struct ferryd_umem *u, uint64_t addr)
{
	uint64_t fi = addr >> u->frame_shift;

	return fi < u->nframes ? (uint32_t)fi : UINT32_MAX;
}

/* The frame index of one of this UMEM's iobufs, or UINT32_MAX when b is not one. */
uint32_t ferryd_umem_iobuf_frame(const struct ferryd_umem *u, const struct ferry_iobuf *b);

/*
 * Every frame in exactly one place: the states agree with the counters, the
 * free list holds free frames only, and the places add up. 0, or -EUCLEAN
 * (logged, naming queue qid).
 */
int ferryd_umem_check(const struct ferryd_umem *u, unsigned int qid);

#endif
