/* SPDX-License-Identifier: MIT */
/* ferryctl: asks ferryd over its control socket, prints the answer (ferryctl.h). */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <ferry/ring.h>

#include "ferryctl.h"

#define ANSWER_MS 10000		 /* the whole of one answer, however many parts */
#define DOC_MAX (256u << 20)	 /* an answer larger than this is not ferryd's */

struct ctl {
	int fd;
	const char *path;
	uint32_t seq;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: ferryctl [--socket PATH] [--json] COMMAND\n"
		"Asks ferryd over its control socket.\n"
		"\n"
		"Commands:\n"
		"  status     what runs: version, mode, interface, queues, workers, XDP, services, clients\n"
		"  stats      every counter: ferryd's, each worker's, each service's, each client's\n"
		"  services   the services: address, fanout, who may attach, zero-copy, clients\n"
		"  clients    the attached clients: session, pid, user, ring sizes, counters\n"
		"  reload     make ferryd read its configuration again (root or ferryd's user)\n"
		"  metrics    the counters in the Prometheus text exposition format\n"
		"\n"
		"Options:\n"
		"  -s, --socket PATH   ferryd's control socket (default %s)\n"
		"  -j, --json          print ferryd's JSON answer as it is (not with metrics)\n"
		"  -h, --help          this text\n"
		"\n"
		"Exit status: 0 done; 1 no ferryd at the socket; 2 bad command line; 3 not\n"
		"allowed (the socket's permissions, or a reload by another user); 4 ferryd\n"
		"answered with an error (e.g. a reload it cannot do); 5 no sensible answer\n"
		"(closed, timed out, another protocol version).\n",
		FERRY_CTL_DEFAULT_PATH);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int ctl_connect(struct ctl *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int err;

	if (strlen(c->path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "ferryctl: %s: path longer than a unix socket's (%zu)\n", c->path,
			sizeof(sa.sun_path) - 1);
		return FERRYCTL_USAGE;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c->path);
	c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		fprintf(stderr, "ferryctl: socket: %s\n", strerror(errno));
		return FERRYCTL_BROKEN;
	}
	if (!connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)))
		return FERRYCTL_OK;
	err = errno;
	close(c->fd);
	c->fd = -1;
	switch (err) {
	case ENOENT:
	case ECONNREFUSED:
		fprintf(stderr, "ferryctl: no ferryd at %s (%s): is it running? (--socket names another)\n", c->path,
			err == ENOENT ? "no such file" : "nobody listening");
		return FERRYCTL_NO_DAEMON;
	case EACCES:
	case EPERM:
		fprintf(stderr, "ferryctl: %s: %s: ferryd's socket is for root and its group (ferryd --control-group, "
				"--control-mode)\n", c->path, strerror(err));
		return FERRYCTL_DENIED;
	default:
		fprintf(stderr, "ferryctl: connecting to %s: %s\n", c->path, strerror(err));
		return err == ENOTDIR ? FERRYCTL_NO_DAEMON : FERRYCTL_BROKEN;
	}
}

