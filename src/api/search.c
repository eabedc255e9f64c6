/* SPDX-License-Identifier: Apache-2.0 */
/* POST /api/v1/search: hybrid search over the knowledge bases a user may read. */
#include "compat.h"
#include "handlers.h"
#include "clock.h"
#include "db.h"
#include "log.h"
#include "mem.h"
#include "search.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KBS 100

/* The query, trimmed, within bounds; replies itself when invalid. */
static const char *query_or_reply(struct alm_req *req, const json_t *body)
{
    const char *q = alm_api_json_str(body, "query");

    if (!q) {
        alm_reply_error(req, ALM_ERR_UNPROCESSABLE, "\"query\" must be a string");
        return NULL;
    }
    if (strspn(q, " \t\r\n") == strlen(q)) {
        alm_reply_error(req, ALM_ERR_UNPROCESSABLE, "\"query\" must not be empty");
        return NULL;
    }
    if (strlen(q) > ALM_SEARCH_MAX_QUERY) {
        alm_reply_error(req, ALM_ERR_UNPROCESSABLE, "\"query\" is longer than %d bytes",
                        ALM_SEARCH_MAX_QUERY);
        return NULL;
    }
    return q;
}

static bool options_or_reply(struct alm_req *req, const json_t *body, int *limit,
                             enum alm_search_mode *mode)
{
    const json_t *l = json_object_get(body, "limit");
    const char *m = alm_api_json_str(body, "mode");

    *limit = 10;
    if (l && (!json_is_integer(l) || json_integer_value(l) < 1 ||
              json_integer_value(l) > ALM_SEARCH_MAX_LIMIT)) {
        alm_reply_error(req, ALM_ERR_UNPROCESSABLE, "\"limit\" must be an integer from 1 to %d",
                        ALM_SEARCH_MAX_LIMIT);
        return false;
    }
    if (l)
        *limit = (int)json_integer_value(l);
    *mode = ALM_SEARCH_HYBRID;
    if (!m || strcmp(m, "hybrid") == 0)
        return true;
    if (strcmp(m, "keyword") == 0) {
        *mode = ALM_SEARCH_KEYWORD;
        return true;
    }
    if (strcmp(m, "vector") == 0) {
        *mode = ALM_SEARCH_VECTOR;
        return true;
    }
    alm_reply_error(req, ALM_ERR_UNPROCESSABLE, "\"mode\" must be hybrid, keyword or vector");
    return false;
}

bool alm_api_search_kbs_or_reply(struct alm_req *req, PGconn *conn, const struct alm_user *me,
                                 const json_t *body, int64_t **kbs, size_t *n)
{
    const struct alm_app *app = alm_req_app(req);
    const json_t *ids = json_object_get(body, "knowledge_base_ids");
    struct alm_buf arr = ALM_BUF_INIT(0);
    struct alm_errbuf eb = {{0}};
    PGresult *res = NULL;
    char uid[ALM_API_ID_TEXT];
    size_t asked = ids ? json_array_size(ids) : 0, i;
    json_t *v;
    bool ok = false;

    if (ids && !json_is_array(ids)) {
        alm_reply_error(req, ALM_ERR_UNPROCESSABLE, "\"knowledge_base_ids\" must be an array");
        return false;
    }
    if (asked > MAX_KBS) {
        alm_reply_error(req, ALM_ERR_UNPROCESSABLE, "at most %d knowledge bases at once", MAX_KBS);
        return false;
    }
    enum alm_err err = ALM_OK;
    json_array_foreach(ids, i, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) < 1) {
            alm_reply_error(req, ALM_ERR_UNPROCESSABLE,
                            "\"knowledge_base_ids\" must hold positive integers");
            goto out;
        }
        if (!err) /* the first error is the one reported */
            err = alm_db_array_add(&arr, json_integer_value(v));
    }
    if (!err)
        err = alm_db_array_close(&arr);
    if (err) {
        alm_reply_error(req, err, "cannot build the knowledge base list");
        goto out;
    }
    alm_api_id_text(me->id, uid);
    const char *params[4] = {uid, alm_db_bool(alm_api_is_admin(me)), arr.data, alm_db_bool(asked)};
    err = alm_db_query(conn, (int)app->cfg->db_timeout_ms,
                       "SELECT id FROM knowledge_bases WHERE (owner_id = $1 OR $2) "
                       "AND (NOT $4::boolean OR id = ANY($3::bigint[])) ORDER BY id LIMIT 1000",
                       4, params, &res, &eb);
    if (err) {
        alm_api_reply_err(req, err, &eb);
        goto out;
    }
    *n = (size_t)PQntuples(res);
    *kbs = alm_xcalloc(*n + 1, sizeof(**kbs));
    for (int r = 0; r < PQntuples(res); r++)
        (*kbs)[r] = strtoll(PQgetvalue(res, r, 0), NULL, 10);
    json_array_foreach(ids, i, v)
    {
        size_t k = 0;
        while (k < *n && (*kbs)[k] != json_integer_value(v))
            k++;
        if (k == *n) {
            alm_reply_error(req, ALM_ERR_NOT_FOUND, "knowledge base %lld not found",
                            (long long)json_integer_value(v));
            ALM_FREE(*kbs);
            goto out;
        }
    }
    ok = true;
