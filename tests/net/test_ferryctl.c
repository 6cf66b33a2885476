/* SPDX-License-Identifier: MIT */
/*
 * ferryctl against the real ferryd in the fixture's host namespace: its
 * counters as JSON match what the peer sent and what the client got (both
 * engines); metrics is exposition text that Prometheus' own parser
 * (python3-prometheus-client) reads, with the same numbers; no ferryd at the
 * path is one line and exit 1; reload answers what it changed, and from
 * another user -EPERM, while that user may still read; 200 sessions' worth
 * of clients arrives whole, in several parts, on a connection that asks
 * again, even while another reader is slow; bad queries get their status.
 */
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <ferry/ring.h>

#include "client_proc.h"
#include "ferryd_proc.h"
#include "hostile_client.h"
#include "netns.h"

#define PORT 9000
#define READY_MS 15000
#define EXIT_MS 15000
#define ATTACH_MS 5000
#define DELIVER_MS 10000
#define ANSWER_MS 5000
#define COUNT 500
#define NOBODY 65534
#define NSESS 200
#define NSVC 4
#define SLOW_ASKS 8
#define OUT_MAX (8u << 20)

static struct {
	struct ferry_testns ns;
	struct ferry_test_ferryd d;
	struct ferry_test_client c;
	struct ferry_test_raw *raw; /* NSESS raw sessions */
	char *out;		    /* ferryctl's stdout */
	char tmp[128];		    /* a file of the test's own (stderr, a script), removed at teardown */
} fx = { .d = FERRY_TEST_FERRYD_INIT, .c = { .pid = -1 } };

static void teardown(void)
{
	if (fx.raw)
		for (int i = 0; i < NSESS; i++)
			ferry_test_raw_close(&fx.raw[i]);
	free(fx.raw);
	fx.raw = NULL;
	ferry_test_client_free(&fx.c);
	ferry_test_ferryd_stop(&fx.d);
	ferry_testns_teardown(&fx.ns);
	free(fx.out);
	fx.out = NULL;
	if (fx.tmp[0]) {
		char more[160];

		unlink(fx.tmp);
		snprintf(more, sizeof(more), "%s.err", fx.tmp);
		unlink(more);
		snprintf(more, sizeof(more), "%s.py", fx.tmp);
		unlink(more);
	}
}

static void env_up_queues(unsigned int queues)
{
	int err;

	if (!ferry_test_is_root())
		cr_skip_test("needs root for network namespaces and XDP");
	fx.out = malloc(OUT_MAX);
	cr_assert(fx.out, "out of memory");
	snprintf(fx.tmp, sizeof(fx.tmp), "/tmp/ferryt-ctl-%d", (int)getpid());
	err = queues > 1 ? ferry_testns_setup_queues(&fx.ns, queues) : ferry_testns_setup(&fx.ns);
	cr_assert_eq(err, 0, "expected the namespace fixture to come up, got %s", strerror(-err));
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
	ferry_test_ferryd_start(&fx.d, &fx.ns, "ctl", args, READY_MS);
}

static void stop_ferryd(void)
{
	ferry_test_ferryd_stop_clean(&fx.d, EXIT_MS);
}

static const char *ferryctl_path(void)
{
	static char path[512];
	const char *b = getenv("FERRY_BUILD");

	snprintf(path, sizeof(path), "%s/ferryctl", b && *b ? b : "build");
	return path;
}

/*
 * Runs ferryctl with args against socket: its exit status; its stdout in
 * fx.out, its stderr in the returned buffer (static, one line or a few).
 */
static int ferryctl(const char *socket, const char *args, const char **err)
{
	static char errbuf[4096];
	char errfile[160];
	int st;

	cr_assert_eq(access(ferryctl_path(), X_OK), 0, "expected an executable ferryctl at %s (set FERRY_BUILD)",
		     ferryctl_path());
	snprintf(errfile, sizeof(errfile), "%s.err", fx.tmp);
	st = ferry_test_capture(fx.out, OUT_MAX, "%s --socket %s %s 2>%s", ferryctl_path(), socket, args, errfile);
	ferry_test_capture(errbuf, sizeof(errbuf), "cat %s", errfile);
	if (err)
		*err = errbuf;
	return st;
}

