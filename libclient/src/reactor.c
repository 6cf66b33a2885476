/* SPDX-License-Identifier: MIT */
/*
 * The reactor (epoll, level-triggered, and a heap of monotonic timers) and
 * ferry_stop (an eventfd written once). A watch deleted while its reactor
 * dispatches is only marked dead and freed when the outermost dispatch ends,
 * so a stale event for it is skipped safely.
 */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <ferry/reactor.h>

#include "reactor_internal.h"

#define DISPATCH_BATCH 64

struct ferry_watch {
	struct ferry_watch *prev, *next; /* live list, or next on the graveyard */
	ferry_reactor_cb cb;
	void (*release)(void *user); /* at ferry_reactor_free() while still on it */
	void *user;
	int fd;
	bool dead;
};

#define NS_PER_MS 1000000ull
/* Longest delay or period, so that deadlines (ns) never overflow: about 146 years. */
#define TIMER_MAX_MS ((1ull << 62) / NS_PER_MS)
#define NOT_ARMED UINT_MAX

struct ferry_timer {
	struct ferry_reactor *r;
	struct ferry_timer *prev, *next; /* every timer of r, armed or not */
	ferry_timer_cb cb;
	void *user;
	uint64_t deadline; /* ns on CLOCK_MONOTONIC */
	uint64_t period;   /* ns; 0: one-shot */
	uint64_t seq;	   /* arm order: equal deadlines fire in the order they were armed */
	unsigned int slot; /* index in r->heap, or NOT_ARMED */
};

struct ferry_reactor {
	int epfd;
	unsigned int nwatches;
	unsigned int depth;		 /* nested run_once calls in progress */
	struct ferry_watch *live;	 /* every watch on the reactor */
	struct ferry_watch *graveyard;	 /* deleted during dispatch, freed after it */
	struct ferry_watch *zombies;	 /* deleted, but epoll may still hold them: freed with r */
	/*
	 * Armed timers, a binary min-heap on (deadline, seq). It has room for
	 * every timer of r (grown by ferry_timer_new), so arming never allocates.
	 */
	struct ferry_timer **heap;
	unsigned int nheap, heap_cap;
	struct ferry_timer *timers; /* all of them, for ferry_reactor_free */
	unsigned int ntimers;
	uint64_t arm_seq;
};

struct ferry_reactor *ferry_reactor_new(void)
{
	struct ferry_reactor *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0) {
		int err = errno;

		free(r);
		errno = err;
		return NULL;
	}
	return r;
}

static void free_list(struct ferry_watch *w)
{
	while (w) {
		struct ferry_watch *next = w->next;

		free(w);
		w = next;
	}
}

void ferry_reactor_free(struct ferry_reactor *r)
{
	if (!r)
		return;
	for (struct ferry_watch *w = r->live; w; w = w->next)
		if (w->release)
			w->release(w->user);
	free_list(r->live);
	free_list(r->graveyard);
	free_list(r->zombies);
	while (r->timers) {
		struct ferry_timer *t = r->timers;

		r->timers = t->next;
		free(t);
	}
	free(r->heap);
	close(r->epfd);
	free(r);
}

