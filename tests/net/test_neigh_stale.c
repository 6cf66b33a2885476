/* SPDX-License-Identifier: MIT */
/*
 * The next-hop resolver (daemon/neigh.c) after a kernel answer came too late,
 * and with messages that are not the kernel's: a late answer (to a question
 * given up on) is ignored by its sequence number rather than taken for the
 * answer to a later question, and a message from another socket is never
 * believed, even when it is addressed to the resolver's port.
 */
#include <dirent.h>
#include <errno.h>
#include <linux/neighbour.h>
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

#include <ferry/reactor.h>

#include "neigh.h"
#include "netns.h"

#define MAX_INODES 256
#define FLOOD 500 /* notifications queued ahead of an answer: more than one read-out takes */

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

/* Looks dst up (submitting and running r between tries) until it resolves or 3 s pass. */
static enum ferryd_neigh_result resolve(struct ferry_reactor *r, struct ferryd_neigh *nb, const union ferry_sockaddr *dst,
					uint64_t *now, uint8_t mac[6])
{
	uint64_t deadline = ferry_test_now_ms() + 3000;
	enum ferryd_neigh_result res;

	while ((res = ferryd_neigh_lookup(nb, dst, *now, mac, NULL)) == FERRYD_NEIGH_MISS &&
	       ferry_test_now_ms() < deadline) {
		ferryd_neigh_submit(nb, *now);
		ferry_reactor_run_once(r, 10);
		*now += 50; /* past any retry time, in a few rounds */
	}
	return res;
}

