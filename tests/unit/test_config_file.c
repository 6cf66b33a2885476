/* SPDX-License-Identifier: MIT */
/*
 * ferryd's config file (daemon/config.c over libinih): every bad file gives
 * its exact located error ("FILE:LINE: KEY: VALUE: why") and exit 78 from
 * the binary; a good file round-trips through --check-config; the command
 * line goes over the file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "config.h"
#include "ferryd.h"
#include "ferryd_proc.h"

struct loaded {
	struct ferryd_config cfg;
	struct ferryd_cmdline cl;
	char err[512];
	int ret;
};

/* A file of text (its path in path), loaded with extra command-line arguments (NULL-terminated). */
static struct loaded *load_text(const char *text, char *path, size_t pathlen, const char *const *extra)
{
	static struct loaded l;
	char *argv[32] = {"ferryd", "--config", path};
	int argc = 3, fd;

	snprintf(path, pathlen, "/tmp/ferryt-conf-%d-XXXXXX", (int)getpid());
	fd = mkstemp(path);
	cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text), "write");
	close(fd);
	for (; extra && *extra && argc < 31; extra++)
		argv[argc++] = (char *)*extra;
	argv[argc] = NULL;
	memset(&l, 0, sizeof(l));
	l.ret = ferryd_config_parse(&l.cfg, &l.cl, argc, argv, l.err, sizeof(l.err));
	return &l;
}

#define GOOD_DAEMON "[daemon]\ninterface = fh0\n"
#define GOOD_SVC "[service a]\nlisten = 198.18.0.1:9000\n"

/* Bad files and the error each must give after "FILE:" (arrays, not pointers: Criterion copies parameters). */
struct bad_file {
	char text[200];
	char want[120];
};

