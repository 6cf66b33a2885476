/* SPDX-License-Identifier: MIT */
/*
 * ferryd's JSON writer (daemon/json.c): the exact bytes it writes for every
 * kind of string (quotes, backslashes, control characters, UTF-8 good and
 * bad), that a real parser (jansson, what ferryctl reads with) takes every
 * document back to what was written, and that misuse is refused, never
 * written.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* s (n bytes) as the writer writes it: a document holding just that string. */
static char *string_doc(const char *s, size_t n)
{
	struct ferryd_json j;
	char *out = NULL;
	size_t len = 0;
	int err;

	ferryd_json_init(&j);
	ferryd_json_strn(&j, NULL, s, n);
	err = ferryd_json_finish(&j, &out, &len);
	cr_assert_eq(err, 0, "expected a document, got %d", err);
	cr_assert_eq(strlen(out), len, "expected the length to be the text's");
	return out;
}

static void expect_escaped(const char *s, size_t n, const char *want)
{
	char *got = string_doc(s, n);

	cr_expect_str_eq(got, want, "expected %s, got %s", want, got);
	free(got);
}

Test(json, plain_and_special_characters)
{
	expect_escaped("", 0, "\"\"");
	expect_escaped("dns", 3, "\"dns\"");
	expect_escaped("a\"b", 3, "\"a\\\"b\"");
	expect_escaped("a\\b", 3, "\"a\\\\b\"");
	expect_escaped("/run/ferry", 10, "\"/run/ferry\""); /* '/' may stay as it is */
	expect_escaped("\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\"");
	expect_escaped("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\""); /* DEL is no control character to JSON */
	expect_escaped("a\0b", 3, "\"a\\u0000b\"");			     /* a NUL inside a counted string */
}

Test(json, utf8_passes_whole)
{
	expect_escaped("caf\xc3\xa9", 5, "\"caf\xc3\xa9\"");
	expect_escaped("\xe2\x82\xac", 3, "\"\xe2\x82\xac\"");		/* U+20AC */
	expect_escaped("\xf0\x9f\x9a\xa2", 4, "\"\xf0\x9f\x9a\xa2\""); /* U+1F6A2, 4 bytes */
	expect_escaped("\xf4\x8f\xbf\xbf", 4, "\"\xf4\x8f\xbf\xbf\""); /* U+10FFFF, the last */
}

