/* SPDX-License-Identifier: MIT */
/* ferryd: parse the command line, pick an engine (AF_XDP or sockets), run the handlers until SIGTERM. */
#include <errno.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <syslog.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "config.h"
#include "ferryd.h"
#include "handlers.h"
#include "log.h"
#include "prog.h"

#define EXIT_USAGE 2
#define EXIT_FRAMES 3

struct ferryd {
	struct ferryd_config cfg;
	struct ferry_reactor *r;
	struct ferryd_engine *engine;
	struct ferryd_handler_ctx handler;
	int sigfd;
	bool quit;
	int quit_signal;
};

/* The XDP program's per-reason counters, " xdp_<name>=<n>" each, in xdp mode only. */
static void print_xdp_counters(struct ferryd_engine *e)
{
	uint64_t c[FERRY_XDP_NCOUNTERS];

	if (!e->ops->xdp_counters || e->ops->xdp_counters(e, c))
		return;
	for (unsigned int i = 0; i < FERRY_XDP_NCOUNTERS; i++)
		printf(" xdp_%s=%llu", ferryd_xdp_counter_name(i), (unsigned long long)c[i]);
}

/* One line, every counter: `stats key=value ...`, then the XDP program's counters in xdp mode. */
static void print_stats(struct ferryd *d, const char *what)
{
	struct ferryd_stats s;

	memset(&s, 0, sizeof(s));
	d->engine->ops->get_stats(d->engine, &s);
	printf("%s mode=%s", what, d->engine->ops->name);
	for (unsigned int i = 0; i < ferryd_stat_nfields; i++)
		printf(" %s=%llu", ferryd_stat_fields[i].name, (unsigned long long)ferryd_stat_get(&s, i));
	printf(" handler_datagrams=%llu handler_bytes=%llu", (unsigned long long)d->handler.datagrams,
	       (unsigned long long)d->handler.bytes);
	print_xdp_counters(d->engine);
	printf("\n");
	fflush(stdout);
}

static void on_signal(void *user, uint32_t events)
{
	struct ferryd *d = user;
	struct signalfd_siginfo si;

	while (read(d->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGUSR1:
			print_stats(d, "stats");
			break;
		case SIGTERM:
		case SIGINT:
			d->quit = true;
			d->quit_signal = (int)si.ssi_signo;
			break;
		default:
			break;
		}
	}
}

static void log_config(const struct ferryd_config *cfg)
{
	ferryd_log(LOG_INFO, "mode %s, interface %s, %u queue%s, handler %s, frames %u x %u bytes, batch %u%s",
		   ferryd_mode_name(cfg->mode), cfg->ifname[0] ? cfg->ifname : "(any)", cfg->queues,
		   cfg->queues == 1 ? "" : "s", ferryd_handler_name(cfg->handler), cfg->frames, cfg->frame_size,
		   cfg->batch, cfg->busy_poll ? ", busy poll" : "");
	for (unsigned int i = 0; i < cfg->nservices; i++) {
		char addr[64];

		ferry_sockaddr_format(&cfg->services[i].addr, addr, sizeof(addr));
		ferryd_log(LOG_INFO, "service %s: %s", cfg->services[i].name, addr);
	}
}

/* The AF_XDP engine, after cleaning up what a killed instance left on the interface. */
static int start_xdp(struct ferryd *d, char *why, size_t whylen)
{
	struct ferryd_config *cfg = &d->cfg;
	int err, n;

	if (!cfg->ifname[0]) {
		snprintf(why, whylen, "no --interface given");
		return -EINVAL;
	}
	err = ferryd_bpffs_ensure();
	if (err) {
		snprintf(why, whylen, "cannot mount bpffs at /sys/fs/bpf: %s", strerror(-err));
		return err;
	}
	n = ferryd_prog_sweep(cfg->ifname);
	if (n > 0)
		ferryd_log(LOG_NOTICE, "removed %d XDP program%s a previous ferryd left on %s", n, n == 1 ? "" : "s",
			   cfg->ifname);
	else if (n < 0)
		ferryd_log(LOG_WARNING, "could not check %s for a previous ferryd's XDP program: %s", cfg->ifname,
			   strerror(-n));
	return ferryd_xdp_engine_new(d->r, cfg, cfg->services, cfg->nservices, &d->engine, why, whylen);
}

