/* SPDX-License-Identifier: MIT */
/* What ferryctl prints: ferryd's JSON answers as aligned tables, and as Prometheus metrics (ferryctl.h). */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ferryctl.h"
#include "prom.h"

/* ---- reading the documents ----------------------------------------------------------------- */

/* A member as a number (0 when missing or not one: ferryd of another schema may lack it). */
static uint64_t num(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static const char *str(json_t *o, const char *key, const char *none)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : none;
}

static json_t *arr(json_t *o, const char *key)
{
	json_t *a = json_object_get(o, key);

	return json_is_array(a) ? a : NULL;
}

/* ---- tables -------------------------------------------------------------------------------- */

struct table {
	unsigned int ncols, ncells, cap;
	char **cells;	   /* row by row, the headings first */
	const char *right; /* per column: 'r' right-aligned (numbers), else left */
};

static void add(struct table *t, char *s)
{
	if (t->ncells == t->cap) {
		char **c = realloc(t->cells, (t->cap ? t->cap * 2 : 64) * sizeof(*c));

		if (!c) {
			free(s);
			return;
		}
		t->cells = c;
		t->cap = t->cap ? t->cap * 2 : 64;
	}
	t->cells[t->ncells++] = s; /* NULL (out of memory) prints as an empty cell */
}

/* A table whose columns are aligned as right says ('r' right, else left), headed by the strings that follow. */
static void table_init(struct table *t, const char *right, ...)
{
	va_list ap;
	const char *h;

	memset(t, 0, sizeof(*t));
	t->right = right;
	t->ncols = (unsigned int)strlen(right);
	va_start(ap, right);
	while ((h = va_arg(ap, const char *)))
		add(t, strdup(h));
	va_end(ap);
}