/* ferryctl --json VERB: the document, parsed (asserting exit 0 and valid JSON). */
static json_t *ferryctl_json(const char *verb)
{
	char args[64];
	const char *err;
	json_error_t je;
	json_t *doc;
	int st;

	snprintf(args, sizeof(args), "--json %s", verb);
	st = ferryctl(fx.d.control, args, &err);
	cr_assert_eq(st, 0, "expected ferryctl %s to exit 0, got %d: %s", args, st, err);
	doc = json_loads(fx.out, 0, &je);
	cr_assert(doc, "expected ferryctl %s to print JSON, got '%s' at %d in:\n%.2000s", args, je.text, je.position,
		  fx.out);
	cr_assert_eq(json_integer_value(json_object_get(doc, "schema")), FERRY_CTL_SCHEMA, "expected schema %d",
		     FERRY_CTL_SCHEMA);
	cr_assert_str_eq(json_string_value(json_object_get(doc, "verb")), verb, "expected the answer to %s", verb);
	return doc;
}

static int64_t jint(json_t *o, const char *path)
{
	char key[64];
	const char *dot;

	while ((dot = strchr(path, '.'))) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
		o = json_object_get(o, key);
		path = dot + 1;
	}
	o = json_object_get(o, path);
	cr_assert(json_is_integer(o), "expected a number at %s", path);
	return json_integer_value(o);
}

/* The element of array key of doc whose member field is the string name. */
static json_t *find(json_t *doc, const char *key, const char *field, const char *name)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(doc, key), i, v)
		if (json_is_string(json_object_get(v, field)) && !strcmp(json_string_value(json_object_get(v, field)), name))
			return v;
	cr_assert_fail("expected %s %s in the answer", key, name);
	return NULL;
}

/* From the peer namespace (the calling thread stays there): count datagrams of len bytes to the service. */
static void send_count(unsigned int count, size_t len)
{
	union ferry_sockaddr dst;
	char buf[2048];
	unsigned int sent = 0;
	uint64_t deadline;
	int fd;

	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER), 0, "expected to enter the peer namespace");
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, PORT, &dst);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
	memset(buf, 'x', sizeof(buf));
	for (deadline = ferry_test_now_ms() + 10000; sent < count && ferry_test_now_ms() < deadline;) {
		if (sendto(fd, buf, len, 0, &dst.sa, ferry_sockaddr_len(&dst)) == (ssize_t)len)
			sent++;
		if (sent % 16 == 0)
			usleep(1000); /* paced: the client's ring never fills */
	}
	close(fd);
	cr_assert_eq(sent, count, "expected to send %u datagrams, sent %u", count, sent);
}

static void start_client(const char *service)
{
	struct ferry_test_client_cfg cfg = { .control = fx.d.control, .service = service };

	ferry_test_client_start(&fx.c, &cfg);
	cr_assert(ferry_test_client_wait(&fx.c, FERRY_TEST_CLIENT_ATTACHED, ATTACH_MS) &&
			  fx.c.sh->state == FERRY_TEST_CLIENT_ATTACHED,
		  "expected the client to attach (state %d: %s); log:\n%s", fx.c.sh->state, fx.c.sh->why, flog());
}

static void wait_delivered(uint64_t n)
{
	uint64_t deadline = ferry_test_now_ms() + DELIVER_MS;

	while (__atomic_load_n(&fx.c.sh->datagrams, __ATOMIC_ACQUIRE) < n && ferry_test_now_ms() < deadline)
		usleep(5000);
	cr_assert_eq(__atomic_load_n(&fx.c.sh->datagrams, __ATOMIC_ACQUIRE), n,
		     "expected the client to have all %" PRIu64 " datagrams; log:\n%s", n, flog());
}

/* ---- the counters -------------------------------------------------------------------------------- */

/*
 * A client on s4, COUNT datagrams from the peer: every count of them in
 * `stats --json` says COUNT (with two workers, their shares add up to it).
 */
