/* SPDX-License-Identifier: Apache-2.0 */
/* redis.h: Redis connections through hiredis, with socket-level deadlines.
 *
 * ALMANAC_REDIS_URL is redis://[[user]:password@]host[:port][/db]; ALMANAC_REDIS_PASSWORD
 * overrides the password. The connect timeout and the read/write timeouts are set on
 * the socket, so a frozen server costs at most the deadline. */
#pragma once
#include "compat.h"
#include "config.h"
#include "err.h"
#include "pool.h"

#include <hiredis/hiredis.h>

/* Returns a new authenticated context on the configured database (redisFree it), or NULL
 * with eb filled. */
redisContext *alm_redis_connect(const struct alm_config *cfg, int timeout_ms,
                                struct alm_errbuf *eb);
/* PING; on error the context is unusable: free it. */
enum alm_err alm_redis_ping(redisContext *c, int timeout_ms, struct alm_errbuf *eb) ALM_MUSTCHECK;
/* Classifies a failed context's error into eb; returns ALM_ERR_TIMEOUT or UNAVAILABLE. */
enum alm_err alm_redis_error(const redisContext *c, int timeout_ms, struct alm_errbuf *eb);

/* Pool operations for struct alm_pool (pool.h): ctx is the struct alm_config. */
extern const struct alm_pool_ops alm_redis_pool_ops;
