#include "compat.h"
#include "api_health.h"
#include "app.h"
#include "checks.h"
#include "clock.h"
#include "cmd.h"
#include "heartbeat.h"
#include "http_server.h"
#include "log.h"
#include "metrics.h"
#include "signals.h"
#include "version.h"
#include "worker.h"

#include <stdio.h>
#include <unistd.h>

static const char usage[] =
    "usage: almanac worker\n"
    "\n"
    "Runs ingestion and maintenance jobs from the Redis queues with\n"
    "ALMANAC_WORKER_CONCURRENCY threads; delivery is at least once and jobs are\n"
    "idempotent. Serves /health (fails when a job thread stops making progress), /ready\n"
    "and /metrics on ALMANAC_PROBE_LISTEN and heartbeats into Redis. SIGTERM stops taking\n"
    "jobs; running ones get ALMANAC_SHUTDOWN_TIMEOUT_MS to finish, else they stay\n"
    "unacknowledged for another worker to reclaim; exit 0 either way.\n";

static const struct alm_route routes[] = {ALM_HEALTH_ROUTES};

int alm_cmd_worker(int argc, char **argv)
{
    struct alm_config cfg;
    struct alm_errbuf eb = {{0}};
    struct alm_app app = {.svc = "worker", .cfg = &cfg, .start_ms = alm_clock_ms()};
    struct alm_http *http = NULL;
    struct alm_worker *w;
    struct alm_heartbeat *hb;
    char id[128];
    int rc;

    if (alm_cmd_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return ALM_EXIT_OK;
    }
    if (argc > 1)
        return alm_cmd_usage_error("worker", "unexpected argument '%s'", argv[1]);
    alm_log_init("worker", ALM_LOG_INFO);
    rc = alm_config_load_or_report(&cfg, true);
    if (rc)
        return rc;
    alm_config_log(&cfg);
    alm_heartbeat_make_id("worker", id, sizeof(id));
    atomic_init(&app.schema_version, -1);
    app.health = alm_health_new((int)cfg.ready_timeout_ms, (int)cfg.ready_cache_ms, ALM_VERSION);
    alm_checks_add_dependencies(app.health, &cfg);
    alm_checks_add_schema(app.health, &cfg, &app.schema_version);
    alm_health_start(app.health);
    alm_metrics_init(routes, ALM_ARRAY_SIZE(routes));
    w = alm_worker_start(&cfg, id);
    app.alive = alm_worker_alive;
    app.alive_arg = w;
    app.metrics = alm_worker_metrics;
    app.metrics_arg = w;
    hb =
        alm_heartbeat_start(&cfg, id,
                            &(struct alm_heartbeat_role){"worker", (int)cfg.worker_concurrency,
                                                         alm_worker_snapshot, alm_worker_renew, w});
    struct alm_http_opts opts = {.listen = cfg.probe_listen,
                                 .threads = 2,
                                 .max_connections = 64,
                                 .timeout_s = 10,
                                 .max_body = 4096,
                                 .routes = routes,
                                 .nroutes = ALM_ARRAY_SIZE(routes),
                                 .app = &app,
                                 .observe = alm_metrics_observe_http};
    http = alm_http_start(&opts, &eb);
    if (!http)
        alm_warn("worker.probe_failed", "no probe listener; running without one", "{s:s}", "detail",
                 eb.msg);
    alm_signals_start();
    alm_info("worker.started", "worker running", "{s:s, s:i}", "id", id, "threads",
             (int)cfg.worker_concurrency);
    alm_signals_wait(-1);
    alm_health_set_draining(app.health);
    if (!alm_worker_stop(w, cfg.shutdown_timeout_ms)) {
        /* Their jobs stay pending; another worker reclaims them after the idle time. */
        alm_warn("shutdown.timeout", "jobs still running at the deadline are left for others",
                 NULL);
        alm_heartbeat_stop(hb);
        _exit(ALM_EXIT_OK);
    }
    alm_heartbeat_stop(hb);
    alm_http_stop(http);
    alm_info("shutdown.done", "worker stopped", NULL);
    alm_health_free(app.health);
    alm_config_release(&cfg);
    return ALM_EXIT_OK;
}
