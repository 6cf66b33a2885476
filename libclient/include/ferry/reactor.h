/* SPDX-License-Identifier: MIT */
/*
 * The reactor every loop runs on (epoll, level-triggered, plus monotonic
 * timers), and ferry_stop, the one-shot event that ends loops. A reactor can
 * run alone or be embedded in another event loop: it exposes one fd, a
 * timeout and a dispatch-once call, like libuv's
 * uv_backend_fd/uv_backend_timeout/uv_run(UV_RUN_NOWAIT).
 */
#ifndef FERRY_REACTOR_H
#define FERRY_REACTOR_H

#include <stdbool.h>
#include <stdint.h>

#include <ferry/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ferry_reactor;
struct ferry_watch;
struct ferry_timer; /* opaque, owned by its reactor */

/* Called with the epoll events (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, ...) that are ready. */
typedef void (*ferry_reactor_cb)(void *user, uint32_t events);

/*
 * A new reactor, or NULL with errno set. Not thread-safe: one thread runs a
 * reactor and registers on it (ferry_stop_fire() is the cross-thread way in).
 */
FERRY_API struct ferry_reactor *ferry_reactor_new(void);

/*
 * Frees the reactor, every watch and every timer still on it; their callbacks
 * are not called (timer pointers become invalid). Loops still registered end
 * without on_end and free the buffers they created. NULL is ignored.
 */
FERRY_API void ferry_reactor_free(struct ferry_reactor *r);

/*
 * The epoll fd: readable when ferry_reactor_run_once(r, 0) has fd work. Owned
 * by r. Timers do not make it readable: an embedding loop also sleeps at most
 * ferry_reactor_timeout(r).
 */
FERRY_API int ferry_reactor_fd(const struct ferry_reactor *r);

/*
 * How long, in ms, an embedding loop may sleep before calling run_once: the
 * time to the next armed timer, rounded up (0 when one is due); -1 = no armed
 * timer, sleep until the fd is readable. At most INT_MAX.
 */
FERRY_API int ferry_reactor_timeout(const struct ferry_reactor *r);

/*
 * Waits up to timeout_ms (0 = don't block, -1 = forever), but never past the
 * next armed timer's deadline, for ready fds; then calls each ready watch's
 * callback once, then each expired timer's callback once. Returns the number
 * of callbacks run (watches and timers), or -errno (EINTR is retried inside).
 */
FERRY_API int ferry_reactor_run_once(struct ferry_reactor *r, int timeout_ms);

/* Runs until no watch and no armed timer is left on r. 0, or -errno. */
FERRY_API int ferry_reactor_run(struct ferry_reactor *r);

/* Number of watches on r. */
FERRY_API unsigned int ferry_reactor_watches(const struct ferry_reactor *r);

/*
 * Watches fd for events (level-triggered). The reactor does not own fd.
 * *out (if non-NULL) receives the watch. 0, or -errno (-EEXIST if fd is
 * already watched on r: dup() it to watch it twice).
 */
FERRY_API int ferry_reactor_add(struct ferry_reactor *r, int fd, uint32_t events, ferry_reactor_cb cb,
				void *user, struct ferry_watch **out);

/* Changes the events a watch waits for. 0, or -errno. */
FERRY_API int ferry_reactor_modify(struct ferry_reactor *r, struct ferry_watch *w, uint32_t events);

/*
 * Removes and frees a watch; its callback is not called again, even if it was
 * ready in the current dispatch. Safe from inside any callback, including its own.
 */
FERRY_API void ferry_reactor_del(struct ferry_reactor *r, struct ferry_watch *w);

/*
 * Timers: CLOCK_MONOTONIC, millisecond resolution, kept in a heap on the
 * reactor (arm, disarm and expiry are O(log n)). A timer belongs to the
 * reactor it was made on: ferry_timer_free() or ferry_reactor_free() frees
 * it. Like the rest of the reactor they are not thread-safe: use them only on
 * the thread that runs r. Arming, disarming and freeing any timer (and adding
 * or deleting any watch) is safe from inside any callback of r, including the
 * timer's own.
 */

/* Called once per expiry, from ferry_reactor_run_once() on r's thread. */
typedef void (*ferry_timer_cb)(void *user, struct ferry_timer *t);

/* A disarmed timer on r (NULL with errno set on failure). Not thread-safe: r's thread only. */
FERRY_API struct ferry_timer *ferry_timer_new(struct ferry_reactor *r, ferry_timer_cb cb, void *user);

/*
 * Arms (or re-arms) t: the first fire after after_ms on CLOCK_MONOTONIC, then
 * every period_ms (0: one-shot, disarmed once fired). Periodic deadlines are
 * first + k * period (no drift); periods missed while the reactor was busy
 * fire once, then the next deadline is the first one still ahead. A timer
 * armed from a callback never fires in the same run_once pass. 0, or -EINVAL
 * (t NULL, or a time so far ahead that it cannot be represented).
 */
FERRY_API int ferry_timer_arm(struct ferry_timer *t, uint64_t after_ms, uint64_t period_ms);

/* Disarms t (its callback will not run until armed again). NULL and disarmed timers are ignored. */
FERRY_API void ferry_timer_disarm(struct ferry_timer *t);

/* True while t is armed (a one-shot stops being armed just before its callback runs). */
FERRY_API bool ferry_timer_armed(const struct ferry_timer *t);

/* Disarms and frees t; safe from any callback of r, including t's own. NULL is ignored. */
FERRY_API void ferry_timer_free(struct ferry_timer *t);

/*
 * ferry_stop: a one-shot event, eventfd-backed. Once fired it stays fired.
 * ferry_stop_fire() is thread-safe and async-signal-safe; the others are thread-safe.
 */
struct ferry_stop;

/* NULL with errno set on failure. */
FERRY_API struct ferry_stop *ferry_stop_new(void);
/* NULL is ignored. Loops using it must have ended. */
FERRY_API void ferry_stop_free(struct ferry_stop *s);
FERRY_API void ferry_stop_fire(struct ferry_stop *s);
FERRY_API bool ferry_stop_is_fired(const struct ferry_stop *s);
/* An fd that becomes (and stays) readable once fired; owned by s, never read it. */
FERRY_API int ferry_stop_fd(const struct ferry_stop *s);

#ifdef __cplusplus
}
#endif
#endif