Test(neigh_stale, late_reply_is_skipped, .timeout = 30)
{
	unsigned long before[MAX_INODES], after[MAX_INODES];
	unsigned int nbefore, nafter, portid = 0, ifindex;
	struct ferry_reactor *r;
	struct ferryd_neigh *nb = NULL;
	struct ferryd_neigh_stats st;
	struct {
		struct nlmsghdr h;
		struct ndmsg ndm;
		struct nlattr dst_a;
		uint8_t dst[4];
		struct nlattr ll_a;
		uint8_t ll[6];
		uint8_t pad[2];
	} forged;
	struct sockaddr_nl to = { .nl_family = AF_NETLINK };
	union ferry_sockaddr a, b;
	uint8_t mac[6] = { 0 };
	static const uint8_t mac_a[6] = { 0x02, 0, 0, 0, 0, 0x02 }, mac_b[6] = { 0x02, 0, 0, 0, 0, 0x03 };
	enum ferryd_neigh_result res;
	uint64_t now;
	FILE *batch;
	int fd;

	if (!ferry_test_is_root())
		cr_skip_test("needs root for a private network namespace");
	/* Criterion runs each test in its own process: the namespace dies with it. */
	cr_assert_eq(unshare(CLONE_NEWNET), 0, "expected a private network namespace: %s", strerror(errno));
	cr_assert_eq(system("ip link add nsa0 type veth peer name nsa1 && ip addr add 198.18.5.1/24 dev nsa0 && "
			    "ip link set nsa0 up && ip link set nsa1 up && "
			    "ip neigh replace 198.18.5.2 lladdr 02:00:00:00:00:02 dev nsa0 nud permanent && "
			    "ip neigh replace 198.18.5.3 lladdr 02:00:00:00:00:03 dev nsa0 nud permanent"),
		     0, "expected a veth with two permanent neighbour entries");
	ifindex = if_nametoindex("nsa0");
	cr_assert_gt(ifindex, 0);
	r = ferry_reactor_new();
	cr_assert_not_null(r);

	nbefore = netlink_inodes(before, MAX_INODES);
	cr_assert_eq(ferryd_neigh_new(r, ifindex, 0, &nb), 0, "expected a resolver");
	nafter = netlink_inodes(after, MAX_INODES);
	for (unsigned int i = 0; i < nafter && !portid; i++) {
		bool old = false;

		for (unsigned int j = 0; j < nbefore && !old; j++)
			old = after[i] == before[j];
		if (!old)
			portid = portid_of(after[i]);
	}
	cr_assert_gt(portid, 0, "expected to find the resolver's netlink port id");

	/* FLOOD neighbour notifications queued on the resolver's socket, unread: the
	 * answer to the next question lands behind them, beyond one read-out. */
	batch = fopen("/tmp/ferry-neigh-stale.batch", "w");
	cr_assert_not_null(batch);
	for (int i = 0; i < FLOOD; i++)
		fprintf(batch, "neigh add 198.18.%d.%d lladdr 02:00:00:00:%02x:%02x dev nsa0 nud permanent\n",
			6 + i / 250, 1 + i % 250, i >> 8, i & 0xff);
	fclose(batch);
	cr_assert_eq(system("ip -batch /tmp/ferry-neigh-stale.batch"), 0, "expected %d neighbour entries added", FLOOD);
	unlink("/tmp/ferry-neigh-stale.batch");

	cr_assert_eq(ferry_sockaddr_parse("198.18.5.2:9", &a), 0);
	cr_assert_eq(ferry_sockaddr_parse("198.18.5.3:9", &b), 0);
	now = ferry_test_now_ms();
	cr_assert_eq(ferryd_neigh_lookup(nb, &a, now, mac, NULL), FERRYD_NEIGH_MISS, "expected a miss at first");
	cr_assert_eq(ferryd_neigh_submit(nb, now), 0, "expected the answer about A still queued behind the notifications");
	/* Two seconds later (as far as the resolver knows) the question about A is given
	 * up on; a question about B goes out, and the late answer about A is read first. */
	now += 2000;
	cr_assert_eq(ferryd_neigh_lookup(nb, &b, now, mac, NULL), FERRYD_NEIGH_MISS);
	res = resolve(r, nb, &b, &now, mac);
	cr_expect_eq(res, FERRYD_NEIGH_OK, "expected B resolved despite the late answer about A, got result %d", res);
	cr_expect_eq(memcmp(mac, mac_b, 6), 0, "expected B's MAC, not one from the late answer");
	ferryd_neigh_get_stats(nb, &st);
	cr_expect_geq(st.timeouts, 1, "expected the question about A given up on");
	cr_expect_geq(st.stale_answers, 1, "expected its late answer ignored (stale answers %llu)",
		      (unsigned long long)st.stale_answers);
	/* and A itself is asked again, and answered right */
	res = resolve(r, nb, &a, &now, mac);
	cr_expect_eq(res, FERRYD_NEIGH_OK, "expected A resolved when asked again, got result %d", res);
	cr_expect_eq(memcmp(mac, mac_a, 6), 0, "expected A's MAC");

	/* A neighbour "notification" from another socket, addressed to the resolver's port:
	 * not the kernel's word, so B keeps its MAC. */
	memset(&forged, 0, sizeof(forged));
	forged.h.nlmsg_len = sizeof(forged) - sizeof(forged.pad);
	forged.h.nlmsg_type = RTM_NEWNEIGH;
	forged.ndm.ndm_family = AF_INET;
	forged.ndm.ndm_ifindex = (int)ifindex;
	forged.ndm.ndm_state = NUD_PERMANENT;
	forged.dst_a.nla_len = sizeof(forged.dst_a) + 4;
	forged.dst_a.nla_type = NDA_DST;
	memcpy(forged.dst, &b.in4.sin_addr, 4);
	forged.ll_a.nla_len = sizeof(forged.ll_a) + 6;
	forged.ll_a.nla_type = NDA_LLADDR;
	memset(forged.ll, 0x66, 6);
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	cr_assert_geq(fd, 0, "expected a netlink socket");
	to.nl_pid = portid;
	cr_assert_eq(sendto(fd, &forged, forged.h.nlmsg_len, 0, (struct sockaddr *)&to, sizeof(to)),
		     (ssize_t)forged.h.nlmsg_len, "expected to queue a forged message on the resolver's socket: %s",
		     strerror(errno));
	close(fd);
	for (int i = 0; i < 20; i++)
		ferry_reactor_run_once(r, 5);
	res = ferryd_neigh_lookup(nb, &b, now, mac, NULL);
	cr_expect_eq(res, FERRYD_NEIGH_OK, "expected B still resolved, got result %d", res);
	cr_expect_eq(memcmp(mac, mac_b, 6), 0, "expected B's MAC, not the forged one");
	ferryd_neigh_get_stats(nb, &st);
	cr_expect_geq(st.foreign, 1, "expected the forged message counted as foreign");

	/* and after forgetting everything, the next answers are right too */
	ferryd_neigh_flush(nb);
	res = resolve(r, nb, &b, &now, mac);
	cr_expect_eq(res, FERRYD_NEIGH_OK, "expected the next lookup resolved too, got result %d", res);
	cr_expect_eq(memcmp(mac, mac_b, 6), 0, "expected B's MAC after a flush");
	ferryd_neigh_free(nb);
	ferry_reactor_free(r);
}
