/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "clock.h"
#include "cmd.h"
#include "db.h"
#include "outbox.h"
#include "qdrant.h"
#include "redis.h"
#include "reindex.h"
#include "vindex.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
    "usage: almanac reindex [--kb ID | --missing | --unfinished] [--rate DOCS_PER_S]\n"
    "                       [--no-wait]\n"
    "       almanac reindex --to-collection NAME --dimension N [--model MODEL] [--rate ..]\n"
    "       almanac reindex --abandon-build\n"
    "\n"
    "Queues every document (or those of one knowledge base, those whose vectors in Qdrant\n"
    "do not match their chunks, or those left pending or processing, as after a restore)\n"
    "for ingestion again, at most DOCS_PER_S a second (default 20), then waits until the\n"
    "workers have processed them, printing progress to stderr. A run that is stopped\n"
    "(Ctrl-C, a crash) resumes where it stopped when started again with the same scope.\n"
    "--no-wait returns once everything is queued. The operations view shows the latest\n"
    "runs (GET /api/v1/admin/reindex). Exits 0 when every queued document is ready, 1 on\n"
    "failure or when some failed, 64 on bad usage.\n"
    "\n"
    "--to-collection builds a new Qdrant collection for another embedding model or\n"
    "dimension (the endpoint of ALMANAC_EMBEDDINGS_URL; MODEL defaults to the configured\n"
    "one) while search keeps using the current one; workers write new uploads to both.\n"
    "When every ready document has its points in NAME, search switches to it; the old\n"
    "collection is left for the operator to delete. Exits 1 without switching otherwise;\n"
    "run it again to resume. --abandon-build stops writing to the collection being built.\n";

struct args {
    enum alm_reindex_scope scope;
    int64_t kb;
    double rate;
    bool wait;
    const char *to, *model; /* --to-collection, --model */
    long dim;
    bool abandon;
};

static int parse(int argc, char **argv, void *args)
{
    struct args *a = args;
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
        } else if (strcmp(argv[i], "--to-collection") == 0 && i + 1 < argc) {
            a->to = argv[++i];
            if (!alm_vindex_name_ok(a->to))
                return alm_cmd_usage_error("reindex",
                                           "--to-collection needs 1..200 of [A-Za-z0-9_-]");
            a->scope = ALM_REINDEX_COLLECTION;
            scopes++;
        } else if (strcmp(argv[i], "--dimension") == 0 && i + 1 < argc) {
            a->dim = strtol(argv[++i], &end, 10);
            if (*end || a->dim < 8 || a->dim > 8192)
                return alm_cmd_usage_error("reindex", "--dimension must be 8..8192");
        } else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) {
            a->model = argv[++i];
            if (!a->model[0] || strlen(a->model) > 200)
                return alm_cmd_usage_error("reindex", "--model needs a name of 1..200 bytes");
        } else if (strcmp(argv[i], "--abandon-build") == 0) {
            a->abandon = true;
        } else {
            return alm_cmd_usage_error("reindex", "unknown argument '%s'", argv[i]);
        }
    }
    if (scopes > 1)
        return alm_cmd_usage_error(
            "reindex", "--kb, --missing, --unfinished and --to-collection exclude each other");
    if ((a->dim || a->model) && !a->to)
        return alm_cmd_usage_error("reindex", "--dimension and --model go with --to-collection");
    if (a->to && !a->dim)
        return alm_cmd_usage_error("reindex", "--to-collection needs --dimension");
    if (a->to && !a->wait)
        return alm_cmd_usage_error("reindex", "--to-collection switches when done: no --no-wait");
    if (a->abandon && (scopes || a->dim || a->model))
        return alm_cmd_usage_error("reindex", "--abandon-build takes no other option");
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

    if (!*redis)
        *redis = alm_redis_connect(cfg, 5000, &eb);
    if (*redis && alm_outbox_relay(pg, *redis, 10000, NULL, NULL, "reindex", &eb)) {
        redisFree(*redis);
        *redis = NULL;
    }
}

