#include "compat.h"
#include "search.h"
#include "clock.h"
#include "db.h"
#include "embed.h"
#include "log.h"
#include "mem.h"
#include "qdrant.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Candidates taken from each path before fusion. */
#define CANDIDATES(limit) ((limit)*3 < 30 ? 30 : (limit)*3)
/* ts_headline options; \x02 and \x03 mark matches until they become <mark> tags. */
#define HEADLINE_OPTS                                                                              \
    "StartSel=\x02, StopSel=\x03, MaxWords=40, MinWords=15, MaxFragments=2, "                      \
    "FragmentDelimiter=\" ... \""

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
    struct alm_embedder *e = alm_pool_get(j->embedders, &j->eb);
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
        err = alm_qdrant_query(q, j->cfg->qdrant_collection, vec, alm_embedder_dim(e), j->kbs,
                               j->n_kbs, CANDIDATES(j->limit), (int)left, &j->hits, &j->n, &j->eb);
out:
    free(vec);
    alm_pool_put(j->qdrants, q);
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
    pthread_condattr_t attr;
    pthread_t t;

    pthread_mutex_init(&j->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&j->cond, &attr);
    pthread_condattr_destroy(&attr);
    j->refs = 2;
    j->cfg = env->cfg;
    j->embedders = env->embedders;
    j->qdrants = env->qdrants;
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
    struct timespec until = {deadline / 1000, (deadline % 1000) * 1000000L};
    bool done;

    pthread_mutex_lock(&j->mu);
    while (!j->done && pthread_cond_timedwait(&j->cond, &j->mu, &until) == 0)
        ;
    done = j->done;
    pthread_mutex_unlock(&j->mu);
    return done;
}

static char *kb_array(const int64_t *kbs, size_t n)
{
    struct alm_buf b = ALM_BUF_INIT(0);
    enum alm_err err = alm_buf_append(&b, "{", 1);

    for (size_t i = 0; i < n && !err; i++)
        err = alm_buf_appendf(&b, "%s%lld", i ? "," : "", (long long)kbs[i]);
    if (!err)
        err = alm_buf_append(&b, "}", 1);
    return alm_buf_detach(&b, NULL);
}

/* Questions are written in natural language: any of their words may match, and ranking
 * rewards chunks that match more of them (plainto_tsquery's AND would demand all). */
#define TSQUERY                                                                                    \
    "(SELECT CASE WHEN numnode(p) = 0 THEN p ELSE replace(p::text, '&', '|')::tsquery END "        \
    "AS q FROM plainto_tsquery('english', $1) p) q "

/* Both row queries return: document_id, knowledge_base_id, chunk_index, title, section,
 * start_offset, end_offset, rank, headline. The knowledge-base filter is applied to the
 * vector hits again, so a stale payload in Qdrant can never widen what a user sees. */
#define ROW_SELECT_VECTOR                                                                          \
    "SELECT c.document_id, c.knowledge_base_id, c.chunk_index, d.title, c.section, "               \
    "c.start_offset, c.end_offset, 0, ts_headline('english', c.text, q.q, $3) "                    \
    "FROM unnest($4::bigint[], $5::int[]) AS h(doc, idx) "                                         \
    "JOIN chunks c ON c.document_id = h.doc AND c.chunk_index = h.idx "                            \
    "JOIN documents d ON d.id = c.document_id, " TSQUERY                                           \
    "WHERE c.knowledge_base_id = ANY($2::bigint[])"

static enum alm_err keyword_rows(const struct alm_search_env *env, const char *query,
                                 const char *kbs, int candidates, int64_t deadline, PGresult **res,
                                 struct alm_errbuf *eb)
{
    char lim[16];
    const char *params[4] = {query, kbs, HEADLINE_OPTS, lim};
    int64_t left = deadline - alm_clock_ms();

    snprintf(lim, sizeof(lim), "%d", candidates);
    /* Rank in an inner query so ts_headline runs on the kept rows only. */
    return alm_db_query(env->pg, left > 1 ? (int)left : 1,
                        "WITH top AS (SELECT c.document_id, c.chunk_index, "
                        "ts_rank(c.tsv, q.q) AS rank FROM chunks c, " TSQUERY
                        "WHERE c.knowledge_base_id = ANY($2::bigint[]) AND c.tsv @@ q.q "
                        "ORDER BY rank DESC, c.document_id, c.chunk_index LIMIT $4) "
                        "SELECT c.document_id, c.knowledge_base_id, c.chunk_index, d.title, "
                        "c.section, c.start_offset, c.end_offset, top.rank, "
                        "ts_headline('english', c.text, q.q, $3) "
                        "FROM top JOIN chunks c USING (document_id, chunk_index) "
                        "JOIN documents d ON d.id = c.document_id, " TSQUERY
                        "ORDER BY top.rank DESC, c.document_id, c.chunk_index",
                        4, params, res, eb);
}

/* The rows of the vector hits, by (document, chunk) pairs, in any order. */
static enum alm_err vector_rows(const struct alm_search_env *env, const char *query,
                                const char *kbs, const struct alm_qdrant_hit *hits, size_t n,
                                int64_t deadline, PGresult **res, struct alm_errbuf *eb)
{
    struct alm_buf docs = ALM_BUF_INIT(0), idx = ALM_BUF_INIT(0);
    const char *params[5];
    int64_t left = deadline - alm_clock_ms();
    enum alm_err err = alm_buf_append(&docs, "{", 1) | alm_buf_append(&idx, "{", 1);

    for (size_t i = 0; i < n; i++) {
        err |= alm_buf_appendf(&docs, "%s%lld", i ? "," : "", (long long)hits[i].document_id);
        err |= alm_buf_appendf(&idx, "%s%d", i ? "," : "", hits[i].chunk_index);
    }
    err |= alm_buf_append(&docs, "}", 1) | alm_buf_append(&idx, "}", 1);
    params[0] = query;
    params[1] = kbs;
    params[2] = HEADLINE_OPTS;
    params[3] = docs.data;
    params[4] = idx.data;
    if (!err)
        err =
            alm_db_query(env->pg, left > 1 ? (int)left : 1, ROW_SELECT_VECTOR, 5, params, res, eb);
    alm_buf_release(&docs);
    alm_buf_release(&idx);
    return err;
}

