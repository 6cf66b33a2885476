/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: ferryd's control socket (daemon/control.c) with any messages
 * on it. The real control runs in this process, on a socket engine whose one
 * worker shares its reactor (services on loopback; in a network namespace of
 * its own when root), listening in a fresh directory. The input opens up to
 * 4 connections and sends on them messages of any length and bytes, with or
 * without file descriptors, closes and half-closes them. After each step
 * ferryd's reactor runs until it has nothing left to do and every reply has
 * been read. What must hold:
 *
 *   - every message is answered as ferry/ring.h says, checked against this
 *     file's own reading of it: a well-formed attach gets a session (status
 *     0 and exactly its fds: a sealed memfd whose header describes the
 *     session asked for, the wake pipe, one kick pipe); anything else is
 *     refused with a status among those that apply to it and a reason, and
 *     the connection closed: never a session for a malformed attach (an
 *     empty message is the one closed without a reason: to recvmsg it is
 *     the peer's close);
 *   - on an attached connection, a detach ends it quietly, anything else
 *     with a FERRY_CTL_END and a reason;
 *   - when this ferryd answers queries: each answer comes in parts with the
 *     query's seq and verb, one status, the last part flagged, the document
 *     whole; a malformed query gets -EPROTO and the connection is closed;
 *   - nothing comes that was not asked for; nothing asked goes unanswered;
 *   - ferryd counts one session per attached connection, and once every
 *     connection is gone it holds no session and no file descriptor more
 *     than before the input (those sent to it included).
 *
 * Input: ops, each an op byte (low 4 bits the op, the next 2 the
 * connection) and its arguments (big-endian; missing bytes read as zero).
 * CONNECT: which peer connects (struct peer). SEND: a flags byte (bits 0-1:
 * how many fds go with it; bit 2: do not let ferryd run before the next op;
 * bits 3-7: how many times more it is sent), a 16-bit length, then that many
 * bytes. CLOSE, SHUT(down for writing), DEAF (leave what ferryd sends
 * unread, or read it again).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <ferry/reactor.h>
#include <ferry/ring.h>

#include "control.h"
#include "ferryd.h"
#include "fuzz.h"
#include "handlers.h"
#include "iface.h"
#include "log.h"
#include "session.h" /* ferryd's defaults for a 0 in an attach */

#define NCONN 4
#define MAX_MSG 2048
#define MAX_OPS 64
#define MAX_EXPECT 256 /* a power of two */
#define GIB (1ull << 30)
/* a set of errno values (all below 128); bit 0 stands for status 0 */
typedef unsigned __int128 errset;
#define BIT(e) ((errset)1 << (e))
#define ERRS_HI(s) ((unsigned long long)((s) >> 64))
#define ERRS_LO(s) ((unsigned long long)(s))

#ifdef FERRY_CTL_ANSWER_LAST /* this ferryd answers queries (ferryctl) */
#define QUERIES 1
#define IN_MAX FERRY_CTL_PART_MAX
#else
#define QUERIES 0
#define IN_MAX 4096
#endif

enum { OP_CONNECT, OP_SEND, OP_CLOSE, OP_SHUT, OP_DEAF, NOPS };

/*
 * Who connects (root only: a thread's own credentials, which is what
 * SO_PEERCRED and SO_PEERGROUPS record): the "guarded" service lets in root
 * and uid 4242; the others root and ferryd's own group (0 here).
 */
struct peer {
	uid_t uid;
	gid_t gid;
	unsigned int ngroups;
	gid_t groups[2];
};

static const struct peer peers[] = {
	{ 0, 0, 0, { 0 } },	     /* root */
	{ 4242, 4242, 0, { 0 } },    /* the guarded service's user */
	{ 4343, 4343, 1, { 0 } },    /* in ferryd's group, as a supplementary one */
	{ 4343, 0, 1, { 4343 } },    /* in ferryd's group, as its primary one */
	{ 4444, 4444, 2, { 1, 2 } }, /* nobody ferryd knows */
};

/* What ferryd must send back, in order. */
enum expect_kind {
	X_SESSION, /* REPLY, status 0, the session's fds (or -E2BIG, when big says it may) */
	X_REFUSE,  /* REPLY, status -e for an e of errs, a reason */
	X_END,	   /* END, -ECONNRESET, a reason */
	X_EOF,	   /* the connection closed */
	X_ANSWER,  /* a query's answer, in parts: status -e for an e of errs (bit 0: status 0) */
};

static const char *const kind_names[] = { "a session", "a refusal", "an END", "the connection closed", "an answer" };

struct expect {
	enum expect_kind kind;
	errset errs;
	bool big;		   /* X_SESSION: the region is near the bound, -E2BIG is right too */
	uint32_t seq, verb;	   /* X_ANSWER */
	struct ferry_ctl_attach a; /* X_SESSION: what was asked */
};

struct conn {
	int fd;
	const struct peer *peer;
	enum { FRESH, ATTACHED, GONE } state; /* after what was sent so far */
	bool deaf; /* what ferryd sends is left unread (until OP_DEAF again, or the end) */
	struct expect x[MAX_EXPECT];
	unsigned int hx, nx;	/* x[hx..nx) (mod MAX_EXPECT): still to come */
	uint32_t part;		/* the next part of the answer coming */
	size_t doc_len;
	char doc_first, doc_last;
	bool uncertain;		/* a reply decides the state: let ferryd answer before sending more */
};

static struct {
	struct ferry_reactor *r;
	struct ferryd_iface *iface;
	struct ferryd_config cfg;
	struct ferryd_handler_ctx handler;
	struct ferryd_engine *e;
	struct ferryd_control *c;
	char dir[64];
	int null_fd;
	unsigned int base_fds;
	bool root;
	unsigned int reloads;
	struct conn conn[NCONN];
	uint8_t msg[MAX_MSG];
	uint8_t in[IN_MAX + 64];
} g;

/* ---- ferryd, in this process ---------------------------------------------------------------- */

static unsigned int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned int n = 0;

	FUZZ_CHECK(d, "/proc/self/fd: %s", strerror(errno));
	while (readdir(d))
		n++;
	closedir(d);
	return n - 3; /* ".", ".." and the directory's own fd */
}

