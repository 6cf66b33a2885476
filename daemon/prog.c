/* SPDX-License-Identifier: MIT */
/*
 * The XDP steering program's life in ferryd: load the embedded object, attach
 * it through libxdp (dispatcher or program alone), fill its maps, read its
 * counters, detach it, and sweep what a dead ferryd left on an interface.
 */
#include <errno.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <syslog.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <signal.h>
#include <sys/socket.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#include "prog.h"

#define BPFFS_DIR "/sys/fs/bpf"
/* The program's name as the kernel keeps it (BPF_OBJ_NAME_LEN: 15 chars). */
#define PROG_NAME "ferry_xdp"
#define DISPATCHER_NAME "xdp_dispatcher"
#define SWEEP_ROUNDS 4

/*
 * The detach a crashing ferryd sends from its fatal-signal handler: an
 * RTM_SETLINK built when the program is attached, so sending it needs no
 * allocation, no lock and no library call; XDP_FLAGS_REPLACE with our
 * program's fd makes it remove our program and nothing else. Only for a
 * program attached alone (a dispatcher holds others' programs too: what we
 * leave there, the next ferryd sweeps).
 */
static char emergency_msg[256] __attribute__((aligned(NLMSG_ALIGNTO)));
static size_t emergency_len;
static volatile sig_atomic_t emergency_armed;

/* bpf_blob.S */
extern const char ferryd_bpf_obj[];
extern const char ferryd_bpf_obj_end[];

struct ferryd_prog {
	struct bpf_object *obj;
	struct xdp_program *xprog;
	int ifindex;
	char ifname[IF_NAMESIZE];
	enum xdp_attach_mode xmode;
	bool attached;
	bool dispatcher;
	int services_fd, xsks_fd, counters_fd, addrs_fd, config_fd;
	unsigned int naddrs; /* entries in the addrs map */
	int ncpus;
	__u64 *percpu; /* ncpus values: one per-CPU counter read */
	char describe[256];
};

/*
 * What libxdp said while we called it. libxdp and libbpf print through
 * process-wide callbacks; ours are installed only around our own calls
 * (ferryd does this from one thread) and send everything to ferryd_log at
 * debug level, keeping the lines that explain a fallback or a failure.
 * libxdp checks the kernel for dispatcher support once per process and
 * caches the answer, so the reason it gave is kept for later attaches too.
 */
static char dispatcher_reason[128];
static char last_warning[256];
static libbpf_print_fn_t saved_libbpf_print;
static libxdp_print_fn_t saved_libxdp_print;

static void note_line(int warn, const char *fmt, va_list ap)
{
	static const char compat[] = "Compatibility check for dispatcher program failed: ";
	char line[512];
	const char *c;
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap); /* libbpf and libxdp prefix their own name */
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' '))
		line[--n] = '\0';
	if (!n)
		return;
	ferryd_log(LOG_DEBUG, "%s", line);
	if ((c = strstr(line, compat)))
		snprintf(dispatcher_reason, sizeof(dispatcher_reason), "dispatcher refused by the kernel: %.90s",
			 c + sizeof(compat) - 1);
	else if (strstr(line, "without a working bpffs"))
		snprintf(dispatcher_reason, sizeof(dispatcher_reason), "dispatcher not used: no bpffs at " BPFFS_DIR);
	if (warn)
		snprintf(last_warning, sizeof(last_warning), "%.250s", line);
}

static int libbpf_line(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	note_line(level == LIBBPF_WARN, fmt, ap);
	return 0;
}

static int libxdp_line(enum libxdp_print_level level, const char *fmt, va_list ap)
{
	note_line(level == LIBXDP_WARN, fmt, ap);
	return 0;
}

static void quiet_begin(void)
{
	last_warning[0] = '\0';
	saved_libbpf_print = libbpf_set_print(libbpf_line);
	saved_libxdp_print = libxdp_set_print(libxdp_line);
}

static void quiet_end(void)
{
	libbpf_set_print(saved_libbpf_print);
	libxdp_set_print(saved_libxdp_print);
}

