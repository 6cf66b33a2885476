/* SPDX-License-Identifier: MIT */
/* The interface lock of owner.h. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "owner.h"

#define CLAIM_TRIES 8

struct ferryd_owner {
	int fd;
	char path[256];
	char ifname[IF_NAMESIZE];
	uint32_t prev_prog; /* the XDP program the holder before us noted (it died holding the lock) */
};

int ferryd_mkdir_p(const char *dir)
{
	char tmp[256];

	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

/* The pid the holder wrote, or 0. */
static long holder_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

int ferryd_owner_claim(const char *rundir, const char *ifname, struct ferryd_owner **out, char *why, size_t whylen)
{
	struct ferryd_owner *o;
	struct stat ns, st, now;
	unsigned int ifindex = if_nametoindex(ifname);
	char line[64];
	int err, len;

	*out = NULL;
	if (!ifindex) {
		snprintf(why, whylen, "%s: no such interface", ifname);
		return -ENODEV;
	}
	/* Interfaces of the same name live in other namespaces: the namespace is part of the name. */
	if (stat("/proc/self/ns/net", &ns)) {
		err = -errno;
		snprintf(why, whylen, "/proc/self/ns/net: %s", strerror(-err));
		return err;
	}
	err = ferryd_mkdir_p(rundir);
	if (err) {
		snprintf(why, whylen, "creating %s: %s", rundir, strerror(-err));
		return err;
	}
	o = calloc(1, sizeof(*o));
	if (!o) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	snprintf(o->path, sizeof(o->path), "%s/iface-%u.netns-%llu.lock", rundir, ifindex,
		 (unsigned long long)ns.st_ino);
	for (int tries = 0; tries < CLAIM_TRIES; tries++) {
		o->fd = open(o->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (o->fd < 0) {
			err = -errno;
			snprintf(why, whylen, "%s: %s", o->path, strerror(-err));
			goto err_free;
		}
		if (flock(o->fd, LOCK_EX | LOCK_NB)) {
			long pid = holder_pid(o->fd);

			err = errno == EWOULDBLOCK ? -EBUSY : -errno;
			if (err == -EBUSY)
				snprintf(why, whylen, "%s is already served by ferryd (pid %ld; lock %s)", ifname, pid,
					 o->path);
			else
				snprintf(why, whylen, "locking %s: %s", o->path, strerror(-err));
			close(o->fd);
			goto err_free;
		}
		/* The holder before us may have removed the file after we opened
		 * it: a lock on a file no longer at the path guards nothing. */
		if (!fstat(o->fd, &st) && !stat(o->path, &now) && st.st_ino == now.st_ino && st.st_dev == now.st_dev)
			break;
		close(o->fd);
		o->fd = -1;
	}
	if (o->fd < 0) {
		snprintf(why, whylen, "%s keeps changing under us", o->path);
		err = -EAGAIN;
		goto err_free;
	}
	/* what a holder that died left: "PID IFNAME\nprog ID\n" */
	{
		char old[128];
		ssize_t n = pread(o->fd, old, sizeof(old) - 1, 0);
		const char *prog;

		if (n > 0) {
			old[n] = '\0';
			prog = strstr(old, "\nprog ");
			if (prog)
				o->prev_prog = (uint32_t)strtoul(prog + 6, NULL, 10);
		}
	}
	snprintf(o->ifname, sizeof(o->ifname), "%s", ifname);
	len = snprintf(line, sizeof(line), "%ld %s\n", (long)getpid(), ifname);
	if (ftruncate(o->fd, 0) || pwrite(o->fd, line, (size_t)len, 0) != len) {
		/* the lock is what counts; the pid is for the message of the next one */
	}
	*out = o;
	return 0;

err_free:
	free(o);
	return err;
}

uint32_t ferryd_owner_prev_prog(const struct ferryd_owner *o)
{
	return o ? o->prev_prog : 0;
}

void ferryd_owner_note_prog(struct ferryd_owner *o, uint32_t prog_id)
{
	char line[96];
	int len;

	if (!o)
		return;
	len = snprintf(line, sizeof(line), "%ld %s\nprog %u\n", (long)getpid(), o->ifname, prog_id);
	if (ftruncate(o->fd, 0) || pwrite(o->fd, line, (size_t)len, 0) != len) {
		/* then a successor that cannot read program names cannot sweep ours: it says so */
	}
}

void ferryd_owner_release(struct ferryd_owner *o)
{
	if (!o)
		return;
	/* Removed while still locked: whoever opens the path next gets a new file. */
	unlink(o->path);
	close(o->fd);
	free(o);
}
