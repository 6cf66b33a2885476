/* SPDX-License-Identifier: MIT */
/* libferry-internal reactor hooks (hidden symbols, not part of the API). */
#ifndef FERRY_REACTOR_INTERNAL_H
#define FERRY_REACTOR_INTERNAL_H

#include <ferry/reactor.h>

/*
 * release(user) runs if the reactor is freed while w is still on it, so what
 * the watch's owner hangs on it (a loop and its buffers) is not leaked. It
 * runs during ferry_reactor_free() and must not call the reactor.
 */
void ferry_reactor__on_free(struct ferry_watch *w, void (*release)(void *user));

#endif
