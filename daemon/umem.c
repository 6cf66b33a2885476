/* SPDX-License-Identifier: MIT */
/* A queue's UMEM and its frame accounting (umem.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <syslog.h>
#include <unistd.h>

#include "ferryd.h"
#include "umem.h"

int ferryd_umem_init(struct ferryd_umem *u, uint32_t nframes, uint32_t frame_size, char *why, size_t whylen)
{
	int err;

	memset(u, 0, sizeof(*u));
	u->nframes = nframes;
	u->frame_size = frame_size;
	u->frame_shift = frame_size == 4096 ? 12 : 11;
	u->area_len = (size_t)nframes * frame_size;
	/*
	 * In a memfd, so clients of a service that shares its frames can map it
	 * (zero-copy hand-off). Sealed at once: never resized, and mapped
	 * writable by nobody but this mapping (F_SEAL_FUTURE_WRITE also refuses
	 * write(2) and hole punching through the fd).
	 */
	u->memfd = memfd_create("ferry-umem", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (u->memfd < 0)
		goto sys;
	u->has_memfd = true;
	if (ftruncate(u->memfd, (off_t)u->area_len))
		goto sys;
	u->area = mmap(NULL, u->area_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->memfd, 0);
	if (u->area == MAP_FAILED) {
		u->area = NULL;
		goto sys;
	}
	if (fcntl(u->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL))
		goto sys;
	u->free_list = calloc(nframes, sizeof(*u->free_list));
	u->state = calloc(nframes, sizeof(*u->state));
	u->iob = calloc(nframes, sizeof(*u->iob));
	if (!u->free_list || !u->state || !u->iob) {
		ferryd_umem_destroy(u);
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	for (uint32_t fi = 0; fi < nframes; fi++)
		u->free_list[u->nfree++] = nframes - 1 - fi; /* frame 0 handed out first */
	return 0;
sys:
	err = -errno;
	snprintf(why, whylen, "%zu bytes of UMEM: %s", u->area_len, strerror(-err));
	ferryd_umem_destroy(u);
	return err;
}

void ferryd_umem_destroy(struct ferryd_umem *u)
{
	if (u->area)
		munmap(u->area, u->area_len);
	if (u->has_memfd)
		close(u->memfd);
	free(u->free_list);
	free(u->state);
	free(u->iob);
	memset(u, 0, sizeof(*u));
}

uint32_t ferryd_umem_iobuf_frame(const struct ferryd_umem *u, const struct ferry_iobuf *b)
{
	uintptr_t p = (uintptr_t)b, lo = (uintptr_t)u->iob, hi = (uintptr_t)(u->iob + u->nframes);

	if (p < lo || p >= hi || (p - lo) % sizeof(*u->iob))
		return UINT32_MAX;
	return (uint32_t)((p - lo) / sizeof(*u->iob));
}

int ferryd_umem_check(const struct ferryd_umem *u, unsigned int qid)
{
	uint32_t count[FERRYD_FRAME_NSTATES] = { 0 };
	int ret = 0;

	for (uint32_t fi = 0; fi < u->nframes; fi++) {
		if (u->state[fi] >= FERRYD_FRAME_NSTATES) {
			ferryd_log(LOG_ERR, "queue %u: frame %u in no known state (%u)", qid, fi, u->state[fi]);
			ret = -EUCLEAN;
			continue;
		}
		count[u->state[fi]]++;
	}
	for (uint32_t k = 0; k < u->nfree; k++)
		if (u->free_list[k] >= u->nframes || u->state[u->free_list[k]] != FERRYD_FRAME_FREE) {
			ferryd_log(LOG_ERR, "queue %u: free list entry %u is frame %u, not free", qid, k, u->free_list[k]);
			ret = -EUCLEAN;
			break;
		}
	if (count[FERRYD_FRAME_FREE] != u->nfree || count[FERRYD_FRAME_KERNEL] != u->n_kernel ||
	    count[FERRYD_FRAME_USER] + count[FERRYD_FRAME_KEPT] + count[FERRYD_FRAME_USER_RELEASED] != u->n_user ||
	    count[FERRYD_FRAME_TX] != u->n_tx || u->nfree + u->n_kernel + u->n_user + u->n_tx != u->nframes) {
		ferryd_log(LOG_ERR,
			   "queue %u: frames out of balance: states free %u kernel %u user %u kept %u tx %u; "
			   "counted free %u kernel %u user %u tx %u; total %u",
			   qid, count[FERRYD_FRAME_FREE], count[FERRYD_FRAME_KERNEL], count[FERRYD_FRAME_USER],
			   count[FERRYD_FRAME_KEPT], count[FERRYD_FRAME_TX], u->nfree, u->n_kernel, u->n_user, u->n_tx,
			   u->nframes);
		ret = -EUCLEAN;
	}
	return ret;
}
