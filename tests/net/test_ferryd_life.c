/* SPDX-License-Identifier: MIT */
/*
 * ferryd's life on an interface it shares with the world: datagrams that
 * would make it talk to itself, a second ferryd, signals, the interface going
 * down, away or carrying other addresses, a starved fill ring, and multicast
 * services. The real binary in the fixture's host namespace, traffic from
 * the peer namespace.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "ferryd_proc.h"
#include "frame.h"
#include "netns.h"
#include "rawsock.h"
#include "testutil.h"

#define PORT 9000
#define MCAST_PORT 9100
#define READY_TIMEOUT_MS 15000
#define EXIT_TIMEOUT_MS 10000
#define SERVICES "--service", "e4=198.18.0.1:9000", "--service", "e6=[2001:2::1]:9000"

static struct {
	struct ferry_testns ns;
	bool ns_up;
	struct ferry_test_ferryd d, second;
	struct ferry_rawsock raw;
	int fd;
} fx = {.d = FERRY_TEST_FERRYD_INIT, .second = FERRY_TEST_FERRYD_INIT, .raw = FERRY_RAWSOCK_INIT, .fd = -1};

static void teardown(void)
{
	if (fx.fd >= 0)
		close(fx.fd);
	fx.fd = -1;
	ferry_rawsock_close(&fx.raw);
	ferry_test_ferryd_stop(&fx.second);
	ferry_test_ferryd_stop(&fx.d);
	if (fx.ns_up)
		ferry_testns_teardown(&fx.ns);
	fx.ns_up = false;
}

static void env_up(void)
{
	int err;

	if (!ferry_test_is_root())
		cr_skip_test("needs root for network namespaces and XDP");
	err = ferry_testns_setup(&fx.ns);
	cr_assert_eq(err, 0, "expected the namespace fixture to come up, got %s", strerror(-err));
	fx.ns_up = true;
}

static const char *log_of(const struct ferry_test_ferryd *d)
{
	return ferry_test_ferryd_log(d);
}

static void start(struct ferry_test_ferryd *d, const char *tag, const char *const *args)
{
	int r;

	ferry_test_ferryd_spawn(d, &fx.ns, tag, args);
	r = ferry_test_ferryd_wait_ready(d, READY_TIMEOUT_MS);
	cr_assert_eq(r, 0, "expected ferryd to become ready (%s); log:\n%s",
		     r == -ESRCH ? "it exited" : "timed out", log_of(d));
}

/* Waits for d to exit; its wait status. */
static int wait_exit(struct ferry_test_ferryd *d)
{
	if (ferry_test_ferryd_wait_exit(d, EXIT_TIMEOUT_MS))
		cr_assert_fail("expected ferryd to exit within %d ms; log:\n%s", EXIT_TIMEOUT_MS, log_of(d));
	return d->status;
}

static void stop(struct ferry_test_ferryd *d)
{
	int st;

	ferry_test_ferryd_signal(d, SIGTERM);
	st = wait_exit(d);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "expected ferryd to exit 0 on SIGTERM, status 0x%x; log:\n%s",
		  st, log_of(d));
}

static void echo(int family, size_t len)
{
	union ferry_sockaddr dst;

	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER), 0, "expected to enter the peer namespace");
	ferry_testns_addr(FERRY_TESTNS_HOST, family, PORT, &dst);
	ferry_test_expect_echo(&fx.d, &dst, len);
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_ROOT), 0, "expected to leave the peer namespace");
}

/* An echo that went by AF_XDP: the program's redirected counter moves with it. */
static void echo_by_af_xdp(int family)
{
	int64_t before = ferry_test_ferryd_ask(&fx.d, "xdp_redirected");

	echo(family, 18);
	cr_assert_gt(ferry_test_ferryd_ask(&fx.d, "xdp_redirected"), before,
		     "expected the echo to go through AF_XDP; log:\n%s", log_of(&fx.d));
}

struct mode_case {
	char mode[8];
};

static struct mode_case both_modes[] = {{"xdp"}, {"socket"}};

/* ------------------------------------------------------- talking to itself */

ParameterizedTestParameters(ferryd_life, own_address_as_source_is_never_answered)
{
	return cr_make_param_array(struct mode_case, both_modes, sizeof(both_modes) / sizeof(both_modes[0]));
}

