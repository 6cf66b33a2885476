/* SPDX-License-Identifier: MIT */
/*
 * ferryd's configuration: one table of keys that both the config file (INI,
 * read with libinih) and the command line (getopt_long) are parsed by, so
 * every key has a flag and every bad value a located error.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <ini.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "dispatch.h"
#include "ferryd.h"
#include "owner.h"

#define FRAMES_MIN 64u
#define FRAMES_MAX (1u << 20)
#define BATCH_MAX 1024u

void ferryd_config_defaults(struct ferryd_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->ifname[0] = '\0';
	cfg->queues = 1;
	cfg->mode = FERRYD_MODE_AUTO;
	cfg->xdp_mode = FERRYD_XDP_NATIVE;
	cfg->zero_copy = FERRYD_ZC_AUTO;
	cfg->frames = 4096;
	cfg->frame_size = 4096;
	cfg->batch = 64;
	cfg->busy_poll = false;
	cfg->handler = FERRYD_HANDLER_CLIENTS;
	snprintf(cfg->run_dir, sizeof(cfg->run_dir), "%s", FERRYD_RUN_DIR);
	snprintf(cfg->control, sizeof(cfg->control), "%s", FERRY_CTL_DEFAULT_PATH);
	cfg->control_mode = 0660;
	cfg->control_uid = cfg->control_gid = -1;
	cfg->log_level = -1;
	cfg->workers = FERRYD_WORKERS_AUTO;
	cfg->nservices = 0;
}

static const char *const mode_names[] = {
	[FERRYD_MODE_AUTO] = "auto", [FERRYD_MODE_XDP] = "xdp", [FERRYD_MODE_SOCKET] = "socket"};
static const char *const xdp_mode_names[] = {[FERRYD_XDP_NATIVE] = "native", [FERRYD_XDP_SKB] = "skb"};
static const char *const zero_copy_names[] = {[FERRYD_ZC_AUTO] = "auto", [FERRYD_ZC_ON] = "on", [FERRYD_ZC_OFF] = "off"};
static const char *const handler_names[] = {
	[FERRYD_HANDLER_CLIENTS] = "clients", [FERRYD_HANDLER_COUNT] = "count", [FERRYD_HANDLER_ECHO] = "echo"};
static const char *const level_names[] = {
	[LOG_ERR] = "error", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info",
	[LOG_DEBUG] = "debug"};

#define COUNT(tab) (sizeof(tab) / sizeof(tab[0]))
#define NAME_OF(tab, v) ((unsigned int)(v) < COUNT(tab) && tab[v] ? tab[v] : "?")

const char *ferryd_mode_name(enum ferryd_mode m) { return NAME_OF(mode_names, m); }
const char *ferryd_xdp_mode_name(enum ferryd_xdp_mode m) { return NAME_OF(xdp_mode_names, m); }
const char *ferryd_zero_copy_name(enum ferryd_zero_copy z) { return NAME_OF(zero_copy_names, z); }
const char *ferryd_handler_name(enum ferryd_handler h) { return NAME_OF(handler_names, h); }
const char *ferryd_log_level_name(int level) { return NAME_OF(level_names, level); }

/* ---- values ---------------------------------------------------------------------------------- */

