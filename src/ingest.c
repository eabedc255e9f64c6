/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "ingest.h"
#include "chunker.h"
#include "clock.h"
#include "db.h"
#include "docfile.h"
#include "extract.h"
#include "extract_doc.h"
#include "log.h"
#include "mem.h"
#include "vindex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UPSERT_BATCH 256
/* Chunk rows per INSERT: a 20 MiB document makes ~25,000 chunks; one statement of all of
 * them would hold a 30 MB JSON parameter and parse it in one go. */
#define INSERT_BATCH 2000

/* The document as the job needs it. */
struct doc {
    int64_t kb;
    char *title;
    char *media_type;
    char *content; /* the text ('' for binary formats: their file is in fd) */
    size_t len;
    int fd; /* binary formats: the original in a memfd; else -1 */
};

static void doc_release(struct doc *d)
{
    free(d->title);
    free(d->media_type);
    free(d->content);
    if (d->fd >= 0)
        close(d->fd);
}

/* Statement deadline: the request-sized one, but never past the job's deadline. */
static int stmt_timeout(const struct alm_ingest_ctx *ctx, int64_t deadline)
{
    int64_t left = deadline - alm_clock_ms();
    int t = (int)ctx->cfg->db_timeout_ms;

    if (left < t)
        t = left > 1 ? (int)left : 1;
    return t;
}

/* Marks the document processing and loads it; *found false when it is gone. */
static enum alm_err load(struct alm_ingest_ctx *ctx, int64_t id, int64_t deadline, struct doc *d,
                         bool *found, struct alm_errbuf *eb)
{
    char ids[24];
    const char *params[1] = {ids};
    PGresult *res = NULL;
    enum alm_err err;

    snprintf(ids, sizeof(ids), "%lld", (long long)id);
    err = alm_db_query(ctx->pg, stmt_timeout(ctx, deadline),
                       "UPDATE documents SET status = 'processing', attempts = attempts + 1, "
                       "updated_at = now() WHERE id = $1 "
                       "RETURNING knowledge_base_id, title, media_type, content",
                       1, params, &res, eb);
    if (err)
        return err;
    *found = PQntuples(res) > 0;
    if (*found) {
        d->kb = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        d->title = alm_xstrdup(PQgetvalue(res, 0, 1));
        d->media_type = alm_xstrdup(PQgetvalue(res, 0, 2));
        d->len = (size_t)PQgetlength(res, 0, 3);
        d->content = alm_xstrndup(PQgetvalue(res, 0, 3), d->len);
    }
    PQclear(res);
    return ALM_OK;
}

static json_t *point_payload(int64_t id, const struct doc *d, const struct alm_chunk *c, int i)
{
    return json_pack("{s:I, s:I, s:i, s:I, s:I, s:s, s:o}", "knowledge_base_id", (json_int_t)d->kb,
                     "document_id", (json_int_t)id, "chunk_index", i, "start",
                     (json_int_t)c->cstart, "end", (json_int_t)c->cend, "title", d->title,
                     "section", c->section ? json_string(c->section) : json_null());
}

/* Embeds every chunk with e and upserts the vectors into collection, then drops points of
 * chunks past the end (the document got shorter since an earlier run). *ready: the
 * collection is known to exist. */
static enum alm_err index_vectors(struct alm_ingest_ctx *ctx, struct alm_embedder *e,
                                  const char *collection, bool *ready, int64_t id,
                                  const struct doc *d, const struct alm_extracted *x,
                                  const struct alm_chunk *chunks, size_t n, int64_t deadline,
                                  struct alm_errbuf *eb)
{
    int dim = alm_embedder_dim(e);
    int t = (int)ctx->cfg->ready_timeout_ms * 5;
    const char **texts = alm_xcalloc(n, sizeof(*texts));
    char **owned = alm_xcalloc(n, sizeof(*owned));
    float *vectors = alm_xcalloc(n * (size_t)dim, sizeof(float));
    struct alm_qdrant_point *points = alm_xcalloc(n, sizeof(*points));
    enum alm_err err = ALM_OK;

