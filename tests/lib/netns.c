/* SPDX-License-Identifier: MIT */
/* The namespace fixture of tests/lib/netns.h, built on iproute2's `ip`. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "netns.h"

#define PREFIX "ferryt-"

bool ferry_test_is_root(void)
{
	return geteuid() == 0;
}

uint64_t ferry_test_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st < 0)
		return -errno;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int ferry_testns_sweep(void)
{
	DIR *d = opendir("/run/netns");
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		long pid;
		char *end;

		if (strncmp(e->d_name, PREFIX, strlen(PREFIX)))
			continue;
		pid = strtol(e->d_name + strlen(PREFIX), &end, 10);
		if (end == e->d_name + strlen(PREFIX) || *end != '-')
			continue;
		if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM))
			continue; /* its run is alive */
		if (sh("ip netns del %s 2>/dev/null", e->d_name) == 0)
			n++;
	}
	closedir(d);
	return n;
}

static int read_mac(const char *ns, const char *ifname, uint8_t mac[6])
{
	char cmd[256], line[64];
	unsigned int m[6];
	FILE *f;
	int ok = 0;

	snprintf(cmd, sizeof(cmd), "ip netns exec %s cat /sys/class/net/%s/address", ns, ifname);
	f = popen(cmd, "r");
	if (!f)
		return -errno;
	if (fgets(line, sizeof(line), f) &&
	    sscanf(line, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) == 6) {
		for (int i = 0; i < 6; i++)
			mac[i] = (uint8_t)m[i];
		ok = 1;
	}
	pclose(f);
	return ok ? 0 : -EIO;
}

static int open_ns(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "/run/netns/%s", name);
	return open(path, O_RDONLY | O_CLOEXEC);
}

int ferry_testns_setup(struct ferry_testns *ns)
{
	return ferry_testns_setup_queues(ns, 1);
}

int ferry_testns_setup_queues(struct ferry_testns *ns, unsigned int nq)
{
	static unsigned int seq;
	char hm[32], pm[32];
	int err = -EIO;

	memset(ns, 0, sizeof(*ns));
	ns->root_fd = ns->host_fd = ns->peer_fd = -1;
	if (!ferry_test_is_root())
		return -EPERM;
	ferry_testns_sweep();
	ns->root_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ns->root_fd < 0)
		return -errno;
	snprintf(ns->host, sizeof(ns->host), PREFIX "%d-%u-host", (int)getpid(), seq);
	snprintf(ns->peer, sizeof(ns->peer), PREFIX "%d-%u-peer", (int)getpid(), seq);
	seq++;
	ns->up = true; /* from here on teardown has something to remove */
	if (sh("ip netns add %s && ip netns add %s", ns->host, ns->peer))
		goto fail;
	if (sh("ip -n %s link add " FERRY_TESTNS_HOST_IF " numtxqueues %u numrxqueues %u type veth peer name "
	       FERRY_TESTNS_PEER_IF " numtxqueues %u numrxqueues %u netns %s",
	       ns->host, nq, nq, nq, nq, ns->peer))
		goto fail;
	if (sh("ip -n %1$s link set lo up && ip -n %2$s link set lo up && "
	       "ip -n %1$s addr add " FERRY_TESTNS_HOST4 "/24 dev " FERRY_TESTNS_HOST_IF " && "
	       "ip -n %2$s addr add " FERRY_TESTNS_PEER4 "/24 dev " FERRY_TESTNS_PEER_IF " && "
	       "ip -n %1$s addr add " FERRY_TESTNS_HOST6 "/64 dev " FERRY_TESTNS_HOST_IF " nodad && "
	       "ip -n %2$s addr add " FERRY_TESTNS_PEER6 "/64 dev " FERRY_TESTNS_PEER_IF " nodad && "
	       "ip -n %1$s link set " FERRY_TESTNS_HOST_IF " up && ip -n %2$s link set " FERRY_TESTNS_PEER_IF " up",
	       ns->host, ns->peer))
		goto fail;
	/* The peer's stack then finishes its UDP checksums itself, as a NIC
	 * delivers them; with the offload on, veth hands over unfinished sums,
	 * which ferryd's XDP program leaves to the kernel to judge. */
	if (sh("ip netns exec %s ethtool -K " FERRY_TESTNS_PEER_IF " tx off >/dev/null", ns->peer))
		goto fail;
	if (read_mac(ns->host, FERRY_TESTNS_HOST_IF, ns->host_mac) || read_mac(ns->peer, FERRY_TESTNS_PEER_IF, ns->peer_mac))
		goto fail;
	snprintf(hm, sizeof(hm), "%02x:%02x:%02x:%02x:%02x:%02x", ns->host_mac[0], ns->host_mac[1], ns->host_mac[2],
		 ns->host_mac[3], ns->host_mac[4], ns->host_mac[5]);
	snprintf(pm, sizeof(pm), "%02x:%02x:%02x:%02x:%02x:%02x", ns->peer_mac[0], ns->peer_mac[1], ns->peer_mac[2],
		 ns->peer_mac[3], ns->peer_mac[4], ns->peer_mac[5]);
	if (sh("ip -n %1$s neigh replace " FERRY_TESTNS_PEER4 " lladdr %3$s dev " FERRY_TESTNS_HOST_IF " nud permanent && "
	       "ip -n %1$s neigh replace " FERRY_TESTNS_PEER6 " lladdr %3$s dev " FERRY_TESTNS_HOST_IF " nud permanent && "
	       "ip -n %2$s neigh replace " FERRY_TESTNS_HOST4 " lladdr %4$s dev " FERRY_TESTNS_PEER_IF " nud permanent && "
	       "ip -n %2$s neigh replace " FERRY_TESTNS_HOST6 " lladdr %4$s dev " FERRY_TESTNS_PEER_IF " nud permanent",
	       ns->host, ns->peer, pm, hm))
		goto fail;
	ns->host_fd = open_ns(ns->host);
	ns->peer_fd = open_ns(ns->peer);
	if (ns->host_fd < 0 || ns->peer_fd < 0) {
		err = -errno;
		goto fail;
	}
	return 0;