/*
 * One frame from the peer whose source is the service's own address and port
 * would, answered, come back to the service and be answered again, forever.
 * Nothing is sent for it: a second later the transmit counters have not moved.
 */
ParameterizedTest(struct mode_case *c, ferryd_life, own_address_as_source_is_never_answered, .fini = teardown,
		  .timeout = 60)
{
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", c->mode, "--handler", "echo", SERVICES,
			      "--service", "w4=0.0.0.0:9001", "--service", "w6=[::]:9001", NULL};
	static const struct {
		int family;
		const char *addr;
		uint16_t port;
	} self[] = {
		{4, FERRY_TESTNS_HOST4, PORT}, {6, FERRY_TESTNS_HOST6, PORT}, {4, FERRY_TESTNS_HOST4, 9001},
		{6, FERRY_TESTNS_HOST6, 9001},
	};
	static uint8_t frame[2048];
	int64_t tx0, tx1;

	env_up();
	start(&fx.d, "self", args);
	cr_assert_eq(ferry_rawsock_open(&fx.raw, &fx.ns, FERRY_TESTNS_PEER, FERRY_TESTNS_PEER_IF), 0,
		     "expected a packet socket on fp0");
	for (size_t i = 0; i < sizeof(self) / sizeof(self[0]); i++) {
		struct ferry_frame_spec s = {.family = self[i].family, .src = self[i].addr, .dst = self[i].addr,
					     .sport = self[i].port, .dport = self[i].port, .payload_len = 18};
		size_t n;

		memcpy(s.dst_mac, fx.ns.host_mac, 6);
		memcpy(s.src_mac, fx.ns.peer_mac, 6);
		n = ferry_frame_build(&s, frame, sizeof(frame));
		cr_assert_gt(n, 0, "expected a frame");
		cr_assert_eq(ferry_rawsock_send(&fx.raw, frame, n), 0, "expected to send the spoofed frame");
	}
	usleep(200 * 1000);
	tx0 = ferry_test_ferryd_ask(&fx.d, "tx_packets");
	usleep(1000 * 1000);
	tx1 = ferry_test_ferryd_ask(&fx.d, "tx_packets");
	cr_assert_eq(tx0, 0, "expected nothing sent for frames from ferryd's own address; log:\n%s", log_of(&fx.d));
	cr_assert_eq(tx1, tx0, "expected the transmit counter still a second later; log:\n%s", log_of(&fx.d));
	if (c->mode[0] == 'x')
		cr_assert_geq(ferry_test_ferryd_ask(&fx.d, "xdp_pass_bad_source"), 4,
			      "expected the program to leave all four to the kernel as martians; log:\n%s",
			      log_of(&fx.d));
	/* what the kernel lets through (IPv6 has no martian check) the guard refuses */
	cr_assert_eq(ferry_test_ferryd_ask(&fx.d, "tx_dropped"), ferry_test_ferryd_ask(&fx.d, "tx_to_self"),
		     "expected whatever was refused to be counted as a reply to itself; log:\n%s", log_of(&fx.d));
	echo(AF_INET, 18);
	echo(AF_INET6, 18);
	stop(&fx.d);
}

/* ------------------------------------------------------------ one owner */