/* What the fds are, for a report of a leak. */
static void print_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char path[300], target[256] = "";

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		if (readlink(path, target, sizeof(target) - 1) > 0)
			fprintf(stderr, "fd %s: %s\n", e->d_name, target);
	}
	if (d)
		closedir(d);
}

/* This thread as p, for a connect (raw syscalls: glibc's would change every thread of the process). */
static void become(const struct peer *p)
{
	FUZZ_CHECK(!syscall(SYS_setgroups, (size_t)p->ngroups, p->groups) &&
			   !syscall(SYS_setresgid, (gid_t)-1, p->gid, (gid_t)-1) &&
			   !syscall(SYS_setresuid, (uid_t)-1, p->uid, (uid_t)-1),
		   "becoming uid %u: %s", (unsigned int)p->uid, strerror(errno));
}

static void become_root(void)
{
	FUZZ_CHECK(!syscall(SYS_setresuid, (uid_t)-1, (uid_t)0, (uid_t)-1) &&
			   !syscall(SYS_setresgid, (gid_t)-1, (gid_t)0, (gid_t)-1) &&
			   !syscall(SYS_setgroups, (size_t)0, NULL),
		   "back to root: %s", strerror(errno));
}

static int reload(void *user, char *why, size_t whylen)
{
	(void)user;
	g.reloads++;
	snprintf(why, whylen, "nothing to read: the fuzzer's ferryd");
	return 0;
}

/* Our own network namespace with loopback up, when we may: the services' ports are surely free there. */
static bool own_netns(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd;

	if (geteuid() != 0 || unshare(CLONE_NEWNET))
		return false;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	FUZZ_CHECK(fd >= 0 && !ioctl(fd, SIOCGIFFLAGS, &ifr), "lo: %s", strerror(errno));
	ifr.ifr_flags |= IFF_UP;
	FUZZ_CHECK(!ioctl(fd, SIOCSIFFLAGS, &ifr), "lo up: %s", strerror(errno));
	close(fd);
	return true;
}

/* A loopback port nobody has now (outside our own namespace). */
static uint16_t free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	FUZZ_CHECK(fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
			   !getsockname(fd, (struct sockaddr *)&a, &len),
		   "a free port: %s", strerror(errno));
	close(fd);
	return ntohs(a.sin_port);
}

static struct ferryd_service *add_service(const char *name, uint16_t port)
{
	struct ferryd_service *s = &g.cfg.services[g.cfg.nservices];

