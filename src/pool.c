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
    struct alm_pool_wait *head, *tail; /* queued alm_pool_take() waiters, oldest first */
    bool stopping;                     /* alm_pool_expire(all): no waiter is queued any more */
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

/* Connects a slot reserved for the caller within left_ms; NULL with eb filled. */
static void *connect_within(struct alm_pool *p, int64_t left_ms, struct alm_errbuf *eb)
{
    if (left_ms <= 0) {
        alm_fail(eb, ALM_ERR_UNAVAILABLE, "no time left to connect within %d ms", p->wait_ms);
        return NULL;
    }
    return p->ops->connect(p->ctx, (int)left_ms, eb);
}

static void enqueue(struct alm_pool *p, struct alm_pool_wait *w)
{
    w->queued = true;
    w->next = NULL;
    if (p->tail)
        p->tail->next = w;
    else
        p->head = w;
    p->tail = w;
}

/* The oldest queued waiter, out of the queue; NULL when none. mu held. */
static struct alm_pool_wait *dequeue(struct alm_pool *p)
{
    struct alm_pool_wait *w = p->head;

    if (!w)
        return NULL;
    p->head = w->next;
    if (!p->head)
        p->tail = NULL;
    w->next = NULL;
    w->queued = false;
    return w;
}

/* Takes w out of the queue (its request is gone). mu held. */
static void unlink_waiter(struct alm_pool *p, const struct alm_pool_wait *w)
{
    struct alm_pool_wait **at = &p->head, *prev = NULL;

    while (*at && *at != w) {
        prev = *at;
        at = &(*at)->next;
    }
    if (!*at)
        return;
    *at = w->next;
    if (p->tail == w)
        p->tail = prev;
}

/* Wakes, expired, the waiters past their deadline (all of them with all), in queue
 * order; the others stay queued. The queue holds the requests waiting at once: a pass
 * over it is cheap. mu held. */
static void expire_waiters(struct alm_pool *p, bool all)
{
    int64_t now = alm_clock_ms();
    struct alm_pool_wait *w = p->head, *next;

    p->head = p->tail = NULL;
    for (; w; w = next) {
        next = w->next;
        if (!all && now < w->deadline_ms) {
            enqueue(p, w);
            continue;
        }
        w->next = NULL;
        w->queued = false;
        w->expired = true;
        w->wake(w->arg);
    }
}

/* A connection that can serve again: to the oldest waiter, else idle. mu held. */
static void give_conn(struct alm_pool *p, void *conn)
{
    struct alm_pool_wait *w = dequeue(p);

    if (w) {
        w->conn = conn;
        w->wake(w->arg);
        return;
    }
    p->idle[p->nidle++] = conn;
    pthread_cond_signal(&p->cond);
}

/* A slot whose connection was closed or never opened: the oldest waiter with time left
 * connects it within that time (those past their deadline expire, as the timer would
 * have them), else it is free. mu held. */
static void give_slot(struct alm_pool *p)
{
    int64_t now = alm_clock_ms();
    struct alm_pool_wait *w;

    while ((w = dequeue(p))) {
        if (now < w->deadline_ms) {
            w->slot = true;
            w->wake(w->arg);
            return;
        }
        w->expired = true;
        w->wake(w->arg);
    }
    p->open--;
    pthread_cond_signal(&p->cond);
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
    conn = connect_within(p, until_ms - alm_clock_ms(), eb);
    if (!conn) {
        pthread_mutex_lock(&p->mu);
        give_slot(p);
        pthread_mutex_unlock(&p->mu);
    }
    return conn;
}

/* What w can have now without waiting, under mu: READY with *conn, a slot to connect
 * (w->slot), FAILED (expired), BUSY or WAITING (queued and parked). */
static enum alm_pool_take take_locked(struct alm_pool *p, struct alm_pool_wait *w, void **conn)
{
    if (w->conn) {
        *conn = w->conn;
        w->conn = NULL;
        return ALM_POOL_READY;
    }
    if (w->slot)
        return ALM_POOL_READY; /* *conn still NULL: connect it */
    if (w->expired)
        return ALM_POOL_FAILED;
    if (p->nidle > 0) {
        *conn = p->idle[--p->nidle];
        return ALM_POOL_READY;
    }
    if (p->open < p->size) {
        p->open++;
        w->slot = true;
        return ALM_POOL_READY;
    }
    if (!w->park)
        return ALM_POOL_BUSY;
    if (p->stopping || alm_clock_ms() >= w->deadline_ms)
        return ALM_POOL_FAILED;
    enqueue(p, w);
    w->park(w->arg);
    return ALM_POOL_WAITING;
}

enum alm_pool_take alm_pool_take(struct alm_pool *p, struct alm_pool_wait *w, void **conn,
                                 struct alm_errbuf *eb)
{
    enum alm_pool_take got;
    bool slot;

    *conn = NULL;
    pthread_mutex_lock(&p->mu);
    got = take_locked(p, w, conn);
    slot = got == ALM_POOL_READY && !*conn;
    w->slot = false; /* a slot is now the caller's to connect or give back */
    w->expired = false;
    pthread_mutex_unlock(&p->mu);
    if (got == ALM_POOL_FAILED)
        alm_fail(eb, ALM_ERR_UNAVAILABLE, "all %u connections busy for %d ms", p->size, p->wait_ms);
    if (!slot)
        return got;
    *conn = connect_within(p, w->deadline_ms - alm_clock_ms(), eb);
    if (*conn)
        return ALM_POOL_READY;
    pthread_mutex_lock(&p->mu);
    give_slot(p);
    pthread_mutex_unlock(&p->mu);
    return ALM_POOL_FAILED;
}

void alm_pool_wait_end(struct alm_pool *p, struct alm_pool_wait *w)
{
    pthread_mutex_lock(&p->mu);
    if (w->queued) {
        unlink_waiter(p, w);
        w->next = NULL;
        w->queued = false;
    }
    if (w->conn)
        give_conn(p, w->conn);
    if (w->slot)
        give_slot(p);
    w->conn = NULL;
    w->slot = false;
    pthread_mutex_unlock(&p->mu);
}

void alm_pool_expire(struct alm_pool *p, bool all)
{
    pthread_mutex_lock(&p->mu);
    p->stopping = p->stopping || all;
    expire_waiters(p, all);
    pthread_mutex_unlock(&p->mu);
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
        give_conn(p, conn);
    else
        give_slot(p);
    pthread_mutex_unlock(&p->mu);
}
