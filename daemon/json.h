/* SPDX-License-Identifier: MIT */
/*
 * A JSON writer for ferryd's answers on the control socket: objects, arrays,
 * strings, integers, booleans, into one growing buffer. The commas and the
 * escaping are its job, so a caller cannot produce an invalid document: every
 * string is escaped per RFC 8259 (quote, backslash, control characters), and
 * bytes that are not UTF-8 become U+FFFD, since what ferryd reports (user
 * names from the password database, reasons with paths in them) is whatever
 * bytes the system had.
 *
 * Calls take the member's key inside an object and NULL inside an array (or
 * for the top-level value). A misuse (a key where none belongs, or none where
 * one does; an end with nothing open; nesting past FERRYD_JSON_MAX_DEPTH) or
 * an allocation failure is remembered: every later call does nothing and
 * ferryd_json_finish() returns the error. Not thread-safe: one writer, one
 * thread.
 */
#ifndef FERRYD_JSON_H
#define FERRYD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FERRYD_JSON_MAX_DEPTH 32

struct ferryd_json {
	char *buf;
	size_t len, cap;
	int err; /* 0, or the first -errno: -ENOMEM, -EINVAL (misuse) */
	unsigned int depth;
	bool in_object[FERRYD_JSON_MAX_DEPTH + 1]; /* at each depth: an object (else an array, or the top) */
	bool empty[FERRYD_JSON_MAX_DEPTH + 1];	   /* nothing written at that depth yet: no comma due */
};

/* An empty writer (no allocation until the first value). */
void ferryd_json_init(struct ferryd_json *j);
/* Frees the buffer (not needed after ferryd_json_finish() handed it over). */
void ferryd_json_free(struct ferryd_json *j);

/* Opens an object or array as member key (NULL: in an array, or the top). */
void ferryd_json_object(struct ferryd_json *j, const char *key);
void ferryd_json_array(struct ferryd_json *j, const char *key);
/* Closes the innermost open object or array. */
void ferryd_json_end(struct ferryd_json *j);

/* Values; a NULL string is written as null. */
void ferryd_json_str(struct ferryd_json *j, const char *key, const char *s);
void ferryd_json_strn(struct ferryd_json *j, const char *key, const char *s, size_t n);
void ferryd_json_u64(struct ferryd_json *j, const char *key, uint64_t v);
void ferryd_json_i64(struct ferryd_json *j, const char *key, int64_t v);
void ferryd_json_bool(struct ferryd_json *j, const char *key, bool v);
void ferryd_json_null(struct ferryd_json *j, const char *key);

/*
 * The document: 0 with *out (malloc'ed, NUL-terminated, the caller's to
 * free) and *len set, the writer emptied; or the error remembered (-EINVAL
 * too when something is still open, or nothing was written), the writer
 * freed.
 */
int ferryd_json_finish(struct ferryd_json *j, char **out, size_t *len);

#endif
