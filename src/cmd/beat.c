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
#include "scheduler.h"
#include "signals.h"
#include "version.h"

#include <stdio.h>

static const char usage[] =
    "usage: almanac beat\n"
    "\n"
    "Runs the periodic tasks: relay the outbox to the queue, queue stuck documents again,\n"
    "reconcile PostgreSQL with Qdrant, purge vectors of deleted documents, trim old dead\n"
    "letters. Any number may run: one holds the Redis lease and works, the others stand\n"
    "by and take over within ALMANAC_BEAT_LEASE_MS. Serves /health, /ready and /metrics on\n"
    "ALMANAC_PROBE_LISTEN and heartbeats into Redis. SIGTERM finishes the running task,\n"
    "releases the lease and exits 0.\n";

static const struct alm_route routes[] = {ALM_HEALTH_ROUTES};

int alm_cmd_beat(int argc, char **argv)
{
    struct alm_config cfg;
    struct alm_errbuf eb = {{0}};
    struct alm_app app = {.svc = "beat", .cfg = &cfg, .start_ms = alm_clock_ms()};
    struct alm_http *http;
    struct alm_scheduler *s;
    struct alm_heartbeat *hb;
    char id[128];
    int rc;

    if (alm_cmd_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return ALM_EXIT_OK;
    }
    if (argc > 1)
        return alm_cmd_usage_error("beat", "unexpected argument '%s'", argv[1]);
    alm_log_init("beat", ALM_LOG_INFO);
    rc = alm_config_load_or_report(&cfg, true);
    if (rc)
        return rc;
    alm_config_log(&cfg);
    alm_heartbeat_make_id("beat", id, sizeof(id));
    atomic_init(&app.schema_version, -1);
    app.health = alm_health_new((int)cfg.ready_timeout_ms, (int)cfg.ready_cache_ms, ALM_VERSION);
    alm_checks_add_dependencies(app.health, &cfg);
    alm_checks_add_schema(app.health, &cfg, &app.schema_version);
    alm_health_start(app.health);
    alm_metrics_init(routes, ALM_ARRAY_SIZE(routes));
    s = alm_scheduler_start(&cfg, id);
    app.alive = alm_scheduler_alive;
    app.alive_arg = s;
    app.metrics = alm_scheduler_metrics;
    app.metrics_arg = s;
    hb = alm_heartbeat_start(
        &cfg, id, &(struct alm_heartbeat_role){"beat", 1, alm_scheduler_snapshot, NULL, s});
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
        alm_warn("beat.probe_failed", "no probe listener; running without one", "{s:s}", "detail",
                 eb.msg);
    alm_signals_start();
    alm_info("beat.started", "beat running", "{s:s}", "id", id);
    alm_signals_wait(-1);
    alm_health_set_draining(app.health);
    alm_scheduler_stop(s);
    alm_heartbeat_stop(hb);
    alm_http_stop(http);
    alm_info("shutdown.done", "beat stopped", NULL);
    alm_health_free(app.health);
    alm_config_release(&cfg);
    return ALM_EXIT_OK;
}