static void stats_count(const char *mode, const char *workers)
{
	const char *args[] = { "--interface", FERRY_TESTNS_HOST_IF, "--mode", mode, "--queues", workers, "--workers",
			       workers, "--service", "s4=198.18.0.1:9000", "--service", "s6=[2001:2::1]:9000", NULL };
	json_t *doc, *svc, *cl, *w;
	const char *err;
	int64_t sum = 0;
	size_t i;
	int st;

	env_up_queues((unsigned int)atoi(workers));
	start_ferryd(args);
	start_client("s4");
	send_count(COUNT, 100);
	wait_delivered(COUNT);

	doc = ferryctl_json("stats");
	cr_expect_str_eq(json_string_value(json_object_get(doc, "mode")), mode, "expected mode %s", mode);
	cr_expect_eq(jint(doc, "counters.rx_packets"), COUNT, "expected rx_packets %d, got %" PRId64, COUNT,
		     jint(doc, "counters.rx_packets"));
	cr_expect_eq(jint(doc, "counters.rx_bytes"), COUNT * 100, "expected rx_bytes %d", COUNT * 100);
	cr_expect_eq(jint(doc, "counters.rx_no_client"), 0, "expected nothing dropped for want of a client");
	svc = find(doc, "services", "name", "s4");
	cr_expect_eq(jint(svc, "counters.rx_packets"), COUNT, "expected service s4 to have received %d", COUNT);
	cr_expect_eq(jint(svc, "counters.delivered"), COUNT, "expected service s4 to have delivered %d", COUNT);
	cr_expect_eq(jint(svc, "clients"), 1, "expected one client on s4");
	cr_expect_eq(jint(find(doc, "services", "name", "s6"), "counters.rx_packets"), 0, "expected nothing for s6");
	cr_assert_eq(json_array_size(json_object_get(doc, "clients")), 1, "expected one client in the stats");
	cl = json_array_get(json_object_get(doc, "clients"), 0);
	cr_expect_eq(jint(cl, "pid"), fx.c.pid, "expected the client's pid %d", (int)fx.c.pid);
	cr_expect_eq(jint(cl, "counters.rx_packets"), COUNT, "expected the client delivered %d, got %" PRId64, COUNT,
		     jint(cl, "counters.rx_packets"));
	cr_expect_eq(jint(cl, "counters.rx_dropped_full") + jint(cl, "counters.rx_dropped_big"), 0,
		     "expected nothing dropped for the client");
	cr_expect_eq((uint64_t)jint(cl, "counters.rx_packets"), fx.c.sh->stats.rx_packets,
		     "expected ferryd's count and the client's own to agree");
	cr_expect_eq(jint(cl, "ring.rx_slots"), 1024 * atoi(workers), "expected the default 1024 RX slots a worker");
	cr_expect_eq(jint(cl, "ring.rx_out") + jint(cl, "ring.rx_free"), jint(cl, "ring.rx_slots"),
		     "expected the slots out and free to add up to the rings");
	cr_expect_eq(json_array_size(json_object_get(doc, "workers")), (size_t)atoi(workers), "expected %s workers",
		     workers);
	json_array_foreach(json_object_get(doc, "workers"), i, w)
		sum += jint(w, "counters.rx_packets");
	cr_expect_eq(sum, COUNT, "expected the workers' shares to add up to %d, got %" PRId64, COUNT, sum);
	if (!strcmp(mode, "xdp"))
		cr_expect_geq(jint(doc, "xdp.redirected"), COUNT, "expected the XDP program to have steered them all");
	else
		cr_expect(json_is_null(json_object_get(doc, "xdp")), "expected no XDP counters in socket mode");
	json_decref(doc);

	doc = ferryctl_json("clients");
	cl = json_array_get(json_object_get(doc, "clients"), 0);
	cr_expect_eq(jint(cl, "uid"), 0, "expected the client's uid");
	cr_expect_str_eq(json_string_value(json_object_get(cl, "service")), "s4", "expected the client on s4");
	cr_expect_eq(jint(cl, "counters.rx_packets"), COUNT, "expected clients to show the same count");
	json_decref(doc);

	/* the tables: exit 0, and the service and the count in them */
	st = ferryctl(fx.d.control, "stats", &err);
	cr_expect_eq(st, 0, "expected ferryctl stats to exit 0, got %d: %s", st, err);
	cr_expect(strstr(fx.out, "s4") && strstr(fx.out, "500"), "expected s4 and 500 in the table:\n%s", fx.out);
	st = ferryctl(fx.d.control, "status", &err);
	cr_expect_eq(st, 0, "expected ferryctl status to exit 0, got %d: %s", st, err);
	cr_expect(strstr(fx.out, mode) && strstr(fx.out, fx.d.control), "expected the mode and socket:\n%s", fx.out);
	ferry_test_client_stop(&fx.c);
	stop_ferryd();
}

Test(ferryctl, stats_count_what_was_sent_xdp, .fini = teardown, .timeout = 90)
{
	stats_count("xdp", "1");
}

