/* SPDX-License-Identifier: MIT */
/*
 * A mailbox between two threads: a single-producer, single-consumer ring of
 * fixed-size messages and an eventfd that wakes the consumer's reactor only
 * when the ring goes from empty to not empty (the consumer drains it whole
 * before it sleeps). No lock; the producer's and the consumer's indices live
 * on their own cache lines.
 */
#ifndef FERRYD_MAILBOX_H
#define FERRYD_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One message: a kind and what it carries. */
struct ferryd_msg {
	uint32_t kind;
	uint32_t arg;
	uint64_t seq;
	void *ptr;
	uint8_t data[40];
};

struct ferryd_mailbox {
	/* the producer's line */
	uint32_t prod __attribute__((aligned(64)));
	uint32_t cached_cons;
	/* the consumer's line */
	uint32_t cons __attribute__((aligned(64)));
	/* set at creation, read by both */
	uint32_t mask __attribute__((aligned(64)));
	int efd;
	struct ferryd_msg *slots;
	uint64_t wakeups, full; /* producer side: eventfd writes, sends refused for want of room */
};

/* A mailbox of size messages (a power of two). 0 or -errno. */
int ferryd_mailbox_init(struct ferryd_mailbox *m, unsigned int size);
void ferryd_mailbox_destroy(struct ferryd_mailbox *m);

/* Producer: copies msg in, and wakes the consumer if the ring was empty. false when full (counted in full). */
bool ferryd_mailbox_send(struct ferryd_mailbox *m, const struct ferryd_msg *msg);

/*
 * Consumer: takes up to max messages into out, and clears the eventfd. The
 * consumer must call it until it returns fewer than max before it sleeps:
 * a message that arrives meanwhile is then taken, or has woken it again.
 */
unsigned int ferryd_mailbox_recv(struct ferryd_mailbox *m, struct ferryd_msg *out, unsigned int max);

/* The eventfd to watch (readable after a wake-up); ferryd_mailbox_recv() empties it. */
static inline int ferryd_mailbox_fd(const struct ferryd_mailbox *m)
{
	return m->efd;
}

#endif