    for (size_t i = 0; i < n; i++) {
        owned[i] = alm_xstrndup(x->text + chunks[i].start, chunks[i].end - chunks[i].start);
        texts[i] = owned[i];
    }
    err = alm_embed(e, texts, n, vectors, deadline, eb);
    if (err)
        goto out;
    for (size_t i = 0; i < n; i++) {
        alm_qdrant_point_id(id, (int)i, points[i].id);
        points[i].vector = vectors + i * (size_t)dim;
        points[i].payload = point_payload(id, d, &chunks[i], (int)i);
    }
    /* A second round only when the collection vanished under us (Qdrant lost its data). */
    for (int round = 0; round < 2; round++) {
        err = ALM_OK;
        if (!*ready) {
            err = alm_qdrant_ensure_collection(ctx->qdrant, collection, dim, t, eb);
            *ready = !err;
        }
        for (size_t i = 0; i < n && !err; i += UPSERT_BATCH)
            err = alm_qdrant_upsert(ctx->qdrant, collection, points + i,
                                    n - i < UPSERT_BATCH ? n - i : UPSERT_BATCH, dim, t, eb);
        if (!err)
            err =
                alm_qdrant_delete_where(ctx->qdrant, collection, "document_id", id, (int)n, t, eb);
        if (err)
            *ready = false;
        if (err != ALM_ERR_NOT_FOUND)
            break;
        alm_warn("ingest.collection_missing", "the vector collection is missing; creating it",
                 "{s:s}", "collection", collection);
    }
out:
    for (size_t i = 0; i < n; i++) {
        free(owned[i]);
        json_decref(points[i].payload);
    }
    free(owned);
    free(texts);
    free(vectors);
    free(points);
    return err;
}

/* Indexes into one side: with the worker's embedder when the side embeds as configured,
 * else with one made for the side's model and dimension. */
static enum alm_err index_side(struct alm_ingest_ctx *ctx, const struct alm_vindex_side *side,
                               bool *ready, int64_t id, const struct doc *d,
                               const struct alm_extracted *x, const struct alm_chunk *chunks,
                               size_t n, int64_t deadline, struct alm_errbuf *eb)
{
    bool own = !alm_vindex_side_is_configured(ctx->cfg, side);
    struct alm_embedder *e = own ? alm_vindex_embedder(ctx->cfg, side) : ctx->embedder;
    enum alm_err err = index_vectors(ctx, e, side->name, ready, id, d, x, chunks, n, deadline, eb);

    if (own)
        alm_embedder_free(e);
    return err;
}

/* The active collection, then the one being built. A failure of the building one leaves
 * the document as it is (search does not read that collection yet): the build's check
 * finds its points missing and does not switch. */
static enum alm_err index_all(struct alm_ingest_ctx *ctx, int64_t id, const struct doc *d,
                              const struct alm_extracted *x, const struct alm_chunk *chunks,
                              size_t n, int64_t deadline, struct alm_errbuf *eb)
{
    struct alm_vindex v;
    enum alm_err err = alm_vindex_load(ctx->pg, stmt_timeout(ctx, deadline), ctx->cfg, &v, eb);
    bool ready = false;

    if (!err)
        err = index_side(ctx, &v.active, &ctx->collection_ready, id, d, x, chunks, n, deadline, eb);
    if (!err && v.building_set) {
        struct alm_errbuf beb = {{0}};
        if (index_side(ctx, &v.building, &ready, id, d, x, chunks, n, deadline, &beb))
            alm_warn("ingest.building_failed",
                     "cannot index a document into the collection being built", "{s:I, s:s, s:s}",
                     "document_id", (json_int_t)id, "collection", v.building.name, "error",
                     beb.msg);
    }
    return err;
}

/* Chunks [from, to) as one JSON array for jsonb_to_recordset. */
static char *chunks_json(const struct alm_extracted *x, const struct alm_chunk *chunks, size_t from,
                         size_t to)
{
    json_t *arr = json_array();
    char *text;

    for (size_t i = from; i < to; i++) {
        json_array_append_new(
            arr, json_pack("{s:i, s:s%, s:I, s:I, s:o, s:o}", "i", (int)i, "t",
                           x->text + chunks[i].start, chunks[i].end - chunks[i].start, "s",
                           (json_int_t)chunks[i].cstart, "e", (json_int_t)chunks[i].cend, "sec",
                           chunks[i].section ? json_string(chunks[i].section) : json_null(), "loc",
                           chunks[i].location ? json_integer(chunks[i].location) : json_null()));
    }
    text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return text;
}