static int why_is(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int why_is(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* A decimal number in [min, max]: no sign, no spaces, no trailing characters. */
static int parse_uint(const char *s, unsigned int min, unsigned int max, unsigned int *out)
{
	unsigned long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = (unsigned int)v;
	return 0;
}

static int parse_enum(const char *s, const char *const *names, unsigned int n, int *out)
{
	for (unsigned int i = 0; i < n; i++) {
		if (names[i] && !strcmp(s, names[i])) {
			*out = (int)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* yes/no, true/false, on/off, 1/0 (INI booleans). */
static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"yes", "true", "on", "1"}, *const no[] = {"no", "false", "off", "0"};

	for (unsigned int i = 0; i < COUNT(yes); i++) {
		if (!strcasecmp(s, yes[i]))
			return *out = true, 0;
		if (!strcasecmp(s, no[i]))
			return *out = false, 0;
	}
	return -EINVAL;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

int ferryd_parse_user(const char *s, uint32_t *out)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	unsigned int v;

	if (all_digits(s))
		return parse_uint(s, 0, UINT32_MAX - 1, &v) ? -EINVAL : (*out = v, 0);
	if (!*s || getpwnam_r(s, &pw, buf, sizeof(buf), &res) || !res)
		return -ENOENT;
	*out = res->pw_uid;
	return 0;
}

int ferryd_parse_group(const char *s, uint32_t *out)
{
	struct group gr, *res = NULL;
	char buf[16384];
	unsigned int v;

	if (all_digits(s))
		return parse_uint(s, 0, UINT32_MAX - 1, &v) ? -EINVAL : (*out = v, 0);
	if (!*s || getgrnam_r(s, &gr, buf, sizeof(buf), &res) || !res)
		return -ENOENT;
	*out = res->gr_gid;
	return 0;
}

static bool valid_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
	       c == '.';
}

/* A service name: 1..31 of [A-Za-z0-9_.-]. */
static int check_name(const char *s, size_t len, char *why, size_t whylen)
{
	if (!len)
		return why_is(why, whylen, "empty service name");
	if (len >= sizeof(((struct ferryd_service *)0)->name))
		return why_is(why, whylen, "service name longer than %zu characters",
			      sizeof(((struct ferryd_service *)0)->name) - 1);
	for (size_t i = 0; i < len; i++)
		if (!valid_name_char(s[i]))
			return why_is(why, whylen, "service name may hold only letters, digits, '_', '-', '.'");
	return 0;
}

/* ---- the keys ------------------------------------------------------------------------------- */

typedef int (*set_fn)(struct ferryd_config *cfg, struct ferryd_service *svc, const char *v, char *why,
		      size_t whylen);

#define SET(name) static int name(struct ferryd_config *cfg, struct ferryd_service *svc, const char *v, char *why, size_t whylen)

SET(set_interface)
{
	(void)svc;
	if (!v[0])
		return why_is(why, whylen, "empty interface name");
	if (strlen(v) >= IF_NAMESIZE)
		return why_is(why, whylen, "longer than %d characters", IF_NAMESIZE - 1);
	if (strchr(v, '/') || strchr(v, ' '))
		return why_is(why, whylen, "not a valid interface name");
	snprintf(cfg->ifname, sizeof(cfg->ifname), "%s", v);
	return 0;
}

SET(set_queues)
{
	(void)svc;
	if (parse_uint(v, 1, FERRY_MAX_QUEUES, &cfg->queues))
		return why_is(why, whylen, "expected a number from 1 to %u", FERRY_MAX_QUEUES);
	return 0;
}

SET(set_workers)
{
	(void)svc;
	if (parse_uint(v, 1, FERRY_MAX_QUEUES, &cfg->workers))
		return why_is(why, whylen, "expected a number from 1 to %u", FERRY_MAX_QUEUES);
	return 0;
}

/* "2,3" or "4-7,9": CPU numbers in order, each below FERRYD_MAX_CPUS. */
SET(set_cpus)
{
	char buf[512], *save = NULL, *tok;

	(void)svc;
	if (!v[0] || strlen(v) >= sizeof(buf))
		goto bad;
	snprintf(buf, sizeof(buf), "%s", v);
	cfg->ncpus = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *dash = strchr(tok, '-');
		unsigned int lo, hi;

		if (dash)
			*dash = '\0';
		if (parse_uint(tok, 0, FERRYD_MAX_CPUS - 1, &lo) ||
		    (dash ? parse_uint(dash + 1, lo, FERRYD_MAX_CPUS - 1, &hi) : (hi = lo, 0)))
			goto bad;
		for (unsigned int c = lo; c <= hi; c++) {
			if (cfg->ncpus == FERRYD_MAX_CPUS)
				goto bad;
			cfg->cpus[cfg->ncpus++] = (int)c;
		}
	}
	if (cfg->ncpus)
		return 0;
bad:
	return why_is(why, whylen, "expected CPU numbers and ranges, e.g. 2,3 or 4-7");
}

SET(set_mode)
{
	int m;

	(void)svc;
	if (parse_enum(v, mode_names, COUNT(mode_names), &m))
		return why_is(why, whylen, "expected auto, xdp or socket");
	cfg->mode = (enum ferryd_mode)m;
	return 0;
}

SET(set_xdp_mode)
{
	int m;

	(void)svc;
	if (parse_enum(v, xdp_mode_names, COUNT(xdp_mode_names), &m))
		return why_is(why, whylen, "expected native or skb");
	cfg->xdp_mode = (enum ferryd_xdp_mode)m;
	return 0;
}

SET(set_zero_copy)
{
	int m;

	(void)svc;
	if (parse_enum(v, zero_copy_names, COUNT(zero_copy_names), &m))
		return why_is(why, whylen, "expected auto, on or off");
	cfg->zero_copy = (enum ferryd_zero_copy)m;
	return 0;
}

SET(set_frames)
{
	(void)svc;
	if (parse_uint(v, FRAMES_MIN, FRAMES_MAX, &cfg->frames) || (cfg->frames & (cfg->frames - 1)))
		return why_is(why, whylen, "expected a power of two from %u to %u", FRAMES_MIN, FRAMES_MAX);
	return 0;
}

SET(set_frame_size)
{
	(void)svc;
	if (parse_uint(v, 2048, 4096, &cfg->frame_size) || (cfg->frame_size != 2048 && cfg->frame_size != 4096))
		return why_is(why, whylen, "expected 2048 or 4096");
	return 0;
}

SET(set_batch)
{
	(void)svc;
	if (parse_uint(v, 1, BATCH_MAX, &cfg->batch))
		return why_is(why, whylen, "expected a number from 1 to %u", BATCH_MAX);
	return 0;
}

SET(set_busy_poll)
{
	(void)svc;
	if (parse_bool(v, &cfg->busy_poll))
		return why_is(why, whylen, "expected yes or no");
	return 0;
}

SET(set_handler)
{
	int h;

	(void)svc;
	if (parse_enum(v, handler_names, COUNT(handler_names), &h))
		return why_is(why, whylen, "expected clients, echo or count");
	cfg->handler = (enum ferryd_handler)h;
	return 0;
}

static int set_path(char *dst, size_t len, const char *v, char *why, size_t whylen)
{
	if (v[0] != '/' || strlen(v) >= len)
		return why_is(why, whylen, "expected an absolute path shorter than %zu", len);
	snprintf(dst, len, "%s", v);
	return 0;
}

SET(set_control)
{
	(void)svc;
	return set_path(cfg->control, sizeof(cfg->control), v, why, whylen);
}

SET(set_run_dir)
{
	(void)svc;
	return set_path(cfg->run_dir, sizeof(cfg->run_dir), v, why, whylen);
}

SET(set_control_owner)
{
	uint32_t id;

	(void)svc;
	if (ferryd_parse_user(v, &id))
		return why_is(why, whylen, "no such user");
	cfg->control_uid = id;
	return 0;
}

SET(set_control_group)
{
	uint32_t id;

	(void)svc;
	if (ferryd_parse_group(v, &id))
		return why_is(why, whylen, "no such group");
	cfg->control_gid = id;
	return 0;
}

SET(set_control_mode)
{
	unsigned long m;
	char *end;

	(void)svc;
	errno = 0;
	m = v[0] >= '0' && v[0] <= '7' ? strtoul(v, &end, 8) : ULONG_MAX;
	if (m == ULONG_MAX || errno || m > 0777 || *end)
		return why_is(why, whylen, "expected octal permission bits, e.g. 0660");
	cfg->control_mode = (unsigned int)m;
	return 0;
}

SET(set_log_level)
{
	int l;

	(void)svc;
	if (parse_enum(v, level_names, COUNT(level_names), &l))
		return why_is(why, whylen, "expected error, warning, notice, info or debug");
	cfg->log_level = l;
	return 0;
}

/* A service's address: parsed, and clashing with no other service's as the engines key them. */
static int set_addr(struct ferryd_config *cfg, struct ferryd_service *svc, const char *v, char *why, size_t whylen)
{
	union ferry_sockaddr addr, canon;

	if (svc->addr.sa.sa_family)
		return why_is(why, whylen, "service %s has an address already (one per service)", svc->name);
	if (ferry_sockaddr_parse(v, &addr))
		return why_is(why, whylen,
			      "bad address '%s' (expected IPv4:PORT, [IPv6]:PORT, *:PORT, 0.0.0.0:PORT or [::]:PORT)", v);
	if ((addr.sa.sa_family == AF_INET ? addr.in4.sin_port : addr.in6.sin6_port) == 0)
		return why_is(why, whylen, "port must be 1..65535");
	/* IPv4-mapped is IPv4 to the engines: a clash is an error here, not at start */
	ferryd_sockaddr_canon(&addr, &canon);
	for (unsigned int i = 0; i < cfg->nservices; i++) {
		const struct ferryd_service *o = &cfg->services[i];
		union ferry_sockaddr ocanon;

		if (o == svc || !o->addr.sa.sa_family)
			continue;
		ferryd_sockaddr_canon(&o->addr, &ocanon);
		if (ferry_sockaddr_equal(&ocanon, &canon))
			return why_is(why, whylen, "address already used by service '%s'", o->name);
	}
	svc->addr = addr;
	return 0;
}

SET(set_listen)
{
	return set_addr(cfg, svc, v, why, whylen);
}

SET(set_fanout)
{
	enum ferryd_fanout f;

	(void)cfg;
	if (ferryd_fanout_parse(v, &f))
		return why_is(why, whylen, "expected hash, round-robin or all");
	svc->fanout = (uint8_t)f;
	return 0;
}

/* USER[:GROUP],... or :GROUP,...: added to what the service allows. */
SET(set_allow)
{
	char buf[512], *save = NULL, *tok;
	unsigned int n = 0;

	(void)cfg;
	if (!*v || strlen(v) >= sizeof(buf))
		return why_is(why, whylen, "expected USER[:GROUP],...");
	snprintf(buf, sizeof(buf), "%s", v);
	svc->allow.set = true;
	for (tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save), n++) {
		char *colon = strchr(tok, ':');
		uint32_t id;

		if (colon)
			*colon = '\0';
		if (!*tok && (!colon || !colon[1]))
			return why_is(why, whylen, "an empty entry");
		if (*tok) {
			if (ferryd_parse_user(tok, &id))
				return why_is(why, whylen, "no such user '%s'", tok);
			if (svc->allow.nuid == FERRYD_ALLOW_MAX)
				return why_is(why, whylen, "more than %u users", FERRYD_ALLOW_MAX);
			svc->allow.uid[svc->allow.nuid++] = id;
		}
		if (colon && colon[1]) {
			if (ferryd_parse_group(colon + 1, &id))
				return why_is(why, whylen, "no such group '%s'", colon + 1);
			if (svc->allow.ngid == FERRYD_ALLOW_MAX)
				return why_is(why, whylen, "more than %u groups", FERRYD_ALLOW_MAX);
			svc->allow.gid[svc->allow.ngid++] = id;
		}
	}
	if (!n)
		return why_is(why, whylen, "expected USER[:GROUP],...");
	return 0;
}