static const char *mode_name(enum xdp_attach_mode m)
{
	switch (m) {
	case XDP_MODE_NATIVE:
		return "native";
	case XDP_MODE_SKB:
		return "skb";
	case XDP_MODE_HW:
		return "hw";
	default:
		return "unspecified";
	}
}

int ferryd_bpffs_ensure(void)
{
	struct statfs st;
	int err;

	if (!statfs(BPFFS_DIR, &st) && st.f_type == BPF_FS_MAGIC)
		return 0;
	if (mkdir(BPFFS_DIR, 0700) && errno != EEXIST) {
		err = -errno;
		ferryd_log(LOG_ERR, "creating %s: %s", BPFFS_DIR, strerror(-err));
		return err;
	}
	if (mount("bpf", BPFFS_DIR, "bpf", 0, "mode=0700")) {
		err = -errno;
		ferryd_log(LOG_ERR, "mount -t bpf bpf %s: %s", BPFFS_DIR, strerror(-err));
		return err;
	}
	ferryd_log(LOG_INFO, "mounted bpffs at %s", BPFFS_DIR);
	return 0;
}

/* The kernel's name of a program, by id. 0 or -errno. */
static int prog_name_by_id(__u32 id, char *name, size_t len)
{
	struct bpf_prog_info info;
	__u32 info_len = sizeof(info);
	int fd, err = 0;

	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &info_len))
		err = -errno;
	else
		snprintf(name, len, "%s", info.name);
	close(fd);
	return err;
}

/* Says which XDP program holds ifindex in a mode, for an error message. */
static void describe_holder(int ifindex, char *out, size_t len)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	char name[BPF_OBJ_NAME_LEN] = "?";
	__u32 id;

	out[0] = '\0';
	if (bpf_xdp_query(ifindex, 0, &q))
		return;
	id = q.drv_prog_id ? q.drv_prog_id : q.skb_prog_id ? q.skb_prog_id : q.hw_prog_id;
	if (!id)
		return;
	prog_name_by_id(id, name, sizeof(name));
	snprintf(out, len, " (program %u \"%s\" is attached there%s)", id, name,
		 !strcmp(name, PROG_NAME) ? "; a ferryd that died? sweep it" : "");
}

/* The netlink flag of the mode our program is attached in. */
static __u32 mode_flag(const struct ferryd_prog *p)
{
	return p->xmode == XDP_MODE_SKB ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
}

/*
 * Without CAP_SYS_ADMIN (a tight systemd unit), libxdp cannot open programs
 * by id to list a dispatcher's: rtnetlink still says which program holds the
 * interface, and that is ours alone, or not ours.
 */
static int check_attached_by_id(struct ferryd_prog *p, char *why, size_t whylen)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	__u32 ours = xdp_program__id(p->xprog), id;

	if (bpf_xdp_query(p->ifindex, 0, &q)) {
		snprintf(why, whylen, "XDP program on %s not found after attaching it: %s", p->ifname, strerror(errno));
		return -errno;
	}
	id = p->xmode == XDP_MODE_SKB ? q.skb_prog_id : q.drv_prog_id;
	if (id != ours) {
		snprintf(why, whylen, "XDP program %u is not the one attached to %s (program %u is)", ours, p->ifname, id);
		return -ENOENT;
	}
	p->dispatcher = false;
	snprintf(p->describe, sizeof(p->describe), "%s mode, single program (%s)", mode_name(p->xmode),
		 dispatcher_reason[0] ? dispatcher_reason : "libxdp loaded it without a dispatcher");
	return 0;
}

/*
 * Takes our program off the interface. Alone there, by rtnetlink with
 * XDP_FLAGS_REPLACE and our fd: only if it is still ours, and without the
 * privilege libxdp's own detach needs to look the interface up; behind a
 * dispatcher, through libxdp.
 */
static int detach_ours(struct ferryd_prog *p)
{
	LIBBPF_OPTS(bpf_xdp_attach_opts, a, .old_prog_fd = xdp_program__fd(p->xprog));

	if (p->dispatcher)
		return xdp_program__detach(p->xprog, p->ifindex, p->xmode, 0);
	return bpf_xdp_detach(p->ifindex, mode_flag(p) | XDP_FLAGS_REPLACE, &a) ? -errno : 0;
}