/* Waits for the next message until deadline: its length, 0 when ferryd closed, -1 with errno (ETIMEDOUT). */
static ssize_t recv_part(int fd, void *buf, size_t len, uint64_t deadline, int *flags)
{
	for (;;) {
		struct iovec iov = { .iov_base = buf, .iov_len = len };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t now = now_ms();
		ssize_t n;

		if (now >= deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (poll(&p, 1, (int)(deadline - now)) < 0 && errno != EINTR)
			return -1;
		n = recvmsg(fd, &msg, MSG_DONTWAIT);
		if (n >= 0) {
			*flags = msg.msg_flags;
			return n;
		}
		if (errno != EAGAIN && errno != EINTR)
			return -1;
	}
}

static int broken(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int broken(const char *verb, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ferryctl: %s: ", verb);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return FERRYCTL_BROKEN;
}

/*
 * Asks verb and takes the whole answer: FERRYCTL_OK with *doc (ferryd's
 * document, parsed) and *status (0 or ferryd's -errno), or another exit
 * status, said on stderr.
 */
static int ask(struct ctl *c, uint32_t verb, const char *name, json_t **doc, int *status)
{
	struct ferry_ctl_query q = { .magic = FERRY_CTL_MAGIC, .version = FERRY_RING_VERSION, .op = FERRY_CTL_QUERY,
				     .verb = verb, .seq = ++c->seq };
	uint8_t *part = malloc(FERRY_CTL_PART_MAX);
	uint64_t deadline = now_ms() + ANSWER_MS;
	char *text = NULL;
	size_t len = 0;
	uint32_t expect = 0;
	json_error_t jerr;
	int ret = FERRYCTL_BROKEN;

	*doc = NULL;
	if (!part)
		return broken(name, "out of memory");
	if (send(c->fd, &q, sizeof(q), MSG_NOSIGNAL) != (ssize_t)sizeof(q)) {
		ret = broken(name, "sending the query to %s: %s", c->path, strerror(errno));
		goto out;
	}
	for (;;) {
		struct ferry_ctl_answer h;
		int flags = 0;
		ssize_t n = recv_part(c->fd, part, FERRY_CTL_PART_MAX, deadline, &flags);
		char *more;

		if (n < 0) {
			ret = broken(name, "%s", errno == ETIMEDOUT ? "no answer from ferryd within 10 s"
								     : strerror(errno));
			goto out;
		}
		if (n == 0) {
			ret = broken(name, "ferryd closed the connection before it answered");
			goto out;
		}
		if ((size_t)n >= sizeof(struct ferry_ctl_reply) && ((struct ferry_ctl_reply *)part)->magic ==
		    FERRY_CTL_MAGIC && ((struct ferry_ctl_reply *)part)->op == FERRY_CTL_REPLY) {
			/* a ferryd that knows no queries takes this for a bad attach, and says so */
			struct ferry_ctl_reply *r = (struct ferry_ctl_reply *)part;

			r->why[sizeof(r->why) - 1] = '\0';
			ret = broken(name, "ferryd does not answer queries (older than this ferryctl?): %s", r->why);
			goto out;
		}
		if ((size_t)n < sizeof(h) || (flags & MSG_TRUNC)) {
			ret = broken(name, "a %zd-byte message is no answer", n);
			goto out;
		}
		memcpy(&h, part, sizeof(h));
		if (h.magic != FERRY_CTL_MAGIC || h.op != FERRY_CTL_ANSWER) {
			ret = broken(name, "not an answer (magic 0x%x, op %u)", h.magic, h.op);
			goto out;
		}
		if (h.version != FERRY_RING_VERSION) {
			ret = broken(name, "ferryd speaks protocol version %u, this ferryctl %u", h.version,
				     FERRY_RING_VERSION);
			goto out;
		}
		if (h.seq != q.seq || h.verb != verb || h.part != expect || h.len != (size_t)n - sizeof(h)) {
			ret = broken(name, "part %u of the answer to query %u (verb %u, %u bytes) does not follow "
					   "part %u of query %u (verb %u, %zd bytes)",
				     h.part, h.seq, h.verb, h.len, expect, q.seq, verb, n - (ssize_t)sizeof(h));
			goto out;
		}
		if (len + h.len > DOC_MAX) {
			ret = broken(name, "an answer larger than %u MiB", DOC_MAX >> 20);
			goto out;
		}
		more = realloc(text, len + h.len + 1);
		if (!more) {
			ret = broken(name, "out of memory");
			goto out;
		}
		text = more;
		memcpy(text + len, part + sizeof(h), h.len);
		len += h.len;
		expect++;
		*status = h.status;
		if (h.flags & FERRY_CTL_ANSWER_LAST)
			break;
	}
	*doc = json_loadb(text ? text : "", len, 0, &jerr);
	if (!*doc) {
		ret = broken(name, "ferryd's answer is not JSON (%s at byte %d)", jerr.text, jerr.position);
		goto out;
	}
	if (!json_is_object(*doc)) {
		json_decref(*doc);
		*doc = NULL;
		ret = broken(name, "ferryd's answer is not a JSON object");
		goto out;
	}
	ret = FERRYCTL_OK;
out:
	free(text);
	free(part);
	return ret;
}

/* An error ferryd answered: said on stderr; the exit status it means. */
static int refused(const char *name, json_t *doc, int status)
{
	const char *why = json_string_value(json_object_get(doc, "error"));

	fprintf(stderr, "ferryctl: %s: %s (%s)\n", name, why ? why : "refused", strerror(-status));
	return status == -EPERM || status == -EACCES ? FERRYCTL_DENIED : FERRYCTL_FAILED;
}

static const struct {
	const char *name;
	uint32_t verb;
	void (*show)(FILE *out, json_t *doc);
} commands[] = {
	{ "status", FERRY_CTL_STATUS, ferryctl_show_status },
	{ "stats", FERRY_CTL_STATS, ferryctl_show_stats },
	{ "services", FERRY_CTL_SERVICES, ferryctl_show_services },
	{ "clients", FERRY_CTL_CLIENTS, ferryctl_show_clients },
	{ "reload", FERRY_CTL_RELOAD, NULL },
	{ "metrics", 0, NULL },
};

static int run(struct ctl *c, unsigned int cmd, bool json)
{
	const char *name = commands[cmd].name;
	json_t *doc = NULL, *stats = NULL;
	int status = 0, ret;

	if (!commands[cmd].verb) {
		/* metrics: what runs, then every counter, on one connection */
		ret = ask(c, FERRY_CTL_STATUS, name, &doc, &status);
		if (ret == FERRYCTL_OK && status)
			ret = refused(name, doc, status);
		if (ret == FERRYCTL_OK)
			ret = ask(c, FERRY_CTL_STATS, name, &stats, &status);
		if (ret == FERRYCTL_OK && status)
			ret = refused(name, stats, status);
		if (ret == FERRYCTL_OK)
			ferryctl_show_metrics(stdout, doc, stats);
		goto out;
	}
	ret = ask(c, commands[cmd].verb, name, &doc, &status);
	if (ret != FERRYCTL_OK)
		goto out;
	if (json) {
		/* ferryd's document as it is (re-indented), also when it is an error */
		json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
	}
	if (status) {
		ret = refused(name, doc, status);
		goto out;
	}
	if (json)
		goto out;
	if (commands[cmd].show) {
		commands[cmd].show(stdout, doc);
	} else {
		const char *why = json_string_value(json_object_get(doc, "reason"));

		printf("ferryd reloaded its configuration%s%s\n", why ? ": " : "", why ? why : "");
	}
out:
	json_decref(doc);
	json_decref(stats);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl c = { .fd = -1, .path = FERRY_CTL_DEFAULT_PATH };
	bool json = false;
	unsigned int cmd;
	int o, ret;

	while ((o = getopt_long(argc, argv, "s:jh", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			c.path = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return FERRYCTL_OK;
		default:
			fprintf(stderr, "Try 'ferryctl --help'.\n");
			return FERRYCTL_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "ferryctl: %s\nTry 'ferryctl --help'.\n",
			optind == argc ? "which command? (status, stats, services, clients, reload, metrics)"
				       : "one command at a time");
		return FERRYCTL_USAGE;
	}
	for (cmd = 0; cmd < sizeof(commands) / sizeof(commands[0]); cmd++)
		if (!strcmp(argv[optind], commands[cmd].name))
			break;
	if (cmd == sizeof(commands) / sizeof(commands[0])) {
		fprintf(stderr, "ferryctl: unknown command '%s' (status, stats, services, clients, reload, metrics)\n"
				"Try 'ferryctl --help'.\n", argv[optind]);
		return FERRYCTL_USAGE;
	}
	if (json && !commands[cmd].verb) {
		fprintf(stderr, "ferryctl: metrics is Prometheus text, not JSON: drop --json (or use stats --json)\n");
		return FERRYCTL_USAGE;
	}
	ret = ctl_connect(&c);
	if (ret != FERRYCTL_OK)
		return ret;
	ret = run(&c, cmd, json);
	close(c.fd);
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "ferryctl: writing the answer: %s\n", strerror(errno));
		if (ret == FERRYCTL_OK)
			ret = FERRYCTL_BROKEN;
	}
	return ret;
}
