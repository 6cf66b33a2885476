/* SPDX-License-Identifier: MIT */
/*
 * The Prometheus text exposition format (version 0.0.4), as ferryctl
 * metrics writes it: a family is its # HELP and # TYPE lines, then its
 * samples, all together; label values and help text are escaped here, so
 * nothing ferryd reports (a reason, a path) can break a line. Used by
 * ferryctl only; in ferryd's archive so the tests can reach it.
 */
#ifndef FERRYD_PROM_H
#define FERRYD_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * in escaped as a label value (\ " and newline become \\ \" \n) or as help
 * text (\ and newline only): written to out as snprintf would (always
 * NUL-terminated when len > 0), returning the length the whole needs.
 */
size_t ferryctl_prom_escape_label(char *out, size_t len, const char *in);
size_t ferryctl_prom_escape_help(char *out, size_t len, const char *in);

/* Whether name is a valid metric or label name ([a-zA-Z_:][a-zA-Z0-9_:]*, no ':' in a label's). */
bool ferryctl_prom_name_ok(const char *name, bool label);

/*
 * Starts a family: its # HELP and # TYPE lines ("counter" or "gauge"; a
 * counter's name ends in _total). false (nothing written) when the name is
 * not a valid one.
 */
bool ferryctl_prom_family(FILE *out, const char *name, const char *type, const char *help);

/*
 * One sample of the family started last: name{k1="v1",...} value. labels
 * holds nlabels pairs (name, value); a pair whose value is NULL is left
 * out. Values are escaped; a label name that is not valid drops the sample
 * (false).
 */
bool ferryctl_prom_sample(FILE *out, const char *name, const char *const *labels, unsigned int nlabels,
			  uint64_t value);
/* The same with a value that is not a whole number (seconds). */
bool ferryctl_prom_sample_f(FILE *out, const char *name, const char *const *labels, unsigned int nlabels,
			    double value);

#endif
