/* SPDX-License-Identifier: MIT */
/*
 * The Prometheus text exposition as ferryctl writes it (daemon/prom.c): label
 * values and help text escaped as the format says (label values: \ " and
 * newline; help: \ and newline), names checked, families and samples laid
 * out as lines.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

static void expect_label(const char *in, const char *want)
{
	char out[256];
	size_t n = ferryctl_prom_escape_label(out, sizeof(out), in);

	cr_expect_str_eq(out, want, "label value '%s': expected '%s', got '%s'", in, want, out);
	cr_expect_eq(n, strlen(want), "label value '%s': expected length %zu, got %zu", in, strlen(want), n);
}

static void expect_help(const char *in, const char *want)
{
	char out[256];

	ferryctl_prom_escape_help(out, sizeof(out), in);
	cr_expect_str_eq(out, want, "help '%s': expected '%s', got '%s'", in, want, out);
}

Test(prom, label_values_are_escaped)
{
	expect_label("", "");
	expect_label("dns", "dns");
	expect_label("a\"b", "a\\\"b");
	expect_label("a\\b", "a\\\\b");
	expect_label("line\nbreak", "line\\nbreak");
	expect_label("\\\"\n", "\\\\\\\"\\n");
	expect_label("caf\xc3\xa9 {x=\"1\"}", "caf\xc3\xa9 {x=\\\"1\\\"}"); /* braces and UTF-8 stay */
	expect_label("tab\there", "tab\there");				     /* only the three are escaped */
}

Test(prom, help_text_is_escaped_but_quotes_stay)
{
	expect_help("plain", "plain");
	expect_help("a \"quoted\" word", "a \"quoted\" word");
	expect_help("back\\slash", "back\\\\slash");
	expect_help("two\nlines", "two\\nlines");
}

Test(prom, escaping_cuts_like_snprintf)
{
	char out[5];
	size_t n = ferryctl_prom_escape_label(out, sizeof(out), "a\"b\"c");

	cr_expect_eq(n, 7, "expected the whole length 7, got %zu", n);
	cr_expect_str_eq(out, "a\\\"b", "expected the cut text NUL-terminated, got '%s'", out);
	cr_expect_eq(ferryctl_prom_escape_label(NULL, 0, "\n"), 2, "expected the length with no buffer");
}

Test(prom, names)
{
	cr_expect(ferryctl_prom_name_ok("ferry_rx_packets_total", false), "a metric name");
	cr_expect(ferryctl_prom_name_ok("ns:rule_total", false), "':' in a metric name");
	cr_expect(!ferryctl_prom_name_ok("ns:rule", true), "no ':' in a label name");
	cr_expect(!ferryctl_prom_name_ok("0abc", false), "no digit first");
	cr_expect(!ferryctl_prom_name_ok("a-b", false), "no '-'");
	cr_expect(!ferryctl_prom_name_ok("", false), "not empty");
	cr_expect(!ferryctl_prom_name_ok(NULL, false), "not NULL");
}

/* What the functions write, as one string. */
static char *written(void (*fn)(FILE *))
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert(f, "open_memstream");
	fn(f);
	fclose(f);
	return buf;
}

static void one_family(FILE *f)
{
	const char *l[] = { "service", "d\"n\\s\n", "reason", "ring_full", "worker", NULL };

	ferryctl_prom_family(f, "ferry_x_total", "counter", "what \\ it\ncounts");
	ferryctl_prom_sample(f, "ferry_x_total", l, 3, 42);
	ferryctl_prom_sample(f, "ferry_x_total", NULL, 0, 18446744073709551615ull);
}

Test(prom, a_family_and_its_samples)
{
	char *s = written(one_family);

	cr_expect_str_eq(s,
			 "# HELP ferry_x_total what \\\\ it\\ncounts\n"
			 "# TYPE ferry_x_total counter\n"
			 "ferry_x_total{service=\"d\\\"n\\\\s\\n\",reason=\"ring_full\"} 42\n"
			 "ferry_x_total 18446744073709551615\n",
			 "got:\n%s", s);
	free(s);
}

static void bad_names(FILE *f)
{
	const char *l[] = { "bad-label", "x" };

	cr_expect(!ferryctl_prom_family(f, "bad name", "gauge", "h"), "expected a bad family name refused");
	cr_expect(!ferryctl_prom_sample(f, "ferry_y", l, 1, 1), "expected a bad label name refused");
	cr_expect(!ferryctl_prom_sample(f, "ferry-y", NULL, 0, 1), "expected a bad sample name refused");
}

Test(prom, bad_names_write_nothing)
{
	char *s = written(bad_names);

	cr_expect_str_eq(s, "", "expected nothing written, got:\n%s", s);
	free(s);
}

/* A label value longer than the escaping buffer is written whole all the same. */
static void long_value(FILE *f)
{
	char v[1001];
	const char *l[] = { "v", v };

	memset(v, '"', 1000);
	v[1000] = '\0';
	ferryctl_prom_sample(f, "m", l, 1, 1);
}

Test(prom, long_label_values)
{
	char *s = written(long_value);

	cr_expect_eq(strlen(s), strlen("m{v=\"\"} 1\n") + 2000, "expected every quote escaped, got %zu bytes",
		     strlen(s));
	free(s);
}
