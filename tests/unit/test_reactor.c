/* SPDX-License-Identifier: MIT */
/* The reactor (add/modify/del, dispatch, embedding) and ferry_stop. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/time.h>
#include <unistd.h>

#include <ferry/reactor.h>

#include "netns.h"

struct hit {
	struct ferry_reactor *r;
	struct ferry_watch *self, *victim;
	unsigned int calls;
	uint32_t events;
	bool del_self, del_victim;
};

static void on_hit(void *user, uint32_t events)
{
	struct hit *h = user;

	h->calls++;
	h->events = events;
	if (h->del_victim && h->victim) {
		ferry_reactor_del(h->r, h->victim);
		h->victim = NULL;
	}
	if (h->del_self) {
		ferry_reactor_del(h->r, h->self);
		h->self = NULL;
	}
}

static void make_pipe(int p[2])
{
	cr_assert_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0, "pipe");
}

static void put_byte(int fd)
{
	cr_assert_eq(write(fd, "x", 1), 1, "write a byte");
}

Test(reactor, add_modify_del)
{
	struct ferry_reactor *r = ferry_reactor_new();
	struct hit h = { .r = r };
	struct ferry_watch *w = NULL, *wd = NULL;
	int p[2], dupfd;

	cr_assert(r, "ferry_reactor_new");
	make_pipe(p);
	cr_expect_geq(ferry_reactor_fd(r), 0, "an epoll fd");
	cr_expect_eq(ferry_reactor_timeout(r), -1, "no internal timers: timeout -1");
	cr_assert_eq(ferry_reactor_add(r, p[0], EPOLLIN, on_hit, &h, &w), 0, "add");
	cr_expect_eq(ferry_reactor_watches(r), 1, "one watch");
	cr_expect_eq(ferry_reactor_add(r, p[0], EPOLLIN, on_hit, &h, NULL), -EEXIST, "same fd twice: -EEXIST");
	dupfd = dup(p[0]);
	cr_expect_eq(ferry_reactor_add(r, dupfd, EPOLLIN, on_hit, &h, &wd), 0, "a dup can be watched");
	cr_expect_eq(ferry_reactor_watches(r), 2, "two watches");
	cr_expect_eq(ferry_reactor_add(r, -1, EPOLLIN, on_hit, &h, NULL), -EBADF, "fd -1: -EBADF");
	cr_expect_eq(ferry_reactor_add(r, p[0], EPOLLIN, NULL, &h, NULL), -EINVAL, "no callback: -EINVAL");
	/* epoll keeps a closed dup's registration while the file lives on: del before close */
	ferry_reactor_del(r, wd);
	close(dupfd);

	cr_expect_eq(ferry_reactor_run_once(r, 0), 0, "nothing ready: 0 callbacks");
	put_byte(p[1]);
	cr_expect_eq(ferry_reactor_run_once(r, 0), 1, "readable: one callback");
	cr_expect(h.events & EPOLLIN, "EPOLLIN reported");
	cr_expect_eq(ferry_reactor_run_once(r, 0), 1, "level-triggered: still readable, called again");

	cr_assert_eq(ferry_reactor_modify(r, w, 0), 0, "modify to no events");
	cr_expect_eq(ferry_reactor_run_once(r, 0), 0, "no events asked: no callback although readable");
	cr_assert_eq(ferry_reactor_modify(r, w, EPOLLIN), 0, "modify back");
	cr_expect_eq(ferry_reactor_run_once(r, 0), 1, "readable again");

	ferry_reactor_del(r, w);
	cr_expect_eq(ferry_reactor_watches(r), 0, "del removes the watch");
	h.calls = 0;
	cr_expect_eq(ferry_reactor_run_once(r, 0), 0, "deleted watch is not called");
	cr_expect_eq(h.calls, 0, "no calls after del");
	cr_assert_eq(ferry_reactor_add(r, p[0], EPOLLIN, on_hit, &h, NULL), 0, "add again after del");
	ferry_reactor_free(r); /* frees the watch still on it, without calling it */
	cr_expect_eq(h.calls, 0, "free calls no callback");
	ferry_reactor_free(NULL);
	close(p[0]);
	close(p[1]);
}