static struct bad_file bad_files[] = {
	{"[daemon]\nqueues = 0\n" GOOD_SVC, "2: queues: 0: expected a number from 1 to 64"},
	{"[daemon]\nqueues = 65\n" GOOD_SVC, "2: queues: 65: expected a number from 1 to 64"},
	{"[daemon]\nworkers = many\n" GOOD_SVC, "2: workers: many: expected a number from 1 to 64"},
	{"[daemon]\ncpus = 1-\n" GOOD_SVC, "2: cpus: 1-: expected CPU numbers and ranges"},
	{"[daemon]\nmode = fast\n" GOOD_SVC, "2: mode: fast: expected auto, xdp or socket"},
	{"[daemon]\nxdp-mode = generic\n" GOOD_SVC, "2: xdp-mode: generic: expected native or skb"},
	{"[daemon]\nzero-copy = yes\n" GOOD_SVC, "2: zero-copy: yes: expected auto, on or off"},
	{"[daemon]\nframes = 100\n" GOOD_SVC, "2: frames: 100: expected a power of two from 64 to 1048576"},
	{"[daemon]\nframe-size = 1024\n" GOOD_SVC, "2: frame-size: 1024: expected 2048 or 4096"},
	{"[daemon]\nbatch = 0\n" GOOD_SVC, "2: batch: 0: expected a number from 1 to 1024"},
	{"[daemon]\nbusy-poll = maybe\n" GOOD_SVC, "2: busy-poll: maybe: expected yes or no"},
	{"[daemon]\nhandler = drop\n" GOOD_SVC, "2: handler: drop: expected clients, echo or count"},
	{"[daemon]\ninterface = a/b\n" GOOD_SVC, "2: interface: a/b: not a valid interface name"},
	{"[daemon]\ncontrol = relative.sock\n" GOOD_SVC, "2: control: relative.sock: expected an absolute path"},
	{"[daemon]\ncontrol-mode = 0999\n" GOOD_SVC, "2: control-mode: 0999: expected octal permission bits"},
	{"[daemon]\ncontrol-owner = no-such-user-here\n" GOOD_SVC, "2: control-owner: no-such-user-here: no such user"},
	{"[daemon]\ncontrol-group = no-such-group-here\n" GOOD_SVC,
	 "2: control-group: no-such-group-here: no such group"},
	{"[daemon]\nlog-level = loud\n" GOOD_SVC, "2: log-level: loud: expected error, warning, notice, info or debug"},
	{"[daemon]\nbogus = 1\n" GOOD_SVC, "2: bogus: unknown key in [daemon]"},
	{GOOD_DAEMON "[servce a]\nlisten = 198.18.0.1:9000\n", "4: servce a: unknown section"},
	{"queues = 2\n" GOOD_SVC, "1: queues: a key outside any section"},
	{GOOD_DAEMON "this line is neither\n" GOOD_SVC, "3: not a [section], a key = value, or a comment"},
	{GOOD_DAEMON "[service a]\nlisten = 198.18.0.1\n", "4: listen: 198.18.0.1: bad address '198.18.0.1'"},
	{GOOD_DAEMON "[service a]\nlisten = 198.18.0.1:0\n", "4: listen: 198.18.0.1:0: port must be 1..65535"},
	{GOOD_DAEMON "[service a]\nlisten = example.org:53\n", "4: listen: example.org:53: bad address"},
	{GOOD_DAEMON "[service a]\nlisten = [2001:2::1]:53\nlisten = [2001:2::1]:54\n",
	 "5: listen: [2001:2::1]:54: service a has an address already"},
	{GOOD_DAEMON GOOD_SVC "[service b]\nlisten = 198.18.0.1:9000\n",
	 "6: listen: 198.18.0.1:9000: address already used by service 'a'"},
	{GOOD_DAEMON GOOD_SVC "[service b]\nlisten = [::ffff:198.18.0.1]:9000\n",
	 "6: listen: [::ffff:198.18.0.1]:9000: address already used by service 'a'"},
	{GOOD_DAEMON "[service a b]\nlisten = 198.18.0.1:9000\n", "4: [service a b]: service name may hold only"},
	{GOOD_DAEMON "[service]\nlisten = 198.18.0.1:9000\n", "4: [service ]: empty service name"},
	{GOOD_DAEMON "[service a]\nfanout = all\n", "4: [service a]: no listen address"},
	{GOOD_DAEMON GOOD_SVC "fanout = spray\n", "5: fanout: spray: expected hash, round-robin or all"},
	{GOOD_DAEMON GOOD_SVC "allow = no-such-user-here\n", "5: allow: no-such-user-here: no such user"},
	{GOOD_DAEMON GOOD_SVC "allow = :no-such-group-here\n", "5: allow: :no-such-group-here: no such group"},
	{GOOD_DAEMON GOOD_SVC "allow = ,\n", "5: allow: ,: expected USER[:GROUP]"},
	{GOOD_DAEMON GOOD_SVC "hand-off = zerocopy\n", "5: hand-off: zerocopy: expected copy or zero-copy"},
	{GOOD_DAEMON GOOD_SVC "rx-slots = 1000\n", "5: rx-slots: 1000: expected a power of two from 16 to 65536"},
	{GOOD_DAEMON GOOD_SVC "tx-slots = 8\n", "5: tx-slots: 8: expected a power of two from 16 to 65536"},
	{GOOD_DAEMON GOOD_SVC "slot-size = 1000\n", "5: slot-size: 1000: expected a multiple of 64"},
	{GOOD_DAEMON GOOD_SVC "bogus = 1\n", "5: bogus: unknown key in [service a]"},
	{"[daemon]\nmode = xdp\n" GOOD_SVC, "--mode: 'xdp' needs --interface"},
	{GOOD_DAEMON, "service: none given"},
	{"[daemon]\nframes = 64\nbatch = 64\n" GOOD_SVC, "--batch: '64': larger than half of --frames 64"},
	{"[daemon]\ninterface = fh0\nqueues = 1\nworkers = 2\n" GOOD_SVC, "--workers: '2': more than the 1 queue"},
};

ParameterizedTestParameters(config_file, bad_file_located_error)
{
	return cr_make_param_array(struct bad_file, bad_files, sizeof(bad_files) / sizeof(bad_files[0]));
}

ParameterizedTest(struct bad_file *b, config_file, bad_file_located_error)
{
	char path[64], want[300];
	struct loaded *l = load_text(b->text, path, sizeof(path), NULL);

	unlink(path);
	cr_assert_eq(l->ret, -EINVAL, "expected the file to be refused:\n%s", b->text);
	cr_assert(l->cl.bad_config, "expected the error to be the configuration's (exit 78): %s", l->err);
	/* a located error starts with the file's path; a whole-file one names the file or the key */
	if (b->want[0] >= '0' && b->want[0] <= '9') {
		snprintf(want, sizeof(want), "%s:%s", path, b->want);
		cr_assert(!strncmp(l->err, want, strlen(want)), "expected\n  %s\ngot\n  %s", want, l->err);
	} else {
		cr_assert(strstr(l->err, b->want), "expected '%s' in\n  %s", b->want, l->err);
	}
}

