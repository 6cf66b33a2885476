/* SPDX-License-Identifier: MIT */
/* The control socket and the client sessions (control.h). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <ferry/ring.h>

#include "control.h"
#include "dataplane.h"
#include "dispatch.h"
#include "json.h"
#include "owner.h"
#include "query.h"
#include "session.h"

#define BACKLOG 64
#define MAX_CONNS (FERRYD_MAX_SESSIONS + 64) /* sessions, and connections that have not attached yet */
#define ATTACH_MS 5000 /* a connection that neither attached nor asked (nor read an answer) for this long is closed */
#define TICK_MS 1000
#define MAX_GROUPS 1024
#define PART_MIN 1024 /* the smallest part a socket buffer too small for FERRY_CTL_PART_MAX gets */

struct conn {
	struct ferryd_control *c;
	struct conn *next, **pprev;
	int fd;
	struct ferry_watch *watch;
	uint64_t since_ms;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	struct ferryd_session *s; /* once attached */
	bool ending;		  /* end it at the next tick (asked from where it cannot be done at once) */
	char end_why[192];
	/* a query's answer on its way: the document, how much of it went (nothing else is read meanwhile) */
	char *ans;
	size_t ans_len, ans_off, part_max;
	struct ferry_ctl_answer ans_hdr; /* the next part's */
	bool close_after; /* a query ferryd could not read: the connection ends once it is told */
};

struct ferryd_control {
	struct ferry_reactor *r;
	struct ferryd_config *cfg;
	struct ferryd_engine *e;
	int lfd;
	struct ferry_watch *lwatch;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino;
	struct conn *conns;
	unsigned int nconns, nsessions;
	struct ferryd_client_table *table; /* what the workers were last given */
	unsigned int next_id;
	struct ferry_timer *tick;
	bool busy;    /* inside an attach or an end: other connections wait for their turn */
	bool stopped;
	/* sessions the workers may still hold (their answer did not come): freed at the end */
	struct ferryd_session **limbo;
	unsigned int nlimbo;
	/* for the queries */
	struct ferryd_control_info info;
	uint64_t started_ms;
	int (*reload)(void *user, char *why, size_t whylen);
	void *reload_user;
};

/* ---- who may attach --------------------------------------------------------------------- */

static void user_name(uid_t uid, char *buf, size_t len)
{
	struct passwd pw, *res = NULL;
	char tmp[4096];

	if (!getpwuid_r(uid, &pw, tmp, sizeof(tmp), &res) && res)
		snprintf(buf, len, "%s (uid %u)", res->pw_name, (unsigned int)uid);
	else
		snprintf(buf, len, "uid %u", (unsigned int)uid);
}

static void group_name(gid_t gid, char *buf, size_t len)
{
	struct group gr, *res = NULL;
	char tmp[16384];

	if (!getgrgid_r(gid, &gr, tmp, sizeof(tmp), &res) && res)
		snprintf(buf, len, "%s", res->gr_name);
	else
		snprintf(buf, len, "%u", (unsigned int)gid);
}

static bool in_groups(gid_t g, gid_t primary, const gid_t *groups, int n)
{
	if (g == primary)
		return true;
	for (int i = 0; i < n; i++)
		if (groups[i] == g)
			return true;
	return false;
}

/* Root always; then the service's users and groups, or by default ferryd's own group. */
static bool allowed(const struct ferryd_allow *a, uid_t uid, gid_t gid, const gid_t *groups, int ngroups)
{
	if (uid == 0)
		return true;
	if (!a->set)
		return in_groups(getegid(), gid, groups, ngroups);
	for (unsigned int i = 0; i < a->nuid; i++)
		if (a->uid[i] == uid)
			return true;
	for (unsigned int i = 0; i < a->ngid; i++)
		if (in_groups(a->gid[i], gid, groups, ngroups))
			return true;
	return false;
}

/* "root, users a, b, groups c": who the service lets in, for a refusal's reason. */
static void describe_allowed(const struct ferryd_allow *a, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "root");
	char name[96];

	if (!a->set) {
		group_name(getegid(), name, sizeof(name));
		snprintf(buf + n, len - n, " and group %s (ferryd's own; --allow names others)", name);
		return;
	}
	for (unsigned int i = 0; i < a->nuid && n < len; i++) {
		user_name(a->uid[i], name, sizeof(name));
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : ", users ", name);
	}
	for (unsigned int i = 0; i < a->ngid && n < len; i++) {
		group_name(a->gid[i], name, sizeof(name));
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : ", groups ", name);
	}
}

/* ---- the messages ------------------------------------------------------------------------- */