static void cell(struct table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cell(struct table *t, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	add(t, s);
}

static void num_cell(struct table *t, uint64_t v)
{
	cell(t, "%llu", (unsigned long long)v);
}

/* Prints the table (whole rows only), columns two spaces apart, and frees it. */
static void table_print(FILE *out, struct table *t)
{
	size_t w[32] = {0};
	unsigned int rows = t->ncols ? t->ncells / t->ncols : 0;

	for (unsigned int i = 0; i < rows * t->ncols; i++) {
		size_t l = t->cells[i] ? strlen(t->cells[i]) : 0;

		if (i % t->ncols < 32 && l > w[i % t->ncols])
			w[i % t->ncols] = l;
	}
	for (unsigned int r = 0; r < rows; r++) {
		for (unsigned int c = 0; c < t->ncols && c < 32; c++) {
			const char *s = t->cells[r * t->ncols + c] ? t->cells[r * t->ncols + c] : "";
			bool last = c + 1 == t->ncols;

			if (t->right[c] == 'r')
				fprintf(out, "%*s%s", (int)w[c], s, last ? "" : "  ");
			else
				fprintf(out, "%-*s%s", last ? 0 : (int)w[c], s, last ? "" : "  ");
		}
		fputc('\n', out);
	}
	for (unsigned int i = 0; i < t->ncells; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

/* "name  value" lines, aligned: the members of an object of counters (zeros left out when asked). */
static void counters(FILE *out, json_t *o, bool zeros)
{
	struct table t;
	const char *k;
	json_t *v;
	unsigned int left = 0;

	table_init(&t, "lr", NULL);
	json_object_foreach(o, k, v) {
		if (!json_is_integer(v))
			continue;
		if (!zeros && !json_integer_value(v)) {
			left++;
			continue;
		}
		cell(&t, "  %s", k);
		num_cell(&t, num(o, k));
	}
	table_print(out, &t);
	if (left)
		fprintf(out, "  (%u more at 0; --json shows every one)\n", left);
}

/* ---- status --------------------------------------------------------------------------------- */

static void duration(char *buf, size_t len, uint64_t ms)
{
	unsigned long long s = ms / 1000;

	if (s >= 86400)
		snprintf(buf, len, "%llud %lluh %llum", s / 86400, s % 86400 / 3600, s % 3600 / 60);
	else if (s >= 3600)
		snprintf(buf, len, "%lluh %llum %llus", s / 3600, s % 3600 / 60, s % 60);
	else if (s >= 60)
		snprintf(buf, len, "%llum %llus", s / 60, s % 60);
	else
		snprintf(buf, len, "%llu.%03llus", s, (unsigned long long)(ms % 1000));
}

void ferryctl_show_status(FILE *out, json_t *doc)
{
	struct table t;
	char up[64];
	json_t *link = json_object_get(doc, "link_up");

	duration(up, sizeof(up), num(doc, "uptime_ms"));
	table_init(&t, "ll", NULL);
	cell(&t, "version");
	cell(&t, "%s (ring ABI %llu)", str(doc, "version", "?"), (unsigned long long)num(doc, "abi"));
	cell(&t, "pid"), num_cell(&t, num(doc, "pid"));
	cell(&t, "uptime"), cell(&t, "%s", up);
	cell(&t, "mode"), cell(&t, "%s", str(doc, "mode", "?"));
	cell(&t, "interface");
	if (json_is_string(json_object_get(doc, "interface")))
		cell(&t, "%s (ifindex %llu, link %s)", str(doc, "interface", ""),
		     (unsigned long long)num(doc, "ifindex"),
		     json_is_true(link) ? "up" : json_is_false(link) ? "down" : "?");
	else
		cell(&t, "none (the host's addresses)");
	cell(&t, "queues"), num_cell(&t, num(doc, "queues"));
	cell(&t, "workers"), num_cell(&t, num(doc, "workers"));
	if (json_is_string(json_object_get(doc, "xdp_mode"))) {
		cell(&t, "xdp"), cell(&t, "%s", str(doc, "xdp_program", str(doc, "xdp_mode", "?")));
		cell(&t, "zero-copy");
		cell(&t, "%s (asked: %s)", str(doc, "zero_copy", "?"), str(doc, "zero_copy_asked", "?"));
	}
	cell(&t, "handler"), cell(&t, "%s", str(doc, "handler", "?"));
	cell(&t, "services"), num_cell(&t, num(doc, "services"));
	cell(&t, "clients"), num_cell(&t, num(doc, "clients"));
	cell(&t, "control"), cell(&t, "%s", str(doc, "control", "?"));
	cell(&t, "engine"), cell(&t, "%s", str(doc, "engine", "?"));
	table_print(out, &t);
}

/* ---- stats ---------------------------------------------------------------------------------- */

static uint64_t ctr(json_t *o, const char *key)
{
	return num(json_object_get(o, "counters"), key);
}

static uint64_t ring(json_t *o, const char *key)
{
	return num(json_object_get(o, "ring"), key);
}

void ferryctl_show_stats(FILE *out, json_t *doc)
{
	json_t *link = json_object_get(doc, "link"), *xdp = json_object_get(doc, "xdp"), *v;
	struct table t;
	char up[64];
	size_t i;

	duration(up, sizeof(up), num(doc, "uptime_ms"));
	fprintf(out, "ferryd, %s mode, up %s\n\ncounters\n", str(doc, "mode", "?"), up);
	counters(out, json_object_get(doc, "counters"), false);
	if (json_is_object(link))
		fprintf(out, "\nlink %s: %s, %s, MTU %llu, %llu down events\n", str(link, "interface", "?"),
			json_is_true(json_object_get(link, "up")) ? "up" : "down",
			json_is_true(json_object_get(link, "running")) ? "running" : "no carrier",
			(unsigned long long)num(link, "mtu"), (unsigned long long)num(link, "down_events"));
	if (json_is_object(xdp)) {
		fprintf(out, "\nXDP program\n");
		counters(out, xdp, false);
	}

	fputc('\n', out);
	table_init(&t, "lrrrrrrrrr", "WORKER", "RX_PACKETS", "TX_PACKETS", "TX_DROPPED", "FRAMES", "FREE", "KERNEL",
		   "USER", "TX", "QUEUES", NULL);
	json_array_foreach(arr(doc, "workers"), i, v) {
		json_t *q;
		size_t k;
		char qs[128] = "";
		size_t n = 0;

		json_array_foreach(arr(v, "queues"), k, q)
			if (n < sizeof(qs))
				n += (size_t)snprintf(qs + n, sizeof(qs) - n, "%s%llu%s", k ? "," : "",
						      (unsigned long long)num(q, "queue"),
						      json_is_true(json_object_get(q, "zero_copy")) ? "(zc)" : "");
		cell(&t, "%llu %s", (unsigned long long)num(v, "worker"), str(v, "mode", "?"));
		num_cell(&t, ctr(v, "rx_packets"));
		num_cell(&t, ctr(v, "tx_packets"));
		num_cell(&t, ctr(v, "tx_dropped"));
		num_cell(&t, ctr(v, "frames_total"));
		num_cell(&t, ctr(v, "frames_free"));
		num_cell(&t, ctr(v, "frames_kernel"));
		num_cell(&t, ctr(v, "frames_user"));
		num_cell(&t, ctr(v, "frames_tx"));
		cell(&t, "%s", qs[0] ? qs : "-");
	}
	table_print(out, &t);

	fputc('\n', out);
	table_init(&t, "lrrrrrrrr", "SERVICE", "RECEIVED", "DELIVERED", "NO_CLIENT", "CLIENT_FULL", "TOO_BIG", "SENT",
		   "SEND_DROPPED", "CLIENTS", NULL);
	json_array_foreach(arr(doc, "services"), i, v) {
		cell(&t, "%s", str(v, "name", "?"));
		num_cell(&t, ctr(v, "rx_packets"));
		num_cell(&t, ctr(v, "delivered"));
		num_cell(&t, ctr(v, "dropped_no_client"));
		num_cell(&t, ctr(v, "dropped_client_full"));
		num_cell(&t, ctr(v, "dropped_client_big"));
		num_cell(&t, ctr(v, "tx_packets"));
		num_cell(&t, ctr(v, "tx_dropped"));
		num_cell(&t, num(v, "clients"));
	}
	table_print(out, &t);

	if (!json_array_size(arr(doc, "clients")))
		return;
	fputc('\n', out);
	table_init(&t, "rlrrrrrrrrrr", "SESSION", "SERVICE", "PID", "RECEIVED", "RING_FULL", "TOO_BIG", "SENT",
		   "SEND_DROPPED", "RX_OUT", "RX_FREE", "ZC_HELD", "TX_HELD", NULL);
	json_array_foreach(arr(doc, "clients"), i, v) {
		num_cell(&t, num(v, "session"));
		cell(&t, "%s", str(v, "service", "?"));
		num_cell(&t, num(v, "pid"));
		num_cell(&t, ctr(v, "rx_packets"));
		num_cell(&t, ctr(v, "rx_dropped_full"));
		num_cell(&t, ctr(v, "rx_dropped_big"));
		num_cell(&t, ctr(v, "tx_packets"));
		num_cell(&t, ctr(v, "tx_dropped"));
		num_cell(&t, ring(v, "rx_out"));
		num_cell(&t, ring(v, "rx_free"));
		num_cell(&t, ring(v, "zc_held"));
		num_cell(&t, ring(v, "tx_held"));
	}
	table_print(out, &t);
}

/* ---- services, clients ------------------------------------------------------------------------ */

/* "root, alice, group ferry": who may attach, from the "allow" object. */
static void who(char *buf, size_t len, json_t *allow)
{
	size_t n = 0, i;
	json_t *v;

	buf[0] = '\0';
	json_array_foreach(arr(allow, "users"), i, v)
		if (n < len) {
			const char *name = str(v, "name", NULL);

			n += name ? (size_t)snprintf(buf + n, len - n, "%s%s", n ? ", " : "", name)
				  : (size_t)snprintf(buf + n, len - n, "%suid %llu", n ? ", " : "",
						     (unsigned long long)num(v, "uid"));
		}
	json_array_foreach(arr(allow, "groups"), i, v)
		if (n < len) {
			const char *name = str(v, "name", NULL);

			n += name ? (size_t)snprintf(buf + n, len - n, "%sgroup %s", n ? ", " : "", name)
				  : (size_t)snprintf(buf + n, len - n, "%sgid %llu", n ? ", " : "",
						     (unsigned long long)num(v, "gid"));
		}
}

void ferryctl_show_services(FILE *out, json_t *doc)
{
	struct table t;
	json_t *v;
	size_t i;

	table_init(&t, "llllrl", "SERVICE", "ADDRESS", "FANOUT", "ZERO_COPY", "CLIENTS", "ALLOWED", NULL);
	json_array_foreach(arr(doc, "services"), i, v) {
		char allowed[512];

		who(allowed, sizeof(allowed), json_object_get(v, "allow"));
		cell(&t, "%s", str(v, "name", "?"));
		cell(&t, "%s", str(v, "address", "?"));
		cell(&t, "%s", str(v, "fanout", "?"));
		cell(&t, "%s", json_is_true(json_object_get(v, "zero_copy")) ? "yes" : "no");
		num_cell(&t, num(v, "clients"));
		cell(&t, "%s", allowed);
	}
	table_print(out, &t);
}

void ferryctl_show_clients(FILE *out, json_t *doc)
{
	struct table t;
	json_t *v;
	size_t i;

	table_init(&t, "rlrrrlrrrrrrr", "SESSION", "SERVICE", "PID", "UID", "GID", "ZERO_COPY", "RX_SLOTS", "TX_SLOTS",
		   "SLOT_SIZE", "RECEIVED", "DROPPED", "SENT", "SEND_DROPPED", NULL);
	json_array_foreach(arr(doc, "clients"), i, v) {
		num_cell(&t, num(v, "session"));
		cell(&t, "%s", str(v, "service", "?"));
		num_cell(&t, num(v, "pid"));
		num_cell(&t, num(v, "uid"));
		num_cell(&t, num(v, "gid"));
		cell(&t, "%s", json_is_true(json_object_get(v, "zero_copy")) ? "yes" : "no");
		cell(&t, "%llu x %llu", (unsigned long long)num(v, "workers"), (unsigned long long)num(v, "rx_slots"));
		cell(&t, "%llu x %llu", (unsigned long long)num(v, "workers"), (unsigned long long)num(v, "tx_slots"));
		num_cell(&t, num(v, "slot_size"));
		num_cell(&t, ctr(v, "rx_packets"));
		num_cell(&t, ctr(v, "rx_dropped_full") + ctr(v, "rx_dropped_big"));
		num_cell(&t, ctr(v, "tx_packets"));
		num_cell(&t, ctr(v, "tx_dropped"));
	}
	table_print(out, &t);
}

/* ---- metrics ---------------------------------------------------------------------------------- */

/* A figure of one element (a worker, service or client): which member, where, and a label more. */
struct pick {
	const char *obj;	   /* "counters", "ring", or NULL: the element itself */
	const char *key;	   /* NULL ends a family's picks */
	const char *label, *value; /* one label more (a reason, a place, a state), or NULL */
};

/* Labels of element e (at most 3 pairs, into l), given its kind; how many pairs. */
typedef unsigned int (*labels_fn)(json_t *e, const char **l, char *buf, size_t len);

static unsigned int worker_labels(json_t *w, const char **l, char *buf, size_t len)
{
	snprintf(buf, len, "%llu", (unsigned long long)num(w, "worker"));
	l[0] = "worker", l[1] = buf;
	return 1;
}

static unsigned int service_labels(json_t *s, const char **l, char *buf, size_t len)
{
	(void)buf, (void)len;
	l[0] = "service", l[1] = str(s, "name", "");
	return 1;
}

static unsigned int client_labels(json_t *c, const char **l, char *buf, size_t len)
{
	snprintf(buf, len, "%llu", (unsigned long long)num(c, "session"));
	l[0] = "session", l[1] = buf;
	l[2] = "service", l[3] = str(c, "service", "");
	return 2;
}

/* What a service's clients hold, added up: the service's ring occupancy (the clients are in doc). */
static uint64_t service_ring(json_t *doc, const char *service, const char *key)
{
	uint64_t n = 0;
	json_t *c;
	size_t i;

	json_array_foreach(arr(doc, "clients"), i, c)
		if (!strcmp(str(c, "service", ""), service))
			n += ring(c, key);
	return n;
}

enum fig {
	FIG_PICK,	  /* the picked member */
	FIG_SERVICE_RING, /* the service's clients' ring figure */
	FIG_OFFERED,	  /* a client's: delivered and dropped for it */
};

/* One family of samples over the elements of one array of the stats document. */
struct family {
	const char *name, *type, *help;
	const char *of; /* "workers", "services", "clients" */
	labels_fn labels;
	enum fig fig;
	struct pick picks[5];
};

#define CTR(key) { { "counters", key, NULL, NULL } }
#define RING(key) { { "ring", key, NULL, NULL } }

static const struct family families[] = {
	{ "ferry_worker_received_packets_total", "counter", "datagrams a worker handed to a service", "workers",
	  worker_labels, FIG_PICK, CTR("rx_packets") },
	{ "ferry_worker_received_bytes_total", "counter", "bytes of those datagrams", "workers", worker_labels,
	  FIG_PICK, CTR("rx_bytes") },
	{ "ferry_worker_sent_packets_total", "counter", "datagrams a worker sent", "workers", worker_labels, FIG_PICK,
	  CTR("tx_packets") },
	{ "ferry_worker_sent_bytes_total", "counter", "bytes of those datagrams", "workers", worker_labels, FIG_PICK,
	  CTR("tx_bytes") },
	{ "ferry_worker_send_dropped_packets_total", "counter",
	  "datagrams a worker did not send (ferryctl stats --json: its counters say why)", "workers", worker_labels,
	  FIG_PICK, CTR("tx_dropped") },
	{ "ferry_worker_frames", "gauge", "a worker's AF_XDP UMEM frames by where they are now", "workers",
	  worker_labels, FIG_PICK,
	  { { "counters", "frames_free", "place", "free" },
	    { "counters", "frames_kernel", "place", "kernel" },
	    { "counters", "frames_user", "place", "user" },
	    { "counters", "frames_tx", "place", "tx" } } },

	{ "ferry_service_received_packets_total", "counter", "datagrams ferryd received for the service", "services",
	  service_labels, FIG_PICK, CTR("rx_packets") },
	{ "ferry_service_received_bytes_total", "counter", "bytes of those datagrams", "services", service_labels,
	  FIG_PICK, CTR("rx_bytes") },
	{ "ferry_service_delivered_packets_total", "counter",
	  "datagrams put on a client's ring (with fanout all, one per client)", "services", service_labels, FIG_PICK,
	  CTR("delivered") },
	{ "ferry_service_dropped_packets_total", "counter",
	  "datagrams a client of the service did not get, by reason: no client attached, the client's ring full, "
	  "longer than its slots",
	  "services", service_labels, FIG_PICK,
	  { { "counters", "dropped_no_client", "reason", "no_client" },
	    { "counters", "dropped_client_full", "reason", "ring_full" },
	    { "counters", "dropped_client_big", "reason", "too_big" } } },
	{ "ferry_service_sent_packets_total", "counter", "datagrams sent from the service's address", "services",
	  service_labels, FIG_PICK, CTR("tx_packets") },
	{ "ferry_service_send_dropped_packets_total", "counter", "datagrams of the service not sent", "services",
	  service_labels, FIG_PICK, CTR("tx_dropped") },
	{ "ferry_service_clients", "gauge", "clients attached to the service", "services", service_labels, FIG_PICK,
	  { { NULL, "clients", NULL, NULL } } },
	{ "ferry_service_rx_slots", "gauge",
	  "RX slots of the service's clients: out (the clients hold them) or free (ferryd's)", "services",
	  service_labels, FIG_SERVICE_RING,
	  { { NULL, "rx_out", "state", "out" }, { NULL, "rx_free", "state", "free" } } },
	{ "ferry_service_zero_copy_frames_held", "gauge", "UMEM frames the service's clients hold", "services",
	  service_labels, FIG_SERVICE_RING, { { NULL, "zc_held", NULL, NULL } } },
	{ "ferry_service_tx_slots_held", "gauge", "TX slots of the service's clients ferryd has not given back",
	  "services", service_labels, FIG_SERVICE_RING, { { NULL, "tx_held", NULL, NULL } } },

	{ "ferry_client_received_packets_total", "counter",
	  "datagrams ferryd had for the client: delivered, or dropped for it", "clients", client_labels, FIG_OFFERED,
	  CTR("rx_packets") },
	{ "ferry_client_delivered_packets_total", "counter", "datagrams put on the client's ring", "clients",
	  client_labels, FIG_PICK, CTR("rx_packets") },
	{ "ferry_client_delivered_bytes_total", "counter", "bytes of those datagrams", "clients", client_labels,
	  FIG_PICK, CTR("rx_bytes") },
	{ "ferry_client_zero_copy_packets_total", "counter",
	  "of the delivered datagrams: handed in their UMEM frames", "clients", client_labels, FIG_PICK,
	  CTR("rx_zero_copy") },
	{ "ferry_client_dropped_packets_total", "counter",
	  "datagrams dropped for the client, by reason: its ring full, longer than its slots", "clients",
	  client_labels, FIG_PICK,
	  { { "counters", "rx_dropped_full", "reason", "ring_full" },
	    { "counters", "rx_dropped_big", "reason", "too_big" } } },
	{ "ferry_client_sent_packets_total", "counter", "datagrams the client queued that ferryd sent", "clients",
	  client_labels, FIG_PICK, CTR("tx_packets") },
	{ "ferry_client_sent_bytes_total", "counter", "bytes of those datagrams", "clients", client_labels, FIG_PICK,
	  CTR("tx_bytes") },
	{ "ferry_client_send_dropped_packets_total", "counter",
	  "datagrams the client queued that ferryd's send path refused", "clients", client_labels, FIG_PICK,
	  CTR("tx_dropped") },
	{ "ferry_client_wakeups_total", "counter", "times ferryd woke the client", "clients", client_labels, FIG_PICK,
	  CTR("wakeups") },
	{ "ferry_client_rx_slots", "gauge", "the client's RX slots: out (it holds them) or free (ferryd's)",
	  "clients", client_labels, FIG_PICK,
	  { { "ring", "rx_out", "state", "out" }, { "ring", "rx_free", "state", "free" } } },
	{ "ferry_client_zero_copy_frames_held", "gauge", "UMEM frames the client holds", "clients", client_labels,
	  FIG_PICK, RING("zc_held") },
	{ "ferry_client_tx_slots_held", "gauge", "the client's TX slots ferryd has not given back yet", "clients",
	  client_labels, FIG_PICK, RING("tx_held") },
};

static uint64_t figure(const struct family *f, const struct pick *p, json_t *e, const char *const *l, json_t *doc)
{
	switch (f->fig) {
	case FIG_SERVICE_RING:
		return service_ring(doc, l[1], p->key);
	case FIG_OFFERED:
		return ctr(e, "rx_packets") + ctr(e, "rx_dropped_full") + ctr(e, "rx_dropped_big");
	default:
		return num(p->obj ? json_object_get(e, p->obj) : e, p->key);
	}
}

/* A family: for each pick, one sample per element; all of them together, as the format wants. */
static void family(FILE *out, const struct family *f, json_t *doc)
{
	ferryctl_prom_family(out, f->name, f->type, f->help);
	for (const struct pick *p = f->picks; p < f->picks + 5 && p->key; p++) {
		json_t *e;
		size_t i;

		json_array_foreach(arr(doc, f->of), i, e) {
			const char *l[8];
			char buf[24];
			unsigned int n = f->labels(e, l, buf, sizeof(buf));

			l[2 * n] = p->label, l[2 * n + 1] = p->value;
			ferryctl_prom_sample(out, f->name, l, n + !!p->label, figure(f, p, e, l, doc));
		}
	}
}

static void metrics_info(FILE *out, json_t *status, json_t *stats)
{
	const char *l[] = { "version", str(status, "version", "?"), "mode", str(status, "mode", "?"),
			    "interface", str(status, "interface", NULL), "handler", str(status, "handler", "?"),
			    "xdp_program", str(status, "xdp_program", NULL) };
	json_t *link = json_object_get(stats, "link");

	ferryctl_prom_family(out, "ferry_info", "gauge", "ferryd's version and what it runs (always 1)");
	ferryctl_prom_sample(out, "ferry_info", l, 5, 1);
	ferryctl_prom_family(out, "ferry_uptime_seconds", "gauge", "seconds since ferryd opened its control socket");
	ferryctl_prom_sample_f(out, "ferry_uptime_seconds", NULL, 0, (double)num(stats, "uptime_ms") / 1000.0);
	if (!json_is_object(link))
		return;
	ferryctl_prom_family(out, "ferry_link_up", "gauge", "1 while the interface is up with a carrier");
	ferryctl_prom_sample(out, "ferry_link_up", NULL, 0, json_is_true(json_object_get(link, "running")));
	ferryctl_prom_family(out, "ferry_link_down_events_total", "counter",
			     "times the interface stopped carrying frames (down, or no carrier)");
	ferryctl_prom_sample(out, "ferry_link_down_events_total", NULL, 0, num(link, "down_events"));
}

/* Every engine counter as ferry_<name>_total; where the frames are as one gauge by place. */
static void metrics_engine(FILE *out, json_t *stats)
{
	static const char *const places[] = { "free", "kernel", "user", "tx" };
	json_t *c = json_object_get(stats, "counters"), *v;
	const char *k;

	json_object_foreach(c, k, v) {
		char name[160], help[200];

		if (!strncmp(k, "frames_", 7) || !json_is_integer(v))
			continue;
		snprintf(name, sizeof(name), "ferry_%s_total", k);
		snprintf(help, sizeof(help), "ferryd's counter %s, all workers (README: Logs and counters)", k);
		if (ferryctl_prom_family(out, name, "counter", help))
			ferryctl_prom_sample(out, name, NULL, 0, num(c, k));
	}
	ferryctl_prom_family(out, "ferry_frames", "gauge",
			     "AF_XDP UMEM frames of all queues by where they are now (they add up to the capacity)");
	for (size_t i = 0; i < sizeof(places) / sizeof(places[0]); i++) {
		const char *l[] = { "place", places[i] };
		char key[32];

		snprintf(key, sizeof(key), "frames_%s", places[i]);
		ferryctl_prom_sample(out, "ferry_frames", l, 1, num(c, key));
	}
	ferryctl_prom_family(out, "ferry_frames_capacity", "gauge", "AF_XDP UMEM frames of all queues (0: sockets)");
	ferryctl_prom_sample(out, "ferry_frames_capacity", NULL, 0, num(c, "frames_total"));
}

/* The XDP program's verdicts: steered to AF_XDP, or passed to the kernel and why. */
static void metrics_xdp(FILE *out, json_t *stats)
{
	json_t *x = json_object_get(stats, "xdp"), *v;
	const char *k;

	if (!json_is_object(x))
		return;
	ferryctl_prom_family(out, "ferry_xdp_packets_total", "counter",
			     "frames the XDP program saw, by verdict and reason (its per-CPU counters summed: one "
			     "program serves every worker's queues)");
	json_object_foreach(x, k, v) {
		bool pass = !strncmp(k, "pass_", 5);
		const char *l[] = { "verdict", pass ? "pass" : k, "reason", pass ? k + 5 : "service" };

		ferryctl_prom_sample(out, "ferry_xdp_packets_total", l, 2, num(x, k));
	}
}

/* What each worker runs, and how its queues are bound. */
static void metrics_workers(FILE *out, json_t *stats)
{
	json_t *v;
	size_t i;

	ferryctl_prom_family(out, "ferry_worker_info", "gauge", "a worker thread and the mode it runs (always 1)");
	json_array_foreach(arr(stats, "workers"), i, v) {
		const char *l[4];
		char id[24];

		worker_labels(v, l, id, sizeof(id));
		l[2] = "mode", l[3] = str(v, "mode", "?");
		ferryctl_prom_sample(out, "ferry_worker_info", l, 2, 1);
	}
	ferryctl_prom_family(out, "ferry_queue_zero_copy", "gauge", "1 when the queue's AF_XDP socket is zero-copy");
	json_array_foreach(arr(stats, "workers"), i, v) {
		json_t *q;
		size_t k;
		const char *l[4];
		char id[24], qid[24];

		worker_labels(v, l, id, sizeof(id));
		json_array_foreach(arr(v, "queues"), k, q) {
			snprintf(qid, sizeof(qid), "%llu", (unsigned long long)num(q, "queue"));
			l[2] = "queue", l[3] = qid;
			ferryctl_prom_sample(out, "ferry_queue_zero_copy", l, 2,
					     json_is_true(json_object_get(q, "zero_copy")));
		}
	}
}

static void metrics_clients(FILE *out, json_t *stats)
{
	json_t *v;
	size_t i;

	ferryctl_prom_family(out, "ferry_client_info", "gauge", "an attached client session and its process (1)");
	json_array_foreach(arr(stats, "clients"), i, v) {
		const char *l[6];
		char session[24], pid[24];

		client_labels(v, l, session, sizeof(session));
		snprintf(pid, sizeof(pid), "%llu", (unsigned long long)num(v, "pid"));
		l[4] = "pid", l[5] = pid;
		ferryctl_prom_sample(out, "ferry_client_info", l, 3, 1);
	}
}

void ferryctl_show_metrics(FILE *out, json_t *status, json_t *stats)
{
	metrics_info(out, status, stats);
	metrics_engine(out, stats);
	metrics_xdp(out, stats);
	metrics_workers(out, stats);
	metrics_clients(out, stats);
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
		family(out, &families[i], stats);
}