	snprintf(s->name, sizeof(s->name), "%s", name);
	s->id = g.cfg.nservices++;
	s->addr.in4.sin_family = AF_INET;
	s->addr.in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->addr.in4.sin_port = htons(port);
	return s;
}

static void fini(void)
{
	ferryd_control_stop(g.c, "the fuzzer is done");
	g.e->ops->drain(g.e);
	ferryd_handlers_set_engine(&g.handler, NULL);
	g.e->ops->free(g.e);
	ferryd_control_free(g.c);
	ferryd_iface_free(g.iface);
	ferry_reactor_free(g.r);
	rmdir(g.dir);
}

static void pump(void)
{
	for (int i = 0; i < 1000; i++) {
		int n = ferry_reactor_run_once(g.r, 0);

		FUZZ_CHECK(n >= 0, "the reactor: %s", strerror(-n));
		if (!n)
			return;
	}
	FUZZ_CHECK(0, "ferryd's reactor never went idle");
}

static void init(void)
{
	bool ns = own_netns();
	char why[256] = "";
	struct ferryd_service *s;
	int err;

	/* every refusal is a notice: not printed at every run (FERRY_FUZZ_LOG=1 to see ferryd's log) */
	ferryd_log_level = getenv("FERRY_FUZZ_LOG") ? LOG_DEBUG : LOG_CRIT;
	g.r = ferry_reactor_new();
	FUZZ_CHECK(g.r, "reactor: %s", strerror(errno));
	err = ferryd_iface_new(g.r, "", &g.iface, why, sizeof(why));
	FUZZ_CHECK(!err, "iface: %s", why);
	ferryd_config_defaults(&g.cfg);
	g.cfg.mode = FERRYD_MODE_SOCKET;
	g.cfg.workers = 1; /* on the control thread's reactor: everything happens when we run it */
	g.cfg.handler = FERRYD_HANDLER_CLIENTS;
	snprintf(g.dir, sizeof(g.dir), "/tmp/ferry-fuzz-control.XXXXXX");
	FUZZ_CHECK(mkdtemp(g.dir), "mkdtemp: %s", strerror(errno));
	snprintf(g.cfg.control, sizeof(g.cfg.control), "%s/ctl", g.dir);
	g.cfg.control_mode = 0600;
	add_service("svc", ns ? 9000 : free_port());
	s = add_service("zc", ns ? 9001 : free_port());
	s->zero_copy_clients = true;
	s = add_service("guarded", ns ? 9002 : free_port());
	s->allow.set = true;
	s->allow.nuid = 1;
	s->allow.uid[0] = 4242; /* root may attach anyway */
	g.root = ns;
	if (ns) {
		/* peers of other users must reach the socket */
		g.cfg.control_mode = 0666;
		FUZZ_CHECK(!chmod(g.dir, 0755), "chmod: %s", strerror(errno));
		become_root(); /* no supplementary groups: peers[0] is what we are */
	}
	ferryd_handlers_install(&g.handler, g.cfg.handler, g.cfg.services, g.cfg.nservices);
	err = ferryd_sock_engine_new(g.r, g.iface, &g.cfg, g.cfg.services, g.cfg.nservices, &g.e, why, sizeof(why));
	FUZZ_CHECK(!err, "socket engine: %s", why);
	ferryd_handlers_set_engine(&g.handler, g.e);
	err = ferryd_control_new(g.r, &g.cfg, g.e, &g.c, why, sizeof(why));
	FUZZ_CHECK(!err, "control: %s", why);
	ferryd_control_set_reload(g.c, reload, NULL);
	g.null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	FUZZ_CHECK(g.null_fd >= 0, "/dev/null: %s", strerror(errno));
	for (unsigned int i = 0; i < NCONN; i++)
		g.conn[i].fd = -1;
	pump();
	atexit(fini);
}

/* ---- what ferryd must say ------------------------------------------------------------------- */

static void expect(struct conn *cn, enum expect_kind kind, errset errs)
{
	FUZZ_CHECK(cn->nx - cn->hx < MAX_EXPECT, "too many replies pending");
	cn->x[cn->nx++ % MAX_EXPECT] = (struct expect){ .kind = kind, .errs = errs };
}

static bool pow2_ok(uint32_t v)
{
	return !v || (v >= FERRY_RING_MIN_SLOTS && v <= FERRY_RING_MAX_SLOTS && !(v & (v - 1)));
}