SET(set_hand_off)
{
	(void)cfg;
	if (!strcmp(v, "copy"))
		svc->zero_copy_clients = false;
	else if (!strcmp(v, "zero-copy"))
		svc->zero_copy_clients = true;
	else
		return why_is(why, whylen, "expected copy or zero-copy");
	return 0;
}

static int set_slots(uint32_t *dst, const char *v, char *why, size_t whylen)
{
	unsigned int n;

	if (parse_uint(v, FERRY_RING_MIN_SLOTS, FERRY_RING_MAX_SLOTS, &n) || (n & (n - 1)))
		return why_is(why, whylen, "expected a power of two from %u to %u", FERRY_RING_MIN_SLOTS,
			      FERRY_RING_MAX_SLOTS);
	*dst = n;
	return 0;
}

SET(set_rx_slots)
{
	(void)cfg;
	return set_slots(&svc->rx_slots, v, why, whylen);
}

SET(set_tx_slots)
{
	(void)cfg;
	return set_slots(&svc->tx_slots, v, why, whylen);
}

SET(set_slot_size)
{
	unsigned int n;

	(void)cfg;
	if (parse_uint(v, FERRY_RING_MIN_SLOT_SIZE, FERRY_RING_MAX_SLOT_SIZE, &n) || n % 64)
		return why_is(why, whylen, "expected a multiple of 64 from %u to %u", FERRY_RING_MIN_SLOT_SIZE,
			      FERRY_RING_MAX_SLOT_SIZE);
	svc->slot_size = n;
	return 0;
}

