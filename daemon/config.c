/* SPDX-License-Identifier: MIT */
/* ferryd's configuration: defaults and the command line (getopt_long), every bad value a clear error. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	cfg->workers = FERRYD_WORKERS_AUTO;
	cfg->nservices = 0;
}

static const char *const mode_names[] = {
	[FERRYD_MODE_AUTO] = "auto", [FERRYD_MODE_XDP] = "xdp", [FERRYD_MODE_SOCKET] = "socket"};
static const char *const xdp_mode_names[] = {[FERRYD_XDP_NATIVE] = "native", [FERRYD_XDP_SKB] = "skb"};
static const char *const zero_copy_names[] = {[FERRYD_ZC_AUTO] = "auto", [FERRYD_ZC_ON] = "on", [FERRYD_ZC_OFF] = "off"};
static const char *const handler_names[] = {
	[FERRYD_HANDLER_CLIENTS] = "clients", [FERRYD_HANDLER_COUNT] = "count", [FERRYD_HANDLER_ECHO] = "echo"};

#define NAME_OF(tab, v) ((unsigned int)(v) < sizeof(tab) / sizeof(tab[0]) ? tab[v] : "?")

const char *ferryd_mode_name(enum ferryd_mode m) { return NAME_OF(mode_names, m); }
const char *ferryd_xdp_mode_name(enum ferryd_xdp_mode m) { return NAME_OF(xdp_mode_names, m); }
const char *ferryd_zero_copy_name(enum ferryd_zero_copy z) { return NAME_OF(zero_copy_names, z); }
const char *ferryd_handler_name(enum ferryd_handler h) { return NAME_OF(handler_names, h); }

void ferryd_config_usage(FILE *out)
{
	fprintf(out,
		"Usage: ferryd [OPTION]... --service NAME=ADDR:PORT [--service ...]\n"
		"Steers UDP services of an interface into AF_XDP sockets (or plain sockets) and handles them.\n"
		"\n"
		"  -i, --interface IF         network interface to serve (required for --mode xdp)\n"
		"  -q, --queues N             receive queues 0..N-1 (1..%u; default 1)\n"
		"  -w, --workers N            worker threads, each owning whole queues (default: one per\n"
		"                             queue, at most the CPUs ferryd may run on; 1: no thread)\n"
		"      --cpus LIST            pin the workers to these CPUs, in order (e.g. 2,3 or 4-7)\n"
		"  -s, --service NAME=ADDR:PORT\n"
		"                             a service: ADDR is IPv4, [IPv6], or * / 0.0.0.0 / [::]\n"
		"                             for any address; repeat for more (at most %u)\n"
		"  -m, --mode auto|xdp|socket data path (default auto: XDP, else sockets)\n"
		"      --xdp-mode native|skb  XDP attach mode (default native)\n"
		"      --zero-copy auto|on|off AF_XDP zero-copy (default auto)\n"
		"      --frames N             UMEM frames per queue, a power of two %u..%u (default 4096)\n"
		"      --frame-size N         UMEM frame size, 2048 or 4096 (default 4096)\n"
		"      --batch N              descriptors per batch, 1..%u (default 64)\n"
		"      --busy-poll            busy-poll the AF_XDP sockets\n"
		"      --handler clients|echo|count\n"
		"                             what to do with datagrams: hand them to the client\n"
		"                             processes attached to the service (default), send\n"
		"                             each back (echo), or only count them\n"
		"      --fanout NAME=hash|round-robin|all\n"
		"                             how service NAME spreads datagrams over its clients:\n"
		"                             a flow (source address and port) stays on one client\n"
		"                             (hash, the default), each to the next (round-robin),\n"
		"                             or each client a copy (all)\n"
		"      --client-zero-copy NAME\n"
		"                             service NAME's clients may ask to take its datagrams\n"
		"                             in the UMEM frames they arrived in, mapped read-only:\n"
		"                             no copy, but they can read every frame of the queues\n"
		"                             (all of ferryd's traffic there); repeatable\n"
		"      --allow NAME=USER[:GROUP],...\n"
		"                             who may attach to service NAME: these users, and the\n"
		"                             members of these groups (:GROUP alone: a group only);\n"
		"                             default root and ferryd's own group; repeatable\n"
		"      --control PATH         the control socket clients attach through\n"
		"                             (default " FERRY_CTL_DEFAULT_PATH ")\n"
		"      --control-owner USER   its owner (default: ferryd's user)\n"
		"      --control-group GROUP  its group (default: ferryd's group)\n"
		"      --control-mode MODE    its permissions, octal (default 0660)\n"
		"      --run-dir DIR          where the interface lock lives (default " FERRYD_RUN_DIR ")\n"
		"  -v, --verbose              log more (debug)\n"
		"  -h, --help                 this text\n"
		"\n"
		"Signals: SIGUSR1 prints a stats line to stdout; SIGHUP is ignored (no reload yet); SIGTERM,\n"
		"SIGINT and any other terminating signal drain, detach and exit.\n"
		"Exit status: 0 ok, 1 runtime failure (e.g. the interface is already served), 2 bad command\n"
		"line, 3 frame accounting unbalanced, 69 the interface was deleted.\n",
		FERRY_MAX_QUEUES, FERRY_MAX_SERVICES, FRAMES_MIN, FRAMES_MAX, BATCH_MAX);
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
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

/* "2,3" or "4-7,9": CPU numbers in order, each below FERRYD_MAX_CPUS. */
static int parse_cpus(struct ferryd_config *cfg, const char *s)
{
	char buf[512], *save = NULL, *tok;

	if (!s[0] || strlen(s) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", s);
	cfg->ncpus = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *dash = strchr(tok, '-');
		unsigned int lo, hi;

		if (dash)
			*dash = '\0';
		if (parse_uint(tok, 0, FERRYD_MAX_CPUS - 1, &lo) ||
		    (dash ? parse_uint(dash + 1, lo, FERRYD_MAX_CPUS - 1, &hi) : (hi = lo, 0)))
			return -EINVAL;
		for (unsigned int c = lo; c <= hi; c++) {
			if (cfg->ncpus == FERRYD_MAX_CPUS)
				return -EINVAL;
			cfg->cpus[cfg->ncpus++] = (int)c;
		}
	}
	return cfg->ncpus ? 0 : -EINVAL;
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

static bool valid_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
	       c == '.';
}

