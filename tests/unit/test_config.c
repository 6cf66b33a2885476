/* SPDX-License-Identifier: MIT */
/* ferryd's command line (daemon/config.c): every option, good and bad values, and what the errors say. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "config.h"
#include "ferryd.h"

#define MAX_ARGS 160

struct parsed {
	struct ferryd_config cfg;
	struct ferryd_cmdline cl;
	char err[256];
	int ret;
};

/* Parses a copy of args (getopt permutes argv), argv[0] = "ferryd". */
static struct parsed *parse_v(const char *const *args, unsigned int n)
{
	static struct parsed p;
	static char storage[MAX_ARGS][96];
	char *argv[MAX_ARGS + 2];

	cr_assert_lt(n, MAX_ARGS, "test bug: too many arguments");
	memset(&p, 0, sizeof(p));
	argv[0] = "ferryd";
	for (unsigned int i = 0; i < n; i++) {
		snprintf(storage[i], sizeof(storage[i]), "%s", args[i]);
		argv[i + 1] = storage[i];
	}
	argv[n + 1] = NULL;
	p.ret = ferryd_config_parse(&p.cfg, &p.cl, (int)n + 1, argv, p.err, sizeof(p.err));
	return &p;
}

#define PARSE(...)                                                                                                    \
	parse_v((const char *const[]){__VA_ARGS__}, sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

#define SVC "--service", "s=198.18.0.1:9000"

static void expect_ok(const struct parsed *p)
{
	cr_assert_eq(p->ret, 0, "expected the command line to parse, got %d: %s", p->ret, p->err);
}

/* Expects a failure whose message holds each of the given fragments (the option and the value). */
static void expect_err(const struct parsed *p, const char *frag1, const char *frag2)
{
	cr_assert_eq(p->ret, -EINVAL, "expected -EINVAL for a bad command line, got %d", p->ret);
	cr_assert(strstr(p->err, frag1), "expected the error to name '%s', got: %s", frag1, p->err);
	if (frag2)
		cr_assert(strstr(p->err, frag2), "expected the error to name '%s', got: %s", frag2, p->err);
}

Test(config, defaults)
{
	struct ferryd_config cfg;

	memset(&cfg, 0xa5, sizeof(cfg));
	ferryd_config_defaults(&cfg);
	cr_assert_str_eq(cfg.ifname, "", "expected no interface by default");
	cr_assert_eq(cfg.queues, 1, "expected 1 queue by default");
	cr_assert_eq(cfg.mode, FERRYD_MODE_AUTO, "expected mode auto by default");
	cr_assert_eq(cfg.xdp_mode, FERRYD_XDP_NATIVE, "expected native XDP by default");
	cr_assert_eq(cfg.zero_copy, FERRYD_ZC_AUTO, "expected zero-copy auto by default");
	cr_assert_eq(cfg.frames, 4096, "expected 4096 frames by default");
	cr_assert_eq(cfg.frame_size, 4096, "expected 4096-byte frames by default");
	cr_assert_eq(cfg.batch, 64, "expected batch 64 by default");
	cr_assert_eq(cfg.busy_poll, false, "expected busy poll off by default");
	cr_assert_eq(cfg.handler, FERRYD_HANDLER_CLIENTS, "expected the clients handler by default");
	cr_assert_eq(cfg.nservices, 0, "expected no service by default");
}

Test(config, minimal_command_line_keeps_defaults)
{
	struct parsed *p = PARSE(SVC);

	expect_ok(p);
	cr_assert_eq(p->cfg.queues, 1, "expected the default queue count");
	cr_assert_eq(p->cfg.mode, FERRYD_MODE_AUTO, "expected the default mode");
	cr_assert_eq(p->cfg.frames, 4096, "expected the default frame count");
	cr_assert_eq(p->cfg.batch, 64, "expected the default batch");
	cr_assert_eq(p->cfg.nservices, 1, "expected one service");
	cr_assert_eq(p->cl.verbose, 0, "expected no -v");
	cr_assert_not(p->cl.help, "expected no --help");
}

Test(config, every_long_option)
{
	struct parsed *p = PARSE("--interface", "fh0", "--queues", "4", "--service", "a=198.18.0.1:9000", "--mode",
				 "xdp", "--xdp-mode", "skb", "--zero-copy", "off", "--frames", "8192", "--frame-size",
				 "2048", "--batch", "32", "--busy-poll", "--handler", "echo", "--verbose", "--verbose");

	expect_ok(p);
	cr_assert_str_eq(p->cfg.ifname, "fh0", "expected --interface fh0");
	cr_assert_eq(p->cfg.queues, 4, "expected --queues 4");
	cr_assert_eq(p->cfg.mode, FERRYD_MODE_XDP, "expected --mode xdp");
	cr_assert_eq(p->cfg.xdp_mode, FERRYD_XDP_SKB, "expected --xdp-mode skb");
	cr_assert_eq(p->cfg.zero_copy, FERRYD_ZC_OFF, "expected --zero-copy off");
	cr_assert_eq(p->cfg.frames, 8192, "expected --frames 8192");
	cr_assert_eq(p->cfg.frame_size, 2048, "expected --frame-size 2048");
	cr_assert_eq(p->cfg.batch, 32, "expected --batch 32");
	cr_assert(p->cfg.busy_poll, "expected --busy-poll");
	cr_assert_eq(p->cfg.handler, FERRYD_HANDLER_ECHO, "expected --handler echo");
	cr_assert_eq(p->cl.verbose, 2, "expected two --verbose");
}

Test(config, short_options_and_equals_form)
{
	struct parsed *p = PARSE("-i", "fh0", "-q", "2", "-s", "a=198.18.0.1:9000", "-m", "socket", "-vv",
				 "--handler=count", "--zero-copy=on", "--frames=128", "--batch=64");

	expect_ok(p);
	cr_assert_str_eq(p->cfg.ifname, "fh0", "expected -i fh0");
	cr_assert_eq(p->cfg.queues, 2, "expected -q 2");
	cr_assert_eq(p->cfg.mode, FERRYD_MODE_SOCKET, "expected -m socket");
	cr_assert_eq(p->cl.verbose, 2, "expected -vv to count twice");
	cr_assert_eq(p->cfg.handler, FERRYD_HANDLER_COUNT, "expected --handler=count");
	cr_assert_eq(p->cfg.zero_copy, FERRYD_ZC_ON, "expected --zero-copy=on");
	cr_assert_eq(p->cfg.frames, 128, "expected --frames=128");
}

Test(config, enum_values)
{
	static const struct {
		const char *opt, *val;
		int want;
	} cases[] = {
		{"--mode", "auto", FERRYD_MODE_AUTO},	    {"--mode", "xdp", FERRYD_MODE_XDP},
		{"--mode", "socket", FERRYD_MODE_SOCKET},   {"--xdp-mode", "native", FERRYD_XDP_NATIVE},
		{"--xdp-mode", "skb", FERRYD_XDP_SKB},	    {"--zero-copy", "auto", FERRYD_ZC_AUTO},
		{"--zero-copy", "on", FERRYD_ZC_ON},	    {"--zero-copy", "off", FERRYD_ZC_OFF},
		{"--handler", "echo", FERRYD_HANDLER_ECHO}, {"--handler", "count", FERRYD_HANDLER_COUNT},
		{"--handler", "clients", FERRYD_HANDLER_CLIENTS},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct parsed *p = PARSE("-i", "fh0", SVC, cases[i].opt, cases[i].val);
		int got;

		expect_ok(p);
		got = !strcmp(cases[i].opt, "--mode")	     ? (int)p->cfg.mode
		      : !strcmp(cases[i].opt, "--xdp-mode")  ? (int)p->cfg.xdp_mode
		      : !strcmp(cases[i].opt, "--zero-copy") ? (int)p->cfg.zero_copy
							     : (int)p->cfg.handler;
		cr_assert_eq(got, cases[i].want, "expected %s %s to give %d, got %d", cases[i].opt, cases[i].val,
			     cases[i].want, got);
	}
}

Test(config, numeric_limits_accepted)
{
	struct parsed *p = PARSE(SVC, "--queues", "64", "--frames", "64", "--batch", "32");

	expect_ok(p);
	cr_assert_eq(p->cfg.queues, 64, "expected the largest queue count to be accepted");
	cr_assert_eq(p->cfg.frames, 64, "expected the smallest frame count to be accepted");
	p = PARSE(SVC, "--queues", "1", "--frames", "1048576", "--batch", "1024", "--frame-size", "4096");
	expect_ok(p);
	cr_assert_eq(p->cfg.frames, 1048576, "expected the largest frame count to be accepted");
	cr_assert_eq(p->cfg.batch, 1024, "expected the largest batch to be accepted");
}

Test(config, services_of_every_address_form)
{
	struct parsed *p = PARSE("--service", "v4=198.18.0.1:9000", "--service", "v6=[2001:2::1]:9001", "--service",
				 "star=*:9002", "--service", "any4=0.0.0.0:9003", "--service", "any6=[::]:9004");
	char buf[64];

	expect_ok(p);
	cr_assert_eq(p->cfg.nservices, 5, "expected five services");
	for (unsigned int i = 0; i < 5; i++)
		cr_assert_eq(p->cfg.services[i].id, i, "expected service %u to have id %u", i, i);
	cr_assert_str_eq(p->cfg.services[0].name, "v4", "expected the first service's name");
	cr_assert_eq(p->cfg.services[0].addr.sa.sa_family, AF_INET, "expected an IPv4 service");
	cr_assert_eq(ntohs(p->cfg.services[0].addr.in4.sin_port), 9000, "expected port 9000");
	inet_ntop(AF_INET, &p->cfg.services[0].addr.in4.sin_addr, buf, sizeof(buf));
	cr_assert_str_eq(buf, "198.18.0.1", "expected address 198.18.0.1");
	cr_assert_eq(p->cfg.services[1].addr.sa.sa_family, AF_INET6, "expected an IPv6 service");
	inet_ntop(AF_INET6, &p->cfg.services[1].addr.in6.sin6_addr, buf, sizeof(buf));
	cr_assert_str_eq(buf, "2001:2::1", "expected address 2001:2::1");
	cr_assert_eq(ntohs(p->cfg.services[1].addr.in6.sin6_port), 9001, "expected port 9001");
	cr_assert_eq(p->cfg.services[2].addr.sa.sa_family, AF_INET, "expected '*' to be an IPv4 wildcard");
	cr_assert_eq(p->cfg.services[2].addr.in4.sin_addr.s_addr, htonl(INADDR_ANY), "expected '*' to be 0.0.0.0");
	cr_assert_eq(p->cfg.services[3].addr.in4.sin_addr.s_addr, htonl(INADDR_ANY), "expected 0.0.0.0");
	cr_assert_eq(p->cfg.services[4].addr.sa.sa_family, AF_INET6, "expected [::] to be an IPv6 wildcard");
	cr_assert(IN6_IS_ADDR_UNSPECIFIED(&p->cfg.services[4].addr.in6.sin6_addr), "expected [::] to be ::");
	cr_assert_eq(p->cfg.services[3].cb, NULL, "expected no callback before a handler is installed");
}

Test(config, help)
{
	struct parsed *p = PARSE("--help");

	cr_assert_eq(p->ret, 0, "expected --help to parse without a service");
	cr_assert(p->cl.help, "expected --help to be reported");
	p = PARSE("-h", "--queues", "bogus");
	cr_assert_eq(p->ret, 0, "expected -h to win over what follows");
	cr_assert(p->cl.help, "expected -h to be reported");
}

Test(config, parse_is_repeatable)
{
	for (int i = 0; i < 3; i++) {
		struct parsed *p = PARSE(SVC, "--queues", "3");

		expect_ok(p);
		cr_assert_eq(p->cfg.queues, 3, "expected the same result on parse %d", i);
	}
}

/* Bad values: each error names the option and the value. Arrays, not
 * pointers: Criterion hands parameters to a freshly started worker. */
struct bad {
	char opt[16], val[64];
};

static struct bad bad_values[] = {
	{"--queues", "0"},	    {"--queues", "65"},	      {"--queues", "abc"},    {"--queues", "-1"},
	{"--queues", "2x"},	    {"--queues", ""},	      {"--queues", "99999999999999999999"},
	{"--mode", "fast"},	    {"--mode", "XDP"},	      {"--xdp-mode", "generic"},
	{"--zero-copy", "yes"},	    {"--handler", "drop"},    {"--frames", "100"},     {"--frames", "32"},
	{"--frames", "2097152"},    {"--frames", "many"},     {"--frame-size", "1024"}, {"--frame-size", "3000"},
	{"--frame-size", "8192"},   {"--batch", "0"},	      {"--batch", "1025"},     {"--batch", " 5"},
	{"--interface", "a-name-that-is-far-too-long"},	      {"--interface", "a/b"},
	{"--service", "noequals"},  {"--service", "=198.18.0.1:9000"},
	{"--service", "x=198.18.0.1"},	{"--service", "x=198.18.0.1:0"},    {"--service", "x=198.18.0.1:70000"},
	{"--service", "x=999.1.1.1:9000"},  {"--service", "x=2001:2::1:9000"},   {"--service", "x=[2001:2::1:9000"},
	{"--service", "x=example.org:9000"}, {"--service", "bad name=198.18.0.1:9000"},
	{"--service", "a-name-that-is-longer-than-31-chars=198.18.0.1:9000"},
};

ParameterizedTestParameters(config, bad_value_names_option_and_value)
{
	return cr_make_param_array(struct bad, bad_values, sizeof(bad_values) / sizeof(bad_values[0]));
}

ParameterizedTest(struct bad *b, config, bad_value_names_option_and_value)
{
	struct parsed *p = PARSE("-i", "fh0", SVC, b->opt, b->val);

	expect_err(p, b->opt, b->val[0] ? b->val : NULL);
}

Test(config, bad_value_in_equals_form)
{
	expect_err(PARSE(SVC, "--queues=zero"), "--queues", "zero");
}

Test(config, missing_value)
{
	expect_err(PARSE(SVC, "--queues"), "--queues", "missing");
	expect_err(PARSE(SVC, "-q"), "-q", "missing");
	expect_err(PARSE("--service"), "--service", "missing");
}

Test(config, unknown_option)
{
	expect_err(PARSE(SVC, "--bogus"), "--bogus", "unknown");
	expect_err(PARSE(SVC, "--bogus=3"), "--bogus", "unknown");
	expect_err(PARSE(SVC, "-x"), "-x", "unknown");
	expect_err(PARSE(SVC, "-vx"), "-x", "unknown");
}

Test(config, positional_argument)
{
	expect_err(PARSE(SVC, "extra"), "extra", "unexpected");
}

Test(config, no_service)
{
	expect_err(PARSE("--queues", "2"), "--service", "none");
}

Test(config, xdp_needs_interface)
{
	expect_err(PARSE(SVC, "--mode", "xdp"), "--mode", "--interface");
	expect_ok(PARSE(SVC, "--mode", "socket"));
	expect_ok(PARSE(SVC, "--mode", "auto"));
}

Test(config, batch_larger_than_half_the_frames)
{
	expect_err(PARSE(SVC, "--frames", "64", "--batch", "64"), "--batch", "64");
}

Test(config, duplicate_service_name_and_address)
{
	expect_err(PARSE("--service", "a=198.18.0.1:9000", "--service", "a=198.18.0.1:9001"), "--service",
		   "a=198.18.0.1:9001");
	expect_err(PARSE("--service", "a=198.18.0.1:9000", "--service", "b=198.18.0.1:9000"), "--service",
		   "already used");
	/* The same port on other addresses or families is fine. */
	expect_ok(PARSE("--service", "a=198.18.0.1:9000", "--service", "b=198.18.0.2:9000", "--service",
			"c=[2001:2::1]:9000", "--service", "d=*:9000"));
}

/* Found by the cmdline fuzzer: the engines key an IPv4-mapped address as IPv4, so ferryd
 * accepted these and then failed to start (exit 1) instead of refusing the command line. */
Test(config, duplicate_service_address_ipv4_mapped)
{
	expect_err(PARSE("--service", "a=198.18.0.2:1", "--service", "b=[::ffff:198.18.0.2]:1"), "--service",
		   "already used by service 'a'");
	expect_err(PARSE("--service", "a=[::ffff:198.18.0.2]:1", "--service", "b=198.18.0.2:1"), "--service",
		   "already used by service 'a'");
	expect_err(PARSE("--service", "a=*:53", "--service", "b=[::ffff:0.0.0.0]:53"), "--service", "already used");
	/* The IPv6 wildcard and other mapped addresses are other services. */
	expect_ok(PARSE("--service", "a=*:53", "--service", "b=[::]:53", "--service", "c=[::ffff:198.18.0.3]:53"));
}

Test(config, too_many_services)
{
	const char *args[2 * (FERRY_MAX_SERVICES + 1)];
	static char specs[FERRY_MAX_SERVICES + 1][48];
	struct parsed *p;

	for (unsigned int i = 0; i <= FERRY_MAX_SERVICES; i++) {
		snprintf(specs[i], sizeof(specs[i]), "s%u=198.18.0.1:%u", i, 10000 + i);
		args[2 * i] = "--service";
		args[2 * i + 1] = specs[i];
	}
	p = parse_v(args, 2 * FERRY_MAX_SERVICES);
	expect_ok(p);
	cr_assert_eq(p->cfg.nservices, FERRY_MAX_SERVICES, "expected %u services to be accepted", FERRY_MAX_SERVICES);
	p = parse_v(args, 2 * (FERRY_MAX_SERVICES + 1));
	expect_err(p, "--service", specs[FERRY_MAX_SERVICES]);
	cr_assert(strstr(p->err, "too many"), "expected 'too many' in: %s", p->err);
}

Test(config, enum_names)
{
	cr_assert_str_eq(ferryd_mode_name(FERRYD_MODE_SOCKET), "socket", "expected the mode's command-line name");
	cr_assert_str_eq(ferryd_xdp_mode_name(FERRYD_XDP_SKB), "skb", "expected the XDP mode's command-line name");
	cr_assert_str_eq(ferryd_zero_copy_name(FERRYD_ZC_OFF), "off", "expected the zero-copy command-line name");
	cr_assert_str_eq(ferryd_handler_name(FERRYD_HANDLER_ECHO), "echo", "expected the handler's command-line name");
}

/* --------------------------------------------------------------- clients */

Test(config, fanout_per_service_before_or_after_it)
{
	struct parsed *p = PARSE("--fanout", "a=all", "--service", "a=198.18.0.1:9000", "--service",
				 "b=198.18.0.1:9001", "--fanout=b=round-robin");

	expect_ok(p);
	cr_assert_eq(p->cfg.services[0].fanout, FERRYD_FANOUT_ALL, "expected a: all");
	cr_assert_eq(p->cfg.services[1].fanout, FERRYD_FANOUT_ROUND_ROBIN, "expected b: round-robin");
	p = PARSE(SVC);
	expect_ok(p);
	cr_assert_eq(p->cfg.services[0].fanout, FERRYD_FANOUT_HASH, "expected hash by default");
	expect_err(PARSE(SVC, "--fanout", "s=spray"), "--fanout", "spray");
	expect_err(PARSE(SVC, "--fanout", "t=all"), "--fanout", "no service named 't'");
	expect_err(PARSE(SVC, "--fanout", "all"), "--fanout", "NAME=");
}

Test(config, allow_users_and_groups_by_name_and_number)
{
	struct parsed *p = PARSE(SVC, "--allow", "s=root,1234:5678,:0", "--allow", "s=:daemon");

	expect_ok(p);
	cr_assert(p->cfg.services[0].allow.set, "expected the allow list set");
	cr_assert_eq(p->cfg.services[0].allow.nuid, 2, "expected 2 users");
	cr_assert_eq(p->cfg.services[0].allow.uid[0], 0, "expected root as uid 0");
	cr_assert_eq(p->cfg.services[0].allow.uid[1], 1234, "expected uid 1234");
	cr_assert_eq(p->cfg.services[0].allow.ngid, 3, "expected 3 groups");
	cr_assert_eq(p->cfg.services[0].allow.gid[0], 5678, "expected gid 5678");
	cr_assert_eq(p->cfg.services[0].allow.gid[1], 0, "expected gid 0");
	cr_assert_eq(p->cfg.services[0].allow.gid[2], 1, "expected daemon as gid 1");
	p = PARSE(SVC);
	cr_assert(!p->cfg.services[0].allow.set, "expected the default allow list");
	expect_err(PARSE(SVC, "--allow", "s=no-such-user-here"), "--allow", "no such user 'no-such-user-here'");
	expect_err(PARSE(SVC, "--allow", "s=:no-such-group-here"), "--allow", "no such group");
	expect_err(PARSE(SVC, "--allow", "s="), "--allow", "s=");
	expect_err(PARSE(SVC, "--allow", "s=,"), "--allow", "s=,");
	expect_err(PARSE(SVC, "--allow", "s=:"), "--allow", "empty");
	expect_err(PARSE(SVC, "--allow", "x=root"), "--allow", "no service named 'x'");
}

Test(config, control_socket)
{
	struct parsed *p = PARSE(SVC);

	expect_ok(p);
	cr_assert_str_eq(p->cfg.control, "/run/ferry/ferryd.sock", "expected the default control socket");
	cr_assert_eq(p->cfg.control_mode, 0660, "expected mode 0660 by default");
	cr_assert_eq(p->cfg.control_uid, -1, "expected ferryd's user by default");
	p = PARSE(SVC, "--control", "/tmp/x.sock", "--control-mode", "0600", "--control-owner", "root",
		  "--control-group", "0");
	expect_ok(p);
	cr_assert_str_eq(p->cfg.control, "/tmp/x.sock", "expected --control");
	cr_assert_eq(p->cfg.control_mode, 0600, "expected --control-mode");
	cr_assert_eq(p->cfg.control_uid, 0, "expected root");
	cr_assert_eq(p->cfg.control_gid, 0, "expected group 0");
	expect_err(PARSE(SVC, "--control", "x.sock"), "--control", "absolute");
	expect_err(PARSE(SVC, "--control-mode", "0999"), "--control-mode", "0999");
	expect_err(PARSE(SVC, "--control-mode", "rw"), "--control-mode", "rw");
	expect_err(PARSE(SVC, "--control-owner", "no-such-user-here"), "--control-owner", "no such user");
}

Test(config, client_zero_copy_per_service)
{
	struct parsed *p = PARSE("--client-zero-copy", "b", "--service", "a=198.18.0.1:9000", "--service",
				 "b=198.18.0.1:9001");

	expect_ok(p);
	cr_assert(!p->cfg.services[0].zero_copy_clients, "expected a to copy");
	cr_assert(p->cfg.services[1].zero_copy_clients, "expected b to share its frames");
	expect_err(PARSE(SVC, "--client-zero-copy", "t"), "--client-zero-copy", "'t'");
}
