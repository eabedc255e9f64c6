#include "compat.h"
#include "clock.h"
#include "cmd.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "outbox.h"
#include "qdrant.h"
#include "redis.h"
#include "reindex.h"
#include "schema.h"
#include "signals.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
    "usage: almanac reindex [--kb ID | --missing | --unfinished] [--rate DOCS_PER_S]\n"
    "                       [--no-wait]\n"
    "\n"
    "Queues every document (or those of one knowledge base, those whose vectors in Qdrant\n"
    "do not match their chunks, or those left pending or processing, as after a restore)\n"
    "for ingestion again, at most DOCS_PER_S a second (default 20), then waits until the\n"
    "workers have processed them, printing progress to stderr. A run that is stopped\n"
    "(Ctrl-C, a crash) resumes where it stopped when started again with the same scope.\n"
    "--no-wait returns once everything is queued. The operations view shows the latest\n"
    "runs (GET /api/v1/admin/reindex). Exits 0 when every queued document is ready, 1 on\n"
    "failure or when some failed, 64 on bad usage.\n";

struct args {
    enum alm_reindex_scope scope;
    int64_t kb;
    double rate;
    bool wait;
};

static int parse(int argc, char **argv, struct args *a)
{
    int scopes = 0;

    *a = (struct args){.scope = ALM_REINDEX_ALL, .rate = 20, .wait = true};
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (strcmp(argv[i], "--kb") == 0 && i + 1 < argc) {
            a->kb = strtoll(argv[++i], &end, 10);
            if (*end || a->kb < 1)
                return alm_cmd_usage_error("reindex", "--kb needs a knowledge base id");
            a->scope = ALM_REINDEX_KB;
            scopes++;
        } else if (strcmp(argv[i], "--missing") == 0) {
            a->scope = ALM_REINDEX_MISSING;
            scopes++;
        } else if (strcmp(argv[i], "--unfinished") == 0) {
            a->scope = ALM_REINDEX_UNFINISHED;
            scopes++;
        } else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc) {
            a->rate = strtod(argv[++i], &end);
            if (*end || !(a->rate >= 0.1 && a->rate <= 10000))
                return alm_cmd_usage_error("reindex", "--rate must be 0.1..10000");
        } else if (strcmp(argv[i], "--no-wait") == 0) {
            a->wait = false;
        } else {
            return alm_cmd_usage_error("reindex", "unknown argument '%s'", argv[i]);
        }
    }
    if (scopes > 1)
        return alm_cmd_usage_error("reindex",
                                   "--kb, --missing and --unfinished exclude each other");
    return ALM_EXIT_OK;
}

static void progress(const struct alm_reindex_run *r, const char *phase)
{
    fprintf(stderr,
            "reindex %" PRId64 " (%s): %s; examined %" PRId64 "/%" PRId64 ", queued %" PRId64
            ", ready %" PRId64 ", failed %" PRId64 "\n",
            r->id, alm_reindex_scope_name(r->scope), phase, r->examined, r->total, r->queued,
            r->ready, r->failed);
}

/* Moves the queued jobs to Redis now rather than at the beat's next pass; when Redis is
 * down they wait in the outbox for the api's or the beat's relay. */
static void relay(const struct alm_config *cfg, PGconn *pg, redisContext **redis)
{
    struct alm_errbuf eb = {{0}};
    int relayed = 0;

    if (!*redis)
        *redis = alm_redis_connect(cfg, 5000, &eb);
    if (!*redis)
        return;
    do {
        if (alm_outbox_relay(pg, *redis, 10000, 200, NULL, NULL, &relayed, &eb)) {
            redisFree(*redis);
            *redis = NULL;
            return;
        }
    } while (relayed == 200);
}

static void sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int run(const struct alm_config *cfg, PGconn *pg, const struct args *a)
{
    struct alm_errbuf eb = {{0}};
    struct alm_reindex_run r;
    struct alm_qdrant *q = cfg->qdrant_url && cfg->qdrant_url[0] ? alm_qdrant_new(cfg) : NULL;
    redisContext *redis = NULL;
    int batch = a->rate >= 100 ? 100 : a->rate < 1 ? 1 : (int)a->rate;
    int64_t per_batch_ms = (int64_t)(1000.0 * batch / a->rate), last_print = 0;
    int rc = ALM_EXIT_OK;

    if (alm_reindex_open(pg, 10000, a->scope, a->kb, &r, &eb))
        goto fail;
    progress(&r, r.resumed ? "resumed" : "started");
    while (!r.finished) {
        int64_t t0 = alm_clock_ms();
        if (alm_reindex_step(pg, 30000, q, cfg->qdrant_collection, batch, &r, &eb))
            goto fail;
        relay(cfg, pg, &redis);
        if (alm_clock_ms() - last_print >= 2000 || r.finished) {
            last_print = alm_clock_ms();
            progress(&r, "queuing");
        }
        if (!r.finished)
            sleep_ms(per_batch_ms - (alm_clock_ms() - t0));
    }
    while (a->wait) {
        if (alm_reindex_refresh(pg, 10000, &r, &eb))
            goto fail;
        if (r.ready + r.failed >= r.queued)
            break;
        if (alm_clock_ms() - last_print >= 2000) {
            last_print = alm_clock_ms();
            progress(&r, "indexing");
        }
        relay(cfg, pg, &redis); /* rows left behind while Redis was down */
        sleep_ms(500);
    }
    if (alm_reindex_refresh(pg, 10000, &r, &eb))
        goto fail;
    progress(&r, a->wait ? "done" : "queued");
    printf("{\"run\":%" PRId64 ",\"scope\":\"%s\",\"examined\":%" PRId64 ",\"queued\":%" PRId64
           ",\"ready\":%" PRId64 ",\"failed\":%" PRId64 "}\n",
           r.id, alm_reindex_scope_name(r.scope), r.examined, r.queued, r.ready, r.failed);
    if (a->wait && r.failed > 0)
        rc = ALM_EXIT_FAILURE;
    goto out;
fail:
    fprintf(stderr, "almanac: reindex: %s\n", eb.msg);
    rc = ALM_EXIT_FAILURE;
out:
    if (redis)
        redisFree(redis);
    alm_qdrant_free(q);
    return rc;
}

int alm_cmd_reindex(int argc, char **argv)
{
    struct alm_config cfg;
    struct alm_errbuf eb = {{0}};
    struct args a;
    PGconn *pg;
    int rc;

    if (alm_cmd_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return ALM_EXIT_OK;
    }
    rc = parse(argc, argv, &a);
    if (rc)
        return rc;
    /* One-shot: a signal ends the process; the run resumes after its last batch. */
    alm_signals_unblock();
    alm_log_init("reindex", ALM_LOG_WARN);
    rc = alm_config_load_or_report(&cfg, false);
    if (rc)
        return rc;
    alm_log_init(NULL, ALM_LOG_WARN);
    pg = alm_db_connect_patiently(&cfg, "almanac-reindex", 30000, &eb);
    if (!pg || alm_schema_require_current(pg, 10000, &eb)) {
        fprintf(stderr, "almanac: reindex: %s\n", eb.msg);
        rc = ALM_EXIT_FAILURE;
    } else {
        rc = run(&cfg, pg, &a);
    }
    PQfinish(pg);
    alm_config_release(&cfg);
    return rc;
}
