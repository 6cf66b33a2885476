/* SPDX-License-Identifier: MIT */
/*
 * ferryd under faults, while the peer sends: clients SIGKILLed a hundred
 * times in a row, ferryd itself SIGKILLed and restarted under reconnecting
 * clients, the interface going down and up or away beneath attached
 * clients, rings at the smallest and largest sizes ferryd accepts, a
 * session whose memory cannot be made (FERRYD_FAULTS=attach-nomem), and a
 * client handed rings that are full already (FERRYD_FAULTS=attach-slow). Each
 * test is bounded (well under 30 s on 2 cores) and ends with ferryd's own
 * verdict on its frames (exit 0 after SIGTERM, 69 when the interface went).
 *
 * Elsewhere: a second ferryd on the interface (ferryd_life), the interface
 * down at start and deleted under the echo handler (ferryd_life), clients
 * that never give slots back (clients' hoarder, clients_hostile's
 * never_consuming).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <jansson.h>

#include "client_proc.h"
#include "ferryd_proc.h"
#include "netns.h"
#include "testutil.h"

#define PORT 9000
#define READY_MS 15000
#define EXIT_MS 15000
#define ATTACH_MS 5000
#define DELIVER_MS 8000
#define NCLIENTS 3
#define FLOWS 8
#define SEND_MAX 120000 /* datagrams a sender numbers at most */

/* ---- the peer: a sender process, numbering its datagrams -------------------------------------- */

/* Shared with the sender child: what it sent so far (seq 0..next-1, each exactly once), and a stop. */
struct sender_sh {
	uint32_t next; /* atomic: datagrams sent */
	int stop;      /* atomic: the test says stop */
	int done;      /* atomic: the child has stopped sending */
	int err;       /* an errno that ended it early */
	uint16_t port[FLOWS]; /* each flow's source port */
	int ready;     /* atomic: its sockets are open (port[] set) */
};

struct sender {
	pid_t pid;
	struct sender_sh *sh;
};

static struct {
	struct ferry_testns ns;
	bool ns_up;
	struct ferry_test_ferryd d;
	struct ferry_test_client c[NCLIENTS];
	struct sender snd;
	char tmp[128];
} fx = {.d = FERRY_TEST_FERRYD_INIT, .snd = {.pid = -1}};

/* The length of datagram seq: 20 to 1219 bytes, so a record's (length, hash) names one datagram. */
static size_t dgram_len(uint32_t seq)
{
	return 20 + (seq * 37) % 1200;
}

/*
 * The child: from the peer namespace, FLOWS connected sockets to the host's
 * service port, datagram seq from flow seq % FLOWS, paced at pps, until told
 * to stop, max datagrams sent, or max_ms passed. A datagram the kernel
 * refused (ENOBUFS, EAGAIN, a port unreachable for an earlier one) is sent
 * again: seq counts only what the kernel took.
 */
static void sender_child(struct sender_sh *sh, unsigned int pps, uint32_t max, int max_ms)
{
	union ferry_sockaddr dst;
	int fds[FLOWS];
	uint8_t buf[2048];
	uint64_t start, deadline;
	uint32_t sent = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER))
		_exit(3);
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, PORT, &dst);
	for (int f = 0; f < FLOWS; f++) {
		union ferry_sockaddr me;
		socklen_t len = sizeof(me);

		fds[f] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fds[f] < 0 || connect(fds[f], &dst.sa, ferry_sockaddr_len(&dst)))
			_exit(4);
		getsockname(fds[f], &me.sa, &len);
		sh->port[f] = ntohs(me.in4.sin_port);
	}
	__atomic_store_n(&sh->ready, 1, __ATOMIC_RELEASE);
	start = ferry_test_now_ms();
	deadline = start + (uint64_t)max_ms;
	while (sent < max && !__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE) && ferry_test_now_ms() < deadline) {
		size_t len = dgram_len(sent);

		if (ferry_test_now_ms() < start + (uint64_t)sent * 1000 / pps) {
			usleep(200);
			continue;
		}
		ferry_test_client_payload(buf, len, sent);
		if (send(fds[sent % FLOWS], buf, len, 0) == (ssize_t)len) {
			__atomic_store_n(&sh->next, ++sent, __ATOMIC_RELEASE);
		} else if (errno == EAGAIN || errno == ENOBUFS || errno == ECONNREFUSED || errno == EINTR ||
			   errno == ENETDOWN || errno == ENETUNREACH || errno == EHOSTUNREACH) {
			usleep(500); /* refused, not sent: the same seq again */
		} else {
			sh->err = errno;
			break;
		}
	}
	__atomic_store_n(&sh->done, 1, __ATOMIC_RELEASE);
	_exit(0);
}

