/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "api/handlers.h"
#include "app.h"
#include "db.h"
#include "embed.h"
#include "search.h"
#include "redis.h"
#include "clock.h"
#include "cmd.h"
#include "http_server.h"
#include "llm.h"
#include "log.h"
#include "metrics.h"
#include "service.h"
#include "signals.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

static const char usage[] =
    "usage: almanac api\n"
    "\n"
    "Serves the HTTP API on ALMANAC_LISTEN: /health (liveness), /ready (readiness of\n"
    "PostgreSQL, Redis and Qdrant), /metrics (Prometheus); the same three also on\n"
    "ALMANAC_PROBE_LISTEN, for the orchestrator's probes. Settings come from the\n"
    "environment ('almanac check-config --list'). SIGTERM drains: /ready fails at once,\n"
    "serving goes on for ALMANAC_SHUTDOWN_DELAY_MS, then in-flight requests finish within\n"
    "ALMANAC_SHUTDOWN_TIMEOUT_MS; a second SIGTERM exits at once.\n";

/* Every connection is a descriptor: take the hard limit of open files, and say when even
 * that cannot hold the connection limit (the kernel would refuse accept() instead of us
 * answering 503). */
static void raise_nofile(const struct alm_config *cfg)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)cfg->http_max_connections * 2 + 256;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            alm_warn("api.nofile", "cannot raise the open file limit", "{s:s}", "detail",
                     alm_strerror(errno));
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want)
        alm_warn("api.nofile", "open file limit below what the connection limit needs",
                 "{s:I, s:I}", "limit", (json_int_t)rl.rlim_cur, "needed", (json_int_t)want);
}

static void no_op(void *arg)
{
    (void)arg;
}

/* Fails readiness, keeps serving for the delay, then lets in-flight requests finish. */
static void drain(struct alm_http *http, struct alm_health *health, const struct alm_config *cfg)
{
    int64_t deadline;

    alm_health_set_draining(health);
    alm_info("shutdown.draining", "readiness fails now; still serving during the delay", "{s:i}",
             "delay_ms", (json_int_t)cfg->shutdown_delay_ms);
    alm_clock_sleep_ms(cfg->shutdown_delay_ms);
    alm_http_quiesce(http);
    deadline = alm_clock_ms() + cfg->shutdown_timeout_ms;
    while (alm_http_inflight(http) > 0 && alm_clock_ms() < deadline)
        alm_clock_sleep_ms(10);
    if (alm_http_inflight(http) > 0)
        alm_warn("shutdown.timeout", "in-flight requests cut off at the shutdown timeout", "{s:i}",
                 "inflight", (json_int_t)alm_http_inflight(http));
}

/* Says in the log and in /ready which search the api offers: keyword only without
 * Qdrant, and whether vectors are semantic (an embeddings model) or lexical (hashing). */
static void describe_search(const struct alm_config *cfg, struct alm_health *health)
{
    struct alm_embedder *e = alm_embedder_new(cfg);
    char note[256];

    if (!cfg->qdrant_url)
        snprintf(note, sizeof(note), "search: keyword only (Qdrant not configured)");
    else
        snprintf(note, sizeof(note), "search: hybrid, embedder %s%s", alm_embedder_describe(e),
                 strcmp(alm_embedder_kind(e), "hashing") == 0
                     ? " - lexical, not semantic: set ALMANAC_EMBEDDINGS_URL for semantic search"
                     : "");
    alm_health_add_note(health, note);
    alm_info("search.mode", "search configured", "{s:s}", "detail", note);
    alm_embedder_free(e);
}

int alm_cmd_api(int argc, char **argv)
{
    struct alm_config cfg = {0};
    struct alm_errbuf eb = {{0}};
    struct alm_app app;
    struct alm_http *http, *probes = NULL;
    const struct alm_route *routes;
    size_t nroutes;
    int rc;

    if (!alm_service_configure("api", usage, argc, argv, &cfg, &rc))
        return rc;
    raise_nofile(&cfg);
    routes = alm_api_routes(&nroutes);
    alm_service_app_init(&app, "api", &cfg);
    alm_llm_add_check(app.health, &cfg);
    alm_health_start(app.health);
    alm_metrics_init(routes, nroutes);
    app.db =
        alm_pool_new(&alm_db_pool_ops, &cfg, (unsigned)cfg.db_pool_size, (int)cfg.db_timeout_ms);
    app.redis = alm_pool_new(&alm_redis_pool_ops, &cfg, (unsigned)cfg.db_pool_size,
                             (int)cfg.ready_timeout_ms);
    app.relayer = alm_relayer_start(&cfg);
    app.metrics = alm_api_queue_metrics;
    app.metrics_arg = &app;
    if (cfg.qdrant_url) {
        app.embedders = alm_pool_new(&alm_search_embedder_pool_ops, &cfg,
                                     (unsigned)cfg.db_pool_size, (int)cfg.search_timeout_ms);
        app.qdrants = alm_pool_new(&alm_search_qdrant_pool_ops, &cfg, (unsigned)cfg.db_pool_size,
                                   (int)cfg.search_timeout_ms);
    }
    describe_search(&cfg, app.health);
    struct alm_http_opts opts = {.listen = cfg.listen,
                                 .threads = (unsigned)cfg.http_threads,
                                 .max_connections = (unsigned)cfg.http_max_connections,
                                 .max_per_address = (unsigned)cfg.http_max_per_address,
                                 .timeout_s = (unsigned)cfg.http_timeout_s,
                                 .head_timeout_ms = (unsigned)cfg.http_head_timeout_ms,
                                 .min_body_rate = (size_t)cfg.http_min_body_rate,
                                 .max_body = (size_t)cfg.max_upload_bytes + 64 * 1024,
                                 .body_budget = (size_t)cfg.http_body_budget,
                                 .drain_bytes = (size_t)cfg.http_drain_bytes,
                                 .drain_ms = (unsigned)cfg.http_drain_ms,
                                 .routes = routes,
                                 .nroutes = nroutes,
                                 .app = &app,
                                 .observe = alm_metrics_observe_http,
                                 .refused = alm_metrics_observe_refusal,
                                 .admit = alm_api_admit,
                                 .tick = alm_api_tick};
    /* The probe listener serves the route table's leading /health, /ready and /metrics
     * rows, so that its requests count under the same metric rows. */
    probes = alm_service_listen_probes(&app, routes, ALM_API_PROBE_ROUTES);
    http = alm_http_start(&opts, &eb);
    if (!http) {
        alm_log(ALM_LOG_FATAL, "api.start_failed", "cannot start the http server", "{s:s}",
                "detail", eb.msg);
        rc = ALM_EXIT_FAILURE;
        goto out;
    }
    alm_signals_start();
    alm_info("api.started", "api listening", "{s:s, s:i, s:s}", "listen", cfg.listen, "port",
             alm_http_port(http), "env", cfg.env);
    (void)alm_health_wait(app.health, no_op, NULL); /* log dependency state early */
    alm_signals_wait(-1);
    drain(http, app.health, &cfg);
    alm_pool_expire(app.db, true); /* no request may stay suspended when the server stops */
    alm_api_answers_shutdown();
    alm_http_stop(http);
    alm_info("shutdown.done", "api stopped", NULL);
out:
    alm_http_stop(probes);
    alm_relayer_stop(app.relayer);
    alm_pool_free(app.db);
    alm_pool_free(app.redis);
    alm_pool_free(app.embedders);
    alm_pool_free(app.qdrants);
    alm_health_free(app.health);
    alm_config_release(&cfg);
    return rc;
}