static int send_reply(int fd, uint32_t op, int status, const char *why, const struct ferryd_session *s,
		      const int *fds, unsigned int nfds)
{
	struct ferry_ctl_reply rep;
	struct iovec iov = { .iov_base = &rep, .iov_len = sizeof(rep) };
	union {
		char buf[CMSG_SPACE(sizeof(int) * FERRY_CTL_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	memset(&rep, 0, sizeof(rep));
	rep.magic = FERRY_CTL_MAGIC;
	rep.version = FERRY_RING_VERSION;
	rep.op = op;
	rep.status = status;
	if (why)
		snprintf(rep.why, sizeof(rep.why), "%s", why);
	if (s) {
		rep.region_size = s->region_size;
		rep.nworkers = s->nw;
		rep.nareas = s->nareas;
		rep.session = s->id;
	}
	if (nfds) {
		struct cmsghdr *cm;

		memset(&u, 0, sizeof(u));
		msg.msg_control = u.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	/* a client that does not read its replies loses its session, never stalls ferryd */
	if (sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(rep))
		return -errno ? -errno : -EIO;
	return 0;
}

static int refuse(struct conn *cn, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int refuse(struct conn *cn, int status, const char *fmt, ...)
{
	char why[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	ferryd_log(LOG_NOTICE, "control: pid %d (uid %u) refused: %s", (int)cn->pid, (unsigned int)cn->uid, why);
	send_reply(cn->fd, FERRY_CTL_REPLY, status, why, NULL, NULL, 0);
	return status;
}

/* ---- sessions ---------------------------------------------------------------------------- */

static void conn_close(struct conn *cn)
{
	struct ferryd_control *c = cn->c;

	if (cn->watch)
		ferry_reactor_del(c->r, cn->watch);
	if (cn->fd >= 0)
		close(cn->fd);
	free(cn->ans);
	*cn->pprev = cn->next;
	if (cn->next)
		cn->next->pprev = cn->pprev;
	c->nconns--;
	free(cn);
}

static void sess_totals(const struct ferryd_session *s, struct ferryd_sess_stats *t)
{
	memset(t, 0, sizeof(*t));
	for (unsigned int i = 0; i < s->nw; i++) {
		const uint64_t *in = (const uint64_t *)&s->wk[i].st;
		uint64_t *o = (uint64_t *)t;

		for (size_t k = 0; k < sizeof(*t) / sizeof(uint64_t); k++)
			o[k] += __atomic_load_n(&in[k], __ATOMIC_RELAXED);
	}
}

/* Gives the workers t: true when every one answered (then none holds what t lacks). */
static bool publish(struct ferryd_control *c, struct ferryd_client_table *t)
{
	char why[200] = "";
	int err;

	ferryd_client_table_put(c->table);
	c->table = t;
	err = ferryd_dp_set_clients(c->e, t, why, sizeof(why));
	if (err)
		ferryd_log(LOG_ERR, "control: giving the workers the clients: %s", why);
	return !err;
}

/*
 * Ends cn's session (if it has one) and the connection: the client is told
 * why (when why is not NULL), the workers let go, the memory freed.
 */
static void conn_end(struct conn *cn, const char *why)
{
	struct ferryd_control *c = cn->c;
	struct ferryd_session *s = cn->s;

	if (s) {
		struct ferryd_client_table *t = ferryd_client_table_copy(c->table);
		struct ferryd_sess_stats st;
		bool freed = false;

		if (why && !c->stopped)
			send_reply(cn->fd, FERRY_CTL_END, -ECONNRESET, why, s, NULL, 0);
		if (t && !c->stopped) {
			bool was = c->busy;

			ferryd_client_table_remove(t, s);
			c->busy = true;
			freed = publish(c, t);
			c->busy = was;
		} else if (t) {
			ferryd_client_table_put(t);
		}
		sess_totals(s, &st);
		ferryd_log(LOG_INFO,
			   "session %u (service %s, pid %d) ended: %s; received %llu (dropped %llu, ring full, %llu too big), "
			   "sent %llu (refused %llu)",
			   s->id, s->svc->name, (int)s->pid, why ? why : "the client detached",
			   (unsigned long long)st.rx_packets, (unsigned long long)st.rx_dropped_full,
			   (unsigned long long)st.rx_dropped_big, (unsigned long long)st.tx_packets,
			   (unsigned long long)st.tx_dropped);
		c->nsessions--;
		if (freed) {
			ferryd_session_free(s);
		} else {
			struct ferryd_session **l = realloc(c->limbo, (c->nlimbo + 1) * sizeof(*l));

			/* A worker did not answer: it may still hold the session. Kept until the end
			 * (out of memory for even that: leaked, never freed under a worker). */
			if (l) {
				c->limbo = l;
				c->limbo[c->nlimbo++] = s;
			}
		}
		cn->s = NULL;
	}
	conn_close(cn);
}

/* A live service by name (a service a reload removed has an empty name). */
static struct ferryd_service *find_service(struct ferryd_control *c, const char *name)
{
	for (unsigned int i = 0; name[0] && i < c->cfg->nservices; i++)
		if (!strcmp(c->cfg->services[i].name, name))
			return &c->cfg->services[i];
	return NULL;
}

static void list_services(struct ferryd_control *c, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned int i = 0; i < c->cfg->nservices && n < len; i++)
		if (c->cfg->services[i].name[0])
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? ", " : "", c->cfg->services[i].name);
}

/* What the peer is: its pid, user and group, as the kernel says (as they were when it connected). */
static int peer_cred(struct conn *cn)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);

	if (getsockopt(cn->fd, SOL_SOCKET, SO_PEERCRED, &uc, &len))
		return -errno;
	cn->pid = uc.pid;
	cn->uid = uc.uid;
	cn->gid = uc.gid;
	return 0;
}

/* Its supplementary groups. */
static int peer_groups(struct conn *cn, gid_t *groups, int *ngroups)
{
	socklen_t len = (socklen_t)(MAX_GROUPS * sizeof(gid_t));

	*ngroups = 0;
	if (getsockopt(cn->fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len))
		return errno == ERANGE ? 0 : -errno; /* more groups than we look at: only the primary counts */
	*ngroups = (int)(len / sizeof(gid_t));
	return 0;
}

/*
 * An attach: 0 when the session runs; -errno when it was refused (the client
 * told why; the caller closes the connection); ENDED when the connection is
 * gone already.
 */
#define ENDED 1

static int attach(struct conn *cn, const struct ferry_ctl_attach *a)
{
	struct ferryd_control *c = cn->c;
	struct ferryd_service *svc;
	struct ferryd_session *s;
	struct ferryd_client_table *t;
	union ferry_sockaddr addr;
	gid_t groups[MAX_GROUPS];
	struct ferryd_sess_area areas[FERRY_RING_MAX_AREAS];
	unsigned int nareas = 0;
	int fds[FERRY_CTL_MAX_FDS], ngroups = 0, err;
	char why[160], text[160];
	char name[sizeof(a->service) + 1];

	err = peer_groups(cn, groups, &ngroups);
	if (err)
		return refuse(cn, err, "ferryd could not learn the peer's groups: %s", strerror(-err));
	if (a->version != FERRY_RING_VERSION)
		return refuse(cn, -EPROTO, "the client speaks ring ABI version %u, this ferryd version %u: rebuild it "
					  "against this libferry", a->version, FERRY_RING_VERSION);
	if (a->op != FERRY_CTL_ATTACH)
		return refuse(cn, -EPROTO, "expected an attach (op %u), got op %u", FERRY_CTL_ATTACH, a->op);
	memcpy(name, a->service, sizeof(a->service));
	name[sizeof(a->service)] = '\0';
	svc = find_service(c, name);
	if (!svc) {
		list_services(c, text, sizeof(text));
		return refuse(cn, -ESRCH, "no service '%.32s' here (services: %s)", name, text);
	}
	if (!allowed(&svc->allow, cn->uid, cn->gid, groups, ngroups)) {
		char who[96];

		user_name(cn->uid, who, sizeof(who));
		describe_allowed(&svc->allow, text, sizeof(text));
		return refuse(cn, -EACCES, "%s may not attach to service %s; allowed: %s", who, svc->name, text);
	}
	if (c->cfg->handler != FERRYD_HANDLER_CLIENTS)
		return refuse(cn, -EOPNOTSUPP, "this ferryd runs the %s handler: its services take no clients "
					       "(--handler clients)",
			      c->cfg->handler == FERRYD_HANDLER_ECHO ? "echo" : "count");
	if (a->flags & FERRY_CTL_ZEROCOPY) {
		if (!svc->zero_copy_clients)
			return refuse(cn, -EPERM, "service %s does not share its frames (ferryd --client-zero-copy %s): "
						  "attach without zero-copy",
				      svc->name, svc->name);
		nareas = ferryd_dp_areas(c->e, areas, FERRY_RING_MAX_AREAS);
		if (!nareas)
			return refuse(cn, -EOPNOTSUPP, "ferryd runs on sockets here: there are no UMEM frames to share");
	}
	if (a->flags & ~FERRY_CTL_ZEROCOPY)
		return refuse(cn, -EINVAL, "unknown attach flags 0x%x", a->flags);
	for (size_t i = 0; i < sizeof(a->reserved) / sizeof(a->reserved[0]); i++)
		if (a->reserved[i])
			return refuse(cn, -EINVAL, "reserved field %zu of the attach is not 0", i);
	if (c->table->svc[svc->id].n >= FERRYD_MAX_CLIENTS || c->nsessions >= FERRYD_MAX_SESSIONS)
		return refuse(cn, -ENOSPC, "service %s has its %u clients already (or ferryd its %u sessions)", svc->name,
			      FERRYD_MAX_CLIENTS, FERRYD_MAX_SESSIONS);

	ferryd_sockaddr_canon(&svc->addr, &addr);
	/* what the client does not ask, the service's own defaults */
	err = ferryd_session_new(svc, svc->id, &addr, ferryd_engine_workers(c->e), ++c->next_id,
				 a->rx_slots ? a->rx_slots : svc->rx_slots, a->tx_slots ? a->tx_slots : svc->tx_slots,
				 a->slot_size ? a->slot_size : svc->slot_size, areas, nareas, &s, why, sizeof(why));
	if (err)
		return refuse(cn, err, "%s", why);
	s->pid = cn->pid;
	s->uid = cn->uid;
	s->gid = cn->gid;
	s->ctl = cn;
	t = ferryd_client_table_copy(c->table);
	if (!t || ferryd_client_table_add(t, s)) {
		ferryd_client_table_put(t);
		ferryd_session_free(s);
		return refuse(cn, -ENOMEM, "out of memory");
	}
	/* The workers first: by the time the client has its rings, they are served. */
	c->nsessions++;
	cn->s = s;
	if (!publish(c, t)) {
		conn_end(cn, NULL);
		return ENDED;
	}
	if (ferryd_session_fault_handover_ms) /* tests only (session.h) */
		usleep(ferryd_session_fault_handover_ms * 1000);
	fds[0] = s->memfd;
	fds[1] = s->wake_rd;
	for (unsigned int i = 0; i < s->nw; i++)
		fds[2 + i] = s->kick_wr[i];
	for (unsigned int i = 0; i < s->nareas; i++)
		fds[2 + s->nw + i] = s->areas[i].fd; /* sealed: the client can only map it read-only */
	err = send_reply(cn->fd, FERRY_CTL_REPLY, 0, NULL, s, fds, 2 + s->nw + s->nareas);
	ferryd_session_handed(s);
	if (err) {
		ferryd_log(LOG_NOTICE, "control: pid %d went away before it had its session: %s", (int)cn->pid,
			   strerror(-err));
		conn_end(cn, NULL);
		return ENDED;
	}
	ferryd_log(LOG_INFO,
		   "session %u: pid %d (uid %u) attached to service %s, fanout %s; %u worker%s x %u RX + %u TX slots "
		   "of %u bytes (%zu KiB)%s",
		   s->id, (int)s->pid, (unsigned int)s->uid, svc->name, ferryd_fanout_name(svc->fanout), s->nw,
		   s->nw == 1 ? "" : "s", s->rx_slots, s->tx_slots, s->slot_size, s->region_size >> 10,
		   s->zc ? "; zero-copy: the queues' frames mapped read-only" : "");
	return 0;
}

/* Closes the fds a message brought (clients send none). */
static void drop_fds(struct msghdr *msg)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			close(fd);
		}
	}
}

