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
#include "control.h"
#include "daemon.h"
#include "dataplane.h"
#include "ferryd.h"
#include "handlers.h"
#include "iface.h"
#include "log.h"
#include "owner.h"
#include "prog.h"
#include "session.h"

#define EXIT_USAGE 2
#define EXIT_FRAMES 3
#define EXIT_IFACE_GONE 69 /* EX_UNAVAILABLE: the interface was deleted under us */
#define EXIT_CONFIG 78	   /* EX_CONFIG: the configuration is wrong */

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
	printf(" handler_datagrams=%llu handler_bytes=%llu",
	       (unsigned long long)__atomic_load_n(&d->handler.datagrams, __ATOMIC_RELAXED),
	       (unsigned long long)__atomic_load_n(&d->handler.bytes, __ATOMIC_RELAXED));
	if (d->iface && ferryd_iface_state(d->iface)->ifindex) {
		struct ferryd_iface_stats is;

		ferryd_iface_get_stats(d->iface, &is);
		printf(" link_up=%d link_down_events=%llu", ferryd_iface_state(d->iface)->running,
		       (unsigned long long)is.link_down);
	}
	print_xdp_counters(d->engine);
	printf("\n");
	/* each worker's share, when there are several: what it received and sent, where its frames are */
	for (unsigned int i = 0; ferryd_engine_workers(d->engine) > 1 && i < ferryd_engine_workers(d->engine); i++) {
		static const char *const keys[] = { "rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "tx_dropped",
						    "frames_total", "frames_free", "frames_kernel", "frames_user",
						    "frames_tx" };

		memset(&s, 0, sizeof(s));
		ferryd_engine_worker_stats(d->engine, i, &s);
		printf("worker %u", i);
		for (unsigned int k = 0; k < ferryd_stat_nfields; k++)
			for (size_t j = 0; j < sizeof(keys) / sizeof(keys[0]); j++)
				if (!strcmp(ferryd_stat_fields[k].name, keys[j]))
					printf(" %s=%llu", keys[j], (unsigned long long)ferryd_stat_get(&s, k));
		printf("\n");
	}
	ferryd_control_print(d->control, stdout);
	fflush(stdout);
}

static void on_signal(void *user, uint32_t events)
{
	struct ferryd *d = user;
	struct signalfd_siginfo si;

	while (read(d->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGUSR1:
			/* from the main loop too: this may be the engine's start (no engine yet) or an operation
			 * under way, waiting for the workers */
			d->stats_pending = true;
			break;
		case SIGHUP:
			/*
			 * A reload, from the main loop: this may be a client's attach or
			 * end waiting for the workers (the reactor runs in that wait),
			 * which must finish before the sessions and services change.
			 */
			d->reload_pending = true;
			break;
		case SIGUSR2:
			/* Fault injection for tests only: FERRYD_FAULTS=stall makes SIGUSR2
			 * stall worker 0 (the watchdog's tests), attach-nomem makes the next
			 * session fail as if memfd_create said ENOMEM (the fault tests);
			 * otherwise it ends ferryd like the others. */
			if (d->nomem_on_usr2) {
				ferryd_session_inject_nomem(1);
				ferryd_log(LOG_NOTICE, "fault injection: the next session fails as if memfd_create "
					   "returned ENOMEM");
			}
			if (d->stall_on_usr2)
				ferryd_dp_stall_worker(d->engine, 0, 30);
			if (d->stall_on_usr2 || d->nomem_on_usr2)
				break;
			/* fall through */
		default:
			/* SIGTERM, SIGINT, and every other signal whose default would
			 * have ended us: end cleanly instead, program detached (main
			 * says which signal). */
			d->quit = true;
			d->quit_signal = (int)si.ssi_signo;
			break;
		}
	}
}

static int reload_fn(void *user, char *why, size_t whylen)
{
	return ferryd_reload(user, why, whylen);
}

/* SIGHUP's reload: what changed is applied, the rest (and its clients) untouched. */
static void reload_by_signal(struct ferryd *d)
{
	char why[256] = "";

	d->reload_pending = false;
	ferryd_log(LOG_INFO, "SIGHUP: reloading the configuration");
	if (ferryd_control_exclusive(d->control, reload_fn, d, why, sizeof(why)))
		ferryd_log(LOG_ERR, "SIGHUP: reload refused: %s; the running configuration stays", why);
}