/* Records the collection as building (or finds it so) and creates it in Qdrant. */
static enum alm_err build_start(const struct alm_config *cfg, PGconn *pg, struct alm_qdrant *q,
                                const struct args *a, struct alm_errbuf *eb)
{
    const char *model = a->model ? a->model : cfg->embeddings_model ? cfg->embeddings_model : "";
    char dims[16];
    const char *params[3] = {a->to, model, dims};
    struct alm_vindex v;
    enum alm_err err;

    if (!q)
        return alm_fail(eb, ALM_ERR_INVALID, "--to-collection needs ALMANAC_QDRANT_URL");
    snprintf(dims, sizeof(dims), "%ld", a->dim);
    err = alm_vindex_load(pg, 10000, cfg, &v, eb);
    if (!err && strcmp(v.active.name, a->to) == 0)
        err = alm_fail(eb, ALM_ERR_CONFLICT, "collection %s is the active one", a->to);
    if (!err)
        err = alm_db_query(pg, 10000,
                           "INSERT INTO vector_collections (name, model, dimension, state) "
                           "VALUES ($1, $2, $3, 'building') ON CONFLICT DO NOTHING",
                           3, params, NULL, eb);
    if (!err)
        err = alm_vindex_load(pg, 10000, cfg, &v, eb);
    if (err)
        return err;
    if (!v.building_set || strcmp(v.building.name, a->to) != 0)
        return alm_fail(eb, ALM_ERR_CONFLICT,
                        "collection %s is being built; finish it or run --abandon-build",
                        v.building_set ? v.building.name : "?");
    if (v.building.dim != a->dim || strcmp(v.building.model, model) != 0)
        return alm_fail(eb, ALM_ERR_CONFLICT,
                        "collection %s is being built for model %s, %d dimensions", a->to,
                        v.building.model, v.building.dim);
    err = alm_qdrant_ensure_collection(q, a->to, (int)a->dim, 30000, eb);
    if (err == ALM_ERR_CONFLICT) /* it exists with another size: never usable, forget it */
        if (alm_db_query(pg, 10000,
                         "DELETE FROM vector_collections WHERE name = $1 AND state = 'building'", 1,
                         params, NULL, NULL)) {
            /* the row stays: --abandon-build removes it */
        }
    return err;
}

/* Counts the ready documents whose points in collection do not match their chunks. */
static enum alm_err build_missing(PGconn *pg, struct alm_qdrant *q, const char *collection,
                                  int64_t *missing, struct alm_errbuf *eb)
{
    char cursor[24] = "0";
    const char *params[1] = {cursor};
    enum alm_err err = ALM_OK;
    int rows;

    *missing = 0;
    do {
        PGresult *res = NULL;
        err = alm_db_query(pg, 30000,
                           "SELECT id, chunk_count FROM documents WHERE status = 'ready' AND "
                           "id > $1 ORDER BY id LIMIT 500",
                           1, params, &res, eb);
        rows = err ? 0 : PQntuples(res);
        for (int i = 0; !err && i < rows; i++) {
            int64_t count = 0, id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
            err = alm_qdrant_count_document(q, collection, id, &count, 30000, eb);
            if (!err && count != strtoll(PQgetvalue(res, i, 1), NULL, 10))
                (*missing)++;
            snprintf(cursor, sizeof(cursor), "%" PRId64, id);
        }
        PQclear(res);
    } while (!err && rows == 500);
    return err;
}

/* Makes the building collection the active one, in one transaction. */
static enum alm_err build_switch(PGconn *pg, const char *collection, struct alm_errbuf *eb)
{
    const char *params[1] = {collection};
    PGresult *res = NULL;
    enum alm_err err = alm_db_begin(pg, 10000, eb);

    if (!err)
        err = alm_db_query(pg, 10000, "DELETE FROM vector_collections WHERE state = 'active'", 0,
                           NULL, NULL, eb);
    if (!err)
        err = alm_db_query(pg, 10000,
                           "UPDATE vector_collections SET state = 'active', activated_at = now() "
                           "WHERE name = $1 AND state = 'building' RETURNING name",
                           1, params, &res, eb);
    if (!err && PQntuples(res) != 1)
        err = alm_fail(eb, ALM_ERR_CONFLICT, "collection %s is no longer being built", collection);
    PQclear(res);
    if (!err)
        err = alm_db_commit(pg, 10000, eb);
    if (err)
        alm_db_rollback(pg, 10000);
    return err;
}

/* The end of a build: switches when every ready document has its points there. */
static int build_finish(PGconn *pg, struct alm_qdrant *q, const struct args *a,
                        struct alm_errbuf *eb)
{
    int64_t missing = 0;
    enum alm_err err = build_missing(pg, q, a->to, &missing, eb);

