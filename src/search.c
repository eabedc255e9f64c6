/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "search.h"
#include "clock.h"
#include "db.h"
#include "embed.h"
#include "log.h"
#include "mem.h"
#include "qdrant.h"
#include "vindex.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Candidates taken from each path before fusion. */
#define CANDIDATES(limit) ((limit)*3 < 30 ? 30 : (limit)*3)
/* ts_headline options; \x02 and \x03 mark matches until they become <mark> tags. */
static const char headline_opts[] =
    "StartSel=\x02, StopSel=\x03, MaxWords=40, MinWords=15, MaxFragments=2, "
    "FragmentDelimiter=\" ... \"";

char *alm_search_snippet_html(const char *h)
{
    struct alm_buf b = ALM_BUF_INIT(0);
    enum alm_err err = ALM_OK;

    for (const char *p = h; *p && !err; p++) {
        switch (*p) {
        case '\x02':
            err = alm_buf_append(&b, "<mark>", 6);
            break;
        case '\x03':
            err = alm_buf_append(&b, "</mark>", 7);
            break;
        case '<':
            err = alm_buf_append(&b, "&lt;", 4);
            break;
        case '>':
            err = alm_buf_append(&b, "&gt;", 4);
            break;
        case '&':
            err = alm_buf_append(&b, "&amp;", 5);
            break;
        case '"':
            err = alm_buf_append(&b, "&quot;", 6);
            break;
        case '\'':
            err = alm_buf_append(&b, "&#39;", 5);
            break;
        default:
            err = alm_buf_append(&b, p, 1);
            break;
        }
    }
    return alm_buf_detach(&b, NULL); /* an uncapped buffer cannot fail */
}

size_t alm_search_rrf(const struct alm_search_key *a, size_t n_a, const struct alm_search_key *b,
                      size_t n_b, size_t *out_index, double *out_score)
{
    size_t n = 0;

    for (size_t i = 0; i < n_a; i++) {
        out_index[n] = i;
        out_score[n++] = 1.0 / (ALM_SEARCH_RRF_K + (double)(i + 1));
    }
    for (size_t j = 0; j < n_b; j++) {
        double s = 1.0 / (ALM_SEARCH_RRF_K + (double)(j + 1));
        size_t k = 0;
        while (k < n_a &&
               (a[k].document_id != b[j].document_id || a[k].chunk_index != b[j].chunk_index))
            k++;
        if (k < n_a) {
            out_score[k] += s; /* index k of a sits at position k of the output */
            continue;
        }
        out_index[n] = n_a + j;
        out_score[n++] = s;
    }
    /* Insertion sort by score, stable: keyword order breaks ties. n is small. */
    for (size_t i = 1; i < n; i++) {
        size_t idx = out_index[i];
        double sc = out_score[i];
        size_t k = i;
        while (k > 0 && out_score[k - 1] < sc) {
            out_index[k] = out_index[k - 1];
            out_score[k] = out_score[k - 1];
            k--;
        }
        out_index[k] = idx;
        out_score[k] = sc;
    }
    return n;
}

/* The vector path, shared by the request and its thread; the last one out frees it. */
struct vec_job {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int refs;
    bool done;
    const struct alm_config *cfg;
    struct alm_pool *embedders, *qdrants;
    struct alm_vindex_side side; /* the active collection, read by the request */
    char *query;
    int64_t *kbs;
    size_t n_kbs;
    int limit;
    int64_t deadline_ms;
    struct alm_qdrant_hit *hits;
    size_t n;
    enum alm_err err;
    struct alm_errbuf eb;
};

static void vec_unref(struct vec_job *j)
{
    bool last;

    pthread_mutex_lock(&j->mu);
    last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (!last)
        return;
    pthread_cond_destroy(&j->cond);
    pthread_mutex_destroy(&j->mu);
    free(j->query);
    free(j->kbs);
    free(j->hits);
    free(j);
}

static enum alm_err vec_search(struct vec_job *j)
{
    /* After a switch to another model or dimension the query is embedded as the active
     * collection was, until the settings say so too. */
    bool own = !alm_vindex_side_is_configured(j->cfg, &j->side);
    struct alm_embedder *e =
        own ? alm_vindex_embedder(j->cfg, &j->side) : alm_pool_get(j->embedders, &j->eb);
    struct alm_qdrant *q = e ? alm_pool_get(j->qdrants, &j->eb) : NULL;
    enum alm_err err = ALM_ERR_UNAVAILABLE;
    float *vec = NULL;
    const char *texts[1] = {j->query};
    int64_t left;

