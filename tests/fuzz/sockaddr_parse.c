/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: ferry_sockaddr_parse() on any string (the fuzz data up to its
 * first NUL). What parses formats back (ferry_sockaddr_format) to a string
 * that parses to the same address, port and scope, and formats the same
 * again; formatting into any buffer length follows snprintf's rules.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include <ferry/udp.h>

#include "fuzz.h"

#define MAX_INPUT 256

static void check_same(const union ferry_sockaddr *a, const union ferry_sockaddr *b, const char *text)
{
	FUZZ_CHECK(ferry_sockaddr_equal(a, b), "'%s' parses to another address", text);
	if (a->sa.sa_family == AF_INET6)
		FUZZ_CHECK(a->in6.sin6_scope_id == b->in6.sin6_scope_id, "'%s': scope id %u, was %u", text,
			   b->in6.sin6_scope_id, a->in6.sin6_scope_id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[MAX_INPUT + 1], text[128], again[128], small[128];
	union ferry_sockaddr a, b;
	size_t n = size < MAX_INPUT ? size : MAX_INPUT;
	int len, err;

	memcpy(s, data, n);
	s[n] = '\0';
	err = ferry_sockaddr_parse(s, &a);
	FUZZ_CHECK(err == 0 || err == -EINVAL, "'%s': result %d", s, err);
	if (err)
		return 0;

	FUZZ_CHECK(a.sa.sa_family == AF_INET || a.sa.sa_family == AF_INET6, "'%s': family %u", s, a.sa.sa_family);
	FUZZ_CHECK(ferry_sockaddr_len(&a) == (a.sa.sa_family == AF_INET ? sizeof(a.in4) : sizeof(a.in6)),
		   "'%s': length %u", s, ferry_sockaddr_len(&a));
	FUZZ_CHECK(ferry_sockaddr_equal(&a, &a), "'%s': not equal to itself", s);
	if (a.sa.sa_family == AF_INET6)
		FUZZ_CHECK(!a.in6.sin6_flowinfo, "'%s': flow info set", s);

	len = ferry_sockaddr_format(&a, text, sizeof(text));
	FUZZ_CHECK(len > 0 && (size_t)len < sizeof(text) && strlen(text) == (size_t)len, "'%s' formats to %d bytes",
		   s, len);
	memset(&b, 0x5a, sizeof(b));
	err = ferry_sockaddr_parse(text, &b);
	FUZZ_CHECK(err == 0, "'%s' formats to '%s', which does not parse (%d)", s, text, err);
	check_same(&a, &b, text);
	FUZZ_CHECK(ferry_sockaddr_format(&b, again, sizeof(again)) == len && !strcmp(text, again),
		   "'%s' formats to '%s', then to '%s'", s, text, again);

	/* Shorter buffers: the same return value, a NUL-terminated prefix. */
	for (size_t cap = 0; cap <= (size_t)len; cap++) {
		memset(small, 'x', sizeof(small));
		FUZZ_CHECK(ferry_sockaddr_format(&a, small, cap) == len, "'%s': length into %zu bytes", text, cap);
		if (cap) {
			FUZZ_CHECK(!memcmp(small, text, cap - 1) && small[cap - 1] == '\0',
				   "'%s': not a NUL-terminated prefix in %zu bytes", text, cap);
		}
		FUZZ_CHECK(small[cap] == 'x', "'%s': wrote past %zu bytes", text, cap);
	}
	return 0;
}