out:
    PQclear(res);
    alm_buf_release(&arr);
    return ok;
}

json_t *alm_api_search_hit_json(const struct alm_search_hit *h)
{
    json_t *sources = json_array();

    if (h->keyword_rank)
        json_array_append_new(sources, json_string("keyword"));
    if (h->vector_rank)
        json_array_append_new(sources, json_string("vector"));
    return json_pack(
        "{s:I, s:I, s:s, s:o, s:i, s:s, s:f, s:I, s:I, s:o, s:o}", "document_id",
        (json_int_t)h->document_id, "knowledge_base_id", (json_int_t)h->knowledge_base_id, "title",
        h->title, "section", h->section ? json_string(h->section) : json_null(), "chunk_index",
        h->chunk_index, "snippet", h->snippet, "score", h->score, "start", (json_int_t)h->start,
        "end", (json_int_t)h->end, "sources", sources, "location",
        h->location && h->location_kind[0]
            ? json_pack("{s:s, s:i}", "kind", h->location_kind, "number", h->location)
            : json_null());
}

static const char *mode_name(enum alm_search_mode m)
{
    return m == ALM_SEARCH_KEYWORD ? "keyword" : m == ALM_SEARCH_VECTOR ? "vector" : "hybrid";
}

void alm_api_search(struct alm_req *req)
{
    const struct alm_app *app = alm_req_app(req);
    PGconn *conn = alm_api_db_or_reply(req);
    json_t *body = NULL, *results;
    struct alm_user me;
    struct alm_errbuf eb = {{0}};
    struct alm_search_result res = {0};
    int64_t *kbs = NULL, t0 = alm_clock_ms();
    size_t nkbs = 0;
    const char *q;
    int limit;
    enum alm_search_mode mode;

    if (!conn || !alm_api_user_or_reply(req, conn, &me))
        goto out;
    body = alm_api_json_or_reply(req);
    if (!body || !(q = query_or_reply(req, body)) || !options_or_reply(req, body, &limit, &mode) ||
        !alm_api_search_kbs_or_reply(req, conn, &me, body, &kbs, &nkbs))
        goto out;
    struct alm_search_env env = {app->cfg, conn, app->embedders, app->qdrants};
    enum alm_err err = nkbs ? alm_search_run(&env, q, kbs, nkbs, limit, mode,
                                             t0 + app->cfg->search_timeout_ms, &res, &eb)
                            : ALM_OK;
    if (err) {
        alm_api_reply_err(req, err, &eb);
        goto out;
    }
    results = json_array();
    for (size_t i = 0; i < res.n; i++)
        json_array_append_new(results, alm_api_search_hit_json(&res.hits[i]));
    json_t *answer =
        json_pack("{s:o, s:b, s:s, s:I}", "results", results, "degraded", res.degraded, "mode",
                  mode_name(mode), "took_ms", (json_int_t)(alm_clock_ms() - t0));
    if (res.degraded)
        json_object_set_new(answer, "degraded_reason", json_string(res.reason));
    alm_reply_json(req, 200, answer);
out:
    alm_search_result_release(&res);
    free(kbs);
    json_decref(body);
    alm_api_db_put(req, conn);
}
