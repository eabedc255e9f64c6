/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "reindex.h"
#include "db.h"
#include "mem.h"
#include "redis_keys.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const scope_names[] = {"all", "kb", "missing", "unfinished", "collection"};

/* Documents a scope takes, after $1 (the cursor); $2 the knowledge base (or 0). */
static const char *const scope_where[] = {
    "id > $1 AND $2::bigint = $2",
    "id > $1 AND knowledge_base_id = $2",
    "id > $1 AND status = 'ready' AND $2::bigint = $2",
    "id > $1 AND status IN ('pending', 'processing') AND $2::bigint = $2",
    "id > $1 AND $2::bigint = $2",
};

#define RUN_COLUMNS                                                                                \
    "r.id, r.scope, coalesce(r.knowledge_base_id, 0), r.cursor_id, r.total, r.examined, "          \
    "r.queued, r.finished_at IS NOT NULL, "                                                        \
    "(SELECT count(*) FROM documents d WHERE d.reindex_run = r.id AND d.status = 'ready'), "       \
    "(SELECT count(*) FROM documents d WHERE d.reindex_run = r.id AND d.status = 'failed'), "      \
    "r.started_at, r.updated_at, r.finished_at"

const char *alm_reindex_scope_name(enum alm_reindex_scope scope)
{
    return scope_names[scope];
}

static void read_run(const PGresult *res, int row, struct alm_reindex_run *run)
{
    run->id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    for (size_t i = 0; i < ALM_ARRAY_SIZE(scope_names); i++) {
        if (strcmp(PQgetvalue(res, row, 1), scope_names[i]) == 0)
            run->scope = (enum alm_reindex_scope)i;
    }
    run->kb = strtoll(PQgetvalue(res, row, 2), NULL, 10);
    run->cursor = strtoll(PQgetvalue(res, row, 3), NULL, 10);
    run->total = strtoll(PQgetvalue(res, row, 4), NULL, 10);
    run->examined = strtoll(PQgetvalue(res, row, 5), NULL, 10);
    run->queued = strtoll(PQgetvalue(res, row, 6), NULL, 10);
    run->finished = PQgetvalue(res, row, 7)[0] == 't';
    run->ready = strtoll(PQgetvalue(res, row, 8), NULL, 10);
    run->failed = strtoll(PQgetvalue(res, row, 9), NULL, 10);
}

enum alm_err alm_reindex_open(PGconn *pg, int timeout_ms, enum alm_reindex_scope scope, int64_t kb,
                              struct alm_reindex_run *run, struct alm_errbuf *eb)
{
    char kbs[24];
    const char *params[2] = {scope_names[scope], kbs};
    PGresult *res = NULL;
    enum alm_err err;

    snprintf(kbs, sizeof(kbs), "%" PRId64, kb);
    memset(run, 0, sizeof(*run));
    err = alm_db_query(pg, timeout_ms,
                       "SELECT " RUN_COLUMNS " FROM reindex_runs r WHERE r.finished_at IS NULL "
                       "AND r.scope = $1 AND coalesce(r.knowledge_base_id, 0) = $2::bigint "
                       "ORDER BY r.id DESC LIMIT 1",
                       2, params, &res, eb);
    if (!err && PQntuples(res) == 1) {
        read_run(res, 0, run);
        run->resumed = true;
        PQclear(res);
        return ALM_OK;
    }
    PQclear(res);
    res = NULL;
    if (err)
        return err;
    /* The scope's WHERE reads $1 as the cursor (0: every document) and $2 as the kb. */
    char *sql = alm_xasprintf(
        "WITH r AS (INSERT INTO reindex_runs (scope, knowledge_base_id, total) SELECT $3, "
        "nullif($2::bigint, 0), count(*) FROM documents WHERE %s RETURNING *) "
        "SELECT " RUN_COLUMNS " FROM r",
        scope_where[scope]);
    const char *iparams[3] = {"0", kbs, scope_names[scope]};
    err = alm_db_query(pg, timeout_ms, sql, 3, iparams, &res, eb);
    free(sql);
    if (!err)
        read_run(res, 0, run);
    PQclear(res);
    return err;
}

/* The ids of this batch the scope re-indexes; for missing, those whose point count in
 * Qdrant differs from their chunk count (no collection: every one). */
static enum alm_err pick(const PGresult *res, struct alm_qdrant *q, const char *collection,
                         int timeout_ms, enum alm_reindex_scope scope, struct alm_buf *ids,
                         int *picked, struct alm_errbuf *eb)
{
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        if (scope == ALM_REINDEX_MISSING) {
            int64_t count = 0;
            enum alm_err err = alm_qdrant_count_document(q, collection, id, &count, timeout_ms, eb);
            if (err && err != ALM_ERR_NOT_FOUND)
                return err;
            if (!err && count == strtoll(PQgetvalue(res, i, 1), NULL, 10))
                continue;
        }
        if (alm_db_array_add(ids, id))
            return alm_fail(eb, ALM_ERR_NOMEM, "out of memory");
        (*picked)++;
    }
    return alm_db_array_close(ids) ? alm_fail(eb, ALM_ERR_NOMEM, "out of memory") : ALM_OK;
}

enum alm_err alm_reindex_step(PGconn *pg, int timeout_ms, struct alm_qdrant *q,
                              const char *collection, int batch, struct alm_reindex_run *run,
                              struct alm_errbuf *eb)
{
    char cursor[24], kbs[24], lim[16], runs[24];
    const char *params[3] = {cursor, kbs, lim};
    PGresult *res = NULL;
    struct alm_buf ids = ALM_BUF_INIT(0);
    int picked = 0;
    enum alm_err err;

