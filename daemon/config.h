/* SPDX-License-Identifier: MIT */
/* ferryd's command line: parsed into struct ferryd_config (ferryd.h), callable in-process by tests. */
#ifndef FERRYD_CONFIG_H
#define FERRYD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ferryd.h"

#define FERRYD_DEFAULT_CONFIG "/etc/ferry/ferryd.conf"

/* What the command line says beyond the configuration. */
struct ferryd_cmdline {
	unsigned int verbose; /* number of -v */
	bool help;	      /* --help: print ferryd_config_usage() and exit 0 */
	bool check_config;    /* --check-config: validate, describe, exit */
	char config[256];     /* the file read ("" none): --config, or the default */
	bool bad_config;      /* the error is the configuration's (exit 78), not the command line's (2) */
};

/*
 * Fills cfg with the defaults, then the config file (--config FILE; else
 * default_config, when not NULL, the command line gives no service and the
 * file exists), then argv[1..argc) over it. Returns 0, or -EINVAL with one
 * line in err: "--OPTION: 'VALUE': why" for the command line,
 * "FILE:LINE: KEY: VALUE: why" for the file (then cl->bad_config). With
 * --help it returns 0 at once with cl->help set. Resets getopt's state, so
 * it may be called repeatedly (a reload parses the same argv again).
 */
int ferryd_config_load(struct ferryd_config *cfg, struct ferryd_cmdline *cl, int argc, char **argv,
		       const char *default_config, char *err, size_t errlen);

/* ferryd_config_load() without a default file (tests, fuzzers). */
int ferryd_config_parse(struct ferryd_config *cfg, struct ferryd_cmdline *cl, int argc, char **argv, char *err,
			size_t errlen);

/* The configuration as a config file would say it (--check-config). */
void ferryd_config_describe(const struct ferryd_config *cfg, FILE *out);

/* Whether a running ferryd cannot take a new value of this [daemon] key (a restart can). */
bool ferryd_config_key_restart(const char *name);

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
const char *ferryd_log_level_name(int level);

#endif