Test(json, bytes_that_are_not_utf8_become_replacement_characters)
{
	expect_escaped("\xff", 1, "\"\\ufffd\"");
	expect_escaped("a\x80z", 3, "\"a\\ufffdz\"");			   /* a lone continuation byte */
	expect_escaped("\xc3", 1, "\"\\ufffd\"");			   /* cut short */
	expect_escaped("\xc3(", 2, "\"\\ufffd(\"");			   /* a lead without its continuation */
	expect_escaped("\xc0\xaf", 2, "\"\\ufffd\\ufffd\"");		   /* overlong '/' */
	expect_escaped("\xe0\x80\xaf", 3, "\"\\ufffd\\ufffd\\ufffd\"");	   /* overlong, 3 bytes */
	expect_escaped("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");	   /* a surrogate, U+D800 */
	expect_escaped("\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* past U+10FFFF */
	expect_escaped("\xe2\x82", 2, "\"\\ufffd\\ufffd\"");		   /* a 3-byte sequence cut at 2 */
}

/* Every byte string of a hostile mix comes back from jansson as valid JSON, and as what was meant. */
Test(json, a_real_parser_reads_every_string_back)
{
	static const struct {
		const char *in;
		size_t n;
		const char *back; /* what the parser must give back */
	} cases[] = {
#define S(x) x, sizeof(x) - 1
		{ S("quote \" backslash \\ newline \n tab \t"), "quote \" backslash \\ newline \n tab \t" },
		{ S("\x01\x02\x1b[31m"), "\x01\x02\x1b[31m" },
		{ S("caf\xc3\xa9 \xf0\x9f\x9a\xa2"), "caf\xc3\xa9 \xf0\x9f\x9a\xa2" },
		{ S("bad \xff\xfe end"), "bad \xef\xbf\xbd\xef\xbf\xbd end" },
		{ S("\xed\xbf\xbf"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
#undef S
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *doc = string_doc(cases[i].in, cases[i].n);
		json_error_t e;
		json_t *v = json_loads(doc, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);

		cr_assert(v, "case %zu: expected jansson to parse %s, got '%s' at %d", i, doc, e.text, e.position);
		cr_expect(json_is_string(v), "case %zu: expected a string", i);
		cr_expect_eq(json_string_length(v), strlen(cases[i].back), "case %zu: expected %zu bytes back, got %zu",
			     i, strlen(cases[i].back), json_string_length(v));
		cr_expect(!memcmp(json_string_value(v), cases[i].back, strlen(cases[i].back)),
			  "case %zu: expected the string back as meant", i);
		json_decref(v);
		free(doc);
	}
}

Test(json, objects_arrays_and_numbers)
{
	struct ferryd_json j;
	char *out;
	size_t len;

	ferryd_json_init(&j);
	ferryd_json_object(&j, NULL);
	ferryd_json_u64(&j, "max", UINT64_MAX);
	ferryd_json_i64(&j, "min", INT64_MIN);
	ferryd_json_bool(&j, "yes", true);
	ferryd_json_null(&j, "nothing");
	ferryd_json_str(&j, "null string", NULL);
	ferryd_json_array(&j, "a\"rr");
	ferryd_json_u64(&j, NULL, 1);
	ferryd_json_object(&j, NULL);
	ferryd_json_end(&j);
	ferryd_json_array(&j, NULL);
	ferryd_json_end(&j);
	ferryd_json_str(&j, NULL, "x");
	ferryd_json_end(&j);
	ferryd_json_object(&j, "empty");
	ferryd_json_end(&j);
	ferryd_json_end(&j);
	cr_assert_eq(ferryd_json_finish(&j, &out, &len), 0, "expected a document");
	cr_expect_str_eq(out,
			 "{\"max\":18446744073709551615,\"min\":-9223372036854775808,\"yes\":true,\"nothing\":null,"
			 "\"null string\":null,\"a\\\"rr\":[1,{},[],\"x\"],\"empty\":{}}",
			 "got %s", out);
	free(out);
}

/* Each misuse: the writer remembers it, writes nothing more, and finish says -EINVAL. */
static void expect_misuse(void (*misuse)(struct ferryd_json *), const char *what)
{
	struct ferryd_json j;
	char *out = NULL;
	size_t len;

	ferryd_json_init(&j);
	misuse(&j);
	cr_expect_eq(ferryd_json_finish(&j, &out, &len), -EINVAL, "%s: expected -EINVAL", what);
	cr_expect_null(out, "%s: expected no document", what);
}

static void key_in_array(struct ferryd_json *j)
{
	ferryd_json_array(j, NULL);
	ferryd_json_u64(j, "k", 1);
	ferryd_json_end(j);
}

static void no_key_in_object(struct ferryd_json *j)
{
	ferryd_json_object(j, NULL);
	ferryd_json_u64(j, NULL, 1);
	ferryd_json_end(j);
}

static void left_open(struct ferryd_json *j)
{
	ferryd_json_object(j, NULL);
	ferryd_json_array(j, "a");
	ferryd_json_end(j);
}

static void end_too_many(struct ferryd_json *j)
{
	ferryd_json_object(j, NULL);
	ferryd_json_end(j);
	ferryd_json_end(j);
}

static void two_top_values(struct ferryd_json *j)
{
	ferryd_json_u64(j, NULL, 1);
	ferryd_json_u64(j, NULL, 2);
}

static void nothing(struct ferryd_json *j)
{
	(void)j;
}

static void too_deep(struct ferryd_json *j)
{
	for (int i = 0; i <= FERRYD_JSON_MAX_DEPTH; i++)
		ferryd_json_array(j, NULL);
	for (int i = 0; i <= FERRYD_JSON_MAX_DEPTH; i++)
		ferryd_json_end(j);
}

Test(json, misuse_is_refused_not_written)
{
	expect_misuse(key_in_array, "a key inside an array");
	expect_misuse(no_key_in_object, "no key inside an object");
	expect_misuse(left_open, "an object left open");
	expect_misuse(end_too_many, "an end with nothing open");
	expect_misuse(two_top_values, "two top-level values");
	expect_misuse(nothing, "no value at all");
	expect_misuse(too_deep, "nesting past the limit");
}

/* A document far larger than the first buffer: grows, and stays one valid document. */
Test(json, large_documents_grow)
{
	struct ferryd_json j;
	json_error_t e;
	json_t *v;
	char *out;
	size_t len;

	ferryd_json_init(&j);
	ferryd_json_array(&j, NULL);
	for (int i = 0; i < 20000; i++) {
		ferryd_json_object(&j, NULL);
		ferryd_json_u64(&j, "i", (uint64_t)i);
		ferryd_json_str(&j, "s", "\"quoted\"\n");
		ferryd_json_end(&j);
	}
	ferryd_json_end(&j);
	cr_assert_eq(ferryd_json_finish(&j, &out, &len), 0, "expected a document");
	cr_expect_gt(len, 400000, "expected a large document, got %zu bytes", len);
	v = json_loadb(out, len, 0, &e);
	cr_assert(v, "expected jansson to parse it: %s at %d", e.text, e.position);
	cr_expect_eq(json_array_size(v), 20000, "expected 20000 elements");
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(v, 19999), "i")), 19999, "expected the last one");
	json_decref(v);
	free(out);
}
