/* SPDX-License-Identifier: MIT */
/* The XDP steering program: load (embedded object), attach through libxdp, maps, counters, sweep. */
#ifndef FERRYD_PROG_H
#define FERRYD_PROG_H

#include <stdint.h>

#include "addrs.h"
#include "ferryd.h"

struct ferryd_prog;

/* Mounts bpffs at /sys/fs/bpf when nothing is mounted there (libxdp needs it). 0 or -errno. */
int ferryd_bpffs_ensure(void);

/*
 * Loads the embedded XDP object and attaches it to ifname in the given mode
 * through libxdp (its dispatcher when the kernel allows it, the program alone
 * otherwise). 0, or -errno with a reason in why; nothing stays attached then.
 */
int ferryd_prog_attach(const char *ifname, enum ferryd_xdp_mode mode, struct ferryd_prog **out, char *why,
		       size_t whylen);

/* Steers svc->addr to the AF_XDP sockets, tagged svc->id. 0 or -errno. */
int ferryd_prog_add_service(struct ferryd_prog *p, const struct ferryd_service *svc);

/* No longer steers svc->addr (it must be svc's). 0, -ENOENT or -errno. */
int ferryd_prog_remove_service(struct ferryd_prog *p, const struct ferryd_service *svc);

/* Registers (fd >= 0) or removes (fd < 0) the AF_XDP socket of a queue in the XSKMAP. */
int ferryd_prog_set_socket(struct ferryd_prog *p, unsigned int queue, int xsk_fd);

/*
 * Tells the program the interface's MAC (unicast frames to another MAC are
 * other hosts') and the longest frame an AF_XDP socket takes. Until this is
 * called, the program steers nothing. 0 or -errno.
 */
int ferryd_prog_set_config(struct ferryd_prog *p, const uint8_t mac[6], unsigned int max_frame);

/* Makes the addrs map hold exactly the set's entries. 0 or -errno (what failed is logged). */
int ferryd_prog_set_addrs(struct ferryd_prog *p, const struct ferryd_addrset *set);

/* Sums the per-CPU counters into out[FERRY_XDP_NCOUNTERS]. 0 or -errno. */
int ferryd_prog_counters(struct ferryd_prog *p, uint64_t *out);

/* e.g. "native mode, libxdp dispatcher" or "native mode, single program (dispatcher refused: ...)" */
const char *ferryd_prog_describe(const struct ferryd_prog *p);

/*
 * For a fatal-signal handler: removes the program attached last (if alone on
 * its interface and still ours) with one netlink message prepared at attach.
 * Async-signal-safe; does nothing once detached or when a dispatcher holds it.
 */
void ferryd_prog_emergency_detach(void);

/* Detaches the program, frees maps and everything pinned for it. NULL is ignored. */
void ferryd_prog_detach(struct ferryd_prog *p);

/*
 * Removes what a ferryd that died without cleaning up left on ifname: its XDP
 * program (alone or in a libxdp dispatcher) and anything it pinned. Known by
 * its name, or, where names cannot be read (no CAP_SYS_ADMIN), by the id the
 * dead ferryd noted (owner.h; 0: none). Returns how many programs it
 * removed, or -errno.
 */
int ferryd_prog_sweep(const char *ifname, uint32_t noted);

/* The attached program's id. */
uint32_t ferryd_prog_id(const struct ferryd_prog *p);

/* Name of the counter, e.g. "redirected", "pass_not_udp". */
const char *ferryd_xdp_counter_name(unsigned int i);

#endif