fail:
	ferry_testns_teardown(ns);
	return err;
}

void ferry_testns_teardown(struct ferry_testns *ns)
{
	if (ns->root_fd >= 0) {
		setns(ns->root_fd, CLONE_NEWNET);
		close(ns->root_fd);
	}
	if (ns->host_fd >= 0)
		close(ns->host_fd);
	if (ns->peer_fd >= 0)
		close(ns->peer_fd);
	ns->root_fd = ns->host_fd = ns->peer_fd = -1;
	if (ns->up) {
		/* deleting one namespace deletes the veth pair with it */
		sh("ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null", ns->host, ns->peer);
		ns->up = false;
	}
}

int ferry_testns_enter(const struct ferry_testns *ns, enum ferry_testns_side side)
{
	int fd = side == FERRY_TESTNS_HOST ? ns->host_fd : side == FERRY_TESTNS_PEER ? ns->peer_fd : ns->root_fd;

	if (fd < 0)
		return -EBADF;
	return setns(fd, CLONE_NEWNET) ? -errno : 0;
}

int ferry_testns_run(const struct ferry_testns *ns, enum ferry_testns_side side, const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (side == FERRY_TESTNS_ROOT)
		return sh("%s", cmd);
	return sh("ip netns exec %s sh -c '%s'", side == FERRY_TESTNS_HOST ? ns->host : ns->peer, cmd);
}

void ferry_testns_addr(enum ferry_testns_side side, int family, uint16_t port, union ferry_sockaddr *out)
{
	memset(out, 0, sizeof(*out));
	if (family == AF_INET6) {
		out->in6.sin6_family = AF_INET6;
		out->in6.sin6_port = htons(port);
		inet_pton(AF_INET6, side == FERRY_TESTNS_PEER ? FERRY_TESTNS_PEER6 : FERRY_TESTNS_HOST6,
			  &out->in6.sin6_addr);
	} else {
		out->in4.sin_family = AF_INET;
		out->in4.sin_port = htons(port);
		inet_pton(AF_INET, side == FERRY_TESTNS_PEER ? FERRY_TESTNS_PEER4 : FERRY_TESTNS_HOST4,
			  &out->in4.sin_addr);
	}
}