Test(ferryd_life, a_second_ferryd_refuses_and_leaves_the_first_alone, .fini = teardown, .timeout = 90)
{
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", "xdp", "--handler", "echo", SERVICES,
			      NULL};
	const char *sargs[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", "socket", "--handler", "echo",
			       SERVICES, NULL};
	/* the third try names the first's control socket (filled in by its spawn): not to be taken over either */
	const char *cargs[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", "xdp", "--handler", "echo", SERVICES,
			       "--control", fx.d.control, NULL};
	const char *const *tries[] = {args, sargs, cargs};
	struct stat ctl0, ctl1;
	char pid[32];
	int st;

	env_up();
	start(&fx.d, "first", args);
	cr_assert_eq(stat(fx.d.control, &ctl0), 0, "expected the first's control socket at %s", fx.d.control);
	echo_by_af_xdp(AF_INET);
	snprintf(pid, sizeof(pid), "(pid %d;", (int)fx.d.pid);
	for (int i = 0; i < 3; i++) {
		ferry_test_ferryd_spawn(&fx.second, &fx.ns, "second", tries[i]);
		cr_assert_eq(ferry_test_ferryd_wait_ready(&fx.second, READY_TIMEOUT_MS), -ESRCH,
			     "expected the second ferryd (%s) to refuse to start; log:\n%s",
			     i == 0 ? "xdp mode" : i == 1 ? "socket mode" : "the first's control socket",
			     log_of(&fx.second));
		st = fx.second.status;
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "expected exit status 1, got 0x%x; log:\n%s", st,
			  log_of(&fx.second));
		cr_assert(strstr(log_of(&fx.second), "fh0 is already served by ferryd") &&
				  strstr(log_of(&fx.second), pid),
			  "expected the second to name the first %s; log:\n%s", pid, log_of(&fx.second));
		cr_assert_not(strstr(log_of(&fx.second), "removed"), "expected the second to sweep nothing; log:\n%s",
			      log_of(&fx.second));
	}
	cr_assert(ferry_test_xdp_attached(&fx.ns), "expected the first's program still on fh0");
	cr_assert(stat(fx.d.control, &ctl1) == 0 && ctl1.st_ino == ctl0.st_ino,
		  "expected the first's control socket untouched at %s", fx.d.control);
	{
		/* and still the first's: it answers */
		struct sockaddr_un un = {.sun_family = AF_UNIX};
		int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

		snprintf(un.sun_path, sizeof(un.sun_path), "%.*s", (int)sizeof(un.sun_path) - 1, fx.d.control);
		cr_assert_eq(connect(fd, (struct sockaddr *)&un, sizeof(un)), 0,
			     "expected the first ferryd to listen on its control socket still: %s", strerror(errno));
		close(fd);
	}
	echo_by_af_xdp(AF_INET);
	echo_by_af_xdp(AF_INET6);
	stop(&fx.d);
	cr_assert_not(ferry_test_xdp_attached(&fx.ns), "expected nothing attached after the first exits");
	cr_assert_not(strstr(log_of(&fx.d), "warning"), "expected the first to run and detach cleanly; log:\n%s",
		      log_of(&fx.d));
}

/* --------------------------------------------------------------- signals */

Test(ferryd_life, sighup_is_no_reason_to_stop, .fini = teardown, .timeout = 60)
{
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", "xdp", "--handler", "echo", SERVICES,
			      NULL};

	env_up();
	start(&fx.d, "hup", args);
	cr_assert_eq(ferry_test_ferryd_signal(&fx.d, SIGHUP), 0, "expected to send SIGHUP");
	cr_assert_eq(ferry_test_ferryd_signal(&fx.d, SIGHUP), 0, "expected to send SIGHUP twice");
	echo_by_af_xdp(AF_INET);
	echo_by_af_xdp(AF_INET6);
	/* a reload of the same configuration: nothing changes, nothing stops */
	cr_assert(strstr(log_of(&fx.d), "SIGHUP: reloading") &&
			  strstr(log_of(&fx.d), "reload: 0 services added, 0 removed, 0 changed, 2 unchanged"),
		  "expected SIGHUP to reload, changing nothing; log:\n%s", log_of(&fx.d));
	stop(&fx.d);
}

/* Whether pid blocks SIGUSR1: ferryd does from its first line, the test's fork before exec does not. */
static bool blocks_usr1(pid_t pid)
{
	char path[64], line[256];
	bool yes = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "SigBlk:", 7))
			yes = strtoull(line + 7, NULL, 16) & (1ull << (SIGUSR1 - 1));
	fclose(f);
	return yes;
}

/*
 * SIGUSR1 while ferryd starts: read while the engine's start waits for its
 * worker (with one, the event loop runs there), before there is an engine
 * to print. The stats come once ferryd is ready; it used to crash there.
 */
Test(ferryd_life, sigusr1_while_starting_prints_once_ready, .fini = teardown, .timeout = 60)
{
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", "xdp", "--handler", "echo", SERVICES,
			      NULL};
	int r, tries = 0;

	env_up();
	ferry_test_ferryd_spawn(&fx.d, &fx.ns, "usr1", args);
	while (!blocks_usr1(fx.d.pid) && tries++ < 5000)
		usleep(200);
	cr_assert(blocks_usr1(fx.d.pid), "expected ferryd to block its signals at start; log:\n%s", log_of(&fx.d));
	cr_assert_eq(ferry_test_ferryd_signal(&fx.d, SIGUSR1), 0, "expected to send SIGUSR1");
	if (strstr(log_of(&fx.d), "ferryd: ready"))
		cr_log_info("ferryd was ready before SIGUSR1 came: this run did not test the start");
	r = ferry_test_ferryd_wait_ready(&fx.d, READY_TIMEOUT_MS);
	cr_assert_eq(r, 0, "expected ferryd to become ready (%s); log:\n%s", r == -ESRCH ? "it exited" : "timed out",
		     log_of(&fx.d));
	for (tries = 0; ferry_test_stats_value(log_of(&fx.d), "rx_packets") < 0 && tries < 300; tries++)
		usleep(10000);
	cr_assert_geq(ferry_test_stats_value(log_of(&fx.d), "rx_packets"), 0, "expected the stats printed; log:\n%s",
		      log_of(&fx.d));
	echo(AF_INET, 18);
	stop(&fx.d);
}