Test(config_file, enough_bad_files)
{
	cr_assert_geq(sizeof(bad_files) / sizeof(bad_files[0]), 30, "the issue asks for at least 30 bad configs");
}

Test(config_file, missing_file_and_long_line)
{
	char path[64], text[400];
	const char *argv[] = {"ferryd", "--config", "/tmp/ferryt-no-such-config.conf", NULL};
	struct ferryd_config cfg;
	struct ferryd_cmdline cl;
	char err[300];
	struct loaded *l;

	cr_assert_eq(ferryd_config_parse(&cfg, &cl, 3, (char **)argv, err, sizeof(err)), -EINVAL, "expected a refusal");
	cr_assert(strstr(err, "/tmp/ferryt-no-such-config.conf: No such file"), "got: %s", err);
	cr_assert(cl.bad_config, "expected a configuration error");
	/* libinih reads lines of 199 characters: a longer one is an error, never cut silently */
	snprintf(text, sizeof(text), GOOD_DAEMON GOOD_SVC "allow = %0300d\n", 0);
	l = load_text(text, path, sizeof(path), NULL);
	unlink(path);
	cr_assert_eq(l->ret, -EINVAL, "expected the long line refused");
	cr_assert(strstr(l->err, ":5: line longer than"), "got: %s", l->err);
}

static const char good[] = "# every key once\n"
			   "[daemon]\n"
			   "interface = fh0\n"
			   "queues = 2\n"
			   "workers = 2\n"
			   "cpus = 0-1\n"
			   "mode = xdp\n"
			   "xdp-mode = skb\n"
			   "zero-copy = off\n"
			   "frames = 2048\n"
			   "frame-size = 2048\n"
			   "batch = 32\n"
			   "busy-poll = yes ; inline comments are fine\n"
			   "handler = clients\n"
			   "control = /tmp/ferryt-x.sock\n"
			   "control-owner = root\n"
			   "control-group = 0\n"
			   "control-mode = 0640\n"
			   "run-dir = /tmp/ferryt-run\n"
			   "log-level = notice\n"
			   "\n"
			   "[service dns]\n"
			   "listen = 198.18.0.1:53\n"
			   "fanout = round-robin\n"
			   "allow = root:daemon, 1234\n"
			   "hand-off = zero-copy\n"
			   "rx-slots = 256\n"
			   "tx-slots = 128\n"
			   "slot-size = 4096\n"
			   "\n"
			   "[service any6]\n"
			   "listen = [::]:9000\n"
			   "fanout = all\n";

static void expect_same(const struct ferryd_config *a, const struct ferryd_config *b)
{
	cr_assert_str_eq(a->ifname, b->ifname, "interface");
	cr_assert(a->queues == b->queues && a->workers == b->workers && a->ncpus == b->ncpus, "queues, workers, cpus");
	cr_assert(!memcmp(a->cpus, b->cpus, a->ncpus * sizeof(a->cpus[0])), "cpus");
	cr_assert(a->mode == b->mode && a->xdp_mode == b->xdp_mode && a->zero_copy == b->zero_copy, "modes");
	cr_assert(a->frames == b->frames && a->frame_size == b->frame_size && a->batch == b->batch, "frames, batch");
	cr_assert(a->busy_poll == b->busy_poll && a->handler == b->handler, "busy-poll, handler");
	cr_assert_str_eq(a->control, b->control, "control");
	cr_assert(a->control_uid == b->control_uid && a->control_gid == b->control_gid &&
			  a->control_mode == b->control_mode,
		  "control access");
	cr_assert_str_eq(a->run_dir, b->run_dir, "run-dir");
	cr_assert_eq(a->log_level, b->log_level, "log-level");
	cr_assert_eq(a->nservices, b->nservices, "services");
	for (unsigned int i = 0; i < a->nservices; i++) {
		const struct ferryd_service *x = &a->services[i], *y = &b->services[i];

		cr_assert_str_eq(x->name, y->name, "service %u name", i);
		cr_assert(ferry_sockaddr_equal(&x->addr, &y->addr), "service %s address", x->name);
		cr_assert(x->fanout == y->fanout && x->zero_copy_clients == y->zero_copy_clients, "service %s fanout",
			  x->name);
		cr_assert(!memcmp(&x->allow, &y->allow, sizeof(x->allow)), "service %s allow", x->name);
		cr_assert(x->rx_slots == y->rx_slots && x->tx_slots == y->tx_slots && x->slot_size == y->slot_size,
			  "service %s ring sizes", x->name);
	}
}