    if (!e || !q)
        goto out;
    vec = alm_xcalloc((size_t)alm_embedder_dim(e), sizeof(float));
    err = alm_embed(e, texts, 1, vec, j->deadline_ms, &j->eb);
    left = j->deadline_ms - alm_clock_ms();
    if (!err && left < 1)
        err = alm_fail(&j->eb, ALM_ERR_TIMEOUT, "embedding the query used the whole deadline");
    if (!err)
        err = alm_qdrant_query(q, j->side.name, vec, alm_embedder_dim(e), j->kbs, j->n_kbs,
                               CANDIDATES(j->limit), (int)left, &j->hits, &j->n, &j->eb);
out:
    free(vec);
    alm_pool_put(j->qdrants, q);
    if (own)
        alm_embedder_free(e);
    else
        alm_pool_put(j->embedders, e);
    return err;
}

static void *vec_thread(void *arg)
{
    struct vec_job *j = arg;
    enum alm_err err = vec_search(j);

    pthread_mutex_lock(&j->mu);
    j->err = err;
    j->done = true;
    pthread_cond_signal(&j->cond);
    pthread_mutex_unlock(&j->mu);
    vec_unref(j);
    return NULL;
}

static struct vec_job *vec_start(const struct alm_search_env *env, const char *query,
                                 const int64_t *kbs, size_t n_kbs, int limit, int64_t deadline)
{
    struct vec_job *j = alm_xcalloc(1, sizeof(*j));
    pthread_t t;

    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cond, NULL);
    j->refs = 2;
    j->cfg = env->cfg;
    j->embedders = env->embedders;
    j->qdrants = env->qdrants;
    struct alm_vindex v;
    struct alm_errbuf veb = {{0}};
    if (alm_vindex_load(env->pg, (int)env->cfg->db_timeout_ms, env->cfg, &v, &veb))
        alm_warn("search.collection_unknown", "cannot read the active vector collection", "{s:s}",
                 "error", veb.msg); /* v.active holds the settings' collection */
    j->side = v.active;
    j->query = alm_xstrdup(query);
    j->kbs = alm_xcalloc(n_kbs ? n_kbs : 1, sizeof(*kbs));
    memcpy(j->kbs, kbs, n_kbs * sizeof(*kbs));
    j->n_kbs = n_kbs;
    j->limit = limit;
    j->deadline_ms = deadline;
    if (pthread_create(&t, NULL, vec_thread, j) != 0) {
        j->err = alm_fail(&j->eb, ALM_ERR_UNAVAILABLE, "cannot start the vector search");
        j->done = true;
        j->refs = 1;
        return j;
    }
    pthread_detach(t);
    return j;
}

/* Waits for the vector path until the deadline; true when it finished in time. */
static bool vec_wait(struct vec_job *j, int64_t deadline)
{
    bool done;

    pthread_mutex_lock(&j->mu);
    while (!j->done && alm_clock_wait_until(&j->cond, &j->mu, deadline))
        ;
    done = j->done;
    pthread_mutex_unlock(&j->mu);
    return done;
}

static char *kb_array(const int64_t *kbs, size_t n)
{
    struct alm_buf b = ALM_BUF_INIT(0);
    enum alm_err err = ALM_OK;

    for (size_t i = 0; i < n && !err; i++)
        err = alm_db_array_add(&b, kbs[i]);
    if (!err)
        err = alm_db_array_close(&b);
    if (err) { /* an uncapped buffer: only when memory ran out */
        alm_buf_release(&b);
        return NULL;
    }
    return alm_buf_detach(&b, NULL);
}

/* The two forms of a query: qa demands every word (plainto_tsquery), qo accepts any
 * (natural-language questions hold words the answer lacks); ranking uses qo, which
 * rewards chunks that match more words. */
#define TSQUERY                                                                                    \
    "(SELECT p AS qa, CASE WHEN numnode(p) = 0 THEN p ELSE replace(p::text, '&', '|')::tsquery "   \
    "END AS q FROM plainto_tsquery('english', $1) p) q "