Test(ferryctl, stats_count_what_was_sent_socket, .fini = teardown, .timeout = 90)
{
	stats_count("socket", "1");
}

/* Two worker threads: the counters are read across threads, without a lock (TSan runs this one). */
Test(ferryctl, stats_count_what_was_sent_two_workers, .fini = teardown, .timeout = 90)
{
	stats_count("xdp", "2");
}

/* ---- metrics --------------------------------------------------------------------------------------- */

/*
 * Reads the exposition with prometheus_client's parser, then checks what it
 * does not: every family typed and documented, named once, counters ending
 * in _total, every sample of its family. Prints the samples as JSON.
 */
static const char check_py[] =
	"import json, sys\n"
	"from prometheus_client.parser import text_string_to_metric_families\n"
	"text = open(sys.argv[1]).read()\n"
	"fams = list(text_string_to_metric_families(text))\n"
	"names = [f.name for f in fams]\n"
	"assert len(names) == len(set(names)), 'a family twice: %r' % [n for n in names if names.count(n) > 1]\n"
	"out = {}\n"
	"for f in fams:\n"
	"    assert f.type in ('counter', 'gauge'), '%s: type %s' % (f.name, f.type)\n"
	"    assert f.documentation, '%s: no help' % f.name\n"
	"    for s in f.samples:\n"
	"        if f.type == 'counter':\n"
	"            assert s.name == f.name + '_total', '%s in %s' % (s.name, f.name)\n"
	"        else:\n"
	"            assert s.name == f.name, '%s in %s' % (s.name, f.name)\n"
	"        key = s.name + '{' + ','.join('%s=%s' % kv for kv in sorted(s.labels.items())) + '}'\n"
	"        assert key not in out, 'sample twice: ' + key\n"
	"        out[key] = s.value\n"
	"print(json.dumps({'families': len(fams), 'samples': out}))\n";

static double sample(json_t *samples, const char *key)
{
	json_t *v = json_object_get(samples, key);

	cr_assert(json_is_number(v), "expected the sample %s", key);
	return json_number_value(v);
}