/* Two ready watches; whichever runs first deletes the other, which must not run. */
Test(reactor, del_other_ready_watch_from_callback)
{
	struct ferry_reactor *r = ferry_reactor_new();
	struct hit a = { .r = r, .del_victim = true }, b = { .r = r, .del_victim = true };
	int pa[2], pb[2], ret;

	make_pipe(pa);
	make_pipe(pb);
	cr_assert_eq(ferry_reactor_add(r, pa[0], EPOLLIN, on_hit, &a, &a.self), 0, "add a");
	cr_assert_eq(ferry_reactor_add(r, pb[0], EPOLLIN, on_hit, &b, &b.self), 0, "add b");
	a.victim = b.self;
	b.victim = a.self;
	put_byte(pa[1]);
	put_byte(pb[1]);
	ret = ferry_reactor_run_once(r, 1000);
	cr_expect_eq(ret, 1, "one callback: the other watch was deleted before its turn (ran %d)", ret);
	cr_expect_eq(a.calls + b.calls, 1, "exactly one of the two ran (a %u, b %u)", a.calls, b.calls);
	cr_expect_eq(ferry_reactor_watches(r), 1, "one watch left");
	ferry_reactor_free(r);
	close(pa[0]);
	close(pa[1]);
	close(pb[0]);
	close(pb[1]);
}

Test(reactor, del_self_from_callback_and_run_ends)
{
	struct ferry_reactor *r = ferry_reactor_new();
	struct hit a = { .r = r, .del_self = true }, b = { .r = r, .del_self = true };
	int pa[2], pb[2];

	make_pipe(pa);
	make_pipe(pb);
	cr_assert_eq(ferry_reactor_add(r, pa[0], EPOLLIN, on_hit, &a, &a.self), 0, "add a");
	cr_assert_eq(ferry_reactor_add(r, pb[0], EPOLLIN, on_hit, &b, &b.self), 0, "add b");
	put_byte(pa[1]);
	put_byte(pb[1]);
	cr_expect_eq(ferry_reactor_run(r), 0, "run returns once no watch is left");
	cr_expect_eq(a.calls, 1, "a ran once and deleted itself");
	cr_expect_eq(b.calls, 1, "b ran once and deleted itself");
	cr_expect_eq(ferry_reactor_watches(r), 0, "no watches");
	cr_expect_eq(ferry_reactor_run(r), 0, "run with no watches returns at once");
	ferry_reactor_free(r);
	close(pa[0]);
	close(pa[1]);
	close(pb[0]);
	close(pb[1]);
}

/* A watch deleted and its fd number reused by a new watch in the same dispatch. */
struct reuse {
	struct ferry_reactor *r;
	struct ferry_watch *victim;
	int victim_fd, victim_wr;
	struct hit fresh;
	unsigned int calls;
};

static void on_reuse(void *user, uint32_t events)
{
	struct reuse *u = user;
	int p[2];

	(void)events;
	if (u->calls++)
		return;
	ferry_reactor_del(u->r, u->victim);
	close(u->victim_fd);
	close(u->victim_wr);
	cr_assert_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0, "pipe");
	u->victim_fd = p[0];
	u->victim_wr = p[1];
	cr_assert_eq(ferry_reactor_add(u->r, p[0], EPOLLIN, on_hit, &u->fresh, NULL), 0, "re-add on a new fd");
}

Test(reactor, del_then_add_in_same_dispatch)
{
	struct ferry_reactor *r = ferry_reactor_new();
	struct reuse u = { .r = r };
	struct hit old = { 0 };
	int pa[2], pb[2];

	make_pipe(pa);
	make_pipe(pb);
	u.victim_fd = pb[0];
	u.victim_wr = pb[1];
	cr_assert_eq(ferry_reactor_add(r, pb[0], EPOLLIN, on_hit, &old, &u.victim), 0, "add victim");
	cr_assert_eq(ferry_reactor_add(r, pa[0], EPOLLIN, on_reuse, &u, NULL), 0, "add deleter");
	put_byte(pa[1]);
	put_byte(pb[1]);
	ferry_reactor_run_once(r, 1000);
	cr_expect_eq(u.calls, 1, "deleter ran");
	/* if the victim ran first it ran once; it never runs after its del */
	cr_expect_leq(old.calls, 1, "the deleted watch never runs after del");
	cr_expect_eq(u.fresh.calls, 0, "the new watch has nothing to read yet");
	put_byte(u.victim_wr);
	old.calls = 0;
	ferry_reactor_run_once(r, 1000);
	cr_expect_eq(u.fresh.calls, 1, "the new watch works");
	cr_expect_eq(old.calls, 0, "the old one stays gone");
	ferry_reactor_free(r);
	close(pa[0]);
	close(pa[1]);
	close(u.victim_fd);
	close(u.victim_wr);
}