/* Records whether libxdp put our program behind its dispatcher or alone. */
static int check_attached(struct ferryd_prog *p, char *why, size_t whylen)
{
	struct xdp_multiprog *mp;
	struct xdp_program *main_prog, *q;
	__u32 ours = xdp_program__id(p->xprog);
	int nprogs = 0, err = 0;
	bool found = false;

	mp = xdp_multiprog__get_from_ifindex(p->ifindex);
	err = libxdp_get_error(mp);
	if (err == -EPERM || err == -EACCES)
		return check_attached_by_id(p, why, whylen);
	if (!mp || err) {
		err = err ? err : -ENOENT;
		snprintf(why, whylen, "XDP program on %s not found after attaching it: %s", p->ifname, strerror(-err));
		return err;
	}
	if (xdp_multiprog__is_legacy(mp)) {
		main_prog = xdp_multiprog__main_prog(mp);
		found = main_prog && xdp_program__id(main_prog) == ours;
		p->dispatcher = false;
		snprintf(p->describe, sizeof(p->describe), "%s mode, single program (%s)", mode_name(p->xmode),
			 dispatcher_reason[0] ? dispatcher_reason : "libxdp loaded it without a dispatcher");
	} else {
		for (q = xdp_multiprog__next_prog(NULL, mp); q; q = xdp_multiprog__next_prog(q, mp)) {
			nprogs++;
			if (xdp_program__id(q) == ours)
				found = true;
		}
		p->dispatcher = true;
		snprintf(p->describe, sizeof(p->describe), "%s mode, libxdp dispatcher (%d program%s)",
			 mode_name(xdp_multiprog__attach_mode(mp)), nprogs, nprogs == 1 ? "" : "s");
	}
	xdp_multiprog__close(mp);
	if (!found) {
		snprintf(why, whylen, "XDP program %u is not the one attached to %s", ours, p->ifname);
		return -ENOENT;
	}
	return 0;
}

static int find_maps(struct ferryd_prog *p, char *why, size_t whylen)
{
	p->services_fd = bpf_object__find_map_fd_by_name(p->obj, "services");
	p->xsks_fd = bpf_object__find_map_fd_by_name(p->obj, "xsks");
	p->counters_fd = bpf_object__find_map_fd_by_name(p->obj, "counters");
	p->addrs_fd = bpf_object__find_map_fd_by_name(p->obj, "addrs");
	p->config_fd = bpf_object__find_map_fd_by_name(p->obj, "config");
	if (p->services_fd < 0 || p->xsks_fd < 0 || p->counters_fd < 0 || p->addrs_fd < 0 || p->config_fd < 0) {
		snprintf(why, whylen, "the XDP object lacks one of its services/xsks/counters/addrs/config maps");
		return -ENOENT;
	}
	p->ncpus = libbpf_num_possible_cpus();
	if (p->ncpus <= 0) {
		snprintf(why, whylen, "cannot count possible CPUs: %s", strerror(p->ncpus ? -p->ncpus : EINVAL));
		return p->ncpus ? p->ncpus : -EINVAL;
	}
	p->percpu = calloc((size_t)p->ncpus, sizeof(*p->percpu));
	if (!p->percpu) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static void emergency_arm(const struct ferryd_prog *p)
{
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	struct nlattr *nest;

	emergency_armed = 0;
	if (p->dispatcher)
		return;
	memset(emergency_msg, 0, sizeof(emergency_msg));
	nlh = mnl_nlmsg_put_header(emergency_msg);
	nlh->nlmsg_type = RTM_SETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = p->ifindex;
	nest = mnl_attr_nest_start(nlh, IFLA_XDP);
	mnl_attr_put_u32(nlh, IFLA_XDP_FD, (uint32_t)-1);
	mnl_attr_put_u32(nlh, IFLA_XDP_EXPECTED_FD, (uint32_t)xdp_program__fd(p->xprog));
	mnl_attr_put_u32(nlh, IFLA_XDP_FLAGS,
			 (p->xmode == XDP_MODE_SKB ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE) | XDP_FLAGS_REPLACE);
	mnl_attr_nest_end(nlh, nest);
	emergency_len = nlh->nlmsg_len;
	emergency_armed = 1;
}

void ferryd_prog_emergency_detach(void)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	int fd, saved = errno;

	if (!emergency_armed)
		return;
	emergency_armed = 0;
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd >= 0) {
		sendto(fd, emergency_msg, emergency_len, 0, (struct sockaddr *)&kernel, sizeof(kernel));
		close(fd);
	}
	errno = saved;
}

