/* SPDX-License-Identifier: MIT */
/*
 * The reactor (epoll, level-triggered) and ferry_stop (an eventfd written once).
 * A watch deleted while its reactor dispatches is only marked dead and freed
 * when the outermost dispatch ends, so a stale event for it is skipped safely.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
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

struct ferry_reactor {
	int epfd;
	unsigned int nwatches;
	unsigned int depth;		 /* nested run_once calls in progress */
	struct ferry_watch *live;	 /* every watch on the reactor */
	struct ferry_watch *graveyard;	 /* deleted during dispatch, freed after it */
	struct ferry_watch *zombies;	 /* deleted, but epoll may still hold them: freed with r */
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
	close(r->epfd);
	free(r);
}

int ferry_reactor_fd(const struct ferry_reactor *r)
{
	return r ? r->epfd : -EINVAL;
}

int ferry_reactor_timeout(const struct ferry_reactor *r)
{
	(void)r;
	return -1; /* no timers of its own: only fds make work */
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

int ferry_reactor_run_once(struct ferry_reactor *r, int timeout_ms)
{
	struct epoll_event evs[DISPATCH_BATCH];
	int n, ran = 0;

	if (!r)
		return -EINVAL;
	do
		n = epoll_wait(r->epfd, evs, DISPATCH_BATCH, timeout_ms);
	while (n < 0 && errno == EINTR);
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
	while (r->nwatches) {
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