/* A signal whose default would end the process ends it cleanly instead: program detached, stats printed. */
Test(ferryd_life, other_terminating_signals_detach, .fini = teardown, .timeout = 60)
{
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", "xdp", "--handler", "echo", SERVICES,
			      NULL};
	static const int sigs[] = {SIGUSR2, SIGALRM, SIGQUIT};

	env_up();
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		start(&fx.d, "sig", args);
		cr_assert(ferry_test_xdp_attached(&fx.ns), "expected the program on fh0 (round %zu); log:\n%s", i,
			  log_of(&fx.d));
		ferry_test_ferryd_signal(&fx.d, sigs[i]);
		cr_assert_eq(wait_exit(&fx.d), 0, "expected exit 0 after %s; log:\n%s", strsignal(sigs[i]),
			     log_of(&fx.d));
		cr_assert_not(ferry_test_xdp_attached(&fx.ns), "expected nothing left on fh0 after %s",
			      strsignal(sigs[i]));
	}
}

/* A fault ends ferryd whatever it does; its handler takes the program off the interface first. */
Test(ferryd_life, a_crash_detaches_the_program, .fini = teardown, .timeout = 60)
{
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", "xdp", "--handler", "echo", SERVICES,
			      NULL};
	int st;

	env_up();
	start(&fx.d, "crash", args);
	cr_assert(ferry_test_xdp_attached(&fx.ns), "expected the program on fh0");
	/* SIGILL: a fault no sanitizer takes over, so the handler sees it under any build */
	ferry_test_ferryd_signal(&fx.d, SIGILL);
	st = wait_exit(&fx.d);
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGILL, "expected ferryd to die of SIGILL, status 0x%x", st);
	cr_assert_not(ferry_test_xdp_attached(&fx.ns), "expected the crashing ferryd to have detached its program");
}

/* ------------------------------------------------------------ the interface */

Test(ferryd_life, interface_deleted_ends_ferryd_cleanly, .fini = teardown, .timeout = 60)
{
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", "xdp", "--handler", "echo", SERVICES,
			      NULL};
	char out[512];
	int st;

	env_up();
	start(&fx.d, "gone", args);
	echo(AF_INET, 18);
	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_HOST, "ip link del " FERRY_TESTNS_HOST_IF), 0,
		     "expected to delete fh0");
	st = wait_exit(&fx.d);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 69, "expected exit status 69, got 0x%x; log:\n%s", st,
		  log_of(&fx.d));
	cr_assert(strstr(log_of(&fx.d), "interface fh0 was deleted"), "expected it logged; log:\n%s", log_of(&fx.d));
	cr_assert_neq(ferry_test_stats_value(log_of(&fx.d), "rx_packets"), -1, "expected final stats; log:\n%s",
		      log_of(&fx.d));
	{
		struct stat nst;
		char path[128];

		snprintf(path, sizeof(path), "/run/netns/%s", fx.ns.host);
		cr_assert_eq(stat(path, &nst), 0, "expected the host namespace");
		ferry_test_capture(out, sizeof(out), "ls /run/ferry 2>/dev/null | grep 'netns-%llu.lock' || true",
				   (unsigned long long)nst.st_ino);
		cr_assert_str_eq(out, "", "expected ferryd's lock file removed: %s", out);
	}
}

ParameterizedTestParameters(ferryd_life, service_address_not_on_the_interface)
{
	return cr_make_param_array(struct mode_case, both_modes, sizeof(both_modes) / sizeof(both_modes[0]));
}

