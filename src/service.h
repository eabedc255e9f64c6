/* SPDX-License-Identifier: Apache-2.0 */
/* service.h: what the worker and the beat share: readiness checks of their dependencies
 * and the probe listener (/health, /ready, /metrics) on ALMANAC_PROBE_LISTEN, which the
 * api has too. */
#pragma once
#include "compat.h"
#include "app.h"
#include "db.h"
#include "http_server.h"
#include "redis.h"

struct alm_service {
    struct alm_app app;
    struct alm_http *http; /* NULL when the probe address could not be used */
};

/* What worker and beat commands do first: answer --help with usage, refuse arguments,
 * start logging as svc, load and log the configuration, make an instance id (into id,
 * idlen bytes) and alm_service_init(). Returns -1 to go on, else the exit code. */
int alm_service_begin(struct alm_service *s, const char *svc, const char *usage, int argc,
                      char **argv, struct alm_config *cfg, char *id, size_t idlen);
/* Prepares s->app for service svc: dependency and schema checks, started. The caller
 * then starts its work and calls alm_service_run(). */
void alm_service_init(struct alm_service *s, const char *svc, const struct alm_config *cfg);
/* Hands the work's alive and metrics hooks (both called with arg; see struct alm_app) to
 * the probes, starts the probe listener (a failure is logged and the service runs
 * without it), then the signal handling. */
void alm_service_run(struct alm_service *s, bool (*alive)(void *arg, char *why, size_t n),
                     void (*metrics)(void *arg, struct alm_buf *out), void *arg);
/* Starts a probe listener on ALMANAC_PROBE_LISTEN serving routes (the probe routes) for
 * app, with small limits of its own, so that no load on another port starves it. NULL,
 * logged, when the address cannot be used. The api calls it too. */
struct alm_http *alm_service_listen_probes(struct alm_app *app, const struct alm_route *routes,
                                           size_t nroutes);
/* Blocks until told to stop (SIGTERM, SIGINT), then has /ready fail while the caller
 * stops its work. */
void alm_service_wait(struct alm_service *s);
/* Stops the listener and the checks. */
void alm_service_release(struct alm_service *s);

/* What alm_service_reconnect found down. */
enum alm_service_down {
    ALM_SERVICE_UP,         /* both connections usable */
    ALM_SERVICE_REDIS_DOWN, /* Redis unreachable, or the setup on it failed */
    ALM_SERVICE_DB_DOWN,    /* PostgreSQL unreachable */
    ALM_SERVICE_SCHEMA_OLD, /* PostgreSQL answers, with a schema this binary cannot run on */
};
/* The connections a worker thread or the beat keeps, made usable before each turn: a
 * Redis context with an error and a PostgreSQL connection that is not reusable (broken,
 * mid-statement after a timeout, left in a transaction: alm_db_reusable) are closed,
 * never reused. What is missing is connected: Redis within redis_timeout_ms, then setup
 * on it when given, then PostgreSQL as app_name, whose schema must fit this binary.
 * Stops at the first failure, with eb saying why; *redis and *pg stay the caller's. */
enum alm_service_down
alm_service_reconnect(const struct alm_config *cfg, const char *app_name, int redis_timeout_ms,
                      enum alm_err (*setup)(redisContext *c, struct alm_errbuf *eb),
                      redisContext **redis, PGconn **pg, struct alm_errbuf *eb);