int ferryd_prog_attach(const char *ifname, enum ferryd_xdp_mode mode, struct ferryd_prog **out, char *why,
		       size_t whylen)
{
	LIBBPF_OPTS(bpf_object_open_opts, oopts, .object_name = "ferry");
	DECLARE_LIBXDP_OPTS(xdp_program_opts, xopts);
	struct ferryd_prog *p;
	char holder[128];
	int err;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	snprintf(p->ifname, sizeof(p->ifname), "%s", ifname);
	p->xmode = mode == FERRYD_XDP_SKB ? XDP_MODE_SKB : XDP_MODE_NATIVE;
	p->ifindex = (int)if_nametoindex(ifname);
	if (!p->ifindex) {
		err = -errno;
		snprintf(why, whylen, "no interface %s: %s", ifname, strerror(-err));
		goto err_free;
	}

	quiet_begin();
	p->obj = bpf_object__open_mem(ferryd_bpf_obj, (size_t)(ferryd_bpf_obj_end - ferryd_bpf_obj), &oopts);
	err = (int)libbpf_get_error(p->obj);
	if (err || !p->obj) {
		err = err ? err : -EINVAL;
		p->obj = NULL;
		snprintf(why, whylen, "opening the embedded XDP object: %s", strerror(-err));
		goto err_quiet;
	}
	xopts.obj = p->obj;
	xopts.prog_name = PROG_NAME;
	p->xprog = xdp_program__create(&xopts);
	err = (int)libxdp_get_error(p->xprog);
	if (err || !p->xprog) {
		err = err ? err : -ENOENT;
		p->xprog = NULL;
		snprintf(why, whylen, "no program %s in the XDP object: %s", PROG_NAME, strerror(-err));
		goto err_close_obj;
	}

	err = xdp_program__attach(p->xprog, p->ifindex, p->xmode, 0);
	if (err) {
		describe_holder(p->ifindex, holder, sizeof(holder));
		snprintf(why, whylen, "attaching XDP in %s mode to %s: %s%s%s%s", mode_name(p->xmode), ifname,
			 strerror(err < 0 ? -err : err), holder, last_warning[0] ? "; last message: " : "", last_warning);
		goto err_close_prog;
	}
	p->attached = true;

	err = check_attached(p, why, whylen);
	if (err)
		goto err_detach;
	err = find_maps(p, why, whylen);
	if (err)
		goto err_detach;
	quiet_end();
	emergency_arm(p);

	ferryd_log(LOG_INFO, "XDP program %u on %s: %s", xdp_program__id(p->xprog), ifname, p->describe);
	*out = p;
	return 0;

err_detach:
	detach_ours(p);
err_close_prog:
	xdp_program__close(p->xprog);
err_close_obj:
	bpf_object__close(p->obj);
err_quiet:
	quiet_end();
err_free:
	free(p->percpu);
	free(p);
	return err < 0 ? err : -EINVAL;
}

static void service_key(const union ferry_sockaddr *svc_addr, struct ferry_service_key *key)
{
	union ferry_sockaddr a;

	ferryd_sockaddr_canon(svc_addr, &a);
	memset(key, 0, sizeof(*key));
	if (a.sa.sa_family == AF_INET) {
		key->family = 4;
		key->port = a.in4.sin_port;
		memcpy(key->addr, &a.in4.sin_addr, 4);
	} else if (a.sa.sa_family == AF_INET6) {
		key->family = 6;
		key->port = a.in6.sin6_port;
		memcpy(key->addr, &a.in6.sin6_addr, 16);
	}
}

