/* SPDX-License-Identifier: MIT */
/* What the daemon's engines share (daemon/engine.c): address canonicalisation and the clock. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

#include "ferryd.h"

static void canon(const char *in, union ferry_sockaddr *out)
{
	union ferry_sockaddr a;

	cr_assert_eq(ferry_sockaddr_parse(in, &a), 0, "parse %s", in);
	ferryd_sockaddr_canon(&a, out);
}

static void expect_canon(const char *in, const char *want)
{
	union ferry_sockaddr got, w;
	char b[64];

	canon(in, &got);
	cr_assert_eq(ferry_sockaddr_parse(want, &w), 0, "parse %s", want);
	ferry_sockaddr_format(&got, b, sizeof(b));
	cr_expect(ferry_sockaddr_equal(&got, &w), "expected %s to become %s, got %s", in, want, b);
}

Test(daemon_common, ipv4_mapped_becomes_ipv4)
{
	expect_canon("[::ffff:198.18.0.1]:7000", "198.18.0.1:7000");
	expect_canon("[::ffff:0.0.0.0]:7001", "0.0.0.0:7001");
}

Test(daemon_common, other_addresses_stay)
{
	expect_canon("198.18.0.1:7000", "198.18.0.1:7000");
	expect_canon("[2001:2::1]:7000", "[2001:2::1]:7000");
	expect_canon("[::]:7000", "[::]:7000");
	/* IPv4-compatible (::a.b.c.d, deprecated) is not mapped: it stays IPv6 */
	expect_canon("[::198.18.0.1]:7000", "[::c612:1]:7000");
}

Test(daemon_common, canon_in_place)
{
	union ferry_sockaddr a, w;

	cr_assert_eq(ferry_sockaddr_parse("[::ffff:198.18.0.9]:9", &a), 0);
	ferryd_sockaddr_canon(&a, &a);
	cr_assert_eq(ferry_sockaddr_parse("198.18.0.9:9", &w), 0);
	cr_expect(ferry_sockaddr_equal(&a, &w), "expected the same result when in and out are one address");
}

Test(daemon_common, clock_is_monotonic_milliseconds)
{
	uint64_t a = ferryd_now_ms(), b;

	usleep(20 * 1000);
	b = ferryd_now_ms();
	cr_expect_geq(b - a, 19, "expected at least ~20 ms to pass, got %llu", (unsigned long long)(b - a));
	cr_expect_lt(b - a, 5000, "expected milliseconds, got %llu", (unsigned long long)(b - a));
}
