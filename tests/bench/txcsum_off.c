/* SPDX-License-Identifier: MIT */
/*
 * txcsum_off: turns TX checksum offload off on an interface (what
 * `ethtool -K IF tx off` does, through the legacy ETHTOOL_STXCSUM ioctl), so
 * the stack finishes every UDP checksum before the frame leaves: datagrams
 * from the peer's stack then arrive with full checksums, as from a NIC,
 * rather than veth's unfinished partial sums. Prints the state after.
 *
 *   txcsum_off IF
 */
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

#define PROG "txcsum_off"

static int ethtool_value(int fd, const char *ifname, __u32 cmd, __u32 *data)
{
	struct ethtool_value ev = { .cmd = cmd, .data = *data };
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = (char *)&ev;
	if (ioctl(fd, SIOCETHTOOL, &ifr))
		return -errno;
	*data = ev.data;
	return 0;
}

int main(int argc, char **argv)
{
	__u32 off = 0, now = 1;
	int fd, err;

	if (argc != 2) {
		fprintf(stderr, "usage: " PROG " IF\n");
		return 2;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		bench_die(PROG, "socket: %s", strerror(errno));
	err = ethtool_value(fd, argv[1], ETHTOOL_STXCSUM, &off);
	if (!err)
		err = ethtool_value(fd, argv[1], ETHTOOL_GTXCSUM, &now);
	close(fd);
	if (err)
		bench_die(PROG, "%s: %s", argv[1], strerror(-err));
	if (now)
		bench_die(PROG, "%s: TX checksum offload still on", argv[1]);
	printf("{\"prog\":\"" PROG "\",\"interface\":\"%s\",\"tx_checksum\":\"off\"}\n", argv[1]);
	return 0;
}
