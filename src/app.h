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
    /* Applied schema version as last seen by the schema check; -1 before the first. */
    atomic_int schema_version;
};