    if (!err && missing > 0)
        err = alm_fail(eb, ALM_ERR_UNAVAILABLE,
                       "%" PRId64 " ready documents lack their points in %s (the workers' "
                       "logs say why: ingest.building_failed); not switched, run again",
                       missing, a->to);
    if (!err)
        err = build_switch(pg, a->to, eb);
    if (err) {
        fprintf(stderr, "almanac: reindex: %s\n", eb->msg);
        return ALM_EXIT_FAILURE;
    }
    fprintf(stderr, "reindex: search now uses collection %s; the old one is left in Qdrant\n",
            a->to);
    printf("{\"switched\":\"%s\"}\n", a->to);
    return ALM_EXIT_OK;
}

static int abandon(PGconn *pg)
{
    struct alm_errbuf eb = {{0}};
    PGresult *res = NULL;
    enum alm_err err = alm_db_begin(pg, 10000, &eb);

    if (!err)
        err = alm_db_query(pg, 10000,
                           "DELETE FROM vector_collections WHERE state = 'building' RETURNING name",
                           0, NULL, &res, &eb);
    if (!err)
        err = alm_db_query(pg, 10000,
                           "UPDATE reindex_runs SET finished_at = now(), updated_at = now() "
                           "WHERE scope = 'collection' AND finished_at IS NULL",
                           0, NULL, NULL, &eb);
    if (!err)
        err = alm_db_commit(pg, 10000, &eb);
    if (err) {
        alm_db_rollback(pg, 10000);
        PQclear(res);
        fprintf(stderr, "almanac: reindex: %s\n", eb.msg);
        return ALM_EXIT_FAILURE;
    }
    fprintf(stderr, "reindex: %s\n",
            PQntuples(res) ? "the build is abandoned; its collection is left in Qdrant"
                           : "no collection is being built");
    PQclear(res);
    return ALM_EXIT_OK;
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

    struct alm_vindex v;

    if (alm_vindex_load(pg, 10000, cfg, &v, &eb) || (a->to && build_start(cfg, pg, q, a, &eb)))
        goto fail;
    if (alm_reindex_open(pg, 10000, a->scope, a->kb, &r, &eb))
        goto fail;
    progress(&r, r.resumed ? "resumed" : "started");
    while (!r.finished) {
        int64_t t0 = alm_clock_ms();
        if (alm_reindex_step(pg, 30000, q, v.active.name, batch, &r, &eb))
            goto fail;
        relay(cfg, pg, &redis);
        if (alm_clock_ms() - last_print >= 2000 || r.finished) {
            last_print = alm_clock_ms();
            progress(&r, "queuing");
        }
        if (!r.finished)
            alm_clock_sleep_ms(per_batch_ms - (alm_clock_ms() - t0));
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
        alm_clock_sleep_ms(500);
    }
    if (alm_reindex_refresh(pg, 10000, &r, &eb))
        goto fail;
    progress(&r, a->wait ? "done" : "queued");
    printf("{\"run\":%" PRId64 ",\"scope\":\"%s\",\"examined\":%" PRId64 ",\"queued\":%" PRId64
           ",\"ready\":%" PRId64 ",\"failed\":%" PRId64 "}\n",
           r.id, alm_reindex_scope_name(r.scope), r.examined, r.queued, r.ready, r.failed);
    if (a->wait && r.failed > 0)
        rc = ALM_EXIT_FAILURE;
    if (a->to)
        rc = build_finish(pg, q, a, &eb);
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
    struct alm_config cfg = {0};
    struct args a = {0};
    PGconn *pg;
    /* One-shot: a signal ends the process; the run resumes after its last batch. */
    struct alm_cmd_start start = {.name = "reindex",
                                  .usage = usage,
                                  .parse = parse,
                                  .args = &a,
                                  .cfg = &cfg,
                                  .log_level = ALM_LOG_WARN,
                                  .log_level_fixed = true};
    int rc;

    if (!alm_cmd_start(&start, argc, argv, &rc))
        return rc;
    pg = alm_cmd_db_or_report(&cfg, "reindex", 30000, true);
    if (!pg)
        rc = ALM_EXIT_FAILURE;
    else
        rc = a.abandon ? abandon(pg) : run(&cfg, pg, &a);
    PQfinish(pg);
    alm_config_release(&cfg);
    return rc;
}