/* Starts the sender (pps, at most max datagrams, at most max_ms); returns once its sockets are open. */
static void sender_start(unsigned int pps, uint32_t max, int max_ms)
{
	struct sender *s = &fx.snd;

	cr_assert_leq(max, SEND_MAX, "a sender numbers at most %d datagrams", SEND_MAX);
	s->sh = mmap(NULL, sizeof(*s->sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(s->sh, MAP_FAILED, "mmap: %s", strerror(errno));
	fflush(NULL);
	s->pid = fork();
	cr_assert_geq(s->pid, 0, "fork: %s", strerror(errno));
	if (s->pid == 0)
		sender_child(s->sh, pps, max, max_ms);
	for (uint64_t deadline = ferry_test_now_ms() + 3000;
	     !__atomic_load_n(&s->sh->ready, __ATOMIC_ACQUIRE) && ferry_test_now_ms() < deadline;)
		usleep(1000);
	cr_assert(__atomic_load_n(&s->sh->ready, __ATOMIC_ACQUIRE), "expected the sender's sockets to open");
}

static uint32_t sent_so_far(void)
{
	return __atomic_load_n(&fx.snd.sh->next, __ATOMIC_ACQUIRE);
}

/* Stops the sender and reaps it; what it sent in all. */
static uint32_t sender_stop(void)
{
	struct sender *s = &fx.snd;

	if (s->pid > 0) {
		__atomic_store_n(&s->sh->stop, 1, __ATOMIC_RELEASE);
		for (uint64_t deadline = ferry_test_now_ms() + 3000;
		     !__atomic_load_n(&s->sh->done, __ATOMIC_ACQUIRE) && ferry_test_now_ms() < deadline;)
			usleep(1000);
		ferry_test_reap_child(&s->pid);
	}
	cr_assert_eq(s->sh->err, 0, "expected the sender to end by itself, it failed: %s", strerror(s->sh->err));
	return sent_so_far();
}

static void sender_free(void)
{
	ferry_test_reap_child(&fx.snd.pid);
	if (fx.snd.sh && fx.snd.sh != MAP_FAILED)
		munmap(fx.snd.sh, sizeof(*fx.snd.sh));
	fx.snd.sh = NULL;
}

/* ---- the fixture ------------------------------------------------------------------------------ */

static void teardown(void)
{
	sender_free();
	for (int i = 0; i < NCLIENTS; i++)
		ferry_test_client_free(&fx.c[i]);
	ferry_test_ferryd_stop(&fx.d);
	if (fx.ns_up)
		ferry_testns_teardown(&fx.ns);
	fx.ns_up = false;
	if (fx.tmp[0])
		unlink(fx.tmp);
	unsetenv("FERRYD_FAULTS");
}

static void env_up_queues(unsigned int queues)
{
	int err;

	if (!ferry_test_is_root())
		cr_skip_test("needs root for network namespaces and XDP");
	for (int i = 0; i < NCLIENTS; i++)
		fx.c[i].pid = -1;
	err = queues > 1 ? ferry_testns_setup_queues(&fx.ns, queues) : ferry_testns_setup(&fx.ns);
	cr_assert_eq(err, 0, "expected the namespace fixture to come up, got %s", strerror(-err));
	fx.ns_up = true;
	snprintf(fx.tmp, sizeof(fx.tmp), "/tmp/ferryt-faults-%d.out", (int)getpid());
}

static void env_up(void)
{
	env_up_queues(1);
}

static const char *flog(void)
{
	return ferry_test_ferryd_log(&fx.d);
}

static void start_ferryd(const char *const *args)
{
	ferry_test_ferryd_start(&fx.d, &fx.ns, "faults", args, READY_MS);
}

/* SIGTERM: ferryd drains and exits 0 only when every UMEM frame is accounted for. */
static void stop_ferryd(void)
{
	ferry_test_ferryd_stop_clean(&fx.d, EXIT_MS);
}

static void start_client(int i, unsigned int flags, const struct ferry_test_client_cfg *more)
{
	struct ferry_test_client_cfg cfg = {0};

	if (more)
		cfg = *more;
	cfg.control = fx.d.control;
	cfg.service = "s4";
	cfg.flags |= flags;
	ferry_test_client_start(&fx.c[i], &cfg);
	cr_assert(ferry_test_client_wait(&fx.c[i], FERRY_TEST_CLIENT_ATTACHED, ATTACH_MS),
		  "expected client %d to attach (state %d, err %d: %s); ferryd log:\n%s", i, fx.c[i].sh->state,
		  fx.c[i].sh->err, fx.c[i].sh->why, flog());
	cr_assert_eq(fx.c[i].sh->state, FERRY_TEST_CLIENT_ATTACHED, "expected client %d attached, state %d (%s)", i,
		     fx.c[i].sh->state, fx.c[i].sh->why);
}

static uint64_t delivered(int i)
{
	return ferry_test_client_delivered(&fx.c[i]);
}

/* Waits (bounded) until client i has delivered at least n; true if it did. */
static bool wait_delivered(int i, uint64_t n, int ms)
{
	return ferry_test_client_wait_delivered(&fx.c[i], n, ms);
}

/* ferryctl --json status: the number of sessions ferryd holds now (asserting it answered). */
static int64_t sessions_now(void)
{
	static char out[8192];
	const char *b = getenv("FERRY_BUILD");
	json_error_t je;
	json_t *doc;
	int64_t n;
	int st;

	st = ferry_test_capture(out, sizeof(out), "%s/ferryctl --socket %s --json status", b && *b ? b : "build",
				fx.d.control);
	cr_assert_eq(st, 0, "expected ferryctl status to answer, exit %d: %s", st, out);
	doc = json_loads(out, 0, &je);
	cr_assert(doc, "expected JSON from ferryctl status: %s in %s", je.text, out);
	n = json_integer_value(json_object_get(doc, "clients"));
	json_decref(doc);
	return n;
}

/* Waits (bounded) until ferryd holds n sessions; true if it did. */
static bool wait_sessions(int64_t n, int ms)
{
	uint64_t deadline = ferry_test_now_ms() + (uint64_t)ms;

	while (sessions_now() != n && ferry_test_now_ms() < deadline)
		usleep(20 * 1000);
	return sessions_now() == n;
}

/* How many times s occurs in the log. */
static unsigned int log_count(const char *s)
{
	unsigned int n = 0;

	for (const char *p = flog(); (p = strstr(p, s)); p += strlen(s))
		n++;
	return n;
}

/* Waits (bounded) until s is in the log. */
static bool wait_log(const char *s, int ms)
{
	uint64_t deadline = ferry_test_now_ms() + (uint64_t)ms;

	while (!strstr(flog(), s) && ferry_test_now_ms() < deadline)
		usleep(10 * 1000);
	return strstr(flog(), s) != NULL;
}

/* The id of the XDP program on the host's fh0, 0 when none. */
static unsigned int xdp_prog_id(void)
{
	char out[4096];
	const char *p;

	ferry_test_capture(out, sizeof(out), "ip -n %s link show " FERRY_TESTNS_HOST_IF " 2>/dev/null", fx.ns.host);
	p = strstr(out, "prog/xdp id ");
	return p ? (unsigned int)strtoul(p + strlen("prog/xdp id "), NULL, 10) : 0;
}

/* ---- what a client had ------------------------------------------------------------------------ */

/* (length, hash) of every datagram numbered up to n, for finding a record's seq. */
struct seq_index {
	uint32_t n, mask;
	uint32_t *slot; /* seq + 1, or 0 */
	uint32_t *hash;
	size_t (*len)(const void *ctx, uint32_t seq);
	const void *ctx;
};

static size_t sender_len(const void *ctx, uint32_t seq)
{
	(void)ctx;
	return dgram_len(seq);
}

/* The index of datagrams 0..n-1 whose lengths len() says (sender_len: the sender's). */
static void index_build_len(struct seq_index *x, uint32_t n, size_t (*len)(const void *, uint32_t), const void *ctx)
{
	static uint8_t buf[65536];
	uint32_t size = 1;

	while (size < 2 * n + 2)
		size <<= 1;
	x->n = n;
	x->len = len;
	x->ctx = ctx;
	x->mask = size - 1;
	x->slot = calloc(size, sizeof(*x->slot));
	x->hash = calloc(n + 1, sizeof(*x->hash));
	cr_assert(x->slot && x->hash, "out of memory");
	for (uint32_t s = 0; s < n; s++) {
		size_t l = len(ctx, s);
		uint32_t h;

		ferry_test_client_payload(buf, l, s);
		x->hash[s] = ferry_test_hash(buf, l);
		for (h = x->hash[s] & x->mask; x->slot[h]; h = (h + 1) & x->mask)
			;
		x->slot[h] = s + 1;
	}
}

/* The seq of a datagram of len bytes hashing to hash, or -1: none the sender numbered. */
static int64_t index_find(const struct seq_index *x, uint32_t len, uint32_t hash)
{
	for (uint32_t h = hash & x->mask; x->slot[h]; h = (h + 1) & x->mask) {
		uint32_t s = x->slot[h] - 1;

		if (x->hash[s] == hash && x->len(x->ctx, s) == len)
			return s;
	}
	return -1;
}

static void index_build(struct seq_index *x, uint32_t n)
{
	index_build_len(x, n, sender_len, NULL);
}

static void index_free(struct seq_index *x)
{
	free(x->slot);
	free(x->hash);
}

/*
 * Client i's records against the sender's datagrams: each one of them,
 * byte-exact, from the peer's address and its flow's port, counted in
 * seen[seq]. Returns how many records it had.
 */
static uint32_t tally(const struct seq_index *x, int i, uint8_t *seen)
{
	const struct ferry_test_client_shared *sh = fx.c[i].sh;
	union ferry_sockaddr peer;

	ferry_testns_addr(FERRY_TESTNS_PEER, AF_INET, 0, &peer);
	for (uint32_t k = 0; k < sh->nrec; k++) {
		const struct ferry_test_client_rec *r = &sh->rec[k];
		int64_t seq = index_find(x, r->len, r->hash);

		cr_assert_geq(seq, 0, "client %d: datagram %u (%u bytes) is none the peer sent, or its bytes changed", i,
			      k, r->len);
		cr_assert(r->src.sa.sa_family == AF_INET && r->src.in4.sin_addr.s_addr == peer.in4.sin_addr.s_addr,
			  "client %d: datagram %" PRId64 " from another address than the peer's", i, seq);
		cr_assert_eq(ntohs(r->src.in4.sin_port), fx.snd.sh->port[seq % FLOWS],
			     "client %d: datagram %" PRId64 " from port %u, sent from %u", i, seq,
			     ntohs(r->src.in4.sin_port), fx.snd.sh->port[seq % FLOWS]);
		if (seen[seq] < 255)
			seen[seq]++;
	}
	return sh->nrec;
}

/* Client i had every datagram of [from, to) exactly once, and none twice anywhere. */
static void expect_each_once(const struct seq_index *x, int i, uint32_t from, uint32_t to)
{
	uint8_t *seen = calloc(x->n + 1, 1);
	uint32_t got, missing = 0, first_missing = 0;

	cr_assert(seen, "out of memory");
	got = tally(x, i, seen);
	for (uint32_t s = 0; s < x->n; s++) {
		cr_assert_leq(seen[s], 1, "client %d had datagram %u %u times", i, s, seen[s]);
		if (s >= from && s < to && !seen[s] && !missing++)
			first_missing = s;
	}
	cr_assert_eq(missing, 0, "client %d: expected every datagram %u..%u once, %u missing (the first %u); it had "
				 "%u in all, ferryd dropped %" PRIu64 " for it (ring full); log:\n%s",
		     i, from, to - 1, missing, first_missing, got, fx.c[i].sh->stats.rx_dropped_full, flog());
	free(seen);
}

/* ---- a hundred clients killed under load ------------------------------------------------------ */

#define VICTIMS 100

/*
 * fanout all: a steady client has every datagram the peer sends while a
 * hundred others, one after another, attach, receive (or not yet) and are
 * SIGKILLed, some holding slots. ferryd reclaims every session (ferryctl
 * counts only the steady one, then none), blames no client, and its frames
 * balance at exit.
 */
Test(faults, a_client_killed_100_times_under_load, .fini = teardown, .timeout = 60)
{
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", "xdp", "--service", "s4=198.18.0.1:9000",
			      "--fanout", "s4=all", NULL};
	struct ferry_test_client_cfg steady = {.rx_slots = 16384};
	struct seq_index x;
	uint64_t t0 = ferry_test_now_ms();
	unsigned int received_before_kill = 0, waited = 0;
	uint32_t total;

	env_up();
	start_ferryd(args);
	start_client(0, 0, &steady);
	sender_start(10000, SEND_MAX, 20000);
	cr_assert(wait_delivered(0, 50, DELIVER_MS), "expected the steady client to receive; log:\n%s", flog());
	for (int v = 0; v < VICTIMS; v++) {
		/* a third keep slots, a third have the smallest ring; a quarter die before their first batch */
		struct ferry_test_client_cfg cfg = {.rx_slots = v % 3 == 2 ? 16 : 0};

		start_client(1, v % 3 == 1 ? FERRY_TEST_CLIENT_KEEP : 0, &cfg);
		if (v % 4 && !__atomic_load_n(&fx.snd.sh->done, __ATOMIC_ACQUIRE)) {
			waited++;
			received_before_kill += wait_delivered(1, 1 + v % 20, 1000);
		}
		ferry_test_client_free(&fx.c[1]);
	}
	cr_log_info("%d clients killed in %" PRIu64 " ms, %u of them after receiving", VICTIMS,
		    ferry_test_now_ms() - t0, received_before_kill);
	cr_assert_gt(waited, VICTIMS / 2, "expected the peer to send while most victims lived");
	cr_assert_eq(received_before_kill, waited, "expected every victim that waited to receive (%u of %u did)",
		     received_before_kill, waited);
	/* every victim's session reclaimed: the steady one is all that is left */
	cr_assert(wait_sessions(1, 5000), "expected ferryd to hold only the steady client's session, it holds %" PRId64
		  "; log:\n%s", sessions_now(), flog());
	total = sender_stop();
	wait_delivered(0, total, DELIVER_MS);
	cr_assert_geq(log_count("ended: the client detached"), VICTIMS,
		      "expected ferryd to end each killed client's session; log:\n%s", flog());
	cr_assert_eq(ferry_test_ferryd_ask(&fx.d, "clients_failed"), 0, "a killed client broke no rule; log:\n%s",
		     flog());
	ferry_test_client_stop(&fx.c[0]);
	index_build(&x, total);
	expect_each_once(&x, 0, 0, total);
	cr_assert_eq(fx.c[0].sh->stats.rx_dropped_full, 0, "expected no drop for the steady client");
	cr_assert(wait_sessions(0, 5000), "expected no session left after the steady client stopped, %" PRId64,
		  sessions_now());
	cr_log_info("steady client: %u datagrams, each once", total);
	stop_ferryd();
	index_free(&x);
}

/* What the regression test's client saw, in its own process. */
struct early {
	uint64_t datagrams;
	uint8_t *seen; /* per seq */
	uint32_t dup;
	int end;
	bool ended;
};

static void early_cb(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int n)
{
	struct early *e = user;

	(void)srcs;
	for (unsigned int i = 0; i < n; i++) {
		uint32_t seq;

		cr_assert_geq(ferry_iobuf_length(bufs[i]), 4, "expected a numbered datagram");
		memcpy(&seq, ferry_iobuf_window(bufs[i]), 4);
		cr_assert_lt(seq, SEND_MAX, "expected a sequence number, got %u", seq);
		e->dup += e->seen[seq]++ != 0;
	}
	e->datagrams += n;
}

static void early_end(void *user, int result, struct ferry_iobuf *last)
{
	struct early *e = user;

	(void)last;
	e->end = result;
	e->ended = true;
}

/*
 * Regression: ferryd serves a session before the client has mapped it, so
 * under load the client's RX ring holds datagrams before the client first
 * looks. libferry started reading past them (at ferryd's producer index):
 * they were lost, and their slots with them; a 16-slot ring that ferryd
 * filled first never delivered anything. Here the ring is full before the
 * client has it: every datagram ferryd put on its rings
 * reaches the callback, once. (FERRYD_FAULTS=attach-slow makes ferryd hand
 * the session over 100 ms after its workers serve it: 2000 datagrams.)
 */
Test(faults, what_came_before_the_client_looked_is_delivered, .fini = teardown, .timeout = 60)
{
	/* two workers: threads of their own, serving while the control thread sleeps */
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", "xdp", "--queues", "2", "--workers", "2",
			      "--service", "s4=198.18.0.1:9000", NULL};
	struct ferry_client_opts o = {.sz = sizeof(o), .service = "s4", .rx_slots = 16};
	struct ferry_udp_loop_opts lo = {.sz = sizeof(lo), .on_end = early_end};
	struct early e = {.seen = calloc(SEND_MAX, 1)};
	struct ferry_client_stats st;
	struct ferry_udp_config lc;
	struct ferry_reactor *r;
	struct ferry_stop *stop;
	struct ferry_client *c = NULL;
	char why[160] = "";
	uint32_t looked, early_ones = 0;
	int err;

	cr_assert(e.seen, "out of memory");
	env_up_queues(2);
	setenv("FERRYD_FAULTS", "attach-slow", 1); /* the fds come 100 ms after the workers serve the session */
	start_ferryd(args);
	unsetenv("FERRYD_FAULTS");
	sender_start(20000, SEND_MAX, 20000);
	o.socket_path = fx.d.control;
	o.why = why;
	o.whylen = sizeof(why);
	err = ferry_client_connect(&o, &c);
	cr_assert_eq(err, 0, "expected to attach: %d (%s)", err, why);
	looked = sent_so_far();
	ferry_client_stats(c, &st);
	cr_assert_geq(st.rx_packets, 16, "expected ferryd to have filled a ring before the client looked, it put %"
		      PRIu64, st.rx_packets);
	r = ferry_reactor_new();
	stop = ferry_stop_new();
	cr_assert(r && stop, "expected a reactor and a stop");
	ferry_udp_config_init(&lc);
	lc.stop = stop;
	lo.reactor = r;
	lo.end_user = &e;
	cr_assert_eq(ferry_client_recvmmsg_loop(&lc, c, &lo, early_cb, &e), 0, "expected the loop on the reactor");
	for (uint64_t deadline = ferry_test_now_ms() + 3000; e.datagrams < 1000 && ferry_test_now_ms() < deadline;)
		ferry_reactor_run_once(r, 10);
	cr_assert_geq(e.datagrams, 1000, "expected the client to receive, it had %" PRIu64 " (ferryd put %" PRIu64
		      " on its ring)", e.datagrams, st.rx_packets);
	sender_stop();
	/* the ring drained: all ferryd put there reached the callback */
	for (uint64_t deadline = ferry_test_now_ms() + 3000; ferry_test_now_ms() < deadline;) {
		ferry_reactor_run_once(r, 10);
		ferry_client_stats(c, &st);
		if (st.rx_packets == e.datagrams)
			break;
	}
	cr_assert_eq(e.datagrams, st.rx_packets, "expected every datagram ferryd put on the ring delivered: %" PRIu64
		     " of %" PRIu64, e.datagrams, st.rx_packets);
	cr_assert_eq(e.dup, 0, "expected no datagram twice");
	for (uint32_t q = 0; q < looked; q++)
		early_ones += e.seen[q];
	cr_assert_geq(early_ones, 16, "expected the datagrams on the rings before the client looked, it had %u of "
		      "those sent by then", early_ones);
	ferry_stop_fire(stop);
	for (uint64_t deadline = ferry_test_now_ms() + 3000; !e.ended && ferry_test_now_ms() < deadline;)
		ferry_reactor_run_once(r, 10);
	cr_assert_eq(e.end, FERRY_END_STOPPED, "expected the loop to end by its stop");
	ferry_client_close(c);
	ferry_reactor_free(r);
	ferry_stop_free(stop);
	free(e.seen);
	stop_ferryd();
}