/* Matches of each form considered for ranking. Ranking reads every candidate's
 * tsvector, so a query of common words over a large knowledge base would rank a large
 * share of it; the chunks holding all the words always compete, and at most this many
 * of those holding some. */
#define RANK_CAP "1000"

/* The rows of given chunks with their headline, in any order: document_id,
 * knowledge_base_id, chunk_index, title, section, start_offset, end_offset, headline,
 * location, location_kind.
 * The knowledge-base filter is applied again, so a stale payload in Qdrant can never
 * widen what a user sees. */
#define ROW_SELECT                                                                                 \
    "SELECT c.document_id, c.knowledge_base_id, c.chunk_index, d.title, c.section, "               \
    "c.start_offset, c.end_offset, ts_headline('english', c.text, q.q, $3), c.location, "          \
    "d.location_kind "                                                                             \
    "FROM unnest($4::bigint[], $5::int[]) AS h(doc, idx) "                                         \
    "JOIN chunks c ON c.document_id = h.doc AND c.chunk_index = h.idx "                            \
    "JOIN documents d ON d.id = c.document_id, " TSQUERY                                           \
    "WHERE c.knowledge_base_id = ANY($2::bigint[])"

static int stmt_left(int64_t deadline)
{
    int64_t left = deadline - alm_clock_ms();
    return left > 1 ? (int)left : 1;
}

/* The best keyword candidates: document_id, chunk_index, rank; best first. */
static enum alm_err keyword_keys(const struct alm_search_env *env, const char *query,
                                 const char *kbs, int candidates, int64_t deadline, PGresult **res,
                                 struct alm_errbuf *eb)
{
    char lim[16];
    const char *params[3] = {query, kbs, lim};

    snprintf(lim, sizeof(lim), "%d", candidates);
    return alm_db_query(env->pg, stmt_left(deadline),
                        "WITH m AS ((SELECT c.document_id, c.chunk_index FROM chunks c, " TSQUERY
                        "WHERE c.knowledge_base_id = ANY($2::bigint[]) AND c.tsv @@ q.qa "
                        "LIMIT " RANK_CAP ") UNION "
                        "(SELECT c.document_id, c.chunk_index FROM chunks c, " TSQUERY
                        "WHERE c.knowledge_base_id = ANY($2::bigint[]) AND c.tsv @@ q.q "
                        "LIMIT " RANK_CAP ")) "
                        "SELECT c.document_id, c.chunk_index, ts_rank(c.tsv, q.q) AS rank "
                        "FROM m JOIN chunks c USING (document_id, chunk_index), " TSQUERY
                        "ORDER BY rank DESC, c.document_id, c.chunk_index LIMIT $3",
                        3, params, res, eb);
}

static enum alm_err fetch_rows(const struct alm_search_env *env, const char *query, const char *kbs,
                               const struct alm_search_key *keys, size_t n, PGresult **res,
                               struct alm_errbuf *eb)
{
    struct alm_buf docs = ALM_BUF_INIT(0), idx = ALM_BUF_INIT(0); /* uncapped */
    enum alm_err err = ALM_OK;

    for (size_t i = 0; i < n && !err; i++) {
        err = alm_db_array_add(&docs, keys[i].document_id);
        if (!err)
            err = alm_db_array_add(&idx, keys[i].chunk_index);
    }
    if (!err)
        err = alm_db_array_close(&docs);
    if (!err)
        err = alm_db_array_close(&idx);
    const char *params[5] = {query, kbs, headline_opts, docs.data, idx.data};
    if (!err) /* its own budget: the vector path may have used the search deadline up */
        err = alm_db_query(env->pg, (int)env->cfg->db_timeout_ms, ROW_SELECT, 5, params, res, eb);
    alm_buf_release(&docs);
    alm_buf_release(&idx);
    return err;
}

/* The row of res holding key, or -1. */
static int find_row(const PGresult *res, const struct alm_search_key *key)
{
    for (int i = 0; res && i < PQntuples(res); i++) {
        if (strtoll(PQgetvalue(res, i, 0), NULL, 10) == key->document_id &&
            strtoll(PQgetvalue(res, i, 2), NULL, 10) == key->chunk_index)
            return i;
    }
    return -1;
}