static const struct ferryd_service *service_named(const char *name)
{
	for (unsigned int i = 0; i < g.cfg.nservices; i++)
		if (!strcmp(g.cfg.services[i].name, name))
			return &g.cfg.services[i];
	return NULL;
}

/*
 * Everything wrong with a whole attach, as ring.h and control.h say: bit e
 * for each -e it may be refused with. *big: the region is near the 1 GiB
 * bound, where only the exact layout decides.
 */
static bool in_groups(gid_t g0, const struct peer *p)
{
	if (p->gid == g0)
		return true;
	for (unsigned int i = 0; i < p->ngroups; i++)
		if (p->groups[i] == g0)
			return true;
	return false;
}

/* Who may attach, as control.h and ferryd --allow say: root, the service's users and groups, or ferryd's group. */
static bool allowed(const struct ferryd_service *svc, const struct peer *p)
{
	if (!p->uid)
		return true;
	if (!svc->allow.set)
		return in_groups(getegid(), p);
	for (unsigned int i = 0; i < svc->allow.nuid; i++)
		if (svc->allow.uid[i] == p->uid)
			return true;
	for (unsigned int i = 0; i < svc->allow.ngid; i++)
		if (in_groups(svc->allow.gid[i], p))
			return true;
	return false;
}

static errset attach_errors(const struct ferry_ctl_attach *a, const struct peer *p, bool *big)
{
	char name[sizeof(a->service) + 1];
	const struct ferryd_service *svc;
	uint32_t rx = a->rx_slots ? a->rx_slots : FERRYD_SESS_RX_SLOTS;
	uint32_t tx = a->tx_slots ? a->tx_slots : FERRYD_SESS_TX_SLOTS;
	uint32_t slot = a->slot_size ? a->slot_size : FERRYD_SESS_SLOT_SIZE;
	uint64_t lo, hi;
	errset errs = 0;

	*big = false;
	if (a->version != FERRY_RING_VERSION || a->op != FERRY_CTL_ATTACH)
		errs |= BIT(EPROTO);
	memcpy(name, a->service, sizeof(a->service));
	name[sizeof(a->service)] = '\0';
	svc = service_named(name);
	if (!svc)
		errs |= BIT(ESRCH);
	else if (!allowed(svc, p))
		errs |= BIT(EACCES);
	if (a->flags & FERRY_CTL_ZEROCOPY)
		errs |= svc && svc->zero_copy_clients ? BIT(EOPNOTSUPP) /* sockets: no UMEM */ : BIT(EPERM);
	if (a->flags & ~FERRY_CTL_ZEROCOPY)
		errs |= BIT(EINVAL);
	for (size_t i = 0; i < sizeof(a->reserved) / sizeof(a->reserved[0]); i++)
		if (a->reserved[i])
			errs |= BIT(EINVAL);
	if (!pow2_ok(a->rx_slots) || !pow2_ok(a->tx_slots) ||
	    (a->slot_size &&
	     (a->slot_size % 64 || a->slot_size < FERRY_RING_MIN_SLOT_SIZE || a->slot_size > FERRY_RING_MAX_SLOT_SIZE)))
		errs |= BIT(EINVAL);
	else {
		/* the slots and descriptors at least; the indices, stats, header and alignment at most 256 KiB more */
		lo = ((uint64_t)rx + tx) * (slot + sizeof(struct ferry_tx_desc) + sizeof(struct ferry_ret_desc));
		hi = lo + (256u << 10);
		if (lo > GIB)
			errs |= BIT(E2BIG);
		else if (hi > GIB)
			*big = true;
	}
	return errs;
}