/* ---- ferryd killed and restarted -------------------------------------------------------------- */

/*
 * Two reconnecting clients (fanout all) while the peer sends; ferryd is
 * SIGKILLed, its program stays on fh0; a new ferryd sweeps it, attaches its
 * own, and once both clients are back (ferryctl says so) they have every
 * datagram the peer sends, each once.
 */
Test(faults, ferryd_killed_and_restarted_under_load, .fini = teardown, .timeout = 60)
{
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", "xdp", "--service", "s4=198.18.0.1:9000",
			      "--fanout", "s4=all", NULL};
	struct ferry_test_client_cfg cfg = {.rx_slots = 8192};
	struct seq_index x;
	char swept[96];
	unsigned int old_prog, new_prog;
	uint32_t from, total;

	env_up();
	start_ferryd(args);
	start_client(0, FERRY_TEST_CLIENT_RECONNECT, &cfg);
	start_client(1, FERRY_TEST_CLIENT_RECONNECT | FERRY_TEST_CLIENT_KEEP, &cfg);
	sender_start(4000, SEND_MAX, 20000);
	cr_assert(wait_delivered(0, 200, DELIVER_MS) && wait_delivered(1, 200, DELIVER_MS),
		  "expected both clients to receive; log:\n%s", flog());
	old_prog = xdp_prog_id();
	cr_assert_neq(old_prog, 0, "expected ferryd's program on fh0");
	ferry_test_ferryd_signal(&fx.d, SIGKILL);
	cr_assert_eq(ferry_test_ferryd_wait_exit(&fx.d, EXIT_MS), 0, "expected the killed ferryd reaped");
	cr_assert(WIFSIGNALED(fx.d.status) && WTERMSIG(fx.d.status) == SIGKILL, "expected death by SIGKILL, 0x%x",
		  fx.d.status);
	cr_assert_eq(xdp_prog_id(), old_prog, "expected the killed ferryd's program %u to stay on fh0", old_prog);
	usleep(200 * 1000); /* the peer goes on sending into the dead program's socketless map */

	start_ferryd(args); /* the same control socket path */
	cr_assert(strstr(flog(), "removed 1 XDP program a previous ferryd left on fh0"),
		  "expected the new ferryd to sweep the dead one's program; log:\n%s", flog());
	new_prog = xdp_prog_id();
	cr_assert_neq(new_prog, 0, "expected the new ferryd's program on fh0");
	if (strstr(flog(), "single program")) {
		/* alone on fh0 (no libxdp dispatcher between): the very program the dead one attached went */
		snprintf(swept, sizeof(swept), "removed stale XDP program %u", old_prog);
		cr_assert(strstr(flog(), swept), "expected program %u swept; log:\n%s", old_prog, flog());
		cr_assert_neq(new_prog, old_prog, "expected another program on fh0 than the dead one's %u", old_prog);
	}
	cr_assert(wait_sessions(2, 5000), "expected both clients to reconnect, ferryd holds %" PRId64 "; log:\n%s",
		  sessions_now(), flog());
	from = sent_so_far();
	for (uint64_t until = ferry_test_now_ms() + 1000; ferry_test_now_ms() < until;)
		usleep(10 * 1000);
	total = sender_stop();
	cr_assert_gt(total, from + 1000, "expected the peer to go on sending after the restart (%u..%u)", from, total);
	for (int i = 0; i < 2; i++)
		wait_delivered(i, delivered(i) + (total - from), 3000);
	for (int i = 0; i < 2; i++) {
		ferry_test_client_stop(&fx.c[i]);
		cr_assert_eq(fx.c[i].sh->loop_result, FERRY_END_STOPPED, "client %d: expected its loop to outlive "
			     "ferryd, it ended %d (%s)", i, fx.c[i].sh->loop_result, fx.c[i].sh->why);
		cr_assert_geq(fx.c[i].sh->stats.reconnects, 1, "client %d: expected a reconnect counted", i);
	}
	index_build(&x, total);
	for (int i = 0; i < 2; i++)
		expect_each_once(&x, i, from, total);
	cr_log_info("after the restart: datagrams %u..%u on both clients, each once", from, total - 1);
	stop_ferryd();
	cr_assert_eq(xdp_prog_id(), 0, "expected nothing left on fh0");
	index_free(&x);
}

