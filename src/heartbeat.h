/* SPDX-License-Identifier: Apache-2.0 */
/* heartbeat.h: what workers and beats tell the world they are doing.
 *
 * A heartbeat thread writes almanac:heartbeat:<id> (JSON: id, role, host, pid, start
 * time, last seen, concurrency and the role's own fields such as jobs in flight) every
 * ALMANAC_HEARTBEAT_MS, with a time-to-live of three periods, so a dead process
 * disappears by itself. The same thread runs the role's periodic duty (a worker renews
 * its in-flight jobs so that nobody reclaims them). The api reads them all for
 * GET /health/workers. */
#pragma once
#include "compat.h"
#include "config.h"
#include "err.h"

#include <hiredis/hiredis.h>
#include <jansson.h>

struct alm_heartbeat_role {
    const char *role; /* "worker" or "beat" */
    int concurrency;
    /* Returns a new object of the role's fields, merged into the heartbeat. */
    json_t *(*snapshot)(void *arg);
    /* Called each period with the heartbeat's own connection (may be NULL). */
    void (*tick)(void *arg, redisContext *c);
    void *arg;
};

struct alm_heartbeat;

/* A unique id for this process: "<role>-<host>-<pid>-<random>". */
void alm_heartbeat_make_id(const char *role, char *out, size_t n);
/* Starts beating under id (copied); role is copied, its arg borrowed until stop. */
struct alm_heartbeat *alm_heartbeat_start(const struct alm_config *cfg, const char *id,
                                          const struct alm_heartbeat_role *role);
/* Stops and deletes the record, so the process leaves the list at once. */
void alm_heartbeat_stop(struct alm_heartbeat *hb);

/* Reads every live heartbeat: *out is a new array of objects, each with "stale" set when
 * its last beat is older than two periods. */
enum alm_err alm_heartbeat_list(redisContext *c, long period_ms, json_t **out,
                                struct alm_errbuf *eb) ALM_MUSTCHECK;