Test(ferryctl, metrics_parse_as_prometheus_exposition, .fini = teardown, .timeout = 90)
{
	const char *args[] = { "--interface", FERRY_TESTNS_HOST_IF, "--mode", "xdp", "--service", "s4=198.18.0.1:9000",
			       "--service", "s6=[2001:2::1]:9000", NULL };
	char py[160], key[160], outfile[160];
	json_t *doc, *samples;
	json_error_t je;
	const char *err;
	FILE *f;
	int st;

	env_up();
	cr_assert_eq(system("/usr/bin/python3 -c 'import prometheus_client.parser' 2>/dev/null"), 0,
		     "expected Debian's python3-prometheus-client (make deps installs it)");
	start_ferryd(args);
	start_client("s4");
	send_count(COUNT, 100);
	wait_delivered(COUNT);

	st = ferryctl(fx.d.control, "metrics", &err);
	cr_assert_eq(st, 0, "expected ferryctl metrics to exit 0, got %d: %s", st, err);
	cr_assert(strstr(fx.out, "# TYPE ferry_client_delivered_packets_total counter\n"),
		  "expected the client family typed as a counter:\n%.3000s", fx.out);
	snprintf(outfile, sizeof(outfile), "%s", fx.tmp);
	f = fopen(outfile, "w");
	cr_assert(f, "expected to write %s", outfile);
	fputs(fx.out, f);
	fclose(f);
	snprintf(py, sizeof(py), "%s.py", fx.tmp);
	f = fopen(py, "w");
	cr_assert(f, "expected to write %s", py);
	fputs(check_py, f);
	fclose(f);
	st = ferry_test_capture(fx.out, OUT_MAX, "/usr/bin/python3 %s %s 2>&1", py, outfile);
	cr_assert_eq(st, 0, "expected Prometheus' parser to take ferryctl's metrics, got %d:\n%s", st, fx.out);
	doc = json_loads(fx.out, 0, &je);
	cr_assert(doc, "expected the checker's JSON, got '%s':\n%s", je.text, fx.out);
	samples = json_object_get(doc, "samples");
	cr_expect_gt(json_integer_value(json_object_get(doc, "families")), 40, "expected every family");
	cr_expect_eq(sample(samples, "ferry_rx_packets_total{}"), COUNT, "expected ferry_rx_packets_total %d", COUNT);
	cr_expect_eq(sample(samples, "ferry_service_received_packets_total{service=s4}"), COUNT,
		     "expected the service's received count");
	cr_expect_eq(sample(samples, "ferry_service_delivered_packets_total{service=s4}"), COUNT,
		     "expected the service's delivered count");
	cr_expect_eq(sample(samples, "ferry_service_dropped_packets_total{reason=no_client,service=s6}"), 0,
		     "expected nothing dropped for s6");
	cr_expect_eq(sample(samples, "ferry_service_clients{service=s4}"), 1, "expected one client on s4");
	cr_expect_geq(sample(samples, "ferry_xdp_packets_total{reason=service,verdict=redirected}"), COUNT,
		      "expected the XDP verdicts");
	cr_expect_eq(sample(samples, "ferry_worker_received_packets_total{worker=0}"), COUNT,
		     "expected the worker's count");
	cr_expect_eq(sample(samples, "ferry_worker_frames{place=free,worker=0}") +
			     sample(samples, "ferry_worker_frames{place=kernel,worker=0}") +
			     sample(samples, "ferry_worker_frames{place=user,worker=0}") +
			     sample(samples, "ferry_worker_frames{place=tx,worker=0}"),
		     sample(samples, "ferry_frames_capacity{}"), "expected the worker's frames to add up");
	/* the one session: its number is ferryd's, 1 in a fresh ferryd */
	snprintf(key, sizeof(key), "ferry_client_delivered_packets_total{service=s4,session=1}");
	cr_expect_eq(sample(samples, key), COUNT, "expected %s %d", key, COUNT);
	cr_expect_eq(sample(samples, "ferry_client_received_packets_total{service=s4,session=1}"), COUNT,
		     "expected the client's received count");
	cr_expect_eq(sample(samples, "ferry_client_dropped_packets_total{reason=ring_full,service=s4,session=1}"), 0,
		     "expected nothing dropped for the client");
	cr_expect_eq(sample(samples, "ferry_client_rx_slots{service=s4,session=1,state=free}") +
			     sample(samples, "ferry_client_rx_slots{service=s4,session=1,state=out}"),
		     1024, "expected the client's slots to add up to its ring");
	snprintf(key, sizeof(key), "ferry_client_info{pid=%d,service=s4,session=1}", (int)fx.c.pid);
	cr_expect_eq(sample(samples, key), 1, "expected %s", key);
	json_decref(doc);
	ferry_test_client_stop(&fx.c);
	stop_ferryd();
}

/* ---- no ferryd ------------------------------------------------------------------------------------- */

/* Nothing at the path, or a socket nobody listens on: one line that says so, exit 1. No root needed. */
Test(ferryctl, no_daemon_is_one_line_and_exit_1, .fini = teardown, .timeout = 30)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char path[64];
	const char *err;
	int st, fd;

	fx.out = malloc(OUT_MAX);
	cr_assert(fx.out, "out of memory");
	snprintf(fx.tmp, sizeof(fx.tmp), "/tmp/ferryt-ctl-%d", (int)getpid());
	snprintf(path, sizeof(path), "/tmp/ferryt-ctl-none-%d.sock", (int)getpid());
	unlink(path);
	st = ferryctl(path, "status", &err);
	cr_expect_eq(st, 1, "expected exit 1 with nothing at %s, got %d", path, st);
	cr_expect(strstr(err, "no ferryd at") && strstr(err, path), "expected 'no ferryd at %s', got '%s'", path, err);
	cr_expect_eq(strchr(err, '\n'), err + strlen(err) - 1, "expected one line, got '%s'", err);
	cr_expect_str_eq(fx.out, "", "expected nothing on stdout, got '%s'", fx.out);

	/* a socket left behind by a dead ferryd: bound, nobody listening */
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind %s: %s", path, strerror(errno));
	close(fd);
	st = ferryctl(path, "metrics", &err);
	unlink(path);
	cr_expect_eq(st, 1, "expected exit 1 with nobody listening at %s, got %d", path, st);
	cr_expect(strstr(err, "no ferryd at") && strstr(err, "nobody listening"), "expected why, got '%s'", err);

	st = ferryctl(path, "frobnicate", &err);
	cr_expect_eq(st, 2, "expected exit 2 for an unknown command, got %d", st);
	cr_expect(strstr(err, "unknown command 'frobnicate'"), "expected the command named, got '%s'", err);
}