/* ---- the interface ---------------------------------------------------------------------------- */

/* Waits (bounded) for ferryd's stats to say the link is up (or not). */
static bool wait_link(int64_t up, int ms)
{
	return ferry_test_ferryd_wait_value(&fx.d, "link_up", up, ms) == up;
}

/*
 * fh0 set down, then up, while two clients (fanout hash) receive: said in
 * the log and counted; the sessions stay; once it is up, every datagram the
 * peer sends reaches one of the clients; the frames balance at exit.
 */
Test(faults, link_down_and_up_under_clients, .fini = teardown, .timeout = 60)
{
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", "xdp", "--service", "s4=198.18.0.1:9000",
			      NULL};
	struct seq_index x;
	uint8_t *seen;
	uint64_t before[2];
	uint32_t from, total, missing = 0;

	env_up();
	start_ferryd(args);
	start_client(0, 0, NULL);
	start_client(1, FERRY_TEST_CLIENT_KEEP, NULL);
	sender_start(4000, SEND_MAX, 20000);
	for (uint64_t deadline = ferry_test_now_ms() + DELIVER_MS;
	     delivered(0) + delivered(1) < 200 && ferry_test_now_ms() < deadline;)
		usleep(5000);
	cr_assert_geq(delivered(0) + delivered(1), 200, "expected the clients to receive; log:\n%s", flog());

	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_HOST, "ip link set " FERRY_TESTNS_HOST_IF " down"), 0,
		     "expected fh0 down");
	cr_assert(wait_log("fh0 is down: nothing is received until it comes back", 3000),
		  "expected the link's fall logged; log:\n%s", flog());
	cr_assert(wait_link(0, 3000), "expected link_up=0 while fh0 is down");
	usleep(300 * 1000); /* the peer sends into a link without a carrier */
	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_HOST, "ip link set " FERRY_TESTNS_HOST_IF " up"), 0,
		     "expected fh0 up");
	cr_assert(wait_link(1, 5000), "expected link_up=1 once fh0 is up; log:\n%s", flog());
	cr_assert(wait_log("fh0 is up: serving", 3000), "expected the link's return logged; log:\n%s", flog());
	cr_assert_eq(ferry_test_ferryd_ask(&fx.d, "link_down_events"), 1, "expected one fall counted");
	/* receiving again (the peer's carrier may come back a moment after ours) */
	before[0] = delivered(0);
	before[1] = delivered(1);
	for (uint64_t deadline = ferry_test_now_ms() + DELIVER_MS;
	     delivered(0) + delivered(1) < before[0] + before[1] + 100 && ferry_test_now_ms() < deadline;)
		usleep(5000);
	cr_assert_geq(delivered(0) + delivered(1), before[0] + before[1] + 100,
		      "expected the clients to receive again once fh0 is up; log:\n%s", flog());
	from = sent_so_far();
	usleep(1000 * 1000);
	total = sender_stop();
	for (uint64_t deadline = ferry_test_now_ms() + DELIVER_MS; ferry_test_now_ms() < deadline; usleep(5000)) {
		uint64_t dropped = fx.c[0].sh->stats.rx_dropped_full + fx.c[1].sh->stats.rx_dropped_full;

		if (delivered(0) + delivered(1) + dropped >= before[0] + before[1] + (total - from))
			break;
	}
	cr_assert_eq(sessions_now(), 2, "expected both sessions to outlive the link's fall");
	for (int i = 0; i < 2; i++) {
		ferry_test_client_stop(&fx.c[i]);
		cr_assert_eq(fx.c[i].sh->stats.reconnects, 0, "client %d: expected the same session throughout", i);
	}
	index_build(&x, total);
	seen = calloc(total + 1, 1);
	cr_assert(seen, "out of memory");
	tally(&x, 0, seen);
	tally(&x, 1, seen);
	for (uint32_t s = 0; s < total; s++) {
		cr_assert_leq(seen[s], 1, "datagram %u reached the clients %u times (hash: one client)", s, seen[s]);
		missing += s >= from && !seen[s];
	}
	cr_assert_eq(missing, 0, "expected every datagram from %u on at a client, %u missing; log:\n%s", from, missing,
		     flog());
	stop_ferryd();
	free(seen);
	index_free(&x);
}

