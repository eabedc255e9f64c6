/* SPDX-License-Identifier: Apache-2.0 */
/* reconnect.h: the Redis and PostgreSQL connections a worker thread or the beat keeps,
 * made usable again before each turn. */
#pragma once
#include "compat.h"
#include "config.h"
#include "err.h"

#include <hiredis/hiredis.h>
#include <libpq-fe.h>

/* What alm_reconnect found down. */
enum alm_reconnect_down {
    ALM_RECONNECT_UP,         /* both connections usable */
    ALM_RECONNECT_REDIS_DOWN, /* Redis unreachable, or the setup on it failed */
    ALM_RECONNECT_DB_DOWN,    /* PostgreSQL unreachable */
    ALM_RECONNECT_SCHEMA_OLD, /* PostgreSQL answers, with a schema this binary cannot run on */
};
/* The connections a worker thread or the beat keeps, made usable before each turn: a
 * Redis context with an error and a PostgreSQL connection that is not reusable (broken,
 * mid-statement after a timeout, left in a transaction: alm_db_reusable) are closed,
 * never reused. What is missing is connected: Redis within redis_timeout_ms, then setup
 * on it when given, then PostgreSQL as app_name, whose schema must fit this binary.
 * Stops at the first failure, with eb saying why; *redis and *pg stay the caller's. */
enum alm_reconnect_down alm_reconnect(const struct alm_config *cfg, const char *app_name,
                                      int redis_timeout_ms,
                                      enum alm_err (*setup)(redisContext *c, struct alm_errbuf *eb),
                                      redisContext **redis, PGconn **pg, struct alm_errbuf *eb);