int ferryd_prog_add_service(struct ferryd_prog *p, const struct ferryd_service *svc)
{
	struct ferry_service_key key;
	struct ferry_service_val val = {.id = svc->id}, old;
	int err;

	service_key(&svc->addr, &key);
	if (!key.family || !key.port) {
		ferryd_log(LOG_ERR, "service %s: needs an IPv4 or IPv6 address and a port", svc->name);
		return -EINVAL;
	}
	if (!bpf_map_lookup_elem(p->services_fd, &key, &old)) {
		if (old.id == val.id)
			return 0;
		ferryd_log(LOG_ERR, "service %s: its address is already steered to service %u", svc->name, old.id);
		return -EEXIST;
	}
	if (bpf_map_update_elem(p->services_fd, &key, &val, BPF_NOEXIST)) {
		err = -errno;
		ferryd_log(LOG_ERR, "service %s: adding it to the XDP services map: %s", svc->name, strerror(-err));
		return err;
	}
	return 0;
}

int ferryd_prog_remove_service(struct ferryd_prog *p, const struct ferryd_service *svc)
{
	struct ferry_service_key key;
	struct ferry_service_val old;

	service_key(&svc->addr, &key);
	if (bpf_map_lookup_elem(p->services_fd, &key, &old) || old.id != svc->id)
		return -ENOENT;
	if (bpf_map_delete_elem(p->services_fd, &key)) {
		int err = -errno;

		ferryd_log(LOG_ERR, "service %s: removing it from the XDP services map: %s", svc->name, strerror(-err));
		return err;
	}
	return 0;
}

int ferryd_prog_set_socket(struct ferryd_prog *p, unsigned int queue, int xsk_fd)
{
	__u32 key = queue;
	int err;

	if (queue >= FERRY_MAX_QUEUES) {
		ferryd_log(LOG_ERR, "queue %u: the XDP program steers queues 0..%u only", queue, FERRY_MAX_QUEUES - 1);
		return -EINVAL;
	}
	if (xsk_fd >= 0)
		err = bpf_map_update_elem(p->xsks_fd, &key, &xsk_fd, BPF_ANY);
	else if ((err = bpf_map_delete_elem(p->xsks_fd, &key)) && errno == ENOENT)
		err = 0;
	if (err) {
		err = -errno;
		ferryd_log(LOG_ERR, "queue %u: %s its AF_XDP socket in the XSKMAP: %s", queue,
			   xsk_fd >= 0 ? "registering" : "removing", strerror(-err));
		return err;
	}
	return 0;
}

int ferryd_prog_set_config(struct ferryd_prog *p, const uint8_t mac[6], unsigned int max_frame)
{
	struct ferry_xdp_config c;
	__u32 zero = 0;

	memset(&c, 0, sizeof(c));
	memcpy(c.mac, mac, 6);
	c.max_frame = (__u16)(max_frame > 0xffff ? 0xffff : max_frame);
	if (bpf_map_update_elem(p->config_fd, &zero, &c, BPF_ANY)) {
		int err = -errno;

		ferryd_log(LOG_ERR, "updating the XDP program's interface facts: %s", strerror(-err));
		return err;
	}
	return 0;
}

int ferryd_prog_set_addrs(struct ferryd_prog *p, const struct ferryd_addrset *set)
{
	struct ferry_addr_key k, next, *gone;
	struct ferry_addr_val v;
	unsigned int n = 0, skipped = 0, ngone = 0;
	bool first = true;
	int err = 0;

	/* What is gone first, making room; collected before, as deleting the key a walk stands on restarts it. */
	gone = calloc(FERRY_MAX_ADDRS, sizeof(*gone));
	if (!gone)
		return -ENOMEM;
	while (ngone < FERRY_MAX_ADDRS && !bpf_map_get_next_key(p->addrs_fd, first ? NULL : &k, &next)) {
		first = false;
		k = next;
		if (!ferryd_addrset_flags(set, next.family, next.addr))
			gone[ngone++] = next;
	}
	for (unsigned int i = 0; i < ngone; i++)
		if (bpf_map_delete_elem(p->addrs_fd, &gone[i]) && errno != ENOENT && !err)
			err = -errno;
	free(gone);
	/* Then every entry of the set (an address that stays is never missing
	 * meanwhile: a missing destination would only pass, a missing source
	 * would be steered). */
	for (unsigned int i = 0; set->slots && i <= set->mask; i++) {
		const struct ferryd_addrset_entry *e = &set->slots[i];

		if (!e->family)
			continue;
		memset(&k, 0, sizeof(k));
		k.family = e->family;
		memcpy(k.addr, e->addr, 16);
		v.flags = e->flags;
		if (bpf_map_update_elem(p->addrs_fd, &k, &v, BPF_ANY)) {
			if (errno != E2BIG && errno != ENOMEM)
				err = -errno;
			skipped++;
			continue;
		}
		n++;
	}
	if (skipped && !err)
		ferryd_log(LOG_WARNING, "the host has more addresses than the XDP program's map holds (%d): %u left out; "
			   "datagrams to them take the kernel's path", FERRY_MAX_ADDRS, skipped);
	p->naddrs = n;
	if (err)
		ferryd_log(LOG_ERR, "updating the XDP program's address map: %s", strerror(-err));
	return err;
}

