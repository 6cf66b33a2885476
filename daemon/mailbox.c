/* SPDX-License-Identifier: MIT */
/* The SPSC mailbox of mailbox.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "mailbox.h"

int ferryd_mailbox_init(struct ferryd_mailbox *m, unsigned int size)
{
	memset(m, 0, sizeof(*m));
	if (!size || (size & (size - 1)))
		return -EINVAL;
	m->slots = calloc(size, sizeof(*m->slots));
	if (!m->slots)
		return -ENOMEM;
	m->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (m->efd < 0) {
		int err = -errno;

		free(m->slots);
		m->slots = NULL;
		return err;
	}
	m->mask = size - 1;
	return 0;
}

void ferryd_mailbox_destroy(struct ferryd_mailbox *m)
{
	if (!m->slots)
		return;
	close(m->efd);
	free(m->slots);
	memset(m, 0, sizeof(*m));
	m->efd = -1;
}

bool ferryd_mailbox_send(struct ferryd_mailbox *m, const struct ferryd_msg *msg)
{
	uint32_t p = m->prod; /* ours alone */
	uint64_t one = 1;

	if (p - m->cached_cons > m->mask) {
		m->cached_cons = __atomic_load_n(&m->cons, __ATOMIC_ACQUIRE);
		if (p - m->cached_cons > m->mask) {
			m->full++;
			return false;
		}
	}
	m->slots[p & m->mask] = *msg;
	__atomic_store_n(&m->prod, p + 1, __ATOMIC_RELEASE);
	/* Dekker with the consumer's check in recv: either it sees our message
	 * before it sleeps, or we see that it had taken everything before ours. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&m->cons, __ATOMIC_RELAXED) == p) {
		m->wakeups++;
		if (write(m->efd, &one, sizeof(one)) < 0) {
			/* EAGAIN: the counter is saturated, so the consumer is awake anyway */
		}
	}
	return true;
}

unsigned int ferryd_mailbox_recv(struct ferryd_mailbox *m, struct ferryd_msg *out, unsigned int max)
{
	uint32_t c = m->cons, p; /* cons is ours alone */
	unsigned int n = 0;
	uint64_t v;

	if (read(m->efd, &v, sizeof(v)) < 0) {
		/* EAGAIN: no wake-up pending; messages may be there all the same */
	}
	for (;;) {
		p = __atomic_load_n(&m->prod, __ATOMIC_ACQUIRE);
		while (c != p && n < max)
			out[n++] = m->slots[c++ & m->mask];
		__atomic_store_n(&m->cons, c, __ATOMIC_RELEASE);
		if (n == max)
			return n;
		/* Taken all we saw: anything sent meanwhile, whose sender saw the
		 * ring not empty and so did not wake us, is seen here. */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (__atomic_load_n(&m->prod, __ATOMIC_RELAXED) == c)
			return n;
	}
}