enum scope { DAEMON, SERVICE };

/*
 * Every key: its name in the file ([daemon] or [service NAME]) and on the
 * command line (--NAME VALUE; a service's keys --NAME SERVICE=VALUE), whether
 * a running ferryd can take a new value on reload, and its help.
 */
struct key {
	const char *name;
	int short_opt;
	enum scope scope;
	bool flag;	/* on the command line, takes no value (it means "yes") */
	bool restart;	/* a reload cannot change it */
	set_fn set;
	const char *arg, *help;
};

static const struct key keys[] = {
	{"interface", 'i', DAEMON, false, true, set_interface, "IF", "network interface to serve (required for mode xdp)"},
	{"queues", 'q', DAEMON, false, true, set_queues, "N", "receive queues 0..N-1 (default 1)"},
	{"workers", 'w', DAEMON, false, true, set_workers, "N",
	 "worker threads, each owning whole queues (default: one per queue, at most the CPUs ferryd may run on; "
	 "1: no thread)"},
	{"cpus", 0, DAEMON, false, true, set_cpus, "LIST", "pin the workers to these CPUs, in order (e.g. 2,3 or 4-7)"},
	{"mode", 'm', DAEMON, false, true, set_mode, "auto|xdp|socket", "data path (default auto: XDP, else sockets)"},
	{"xdp-mode", 0, DAEMON, false, true, set_xdp_mode, "native|skb", "XDP attach mode (default native)"},
	{"zero-copy", 0, DAEMON, false, true, set_zero_copy, "auto|on|off", "AF_XDP zero-copy (default auto)"},
	{"frames", 0, DAEMON, false, true, set_frames, "N", "UMEM frames per queue, a power of two (default 4096)"},
	{"frame-size", 0, DAEMON, false, true, set_frame_size, "N", "UMEM frame size, 2048 or 4096 (default 4096)"},
	{"batch", 0, DAEMON, false, true, set_batch, "N", "descriptors per batch, 1..1024 (default 64)"},
	{"busy-poll", 0, DAEMON, true, true, set_busy_poll, "yes|no", "busy-poll the AF_XDP sockets"},
	{"handler", 0, DAEMON, false, true, set_handler, "clients|echo|count",
	 "hand datagrams to the client processes attached to their service (default), send each back (echo), or "
	 "only count them"},
	{"control", 0, DAEMON, false, true, set_control, "PATH",
	 "the control socket clients and ferryctl use (default " FERRY_CTL_DEFAULT_PATH ")"},
	{"control-owner", 0, DAEMON, false, false, set_control_owner, "USER", "its owner (default: ferryd's user)"},
	{"control-group", 0, DAEMON, false, false, set_control_group, "GROUP", "its group (default: ferryd's group)"},
	{"control-mode", 0, DAEMON, false, false, set_control_mode, "MODE", "its permissions, octal (default 0660)"},
	{"run-dir", 0, DAEMON, false, true, set_run_dir, "DIR", "where the interface lock lives (default " FERRYD_RUN_DIR ")"},
	{"log-level", 0, DAEMON, false, false, set_log_level, "LEVEL",
	 "error, warning, notice, info (default) or debug"},
	{"listen", 's', SERVICE, false, false, set_listen, "ADDR:PORT",
	 "the service's address: IPv4:PORT, [IPv6]:PORT, or *:PORT / 0.0.0.0:PORT / [::]:PORT for any"},
	{"fanout", 0, SERVICE, false, false, set_fanout, "hash|round-robin|all",
	 "how datagrams spread over the service's clients: a flow (source address and port) stays on one (hash, the "
	 "default), each to the next (round-robin), or a copy each (all)"},
	{"allow", 0, SERVICE, false, false, set_allow, "USER[:GROUP],...",
	 "who may attach: these users and the members of these groups (:GROUP alone: a group); default root and "
	 "ferryd's own group; adds up when repeated"},
	{"hand-off", 0, SERVICE, false, false, set_hand_off, "copy|zero-copy",
	 "zero-copy: clients may take datagrams in the UMEM frames they arrived in, mapped read-only (they can read "
	 "every frame of the queues); default copy"},
	{"rx-slots", 0, SERVICE, false, false, set_rx_slots, "N", "RX slots per worker of a client that asks none (1024)"},
	{"tx-slots", 0, SERVICE, false, false, set_tx_slots, "N", "TX slots per worker of a client that asks none (512)"},
	{"slot-size", 0, SERVICE, false, false, set_slot_size, "BYTES", "slot size of a client that asks none (2048)"},
};