static int start_engine(struct ferryd *d)
{
	struct ferryd_config *cfg = &d->cfg;
	char why[256] = "";
	int err;

	if (cfg->mode != FERRYD_MODE_SOCKET) {
		err = start_xdp(d, why, sizeof(why));
		if (!err)
			return 0;
		if (cfg->mode == FERRYD_MODE_XDP) {
			ferryd_log(LOG_ERR, "cannot start the AF_XDP engine: %s", why[0] ? why : strerror(-err));
			return err;
		}
		ferryd_log(LOG_WARNING, "AF_XDP engine unavailable (%s); falling back to sockets",
			   why[0] ? why : strerror(-err));
	}
	why[0] = '\0';
	err = ferryd_sock_engine_new(d->r, cfg, cfg->services, cfg->nservices, &d->engine, why, sizeof(why));
	if (err)
		ferryd_log(LOG_ERR, "cannot start the socket engine: %s", why[0] ? why : strerror(-err));
	return err;
}

static void signal_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGUSR1);
}

/* The signals are blocked from the start (a SIGUSR1 before we are ready must
 * not kill us) and taken from a signalfd on the reactor. */
static int setup_signals(struct ferryd *d)
{
	sigset_t set;
	int err;

	signal_set(&set);
	d->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->sigfd < 0) {
		ferryd_log(LOG_ERR, "signalfd: %s", strerror(errno));
		return -errno;
	}
	err = ferry_reactor_add(d->r, d->sigfd, EPOLLIN, on_signal, d, NULL);
	if (err) {
		ferryd_log(LOG_ERR, "cannot watch signals: %s", strerror(-err));
		return err;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct ferryd d; /* large (the config holds every service): not on the stack */
	struct ferryd_cmdline cl;
	char err_msg[256];
	int err, status = EXIT_FAILURE;
	sigset_t set;

	d.sigfd = -1;
	signal(SIGPIPE, SIG_IGN);
	signal_set(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (ferryd_config_parse(&d.cfg, &cl, argc, argv, err_msg, sizeof(err_msg))) {
		fprintf(stderr, "ferryd: %s\nTry 'ferryd --help'.\n", err_msg);
		return EXIT_USAGE;
	}
	if (cl.help) {
		ferryd_config_usage(stdout);
		return EXIT_SUCCESS;
	}
	if (cl.verbose)
		ferryd_log_level = LOG_DEBUG;
	if (d.cfg.ifname[0] && !if_nametoindex(d.cfg.ifname)) {
		fprintf(stderr, "ferryd: --interface: '%s': %s\nTry 'ferryd --help'.\n", d.cfg.ifname,
			errno == ENODEV ? "no such interface" : strerror(errno));
		return EXIT_USAGE;
	}
	log_config(&d.cfg);

	d.r = ferry_reactor_new();
	if (!d.r) {
		ferryd_log(LOG_ERR, "cannot create the reactor: %s", strerror(errno));
		return EXIT_FAILURE;
	}
	if (setup_signals(&d))
		goto out_reactor;
	/* Handlers first: an engine may deliver as soon as it exists. */
	ferryd_handlers_install(&d.handler, d.cfg.handler, d.cfg.services, d.cfg.nservices);
	if (start_engine(&d))
		goto out_reactor;
	d.handler.engine = d.engine;
	ferryd_log(LOG_INFO, "%s", d.engine->describe);
	fprintf(stderr, "ferryd: ready\n");
	fflush(stderr);
	sd_notify(0, "READY=1");

	while (!d.quit) {
		err = ferry_reactor_run_once(d.r, -1);
		if (err < 0) {
			ferryd_log(LOG_ERR, "event loop failed: %s", strerror(-err));
			break;
		}
	}
	sd_notify(0, "STOPPING=1");
	if (d.quit)
		ferryd_log(LOG_INFO, "%s: draining", strsignal(d.quit_signal));
	d.engine->ops->drain(d.engine);
	print_stats(&d, "stats");
	status = d.quit ? EXIT_SUCCESS : EXIT_FAILURE;
	if (ferryd_engine_check_frames(d.engine)) {
		ferryd_log(LOG_ERR, "frame accounting unbalanced after drain: some UMEM frame is lost or counted twice");
		status = EXIT_FRAMES;
	}
	d.handler.engine = NULL;
	d.engine->ops->free(d.engine);
	ferryd_log(LOG_INFO, "exiting");
out_reactor:
	ferry_reactor_free(d.r);
	if (d.sigfd >= 0)
		close(d.sigfd);
	return status;
}
