/* SPDX-License-Identifier: MIT */
/* ferryd's log verbosity (ferryd_log itself is declared in ferryd.h). */
#ifndef FERRYD_LOG_H
#define FERRYD_LOG_H

/* The most verbose syslog(3) level printed: LOG_INFO by default, LOG_DEBUG with -v. */
extern int ferryd_log_level;

/* Looks whether stderr is connected to the journal (then lines carry "<N>" priority prefixes). */
void ferryd_log_init(void);

#endif