/* The row of res holding (doc, chunk), or -1. */
static int find_row(const PGresult *res, int64_t doc, int chunk)
{
    for (int i = 0; res && i < PQntuples(res); i++) {
        if (strtoll(PQgetvalue(res, i, 0), NULL, 10) == doc && atoi(PQgetvalue(res, i, 2)) == chunk)
            return i;
    }
    return -1;
}

static void hit_from_row(struct alm_search_hit *h, const PGresult *res, int row)
{
    h->document_id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    h->knowledge_base_id = strtoll(PQgetvalue(res, row, 1), NULL, 10);
    h->chunk_index = atoi(PQgetvalue(res, row, 2));
    h->title = alm_xstrdup(PQgetvalue(res, row, 3));
    h->section = PQgetisnull(res, row, 4) ? NULL : alm_xstrdup(PQgetvalue(res, row, 4));
    h->start = strtoll(PQgetvalue(res, row, 5), NULL, 10);
    h->end = strtoll(PQgetvalue(res, row, 6), NULL, 10);
    h->snippet = alm_search_snippet_html(PQgetvalue(res, row, 8));
}

/* What the two paths found, ready for fusion. */
struct lists {
    PGresult *kw;  /* keyword rows, best first */
    PGresult *vec; /* rows of the vector hits, any order */
    struct alm_qdrant_hit *hits;
    size_t nhits;
};

/* Fuses (or takes the single path) into res->hits, at most limit. */
static void assemble(const struct lists *l, enum alm_search_mode mode, int limit,
                     struct alm_search_result *res)
{
    size_t na = l->kw ? (size_t)PQntuples(l->kw) : 0, nb = 0, n;
    struct alm_search_key *a = alm_xcalloc(na + 1, sizeof(*a));
    struct alm_search_key *b = alm_xcalloc(l->nhits + 1, sizeof(*b));
    double *vscore = alm_xcalloc(l->nhits + 1, sizeof(double));
    size_t *order = alm_xcalloc(na + l->nhits + 1, sizeof(size_t));
    double *score = alm_xcalloc(na + l->nhits + 1, sizeof(double));

    for (size_t i = 0; i < na; i++) {
        a[i].document_id = strtoll(PQgetvalue(l->kw, (int)i, 0), NULL, 10);
        a[i].chunk_index = atoi(PQgetvalue(l->kw, (int)i, 2));
    }
    for (size_t j = 0; j < l->nhits; j++) {
        if (find_row(l->vec, l->hits[j].document_id, l->hits[j].chunk_index) < 0)
            continue; /* deleted meanwhile, or outside the allowed knowledge bases */
        b[nb].document_id = l->hits[j].document_id;
        b[nb].chunk_index = l->hits[j].chunk_index;
        vscore[nb++] = l->hits[j].score;
    }
    n = alm_search_rrf(a, na, b, nb, order, score);
    if (n > (size_t)limit)
        n = (size_t)limit;
    res->hits = alm_xcalloc(n + 1, sizeof(*res->hits));
    for (size_t k = 0; k < n; k++) {
        struct alm_search_hit *h = &res->hits[res->n++];
        size_t idx = order[k];
        if (idx < na) {
            hit_from_row(h, l->kw, (int)idx);
            h->keyword_rank = (int)idx + 1;
        } else {
            hit_from_row(h, l->vec,
                         find_row(l->vec, b[idx - na].document_id, (int)b[idx - na].chunk_index));
            h->vector_rank = (int)(idx - na) + 1;
        }
        for (size_t j = 0; !h->vector_rank && j < nb; j++) {
            if (b[j].document_id == h->document_id && b[j].chunk_index == h->chunk_index)
                h->vector_rank = (int)j + 1;
        }
        h->score = score[k];
        if (mode == ALM_SEARCH_KEYWORD)
            h->score = strtod(PQgetvalue(l->kw, (int)idx, 7), NULL);
        else if (mode == ALM_SEARCH_VECTOR)
            h->score = vscore[idx - na];
    }
    free(a);
    free(b);
    free(vscore);
    free(order);
    free(score);
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
    if (mode != ALM_SEARCH_VECTOR)
        err = keyword_rows(env, query, kb, CANDIDATES(limit), deadline_ms, &l.kw, eb);
    if (j)
        collect_vector(j, deadline_ms, &l, res);
    if (!err && l.nhits)
        err = vector_rows(env, query, kb, l.hits, l.nhits, deadline_ms, &l.vec, eb);
    if (!err)
        assemble(&l, mode, limit, res);
    PQclear(l.kw);
    PQclear(l.vec);
    free(l.hits);
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

static void *embedder_new(void *ctx, struct alm_errbuf *eb)
{
    (void)eb;
    return alm_embedder_new(ctx);
}

static void embedder_free(void *e)
{
    alm_embedder_free(e);
}

static void *qdrant_new(void *ctx, struct alm_errbuf *eb)
{
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
