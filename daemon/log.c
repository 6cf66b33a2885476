/* SPDX-License-Identifier: MIT */
/* ferryd's log: one line per message on stderr, "ferryd: <level>: ...", filtered by a global verbosity. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <syslog.h>

#include "ferryd.h"
#include "log.h"

/* Messages above this syslog(3) level are dropped; -v raises it. */
int ferryd_log_level = LOG_INFO;

/* stderr is the journal's stream: lines carry sd-daemon(3) "<N>" priorities instead of our prefix. */
static bool journal;

void ferryd_log_init(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	/* systemd sets JOURNAL_STREAM to the device:inode of the stream it connected stderr to */
	journal = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && !fstat(2, &st) &&
		  (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static const char *const level_names[] = {
	[LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",   [LOG_ERR] = "error",
	[LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void ferryd_log(int level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int saved = errno; /* callers often log right before they return -errno */
	int n;

	if (level < LOG_EMERG)
		level = LOG_EMERG;
	if (level > LOG_DEBUG)
		level = LOG_DEBUG;
	if (level > ferryd_log_level)
		goto out;
	/* Format the whole line first and write it at once, so lines of
	 * concurrent writers (or of a parent and a child) never interleave. */
	if (journal)
		n = snprintf(line, sizeof(line), "<%d>", level); /* the journal keeps the unit and the priority */
	else
		n = snprintf(line, sizeof(line), "ferryd: %s: ", level_names[level]);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = (int)strlen(line);
	while (n > 0 && line[n - 1] == '\n')
		n--;
	line[n++] = '\n';
	fwrite(line, 1, (size_t)n, stderr);
	fflush(stderr);
out:
	errno = saved;
}