Test(reactor, run_once_zero_never_blocks)
{
	struct ferry_reactor *r = ferry_reactor_new();
	struct hit h = { .r = r };
	uint64_t t0;
	int p[2];

	make_pipe(p);
	cr_assert_eq(ferry_reactor_add(r, p[0], EPOLLIN, on_hit, &h, NULL), 0, "add");
	t0 = ferry_test_now_ms();
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(ferry_reactor_run_once(r, 0), 0, "idle: no callbacks");
	cr_expect_lt(ferry_test_now_ms() - t0, 500, "1000 non-blocking dispatches take well under 500 ms");
	t0 = ferry_test_now_ms();
	cr_expect_eq(ferry_reactor_run_once(r, 50), 0, "a 50 ms wait times out with 0");
	cr_expect_geq(ferry_test_now_ms() - t0, 40, "and does wait");
	ferry_reactor_free(r);
	close(p[0]);
	close(p[1]);
}

static void *write_later(void *arg)
{
	usleep(30 * 1000);
	if (write(*(int *)arg, "y", 1) != 1)
		return (void *)1;
	return NULL;
}

/* libuv's test-embed: an outer loop polls the reactor's fd, then dispatches once without blocking. */
Test(reactor, embedded_in_outer_epoll_and_poll)
{
	struct ferry_reactor *r = ferry_reactor_new();
	struct hit h = { .r = r };
	struct epoll_event ev = { .events = EPOLLIN }, out;
	struct pollfd pfd;
	pthread_t t;
	int p[2], outer, n;

	make_pipe(p);
	cr_assert_eq(ferry_reactor_add(r, p[0], EPOLLIN, on_hit, &h, NULL), 0, "add");
	outer = epoll_create1(EPOLL_CLOEXEC);
	cr_assert_eq(epoll_ctl(outer, EPOLL_CTL_ADD, ferry_reactor_fd(r), &ev), 0, "outer epoll watches the reactor");

	cr_expect_eq(epoll_wait(outer, &out, 1, 0), 0, "idle reactor: its fd is not readable");
	pthread_create(&t, NULL, write_later, &p[1]);
	n = epoll_wait(outer, &out, 1, ferry_reactor_timeout(r) < 0 ? 5000 : ferry_reactor_timeout(r));
	pthread_join(t, NULL);
	cr_expect_eq(n, 1, "the reactor fd became readable in the outer epoll");
	cr_expect_eq(ferry_reactor_run_once(r, 0), 1, "then one non-blocking dispatch runs the watch");
	cr_expect_eq(h.calls, 1, "the watch ran once");

	/* the same with poll(2) */
	pfd = (struct pollfd){ .fd = ferry_reactor_fd(r), .events = POLLIN };
	cr_expect_eq(poll(&pfd, 1, 1000), 1, "poll sees the reactor readable (byte still in the pipe)");
	cr_expect_eq(ferry_reactor_run_once(r, 0), 1, "dispatch once");
	{
		char c;

		cr_assert_eq(read(p[0], &c, 1), 1, "drain");
	}
	cr_expect_eq(poll(&pfd, 1, 0), 0, "drained: the reactor fd is quiet again");
	close(outer);
	ferry_reactor_free(r);
	close(p[0]);
	close(p[1]);
}

static void on_nested(void *user, uint32_t events)
{
	struct hit *h = user;

	(void)events;
	h->calls++;
	/* a callback may dispatch its reactor again; deletes stay deferred to the outermost */
	if (h->calls == 1) {
		ferry_reactor_del(h->r, h->victim);
		ferry_reactor_run_once(h->r, 0);
	}
}