/*
 * fh0 deleted under two clients while the peer sends: ferryd exits 69 (its
 * frames balanced, or it would be 3), and tells the clients why: the one
 * without reconnect ends with ferryd's reason, the other waits to attach again.
 */
Test(faults, interface_deleted_under_clients, .fini = teardown, .timeout = 60)
{
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", "xdp", "--service", "s4=198.18.0.1:9000",
			      "--fanout", "s4=all", NULL};

	env_up();
	start_ferryd(args);
	start_client(0, 0, NULL);
	start_client(1, FERRY_TEST_CLIENT_RECONNECT, NULL);
	sender_start(4000, SEND_MAX, 20000);
	cr_assert(wait_delivered(0, 100, DELIVER_MS) && wait_delivered(1, 100, DELIVER_MS),
		  "expected both clients to receive; log:\n%s", flog());
	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_HOST, "ip link del " FERRY_TESTNS_HOST_IF), 0,
		     "expected to delete fh0");
	cr_assert_eq(ferry_test_ferryd_wait_exit(&fx.d, EXIT_MS), 0, "expected ferryd to exit; log:\n%s", flog());
	cr_assert(WIFEXITED(fx.d.status) && WEXITSTATUS(fx.d.status) == 69,
		  "expected exit 69 (frames balanced, interface gone), status 0x%x; log:\n%s", fx.d.status, flog());
	cr_assert(strstr(flog(), "interface fh0 was deleted"), "expected it logged; log:\n%s", flog());
	sender_stop();
	cr_assert(ferry_test_client_wait(&fx.c[0], FERRY_TEST_CLIENT_ENDED, 5000),
		  "expected the client without reconnect to end");
	cr_assert_eq(fx.c[0].sh->loop_result, FERRY_END_CLOSED, "expected FERRY_END_CLOSED, got %d",
		     fx.c[0].sh->loop_result);
	cr_assert(strstr(fx.c[0].sh->why, "interface was deleted"), "expected ferryd's reason, got '%s'",
		  fx.c[0].sh->why);
	/* the other one is still running, reconnecting: its loop has not ended */
	usleep(200 * 1000);
	cr_assert_eq(__atomic_load_n(&fx.c[1].sh->state, __ATOMIC_ACQUIRE), FERRY_TEST_CLIENT_ATTACHED,
		     "expected the reconnecting client's loop to go on");
	ferry_test_client_stop(&fx.c[1]);
	cr_assert_eq(fx.c[1].sh->loop_result, FERRY_END_STOPPED, "expected it to end only by its stop, got %d",
		     fx.c[1].sh->loop_result);
}