/* Inserts the chunks in batches of INSERT_BATCH rows. */
static enum alm_err insert_chunks(struct alm_ingest_ctx *ctx, const char *ids,
                                  const struct alm_extracted *x, const struct alm_chunk *chunks,
                                  size_t n, int t, struct alm_errbuf *eb)
{
    enum alm_err err = ALM_OK;

    for (size_t from = 0; from < n && !err; from += INSERT_BATCH) {
        char *json =
            chunks_json(x, chunks, from, n - from < INSERT_BATCH ? n : from + INSERT_BATCH);
        const char *params[2] = {ids, json};
        err = alm_db_query(ctx->pg, t,
                           "INSERT INTO chunks (document_id, knowledge_base_id, chunk_index, text, "
                           "start_offset, end_offset, section, location) "
                           "SELECT d.id, d.knowledge_base_id, r.i, r.t, r.s, r.e, r.sec, r.loc "
                           "FROM documents d, jsonb_to_recordset($2::jsonb) "
                           "AS r(i int, t text, s int, e int, sec text, loc int) WHERE d.id = $1",
                           2, params, NULL, eb);
        free(json);
    }
    return err;
}

/* Replaces the document's chunks and marks it ready, in one transaction; *found false
 * when the document was deleted meanwhile. Its statements may take what is left of the
 * job's deadline (a document at the upload limit writes ~25,000 rows), so the server's
 * statement_timeout is raised to match for this transaction only. */
static enum alm_err store(struct alm_ingest_ctx *ctx, int64_t id, const struct alm_extracted *x,
                          const struct alm_chunk *chunks, size_t n, int64_t deadline, bool *found,
                          struct alm_errbuf *eb)
{
    int64_t left = deadline - alm_clock_ms();
    int t = left > 1 ? (left < INT32_MAX / 2 ? (int)left : INT32_MAX / 2) : 1;
    char ids[24], count[16];
    const char *p_id[1] = {ids};
    const char *p_ready[5] = {ids, count, x->text, x->location_kind, x->title};
    PGresult *res = NULL;
    enum alm_err err;

    snprintf(ids, sizeof(ids), "%lld", (long long)id);
    snprintf(count, sizeof(count), "%zu", n);
    err = alm_db_begin(ctx->pg, (int)ctx->cfg->db_timeout_ms, eb);
    if (!err)
        err = alm_db_allow_ms(ctx->pg, t, eb);
    if (!err)
        err = alm_db_query(ctx->pg, t,
                           "UPDATE documents SET status = 'ready', chunk_count = $2, error = NULL, "
                           "text = $3, processed_at = now(), updated_at = now(), "
                           "location_kind = $4, title = CASE WHEN title_from_filename AND "
                           "$5::text IS NOT NULL THEN $5 ELSE title END WHERE id = $1 "
                           "RETURNING id",
                           5, p_ready, &res, eb);
    *found = !err && PQntuples(res) > 0;
    if (!err && *found)
        err = alm_db_query(ctx->pg, t, "DELETE FROM chunks WHERE document_id = $1", 1, p_id, NULL,
                           eb);
    if (!err && *found)
        err = insert_chunks(ctx, ids, x, chunks, n, t, eb);
    if (!err)
        err = alm_db_commit(ctx->pg, t, eb);
    if (err)
        alm_db_rollback(ctx->pg, (int)ctx->cfg->db_timeout_ms);
    PQclear(res);
    return err;
}

void alm_ingest_mark_failed(struct alm_ingest_ctx *ctx, int64_t id, const char *error)
{
    char ids[24];
    const char *params[2] = {ids, error};

    snprintf(ids, sizeof(ids), "%lld", (long long)id);
    if (alm_db_query(ctx->pg, (int)ctx->cfg->db_timeout_ms,
                     "UPDATE documents SET status = 'failed', error = $2, updated_at = now() "
                     "WHERE id = $1",
                     2, params, NULL, NULL))
        alm_warn("ingest.mark_failed", "cannot record a document's failure", "{s:I}", "document_id",
                 (json_int_t)id);
}

