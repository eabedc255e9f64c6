/* SPDX-License-Identifier: Apache-2.0 */
/* service.h: what the long-running commands (api, worker, beat) share: their start
 * (alm_cmd_start() as a service), readiness checks of their dependencies and the probe
 * listener (/health, /ready, /metrics) on ALMANAC_PROBE_LISTEN. The worker and the beat
 * take all of it through alm_service_begin() and alm_service_end(); the api, with a
 * listener and checks of its own, takes the parts. */
#pragma once
#include "compat.h"
#include "app.h"
#include "db.h"
#include "http_server.h"
#include "redis.h"

struct alm_service {
    struct alm_config cfg;
    char id[128]; /* this instance's: heartbeats, the beat's lease */
    struct alm_app app;
    struct alm_http *http; /* NULL when the probe address could not be used */
};

/* What a service command does first: alm_cmd_start() for service svc, which takes no
 * argument, into cfg. True to go on; false when the command ends with exit code *rc. */
bool alm_service_configure(const char *svc, const char *usage, int argc, char **argv,
                           struct alm_config *cfg, int *rc);
/* Fills app for service svc (name, configuration, start time) with a health object and
 * its readiness checks: PostgreSQL, Redis, Qdrant, the vector collection (the worker
 * creates it, the api checks it) and the schema. Not started, so that the caller can add
 * checks of its own before alm_health_start(). */
void alm_service_app_init(struct alm_app *app, const char *svc, const struct alm_config *cfg);
/* What worker and beat commands do first: alm_service_configure() into s->cfg, an
 * instance id into s->id, and s->app with its dependency and schema checks, started.
 * True to go on (the caller then starts its work and calls alm_service_run()); false
 * when the command ends with exit code *rc. */
bool alm_service_begin(struct alm_service *s, const char *svc, const char *usage, int argc,
                       char **argv, int *rc);
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
/* Once the caller's work is stopped: stops the listener and the checks, logs that the
 * service stopped and releases the configuration. Returns the exit code, ALM_EXIT_OK. */
int alm_service_end(struct alm_service *s);