/* What the message msg[0..n) sent on cn must bring back. */
static void predict(struct conn *cn, const uint8_t *msg, size_t n)
{
	struct ferry_ctl_attach a;

	memset(&a, 0, sizeof(a));
	memcpy(&a, msg, n < sizeof(a) ? n : sizeof(a));
	if (cn->state == GONE)
		return; /* closed by ferryd already, or it will be before it reads this */
	if (!n) {
		/* the one message without a reason: recvmsg's 0 reads as the peer's close (the fds it brought
		 * are closed all the same: the fd count at the end says so) */
		expect(cn, X_EOF, 0);
		cn->state = GONE;
		return;
	}
	if (cn->state == ATTACHED) {
		if (!(n >= offsetof(struct ferry_ctl_attach, flags) && a.magic == FERRY_CTL_MAGIC &&
		      a.op == FERRY_CTL_DETACH))
			expect(cn, X_END, 0);
		expect(cn, X_EOF, 0);
		cn->state = GONE;
		return;
	}
	if (n < offsetof(struct ferry_ctl_attach, flags) || a.magic != FERRY_CTL_MAGIC) {
		expect(cn, X_REFUSE, BIT(EPROTO));
		expect(cn, X_EOF, 0);
		cn->state = GONE;
		return;
	}
#if QUERIES
	if (a.op == FERRY_CTL_QUERY) {
		struct ferry_ctl_query q;
		struct expect *x;

		memset(&q, 0, sizeof(q));
		memcpy(&q, msg, n < sizeof(q) ? n : sizeof(q));
		expect(cn, X_ANSWER, 0);
		x = &cn->x[(cn->nx - 1) % MAX_EXPECT];
		x->seq = q.seq;
		x->verb = q.verb;
		if (n != sizeof(q) || q.version != FERRY_RING_VERSION) {
			x->errs = BIT(EPROTO);
			expect(cn, X_EOF, 0);
			cn->state = GONE;
		} else if (!q.verb || q.verb > FERRY_CTL_RELOAD) {
			x->errs = BIT(EINVAL) | BIT(0); /* a verb this file does not know yet may be a new one */
		} else if (q.flags || q.reserved[0] || q.reserved[1]) {
			x->errs = BIT(EINVAL);
		} else if (q.verb == FERRY_CTL_RELOAD) {
			/* root or ferryd's own user (root here): the hook says yes */
			x->errs = cn->peer->uid && cn->peer->uid != geteuid() ? BIT(EPERM) : BIT(0);
		} else {
			x->errs = BIT(0);
		}
		return;
	}
#endif
	if (n != sizeof(a)) {
		expect(cn, X_REFUSE, BIT(EPROTO));
		expect(cn, X_EOF, 0);
		cn->state = GONE;
		return;
	}
	{
		bool big;
		errset errs = attach_errors(&a, cn->peer, &big);

		if (errs) {
			expect(cn, X_REFUSE, errs);
			expect(cn, X_EOF, 0);
			cn->state = GONE;
			return;
		}
		expect(cn, X_SESSION, 0);
		cn->x[(cn->nx - 1) % MAX_EXPECT].a = a;
		cn->x[(cn->nx - 1) % MAX_EXPECT].big = big;
		cn->uncertain = big;
		cn->state = ATTACHED;
	}
}

/* ---- what ferryd said ----------------------------------------------------------------------- */

static void check_session(const struct expect *x, const struct ferry_ctl_reply *rep, const int *fds,
			  unsigned int nfds)
{
	struct ferry_ring_header h;
	struct stat sb;
	int seals;

	FUZZ_CHECK(rep->nworkers == 1 && rep->nareas == 0 && rep->region_size && rep->session,
		   "a session of %u workers, %u areas, %llu bytes, number %u", rep->nworkers, rep->nareas,
		   (unsigned long long)rep->region_size, rep->session);
	FUZZ_CHECK(nfds == 2 + rep->nworkers + rep->nareas, "a session with %u fds, not %u", nfds,
		   2 + rep->nworkers + rep->nareas);
	FUZZ_CHECK(!fstat(fds[0], &sb) && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == rep->region_size,
		   "the memfd is not the region's size");
	seals = fcntl(fds[0], F_GET_SEALS);
	FUZZ_CHECK(seals >= 0 && (seals & F_SEAL_SHRINK) && (seals & F_SEAL_GROW), "the memfd's seals: %#x", seals);
	FUZZ_CHECK(pread(fds[0], &h, sizeof(h), 0) == (ssize_t)sizeof(h), "the header: %s", strerror(errno));
	FUZZ_CHECK(h.magic == FERRY_RING_MAGIC && h.version == FERRY_RING_VERSION && h.region_size == rep->region_size &&
			   h.nworkers == rep->nworkers && h.session == rep->session && !h.nareas &&
			   !(h.flags & FERRY_RING_ZEROCOPY),
		   "the header does not describe the session of the reply");
	FUZZ_CHECK(h.rx_slots == (x->a.rx_slots ? x->a.rx_slots : FERRYD_SESS_RX_SLOTS) &&
			   h.tx_slots == (x->a.tx_slots ? x->a.tx_slots : FERRYD_SESS_TX_SLOTS) &&
			   h.slot_size == (x->a.slot_size ? x->a.slot_size : FERRYD_SESS_SLOT_SIZE),
		   "a session of %u/%u slots of %u, asked %u/%u of %u", h.rx_slots, h.tx_slots, h.slot_size,
		   x->a.rx_slots, x->a.tx_slots, x->a.slot_size);
	FUZZ_CHECK(!strncmp(h.service, x->a.service, sizeof(h.service)) && memchr(h.service, 0, sizeof(h.service)),
		   "a session of service '%.32s', asked '%.32s'", h.service, x->a.service);
	for (unsigned int i = 1; i < nfds; i++)
		FUZZ_CHECK(!fstat(fds[i], &sb) && S_ISFIFO(sb.st_mode), "fd %u of the session is not a pipe", i);
}