void alm_ingest_record_failure(struct alm_ingest_ctx *ctx, int64_t id, bool last, const char *error)
{
    char ids[24];
    const char *params[2] = {ids, error};

    if (last) {
        alm_ingest_mark_failed(ctx, id, error);
        return;
    }
    snprintf(ids, sizeof(ids), "%lld", (long long)id);
    if (alm_db_query(ctx->pg, (int)ctx->cfg->db_timeout_ms,
                     "UPDATE documents SET status = 'pending', updated_at = now(), "
                     "error = 'attempt ' || attempts || ' failed, will retry: ' || $2 "
                     "WHERE id = $1 AND status = 'processing'",
                     2, params, NULL, NULL)) {
        /* the database itself is failing: the retry will find the document as it is */
    }
}

void alm_ingest_record_waiting(struct alm_ingest_ctx *ctx, int64_t id, const char *waiting_for)
{
    char ids[24];
    const char *params[2] = {ids, waiting_for};

    if (!ctx->pg || !alm_db_reusable(ctx->pg))
        return;
    snprintf(ids, sizeof(ids), "%lld", (long long)id);
    /* The attempt spent by load() is given back: an outage is not the document's fault. */
    if (alm_db_query(ctx->pg, (int)ctx->cfg->db_timeout_ms,
                     "UPDATE documents SET status = 'pending', updated_at = now(), "
                     "attempts = greatest(attempts - 1, 0), error = 'waiting for ' || $2 "
                     "WHERE id = $1 AND status = 'processing'",
                     2, params, NULL, NULL)) {
        /* the database is the one that is down: the document stays as it is */
    }
}

enum alm_err alm_ingest_document(struct alm_ingest_ctx *ctx, int64_t id, int64_t deadline_ms,
                                 struct alm_errbuf *eb)
{
    struct doc d = {.fd = -1};
    struct alm_extracted x = {0};
    struct alm_chunk *chunks = NULL;
    size_t n = 0;
    bool found = false;
    enum alm_err err;

    err = load(ctx, id, deadline_ms, &d, &found, eb);
    if (err || !found)
        goto out; /* a database failure is retried; a deleted document is done */
    struct alm_extract_env env;
    alm_extract_env_from_config(ctx->cfg, &env);
    if (alm_extract_is_binary(d.media_type))
        err = alm_docfile_to_memfd(ctx->pg, stmt_timeout(ctx, deadline_ms), id, &d.fd, eb);
    if (!err)
        err = alm_extract_document(&env, d.media_type, d.content, d.len, d.fd, &x, eb);
    if (!err)
        err = alm_chunk_text(
            &x,
            &(struct alm_chunk_opts){(size_t)ctx->cfg->chunk_size, (size_t)ctx->cfg->chunk_overlap},
            &chunks, &n, eb);
    if (!err && ctx->qdrant)
        err = index_all(ctx, id, &d, &x, chunks, n, deadline_ms, eb);
    if (!err)
        err = store(ctx, id, &x, chunks, n, deadline_ms, &found, eb);
    if (!err && !found && ctx->qdrant)
        err = alm_ingest_purge(ctx, "document_id", id, eb); /* deleted while we worked */
    if (!err && found)
        alm_info("ingest.done", "document ready", "{s:I, s:i, s:s}", "document_id", (json_int_t)id,
                 "chunks", (int)n, "vectors", ctx->qdrant ? "qdrant" : "none");
out:
    free(chunks);
    alm_extracted_release(&x);
    doc_release(&d);
    return err;
}

enum alm_err alm_ingest_purge(struct alm_ingest_ctx *ctx, const char *key, int64_t value,
                              struct alm_errbuf *eb)
{
    struct alm_vindex v;
    enum alm_err err;

    if (!ctx->qdrant)
        return ALM_OK; /* no vectors were ever written */
    err = alm_vindex_load(ctx->pg, (int)ctx->cfg->db_timeout_ms, ctx->cfg, &v, eb);
    if (!err)
        err = alm_qdrant_delete_where(ctx->qdrant, v.active.name, key, value, -1,
                                      (int)ctx->cfg->ready_timeout_ms * 5, eb);
    if (!err && v.building_set)
        err = alm_qdrant_delete_where(ctx->qdrant, v.building.name, key, value, -1,
                                      (int)ctx->cfg->ready_timeout_ms * 5, eb);
    if (err == ALM_ERR_NOT_FOUND && v.building_set)
        err = ALM_OK; /* the building collection is not created yet */
    return err;
}
