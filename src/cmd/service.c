/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "service.h"
#include "api/probes.h"
#include "checks.h"
#include "cmd.h"
#include "heartbeat.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "schema.h"
#include "signals.h"
#include "version.h"

#include <stdio.h>
#include <string.h>

static const struct alm_route probe_routes[] = {ALM_HEALTH_ROUTES};

void alm_service_app_init(struct alm_app *app, const char *svc, const struct alm_config *cfg)
{
    memset(app, 0, sizeof(*app));
    app->svc = svc;
    app->cfg = cfg;
    app->start_ms = alm_clock_ms();
    atomic_init(&app->schema_version, -1);
    app->health = alm_health_new((int)cfg->ready_timeout_ms, (int)cfg->ready_cache_ms, ALM_VERSION);
    alm_checks_add_dependencies(app->health, cfg);
    /* The worker writes the vectors, so it is the one that creates their collection; the
     * api searches them, so it only checks that the collection is there. */
    if (strcmp(svc, "worker") == 0 || strcmp(svc, "api") == 0)
        alm_checks_add_collection(app->health, cfg, strcmp(svc, "worker") == 0);
    alm_checks_add_schema(app->health, cfg, &app->schema_version);
}

struct alm_http *alm_service_listen_probes(struct alm_app *app, const struct alm_route *routes,
                                           size_t nroutes)
{
    struct alm_errbuf eb = {{0}};
    /* Probes only: a couple of threads, a short head deadline, bodies not taken. Only
     * the orchestrator should reach this port; it is not published. */
    struct alm_http_opts opts = {.listen = app->cfg->probe_listen,
                                 .threads = 2,
                                 .max_connections = 64,
                                 .timeout_s = 10,
                                 .head_timeout_ms = 3000,
                                 .max_body = 4096,
                                 .body_budget = 64 * 1024,
                                 .drain_bytes = 64 * 1024,
                                 .drain_ms = 1000,
                                 .routes = routes,
                                 .nroutes = nroutes,
                                 .app = app,
                                 .observe = alm_metrics_observe_http,
                                 .refused = alm_metrics_observe_refusal};
    struct alm_http *http = alm_http_start(&opts, &eb);

    if (!http)
        alm_warn("probe.failed", "no probe listener; running without one", "{s:s}", "detail",
                 eb.msg);
    else
        alm_info("probe.listening", "probe listener up", "{s:s, s:i}", "listen",
                 app->cfg->probe_listen, "port", alm_http_port(http));
    return http;
}

void alm_service_run(struct alm_service *s, bool (*alive)(void *arg, char *why, size_t n),
                     void (*metrics)(void *arg, struct alm_buf *out), void *arg)
{
    s->app.alive = alive;
    s->app.alive_arg = arg;
    s->app.metrics = metrics;
    s->app.metrics_arg = arg;
    s->http = alm_service_listen_probes(&s->app, probe_routes, ALM_ARRAY_SIZE(probe_routes));
    alm_signals_start();
}

void alm_service_wait(struct alm_service *s)
{
    alm_signals_wait(-1);
    alm_health_set_draining(s->app.health);
}

int alm_service_end(struct alm_service *s)
{
    char msg[64];

    alm_http_stop(s->http);
    alm_health_free(s->app.health);
    snprintf(msg, sizeof(msg), "%s stopped", s->app.svc);
    alm_info("shutdown.done", msg, NULL);
    alm_config_release(&s->cfg);
    return ALM_EXIT_OK;
}

bool alm_service_configure(const char *svc, const char *usage, int argc, char **argv,
                           struct alm_config *cfg, int *rc)
{
    struct alm_cmd_start start = {
        .name = svc, .usage = usage, .cfg = cfg, .service = true, .log_level = ALM_LOG_INFO};

    return alm_cmd_start(&start, argc, argv, rc);
}

bool alm_service_begin(struct alm_service *s, const char *svc, const char *usage, int argc,
                       char **argv, int *rc)
{
    memset(s, 0, sizeof(*s));
    if (!alm_service_configure(svc, usage, argc, argv, &s->cfg, rc))
        return false;
    alm_heartbeat_make_id(svc, s->id, sizeof(s->id));
    alm_service_app_init(&s->app, svc, &s->cfg);
    alm_health_start(s->app.health);
    alm_metrics_init(probe_routes, ALM_ARRAY_SIZE(probe_routes));
    return true;
}