/* ---- rings at their limits -------------------------------------------------------------------- */

struct ring_case {
	unsigned int rx_slots, tx_slots, slot_size;
	unsigned int count, chunk; /* datagrams; sent chunk at a time, each waited for (0: unpaced) */
	unsigned int max_len;	   /* the longest datagram sent */
};

static struct ring_case ring_cases[] = {
	{16, 16, 256, 600, 8, 1400},	    /* the smallest: a 16-slot ring wraps 27 times; some too long */
	{65536, 65536, 4096, 70000, 0, 1400}, /* the most slots both ways the 1 GiB bound allows (512 MiB) */
	{16, 16, 65536, 48, 4, 65507},	    /* the largest slots: datagrams up to 64 KiB, fragmented */
};

ParameterizedTestParameters(faults, rings_at_their_limits)
{
	return cr_make_param_array(struct ring_case, ring_cases, sizeof(ring_cases) / sizeof(ring_cases[0]));
}

/* The length of datagram seq of a ring case: most fit a slot, some exactly, some by a byte or more not. */
static size_t ring_len(const void *ctx, uint32_t seq)
{
	const struct ring_case *c = ctx;

	size_t fits = c->slot_size < c->max_len ? c->slot_size : c->max_len;

	if (seq % 7 == 6)
		return c->max_len; /* too long for 256-byte slots, the largest datagram for 64 KiB ones */
	if (seq % 7 == 5)
		return fits; /* a slot exactly */
	if (seq % 7 == 4 && fits < c->max_len)
		return fits + 1; /* a byte too long */
	return 18 + ((size_t)seq * 7919) % (fits - 17);
}