static int parse_service(struct ferryd_config *cfg, const char *arg, char *err, size_t errlen)
{
	const char *eq = strchr(arg, '=');
	struct ferryd_service *svc;
	union ferry_sockaddr addr, canon;
	size_t namelen;

	if (cfg->nservices >= FERRY_MAX_SERVICES)
		return fail(err, errlen, "--service: '%s': too many services (at most %u)", arg, FERRY_MAX_SERVICES);
	if (!eq)
		return fail(err, errlen, "--service: '%s': expected NAME=ADDR:PORT", arg);
	namelen = (size_t)(eq - arg);
	if (namelen == 0)
		return fail(err, errlen, "--service: '%s': empty service name", arg);
	if (namelen >= sizeof(svc->name))
		return fail(err, errlen, "--service: '%s': service name longer than %zu characters", arg,
			    sizeof(svc->name) - 1);
	for (size_t i = 0; i < namelen; i++)
		if (!valid_name_char(arg[i]))
			return fail(err, errlen, "--service: '%s': service name may hold only letters, digits, '_', '-', '.'",
				    arg);
	if (ferry_sockaddr_parse(eq + 1, &addr))
		return fail(err, errlen,
			    "--service: '%s': bad address '%s' (expected IPv4:PORT, [IPv6]:PORT, *:PORT, 0.0.0.0:PORT or [::]:PORT)",
			    arg, eq + 1);
	if ((addr.sa.sa_family == AF_INET ? addr.in4.sin_port : addr.in6.sin6_port) == 0)
		return fail(err, errlen, "--service: '%s': port must be 1..65535", arg);
	/* Compared as the engines key them (IPv4-mapped is IPv4), so a clash is a
	 * command-line error here, not a failure once the engine starts. */
	ferryd_sockaddr_canon(&addr, &canon);
	for (unsigned int i = 0; i < cfg->nservices; i++) {
		const struct ferryd_service *o = &cfg->services[i];
		union ferry_sockaddr ocanon;

		if (strlen(o->name) == namelen && !strncmp(o->name, arg, namelen))
			return fail(err, errlen, "--service: '%s': service name '%s' given twice", arg, o->name);
		ferryd_sockaddr_canon(&o->addr, &ocanon);
		if (ferry_sockaddr_equal(&ocanon, &canon))
			return fail(err, errlen, "--service: '%s': address already used by service '%s'", arg, o->name);
	}
	svc = &cfg->services[cfg->nservices];
	memset(svc, 0, sizeof(*svc));
	memcpy(svc->name, arg, namelen);
	svc->name[namelen] = '\0';
	svc->addr = addr;
	svc->id = cfg->nservices++;
	return 0;
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

/* The service named by arg up to '=' (which *rest then follows), or NULL with the error given. */
static struct ferryd_service *named_service(struct ferryd_config *cfg, const char *opt, const char *arg,
					    const char **rest, char *err, size_t errlen)
{
	const char *eq = strchr(arg, '=');

	if (!eq || eq == arg) {
		fail(err, errlen, "%s: '%s': expected NAME=...", opt, arg);
		return NULL;
	}
	for (unsigned int i = 0; i < cfg->nservices; i++)
		if (strlen(cfg->services[i].name) == (size_t)(eq - arg) && !strncmp(cfg->services[i].name, arg, (size_t)(eq - arg))) {
			*rest = eq + 1;
			return &cfg->services[i];
		}
	fail(err, errlen, "%s: '%s': no service named '%.*s' (give it with --service)", opt, arg, (int)(eq - arg), arg);
	return NULL;
}

static int parse_fanout(struct ferryd_config *cfg, const char *arg, char *err, size_t errlen)
{
	const char *v;
	struct ferryd_service *svc = named_service(cfg, "--fanout", arg, &v, err, errlen);
	enum ferryd_fanout f;

	if (!svc)
		return -EINVAL;
	if (ferryd_fanout_parse(v, &f))
		return fail(err, errlen, "--fanout: '%s': expected hash, round-robin or all", arg);
	svc->fanout = (uint8_t)f;
	return 0;
}

/* NAME: the service's clients may take its frames zero-copy. */
static int parse_zero_copy(struct ferryd_config *cfg, const char *arg, char *err, size_t errlen)
{
	for (unsigned int i = 0; i < cfg->nservices; i++)
		if (!strcmp(cfg->services[i].name, arg)) {
			cfg->services[i].zero_copy_clients = true;
			return 0;
		}
	return fail(err, errlen, "--client-zero-copy: '%s': no service of that name (give it with --service)", arg);
}

/* NAME=USER[:GROUP],... or NAME=:GROUP,...: added to what the service allows. */
static int parse_allow(struct ferryd_config *cfg, const char *arg, char *err, size_t errlen)
{
	const char *v;
	struct ferryd_service *svc = named_service(cfg, "--allow", arg, &v, err, errlen);
	char buf[512], *save = NULL, *tok;

	if (!svc)
		return -EINVAL;
	if (!*v || strlen(v) >= sizeof(buf))
		return fail(err, errlen, "--allow: '%s': expected NAME=USER[:GROUP],...", arg);
	snprintf(buf, sizeof(buf), "%s", v);
	svc->allow.set = true;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(tok, ':');
		uint32_t id;

		if (colon)
			*colon = '\0';
		if (!*tok && (!colon || !colon[1]))
			return fail(err, errlen, "--allow: '%s': an empty entry", arg);
		if (*tok) {
			if (ferryd_parse_user(tok, &id))
				return fail(err, errlen, "--allow: '%s': no such user '%s'", arg, tok);
			if (svc->allow.nuid == FERRYD_ALLOW_MAX)
				return fail(err, errlen, "--allow: '%s': more than %u users", arg, FERRYD_ALLOW_MAX);
			svc->allow.uid[svc->allow.nuid++] = id;
		}
		if (colon && colon[1]) {
			if (ferryd_parse_group(colon + 1, &id))
				return fail(err, errlen, "--allow: '%s': no such group '%s'", arg, colon + 1);
			if (svc->allow.ngid == FERRYD_ALLOW_MAX)
				return fail(err, errlen, "--allow: '%s': more than %u groups", arg, FERRYD_ALLOW_MAX);
			svc->allow.gid[svc->allow.ngid++] = id;
		}
	}
	if (!svc->allow.nuid && !svc->allow.ngid)
		return fail(err, errlen, "--allow: '%s': expected NAME=USER[:GROUP],...", arg);
	return 0;
}

