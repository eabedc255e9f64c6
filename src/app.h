/* SPDX-License-Identifier: Apache-2.0 */
/* app.h: what every handler of a running service reaches through alm_req_app(). */
#pragma once
#include "compat.h"
#include "config.h"
#include "health.h"
#include "outbox.h"
#include "pool.h"

#include <stdatomic.h>

struct alm_app {
    const char *svc; /* "api", "worker", "beat" */
    const struct alm_config *cfg;
    struct alm_health *health;
    int64_t start_ms; /* CLOCK_MONOTONIC */
    /* The api's request resources (NULL in other services). */
    struct alm_pool *db;
    struct alm_pool *redis;
    struct alm_relayer *relayer;
    struct alm_pool *embedders; /* for queries; NULL without Qdrant */
    struct alm_pool *qdrants;
    /* Liveness beyond "the process serves HTTP": a worker's or beat's loop progress.
     * NULL means always alive. Must not block or take locks held across I/O. */
    bool (*alive)(void *arg, char *why, size_t n);
    void *alive_arg;
    /* More Prometheus text for /metrics (a worker's job counters); may be NULL. */
    void (*metrics)(void *arg, struct alm_buf *out);
    void *metrics_arg;
    /* Applied schema version as last seen by the schema check; -1 before the first. */
    atomic_int schema_version;
};
