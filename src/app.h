/* app.h: what every handler of a running service reaches through alm_req_app(). */
#pragma once
#include "compat.h"
#include "config.h"
#include "health.h"

struct alm_app {
    const char *svc; /* "api", "worker", "beat" */
    const struct alm_config *cfg;
    struct alm_health *health;
    int64_t start_ms; /* CLOCK_MONOTONIC */
};
