/* SPDX-License-Identifier: MIT */
/*
 * The next-hop resolver (daemon/neigh.c) after a kernel answer came too late:
 * that answer, still queued on its netlink socket, is skipped rather than
 * taken for the reply to the next question (which would fail every lookup
 * from then on, each reading the previous one's reply).
 */
#include <dirent.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "neigh.h"
#include "netns.h"

#define MAX_INODES 256

/* Inodes of the netlink sockets this process has open. */
static unsigned int netlink_inodes(unsigned long *out, unsigned int max)
{
	unsigned int n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	cr_assert_not_null(d, "expected /proc/self/fd");
	while ((de = readdir(d)) && n < max) {
		char path[300], link[64];
		ssize_t len;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		len = readlink(path, link, sizeof(link) - 1);
		if (len <= 0)
			continue;
		link[len] = '\0';
		if (sscanf(link, "socket:[%lu]", &out[n]) == 1)
			n++;
	}
	closedir(d);
	return n;
}

/* The portid of the NETLINK_ROUTE socket with this inode, from /proc/net/netlink; 0 if none. */
static unsigned int portid_of(unsigned long inode)
{
	FILE *f = fopen("/proc/net/netlink", "r");
	char line[512];
	unsigned int found = 0;

	cr_assert_not_null(f, "expected /proc/net/netlink");
	while (fgets(line, sizeof(line), f)) {
		unsigned long sk, ino;
		unsigned int proto, pid;
		int n = sscanf(line, "%lx %u %u %*x %*d %*d %*d %*d %*d %lu", &sk, &proto, &pid, &ino);

		if (n == 4 && proto == NETLINK_ROUTE && ino == inode)
			found = pid;
	}
	fclose(f);
	return found;
}

Test(neigh_stale, late_reply_is_skipped, .timeout = 30)
{
	unsigned long before[MAX_INODES], after[MAX_INODES];
	unsigned int nbefore, nafter, portid = 0, ifindex;
	struct ferryd_neigh *nb = NULL;
	struct {
		struct nlmsghdr h;
		struct rtmsg rtm;
	} late;
	struct sockaddr_nl to = { .nl_family = AF_NETLINK };
	union ferry_sockaddr dst;
	uint8_t mac[6] = { 0 };
	static const uint8_t want[6] = { 0x02, 0, 0, 0, 0, 0x02 };
	enum ferryd_neigh_result res;
	int fd;

	if (!ferry_test_is_root())
		cr_skip_test("needs root for a private network namespace");
	/* Criterion runs each test in its own process: the namespace dies with it. */
	cr_assert_eq(unshare(CLONE_NEWNET), 0, "expected a private network namespace: %s", strerror(errno));
	cr_assert_eq(system("ip link add nsa0 type veth peer name nsa1 && ip addr add 198.18.5.1/24 dev nsa0 && "
			    "ip link set nsa0 up && ip link set nsa1 up && "
			    "ip neigh replace 198.18.5.2 lladdr 02:00:00:00:00:02 dev nsa0 nud permanent"),
		     0, "expected a veth with a permanent neighbour entry");
	ifindex = if_nametoindex("nsa0");
	cr_assert_gt(ifindex, 0);

	nbefore = netlink_inodes(before, MAX_INODES);
	cr_assert_eq(ferryd_neigh_new(ifindex, &nb), 0, "expected a resolver");
	nafter = netlink_inodes(after, MAX_INODES);
	for (unsigned int i = 0; i < nafter && !portid; i++) {
		bool old = false;

		for (unsigned int j = 0; j < nbefore && !old; j++)
			old = after[i] == before[j];
		if (!old)
			portid = portid_of(after[i]);
	}
	cr_assert_gt(portid, 0, "expected to find the resolver's netlink port id");

	/* The reply to an earlier question that timed out: an older sequence number, still queued. */
	memset(&late, 0, sizeof(late));
	late.h.nlmsg_len = NLMSG_LENGTH(sizeof(late.rtm));
	late.h.nlmsg_type = RTM_NEWROUTE;
	late.h.nlmsg_seq = 4000000000u;
	late.rtm.rtm_family = AF_INET;
	late.rtm.rtm_type = RTN_UNICAST;
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	cr_assert_geq(fd, 0, "expected a netlink socket");
	to.nl_pid = portid;
	cr_assert_eq(sendto(fd, &late, late.h.nlmsg_len, 0, (struct sockaddr *)&to, sizeof(to)), (ssize_t)late.h.nlmsg_len,
		     "expected to queue a late reply on the resolver's socket: %s", strerror(errno));
	close(fd);

	cr_assert_eq(ferry_sockaddr_parse("198.18.5.2:9", &dst), 0);
	res = ferryd_neigh_lookup(nb, &dst, 1000, mac, NULL);
	cr_expect_eq(res, FERRYD_NEIGH_OK, "expected the next hop resolved despite the late reply, got result %d", res);
	cr_expect_eq(memcmp(mac, want, 6), 0, "expected the permanent entry's MAC");
	/* and the one after: nothing of the late reply is left to confuse it */
	ferryd_neigh_flush(nb);
	res = ferryd_neigh_lookup(nb, &dst, 2000, mac, NULL);
	cr_expect_eq(res, FERRYD_NEIGH_OK, "expected the next lookup resolved too, got result %d", res);
	ferryd_neigh_free(nb);
}