/*
 * A client with the ring sizes given receives a burst: every datagram that
 * fits a slot, once, byte-exact, in order; every one longer than a slot
 * counted in its rx_dropped_big (and ferryd's rx_client_big); none dropped
 * for a full ring (the burst is paced to what the ring can hold).
 */
ParameterizedTest(struct ring_case *c, faults, rings_at_their_limits, .fini = teardown, .timeout = 60)
{
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", "xdp", "--service", "s4=198.18.0.1:9000",
			      NULL};
	struct ferry_test_client_cfg cfg = {.rx_slots = c->rx_slots, .tx_slots = c->tx_slots,
					    .slot_size = c->slot_size};
	static uint8_t buf[65536];
	union ferry_sockaddr dst;
	struct seq_index x;
	uint8_t *seen;
	uint32_t big = 0, fit = 0;
	int fd, sndbuf = 8 << 20;
	uint64_t t0;

	env_up();
	start_ferryd(args);
	start_client(0, 0, &cfg);
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER), 0, "expected to enter the peer namespace");
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, PORT, &dst);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	cr_assert_eq(connect(fd, &dst.sa, ferry_sockaddr_len(&dst)), 0, "connect: %s", strerror(errno));
	t0 = ferry_test_now_ms();
	for (uint32_t seq = 0; seq < c->count;) {
		size_t len = ring_len(c, seq);

		ferry_test_client_payload(buf, len, seq);
		if (send(fd, buf, len, 0) != (ssize_t)len) {
			cr_assert(errno == EAGAIN || errno == ENOBUFS, "send: %s", strerror(errno));
			usleep(500);
			continue;
		}
		if (len > c->slot_size)
			big++;
		else
			fit++;
		seq++;
		if (c->chunk && (seq % c->chunk == 0 || seq == c->count)) {
			/* what fits is in the ring's client before the next chunk goes (too long: no slot taken) */
			for (uint64_t deadline = ferry_test_now_ms() + 3000; delivered(0) < fit && ferry_test_now_ms() < deadline;)
				usleep(200);
		} else if (!c->chunk && seq % 64 == 0) {
			usleep(600); /* about 100k datagrams/s: the peer's socket buffer never overflows */
		}
		cr_assert_lt(ferry_test_now_ms() - t0, 30000, "the burst took too long: %u of %u", seq, c->count);
	}
	close(fd);
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_ROOT), 0, "expected to leave the peer namespace");
	for (uint64_t deadline = ferry_test_now_ms() + DELIVER_MS;
	     delivered(0) + fx.c[0].sh->stats.rx_dropped_big < c->count && ferry_test_now_ms() < deadline;)
		usleep(2000);
	ferry_test_client_stop(&fx.c[0]);
	cr_log_info("%u RX / %u TX slots of %u bytes: %u delivered, %u too big (%" PRIu64 " counted), %" PRIu64
		    " ring full, in %" PRIu64 " ms",
		    c->rx_slots, c->tx_slots, c->slot_size, fx.c[0].sh->nrec, big, fx.c[0].sh->stats.rx_dropped_big,
		    fx.c[0].sh->stats.rx_dropped_full, ferry_test_now_ms() - t0);
	cr_assert_eq(fx.c[0].sh->stats.rx_dropped_full, 0, "expected no drop for a full ring; log:\n%s", flog());
	cr_assert_eq(fx.c[0].sh->stats.rx_dropped_big, big, "expected the %u datagrams longer than a slot counted", big);
	cr_assert_eq(fx.c[0].sh->nrec, fit, "expected the %u datagrams that fit a slot delivered, got %u", fit,
		     fx.c[0].sh->nrec);
	/* byte-exact, each once (fragments come by the kernel's path: not necessarily in order) */
	index_build_len(&x, c->count, ring_len, c);
	seen = calloc(c->count, 1);
	cr_assert(seen, "out of memory");
	for (uint32_t k = 0; k < fx.c[0].sh->nrec; k++) {
		const struct ferry_test_client_rec *r = &fx.c[0].sh->rec[k];
		int64_t seq = index_find(&x, r->len, r->hash);

		cr_assert_geq(seq, 0, "record %u (%u bytes) is no datagram sent, or its bytes changed", k, r->len);
		cr_assert_leq(r->len, c->slot_size, "record %u is longer than a slot", k);
		cr_assert_eq(seen[seq]++, 0, "datagram %" PRId64 " delivered twice", seq);
	}
	free(seen);
	index_free(&x);
	cr_assert_eq(ferry_test_ferryd_ask(&fx.d, "rx_client_big"), big, "expected ferryd's rx_client_big to be %u",
		     big);
	stop_ferryd();
}