ParameterizedTest(struct mode_case *c, ferryd_life, service_address_not_on_the_interface, .fini = teardown,
		  .timeout = 60)
{
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", c->mode, "--handler", "echo",
			      "--service", "ok=198.18.0.1:9000", "--service", "bad=198.18.0.77:9000", NULL};
	int st;

	env_up();
	ferry_test_ferryd_spawn(&fx.d, &fx.ns, "addr", args);
	cr_assert_eq(ferry_test_ferryd_wait_ready(&fx.d, READY_TIMEOUT_MS), -ESRCH,
		     "expected ferryd to refuse a service address fh0 does not have; log:\n%s", log_of(&fx.d));
	st = fx.d.status;
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "expected exit status 1, got 0x%x", st);
	cr_assert(strstr(log_of(&fx.d), "service bad: 198.18.0.77:9000: the address is not on fh0"),
		  "expected the service, the address and the interface named; log:\n%s", log_of(&fx.d));
	cr_assert_not(ferry_test_xdp_attached(&fx.ns), "expected nothing attached");
}

/* Waits (3 s) for the stats to say the link is up: the kernel reports a carrier up to a second late (linkwatch). */
static void wait_link_up(void)
{
	cr_assert_eq(ferry_test_ferryd_wait_value(&fx.d, "link_up", 1, 3000), 1,
		     "expected the stats to say the link is up; log:\n%s", log_of(&fx.d));
}

/* With ferryd stopped: fh0 down and up n times, each time until it has its carrier again (within 3 s). */
static void flap_while_stopped(int n)
{
	cr_assert_eq(ferry_test_ferryd_signal(&fx.d, SIGSTOP), 0, "expected to stop ferryd");
	for (int k = 0; k < n; k++)
		cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_HOST,
					      "ip link set " FERRY_TESTNS_HOST_IF " down && ip link set " FERRY_TESTNS_HOST_IF
					      " up && for i in $(seq 60); do grep -qx up /sys/class/net/" FERRY_TESTNS_HOST_IF
					      "/operstate && exit 0; sleep 0.05; done; exit 1"),
			     0, "expected fh0 down, then up with a carrier within 3 s");
	cr_assert_eq(ferry_test_ferryd_signal(&fx.d, SIGCONT), 0, "expected to continue ferryd");
}

/* Down at start: said, and served as soon as it comes up (IPv4: a link going down drops IPv6 addresses). */
Test(ferryd_life, interface_down_at_start_is_served_once_up, .fini = teardown, .timeout = 60)
{
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", "xdp", "--handler", "echo",
			      "--service", "e4=198.18.0.1:9000", NULL};

	env_up();
	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_HOST, "ip link set " FERRY_TESTNS_HOST_IF " down"), 0,
		     "expected fh0 down");
	start(&fx.d, "down", args);
	cr_assert(strstr(log_of(&fx.d), "fh0 is down: serving once it comes up"), "expected it said; log:\n%s",
		  log_of(&fx.d));
	cr_assert_eq(ferry_test_ferryd_ask(&fx.d, "link_up"), 0, "expected the stats to say the link is down");
	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_HOST, "ip link set " FERRY_TESTNS_HOST_IF " up"), 0,
		     "expected fh0 up");
	echo_by_af_xdp(AF_INET);
	wait_link_up();
	cr_assert(strstr(log_of(&fx.d), "fh0 is up: serving"), "expected it said; log:\n%s", log_of(&fx.d));
	/* down and up again while running: counted, and served again */
	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_HOST,
				      "ip link set " FERRY_TESTNS_HOST_IF " down && sleep 0.2 && "
				      "ip link set " FERRY_TESTNS_HOST_IF " up"),
		     0, "expected fh0 down and up");
	echo_by_af_xdp(AF_INET);
	wait_link_up();
	cr_assert_eq(ferry_test_ferryd_ask(&fx.d, "link_down_events"), 1, "expected one down counted; log:\n%s",
		     log_of(&fx.d));
	/*
	 * Down and up while ferryd is stopped, once and then twice: it reads each
	 * batch at once, and counts every fall all the same (each waits for the
	 * carrier, so that the link ran again between two falls).
	 */
	flap_while_stopped(1);
	cr_assert_eq(ferry_test_ferryd_wait_value(&fx.d, "link_down_events", 2, 3000), 2,
		     "expected the second down counted; log:\n%s", log_of(&fx.d));
	cr_assert(strstr(log_of(&fx.d), "fh0 fell 1 time between two looks"), "expected it said; log:\n%s",
		  log_of(&fx.d));
	flap_while_stopped(2);
	cr_assert_eq(ferry_test_ferryd_wait_value(&fx.d, "link_down_events", 4, 3000), 4,
		     "expected both downs counted; log:\n%s", log_of(&fx.d));
	cr_assert(strstr(log_of(&fx.d), "fh0 fell 2 times between two looks"), "expected it said; log:\n%s",
		  log_of(&fx.d));
	cr_assert_eq(ferry_test_ferryd_ask(&fx.d, "link_up"), 1, "expected the stats to say the link is up");
	echo_by_af_xdp(AF_INET);
	stop(&fx.d);
}

