/* SPDX-License-Identifier: MIT */
/* union ferry_sockaddr helpers: length, text form both ways, equality. */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/udp.h>

socklen_t ferry_sockaddr_len(const union ferry_sockaddr *a)
{
	if (!a)
		return 0;
	switch (a->sa.sa_family) {
	case AF_INET:
		return sizeof(struct sockaddr_in);
	case AF_INET6:
		return sizeof(struct sockaddr_in6);
	default:
		return 0;
	}
}

/* A decimal port 0..65535 making up all of s. */
static int parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > 65535)
			return -EINVAL;
	}
	*port = (uint16_t)v;
	return 0;
}

/* "%eth0" or "%3" after a link-local IPv6 address. */
static int parse_scope(const char *s, uint32_t *scope)
{
	char *end;
	unsigned long v;

	if (!*s)
		return -EINVAL;
	if (*s >= '0' && *s <= '9') {
		errno = 0;
		v = strtoul(s, &end, 10);
		if (*end || errno || v > UINT32_MAX)
			return -EINVAL;
		*scope = (uint32_t)v;
		return 0;
	}
	*scope = if_nametoindex(s);
	return *scope ? 0 : -EINVAL;
}

int ferry_sockaddr_parse(const char *s, union ferry_sockaddr *out)
{
	union ferry_sockaddr a;
	char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	const char *colon, *port;
	size_t hlen;
	uint16_t p;

	if (!s || !out)
		return -EINVAL;
	memset(&a, 0, sizeof(a));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		char *pct;

		if (!close || close[1] != ':')
			return -EINVAL;
		hlen = (size_t)(close - s - 1);
		if (hlen == 0 || hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		port = close + 2;
		pct = strchr(host, '%');
		if (pct) {
			*pct = '\0';
			if (parse_scope(pct + 1, &a.in6.sin6_scope_id))
				return -EINVAL;
		}
		if (inet_pton(AF_INET6, host, &a.in6.sin6_addr) != 1 || parse_port(port, &p))
			return -EINVAL;
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_port = htons(p);
	} else {
		colon = strrchr(s, ':');
		if (!colon || strchr(s, ':') != colon)
			return -EINVAL; /* an IPv6 address needs its brackets */
		hlen = (size_t)(colon - s);
		if (hlen == 0 || hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, hlen);
		host[hlen] = '\0';
		if (parse_port(colon + 1, &p))
			return -EINVAL;
		if (strcmp(host, "*") == 0)
			a.in4.sin_addr.s_addr = htonl(INADDR_ANY);
		else if (inet_pton(AF_INET, host, &a.in4.sin_addr) != 1)
			return -EINVAL;
		a.in4.sin_family = AF_INET;
		a.in4.sin_port = htons(p);
	}
	*out = a;
	return 0;
}

int ferry_sockaddr_format(const union ferry_sockaddr *a, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (!a)
		return snprintf(buf, len, "(null)");
	switch (a->sa.sa_family) {
	case AF_INET:
		inet_ntop(AF_INET, &a->in4.sin_addr, host, sizeof(host));
		return snprintf(buf, len, "%s:%u", host, ntohs(a->in4.sin_port));
	case AF_INET6:
		inet_ntop(AF_INET6, &a->in6.sin6_addr, host, sizeof(host));
		if (a->in6.sin6_scope_id)
			return snprintf(buf, len, "[%s%%%u]:%u", host, a->in6.sin6_scope_id,
					ntohs(a->in6.sin6_port));
		return snprintf(buf, len, "[%s]:%u", host, ntohs(a->in6.sin6_port));
	default:
		return snprintf(buf, len, "(family %u)", (unsigned int)a->sa.sa_family);
	}
}

bool ferry_sockaddr_equal(const union ferry_sockaddr *a, const union ferry_sockaddr *b)
{
	if (!a || !b || a->sa.sa_family != b->sa.sa_family)
		return false;
	switch (a->sa.sa_family) {
	case AF_INET:
		return a->in4.sin_port == b->in4.sin_port && a->in4.sin_addr.s_addr == b->in4.sin_addr.s_addr;
	case AF_INET6:
		return a->in6.sin6_port == b->in6.sin6_port &&
		       memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof(a->in6.sin6_addr)) == 0;
	default:
		return false;
	}
}

uint32_t ferry_sockaddr_hash(const union ferry_sockaddr *a)
{
	uint32_t h;

	if (a->sa.sa_family == AF_INET) {
		h = a->in4.sin_addr.s_addr ^ ((uint32_t)a->in4.sin_port << 16);
	} else if (a->sa.sa_family == AF_INET6) {
		uint32_t x[4];

		memcpy(x, &a->in6.sin6_addr, sizeof(x));
		h = x[0] ^ x[1] ^ x[2] ^ (x[3] * 0x9e3779b1u) ^ a->in6.sin6_port;
	} else {
		return 0;
	}
	/* murmur3's finaliser: every input bit moves every output bit */
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}