static void hit_from_row(struct alm_search_hit *h, const PGresult *res, int row)
{
    h->document_id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    h->knowledge_base_id = strtoll(PQgetvalue(res, row, 1), NULL, 10);
    h->chunk_index = (int)strtol(PQgetvalue(res, row, 2), NULL, 10);
    h->title = alm_xstrdup(PQgetvalue(res, row, 3));
    h->section = PQgetisnull(res, row, 4) ? NULL : alm_xstrdup(PQgetvalue(res, row, 4));
    h->start = strtoll(PQgetvalue(res, row, 5), NULL, 10);
    h->end = strtoll(PQgetvalue(res, row, 6), NULL, 10);
    h->snippet = alm_search_snippet_html(PQgetvalue(res, row, 7));
    h->location = PQgetisnull(res, row, 8) ? 0 : (int)strtol(PQgetvalue(res, row, 8), NULL, 10);
    snprintf(h->location_kind, sizeof(h->location_kind), "%s",
             PQgetisnull(res, row, 9) ? "" : PQgetvalue(res, row, 9));
}

/* What the two paths found, and the fusion of both. */
struct lists {
    PGresult *kw; /* keyword candidates, best first */
    struct alm_qdrant_hit *hits;
    size_t nhits;
    struct alm_search_key *a, *b; /* their keys */
    size_t na, nb;
    size_t *order; /* fused: indices into a, then b */
    double *score;
    size_t n;
};

static void fuse(struct lists *l)
{
    l->na = l->kw ? (size_t)PQntuples(l->kw) : 0;
    l->nb = l->nhits;
    l->a = alm_xcalloc(l->na + 1, sizeof(*l->a));
    l->b = alm_xcalloc(l->nb + 1, sizeof(*l->b));
    l->order = alm_xcalloc(l->na + l->nb + 1, sizeof(*l->order));
    l->score = alm_xcalloc(l->na + l->nb + 1, sizeof(*l->score));
    for (size_t i = 0; i < l->na; i++) {
        l->a[i].document_id = strtoll(PQgetvalue(l->kw, (int)i, 0), NULL, 10);
        l->a[i].chunk_index = strtoll(PQgetvalue(l->kw, (int)i, 1), NULL, 10);
    }
    for (size_t j = 0; j < l->nb; j++) {
        l->b[j].document_id = l->hits[j].document_id;
        l->b[j].chunk_index = l->hits[j].chunk_index;
    }
    l->n = alm_search_rrf(l->a, l->na, l->b, l->nb, l->order, l->score);
}

static const struct alm_search_key *fused_key(const struct lists *l, size_t k)
{
    return l->order[k] < l->na ? &l->a[l->order[k]] : &l->b[l->order[k] - l->na];
}

/* 1-based rank of key in keys, 0 when absent. */
static int rank_in(const struct alm_search_key *keys, size_t n, const struct alm_search_key *key)
{
    for (size_t i = 0; i < n; i++) {
        if (keys[i].document_id == key->document_id && keys[i].chunk_index == key->chunk_index)
            return (int)i + 1;
    }
    return 0;
}

/* The final hits in fused order, with rows (and snippets) fetched for these only. Keys
 * without a row (deleted meanwhile, or outside the allowed knowledge bases) drop out, so
 * a few more than limit are fetched. */
static enum alm_err assemble(const struct alm_search_env *env, const char *query, const char *kbs,
                             struct lists *l, enum alm_search_mode mode, int limit,
                             struct alm_search_result *res, struct alm_errbuf *eb)
{
    size_t want = l->n < (size_t)limit * 2 ? l->n : (size_t)limit * 2;
    struct alm_search_key *keys = alm_xcalloc(want + 1, sizeof(*keys));
    PGresult *rows = NULL;
    enum alm_err err = ALM_OK;

