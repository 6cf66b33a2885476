/* SPDX-License-Identifier: MIT */
/* A JSON writer for the control socket's answers (json.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

void ferryd_json_init(struct ferryd_json *j)
{
	memset(j, 0, sizeof(*j));
	j->empty[0] = true;
}

void ferryd_json_free(struct ferryd_json *j)
{
	free(j->buf);
	ferryd_json_init(j);
}

static void fail(struct ferryd_json *j, int err)
{
	if (!j->err)
		j->err = err;
}

/* Room for n more bytes and a NUL. */
static bool reserve(struct ferryd_json *j, size_t n)
{
	size_t cap;
	char *b;

	if (j->err)
		return false;
	if (j->len + n + 1 <= j->cap)
		return true;
	cap = j->cap ? j->cap : 1024;
	while (cap < j->len + n + 1) {
		if (cap > SIZE_MAX / 2) {
			fail(j, -ENOMEM);
			return false;
		}
		cap *= 2;
	}
	b = realloc(j->buf, cap);
	if (!b) {
		fail(j, -ENOMEM);
		return false;
	}
	j->buf = b;
	j->cap = cap;
	return true;
}

static void put(struct ferryd_json *j, const char *s, size_t n)
{
	if (!reserve(j, n))
		return;
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	j->buf[j->len] = '\0';
}

/* The length of the well-formed UTF-8 sequence at s (of at most n bytes), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0xc2 || s[0] > 0xf4)
		return 0; /* a continuation byte, an overlong 2-byte lead, or past U+10FFFF */
	len = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
	if (n < len)
		return 0;
	cp = s[0] & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0; /* overlong, or past the last code point */
	if (cp >= 0xd800 && cp <= 0xdfff)
		return 0; /* a surrogate: not a character */
	return len;
}

/* s as a JSON string, quotes included. */
static void put_string(struct ferryd_json *j, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	put(j, "\"", 1);
	while (i < n && !j->err) {
		size_t run = i, len;
		char esc[8];

		/* the plain run first, in one copy */
		while (run < n && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\')
			run++;
		put(j, (const char *)s + i, run - i);
		i = run;
		if (i == n)
			break;
		switch (s[i]) {
		case '"':
			put(j, "\\\"", 2);
			break;
		case '\\':
			put(j, "\\\\", 2);
			break;
		case '\b':
			put(j, "\\b", 2);
			break;
		case '\f':
			put(j, "\\f", 2);
			break;
		case '\n':
			put(j, "\\n", 2);
			break;
		case '\r':
			put(j, "\\r", 2);
			break;
		case '\t':
			put(j, "\\t", 2);
			break;
		default:
			if (s[i] < 0x20) {
				snprintf(esc, sizeof(esc), "\\u%04x", s[i]);
				put(j, esc, 6);
				break;
			}
			len = utf8_len(s + i, n - i);
			if (!len) {
				put(j, "\\ufffd", 6); /* not UTF-8: the replacement character, one per byte */
				break;
			}
			put(j, (const char *)s + i, len);
			i += len;
			continue;
		}
		i++;
	}
	put(j, "\"", 1);
}

/* Before a value: the comma, and the key if (and only if) the container is an object. */
static bool begin_value(struct ferryd_json *j, const char *key)
{
	unsigned int d = j->depth;

	if (j->err)
		return false;
	if (d == 0 && !j->empty[0]) {
		fail(j, -EINVAL); /* a second top-level value */
		return false;
	}
	if (!key != !j->in_object[d]) {
		fail(j, -EINVAL);
		return false;
	}
	if (!j->empty[d])
		put(j, ",", 1);
	j->empty[d] = false;
	if (key) {
		put_string(j, key, strlen(key));
		put(j, ":", 1);
	}
	return !j->err;
}

static void open_container(struct ferryd_json *j, const char *key, bool object)
{
	if (!begin_value(j, key))
		return;
	if (j->depth == FERRYD_JSON_MAX_DEPTH) {
		fail(j, -EINVAL);
		return;
	}
	put(j, object ? "{" : "[", 1);
	j->depth++;
	j->in_object[j->depth] = object;
	j->empty[j->depth] = true;
}

void ferryd_json_object(struct ferryd_json *j, const char *key)
{
	open_container(j, key, true);
}

void ferryd_json_array(struct ferryd_json *j, const char *key)
{
	open_container(j, key, false);
}

void ferryd_json_end(struct ferryd_json *j)
{
	if (j->err)
		return;
	if (!j->depth) {
		fail(j, -EINVAL);
		return;
	}
	put(j, j->in_object[j->depth] ? "}" : "]", 1);
	j->depth--;
}

void ferryd_json_strn(struct ferryd_json *j, const char *key, const char *s, size_t n)
{
	if (!begin_value(j, key))
		return;
	if (s)
		put_string(j, s, n);
	else
		put(j, "null", 4);
}

void ferryd_json_str(struct ferryd_json *j, const char *key, const char *s)
{
	ferryd_json_strn(j, key, s, s ? strlen(s) : 0);
}

void ferryd_json_u64(struct ferryd_json *j, const char *key, uint64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRIu64, v);

	if (begin_value(j, key))
		put(j, num, (size_t)n);
}

void ferryd_json_i64(struct ferryd_json *j, const char *key, int64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRId64, v);

	if (begin_value(j, key))
		put(j, num, (size_t)n);
}

void ferryd_json_bool(struct ferryd_json *j, const char *key, bool v)
{
	if (begin_value(j, key))
		put(j, v ? "true" : "false", v ? 4 : 5);
}

void ferryd_json_null(struct ferryd_json *j, const char *key)
{
	if (begin_value(j, key))
		put(j, "null", 4);
}

int ferryd_json_finish(struct ferryd_json *j, char **out, size_t *len)
{
	int err = j->err;

	if (!err && (j->depth || j->empty[0]))
		err = -EINVAL; /* something left open, or no value at all */
	if (err) {
		ferryd_json_free(j);
		return err;
	}
	*out = j->buf;
	*len = j->len;
	j->buf = NULL;
	ferryd_json_init(j);
	return 0;
}