    if (run->scope == ALM_REINDEX_MISSING && !q)
        return alm_fail(eb, ALM_ERR_INVALID, "--missing needs ALMANAC_QDRANT_URL");
    snprintf(cursor, sizeof(cursor), "%" PRId64, run->cursor);
    snprintf(kbs, sizeof(kbs), "%" PRId64, run->kb);
    snprintf(lim, sizeof(lim), "%d", batch);
    snprintf(runs, sizeof(runs), "%" PRId64, run->id);
    char *sql = alm_xasprintf("SELECT id, chunk_count FROM documents WHERE %s ORDER BY id LIMIT $3",
                              scope_where[run->scope]);
    err = alm_db_query(pg, timeout_ms, sql, 3, params, &res, eb);
    free(sql);
    if (err)
        return err;
    int n = PQntuples(res);
    int64_t last = n ? strtoll(PQgetvalue(res, n - 1, 0), NULL, 10) : run->cursor;
    err = pick(res, q, collection, timeout_ms, run->scope, &ids, &picked, eb);
    PQclear(res);
    res = NULL;
    if (err)
        goto out;

    /* The jobs and the cursor in one transaction: a resumed run neither skips nor
     * repeats a batch. */
    err = alm_db_begin(pg, timeout_ms, eb);
    const char *qparams[3] = {ids.data, runs, ALM_QUEUE_INGEST};
    if (!err && picked > 0)
        err = alm_db_query(pg, timeout_ms,
                           "WITH d AS (UPDATE documents SET status = 'pending', error = NULL, "
                           "attempts = 0, updated_at = now(), reindex_run = $2::bigint "
                           "WHERE id = ANY($1::bigint[]) RETURNING id) "
                           "INSERT INTO outbox (queue, job_type, payload) SELECT $3::text, "
                           "'ingest', jsonb_build_object('document_id', id) FROM d",
                           3, qparams, NULL, eb);
    char examined[16], queued[16], lasts[24];
    snprintf(examined, sizeof(examined), "%d", n);
    snprintf(queued, sizeof(queued), "%d", picked);
    snprintf(lasts, sizeof(lasts), "%" PRId64, last);
    const char *uparams[5] = {runs, examined, queued, lasts, n < batch ? "t" : "f"};
    if (!err)
        err = alm_db_query(pg, timeout_ms,
                           "UPDATE reindex_runs SET examined = examined + $2::int, queued = "
                           "queued + $3::int, cursor_id = $4::bigint, updated_at = now(), "
                           "finished_at = CASE WHEN $5::boolean THEN now() END WHERE id = $1",
                           5, uparams, NULL, eb);
    if (!err)
        err = alm_db_commit(pg, timeout_ms, eb);
    if (err) {
        alm_db_rollback(pg, timeout_ms);
        goto out;
    }
    run->cursor = last;
    run->examined += n;
    run->queued += picked;
    run->finished = n < batch;
out:
    alm_buf_release(&ids);
    return err;
}

enum alm_err alm_reindex_refresh(PGconn *pg, int timeout_ms, struct alm_reindex_run *run,
                                 struct alm_errbuf *eb)
{
    char id[24];
    const char *params[1] = {id};
    PGresult *res = NULL;
    bool resumed = run->resumed;
    enum alm_err err;

    snprintf(id, sizeof(id), "%" PRId64, run->id);
    err = alm_db_query(pg, timeout_ms, "SELECT " RUN_COLUMNS " FROM reindex_runs r WHERE r.id = $1",
                       1, params, &res, eb);
    if (!err && PQntuples(res) == 1)
        read_run(res, 0, run);
    else if (!err)
        err = alm_fail(eb, ALM_ERR_NOT_FOUND, "reindex run %s is gone", id);
    run->resumed = resumed;
    PQclear(res);
    return err;
}

enum alm_err alm_reindex_list(PGconn *pg, int timeout_ms, int limit, json_t **runs,
                              struct alm_errbuf *eb)
{
    char lim[16];
    const char *params[1] = {lim};
    PGresult *res = NULL;
    enum alm_err err;

    snprintf(lim, sizeof(lim), "%d", limit);
    err = alm_db_query(pg, timeout_ms,
                       "SELECT " RUN_COLUMNS " FROM reindex_runs r ORDER BY r.id DESC LIMIT $1", 1,
                       params, &res, eb);
    if (err)
        return err;
    *runs = json_array();
    for (int i = 0; i < PQntuples(res); i++) {
        struct alm_reindex_run r;
        read_run(res, i, &r);
        json_t *o =
            json_pack("{s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:b, s:s, s:s}", "id", (json_int_t)r.id,
                      "scope", scope_names[r.scope], "total", (json_int_t)r.total, "examined",
                      (json_int_t)r.examined, "queued", (json_int_t)r.queued, "ready",
                      (json_int_t)r.ready, "failed", (json_int_t)r.failed, "finished", r.finished,
                      "started_at", PQgetvalue(res, i, 10), "updated_at", PQgetvalue(res, i, 11));
        json_object_set_new(o, "knowledge_base_id",
                            r.kb ? json_integer((json_int_t)r.kb) : json_null());
        json_object_set_new(o, "finished_at",
                            PQgetisnull(res, i, 12) ? json_null()
                                                    : json_string(PQgetvalue(res, i, 12)));
        json_array_append_new(*runs, o);
    }
    PQclear(res);
    return ALM_OK;
}
