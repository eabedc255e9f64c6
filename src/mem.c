/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "mem.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

ALM_NORETURN static void oom(size_t n)
{
    char line[128];
    int len = snprintf(line, sizeof(line),
                       "{\"level\":\"fatal\",\"event\":\"mem.oom\",\"msg\":\"out of memory\","
                       "\"bytes\":%zu}\n",
                       n);
    if (len > 0 && write(STDOUT_FILENO, line, (size_t)len) < 0) {
        /* nothing left to report with */
    }
    abort();
}

void alm_xthread_create(pthread_t *t, void *(*fn)(void *), void *arg, const char *name)
{
    int rc = pthread_create(t, NULL, fn, arg);
    char line[160];
    int len;

    if (rc == 0) {
        pthread_setname_np(*t, name);
        return;
    }
    len = snprintf(line, sizeof(line),
                   "{\"level\":\"fatal\",\"event\":\"thread.create_failed\",\"msg\":\"cannot "
                   "start a thread\",\"thread\":\"%s\",\"errno\":%d}\n",
                   name, rc);
    if (len > 0 && write(STDOUT_FILENO, line, (size_t)len) < 0) {
        /* nothing left to report with */
    }
    abort();
}

void *alm_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *alm_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *alm_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *alm_xstrdup(const char *s)
{
    return alm_xstrndup(s, strlen(s));
}

char *alm_xstrndup(const char *s, size_t n)
{
    char *p = alm_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* vasprintf that aborts as alm_xmalloc does; *len is the string's length. */
static char *xvasprintf(const char *fmt, va_list ap, size_t *len)
{
    char *s;
    int n = vasprintf(&s, fmt, ap);

    if (n < 0)
        oom(0);
    *len = (size_t)n;
    return s;
}

char *alm_xasprintf(const char *fmt, ...)
{
    va_list ap;
    size_t n;
    char *s;

    va_start(ap, fmt);
    s = xvasprintf(fmt, ap, &n);
    va_end(ap);
    return s;
}

static enum alm_err reserve(struct alm_buf *b, size_t extra)
{
    size_t want;

    if (b->cap && (extra > b->cap || b->len > b->cap - extra))
        return ALM_ERR_TOO_LARGE;
    want = b->len + extra + 1;
    if (want <= b->alloc)
        return ALM_OK;
    if (b->alloc * 2 > want)
        want = b->alloc * 2;
    if (want < 64)
        want = 64;
    b->data = alm_xrealloc(b->data, want);
    b->alloc = want;
    return ALM_OK;
}

enum alm_err alm_buf_append(struct alm_buf *b, const void *p, size_t n)
{
    enum alm_err err = reserve(b, n);
    if (err)
        return err;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return ALM_OK;
}

enum alm_err alm_buf_appendf(struct alm_buf *b, const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;
    enum alm_err err;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        return ALM_ERR_NOMEM;
    err = alm_buf_append(b, s, (size_t)n);
    free(s);
    return err;
}

void alm_buf_put(struct alm_buf *b, const void *p, size_t n)
{
    if (b->cap || alm_buf_append(b, p, n) != ALM_OK)
        abort(); /* a capped buffer: its caller must handle ALM_ERR_TOO_LARGE */
}

void alm_buf_putf(struct alm_buf *b, const char *fmt, ...)
{
    va_list ap;
    size_t n;
    char *s;

    va_start(ap, fmt);
    s = xvasprintf(fmt, ap, &n);
    va_end(ap);
    alm_buf_put(b, s, n);
    free(s);
}

char *alm_buf_detach(struct alm_buf *b, size_t *len)
{
    char *p = b->data;

    if (!p)
        p = alm_xstrdup("");
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->alloc = 0;
    return p;
}

void alm_buf_release(struct alm_buf *b)
{
    ALM_FREE(b->data);
    b->len = b->alloc = 0;
}
