/* SPDX-License-Identifier: MIT */
/*
 * One ferryd per interface: a lock (flock) on a file under the run directory,
 * named after the network namespace and the interface index, held for the
 * process's life. The kernel drops it when the process dies however it dies,
 * so a program left on the interface by a holder that is gone can be swept,
 * and one whose holder lives is never touched.
 */
#ifndef FERRYD_OWNER_H
#define FERRYD_OWNER_H

#include <stddef.h>
#include <stdint.h>

#define FERRYD_RUN_DIR "/run/ferry"

struct ferryd_owner;

/*
 * Claims ifname (in the calling thread's network namespace) for this process.
 * 0; -EBUSY when a live ferryd holds it (why names its pid); other -errno
 * with a reason in why (the run directory cannot be created, ...).
 */
int ferryd_owner_claim(const char *rundir, const char *ifname, struct ferryd_owner **out, char *why, size_t whylen);

/*
 * The XDP program a holder that died noted (0: none): a successor without
 * the privilege to read program names (CAP_SYS_ADMIN) knows it by its id.
 */
uint32_t ferryd_owner_prev_prog(const struct ferryd_owner *o);

/* Notes the XDP program this holder attached (for a successor, should we die holding it). */
void ferryd_owner_note_prog(struct ferryd_owner *o, uint32_t prog_id);

/* mkdir -p, mode 0755 for what it creates: 0 or -errno. */
int ferryd_mkdir_p(const char *dir);

/* Gives the interface up (removes the lock file). NULL is ignored. */
void ferryd_owner_release(struct ferryd_owner *o);

#endif