/*
 * What a signal asked, from the top of the event loop, where no attach, end
 * or reload is under way (the reactor runs inside those, and inside the
 * engine's start): true when something ran (then more may be pending).
 */
static bool run_pending(struct ferryd *d)
{
	if (d->stats_pending) {
		d->stats_pending = false;
		print_stats(d, "stats");
		return true;
	}
	if (d->reload_pending) {
		reload_by_signal(d);
		return true;
	}
	return false;
}

static int drain_fn(void *user, char *why, size_t whylen)
{
	struct ferryd *d = user;

	(void)why;
	(void)whylen;
	d->engine->ops->drain(d->engine);
	return 0;
}

/* ferryctl reload: the same as SIGHUP, its outcome answered to the client. */
static int reload_by_client(void *user, char *why, size_t whylen)
{
	int err;

	ferryd_log(LOG_INFO, "reload asked on the control socket");
	err = ferryd_reload(user, why, whylen);
	if (err)
		ferryd_log(LOG_ERR, "reload refused: %s; the running configuration stays", why);
	return err;
}

/* What the interface does while we run: told once per change, in words. */
static void on_iface(void *user, const struct ferryd_link_state *old, const struct ferryd_link_state *now)
{
	struct ferryd *d = user;

	if (now->gone) {
		ferryd_log(LOG_ERR, "interface %s was deleted: exiting (status %d)", old->ifname, EXIT_IFACE_GONE);
		d->exit_status = EXIT_IFACE_GONE;
		return;
	}
	if (strcmp(old->ifname, now->ifname))
		ferryd_log(LOG_NOTICE, "interface %s is now called %s", old->ifname, now->ifname);
	if (old->running && !now->running)
		ferryd_log(LOG_WARNING, "%s is %s: nothing is received until it comes back", now->ifname,
			   now->up ? "up without a carrier" : "down");
	else if (!old->running && now->running)
		ferryd_log(LOG_NOTICE, "%s is up: serving", now->ifname);
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

/*
 * A service's own address must be the interface's (else the kernel would
 * not deliver to it, and neither would XDP steer it), or the host's when
 * there is no interface: the error bind would give, given at start.
 */
int ferryd_check_service(struct ferryd *d, const struct ferryd_service *svc)
{
	const struct ferryd_link_state *ls = ferryd_iface_state(d->iface);
	union ferry_sockaddr a;
	const void *addr;
	uint8_t family;
	uint32_t flags;
	char text[64];

	ferryd_sockaddr_canon(&svc->addr, &a);
	family = a.sa.sa_family == AF_INET ? 4 : 6;
	addr = family == 4 ? (const void *)&a.in4.sin_addr : (const void *)&a.in6.sin6_addr;
	if (family == 4 ? a.in4.sin_addr.s_addr == htonl(INADDR_ANY) || IN_MULTICAST(ntohl(a.in4.sin_addr.s_addr))
			: IN6_IS_ADDR_UNSPECIFIED(&a.in6.sin6_addr) || IN6_IS_ADDR_MULTICAST(&a.in6.sin6_addr))
		return 0; /* wildcards and groups are anyone's */
	flags = ferryd_addrset_flags(&ls->addrs, family, addr);
	if (ls->ifindex ? flags & (FERRY_ADDR_IFACE | FERRY_ADDR_TENTATIVE) : flags & FERRY_ADDR_LOCAL)
		return 0;
	ferry_sockaddr_format(&svc->addr, text, sizeof(text));
	if (ls->ifindex)
		ferryd_log(LOG_ERR, "service %s: %s: the address is not on %s%s", svc->name, text, ls->ifname,
			   flags & FERRY_ADDR_LOCAL ? " (it is on another interface of this host)" : "");
	else
		ferryd_log(LOG_ERR, "service %s: %s: not an address of this host", svc->name, text);
	return -EADDRNOTAVAIL;
}

static int check_services(struct ferryd *d)
{
	int err = 0;

	for (unsigned int i = 0; i < d->cfg.nservices; i++)
		if (ferryd_check_service(d, &d->cfg.services[i]))
			err = -EADDRNOTAVAIL;
	return err;
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
	/* The interface is ours (owner.h): what a ferry program is left there, its owner is dead. */
	n = ferryd_prog_sweep(cfg->ifname, ferryd_owner_prev_prog(d->owner));
	if (n > 0)
		ferryd_log(LOG_NOTICE, "removed %d XDP program%s a previous ferryd left on %s", n, n == 1 ? "" : "s",
			   cfg->ifname);
	else if (n < 0)
		ferryd_log(LOG_WARNING, "could not check %s for a previous ferryd's XDP program: %s", cfg->ifname,
			   strerror(-n));
	return ferryd_xdp_engine_new(d->r, d->iface, cfg, cfg->services, cfg->nservices, &d->engine, why, whylen);
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
	err = ferryd_sock_engine_new(d->r, d->iface, cfg, cfg->services, cfg->nservices, &d->engine, why, sizeof(why));
	if (err)
		ferryd_log(LOG_ERR, "cannot start the socket engine: %s", why[0] ? why : strerror(-err));
	return err;
}

/*
 * Every signal whose default action ends the process, but the faults: taken
 * from a signalfd, so none can end ferryd without its clean shutdown.
 */
static void signal_set(sigset_t *set)
{
	static const int sigs[] = { SIGTERM, SIGINT,  SIGHUP,  SIGQUIT, SIGUSR1,   SIGUSR2,	 SIGALRM,
				    SIGVTALRM, SIGPROF, SIGXCPU, SIGXFSZ, SIGPOLL, SIGPWR, SIGSTKFLT };

	sigemptyset(set);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(set, sigs[i]);
	for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
		sigaddset(set, sig);
}

/*
 * A fault (or abort) ends the process whatever we do; before it does, the
 * XDP program goes (ferryd_prog_emergency_detach() is async-signal-safe), so
 * the interface is the kernel's again. Then the previous disposition (the
 * default, or a sanitizer's report) takes the signal again.
 */
static const int fatal_sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS, SIGTRAP };
static struct sigaction fatal_old[sizeof(fatal_sigs) / sizeof(fatal_sigs[0])];