static bool reason_ok(const char *why, size_t len)
{
	return why[0] && memchr(why, 0, len);
}

/* One message from ferryd on cn (n bytes in g.in, nfds fds). */
static void got(struct conn *cn, size_t n, int flags, const int *fds, unsigned int nfds)
{
	struct expect *x = &cn->x[cn->hx % MAX_EXPECT];
	const struct ferry_ctl_reply *rep = (const void *)g.in;

	FUZZ_CHECK(cn->hx < cn->nx, "a message nothing asked for (op %u, %zu bytes)", rep->op, n);
	FUZZ_CHECK(!(flags & (MSG_TRUNC | MSG_CTRUNC)), "a message larger than a part or with too many fds");
	FUZZ_CHECK(x->kind != X_EOF, "a message (op %u) after the connection should have closed", rep->op);
	FUZZ_CHECK(n >= 16 && rep->magic == FERRY_CTL_MAGIC && rep->version == FERRY_RING_VERSION,
		   "a %zu-byte message without ferryd's magic and version", n);
#if QUERIES
	if (x->kind == X_ANSWER) {
		const struct ferry_ctl_answer *an = (const void *)g.in;
		const char *doc = (const char *)g.in + sizeof(*an);

		FUZZ_CHECK(n >= sizeof(*an) && an->op == FERRY_CTL_ANSWER && !nfds, "an answer expected: op %u, %zu bytes",
			   an->op, n);
		FUZZ_CHECK(an->len == n - sizeof(*an), "a part of %u bytes in a message of %zu", an->len, n);
		FUZZ_CHECK(an->seq == x->seq && an->verb == x->verb && an->part == cn->part,
			   "part %u of the answer to seq %u verb %u, expected part %u of seq %u verb %u", an->part, an->seq,
			   an->verb, cn->part, x->seq, x->verb);
		FUZZ_CHECK(an->status <= 0 && an->status > -128 && (x->errs & BIT(-an->status)),
			   "verb %u answered with status %d (allowed: %#llx%016llx)", x->verb, an->status,
			   ERRS_HI(x->errs), ERRS_LO(x->errs));
		x->errs = BIT(-an->status); /* the same in every part */
		if (an->len) {
			if (!cn->doc_len)
				cn->doc_first = doc[0];
			cn->doc_last = doc[an->len - 1];
			FUZZ_CHECK(!memchr(doc, 0, an->len), "a NUL byte in the document");
		}
		cn->doc_len += an->len;
		cn->part++;
		if (an->flags & FERRY_CTL_ANSWER_LAST) {
			FUZZ_CHECK(cn->doc_len && cn->doc_first == '{' && cn->doc_last == '}',
				   "the document of verb %u is not one object (%zu bytes)", x->verb, cn->doc_len);
			cn->part = 0;
			cn->doc_len = 0;
			cn->hx++;
		}
		return;
	}
#endif
	FUZZ_CHECK(n == sizeof(*rep), "a %zu-byte message where a reply (%zu) was due: %s", n, sizeof(*rep),
		   kind_names[x->kind]);
	switch (x->kind) {
	case X_SESSION:
		if (x->big && rep->op == FERRY_CTL_REPLY && rep->status == -E2BIG) {
			FUZZ_CHECK(reason_ok(rep->why, sizeof(rep->why)) && !nfds, "-E2BIG without a reason");
			cn->hx++;
			cn->state = GONE;
			expect(cn, X_EOF, 0);
			return;
		}
		FUZZ_CHECK(rep->op == FERRY_CTL_REPLY && rep->status == 0,
			   "a well-formed attach to '%.32s' (%u/%u slots of %u) got op %u status %d: %.160s",
			   x->a.service, x->a.rx_slots, x->a.tx_slots, x->a.slot_size, rep->op, rep->status, rep->why);
		check_session(x, rep, fds, nfds);
		break;
	case X_REFUSE:
		FUZZ_CHECK(rep->op == FERRY_CTL_REPLY && rep->status != 0,
			   "a malformed message got op %u status %d (a session!)", rep->op, rep->status);
		FUZZ_CHECK(rep->status < 0 && rep->status > -128 && (x->errs & BIT(-rep->status)),
			   "refused with status %d (allowed: %#llx%016llx): %.160s", rep->status, ERRS_HI(x->errs),
			   ERRS_LO(x->errs), rep->why);
		FUZZ_CHECK(reason_ok(rep->why, sizeof(rep->why)) && !nfds, "refused (%d) without a reason", rep->status);
		break;
	case X_END:
		FUZZ_CHECK(rep->op == FERRY_CTL_END && rep->status == -ECONNRESET && reason_ok(rep->why, sizeof(rep->why)) &&
				   !nfds,
			   "an attached session ended with op %u status %d why '%.160s'", rep->op, rep->status, rep->why);
		break;
	default:
		FUZZ_CHECK(0, "%s expected, got op %u", kind_names[x->kind], rep->op);
	}
	cn->hx++;
}

