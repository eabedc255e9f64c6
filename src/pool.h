/* SPDX-License-Identifier: Apache-2.0 */
/* pool.h: a bounded pool of connections (PostgreSQL, Redis) shared by request threads.
 *
 * Connections are opened lazily, outside the lock, and a caller waits at most wait_ms
 * for a free one. A connection is used by one thread at a time; a connection that
 * comes back unusable (broken, or left inside a transaction by an error) is closed and
 * replaced on demand, so one failure never poisons later requests.
 *
 * Two ways to wait: alm_pool_get() blocks its thread; alm_pool_take() never blocks on a
 * busy pool but queues a struct alm_pool_wait (an HTTP request, whose thread serves
 * others meanwhile). Queued waiters come first: a connection given back, or a slot that
 * a closed or failed connection frees, goes to the oldest one. */
#pragma once
#include "compat.h"
#include "err.h"

struct alm_pool_ops {
    /* Returns a new connection within timeout_ms (those without a handshake ignore it)
     * or NULL with eb filled. */
    void *(*connect)(void *ctx, int timeout_ms, struct alm_errbuf *eb);
    void (*close)(void *conn);
    /* Whether a returned connection may be used again. */
    bool (*usable)(void *conn);
};

struct alm_pool;

/* ops and ctx are borrowed for the pool's life. */
struct alm_pool *alm_pool_new(const struct alm_pool_ops *ops, void *ctx, unsigned size,
                              int wait_ms);
void alm_pool_free(struct alm_pool *p);
/* A connection for the caller's exclusive use, or NULL with eb filled (ALM_ERR_UNAVAILABLE
 * when the pool stayed exhausted for wait_ms or connecting failed). */
void *alm_pool_get(struct alm_pool *p, struct alm_errbuf *eb);
/* Gives conn back (NULL is ignored); unusable ones are closed. */
void alm_pool_put(struct alm_pool *p, void *conn);

/* A waiter that holds no thread, owned by its caller; between alm_pool_take() and
 * alm_pool_wait_end() the pool may hand it a connection or a slot. */
struct alm_pool_wait {
    int64_t deadline_ms; /* alm_clock_ms(): connecting included */
    /* Both run under the pool's lock and must not call the pool: park when the waiter is
     * queued (before anyone can wake it), wake once when it got something or expired.
     * park NULL: the caller cannot wait, alm_pool_take() answers ALM_POOL_BUSY. */
    void (*park)(void *arg);
    void (*wake)(void *arg);
    void *arg;
    /* The pool's, under its lock: */
    struct alm_pool_wait *next;
    bool queued, expired, slot; /* slot: a free one, to connect within the time left */
    void *conn;                 /* handed over, not yet taken */
};

enum alm_pool_take {
    ALM_POOL_READY,   /* *conn is the caller's */
    ALM_POOL_FAILED,  /* eb says why: connecting failed, or the wait expired */
    ALM_POOL_WAITING, /* queued and parked: call again with the same w once woken */
    ALM_POOL_BUSY,    /* none free and w cannot wait (park NULL) */
};

/* A connection without blocking on a busy pool (connecting a free slot does take up to
 * the time left before w->deadline_ms). */
enum alm_pool_take alm_pool_take(struct alm_pool *p, struct alm_pool_wait *w, void **conn,
                                 struct alm_errbuf *eb);
/* Ends w's wait however far it got (the owner's request is over): out of the queue, and
 * a connection or slot handed to it and not taken goes back to the pool. */
void alm_pool_wait_end(struct alm_pool *p, struct alm_pool_wait *w);
/* Wakes the queued waiters past their deadline (called on a timer), or all of them, and
 * from then on queues none (shutdown: nothing may stay suspended); they then take
 * ALM_POOL_FAILED. */
void alm_pool_expire(struct alm_pool *p, bool all);