static void on_fatal(int sig, siginfo_t *info, void *ctx)
{
	ferryd_prog_emergency_detach();
	for (size_t i = 0; i < sizeof(fatal_sigs) / sizeof(fatal_sigs[0]); i++)
		if (fatal_sigs[i] == sig)
			sigaction(sig, &fatal_old[i], NULL);
	/* A fault re-runs its instruction under the restored action; a raised signal is raised again. */
	if (info->si_code <= 0)
		raise(sig);
	(void)ctx;
}

static void setup_fatal_signals(void)
{
	static char stack[64 * 1024];
	stack_t ss = { .ss_sp = stack, .ss_size = sizeof(stack) };
	struct sigaction sa;

	sigaltstack(&ss, NULL); /* a stack overflow still gets its detach */
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fatal;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigfillset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(fatal_sigs) / sizeof(fatal_sigs[0]); i++)
		sigaction(fatal_sigs[i], &sa, &fatal_old[i]);
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
	char err_msg[512], why[256] = "";
	int err, status = EXIT_FAILURE;
	sigset_t set;

	d.sigfd = -1;
	signal(SIGPIPE, SIG_IGN);
	signal_set(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
	setup_fatal_signals();
	d.argc = argc;
	d.argv = argv;
	if (ferryd_config_load(&d.cfg, &cl, argc, argv, FERRYD_DEFAULT_CONFIG, err_msg, sizeof(err_msg))) {
		/* before anything is touched: a bad configuration is EX_CONFIG, a bad command line a usage error */
		fprintf(stderr, "ferryd: %s\n%s", err_msg, cl.bad_config ? "" : "Try 'ferryd --help'.\n");
		return cl.bad_config ? EXIT_CONFIG : EXIT_USAGE;
	}
	d.cl = cl;
	if (cl.help) {
		ferryd_config_usage(stdout);
		return EXIT_SUCCESS;
	}
	if (cl.check_config) {
		printf("# %s: the configuration is valid: %u service%s\n", cl.config[0] ? cl.config : "(command line)",
		       d.cfg.nservices, d.cfg.nservices == 1 ? "" : "s");
		ferryd_config_describe(&d.cfg, stdout);
		return EXIT_SUCCESS;
	}
	ferryd_log_init();
	d.stall_on_usr2 = getenv("FERRYD_FAULTS") && strstr(getenv("FERRYD_FAULTS"), "stall");
	d.nomem_on_usr2 = getenv("FERRYD_FAULTS") && strstr(getenv("FERRYD_FAULTS"), "attach-nomem");
	if (getenv("FERRYD_FAULTS") && strstr(getenv("FERRYD_FAULTS"), "attach-slow"))
		ferryd_session_fault_handover_ms = 100;
	if (d.cfg.log_level >= 0)
		ferryd_log_level = d.cfg.log_level;
	if (cl.verbose)
		ferryd_log_level = LOG_DEBUG;
	if (cl.config[0])
		ferryd_log(LOG_INFO, "configuration from %s", cl.config);
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
	/* One ferryd per interface: taken before anything on it is touched. */
	if (d.cfg.ifname[0]) {
		err = ferryd_owner_claim(d.cfg.run_dir, d.cfg.ifname, &d.owner, why, sizeof(why));
		if (err) {
			ferryd_log(LOG_ERR, "%s", why);
			goto out_reactor;
		}
	}
	err = ferryd_iface_new(d.r, d.cfg.ifname, &d.iface, why, sizeof(why));
	if (err) {
		ferryd_log(LOG_ERR, "cannot read the interface and addresses: %s", why);
		goto out_owner;
	}
	if (check_services(&d))
		goto out_iface;
	ferryd_iface_subscribe(d.iface, on_iface, &d);
	/* Handlers first: an engine may deliver as soon as it exists. */
	ferryd_handlers_install(&d.handler, d.cfg.handler, d.cfg.services, d.cfg.nservices);
	if (start_engine(&d))
		goto out_iface;
	ferryd_handlers_set_engine(&d.handler, d.engine);
	ferryd_log(LOG_INFO, "%s", d.engine->describe);
	/* should we die holding the interface, a successor knows our program by its id */
	ferryd_owner_note_prog(d.owner, ferryd_dp_prog_id(d.engine));
	err = ferryd_control_new(d.r, &d.cfg, d.engine, &d.control, why, sizeof(why));
	if (err) {
		ferryd_log(LOG_ERR, "%s", why);
		goto out_engine;
	}
	ferryd_control_set_info(d.control, &(struct ferryd_control_info){ .handler = &d.handler, .iface = d.iface });
	ferryd_control_set_reload(d.control, reload_by_client, &d);
	ferryd_log(LOG_INFO, "control socket %s%s", d.cfg.control,
		   d.cfg.handler == FERRYD_HANDLER_CLIENTS ? ": clients attach here" : "");
	if (d.cfg.ifname[0] && !ferryd_iface_state(d.iface)->running)
		ferryd_log(LOG_WARNING, "%s is %s: serving once it comes up", d.cfg.ifname,
			   ferryd_iface_state(d.iface)->up ? "up without a carrier" : "down");
	fprintf(stderr, "ferryd: ready\n");
	fflush(stderr);
	ferryd_notify_ready(&d);

	while (!d.quit && !d.exit_status) {
		/* what the signals asked, before waiting: they may have come while the engine started */
		if (run_pending(&d))
			continue;
		err = ferry_reactor_run_once(d.r, -1);
		if (err < 0) {
			ferryd_log(LOG_ERR, "event loop failed: %s", strerror(-err));
			break;
		}
	}
	ferryd_notify_stopping(&d);
	if (d.quit)
		ferryd_log(LOG_INFO, "%s: draining", strsignal(d.quit_signal));
	/* the drain waits for the workers (the reactor runs): connections wait, no attach or reload starts now;
	 * ferryd_control_stop() tells the clients */
	ferryd_control_exclusive(d.control, drain_fn, &d, why, sizeof(why));
	print_stats(&d, "stats");
	ferryd_control_stop(d.control, d.exit_status == EXIT_IFACE_GONE ? "ferryd's interface was deleted"
								       : "ferryd is shutting down");
	status = d.exit_status ? d.exit_status : d.quit ? EXIT_SUCCESS : EXIT_FAILURE;
	if (ferryd_engine_check_frames(d.engine)) {
		ferryd_log(LOG_ERR, "frame accounting unbalanced after drain: some UMEM frame is lost or counted twice");
		status = EXIT_FRAMES;
	}
out_engine:
	ferryd_handlers_set_engine(&d.handler, NULL);
	d.engine->ops->free(d.engine);
	/* after the workers: they held the sessions */
	ferryd_control_free(d.control);
	ferryd_log(LOG_INFO, "exiting");
out_iface:
	ferryd_iface_free(d.iface);
out_owner:
	ferryd_owner_release(d.owner);
out_reactor:
	ferry_reactor_free(d.r);
	if (d.sigfd >= 0)
		close(d.sigfd);
	return status;
}
