/* SPDX-License-Identifier: MIT */
/* ferryd's configuration: defaults and the command line (getopt_long), every bad value a clear error. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
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
	cfg->handler = FERRYD_HANDLER_COUNT;
	snprintf(cfg->run_dir, sizeof(cfg->run_dir), "%s", FERRYD_RUN_DIR);
	cfg->workers = FERRYD_WORKERS_AUTO;
	cfg->nservices = 0;
}

static const char *const mode_names[] = {
	[FERRYD_MODE_AUTO] = "auto", [FERRYD_MODE_XDP] = "xdp", [FERRYD_MODE_SOCKET] = "socket"};
static const char *const xdp_mode_names[] = {[FERRYD_XDP_NATIVE] = "native", [FERRYD_XDP_SKB] = "skb"};
static const char *const zero_copy_names[] = {[FERRYD_ZC_AUTO] = "auto", [FERRYD_ZC_ON] = "on", [FERRYD_ZC_OFF] = "off"};
static const char *const handler_names[] = {[FERRYD_HANDLER_COUNT] = "count", [FERRYD_HANDLER_ECHO] = "echo"};

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
		"      --handler echo|count   what to do with datagrams (default count)\n"
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
	char tmp[64];
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
			if (parse_enum(a, handler_names, 2, &v))
				return fail(err, errlen, "--handler: '%s': expected echo or count", a);
			cfg->handler = (enum ferryd_handler)v;
			break;
		case OPT_RUN_DIR:
			if (a[0] != '/' || strlen(a) >= sizeof(cfg->run_dir))
				return fail(err, errlen, "--run-dir: '%s': expected an absolute path shorter than %zu", a,
					    sizeof(cfg->run_dir));
			snprintf(cfg->run_dir, sizeof(cfg->run_dir), "%s", a);
			break;
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
	if (cfg->mode == FERRYD_MODE_XDP && !cfg->ifname[0])
		return fail(err, errlen, "--mode: 'xdp' needs --interface");
	if (cfg->batch > cfg->frames / 2)
		return fail(err, errlen, "--batch: '%u': larger than half of --frames %u", cfg->batch, cfg->frames);
	if (cfg->workers != FERRYD_WORKERS_AUTO && cfg->mode != FERRYD_MODE_SOCKET && cfg->workers > cfg->queues)
		return fail(err, errlen, "--workers: '%u': more than the %u queue%s (a worker owns whole queues)",
			    cfg->workers, cfg->queues, cfg->queues == 1 ? "" : "s");
	return 0;
}