/* ---- a session that cannot be made ------------------------------------------------------------ */

static int ferryd_fds(void)
{
	char out[64];

	ferry_test_capture(out, sizeof(out), "ls /proc/%d/fd | wc -l", (int)fx.d.pid);
	return atoi(out);
}

/*
 * FERRYD_FAULTS=attach-nomem: after SIGUSR2 the next session fails as if
 * memfd_create returned ENOMEM. The client asking is answered -ENOMEM with
 * ferryd's reason; ferryd leaks no fd, the client already attached loses
 * nothing, and the next client attaches and receives.
 */
Test(faults, attach_nomem_is_an_answer_not_a_crash, .fini = teardown, .timeout = 60)
{
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", "xdp", "--service", "s4=198.18.0.1:9000",
			      "--fanout", "s4=all", NULL};
	struct ferry_test_client_cfg cfg = {.rx_slots = 8192};
	struct ferry_client_opts o = {.sz = sizeof(o), .service = "s4"};
	struct ferry_client *c = NULL;
	struct seq_index x;
	char why[160] = "";
	uint32_t later, total;
	int fds, err;

	env_up();
	setenv("FERRYD_FAULTS", "attach-nomem", 1);
	start_ferryd(args);
	unsetenv("FERRYD_FAULTS");
	start_client(0, 0, &cfg);
	sender_start(4000, SEND_MAX, 20000);
	cr_assert(wait_delivered(0, 100, DELIVER_MS), "expected the first client to receive; log:\n%s", flog());
	fds = ferryd_fds();
	for (int round = 0; round < 2; round++) {
		unsigned int armed = log_count("fault injection: the next session fails");

		ferry_test_ferryd_signal(&fx.d, SIGUSR2);
		for (uint64_t deadline = ferry_test_now_ms() + 3000;
		     log_count("fault injection: the next session fails") == armed && ferry_test_now_ms() < deadline;)
			usleep(5000);
		cr_assert_gt(log_count("fault injection: the next session fails"), armed,
			     "expected ferryd to arm the fault; log:\n%s", flog());
		o.socket_path = fx.d.control;
		o.why = why;
		o.whylen = sizeof(why);
		err = ferry_client_connect(&o, &c);
		cr_assert_eq(err, -ENOMEM, "expected -ENOMEM, got %d (%s); log:\n%s", err, why, flog());
		cr_assert(strstr(why, "could not make the session's memory") && strstr(why, strerror(ENOMEM)),
			  "expected ferryd's reason, got '%s'", why);
		cr_assert(ferry_test_ferryd_reaped(&fx.d) == false, "expected ferryd to live on; log:\n%s", flog());
	}
	/* ferryd closes each refused connection when the client hangs up */
	for (uint64_t deadline = ferry_test_now_ms() + 2000; ferryd_fds() != fds && ferry_test_now_ms() < deadline;)
		usleep(10 * 1000);
	cr_assert_eq(ferryd_fds(), fds, "expected ferryd to hold as many fds (%d) as before the failed attaches, it "
		     "holds %d", fds, ferryd_fds());
	cr_assert_eq(sessions_now(), 1, "expected only the first client's session");
	/* the fault was for one session each time: the next client attaches and receives */
	start_client(1, 0, &cfg);
	later = sent_so_far();
	cr_assert(wait_delivered(1, 100, DELIVER_MS), "expected the next client to receive; log:\n%s", flog());
	total = sender_stop();
	wait_delivered(0, total, DELIVER_MS);
	wait_delivered(1, total - later, DELIVER_MS);
	ferry_test_client_stop(&fx.c[0]);
	ferry_test_client_stop(&fx.c[1]);
	index_build(&x, total);
	expect_each_once(&x, 0, 0, total);
	expect_each_once(&x, 1, later, total);
	cr_assert_eq(ferry_test_ferryd_ask(&fx.d, "clients_failed"), 0, "expected no session counted as failed");
	stop_ferryd();
	index_free(&x);
}
