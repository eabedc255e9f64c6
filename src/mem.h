/* SPDX-License-Identifier: Apache-2.0 */
/* mem.h: allocation that aborts on exhaustion, and a byte buffer with a hard cap.
 *
 * Small internal allocations use alm_xmalloc() and friends, which log and abort: there
 * is no sensible recovery from a failed 40-byte malloc. Sizes chosen by a client or a
 * dependency go through struct alm_buf, whose cap turns into ALM_ERR_TOO_LARGE. */
#pragma once
#include "compat.h"
#include "err.h"

#include <pthread.h>

/* pthread_create that logs and aborts when the thread cannot start (as an allocation
 * failure does): a service missing one of its threads would hang or join an unset handle
 * later. name (at most 15 characters) shows in ps and debuggers. */
void alm_xthread_create(pthread_t *t, void *(*fn)(void *), void *arg, const char *name);
void *alm_xmalloc(size_t n);
void *alm_xcalloc(size_t n, size_t size);
void *alm_xrealloc(void *p, size_t n);
char *alm_xstrdup(const char *s);
char *alm_xstrndup(const char *s, size_t n);
/* Returns a new string owned by the caller. */
char *alm_xasprintf(const char *fmt, ...) ALM_PRINTF(1, 2);
#define ALM_FREE(p)                                                                                \
    do {                                                                                           \
        free(p);                                                                                   \
        (p) = NULL;                                                                                \
    } while (0)

struct alm_buf {
    char *data; /* always NUL-terminated when non-NULL */
    size_t len;
    size_t alloc;
    size_t cap; /* hard limit on len; 0 means no limit */
};
#define ALM_BUF_INIT(capacity)                                                                     \
    {                                                                                              \
        NULL, 0, 0, (capacity)                                                                     \
    }

/* Appends n bytes; ALM_ERR_TOO_LARGE (buffer unchanged) when the cap would be passed. */
enum alm_err alm_buf_append(struct alm_buf *b, const void *p, size_t n) ALM_MUSTCHECK;
enum alm_err alm_buf_appendf(struct alm_buf *b, const char *fmt, ...)
    ALM_PRINTF(2, 3) ALM_MUSTCHECK;
/* Appends to a buffer without a cap (metrics text, an answer formatted for the socket),
 * which nothing but memory can refuse: it aborts then, as alm_xmalloc() does, since
 * a small buffer that cannot grow leaves nothing sensible to do. A cap on b is a bug
 * and aborts too. */
void alm_buf_put(struct alm_buf *b, const void *p, size_t n);
void alm_buf_putf(struct alm_buf *b, const char *fmt, ...) ALM_PRINTF(2, 3);
/* Hands the storage to the caller (who frees it) and resets the buffer. */
char *alm_buf_detach(struct alm_buf *b, size_t *len);
void alm_buf_release(struct alm_buf *b);