/* ---- queries (ferryctl) -------------------------------------------------------------------- */

/*
 * Sends what is left of cn's answer, a part per message, until the socket
 * takes no more (then the watch waits for room: nothing else is read from
 * cn meanwhile) or all of it went (then cn reads again). 0, or ENDED when
 * the connection is gone (the peer left, or the query could not be read).
 */
static int answer_more(struct conn *cn)
{
	struct ferryd_control *c = cn->c;

	while (cn->ans_off < cn->ans_len) {
		size_t n = cn->ans_len - cn->ans_off, room = cn->part_max - sizeof(cn->ans_hdr);
		struct iovec iov[2];
		struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };

		if (n > room)
			n = room;
		cn->ans_hdr.len = (uint32_t)n;
		cn->ans_hdr.flags = cn->ans_off + n == cn->ans_len ? FERRY_CTL_ANSWER_LAST : 0;
		iov[0] = (struct iovec){ .iov_base = &cn->ans_hdr, .iov_len = sizeof(cn->ans_hdr) };
		iov[1] = (struct iovec){ .iov_base = cn->ans + cn->ans_off, .iov_len = n };
		if (sendmsg(cn->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EMSGSIZE && cn->part_max / 2 >= PART_MIN) {
				cn->part_max /= 2; /* a send buffer smaller than a part: smaller parts */
				continue;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				/* a reader slower than the answer is long: the rest when there is room */
				if (ferry_reactor_modify(c->r, cn->watch, EPOLLOUT))
					break;
				return 0;
			}
			break;
		}
		cn->ans_off += n;
		cn->ans_hdr.part++;
		cn->since_ms = ferryd_now_ms();
	}
	if (cn->ans_off < cn->ans_len || cn->close_after ||
	    ferry_reactor_modify(c->r, cn->watch, EPOLLIN)) {
		conn_end(cn, NULL);
		return ENDED;
	}
	free(cn->ans);
	cn->ans = NULL;
	return 0;
}

