/* SPDX-License-Identifier: MIT */
/* ferryd's command line: parsed into struct ferryd_config (ferryd.h), callable in-process by tests. */
#ifndef FERRYD_CONFIG_H
#define FERRYD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ferryd.h"

/* What the command line says beyond the configuration. */
struct ferryd_cmdline {
	unsigned int verbose; /* number of -v */
	bool help;	      /* --help: print ferryd_config_usage() and exit 0 */
};

/*
 * Fills cfg with the defaults, then applies argv[1..argc). Returns 0, or
 * -EINVAL with one line in err naming the option and the value that was
 * wrong (exit status 2 for ferryd). With --help it returns 0 at once with
 * cl->help set. Resets getopt's state, so it may be called repeatedly.
 */
int ferryd_config_parse(struct ferryd_config *cfg, struct ferryd_cmdline *cl, int argc, char **argv, char *err,
			size_t errlen);

/* A user or group by name or number: 0, or -ENOENT / -EINVAL. */
int ferryd_parse_user(const char *s, uint32_t *out);
int ferryd_parse_group(const char *s, uint32_t *out);

/* Writes the --help text. */
void ferryd_config_usage(FILE *out);

/* Names of the enum values, as the command line spells them. */
const char *ferryd_mode_name(enum ferryd_mode m);
const char *ferryd_xdp_mode_name(enum ferryd_xdp_mode m);
const char *ferryd_zero_copy_name(enum ferryd_zero_copy z);
const char *ferryd_handler_name(enum ferryd_handler h);

#endif