Test(reactor, nested_run_once_with_del)
{
	struct ferry_reactor *r = ferry_reactor_new();
	struct hit a = { .r = r }, b = { .r = r };
	int pa[2], pb[2];

	make_pipe(pa);
	make_pipe(pb);
	cr_assert_eq(ferry_reactor_add(r, pb[0], EPOLLIN, on_hit, &b, &a.victim), 0, "add b");
	cr_assert_eq(ferry_reactor_add(r, pa[0], EPOLLIN, on_nested, &a, NULL), 0, "add a");
	put_byte(pa[1]);
	put_byte(pb[1]);
	ferry_reactor_run_once(r, 1000);
	cr_expect_geq(a.calls, 1, "a ran");
	cr_expect_leq(b.calls, 1, "b ran at most before its del");
	cr_expect_eq(ferry_reactor_watches(r), 1, "one watch left");
	ferry_reactor_free(r);
	close(pa[0]);
	close(pa[1]);
	close(pb[0]);
	close(pb[1]);
}

/* ---- ferry_stop ---- */

static struct ferry_stop *g_stop;

static void on_sigalrm(int sig)
{
	(void)sig;
	ferry_stop_fire(g_stop);
}

static void *fire_later(void *arg)
{
	usleep(20 * 1000);
	ferry_stop_fire(arg);
	return NULL;
}

Test(reactor_stop, fire_from_thread_and_fd_stays_readable)
{
	struct ferry_stop *s = ferry_stop_new();
	struct pollfd pfd;
	pthread_t t;

	cr_assert(s, "ferry_stop_new");
	pfd = (struct pollfd){ .fd = ferry_stop_fd(s), .events = POLLIN };
	cr_expect(!ferry_stop_is_fired(s), "not fired at first");
	cr_expect_eq(poll(&pfd, 1, 0), 0, "fd quiet before fire");
	pthread_create(&t, NULL, fire_later, s);
	cr_expect_eq(poll(&pfd, 1, 5000), 1, "fd readable once fired from another thread");
	pthread_join(t, NULL);
	cr_expect(ferry_stop_is_fired(s), "fired");
	ferry_stop_fire(s);
	cr_expect_eq(poll(&pfd, 1, 0), 1, "stays readable, fire twice is harmless");
	ferry_stop_free(s);
	ferry_stop_free(NULL);
	cr_expect(!ferry_stop_is_fired(NULL), "NULL is never fired");
}

Test(reactor_stop, fire_from_signal_handler_wakes_reactor)
{
	struct ferry_reactor *r = ferry_reactor_new();
	struct sigaction sa = { .sa_handler = on_sigalrm };
	struct itimerval it = { .it_value = { .tv_usec = 20 * 1000 } };
	struct hit h = { .r = r, .del_self = true };
	int fd;

	g_stop = ferry_stop_new();
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL); /* no SA_RESTART: epoll_wait gets EINTR and must retry */
	fd = dup(ferry_stop_fd(g_stop));
	cr_assert_eq(ferry_reactor_add(r, fd, EPOLLIN, on_hit, &h, &h.self), 0, "watch a dup of the stop fd");
	setitimer(ITIMER_REAL, &it, NULL);
	cr_expect_eq(ferry_reactor_run(r), 0, "run ends when the stop's watch deletes itself");
	cr_expect_eq(h.calls, 1, "the stop watch ran once");
	cr_expect(ferry_stop_is_fired(g_stop), "fired by the handler");
	signal(SIGALRM, SIG_DFL);
	close(fd);
	ferry_reactor_free(r);
	ferry_stop_free(g_stop);
}

/* Closing a watched dup before its del: epoll still holds the registration (the file lives on). */
Test(reactor, del_after_close_of_a_dup_is_safe)
{
	struct ferry_reactor *r = ferry_reactor_new();
	struct hit h = { .r = r };
	struct ferry_watch *w;
	int p[2], d;

	make_pipe(p);
	d = dup(p[0]);
	cr_assert_eq(ferry_reactor_add(r, d, EPOLLIN, on_hit, &h, &w), 0, "watch the dup");
	close(d);
	ferry_reactor_del(r, w); /* EPOLL_CTL_DEL fails: the watch must not be freed under epoll */
	cr_expect_eq(ferry_reactor_watches(r), 0, "the watch is gone from the count");
	put_byte(p[1]);
	cr_expect_eq(ferry_reactor_run_once(r, 0), 0, "the stale registration reports, but no callback runs");
	cr_expect_eq(h.calls, 0, "never called after del");
	ferry_reactor_free(r);
	close(p[0]);
	close(p[1]);
}
