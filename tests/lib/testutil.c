/* SPDX-License-Identifier: MIT */
/* Small helpers any test file may use (testutil.h). */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

#include "testutil.h"

uint16_t ferry_test_sum16(uint32_t sum, const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)b[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

int ferry_test_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own fd */
}

void ferry_test_reap_child(pid_t *child)
{
	if (*child > 0) {
		kill(*child, SIGKILL);
		while (waitpid(*child, NULL, 0) < 0 && errno == EINTR)
			;
	}
	*child = -1;
}
