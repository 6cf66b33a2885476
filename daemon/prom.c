/* SPDX-License-Identifier: MIT */
/* The Prometheus text exposition format (prom.h). */
#include <inttypes.h>
#include <string.h>

#include "prom.h"

static size_t escape(char *out, size_t len, const char *in, bool label)
{
	size_t n = 0;

	for (; *in; in++) {
		const char *rep = NULL;
		char one[2] = { *in, '\0' };

		if (*in == '\\')
			rep = "\\\\";
		else if (*in == '\n')
			rep = "\\n";
		else if (*in == '"' && label)
			rep = "\\\"";
		for (const char *r = rep ? rep : one; *r; r++, n++)
			if (n + 1 < len)
				out[n] = *r;
	}
	if (len)
		out[n < len ? n : len - 1] = '\0';
	return n;
}

size_t ferryctl_prom_escape_label(char *out, size_t len, const char *in)
{
	return escape(out, len, in, true);
}

size_t ferryctl_prom_escape_help(char *out, size_t len, const char *in)
{
	return escape(out, len, in, false);
}

bool ferryctl_prom_name_ok(const char *name, bool label)
{
	if (!name || !*name || (*name >= '0' && *name <= '9'))
		return false;
	for (const char *p = name; *p; p++) {
		bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
			  *p == '_' || (*p == ':' && !label);

		if (!ok)
			return false;
	}
	return true;
}

/* The text escaped, straight to out (no length bound: label values are what ferryd reports). */
static void put_escaped(FILE *out, const char *s, bool label)
{
	char buf[256];
	size_t n = escape(buf, sizeof(buf), s, label);

	if (n < sizeof(buf)) {
		fputs(buf, out);
		return;
	}
	for (; *s; s++) {
		char one[2] = { *s, '\0' };

		escape(buf, sizeof(buf), one, label);
		fputs(buf, out);
	}
}

bool ferryctl_prom_family(FILE *out, const char *name, const char *type, const char *help)
{
	if (!ferryctl_prom_name_ok(name, false))
		return false;
	fprintf(out, "# HELP %s ", name);
	put_escaped(out, help, false);
	fprintf(out, "\n# TYPE %s %s\n", name, type);
	return true;
}

static bool labels_out(FILE *out, const char *name, const char *const *labels, unsigned int nlabels)
{
	bool first = true;

	if (!ferryctl_prom_name_ok(name, false))
		return false;
	for (unsigned int i = 0; i < nlabels; i++)
		if (labels[2 * i + 1] && !ferryctl_prom_name_ok(labels[2 * i], true))
			return false;
	fputs(name, out);
	for (unsigned int i = 0; i < nlabels; i++) {
		if (!labels[2 * i + 1])
			continue;
		fprintf(out, "%s%s=\"", first ? "{" : ",", labels[2 * i]);
		put_escaped(out, labels[2 * i + 1], true);
		fputc('"', out);
		first = false;
	}
	if (!first)
		fputc('}', out);
	return true;
}

bool ferryctl_prom_sample(FILE *out, const char *name, const char *const *labels, unsigned int nlabels,
			  uint64_t value)
{
	if (!labels_out(out, name, labels, nlabels))
		return false;
	fprintf(out, " %" PRIu64 "\n", value);
	return true;
}

bool ferryctl_prom_sample_f(FILE *out, const char *name, const char *const *labels, unsigned int nlabels,
			    double value)
{
	if (!labels_out(out, name, labels, nlabels))
		return false;
	fprintf(out, " %.3f\n", value);
	return true;
}