enum {
	OPT_XDP_MODE = 0x100,
	OPT_ZERO_COPY,
	OPT_FRAMES,
	OPT_FRAME_SIZE,
	OPT_BATCH,
	OPT_BUSY_POLL,
	OPT_HANDLER,
	OPT_RUN_DIR,
	OPT_CPUS,
	OPT_FANOUT,
	OPT_CLIENT_ZC,
	OPT_ALLOW,
	OPT_CONTROL,
	OPT_CONTROL_OWNER,
	OPT_CONTROL_GROUP,
	OPT_CONTROL_MODE,
};

static const struct option long_options[] = {
	{"interface", required_argument, NULL, 'i'},
	{"queues", required_argument, NULL, 'q'},
	{"workers", required_argument, NULL, 'w'},
	{"cpus", required_argument, NULL, OPT_CPUS},
	{"service", required_argument, NULL, 's'},
	{"mode", required_argument, NULL, 'm'},
	{"xdp-mode", required_argument, NULL, OPT_XDP_MODE},
	{"zero-copy", required_argument, NULL, OPT_ZERO_COPY},
	{"frames", required_argument, NULL, OPT_FRAMES},
	{"frame-size", required_argument, NULL, OPT_FRAME_SIZE},
	{"batch", required_argument, NULL, OPT_BATCH},
	{"busy-poll", no_argument, NULL, OPT_BUSY_POLL},
	{"handler", required_argument, NULL, OPT_HANDLER},
	{"run-dir", required_argument, NULL, OPT_RUN_DIR},
	{"fanout", required_argument, NULL, OPT_FANOUT},
	{"client-zero-copy", required_argument, NULL, OPT_CLIENT_ZC},
	{"allow", required_argument, NULL, OPT_ALLOW},
	{"control", required_argument, NULL, OPT_CONTROL},
	{"control-owner", required_argument, NULL, OPT_CONTROL_OWNER},
	{"control-group", required_argument, NULL, OPT_CONTROL_GROUP},
	{"control-mode", required_argument, NULL, OPT_CONTROL_MODE},
	{"verbose", no_argument, NULL, 'v'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
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
	if (optopt > 0 && optopt < 0x100) {
		snprintf(tmp, tmplen, "-%c", optopt);
		return tmp;
	}
	return a ? a : "?";
}

int ferryd_config_parse(struct ferryd_config *cfg, struct ferryd_cmdline *cl, int argc, char **argv, char *err,
			size_t errlen)
{
	struct {
		int opt;
		const char *arg;
	} post[4 * FERRY_MAX_SERVICES];
	unsigned int npost = 0;
	char tmp[64];
	uint32_t id;
	int c, v;

	ferryd_config_defaults(cfg);
	memset(cl, 0, sizeof(*cl));
	if (err && errlen)
		err[0] = '\0';
	optind = 0; /* GNU: full re-initialisation, so tests can parse many times */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":i:q:w:s:m:vh", long_options, NULL)) != -1) {
		const char *a = optarg;

		switch (c) {
		case 'i':
			if (!a[0])
				return fail(err, errlen, "--interface: empty interface name");
			if (strlen(a) >= IF_NAMESIZE)
				return fail(err, errlen, "--interface: '%s': longer than %d characters", a,
					    IF_NAMESIZE - 1);
			if (strchr(a, '/') || strchr(a, ' '))
				return fail(err, errlen, "--interface: '%s': not a valid interface name", a);
			snprintf(cfg->ifname, sizeof(cfg->ifname), "%s", a);
			break;
		case 'q':
			if (parse_uint(a, 1, FERRY_MAX_QUEUES, &cfg->queues))
				return fail(err, errlen, "--queues: '%s': expected a number from 1 to %u", a,
					    FERRY_MAX_QUEUES);
			break;
		case 'w':
			if (parse_uint(a, 1, FERRY_MAX_QUEUES, &cfg->workers))
				return fail(err, errlen, "--workers: '%s': expected a number from 1 to %u", a,
					    FERRY_MAX_QUEUES);
			break;
		case OPT_CPUS:
			if (parse_cpus(cfg, a))
				return fail(err, errlen, "--cpus: '%s': expected CPU numbers and ranges, e.g. 2,3 or 4-7", a);
			break;
		case 's':
			if (parse_service(cfg, a, err, errlen))
				return -EINVAL;
			break;
		case 'm':
			if (parse_enum(a, mode_names, 3, &v))
				return fail(err, errlen, "--mode: '%s': expected auto, xdp or socket", a);
			cfg->mode = (enum ferryd_mode)v;
			break;
		case OPT_XDP_MODE:
			if (parse_enum(a, xdp_mode_names, 2, &v))
				return fail(err, errlen, "--xdp-mode: '%s': expected native or skb", a);
			cfg->xdp_mode = (enum ferryd_xdp_mode)v;
			break;
		case OPT_ZERO_COPY:
			if (parse_enum(a, zero_copy_names, 3, &v))
				return fail(err, errlen, "--zero-copy: '%s': expected auto, on or off", a);
			cfg->zero_copy = (enum ferryd_zero_copy)v;
			break;
		case OPT_FRAMES:
			if (parse_uint(a, FRAMES_MIN, FRAMES_MAX, &cfg->frames) || (cfg->frames & (cfg->frames - 1)))
				return fail(err, errlen, "--frames: '%s': expected a power of two from %u to %u", a,
					    FRAMES_MIN, FRAMES_MAX);
			break;
		case OPT_FRAME_SIZE:
			if (parse_uint(a, 2048, 4096, &cfg->frame_size) ||
			    (cfg->frame_size != 2048 && cfg->frame_size != 4096))
				return fail(err, errlen, "--frame-size: '%s': expected 2048 or 4096", a);
			break;
		case OPT_BATCH:
			if (parse_uint(a, 1, BATCH_MAX, &cfg->batch))
				return fail(err, errlen, "--batch: '%s': expected a number from 1 to %u", a, BATCH_MAX);
			break;
		case OPT_BUSY_POLL:
			cfg->busy_poll = true;
			break;
		case OPT_HANDLER:
			if (parse_enum(a, handler_names, 3, &v))
				return fail(err, errlen, "--handler: '%s': expected clients, echo or count", a);
			cfg->handler = (enum ferryd_handler)v;
			break;
		case OPT_RUN_DIR:
			if (a[0] != '/' || strlen(a) >= sizeof(cfg->run_dir))
				return fail(err, errlen, "--run-dir: '%s': expected an absolute path shorter than %zu", a,
					    sizeof(cfg->run_dir));
			snprintf(cfg->run_dir, sizeof(cfg->run_dir), "%s", a);
			break;
		case OPT_FANOUT:
		case OPT_ALLOW:
		case OPT_CLIENT_ZC:
			/* services may come later on the line: these are applied after it */
			if (npost == sizeof(post) / sizeof(post[0]))
				return fail(err, errlen, "%s: '%s': given too many times",
					    c == OPT_ALLOW ? "--allow" : c == OPT_FANOUT ? "--fanout" : "--client-zero-copy", a);
			post[npost].opt = c;
			post[npost++].arg = a;
			break;
		case OPT_CONTROL:
			if (a[0] != '/' || strlen(a) >= sizeof(cfg->control))
				return fail(err, errlen, "--control: '%s': expected an absolute path shorter than %zu", a,
					    sizeof(cfg->control));
			snprintf(cfg->control, sizeof(cfg->control), "%s", a);
			break;
		case OPT_CONTROL_OWNER:
			if (ferryd_parse_user(a, &id))
				return fail(err, errlen, "--control-owner: '%s': no such user", a);
			cfg->control_uid = id;
			break;
		case OPT_CONTROL_GROUP:
			if (ferryd_parse_group(a, &id))
				return fail(err, errlen, "--control-group: '%s': no such group", a);
			cfg->control_gid = id;
			break;
		case OPT_CONTROL_MODE: {
			char *end;
			unsigned long m;

			errno = 0;
			m = a[0] >= '0' && a[0] <= '7' ? strtoul(a, &end, 8) : ULONG_MAX;
			if (errno || m > 0777 || *end)
				return fail(err, errlen, "--control-mode: '%s': expected octal permission bits, e.g. 0660", a);
			cfg->control_mode = (unsigned int)m;
			break;
		}
		case 'v':
			cl->verbose++;
			break;
		case 'h':
			cl->help = true;
			return 0;
		case ':':
			return fail(err, errlen, "%s: missing value", option_spelling(argc, argv, tmp, sizeof(tmp)));
		default: /* '?' */
			return fail(err, errlen, "%s: unknown option (see --help)",
				    option_spelling(argc, argv, tmp, sizeof(tmp)));
		}
	}
	if (optind < argc)
		return fail(err, errlen, "'%s': unexpected argument (options only; see --help)", argv[optind]);
	if (cfg->nservices == 0)
		return fail(err, errlen, "--service: none given (at least one NAME=ADDR:PORT is required)");
	for (unsigned int i = 0; i < npost; i++)
		if ((post[i].opt == OPT_ALLOW ? parse_allow : post[i].opt == OPT_FANOUT ? parse_fanout : parse_zero_copy)(
			    cfg, post[i].arg, err, errlen))
			return -EINVAL;
	if (cfg->mode == FERRYD_MODE_XDP && !cfg->ifname[0])
		return fail(err, errlen, "--mode: 'xdp' needs --interface");
	if (cfg->batch > cfg->frames / 2)
		return fail(err, errlen, "--batch: '%u': larger than half of --frames %u", cfg->batch, cfg->frames);
	if (cfg->workers != FERRYD_WORKERS_AUTO && cfg->mode != FERRYD_MODE_SOCKET && cfg->workers > cfg->queues)
		return fail(err, errlen, "--workers: '%u': more than the %u queue%s (a worker owns whole queues)",
			    cfg->workers, cfg->queues, cfg->queues == 1 ? "" : "s");
	return 0;
}
