/* SPDX-License-Identifier: Apache-2.0 */
/* pool.h: a bounded pool of connections (PostgreSQL, Redis) shared by request threads.
 *
 * Connections are opened lazily, outside the lock, and a caller waits at most wait_ms
 * for a free one. A connection is used by one thread at a time; a connection that
 * comes back unusable (broken, or left inside a transaction by an error) is closed and
 * replaced on demand, so one failure never poisons later requests. */
#pragma once
#include "compat.h"
#include "err.h"

struct alm_pool_ops {
    /* Returns a new connection or NULL with eb filled. */
    void *(*connect)(void *ctx, struct alm_errbuf *eb);
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