/* ---- raw queries ----------------------------------------------------------------------------------- */

static char *raw_query(int fd, uint32_t verb, uint32_t seq, int *status, unsigned int *parts)
{
	ferry_test_ctl_query(fd, verb, seq);
	return ferry_test_ctl_answer(fd, verb, seq, ANSWER_MS, status, parts);
}

static json_t *parse(char *text)
{
	json_error_t je;
	json_t *doc = json_loads(text, 0, &je);

	cr_assert(doc, "expected JSON, got '%s' at %d in:\n%.2000s", je.text, je.position, text);
	free(text);
	return doc;
}

/* Becomes nobody (no groups), asks for a reload and for the status: exits 0 when both answers are right. */
static int as_nobody(const char *control)
{
	unsigned int parts;
	json_t *doc;
	int fd, status;
	char *text;

	if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY))
		return 10;
	fd = ferry_test_ctl_connect(control);
	if (fd < 0)
		return 11;
	text = raw_query(fd, FERRY_CTL_RELOAD, 1, &status, &parts);
	doc = json_loads(text, 0, NULL);
	free(text);
	if (status != -EPERM || !doc || !strstr(json_string_value(json_object_get(doc, "error")), "may reload"))
		return 12;
	json_decref(doc);
	text = raw_query(fd, FERRY_CTL_STATUS, 2, &status, &parts);
	doc = json_loads(text, 0, NULL);
	free(text);
	if (status || !doc || json_integer_value(json_object_get(doc, "services")) != 2)
		return 13;
	json_decref(doc);
	close(fd);
	return 0;
}

/*
 * reload: done, and what it changed answered (ferryctl: exit 0); from a
 * user who is neither root nor ferryd's, -EPERM, while that user still
 * reads; bad queries get their status, and the malformed one a close.
 */