static const struct key *find_key(const char *name, enum scope scope)
{
	for (unsigned int i = 0; i < COUNT(keys); i++)
		if (keys[i].scope == scope && !strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

bool ferryd_config_key_restart(const char *name)
{
	const struct key *k = find_key(name, DAEMON);

	return k && k->restart;
}

/* The command line's name of a key: a service's listen address is --service NAME=ADDR:PORT. */
static const char *flag_name(const struct key *k)
{
	return k->set == set_listen ? "service" : k->name;
}

/* Text from column indent on, broken at spaces before column width. */
static void wrap(FILE *out, const char *text, int indent, int width)
{
	int col = indent;

	while (*text) {
		int len = (int)strcspn(text, " ");

		if (col > indent && col + 1 + len > width) {
			fprintf(out, "\n%*s", indent, "");
			col = indent;
		} else if (col > indent) {
			fputc(' ', out);
			col++;
		}
		fprintf(out, "%.*s", len, text);
		col += len;
		text += len;
		while (*text == ' ')
			text++;
	}
	fputc('\n', out);
}

void ferryd_config_usage(FILE *out)
{
	fprintf(out,
		"Usage: ferryd [--config FILE] [OPTION]... [--service NAME=ADDR:PORT]...\n"
		"Steers UDP services of an interface into AF_XDP sockets (or plain sockets) and hands their\n"
		"datagrams to the client processes attached to them.\n"
		"\n"
		"      --config FILE          read this configuration file (INI: [daemon] and [service NAME]\n"
		"                             sections with the keys below); without it, " FERRYD_DEFAULT_CONFIG "\n"
		"                             is read when the command line gives no service\n"
		"      --check-config         check the configuration, say what it holds, and exit\n");
	for (int scope = DAEMON; scope <= SERVICE; scope++) {
		fprintf(out, scope == DAEMON ? "\nThe daemon ([daemon] keys, or --KEY VALUE):\n"
					     : "\nA service ([service NAME] keys, or --KEY NAME=VALUE):\n");
		for (unsigned int i = 0; i < COUNT(keys); i++) {
			const struct key *k = &keys[i];
			char head[80];
			int n;

			if (k->scope != (enum scope)scope)
				continue;
			if (k->short_opt)
				n = snprintf(head, sizeof(head), "  -%c, --%s", k->short_opt, flag_name(k));
			else
				n = snprintf(head, sizeof(head), "      --%s", flag_name(k));
			if (!k->flag)
				n += snprintf(head + n, sizeof(head) - (size_t)n, " %s%s", scope == SERVICE ? "NAME=" : "",
					      k->arg);
			fprintf(out, "%-29s", head);
			if (n >= 29)
				fprintf(out, "\n%29s", "");
			wrap(out, k->help, 29, 96);
			if (k->set == set_listen)
				fprintf(out, "%-29s(file: listen = ADDR:PORT)\n", "");
		}
	}
	fprintf(out,
		"      --client-zero-copy NAME  the same as --hand-off NAME=zero-copy\n"
		"\n"
		"  -v, --verbose              log more (debug)\n"
		"  -h, --help                 this text\n"
		"\n"
		"Signals: SIGUSR1 prints the counters to stdout; SIGHUP reloads the configuration (services\n"
		"added, changed or removed; the others untouched); SIGTERM, SIGINT and any other terminating\n"
		"signal drain, detach and exit.\n"
		"Exit status: 0 ok, 1 runtime failure (e.g. the interface is already served), 2 bad command\n"
		"line, 3 frame accounting unbalanced, 69 the interface was deleted, 78 bad configuration.\n");
}

/* ---- one configuration, from a file and the command line --------------------------------------- */

struct parse {
	struct ferryd_config *cfg;
	struct ferryd_cmdline *cl;
	const char *file;
	unsigned int line;	 /* the file's line being parsed */
	bool line_too_long;
	unsigned int svc_line[FERRY_MAX_SERVICES]; /* where each service's section began (0: the command line) */
	char *err;
	size_t errlen;
	int ret;
};

static int fail(struct parse *p, bool file, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct parse *p, bool file, const char *fmt, ...)
{
	va_list ap;

	if (p->err && p->errlen) {
		va_start(ap, fmt);
		vsnprintf(p->err, p->errlen, fmt, ap);
		va_end(ap);
	}
	if (file)
		p->cl->bad_config = true;
	return -EINVAL;
}

static struct ferryd_service *find_service(struct ferryd_config *cfg, const char *name, size_t len)
{
	for (unsigned int i = 0; i < cfg->nservices; i++)
		if (strlen(cfg->services[i].name) == len && !strncmp(cfg->services[i].name, name, len))
			return &cfg->services[i];
	return NULL;
}

/* A new service named name[0..len): 0 and *out, or -EINVAL with the reason in why. */
static int new_service(struct ferryd_config *cfg, const char *name, size_t len, struct ferryd_service **out,
		       char *why, size_t whylen)
{
	struct ferryd_service *svc;
	int err = check_name(name, len, why, whylen);

	if (err)
		return err;
	if (find_service(cfg, name, len))
		return why_is(why, whylen, "service name '%.*s' given twice", (int)len, name);
	if (cfg->nservices >= FERRY_MAX_SERVICES)
		return why_is(why, whylen, "too many services (at most %u)", FERRY_MAX_SERVICES);
	svc = &cfg->services[cfg->nservices];
	memset(svc, 0, sizeof(*svc));
	memcpy(svc->name, name, len);
	svc->name[len] = '\0';
	svc->id = cfg->nservices++;
	*out = svc;
	return 0;
}

/* libinih's reader: one line at a time, counted, and a line too long for it noticed (not cut silently). */
static char *read_line(char *buf, int size, void *stream)
{
	struct parse *p = ((struct parse **)stream)[1];
	FILE *f = ((FILE **)stream)[0];
	size_t n;

	if (!fgets(buf, size, f))
		return NULL;
	p->line++;
	n = strlen(buf);
	if (n == (size_t)size - 1 && buf[n - 1] != '\n' && !feof(f)) {
		int c;

		p->line_too_long = true;
		while ((c = fgetc(f)) != EOF && c != '\n')
			;
	}
	return buf;
}

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;
	char why[200] = "";
	const struct key *k;
	struct ferryd_service *svc = NULL;

	if (p->ret)
		return !p->ret; /* libinih: non-zero is success */
	if (p->line_too_long) {
		p->ret = fail(p, true, "%s:%u: line longer than %d characters", p->file, p->line, INI_MAX_LINE - 1);
		return !p->ret; /* libinih: non-zero is success */
	}
	if (!strcmp(section, "daemon")) {
		k = find_key(name, DAEMON);
		if (!k) {
			p->ret = fail(p, true, "%s:%u: %s: unknown key in [daemon]", p->file, p->line, name);
			return !p->ret; /* libinih: non-zero is success */
		}
	} else if (!strncmp(section, "service ", 8) || !strcmp(section, "service")) {
		const char *sname = section[7] ? section + 8 : "";

		while (*sname == ' ')
			sname++;
		k = find_key(name, SERVICE);
		if (!k) {
			p->ret = fail(p, true, "%s:%u: %s: unknown key in [service %s]", p->file, p->line, name, sname);
			return !p->ret; /* libinih: non-zero is success */
		}
		svc = find_service(p->cfg, sname, strlen(sname));
		if (!svc) {
			if (new_service(p->cfg, sname, strlen(sname), &svc, why, sizeof(why))) {
				p->ret = fail(p, true, "%s:%u: [service %s]: %s", p->file, p->line, sname, why);
				return !p->ret; /* libinih: non-zero is success */
			}
			p->svc_line[svc->id] = p->line;
		}
	} else {
		p->ret = fail(p, true, "%s:%u: %s: %s", p->file, p->line, section[0] ? section : name,
			      section[0] ? "unknown section (expected [daemon] or [service NAME])"
					 : "a key outside any section");
		return !p->ret; /* libinih: non-zero is success */
	}
	if (k->set(p->cfg, svc, value, why, sizeof(why)))
		p->ret = fail(p, true, "%s:%u: %s: %s: %s", p->file, p->line, name, value, why);
	return !p->ret; /* libinih: non-zero is success */
}

static int read_file(struct parse *p, const char *path)
{
	void *stream[2];
	FILE *f = fopen(path, "re");
	int r;

	if (!f)
		return fail(p, true, "%s: %s", path, strerror(errno));
	stream[0] = f;
	stream[1] = p;
	p->file = path;
	p->line = 0;
	r = ini_parse_stream(read_line, stream, on_ini, p);
	fclose(f);
	if (p->ret)
		return p->ret;
	if (r > 0) /* libinih's own complaint: a line that is neither section, key nor comment */
		return fail(p, true, "%s:%d: not a [section], a key = value, or a comment", path, r);
	if (r < 0)
		return fail(p, true, "%s: cannot be read", path);
	for (unsigned int i = 0; i < p->cfg->nservices; i++)
		if (!p->cfg->services[i].addr.sa.sa_family)
			return fail(p, true, "%s:%u: [service %s]: no listen address (listen = ADDR:PORT)", path,
				    p->svc_line[i], p->cfg->services[i].name);
	return 0;
}

/* ---- the command line -------------------------------------------------------------------------- */

enum {
	OPT_KEY = 0x100,      /* + the key's index */
	OPT_CONFIG = 0x80,
	OPT_CHECK_CONFIG,
	OPT_CLIENT_ZC,
};

/*
 * How the user spelled the option getopt is complaining about: the argument
 * it stopped at (without "=value"), or the short option letter inside a
 * cluster such as "-vx".
 */
static const char *option_spelling(int argc, char **argv, char *tmp, size_t tmplen)
{
	const char *a = optind > 0 && optind <= argc ? argv[optind - 1] : NULL;

	if (a && a[0] == '-' && a[1] == '-') {
		snprintf(tmp, tmplen, "%.*s", (int)strcspn(a, "="), a);
		return tmp;
	}
	if (optopt > 0 && optopt < 0x80) {
		snprintf(tmp, tmplen, "-%c", optopt);
		return tmp;
	}
	return a ? a : "?";
}

/* The key of a short option, or NULL. */
static const struct key *short_key(int c)
{
	for (unsigned int i = 0; c > 0 && c < 0x80 && i < COUNT(keys); i++)
		if (keys[i].short_opt == c)
			return &keys[i];
	return NULL;
}

/* The long options from the key table, and the short option string. */
static void build_options(struct option *lo, char *shorts)
{
	unsigned int n = 0;
	char *s = shorts;

	*s++ = ':';
	for (unsigned int i = 0; i < COUNT(keys); i++) {
		lo[n++] = (struct option){flag_name(&keys[i]), keys[i].flag ? no_argument : required_argument, NULL,
					  (int)(OPT_KEY + i)};
		if (keys[i].short_opt) {
			*s++ = (char)keys[i].short_opt;
			if (!keys[i].flag)
				*s++ = ':';
		}
	}
	lo[n++] = (struct option){"config", required_argument, NULL, OPT_CONFIG};
	lo[n++] = (struct option){"check-config", no_argument, NULL, OPT_CHECK_CONFIG};
	lo[n++] = (struct option){"client-zero-copy", required_argument, NULL, OPT_CLIENT_ZC};
	lo[n++] = (struct option){"verbose", no_argument, NULL, 'v'};
	lo[n++] = (struct option){"help", no_argument, NULL, 'h'};
	lo[n] = (struct option){NULL, 0, NULL, 0};
	*s++ = 'v';
	*s++ = 'h';
	*s = '\0';
}

/* A service key on the command line: NAME=VALUE, for a service given before or after it (or in the file). */
static int apply_service_key(struct parse *p, const struct key *k, const char *opt, const char *arg)
{
	const char *eq = strchr(arg, '=');
	struct ferryd_service *svc;
	char why[200] = "";
	int err;

	if (k->set == set_listen) {
		/* --service NAME=ADDR:PORT makes the service */
		if (!eq)
			return fail(p, false, "--service: '%s': expected NAME=ADDR:PORT", arg);
		err = new_service(p->cfg, arg, (size_t)(eq - arg), &svc, why, sizeof(why));
		if (!err) {
			err = set_addr(p->cfg, svc, eq + 1, why, sizeof(why));
			if (err)
				p->cfg->nservices--; /* not made after all */
		}
		return err ? fail(p, false, "--service: '%s': %s", arg, why) : 0;
	}
	if (!eq || eq == arg)
		return fail(p, false, "--%s: '%s': expected NAME=%s", opt, arg, k->arg);
	svc = find_service(p->cfg, arg, (size_t)(eq - arg));
	if (!svc)
		return fail(p, false, "--%s: '%s': no service named '%.*s' (give it with --service)", opt, arg,
			    (int)(eq - arg), arg);
	if (k->set(p->cfg, svc, eq + 1, why, sizeof(why)))
		return fail(p, false, "--%s: '%s': %s", opt, arg, why);
	return 0;
}

/* Is --service given anywhere on the command line? (Then the default file is not read.) */
static bool cmdline_has_service(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strncmp(argv[i], "--service", 9) || !strncmp(argv[i], "-s", 2) ||
		    (argv[i][0] == '-' && argv[i][1] != '-' && strchr(argv[i], 's')))
			return true;
	}
	return false;
}