/* Answers with doc (taken: freed here), status and the query's seq and verb. 0, or ENDED. */
static int answer(struct conn *cn, const struct ferry_ctl_query *q, int status, char *doc, size_t len)
{
	memset(&cn->ans_hdr, 0, sizeof(cn->ans_hdr));
	cn->ans_hdr.magic = FERRY_CTL_MAGIC;
	cn->ans_hdr.version = FERRY_RING_VERSION;
	cn->ans_hdr.op = FERRY_CTL_ANSWER;
	cn->ans_hdr.status = status;
	cn->ans_hdr.seq = q->seq;
	cn->ans_hdr.verb = q->verb;
	cn->ans = doc;
	cn->ans_len = len;
	cn->ans_off = 0;
	if (!cn->part_max)
		cn->part_max = FERRY_CTL_PART_MAX;
	return answer_more(cn);
}

/* {"schema": 1, "verb": ..., "status": status, key: text}: the answer of a refused query, or of a reload. */
static int answer_text(struct conn *cn, const struct ferry_ctl_query *q, int status, const char *key,
		       const char *text)
{
	struct ferryd_json j;
	char *doc;
	size_t len;

	ferryd_json_init(&j);
	ferryd_json_object(&j, NULL);
	ferryd_json_u64(&j, "schema", FERRY_CTL_SCHEMA);
	ferryd_json_str(&j, "verb", ferryd_query_verb_name(q->verb));
	ferryd_json_i64(&j, "status", status);
	ferryd_json_str(&j, key, text);
	ferryd_json_end(&j);
	if (ferryd_json_finish(&j, &doc, &len)) {
		conn_end(cn, NULL); /* out of memory for a few bytes: nothing better to say */
		return ENDED;
	}
	return answer(cn, q, status, doc, len);
}