int ferry_reactor_fd(const struct ferry_reactor *r)
{
	return r ? r->epfd : -EINVAL;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ms until the first armed timer's deadline, rounded up; -1 when none is armed. */
static int timer_wait_ms(const struct ferry_reactor *r)
{
	uint64_t now, deadline, ms;

	if (!r->nheap)
		return -1;
	deadline = r->heap[0]->deadline;
	now = now_ns();
	if (deadline <= now)
		return 0;
	ms = (deadline - now + NS_PER_MS - 1) / NS_PER_MS;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

int ferry_reactor_timeout(const struct ferry_reactor *r)
{
	/* watches need no timeout: the epoll fd itself tells when they have work */
	return r ? timer_wait_ms(r) : -1;
}

unsigned int ferry_reactor_watches(const struct ferry_reactor *r)
{
	return r ? r->nwatches : 0;
}

int ferry_reactor_add(struct ferry_reactor *r, int fd, uint32_t events, ferry_reactor_cb cb, void *user,
		      struct ferry_watch **out)
{
	struct epoll_event ev = { .events = events };
	struct ferry_watch *w;

	if (!r || !cb || fd < 0)
		return fd < 0 && r && cb ? -EBADF : -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->cb = cb;
	w->user = user;
	w->fd = fd;
	ev.data.ptr = w;
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		int err = -errno;

		free(w);
		return err;
	}
	w->next = r->live;
	if (r->live)
		r->live->prev = w;
	r->live = w;
	r->nwatches++;
	if (out)
		*out = w;
	return 0;
}

void ferry_reactor__on_free(struct ferry_watch *w, void (*release)(void *user))
{
	w->release = release;
}

int ferry_reactor_modify(struct ferry_reactor *r, struct ferry_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	if (!r || !w || w->dead)
		return -EINVAL;
	return epoll_ctl(r->epfd, EPOLL_CTL_MOD, w->fd, &ev) ? -errno : 0;
}

void ferry_reactor_del(struct ferry_reactor *r, struct ferry_watch *w)
{
	bool zombie;

	if (!r || !w || w->dead)
		return;
	/*
	 * Fails when the fd was closed before its del. epoll keeps a registration
	 * until the last reference to the file goes, so a closed fd whose file
	 * lives on (a dup, a fork) may still report events for w: keep w, marked
	 * dead, until the reactor is freed rather than let epoll point at freed memory.
	 */
	zombie = epoll_ctl(r->epfd, EPOLL_CTL_DEL, w->fd, NULL) != 0;
	w->dead = true;
	if (w->prev)
		w->prev->next = w->next;
	else
		r->live = w->next;
	if (w->next)
		w->next->prev = w->prev;
	r->nwatches--;
	if (zombie) {
		w->prev = NULL;
		w->next = r->zombies;
		r->zombies = w;
	} else if (r->depth) {
		w->prev = NULL;
		w->next = r->graveyard;
		r->graveyard = w;
	} else {
		free(w);
	}
}

/* ---- the timer heap ---- */

static bool timer_before(const struct ferry_timer *a, const struct ferry_timer *b)
{
	return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_place(struct ferry_reactor *r, struct ferry_timer *t, unsigned int i)
{
	r->heap[i] = t;
	t->slot = i;
}

static void sift_up(struct ferry_reactor *r, unsigned int i)
{
	struct ferry_timer *t = r->heap[i];

	while (i > 0) {
		unsigned int parent = (i - 1) / 2;

		if (!timer_before(t, r->heap[parent]))
			break;
		heap_place(r, r->heap[parent], i);
		i = parent;
	}
	heap_place(r, t, i);
}

static void sift_down(struct ferry_reactor *r, unsigned int i)
{
	struct ferry_timer *t = r->heap[i];

	for (;;) {
		unsigned int child = 2 * i + 1;

		if (child >= r->nheap)
			break;
		if (child + 1 < r->nheap && timer_before(r->heap[child + 1], r->heap[child]))
			child++;
		if (!timer_before(r->heap[child], t))
			break;
		heap_place(r, r->heap[child], i);
		i = child;
	}
	heap_place(r, t, i);
}

static void heap_remove(struct ferry_reactor *r, struct ferry_timer *t)
{
	unsigned int i = t->slot;
	struct ferry_timer *last = r->heap[--r->nheap];

	t->slot = NOT_ARMED;
	if (last == t)
		return;
	heap_place(r, last, i);
	if (i > 0 && timer_before(last, r->heap[(i - 1) / 2]))
		sift_up(r, i);
	else
		sift_down(r, i);
}

struct ferry_timer *ferry_timer_new(struct ferry_reactor *r, ferry_timer_cb cb, void *user)
{
	struct ferry_timer *t;

	if (!r || !cb) {
		errno = EINVAL;
		return NULL;
	}
	/* room in the heap for every timer of r, so that arming can never fail to allocate */
	if (r->ntimers == r->heap_cap) {
		unsigned int cap = r->heap_cap ? 2 * r->heap_cap : 8;
		struct ferry_timer **heap;

		if (cap <= r->heap_cap || cap > UINT_MAX / 2) {
			errno = ENOMEM;
			return NULL;
		}
		heap = realloc(r->heap, cap * sizeof(*heap));
		if (!heap)
			return NULL;
		r->heap = heap;
		r->heap_cap = cap;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->r = r;
	t->cb = cb;
	t->user = user;
	t->slot = NOT_ARMED;
	t->next = r->timers;
	if (r->timers)
		r->timers->prev = t;
	r->timers = t;
	r->ntimers++;
	return t;
}

int ferry_timer_arm(struct ferry_timer *t, uint64_t after_ms, uint64_t period_ms)
{
	struct ferry_reactor *r;

	if (!t || after_ms > TIMER_MAX_MS || period_ms > TIMER_MAX_MS)
		return -EINVAL;
	r = t->r;
	if (t->slot != NOT_ARMED)
		heap_remove(r, t);
	t->deadline = now_ns() + after_ms * NS_PER_MS;
	t->period = period_ms * NS_PER_MS;
	t->seq = r->arm_seq++;
	r->heap[r->nheap] = t;
	t->slot = r->nheap++;
	sift_up(r, t->slot);
	return 0;
}

void ferry_timer_disarm(struct ferry_timer *t)
{
	if (t && t->slot != NOT_ARMED)
		heap_remove(t->r, t);
}

bool ferry_timer_armed(const struct ferry_timer *t)
{
	return t && t->slot != NOT_ARMED;
}

void ferry_timer_free(struct ferry_timer *t)
{
	struct ferry_reactor *r;

	if (!t)
		return;
	r = t->r;
	ferry_timer_disarm(t);
	if (t->prev)
		t->prev->next = t->next;
	else
		r->timers = t->next;
	if (t->next)
		t->next->prev = t->prev;
	r->ntimers--;
	free(t);
}

/*
 * Runs the callbacks of the timers whose deadline passed before now (strictly:
 * one armed from a callback, due at the earliest now, waits for the next pass).
 * Each timer is requeued or disarmed before its callback runs and not touched
 * after it, so the callback may re-arm, disarm or free it, or any other timer.
 */
static int run_timers(struct ferry_reactor *r)
{
	uint64_t now;
	int ran = 0;

	if (!r->nheap)
		return 0;
	now = now_ns();
	while (r->nheap && r->heap[0]->deadline < now) {
		struct ferry_timer *t = r->heap[0];

		if (t->period) {
			/* the first deadline of first + k * period still ahead: missed periods fire once */
			t->deadline += ((now - t->deadline) / t->period + 1) * t->period;
			sift_down(r, 0);
		} else {
			heap_remove(r, t);
		}
		t->cb(t->user, t);
		ran++;
	}
	return ran;
}

int ferry_reactor_run_once(struct ferry_reactor *r, int timeout_ms)
{
	struct epoll_event evs[DISPATCH_BATCH];
	int n, ran = 0;

	if (!r)
		return -EINVAL;
	do {
		int wait = timeout_ms;

		if (r->nheap) {
			int t = timer_wait_ms(r);

			if (wait < 0 || t < wait)
				wait = t;
		}
		n = epoll_wait(r->epfd, evs, DISPATCH_BATCH, wait);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;

	r->depth++;
	for (int i = 0; i < n; i++) {
		struct ferry_watch *w = evs[i].data.ptr;

		if (w->dead)
			continue;
		w->cb(w->user, evs[i].events);
		ran++;
	}
	ran += run_timers(r);
	if (--r->depth == 0 && r->graveyard) {
		free_list(r->graveyard);
		r->graveyard = NULL;
	}
	return ran;
}

int ferry_reactor_run(struct ferry_reactor *r)
{
	if (!r)
		return -EINVAL;
	while (r->nwatches || r->nheap) {
		int ret = ferry_reactor_run_once(r, -1);

		if (ret < 0)
			return ret;
	}
	return 0;
}

struct ferry_stop {
	int efd;
	atomic_bool fired;
};

struct ferry_stop *ferry_stop_new(void)
{
	struct ferry_stop *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->efd < 0) {
		int err = errno;

		free(s);
		errno = err;
		return NULL;
	}
	atomic_init(&s->fired, false);
	return s;
}

void ferry_stop_free(struct ferry_stop *s)
{
	if (!s)
		return;
	close(s->efd);
	free(s);
}

/*
 * Async-signal-safe: a lock-free atomic exchange and one write(2). The
 * exchange makes the write happen once, so the counter stays 1 and the fd
 * stays readable (nobody reads it). errno is preserved for signal handlers.
 */
void ferry_stop_fire(struct ferry_stop *s)
{
	uint64_t one = 1;
	int saved = errno;

	if (!s || atomic_exchange(&s->fired, true))
		return;
	while (write(s->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	errno = saved;
}

bool ferry_stop_is_fired(const struct ferry_stop *s)
{
	return s && atomic_load(&((struct ferry_stop *)s)->fired);
}

int ferry_stop_fd(const struct ferry_stop *s)
{
	return s ? s->efd : -EINVAL;
}