static int validate(struct parse *p)
{
	struct ferryd_config *cfg = p->cfg;
	bool file = p->cl->config[0];

	if (cfg->nservices == 0)
		return fail(p, file, "%s%s: none given (at least one is required)", file ? p->cl->config : "--service",
			    file ? ": service" : "");
	if (cfg->mode == FERRYD_MODE_XDP && !cfg->ifname[0])
		return fail(p, file, "--mode: 'xdp' needs --interface");
	if (cfg->batch > cfg->frames / 2)
		return fail(p, file, "--batch: '%u': larger than half of --frames %u", cfg->batch, cfg->frames);
	if (cfg->workers != FERRYD_WORKERS_AUTO && cfg->mode != FERRYD_MODE_SOCKET && cfg->workers > cfg->queues)
		return fail(p, file, "--workers: '%u': more than the %u queue%s (a worker owns whole queues)",
			    cfg->workers, cfg->queues, cfg->queues == 1 ? "" : "s");
	return 0;
}

int ferryd_config_load(struct ferryd_config *cfg, struct ferryd_cmdline *cl, int argc, char **argv,
		       const char *default_config, char *err, size_t errlen)
{
	struct option lo[COUNT(keys) + 6];
	char shorts[2 * COUNT(keys) + 4], tmp[64];
	struct {
		const struct key *k;
		const char *opt, *arg;
		char own[48]; /* arg, when it is made here */
	} post[4 * FERRY_MAX_SERVICES];
	unsigned int npost = 0;
	struct parse p = {.cfg = cfg, .cl = cl, .err = err, .errlen = errlen};
	int c;

	ferryd_config_defaults(cfg);
	memset(cl, 0, sizeof(*cl));
	if (err && errlen)
		err[0] = '\0';
	build_options(lo, shorts);

	/* First pass: --config, --help and the syntax; the file comes before every other option. */
	optind = 0; /* GNU: full re-initialisation, so tests (and reload) can parse many times */
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
		if (c == 'h') {
			cl->help = true;
			return 0;
		}
		if (c == ':')
			return fail(&p, false, "%s: missing value", option_spelling(argc, argv, tmp, sizeof(tmp)));
		if (c == '?')
			return fail(&p, false, "%s: unknown option (see --help)",
				    option_spelling(argc, argv, tmp, sizeof(tmp)));
		if (c == OPT_CONFIG && snprintf(cl->config, sizeof(cl->config), "%s", optarg) >= (int)sizeof(cl->config))
			return fail(&p, false, "--config: '%s': path too long", optarg);
	}
	if (optind < argc)
		return fail(&p, false, "'%s': unexpected argument (options only; see --help)", argv[optind]);
	if (!cl->config[0] && default_config && !cmdline_has_service(argc, argv) && !access(default_config, F_OK))
		snprintf(cl->config, sizeof(cl->config), "%s", default_config);
	if (cl->config[0] && read_file(&p, cl->config))
		return -EINVAL;

	/* Second pass: the command line over the file. */
	optind = 0;
	while ((c = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
		const char *a = optarg;
		char why[200] = "";

		if (c == 'v') {
			cl->verbose++;
		} else if (c == OPT_CHECK_CONFIG) {
			cl->check_config = true;
		} else if (c == OPT_CLIENT_ZC) {
			/* the same as --hand-off NAME=zero-copy, after the services like it */
			if (npost == COUNT(post))
				return fail(&p, false, "--client-zero-copy: '%s': given too many times", a);
			if (snprintf(post[npost].own, sizeof(post[npost].own), "%s=zero-copy", a) >=
			    (int)sizeof(post[npost].own))
				return fail(&p, false, "--client-zero-copy: '%s': no service of that name", a);
			post[npost].k = find_key("hand-off", SERVICE);
			post[npost].opt = "client-zero-copy";
			post[npost].arg = post[npost].own;
			npost++;
		} else if ((c >= OPT_KEY && c < OPT_KEY + (int)COUNT(keys)) || short_key(c)) {
			const struct key *k = c >= OPT_KEY ? &keys[c - OPT_KEY] : short_key(c);

			if (k->scope == SERVICE && k->set != set_listen) {
				/* services may come later on the line: applied after them */
				if (npost == COUNT(post))
					return fail(&p, false, "--%s: '%s': given too many times", k->name, a);
				post[npost].k = k;
				post[npost].opt = k->name;
				post[npost++].arg = a;
			} else if (k->scope == SERVICE) {
				if (apply_service_key(&p, k, "service", a))
					return -EINVAL;
			} else if (k->set(cfg, NULL, k->flag ? "yes" : a, why, sizeof(why))) {
				return fail(&p, false, "--%s: '%s': %s", k->name, a, why);
			}
		}
	}
	for (unsigned int i = 0; i < npost; i++)
		if (apply_service_key(&p, post[i].k, post[i].opt, post[i].arg))
			return -EINVAL;
	return validate(&p);
}