static void close_conn(struct conn *cn)
{
	if (cn->fd >= 0)
		close(cn->fd);
	cn->fd = -1;
	cn->hx = cn->nx = 0;
	cn->part = 0;
	cn->doc_len = 0;
	cn->uncertain = false;
	cn->deaf = false;
	cn->state = GONE;
}

/* Reads what ferryd sent on cn. Whether anything came. */
static bool read_conn(struct conn *cn)
{
	bool any = false;

	while (cn->fd >= 0 && !cn->deaf) {
		union {
			char buf[CMSG_SPACE(sizeof(int) * 160)];
			struct cmsghdr align;
		} u;
		struct iovec iov = { .iov_base = g.in, .iov_len = sizeof(g.in) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
				     .msg_controllen = sizeof(u.buf) };
		int fds[160];
		unsigned int nfds = 0;
		ssize_t n = recvmsg(cn->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		any = true;
		if (n < 0 && errno == ECONNRESET)
			continue; /* ferryd closed with messages of ours unread: said once, before what it sent */
		if (n <= 0) {
			FUZZ_CHECK(n == 0, "recvmsg: %s", strerror(errno));
			FUZZ_CHECK(cn->hx < cn->nx && cn->x[cn->hx % MAX_EXPECT].kind == X_EOF,
				   "ferryd closed the connection; %s was due",
				   cn->hx < cn->nx ? kind_names[cn->x[cn->hx % MAX_EXPECT].kind] : "nothing");
			cn->hx++;
			FUZZ_CHECK(cn->hx == cn->nx, "ferryd closed the connection with replies still due");
			close_conn(cn);
			break;
		}
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
				for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int) && nfds < 160; i++)
					memcpy(&fds[nfds++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
		got(cn, (size_t)n, mh.msg_flags, fds, nfds);
		for (unsigned int i = 0; i < nfds; i++)
			close(fds[i]);
	}
	return any;
}

/* ferryd runs until idle and every reply is read; then nothing asked is missing. */
static void settle(void)
{
	unsigned int attached = 0;
	bool any, deaf = false;

	do {
		pump();
		any = false;
		for (unsigned int i = 0; i < NCONN; i++)
			any |= read_conn(&g.conn[i]);
	} while (any);
	for (unsigned int i = 0; i < NCONN; i++) {
		struct conn *cn = &g.conn[i];

		if (cn->fd < 0)
			continue;
		attached += cn->state == ATTACHED;
		deaf |= cn->deaf;
		if (cn->deaf)
			continue;
		FUZZ_CHECK(cn->hx == cn->nx, "connection %u: %s never came", i,
			   kind_names[cn->x[cn->hx % MAX_EXPECT].kind]);
		cn->uncertain = false;
	}
	/* (a deaf connection's attach may wait behind an answer ferryd cannot send yet) */
	FUZZ_CHECK(deaf || ferryd_control_sessions(g.c) == attached,
		   "ferryd counts %u sessions, %u connections are attached", ferryd_control_sessions(g.c), attached);
}

/* ---- the run -------------------------------------------------------------------------------- */

static void connect_conn(struct conn *cn, unsigned int peer)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int err;

	close_conn(cn);
	cn->peer = &peers[g.root ? peer % (sizeof(peers) / sizeof(peers[0])) : 0];
	cn->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	FUZZ_CHECK(cn->fd >= 0, "socket: %s", strerror(errno));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", g.cfg.control);
	if (cn->peer->uid)
		become(cn->peer);
	err = connect(cn->fd, (struct sockaddr *)&sa, sizeof(sa)) ? errno : 0;
	if (cn->peer->uid)
		become_root();
	FUZZ_CHECK(!err, "connect as uid %u: %s", (unsigned int)cn->peer->uid, strerror(err));
	cn->state = FRESH;
}

