/* SPDX-License-Identifier: MIT */
/* Shared by every libferry header: export and inlining macros, result codes. */
#ifndef FERRY_COMMON_H
#define FERRY_COMMON_H

#ifdef __cplusplus
extern "C" {
#endif

/* Symbols are hidden by default (-fvisibility=hidden); FERRY_API exports. */
#ifndef FERRY_API
#define FERRY_API __attribute__((visibility("default")))
#endif

/* One switch for every hot-path helper (liburing's IOURINGINLINE). */
#ifndef FERRY_INLINE
#define FERRY_INLINE static inline
#endif

#ifndef ferry_likely
#define ferry_likely(x) __builtin_expect(!!(x), 1)
#define ferry_unlikely(x) __builtin_expect(!!(x), 0)
#endif

/* Results of the send calls. Errors are -errno, always negative. */
#define FERRY_OK 0
#define FERRY_NOT_READY 1

/* How a loop (or a waiting send) ended, when it did not fail with -errno. */
#define FERRY_END_STOPPED 1 /* its ferry_stop fired */
#define FERRY_END_CLOSED 2  /* end of stream, or the fd was closed (EBADF) */

#ifdef __cplusplus
}
#endif
#endif