Test(ferryctl, reload_and_bad_queries, .fini = teardown, .timeout = 60)
{
	const char *args[] = { "--interface", FERRY_TESTNS_HOST_IF, "--mode", "socket", "--service", "s4=198.18.0.1:9000",
			       "--service", "s6=[2001:2::1]:9000", "--control-mode", "0666", NULL };
	struct ferry_ctl_query q = { .magic = FERRY_CTL_MAGIC, .version = FERRY_RING_VERSION, .op = FERRY_CTL_QUERY };
	unsigned int parts;
	const char *err;
	json_t *doc;
	int st, fd, status;
	pid_t pid;

	env_up();
	start_ferryd(args);
	/* the same command line read again: nothing changes, and ferryd says so */
	st = ferryctl(fx.d.control, "reload", &err);
	cr_expect_eq(st, 0, "expected the reload done, got exit %d: %s", st, err);
	cr_expect(strstr(fx.out, "ferryd reloaded its configuration: 0 services added, 0 removed, 0 changed, 2 unchanged"),
		  "expected what the reload did, got '%s'", fx.out);

	fd = ferry_test_ctl_connect(fx.d.control);
	cr_assert_geq(fd, 0, "expected to connect: %s", strerror(-fd));
	doc = parse(raw_query(fd, FERRY_CTL_RELOAD, 7, &status, &parts));
	cr_expect_eq(status, 0, "expected the reload done, got %d", status);
	cr_expect_eq(jint(doc, "status"), 0, "expected the document's status too");
	cr_expect_str_eq(json_string_value(json_object_get(doc, "verb")), "reload", "expected verb reload");
	json_decref(doc);
	/* the connection stays: an unknown verb, then flags, each refused with -EINVAL */
	doc = parse(raw_query(fd, 99, 8, &status, &parts));
	cr_expect_eq(status, -EINVAL, "expected -EINVAL for verb 99, got %d", status);
	cr_expect(strstr(json_string_value(json_object_get(doc, "error")), "unknown verb 99"), "expected why");
	json_decref(doc);
	q.verb = FERRY_CTL_STATUS;
	q.seq = 9;
	q.flags = 4;
	cr_assert_eq(ferry_test_ctl_send(fd, &q, sizeof(q), NULL, 0), 0, "expected to send");
	{
		struct ferry_ctl_answer h;
		uint8_t buf[FERRY_CTL_PART_MAX];
		ssize_t n = ferry_test_ctl_recv(fd, buf, sizeof(buf), NULL, 0, NULL, ANSWER_MS);

		cr_assert_geq(n, (ssize_t)sizeof(h), "expected an answer to a query with flags");
		memcpy(&h, buf, sizeof(h));
		cr_expect_eq(h.status, -EINVAL, "expected -EINVAL for unknown flags, got %d", h.status);
		cr_expect(h.flags & FERRY_CTL_ANSWER_LAST, "expected one part");
	}
	/* no flags, but a reserved field not 0: refused the same way, each of them */
	q.flags = 0;
	for (int r = 0; r < 2; r++) {
		struct ferry_ctl_answer h;
		uint8_t buf[FERRY_CTL_PART_MAX];
		ssize_t n;

		q.reserved[0] = r == 0;
		q.reserved[1] = r == 1;
		q.seq = 20 + (uint32_t)r;
		cr_assert_eq(ferry_test_ctl_send(fd, &q, sizeof(q), NULL, 0), 0, "expected to send");
		n = ferry_test_ctl_recv(fd, buf, sizeof(buf), NULL, 0, NULL, ANSWER_MS);
		cr_assert_geq(n, (ssize_t)sizeof(h), "expected an answer to a query with reserved[%d] set", r);
		memcpy(&h, buf, sizeof(h));
		cr_expect_eq(h.status, -EINVAL, "expected -EINVAL for reserved[%d] set, got %d", r, h.status);
	}
	q.reserved[0] = q.reserved[1] = 0;
	/* still there: a good query */
	doc = parse(raw_query(fd, FERRY_CTL_SERVICES, 10, &status, &parts));
	cr_expect_eq(status, 0, "expected services to be answered, got %d", status);
	cr_expect_eq(json_array_size(json_object_get(doc, "services")), 2, "expected both services");
	json_decref(doc);
	/* a query of another size: -EPROTO, then closed */
	cr_assert_eq(ferry_test_ctl_send(fd, &q, sizeof(q) - 4, NULL, 0), 0, "expected to send");
	{
		struct ferry_ctl_answer h;
		uint8_t buf[FERRY_CTL_PART_MAX];
		ssize_t n = ferry_test_ctl_recv(fd, buf, sizeof(buf), NULL, 0, NULL, ANSWER_MS);

		cr_assert_geq(n, (ssize_t)sizeof(h), "expected an answer to a short query");
		memcpy(&h, buf, sizeof(h));
		cr_expect_eq(h.status, -EPROTO, "expected -EPROTO for a short query, got %d", h.status);
		n = ferry_test_ctl_recv(fd, buf, sizeof(buf), NULL, 0, NULL, ANSWER_MS);
		cr_expect_eq(n, 0, "expected ferryd to close after a malformed query, got %zd", n);
	}
	close(fd);

	/* another user: may read, may not reload */
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (!pid)
		_exit(as_nobody(fx.d.control));
	cr_assert_eq(waitpid(pid, &st, 0), pid, "waitpid");
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "expected nobody to be refused the reload (-EPERM) and answered the status; child status 0x%x "
		  "(10 setuid, 11 connect, 12 reload, 13 status); log:\n%s",
		  st, flog());
	cr_expect(strstr(flog(), "control: pid ") && strstr(flog(), "(uid 65534) may not reload"),
		  "expected ferryd to log the refusal; log:\n%s", flog());
	stop_ferryd();
}

/* ---- a large answer -------------------------------------------------------------------------------- */

/*
 * NSESS sessions (NSVC services, raw clients with small rings): the clients
 * answer is several parts and arrives whole, as JSON with every session;
 * the same connection then asks for the stats; while a reader leaves its
 * answer unread, ferryd answers others.
 */
