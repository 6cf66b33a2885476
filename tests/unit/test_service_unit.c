/* SPDX-License-Identifier: MIT */
/*
 * What ships for systemd: daemon/ferryd.service verifies (systemd-analyze
 * verify) and is sandboxed to an exposure of at most 3.0 (systemd-analyze
 * security); daemon/ferryd.conf.example is a valid configuration.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "config.h"
#include "ferryd_proc.h"

static char dir[64];

static void cleanup(void)
{
	char cmd[128];

	if (dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd)) {
			/* a left directory in /tmp is no failure of the test */
		}
	}
}

/* A copy of the unit whose commands are the ferryd just built (systemd-analyze wants them to exist). */
static const char *unit_copy(void)
{
	static char path[128];
	char out[256], bin[512];
	int st;

	if (access("/usr/bin/systemd-analyze", X_OK))
		cr_skip_test("systemd-analyze is not installed (make deps installs systemd)");
	snprintf(dir, sizeof(dir), "/tmp/ferryt-unit-%d", (int)getpid());
	if (!realpath(ferry_test_ferryd_path(), bin))
		cr_assert_fail("expected a built ferryd at %s", ferry_test_ferryd_path());
	snprintf(path, sizeof(path), "%s/ferryd.service", dir);
	st = ferry_test_capture(out, sizeof(out), "mkdir -p %s && sed 's|/usr/sbin/ferryd|%s|g' daemon/ferryd.service > %s",
				dir, bin, path);
	cr_assert_eq(st, 0, "expected a copy of daemon/ferryd.service: %s", out);
	return path;
}

Test(service_unit, verifies, .fini = cleanup)
{
	const char *unit = unit_copy();
	char out[4096];
	int st = ferry_test_capture(out, sizeof(out), "systemd-analyze verify --man=no %s 2>&1", unit);

	cr_assert_eq(st, 0, "expected systemd-analyze verify to pass:\n%s", out);
	cr_assert_null(strstr(out, "ferryd.service:"), "expected nothing to say about the unit:\n%s", out);
}

Test(service_unit, exposure_at_most_3, .fini = cleanup)
{
	const char *unit = unit_copy();
	char out[16384];
	const char *level;
	double x;

	ferry_test_capture(out, sizeof(out), "systemd-analyze security --offline=true %s 2>&1", unit);
	level = strstr(out, "Overall exposure level for ferryd.service: ");
	cr_assert_not_null(level, "expected an exposure level:\n%s", out);
	x = strtod(level + strlen("Overall exposure level for ferryd.service: "), NULL);
	cr_log_info("systemd-analyze security: exposure %.1f", x);
	cr_assert_leq(x, 3.0, "expected an exposure of at most 3.0, got %.1f:\n%s", x, out);
}

Test(service_unit, example_config_is_valid)
{
	const char *argv[] = {"ferryd", "--config", "daemon/ferryd.conf.example", NULL};
	static struct ferryd_config cfg;
	struct ferryd_cmdline cl;
	char err[512];

	cr_assert_eq(ferryd_config_parse(&cfg, &cl, 3, (char **)argv, err, sizeof(err)), 0,
		     "expected the example configuration to be valid: %s", err);
	cr_assert_eq(cfg.nservices, 1, "expected its one service");
}