/* Every key once, then what --check-config prints of it, read back: the same configuration. */
Test(config_file, every_key_round_trips)
{
	static struct ferryd_config first;
	char path[64], path2[64], out[8192];
	struct loaded *l = load_text(good, path, sizeof(path), NULL);
	FILE *f;

	cr_assert_eq(l->ret, 0, "expected the good file to load: %s", l->err);
	cr_assert_eq(l->cfg.nservices, 2, "expected two services");
	cr_assert(l->cfg.busy_poll && l->cfg.services[0].zero_copy_clients, "expected busy-poll and zero-copy");
	cr_assert_eq(l->cfg.services[0].allow.nuid, 2, "expected users root and 1234");
	cr_assert_eq(l->cfg.services[0].allow.ngid, 1, "expected group daemon");
	first = l->cfg;
	f = fmemopen(out, sizeof(out), "w");
	ferryd_config_describe(&first, f);
	fclose(f);
	l = load_text(out, path2, sizeof(path2), NULL);
	unlink(path);
	unlink(path2);
	cr_assert_eq(l->ret, 0, "expected what --check-config says to load again: %s\n%s", l->err, out);
	expect_same(&first, &l->cfg);
}

/* The command line goes over the file: a daemon key replaced, a service added, a file service's key changed. */
Test(config_file, command_line_over_the_file)
{
	const char *extra[] = {"--queues", "4", "--workers", "4", "--service", "b=198.18.0.1:9001", "--fanout", "a=all",
			       NULL};
	char path[64];
	struct loaded *l = load_text(GOOD_DAEMON GOOD_SVC, path, sizeof(path), extra);

	unlink(path);
	cr_assert_eq(l->ret, 0, "expected it to load: %s", l->err);
	cr_assert_eq(l->cfg.queues, 4, "expected --queues over the file");
	cr_assert_eq(l->cfg.nservices, 2, "expected the file's service and the command line's");
	cr_assert_eq(l->cfg.services[0].fanout, FERRYD_FANOUT_ALL, "expected --fanout on the file's service");
	l = load_text(GOOD_DAEMON GOOD_SVC, path, sizeof(path), (const char *const[]){"--service", "a=198.18.0.1:9002", NULL});
	unlink(path);
	cr_assert_eq(l->ret, -EINVAL, "expected a service of the file given again to be refused");
	cr_assert(strstr(l->err, "given twice"), "got: %s", l->err);
}

/* The binary: a bad file is exit 78 before anything is touched, a bad flag 2, --check-config 0. */
Test(config_file, exit_statuses)
{
	char out[4096], path[64];
	struct loaded *l = load_text("[daemon]\nqueues = 0\n" GOOD_SVC, path, sizeof(path), NULL);
	int st;

	(void)l;
	st = ferry_test_capture(out, sizeof(out), "%s --config %s 2>&1", ferry_test_ferryd_path(), path);
	cr_assert_eq(st, 78, "expected exit 78 for a bad file, got %d: %s", st, out);
	cr_assert(strstr(out, ":2: queues: 0:"), "expected the located error, got: %s", out);
	unlink(path);
	st = ferry_test_capture(out, sizeof(out), "%s --queues 0 --service a=198.18.0.1:1 2>&1", ferry_test_ferryd_path());
	cr_assert_eq(st, 2, "expected exit 2 for a bad flag, got %d: %s", st, out);
	l = load_text(good, path, sizeof(path), NULL);
	st = ferry_test_capture(out, sizeof(out), "%s --config %s --check-config 2>&1", ferry_test_ferryd_path(), path);
	unlink(path);
	cr_assert_eq(st, 0, "expected --check-config to pass, got %d: %s", st, out);
	cr_assert(strstr(out, "the configuration is valid: 2 services") && strstr(out, "[service dns]"),
		  "expected what it holds, got: %s", out);
}