static void send_msg(struct conn *cn, size_t len, unsigned int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 3)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = g.msg, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (nfds) {
		struct cmsghdr *cm;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		for (unsigned int i = 0; i < nfds; i++)
			memcpy(CMSG_DATA(cm) + i * sizeof(int), &g.null_fd, sizeof(int));
	}
	n = sendmsg(cn->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0) {
		/* ferryd closed it (or will: it reads nothing more), or it reads nothing while an answer is going out,
		 * or it has not run since we sent what fills its queue */
		FUZZ_CHECK(cn->state == GONE || errno == EAGAIN, "send on a connection ferryd keeps: %s", strerror(errno));
		if (errno == EAGAIN)
			FUZZ_CHECK(cn->hx < cn->nx, "ferryd reads nothing, and owes nothing");
		return;
	}
	FUZZ_CHECK((size_t)n == len, "sent %zd of %zu", n, len);
	predict(cn, g.msg, len);
}

static void step(struct fuzz_in *in)
{
	uint8_t op = fuzz_u8(in);
	struct conn *cn = &g.conn[(op >> 4) % NCONN];
	bool run = true;

	switch ((op & 0xf) % NOPS) {
	case OP_CONNECT:
		connect_conn(cn, fuzz_u8(in));
		break;
	case OP_SEND: {
		uint8_t flags = fuzz_u8(in);
		size_t len = fuzz_u16(in) % (MAX_MSG + 1);
		unsigned int times = 1 + (flags >> 3); /* up to 32: enough to fill a socket of a deaf connection */

		fuzz_bytes(in, g.msg, len);
		if (cn->fd < 0)
			connect_conn(cn, 0);
		if (cn->uncertain) {
			cn->deaf = false;
			settle(); /* its state is the reply's to say */
		}
		for (unsigned int i = 0; i < times; i++) {
			send_msg(cn, len, flags & 3);
			if (!(flags & 4) && i + 1 < times)
				settle();
		}
		run = !(flags & 4);
		break;
	}
	case OP_CLOSE:
		close_conn(cn); /* what ferryd still had to say is lost with it */
		break;
	case OP_SHUT:
		if (cn->fd < 0)
			break;
		if (cn->uncertain) {
			cn->deaf = false;
			settle();
		}
		FUZZ_CHECK(!shutdown(cn->fd, SHUT_WR), "shutdown: %s", strerror(errno));
		if (cn->state != GONE)
			expect(cn, X_EOF, 0); /* after whatever it owes */
		cn->state = GONE;
		break;
	case OP_DEAF:
		cn->deaf = !cn->deaf;
		break;
	}
	if (run)
		settle();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	unsigned int fds;

	if (!g.r)
		init();
	/* counted at each input: libFuzzer's leak check may start a symbolizer (with pipes) between two */
	g.base_fds = count_fds();
	for (unsigned int i = 0; i < MAX_OPS && in.n; i++)
		step(&in);
	for (unsigned int i = 0; i < NCONN; i++)
		g.conn[i].deaf = false;
	settle();
	for (unsigned int i = 0; i < NCONN; i++)
		close_conn(&g.conn[i]);
	settle();
	FUZZ_CHECK(ferryd_control_sessions(g.c) == 0, "%u sessions with every connection gone",
		   ferryd_control_sessions(g.c));
	fds = count_fds();
	if (fds != g.base_fds)
		print_fds();
	FUZZ_CHECK(fds == g.base_fds, "%u fds open with every connection gone, %u before", fds, g.base_fds);
	return 0;
}