    for (size_t k = 0; k < want; k++)
        keys[k] = *fused_key(l, k);
    if (want)
        err = fetch_rows(env, query, kbs, keys, want, &rows, eb);
    res->hits = alm_xcalloc((size_t)limit + 1, sizeof(*res->hits));
    for (size_t k = 0; !err && k < want && res->n < (size_t)limit; k++) {
        int row = find_row(rows, &keys[k]);
        struct alm_search_hit *h;
        if (row < 0)
            continue;
        h = &res->hits[res->n++];
        hit_from_row(h, rows, row);
        h->keyword_rank = rank_in(l->a, l->na, &keys[k]);
        h->vector_rank = rank_in(l->b, l->nb, &keys[k]);
        h->score = l->score[k];
        if (mode == ALM_SEARCH_KEYWORD)
            h->score = strtod(PQgetvalue(l->kw, h->keyword_rank - 1, 2), NULL);
        else if (mode == ALM_SEARCH_VECTOR)
            h->score = l->hits[h->vector_rank - 1].score;
    }
    PQclear(rows);
    free(keys);
    return err;
}

/* Collects the vector path's outcome into l, or the reason it is missing. */
static void collect_vector(struct vec_job *j, int64_t deadline, struct lists *l,
                           struct alm_search_result *res)
{
    if (!vec_wait(j, deadline)) {
        res->degraded = true;
        snprintf(res->reason, sizeof(res->reason),
                 "vector search did not answer in time: keyword results only");
    } else if (j->err) {
        res->degraded = true;
        snprintf(res->reason, sizeof(res->reason),
                 "vector search failed (%.120s): keyword "
                 "results only",
                 j->eb.msg);
    } else {
        l->hits = j->hits;
        l->nhits = j->n;
        j->hits = NULL;
    }
    if (res->degraded)
        alm_warn("search.degraded", "search answered without vectors", "{s:s}", "reason",
                 res->reason);
    vec_unref(j);
}

enum alm_err alm_search_run(const struct alm_search_env *env, const char *query, const int64_t *kbs,
                            size_t n_kbs, int limit, enum alm_search_mode mode, int64_t deadline_ms,
                            struct alm_search_result *res, struct alm_errbuf *eb)
{
    struct lists l = {0};
    struct vec_job *j = NULL;
    char *kb = kb_array(kbs, n_kbs);
    enum alm_err err = ALM_OK;

    memset(res, 0, sizeof(*res));
    if (mode != ALM_SEARCH_KEYWORD && env->qdrants) {
        j = vec_start(env, query, kbs, n_kbs, limit, deadline_ms);
    } else if (mode != ALM_SEARCH_KEYWORD) {
        res->degraded = true;
        snprintf(res->reason, sizeof(res->reason),
                 "vector search is not configured (ALMANAC_QDRANT_URL unset): keyword results "
                 "only");
    }
    /* Fusion needs more candidates than a single ranking does. */
    if (mode != ALM_SEARCH_VECTOR)
        err = keyword_keys(env, query, kb, mode == ALM_SEARCH_KEYWORD ? limit : CANDIDATES(limit),
                           deadline_ms, &l.kw, eb);
    if (j)
        collect_vector(j, deadline_ms, &l, res);
    if (!err) {
        fuse(&l);
        err = assemble(env, query, kb, &l, mode, limit, res, eb);
    }
    PQclear(l.kw);
    free(l.hits);
    free(l.a);
    free(l.b);
    free(l.order);
    free(l.score);
    free(kb);
    return err;
}

void alm_search_result_release(struct alm_search_result *res)
{
    for (size_t i = 0; i < res->n; i++) {
        free(res->hits[i].title);
        free(res->hits[i].section);
        free(res->hits[i].snippet);
    }
    ALM_FREE(res->hits);
    res->n = 0;
}

static void *embedder_new(void *ctx, int timeout_ms, struct alm_errbuf *eb)
{
    (void)timeout_ms;
    (void)eb;
    return alm_embedder_new(ctx);
}

static void embedder_free(void *e)
{
    alm_embedder_free(e);
}

static void *qdrant_new(void *ctx, int timeout_ms, struct alm_errbuf *eb)
{
    (void)timeout_ms;
    (void)eb;
    return alm_qdrant_new(ctx);
}

static void qdrant_free(void *q)
{
    alm_qdrant_free(q);
}

/* Both keep no state that an error could break. */
static bool always_usable(void *conn)
{
    (void)conn;
    return true;
}

const struct alm_pool_ops alm_search_embedder_pool_ops = {embedder_new, embedder_free,
                                                          always_usable};
const struct alm_pool_ops alm_search_qdrant_pool_ops = {qdrant_new, qdrant_free, always_usable};
