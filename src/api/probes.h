/* SPDX-License-Identifier: Apache-2.0 */
/* probes.h: GET /health, GET /ready and GET /metrics, shared by every service. */
#pragma once
#include "compat.h"
#include "http_server.h"

/* Liveness: no dependency, no shared lock; 200 while the process serves. */
void alm_api_health(struct alm_req *req);
/* Readiness from the cached or coalesced dependency checks (application/health+json). */
void alm_api_ready(struct alm_req *req);
/* Prometheus text exposition. */
void alm_api_metrics(struct alm_req *req);

#define ALM_HEALTH_ROUTES                                                                          \
    {"GET", "/health", alm_api_health, ALM_ROUTE_PROBE},                                           \
        {"GET", "/ready", alm_api_ready, ALM_ROUTE_PROBE},                                         \
    {                                                                                              \
        "GET", "/metrics", alm_api_metrics, ALM_ROUTE_PROBE                                        \
    }