/* ---------------------------------------------------------- hidden drops */

/*
 * A stopped ferryd takes no frame off its rings: the kernel runs out of fill
 * ring frames and drops, which the stats line shows from the kernel's own
 * counters, and ferryd's fill-ring counter sees the ring drained.
 */
Test(ferryd_life, a_starved_fill_ring_shows_in_the_stats, .fini = teardown, .timeout = 60)
{
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", "xdp", "--handler", "count",
			      "--frames", "64", "--batch", "16", "--service", "c4=198.18.0.1:9000", NULL};
	union ferry_sockaddr dst;
	int64_t empty, dropped;

	env_up();
	start(&fx.d, "starve", args);
	cr_assert_eq(ferry_test_ferryd_signal(&fx.d, SIGSTOP), 0, "expected to stop ferryd");
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER), 0, "expected to enter the peer namespace");
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, PORT, &dst);
	fx.fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fx.fd, 0, "expected a socket");
	for (int i = 0; i < 500; i++)
		sendto(fx.fd, "starve", 6, 0, &dst.sa, ferry_sockaddr_len(&dst));
	usleep(100 * 1000);
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_ROOT), 0, "expected to leave the peer namespace");
	cr_assert_eq(ferry_test_ferryd_signal(&fx.d, SIGCONT), 0, "expected to continue ferryd");
	empty = ferry_test_ferryd_ask(&fx.d, "xsk_rx_fill_ring_empty");
	dropped = ferry_test_ferryd_ask(&fx.d, "xsk_rx_dropped");
	cr_log_info("kernel: fill ring empty %" PRId64 ", dropped %" PRId64 "; ferryd: rx %" PRId64, empty, dropped,
		    ferry_test_ferryd_ask(&fx.d, "rx_packets"));
	cr_assert_gt(empty, 0, "expected the kernel's fill-ring drops in the stats; log:\n%s", log_of(&fx.d));
	cr_assert_geq(ferry_test_ferryd_ask(&fx.d, "rx_fill_empty"), 1, "expected ferryd to have seen the fill "
		      "ring drained; log:\n%s", log_of(&fx.d));
	/* every datagram received, or dropped by the kernel and counted (its reason: the empty fill ring) */
	cr_assert_eq(ferry_test_ferryd_ask(&fx.d, "rx_packets") + dropped, 500,
		     "expected what was received and what was dropped to be what was sent; log:\n%s", log_of(&fx.d));
	stop(&fx.d);
}

/* ------------------------------------------------------------- multicast */

struct mcast_case {
	char mode[8];
	int family;
};

static struct mcast_case mcast_cases[] = {
	{"xdp", AF_INET}, {"socket", AF_INET}, {"xdp", AF_INET6}, {"socket", AF_INET6}};

ParameterizedTestParameters(ferryd_life, multicast_service)
{
	return cr_make_param_array(struct mcast_case, mcast_cases, sizeof(mcast_cases) / sizeof(mcast_cases[0]));
}

/* Whether the host namespace's kernel holds a membership of group (as /proc/net/igmp{,6} print it) on fh0. */
static bool member(int family, const char *hex)
{
	char out[8192];

	ferry_test_capture(out, sizeof(out), "ip netns exec %s cat /proc/net/%s", fx.ns.host,
			   family == AF_INET ? "igmp" : "igmp6");
	if (family == AF_INET) {
		/* "<idx>\tfh0 ..." then indented group lines: the group must follow fh0's line */
		const char *dev = strstr(out, "\t" FERRY_TESTNS_HOST_IF);

		return dev && strstr(dev, hex);
	}
	for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n"))
		if (strstr(l, " " FERRY_TESTNS_HOST_IF " ") && strstr(l, hex))
			return true;
	return false;
}

