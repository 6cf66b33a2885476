/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: ferryd_config_parse() on an argv split from the fuzz data at
 * NUL bytes (argv[0] is "ferryd"). Never crashes; on success the config is
 * one ferryd can run (every limit config.c documents holds, services are
 * distinct under the daemon's one address rule); on failure it says why in
 * its message; and parsing the same argv again gives the same answer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include "config.h"
#include "ferryd.h"
#include "fuzz.h"

#define MAX_ARGS 256
#define MAX_INPUT 8192

struct parsed {
	struct ferryd_config cfg;
	struct ferryd_cmdline cl;
	char err[256];
	int ret;
};

static bool name_ok(const char *s)
{
	if (!s[0])
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		      *s == '-' || *s == '.'))
			return false;
	return true;
}

static uint16_t port_of(const union ferry_sockaddr *a)
{
	return ntohs(a->sa.sa_family == AF_INET ? a->in4.sin_port : a->in6.sin6_port);
}

static void check_config(const struct ferryd_config *c)
{
	FUZZ_CHECK(memchr(c->ifname, 0, sizeof(c->ifname)), "interface name not terminated");
	FUZZ_CHECK(!strchr(c->ifname, '/') && !strchr(c->ifname, ' '), "interface '%s'", c->ifname);
	FUZZ_CHECK(c->mode != FERRYD_MODE_XDP || c->ifname[0], "xdp mode without an interface");
	FUZZ_CHECK(c->mode <= FERRYD_MODE_SOCKET && c->xdp_mode <= FERRYD_XDP_SKB && c->zero_copy <= FERRYD_ZC_OFF &&
			   c->handler <= FERRYD_HANDLER_ECHO,
		   "enum out of range: %d %d %d %d", c->mode, c->xdp_mode, c->zero_copy, c->handler);
	FUZZ_CHECK(c->queues >= 1 && c->queues <= FERRY_MAX_QUEUES, "queues %u", c->queues);
	FUZZ_CHECK(c->workers == FERRYD_WORKERS_AUTO || (c->workers >= 1 && c->workers <= FERRY_MAX_QUEUES),
		   "workers %u", c->workers);
	FUZZ_CHECK(c->workers == FERRYD_WORKERS_AUTO || c->mode == FERRYD_MODE_SOCKET || c->workers <= c->queues,
		   "%u workers for %u queues", c->workers, c->queues);
	FUZZ_CHECK(c->frames >= 64 && c->frames <= (1u << 20) && !(c->frames & (c->frames - 1)), "frames %u", c->frames);
	FUZZ_CHECK(c->frame_size == 2048 || c->frame_size == 4096, "frame size %u", c->frame_size);
	FUZZ_CHECK(c->batch >= 1 && c->batch <= 1024 && c->batch <= c->frames / 2, "batch %u of %u frames", c->batch,
		   c->frames);
	FUZZ_CHECK(memchr(c->run_dir, 0, sizeof(c->run_dir)) && c->run_dir[0] == '/', "run dir");
	FUZZ_CHECK(c->ncpus <= FERRYD_MAX_CPUS, "%u cpus", c->ncpus);
	for (unsigned int i = 0; i < c->ncpus; i++)
		FUZZ_CHECK(c->cpus[i] >= 0 && c->cpus[i] < FERRYD_MAX_CPUS, "cpu %d", c->cpus[i]);

	FUZZ_CHECK(c->nservices >= 1 && c->nservices <= FERRY_MAX_SERVICES, "%u services", c->nservices);
	for (unsigned int i = 0; i < c->nservices; i++) {
		const struct ferryd_service *s = &c->services[i];
		union ferry_sockaddr a;

		FUZZ_CHECK(memchr(s->name, 0, sizeof(s->name)) && name_ok(s->name), "service %u: name", i);
		FUZZ_CHECK(s->id == i, "service '%s': id %u at index %u", s->name, s->id, i);
		FUZZ_CHECK(s->addr.sa.sa_family == AF_INET || s->addr.sa.sa_family == AF_INET6, "service '%s': family %u",
			   s->name, s->addr.sa.sa_family);
		FUZZ_CHECK(port_of(&s->addr) != 0, "service '%s': port 0", s->name);
		FUZZ_CHECK(!s->cb && !s->user, "service '%s': a callback before any handler", s->name);
		ferryd_sockaddr_canon(&s->addr, &a);
		for (unsigned int j = 0; j < i; j++) {
			union ferry_sockaddr b;
			char x[128], y[128];

			ferryd_sockaddr_canon(&c->services[j].addr, &b);
			ferry_sockaddr_format(&s->addr, x, sizeof(x));
			ferry_sockaddr_format(&c->services[j].addr, y, sizeof(y));
			FUZZ_CHECK(strcmp(s->name, c->services[j].name), "service name '%s' twice", s->name);
			FUZZ_CHECK(!ferry_sockaddr_equal(&a, &b), "services '%s' (%s) and '%s' (%s): one address",
				   s->name, x, c->services[j].name, y);
		}
	}
}

/* argv is parsed from a copy: getopt permutes it. */
static void parse(char *const *args, int n, struct parsed *out)
{
	char *argv[MAX_ARGS + 2];

	memset(out, 0, sizeof(*out));
	memcpy(argv, args, (size_t)n * sizeof(*argv));
	argv[n] = NULL;
	out->ret = ferryd_config_parse(&out->cfg, &out->cl, n, argv, out->err, sizeof(out->err));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct parsed first, second;
	static char buf[MAX_INPUT + 1];
	char *args[MAX_ARGS + 1];
	size_t n = size < MAX_INPUT ? size : MAX_INPUT;
	int argc = 1;

	memcpy(buf, data, n);
	buf[n] = '\0';
	args[0] = "ferryd";
	for (char *p = buf; p < buf + n && argc < MAX_ARGS; p += strlen(p) + 1)
		args[argc++] = p;

	parse(args, argc, &first);
	FUZZ_CHECK(first.ret == 0 || first.ret == -EINVAL, "result %d", first.ret);
	if (first.ret) {
		FUZZ_CHECK(first.err[0], "refused without saying why");
	} else {
		FUZZ_CHECK(!first.err[0], "accepted, with an error '%s'", first.err);
		if (!first.cl.help)
			check_config(&first.cfg);
	}

	parse(args, argc, &second);
	FUZZ_CHECK(second.ret == first.ret && !strcmp(second.err, first.err) && second.cl.help == first.cl.help &&
			   second.cl.verbose == first.cl.verbose,
		   "a second parse differs: %d '%s', then %d '%s'", first.ret, first.err, second.ret, second.err);
	FUZZ_CHECK(first.ret || !memcmp(&first.cfg, &second.cfg, sizeof(first.cfg)), "a second parse differs");
	return 0;
}