Test(ferryctl, a_large_answer_arrives_whole, .fini = teardown, .timeout = 120)
{
	const char *args[] = { "--interface", FERRY_TESTNS_HOST_IF, "--mode", "socket",
			       "--service", "s0=198.18.0.1:9000", "--service", "s1=198.18.0.1:9001",
			       "--service", "s2=198.18.0.1:9002", "--service", "s3=198.18.0.1:9003", NULL };
	unsigned int per[NSVC] = {0}, parts;
	uint8_t seen[NSESS * 2] = {0};
	json_t *doc, *v;
	const char *err;
	char *text;
	size_t i;
	int fd, slow, status, st, lines = 0;

	env_up();
	start_ferryd(args);
	fx.raw = calloc(NSESS, sizeof(*fx.raw));
	cr_assert(fx.raw, "out of memory");
	for (int k = 0; k < NSESS; k++) {
		struct ferry_ctl_attach a;
		char svc[8], why[256];
		int err2;

		fx.raw[k].ctl = -1;
		snprintf(svc, sizeof(svc), "s%d", k % NSVC);
		ferry_test_ctl_attach_msg(&a, svc, 16, 16, 256);
		err2 = ferry_test_raw_attach(&fx.raw[k], fx.d.control, &a, why, sizeof(why));
		cr_assert_eq(err2, 0, "expected session %d to attach: %s; log:\n%s", k, why, flog());
	}

	fd = ferry_test_ctl_connect(fx.d.control);
	cr_assert_geq(fd, 0, "expected to connect: %s", strerror(-fd));
	text = raw_query(fd, FERRY_CTL_CLIENTS, 1, &status, &parts);
	cr_expect_eq(status, 0, "expected the clients answered");
	cr_expect_gt(parts, 1, "expected a %zu-byte answer in several parts, got %u", strlen(text), parts);
	doc = parse(text);
	cr_assert_eq(json_array_size(json_object_get(doc, "clients")), NSESS, "expected all %d sessions, got %zu",
		     NSESS, json_array_size(json_object_get(doc, "clients")));
	json_array_foreach(json_object_get(doc, "clients"), i, v) {
		int64_t id = jint(v, "session");
		const char *svc = json_string_value(json_object_get(v, "service"));

		cr_assert(id > 0 && id < NSESS * 2 && !seen[id], "expected session %" PRId64 " once", id);
		seen[id] = 1;
		cr_assert(svc && svc[0] == 's' && svc[1] >= '0' && svc[1] < '0' + NSVC, "expected a service");
		per[svc[1] - '0']++;
		cr_expect_eq(jint(v, "rx_slots"), 16, "expected the sizes asked for");
		cr_expect_eq(jint(v, "pid"), getpid(), "expected the test's own pid");
	}
	for (int s = 0; s < NSVC; s++)
		cr_expect_eq(per[s], NSESS / NSVC, "expected %d sessions on s%d, got %u", NSESS / NSVC, s, per[s]);
	json_decref(doc);

	/* the same connection asks again */
	doc = parse(raw_query(fd, FERRY_CTL_STATS, 2, &status, &parts));
	cr_expect_eq(json_array_size(json_object_get(doc, "clients")), NSESS, "expected every session in the stats");
	cr_expect_eq(jint(find(doc, "services", "name", "s2"), "clients"), NSESS / NSVC, "expected s2's clients");
	json_decref(doc);
	close(fd);

	/*
	 * A reader that asks SLOW_ASKS times and reads nothing: more answer than
	 * its socket holds, so ferryd waits for room on it; meanwhile it
	 * answers ferryctl.
	 */
	slow = ferry_test_ctl_connect(fx.d.control);
	cr_assert_geq(slow, 0, "expected to connect");
	for (uint32_t k = 1; k <= SLOW_ASKS; k++)
		ferry_test_ctl_query(slow, FERRY_CTL_STATS, k);
	st = ferryctl(fx.d.control, "clients", &err);
	cr_expect_eq(st, 0, "expected ferryctl clients to exit 0 while another reader is slow, got %d: %s", st, err);
	for (char *p = fx.out; (p = strchr(p, '\n')); p++)
		lines++;
	cr_expect_eq(lines, NSESS + 1, "expected a heading and %d rows, got %d lines", NSESS, lines);
	st = ferryctl(fx.d.control, "--json clients", &err);
	cr_expect_eq(st, 0, "expected ferryctl --json clients to exit 0, got %d: %s", st, err);
	doc = json_loads(fx.out, 0, NULL);
	cr_expect_eq(json_array_size(json_object_get(doc, "clients")), NSESS, "expected ferryctl to print them all");
	json_decref(doc);
	/* once it reads, the slow reader has every answer, whole and in order */
	for (uint32_t k = 1; k <= SLOW_ASKS; k++) {
		doc = parse(ferry_test_ctl_answer(slow, FERRY_CTL_STATS, k, ANSWER_MS, &status, &parts));
		cr_expect_eq(json_array_size(json_object_get(doc, "clients")), NSESS,
			     "expected answer %u to the slow reader whole", k);
		json_decref(doc);
	}
	close(slow);
	stop_ferryd();
}