/* A UDP socket in the peer namespace that sends multicast out of fp0. */
static int peer_mcast_socket(int family)
{
	int fd, idx;

	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER), 0, "expected to enter the peer namespace");
	idx = (int)if_nametoindex(FERRY_TESTNS_PEER_IF);
	fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0, "expected a socket");
	if (family == AF_INET) {
		struct ip_mreqn m = {.imr_ifindex = idx};

		cr_assert_eq(setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &m, sizeof(m)), 0, "IP_MULTICAST_IF fp0");
	} else {
		cr_assert_eq(setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof(idx)), 0,
			     "IPV6_MULTICAST_IF fp0");
	}
	return fd;
}

ParameterizedTest(struct mcast_case *c, ferryd_life, multicast_service, .fini = teardown, .timeout = 60)
{
	bool v4 = c->family == AF_INET;
	const char *group = v4 ? "239.1.2.3" : "ff05::1:3", *other = v4 ? "239.1.2.4" : "ff05::1:4";
	const char *hex = v4 ? "030201EF" : "ff050000000000000000000000010003";
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", c->mode, "--handler", "echo",
			      "--service", v4 ? "m=239.1.2.3:9100" : "m=[ff05::1:3]:9100", NULL};
	union ferry_sockaddr g, o, from, unicast;
	socklen_t fl = sizeof(from);
	char buf[64], saw[64];
	struct pollfd p;
	ssize_t n;

	env_up();
	/* the kernel adds fp0's IPv6 multicast route only once its link-local address is through DAD */
	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_PEER, "ip -6 route add ff05::/16 dev " FERRY_TESTNS_PEER_IF),
		     0, "expected a multicast route on the peer");
	start(&fx.d, "mcast", args);
	cr_assert(member(c->family, hex), "expected the host to have joined %s on fh0", group);
	memset(&g, 0, sizeof(g));
	g.sa.sa_family = (sa_family_t)c->family;
	if (v4) {
		inet_pton(AF_INET, group, &g.in4.sin_addr);
		g.in4.sin_port = htons(MCAST_PORT);
	} else {
		inet_pton(AF_INET6, group, &g.in6.sin6_addr);
		g.in6.sin6_port = htons(MCAST_PORT);
	}
	o = g;
	if (v4)
		inet_pton(AF_INET, other, &o.in4.sin_addr);
	else
		inet_pton(AF_INET6, other, &o.in6.sin6_addr);
	fx.fd = peer_mcast_socket(c->family);
	cr_assert_eq(sendto(fx.fd, "to the group", 12, 0, &g.sa, ferry_sockaddr_len(&g)), 12, "expected to send: %s",
		     strerror(errno));
	p = (struct pollfd){.fd = fx.fd, .events = POLLIN};
	cr_assert_eq(poll(&p, 1, 3000), 1, "expected an answer from the group's service; log:\n%s", log_of(&fx.d));
	n = recvfrom(fx.fd, buf, sizeof(buf), 0, &from.sa, &fl);
	cr_assert_eq(n, 12, "expected the 12 bytes back");
	cr_assert_eq(memcmp(buf, "to the group", 12), 0, "expected them byte-exact");
	ferry_testns_addr(FERRY_TESTNS_HOST, c->family, MCAST_PORT, &unicast);
	ferry_sockaddr_format(&from, saw, sizeof(saw));
	cr_assert(ferry_sockaddr_equal(&from, &unicast), "expected the answer from the host's unicast address and the "
		  "service port, got %s", saw);
	/* a group nobody configured is the kernel's: nobody answers */
	cr_assert_eq(sendto(fx.fd, "to another", 10, 0, &o.sa, ferry_sockaddr_len(&o)), 10, "expected to send");
	cr_assert_eq(poll(&p, 1, 500), 0, "expected no answer for %s; log:\n%s", other, log_of(&fx.d));
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_ROOT), 0, "expected to leave the peer namespace");
	if (c->mode[0] == 'x')
		cr_assert_geq(ferry_test_ferryd_ask(&fx.d, "xdp_redirected"), 1,
			      "expected the group's datagram steered to AF_XDP; log:\n%s", log_of(&fx.d));
	stop(&fx.d);
	cr_assert_not(member(c->family, hex), "expected the membership of %s gone after ferryd", group);
}