int ferryd_prog_counters(struct ferryd_prog *p, uint64_t *out)
{
	for (__u32 i = 0; i < FERRY_XDP_NCOUNTERS; i++) {
		uint64_t sum = 0;

		if (bpf_map_lookup_elem(p->counters_fd, &i, p->percpu))
			return -errno;
		for (int c = 0; c < p->ncpus; c++)
			sum += p->percpu[c];
		out[i] = sum;
	}
	return 0;
}

uint32_t ferryd_prog_id(const struct ferryd_prog *p)
{
	return p ? xdp_program__id(p->xprog) : 0;
}

const char *ferryd_prog_describe(const struct ferryd_prog *p)
{
	return p ? p->describe : "no XDP program";
}

void ferryd_prog_detach(struct ferryd_prog *p)
{
	int err;

	if (!p)
		return;
	emergency_armed = 0;
	quiet_begin();
	if (p->attached) {
		err = detach_ours(p);
		if (err)
			/* e.g. the interface is gone, and the program with it */
			ferryd_log(LOG_WARNING, "detaching XDP program %u from %s: %s", xdp_program__id(p->xprog),
				   p->ifname, strerror(err < 0 ? -err : err));
	}
	xdp_program__close(p->xprog);
	bpf_object__close(p->obj); /* xdp_program__create(.obj) left it ours */
	quiet_end();
	free(p->percpu);
	free(p);
}

/* Detaches our programs from the dispatcher on ifindex; returns how many, or -errno. */
static int sweep_dispatcher(int ifindex, const char *ifname)
{
	struct xdp_program *ours[16], *q;
	struct xdp_multiprog *mp;
	size_t n = 0;
	int err;

	mp = xdp_multiprog__get_from_ifindex(ifindex);
	err = (int)libxdp_get_error(mp);
	if (!mp || err)
		return err == -ENOENT || !mp ? 0 : err;
	for (q = xdp_multiprog__next_prog(NULL, mp); q && n < sizeof(ours) / sizeof(ours[0]);
	     q = xdp_multiprog__next_prog(q, mp))
		if (!strcmp(xdp_program__name(q), PROG_NAME))
			ours[n++] = q;
	if (n) {
		err = xdp_program__detach_multi(ours, n, ifindex, xdp_multiprog__attach_mode(mp), 0);
		if (err)
			ferryd_log(LOG_ERR, "removing %zu stale ferry program(s) from the dispatcher on %s: %s", n, ifname,
				   strerror(err < 0 ? -err : err));
	}
	xdp_multiprog__close(mp);
	return err ? (err < 0 ? err : -err) : (int)n;
}

