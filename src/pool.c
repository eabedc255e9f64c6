/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "pool.h"
#include "clock.h"
#include "mem.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct alm_pool {
    const struct alm_pool_ops *ops;
    void *ctx;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    void **idle;
    unsigned nidle;
    unsigned open; /* idle + checked out + being opened */
    unsigned size;
    int wait_ms;
};

struct alm_pool *alm_pool_new(const struct alm_pool_ops *ops, void *ctx, unsigned size, int wait_ms)
{
    struct alm_pool *p = alm_xcalloc(1, sizeof(*p));

    p->ops = ops;
    p->ctx = ctx;
    p->size = size ? size : 1;
    p->wait_ms = wait_ms;
    p->idle = alm_xcalloc(p->size, sizeof(*p->idle));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cond, NULL);
    return p;
}

void alm_pool_free(struct alm_pool *p)
{
    if (!p)
        return;
    for (unsigned i = 0; i < p->nidle; i++)
        p->ops->close(p->idle[i]);
    free(p->idle);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

void *alm_pool_get(struct alm_pool *p, struct alm_errbuf *eb)
{
    int64_t until_ms = alm_clock_ms() + p->wait_ms;
    void *conn;

    pthread_mutex_lock(&p->mu);
    while (p->nidle == 0 && p->open >= p->size) {
        if (!alm_clock_wait_until(&p->cond, &p->mu, until_ms)) {
            pthread_mutex_unlock(&p->mu);
            alm_fail(eb, ALM_ERR_UNAVAILABLE, "all %u connections busy for %d ms", p->size,
                     p->wait_ms);
            return NULL;
        }
    }
    if (p->nidle > 0) {
        conn = p->idle[--p->nidle];
        pthread_mutex_unlock(&p->mu);
        return conn;
    }
    p->open++; /* reserve the slot, connect outside the lock */
    pthread_mutex_unlock(&p->mu);
    conn = p->ops->connect(p->ctx, eb);
    if (!conn) {
        pthread_mutex_lock(&p->mu);
        p->open--;
        pthread_cond_signal(&p->cond);
        pthread_mutex_unlock(&p->mu);
    }
    return conn;
}

void alm_pool_put(struct alm_pool *p, void *conn)
{
    bool usable;

    if (!conn)
        return;
    usable = p->ops->usable(conn);
    if (!usable)
        p->ops->close(conn);
    pthread_mutex_lock(&p->mu);
    if (usable)
        p->idle[p->nidle++] = conn;
    else
        p->open--;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->mu);
}