int ferryd_config_parse(struct ferryd_config *cfg, struct ferryd_cmdline *cl, int argc, char **argv, char *err,
			size_t errlen)
{
	return ferryd_config_load(cfg, cl, argc, argv, NULL, err, errlen);
}

/* ---- what a configuration says -------------------------------------------------------------------- */

void ferryd_config_describe(const struct ferryd_config *cfg, FILE *out)
{
	fprintf(out, "[daemon]\n");
	if (cfg->ifname[0])
		fprintf(out, "interface = %s\n", cfg->ifname);
	fprintf(out, "queues = %u\n", cfg->queues);
	if (cfg->workers != FERRYD_WORKERS_AUTO)
		fprintf(out, "workers = %u\n", cfg->workers);
	if (cfg->ncpus) {
		fprintf(out, "cpus = ");
		for (unsigned int i = 0; i < cfg->ncpus; i++)
			fprintf(out, "%s%d", i ? "," : "", cfg->cpus[i]);
		fprintf(out, "\n");
	}
	fprintf(out, "mode = %s\nxdp-mode = %s\nzero-copy = %s\nframes = %u\nframe-size = %u\nbatch = %u\n",
		ferryd_mode_name(cfg->mode), ferryd_xdp_mode_name(cfg->xdp_mode), ferryd_zero_copy_name(cfg->zero_copy),
		cfg->frames, cfg->frame_size, cfg->batch);
	fprintf(out, "busy-poll = %s\nhandler = %s\ncontrol = %s\ncontrol-mode = %04o\nrun-dir = %s\n",
		cfg->busy_poll ? "yes" : "no", ferryd_handler_name(cfg->handler), cfg->control, cfg->control_mode,
		cfg->run_dir);
	if (cfg->control_uid >= 0)
		fprintf(out, "control-owner = %lld\n", (long long)cfg->control_uid);
	if (cfg->control_gid >= 0)
		fprintf(out, "control-group = %lld\n", (long long)cfg->control_gid);
	if (cfg->log_level >= 0)
		fprintf(out, "log-level = %s\n", ferryd_log_level_name(cfg->log_level));
	for (unsigned int i = 0; i < cfg->nservices; i++) {
		const struct ferryd_service *s = &cfg->services[i];
		char addr[64];

		ferry_sockaddr_format(&s->addr, addr, sizeof(addr));
		fprintf(out, "\n[service %s]\nlisten = %s\nfanout = %s\nhand-off = %s\n", s->name, addr,
			ferryd_fanout_name((enum ferryd_fanout)s->fanout), s->zero_copy_clients ? "zero-copy" : "copy");
		if (s->allow.set) {
			fprintf(out, "allow = ");
			for (unsigned int u = 0; u < s->allow.nuid; u++)
				fprintf(out, "%s%u", u ? "," : "", s->allow.uid[u]);
			for (unsigned int g = 0; g < s->allow.ngid; g++)
				fprintf(out, "%s:%u", s->allow.nuid || g ? "," : "", s->allow.gid[g]);
			fprintf(out, "\n");
		}
		if (s->rx_slots)
			fprintf(out, "rx-slots = %u\n", s->rx_slots);
		if (s->tx_slots)
			fprintf(out, "tx-slots = %u\n", s->tx_slots);
		if (s->slot_size)
			fprintf(out, "slot-size = %u\n", s->slot_size);
	}
}