int ferryd_prog_sweep(const char *ifname, uint32_t noted)
{
	static const struct {
		__u32 flag;
		const char *name;
	} modes[] = {{XDP_FLAGS_DRV_MODE, "native"}, {XDP_FLAGS_SKB_MODE, "skb"}};
	int ifindex, removed = 0, err = 0;
	struct statfs st;

	ifindex = (int)if_nametoindex(ifname);
	if (!ifindex)
		return -errno;
	quiet_begin();
	/* Rounds, because a detach can reveal what the other mode holds. */
	for (int round = 0; round < SWEEP_ROUNDS; round++) {
		int found = 0;

		for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
			LIBBPF_OPTS(bpf_xdp_query_opts, q);
			LIBBPF_OPTS(bpf_xdp_attach_opts, a);
			char name[BPF_OBJ_NAME_LEN] = "";
			__u32 id;
			int fd, n;

			if (bpf_xdp_query(ifindex, 0, &q)) {
				err = -errno;
				goto out;
			}
			id = m == 0 ? q.drv_prog_id : q.skb_prog_id;
			if (!id)
				continue;
			n = prog_name_by_id(id, name, sizeof(name));
			if (n == -EPERM && id == noted) {
				/* Its name is not ours to read (no CAP_SYS_ADMIN), but the holder
				 * that died noted it: the very program it attached. */
				if (bpf_xdp_detach(ifindex, modes[m].flag, NULL)) {
					err = -errno;
					ferryd_log(LOG_ERR, "removing stale XDP program %u (%s mode) from %s: %s", id,
						   modes[m].name, ifname, strerror(-err));
					goto out;
				}
				ferryd_log(LOG_INFO, "removed stale XDP program %u (%s mode) from %s", id, modes[m].name,
					   ifname);
				removed++;
				found++;
				continue;
			}
			if (n)
				continue;
			if (!strcmp(name, DISPATCHER_NAME)) {
				n = sweep_dispatcher(ifindex, ifname);
				if (n < 0) {
					err = n;
					goto out;
				}
				removed += n;
				found += n;
				continue;
			}
			if (strcmp(name, PROG_NAME))
				continue;
			/* Alone on the interface: detach it only if it is still
			 * this very program (XDP_FLAGS_REPLACE + expected fd). */
			fd = bpf_prog_get_fd_by_id(id);
			if (fd < 0)
				continue; /* gone meanwhile */
			a.old_prog_fd = fd;
			if (bpf_xdp_detach(ifindex, modes[m].flag | XDP_FLAGS_REPLACE, &a)) {
				err = -errno;
				close(fd);
				ferryd_log(LOG_ERR, "removing stale XDP program %u (%s mode) from %s: %s", id,
					   modes[m].name, ifname, strerror(-err));
				goto out;
			}
			close(fd);
			ferryd_log(LOG_INFO, "removed stale XDP program %u (%s mode) from %s", id, modes[m].name,
				   ifname);
			removed++;
			found++;
		}
		if (!found)
			break;
	}
	/* Pin directories of dispatchers that are no longer attached. */
	if (!statfs(BPFFS_DIR, &st) && st.f_type == BPF_FS_MAGIC)
		libxdp_clean_references(ifindex);
out:
	quiet_end();
	return err ? err : removed;
}

const char *ferryd_xdp_counter_name(unsigned int i)
{
	static const char *const names[FERRY_XDP_NCOUNTERS] = {
		[FERRY_XDP_REDIRECTED] = "redirected",
		[FERRY_XDP_PASS_NOT_IP] = "pass_not_ip",
		[FERRY_XDP_PASS_NOT_UDP] = "pass_not_udp",
		[FERRY_XDP_PASS_NO_SERVICE] = "pass_no_service",
		[FERRY_XDP_PASS_FRAGMENT] = "pass_fragment",
		[FERRY_XDP_PASS_MALFORMED] = "pass_malformed",
		[FERRY_XDP_PASS_NO_SOCKET] = "pass_no_socket",
		[FERRY_XDP_PASS_VLAN] = "pass_vlan",
		[FERRY_XDP_PASS_OTHER_HOST] = "pass_other_host",
		[FERRY_XDP_PASS_IP_OPTIONS] = "pass_ip_options",
		[FERRY_XDP_PASS_IPV6_EXT] = "pass_ipv6_ext",
		[FERRY_XDP_PASS_NOT_LOCAL] = "pass_not_local",
		[FERRY_XDP_PASS_BAD_SOURCE] = "pass_bad_source",
		[FERRY_XDP_PASS_SOURCE_PORT] = "pass_source_port",
		[FERRY_XDP_PASS_TOO_BIG] = "pass_too_big",
		[FERRY_XDP_PASS_CHECKSUM] = "pass_checksum",
	};

	return i < FERRY_XDP_NCOUNTERS ? names[i] : "unknown";
}