static int answer_error(struct conn *cn, const struct ferry_ctl_query *q, int status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int answer_error(struct conn *cn, const struct ferry_ctl_query *q, int status, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return answer_text(cn, q, status, "error", why);
}

static int cmp_session(const void *a, const void *b)
{
	const struct ferryd_session *x = *(const struct ferryd_session *const *)a;
	const struct ferryd_session *y = *(const struct ferryd_session *const *)b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* Root, or the user ferryd runs as: who may make it read its configuration again. */
static int reload(struct conn *cn, const struct ferry_ctl_query *q)
{
	struct ferryd_control *c = cn->c;
	char why[256] = "";
	int err;

	if (cn->uid != 0 && cn->uid != geteuid()) {
		ferryd_log(LOG_NOTICE, "control: pid %d (uid %u) may not reload", (int)cn->pid, (unsigned int)cn->uid);
		return answer_error(cn, q, -EPERM, "only root or ferryd's own user (uid %u) may reload; this is uid %u",
				    (unsigned int)geteuid(), (unsigned int)cn->uid);
	}
	if (!c->reload) {
		ferryd_log(LOG_NOTICE, "control: pid %d (uid %u) asked for a reload: not supported", (int)cn->pid,
			   (unsigned int)cn->uid);
		return answer_error(cn, q, -EOPNOTSUPP, "this ferryd cannot reload its configuration: restart it to "
							"change it");
	}
	err = ferryd_control_exclusive(c, c->reload, c->reload_user, why, sizeof(why));
	if (err > 0)
		err = -EIO; /* a hook that broke the -errno rule: still a failure */
	ferryd_log(err ? LOG_ERR : LOG_NOTICE, "control: reload asked by pid %d (uid %u): %s%s", (int)cn->pid,
		   (unsigned int)cn->uid, err ? "failed: " : "", why[0] ? why : err ? strerror(-err) : "done");
	if (err)
		return answer_text(cn, q, err, "error", why[0] ? why : strerror(-err));
	return answer_text(cn, q, 0, "reason", why[0] ? why : "reloaded");
}

/* A query: answered whole, or refused with a reason; the connection stays for the next one. */
static void query(struct conn *cn, const void *buf, size_t n, bool truncated)
{
	struct ferryd_control *c = cn->c;
	const struct ferryd_session *sess[FERRYD_MAX_SESSIONS];
	struct ferryd_query_src src = { .cfg = c->cfg, .e = c->e, .info = c->info, .control = c->path,
					.started_ms = c->started_ms, .table = c->table, .sess = sess };
	struct ferry_ctl_query q;
	struct ferryd_json j;
	char *doc;
	size_t len;
	int err;

	memset(&q, 0, sizeof(q));
	memcpy(&q, buf, n < sizeof(q) ? n : sizeof(q));
	cn->since_ms = ferryd_now_ms();
	if (n != sizeof(q) || truncated || q.version != FERRY_RING_VERSION) {
		cn->close_after = true;
		if (q.version != FERRY_RING_VERSION)
			answer_error(cn, &q, -EPROTO, "the client speaks ring ABI version %u, this ferryd version %u",
				     q.version, FERRY_RING_VERSION);
		else
			answer_error(cn, &q, -EPROTO, "a query is %zu bytes, not %zu", sizeof(q), n);
		return;
	}
	if (!ferryd_query_verb_name(q.verb)) {
		answer_error(cn, &q, -EINVAL, "unknown verb %u (this ferryd knows status, stats, services, clients, "
					      "reload)", q.verb);
		return;
	}
	if (q.flags || q.reserved[0] || q.reserved[1]) {
		answer_error(cn, &q, -EINVAL, "unknown query flags 0x%x, or reserved fields not 0", q.flags);
		return;
	}
	if (q.verb == FERRY_CTL_RELOAD) {
		reload(cn, &q);
		return;
	}
	for (struct conn *o = c->conns; o && src.nsess < FERRYD_MAX_SESSIONS; o = o->next)
		if (o->s)
			sess[src.nsess++] = o->s;
	qsort(sess, src.nsess, sizeof(sess[0]), cmp_session);
	ferryd_json_init(&j);
	err = ferryd_query_answer(&src, q.verb, &j);
	if (!err)
		err = ferryd_json_finish(&j, &doc, &len);
	else
		ferryd_json_free(&j);
	if (err) {
		answer_error(cn, &q, err, "ferryd could not write the answer: %s", strerror(-err));
		return;
	}
	answer(cn, &q, 0, doc, len);
}

static void on_conn(void *user, uint32_t events)
{
	struct conn *cn = user;
	struct ferryd_control *c = cn->c;
	union {
		struct ferry_ctl_attach a;
		struct ferry_ctl_query q;
		uint8_t raw[512];
	} m;
	union {
		char buf[CMSG_SPACE(sizeof(int) * 16)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	ssize_t n;
	int err;

	if (c->busy)
		return; /* its turn comes after the attach or end in progress */
	if (cn->ans) {
		/* the rest of an answer: the next message is read once it is all sent */
		if (events & (EPOLLHUP | EPOLLERR))
			conn_end(cn, NULL);
		else
			answer_more(cn);
		return;
	}
	n = recvmsg(cn->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		if (events & (EPOLLHUP | EPOLLERR))
			conn_end(cn, NULL);
		return;
	}
	if (n >= 0)
		drop_fds(&msg); /* an empty message brings fds as well as any other */
	if (n <= 0) {
		conn_end(cn, NULL); /* closed: the client detached, or died */
		return;
	}
	if (cn->s) {
		/* attached: the only thing left to say is goodbye; anything else ends it with a reason */
		bool bye = (size_t)n >= offsetof(struct ferry_ctl_attach, op) + sizeof(m.a.op) &&
			   m.a.magic == FERRY_CTL_MAGIC && m.a.op == FERRY_CTL_DETACH;

		conn_end(cn, bye ? NULL : "a message other than detach on an attached session");
		return;
	}
	if ((size_t)n < offsetof(struct ferry_ctl_attach, op) + sizeof(m.a.op) || m.a.magic != FERRY_CTL_MAGIC) {
		refuse(cn, -EPROTO, "not a ferry client (bad magic or a %zd-byte message)", n);
		conn_end(cn, NULL);
		return;
	}
	if (m.q.op == FERRY_CTL_QUERY) {
		query(cn, &m, (size_t)n, msg.msg_flags & MSG_TRUNC);
		return;
	}
	if ((size_t)n != sizeof(m.a) || (msg.msg_flags & MSG_TRUNC)) {
		if (m.a.version != FERRY_RING_VERSION)
			refuse(cn, -EPROTO, "the client speaks ring ABI version %u, this ferryd version %u", m.a.version,
			       FERRY_RING_VERSION);
		else
			refuse(cn, -EPROTO, "an attach is %zu bytes, not %zd", sizeof(m.a), n);
		conn_end(cn, NULL);
		return;
	}
	c->busy = true;
	err = attach(cn, &m.a);
	c->busy = false;
	if (err < 0)
		conn_end(cn, NULL); /* refused: told why, and closed */
}

static void on_accept(void *user, uint32_t events)
{
	struct ferryd_control *c = user;

	(void)events;
	if (c->busy)
		return;
	for (int i = 0; i < 16; i++) {
		int fd = accept4(c->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *cn;

		if (fd < 0)
			return;
		if (c->nconns >= MAX_CONNS || !(cn = calloc(1, sizeof(*cn)))) {
			close(fd);
			continue;
		}
		cn->c = c;
		cn->fd = fd;
		cn->since_ms = ferryd_now_ms();
		if (peer_cred(cn) || ferry_reactor_add(c->r, fd, EPOLLIN, on_conn, cn, &cn->watch)) {
			close(fd);
			free(cn);
			continue;
		}
		cn->next = c->conns;
		if (cn->next)
			cn->next->pprev = &cn->next;
		cn->pprev = &c->conns;
		c->conns = cn;
		c->nconns++;
		if (!ferry_timer_armed(c->tick))
			ferry_timer_arm(c->tick, TICK_MS, TICK_MS);
	}
}

/* The tick: sessions a worker found broken, and connections that never asked to attach. */
static void on_tick(void *user, struct ferry_timer *t)
{
	struct ferryd_control *c = user;
	uint64_t now = ferryd_now_ms();
	bool waiting = false;

	if (c->busy) {
		ferry_timer_arm(t, 1, TICK_MS);
		return;
	}
	for (struct conn *cn = c->conns, *next; cn; cn = next) {
		char why[sizeof(cn->s->failed_why)];

		next = cn->next;
		if (cn->s && (cn->ending || ferryd_session_failed(cn->s, why, sizeof(why)))) {
			if (!cn->ending)
				snprintf(cn->end_why, sizeof(cn->end_why), "ferryd ended the session: %s", why);
			conn_end(cn, cn->end_why);
			next = c->conns; /* the list may have changed under a publish: start over */
			continue;
		}
		if (!cn->s && now >= cn->since_ms + ATTACH_MS) {
			conn_end(cn, NULL);
			next = c->conns;
			continue;
		}
		waiting |= !cn->s;
	}
	if (!waiting)
		ferry_timer_disarm(t);
}

/* A worker found a client breaking the rules: ended at once (the tick would find it too). */
static void on_failed(void *user, struct ferryd_session *s)
{
	struct ferryd_control *c = user;

	for (struct conn *cn = c->conns; cn; cn = cn->next)
		if (cn->s == s && !cn->ending) {
			char why[128] = "";

			ferryd_session_failed(s, why, sizeof(why));
			cn->ending = true;
			snprintf(cn->end_why, sizeof(cn->end_why), "ferryd ended the session: %s", why);
		}
	ferry_timer_arm(c->tick, 0, TICK_MS);
}

/* ---- the socket ------------------------------------------------------------------------------ */

/* A socket already at path: a live ferryd's (-EADDRINUSE), or a dead one's (removed). */
static int clear_path(const char *path, char *why, size_t whylen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, err;

	if (lstat(path, &st))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(why, whylen, "%s exists and is not a socket: not touching it", path);
		return -EEXIST;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	err = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ? -errno : 0;
	close(fd);
	if (!err) {
		snprintf(why, whylen, "another ferryd serves the control socket %s: give this one its own --control",
			 path);
		return -EADDRINUSE;
	}
	if (err != -ECONNREFUSED) {
		snprintf(why, whylen, "control socket %s: %s", path, strerror(-err));
		return err;
	}
	unlink(path);
	ferryd_log(LOG_NOTICE, "removed the control socket a previous ferryd left at %s", path);
	return 0;
}

int ferryd_control_new(struct ferry_reactor *r, struct ferryd_config *cfg, struct ferryd_engine *e,
		       struct ferryd_control **out, char *why, size_t whylen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ferryd_control *c;
	char dir[sizeof(sa.sun_path)];
	struct stat st;
	mode_t old;
	int err;

	*out = NULL;
	if (strlen(cfg->control) >= sizeof(sa.sun_path)) {
		snprintf(why, whylen, "control socket path %s: longer than %zu", cfg->control, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	c->r = r;
	c->cfg = cfg;
	c->e = e;
	c->lfd = -1;
	c->started_ms = ferryd_now_ms();
	snprintf(c->path, sizeof(c->path), "%s", cfg->control);
	c->table = ferryd_client_table_new();
	c->tick = ferry_timer_new(r, on_tick, c);
	if (!c->table || !c->tick) {
		err = -ENOMEM;
		snprintf(why, whylen, "out of memory");
		goto fail;
	}
	/* the fanout of each service, as the workers see it */
	for (unsigned int i = 0; i < cfg->nservices; i++)
		c->table->svc[cfg->services[i].id].fanout = cfg->services[i].fanout;
	snprintf(dir, sizeof(dir), "%s", cfg->control);
	err = ferryd_mkdir_p(dirname(dir));
	if (err) {
		snprintf(why, whylen, "cannot create the directory of %s: %s", cfg->control, strerror(-err));
		goto fail;
	}
	err = clear_path(c->path, why, whylen);
	if (err) {
		if (!why[0])
			snprintf(why, whylen, "control socket %s: %s", c->path, strerror(-err));
		goto fail;
	}
	c->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->lfd < 0)
		goto sys;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c->path);
	/* Made unreachable to others, then opened as configured: never wider than asked, even briefly. */
	old = umask(0177);
	err = bind(c->lfd, (struct sockaddr *)&sa, sizeof(sa)) ? -errno : 0;
	umask(old);
	if (err) {
		snprintf(why, whylen, "binding the control socket %s: %s", c->path, strerror(-err));
		goto fail;
	}
	if (lstat(c->path, &st))
		goto sys_unlink;
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	if (lchown(c->path, cfg->control_uid >= 0 ? (uid_t)cfg->control_uid : (uid_t)-1,
		   cfg->control_gid >= 0 ? (gid_t)cfg->control_gid : (gid_t)-1) ||
	    chmod(c->path, cfg->control_mode) || listen(c->lfd, BACKLOG))
		goto sys_unlink;
	err = ferry_reactor_add(r, c->lfd, EPOLLIN, on_accept, c, &c->lwatch);
	if (err) {
		c->lwatch = NULL;
		snprintf(why, whylen, "watching the control socket: %s", strerror(-err));
		goto fail;
	}
	ferryd_dp_on_session_failed(e, on_failed, c);
	err = ferryd_dp_set_clients(e, c->table, why, whylen);
	if (err)
		goto fail;
	*out = c;
	return 0;
sys_unlink:
	err = -errno;
	snprintf(why, whylen, "setting up the control socket %s: %s", c->path, strerror(-err));
	goto fail;
sys:
	err = -errno;
	snprintf(why, whylen, "control socket: %s", strerror(-err));
fail:
	ferryd_control_stop(c, NULL);
	ferryd_control_free(c);
	return err;
}

/* ---- what a reload changes ---------------------------------------------------------------------- */

int ferryd_control_exclusive(struct ferryd_control *c, int (*fn)(void *user, char *why, size_t whylen), void *user,
			     char *why, size_t whylen)
{
	bool was = c->busy;
	int err;

	/* fn may run the reactor (a publish waits for the workers): connections wait their turn */
	c->busy = true;
	err = fn(user, why, whylen);
	c->busy = was;
	return err;
}

void ferryd_control_end_service(struct ferryd_control *c, const struct ferryd_service *svc, const char *why)
{
	bool again = true;

	/* conn_end() may run the reactor (publishing): the list is walked again after each end */
	while (again) {
		again = false;
		for (struct conn *cn = c->conns; cn; cn = cn->next)
			if (cn->s && cn->s->svc == svc) {
				conn_end(cn, why);
				again = true;
				break;
			}
	}
}

int ferryd_control_set_fanout(struct ferryd_control *c, const struct ferryd_service *svc)
{
	struct ferryd_client_table *t;

	if (c->table->svc[svc->id].fanout == svc->fanout)
		return 0;
	t = ferryd_client_table_copy(c->table);
	if (!t)
		return -ENOMEM;
	t->svc[svc->id].fanout = svc->fanout;
	return publish(c, t) ? 0 : -ETIMEDOUT;
}

int ferryd_control_set_access(struct ferryd_control *c, char *why, size_t whylen)
{
	const struct ferryd_config *cfg = c->cfg;

	if (!c->ino)
		return 0;
	if (lchown(c->path, cfg->control_uid >= 0 ? (uid_t)cfg->control_uid : (uid_t)-1,
		   cfg->control_gid >= 0 ? (gid_t)cfg->control_gid : (gid_t)-1) ||
	    chmod(c->path, cfg->control_mode)) {
		snprintf(why, whylen, "control socket %s: %s", c->path, strerror(errno));
		return -errno;
	}
	return 0;
}

/* Removes the socket file if it is still the one we bound (not a successor's). */
static void unlink_ours(struct ferryd_control *c)
{
	struct stat st;

	if (c->ino && !lstat(c->path, &st) && st.st_dev == c->dev && st.st_ino == c->ino)
		unlink(c->path);
	c->ino = 0;
}

void ferryd_control_stop(struct ferryd_control *c, const char *why)
{
	if (!c || c->stopped)
		return;
	if (c->lwatch)
		ferry_reactor_del(c->r, c->lwatch);
	c->lwatch = NULL;
	if (c->lfd >= 0)
		close(c->lfd);
	c->lfd = -1;
	unlink_ours(c);
	ferry_timer_disarm(c->tick);
	/* Told, and disconnected; the memory stays until the workers are gone. */
	for (struct conn *cn = c->conns; cn; cn = cn->next)
		if (cn->s && why)
			send_reply(cn->fd, FERRY_CTL_END, -ECONNRESET, why, cn->s, NULL, 0);
	c->stopped = true;
	while (c->conns) {
		struct conn *cn = c->conns;
		struct ferryd_session *s = cn->s;

		cn->s = NULL;
		conn_close(cn);
		if (s) {
			struct ferryd_session **l = realloc(c->limbo, (c->nlimbo + 1) * sizeof(*l));

			c->nsessions--;
			if (l) {
				c->limbo = l;
				c->limbo[c->nlimbo++] = s;
			}
		}
	}
}

void ferryd_control_free(struct ferryd_control *c)
{
	if (!c)
		return;
	ferryd_control_stop(c, NULL);
	for (unsigned int i = 0; i < c->nlimbo; i++)
		ferryd_session_free(c->limbo[i]);
	free(c->limbo);
	ferry_timer_free(c->tick);
	ferryd_client_table_put(c->table);
	free(c);
}

void ferryd_control_set_info(struct ferryd_control *c, const struct ferryd_control_info *info)
{
	if (c)
		c->info = *info;
}

void ferryd_control_set_reload(struct ferryd_control *c, int (*fn)(void *user, char *why, size_t whylen),
			       void *user)
{
	if (!c)
		return;
	c->reload = fn;
	c->reload_user = user;
}

unsigned int ferryd_control_sessions(const struct ferryd_control *c)
{
	return c ? c->nsessions : 0;
}

void ferryd_control_print(struct ferryd_control *c, FILE *out)
{
	for (struct conn *cn = c ? c->conns : NULL; cn; cn = cn->next) {
		const struct ferryd_session *s = cn->s;
		struct ferryd_sess_stats st;

		if (!s)
			continue;
		sess_totals(s, &st);
		fprintf(out,
			"client %u service=%s pid=%d uid=%u rx_packets=%llu rx_bytes=%llu rx_dropped_full=%llu "
			"rx_dropped_big=%llu rx_zero_copy=%llu tx_packets=%llu tx_bytes=%llu tx_dropped=%llu wakeups=%llu "
			"kicks=%llu\n",
			s->id, s->svc->name, (int)s->pid, (unsigned int)s->uid, (unsigned long long)st.rx_packets,
			(unsigned long long)st.rx_bytes, (unsigned long long)st.rx_dropped_full,
			(unsigned long long)st.rx_dropped_big, (unsigned long long)st.rx_zero_copy,
			(unsigned long long)st.tx_packets, (unsigned long long)st.tx_bytes,
			(unsigned long long)st.tx_dropped, (unsigned long long)st.wakeups, (unsigned long long)st.kicks);
	}
}
