/* SPDX-License-Identifier: Apache-2.0 */
/* search.h: hybrid search: PostgreSQL full-text and Qdrant vectors, fused.
 *
 * The keyword path (full-text search where any word of the query may match, ranked by
 * ts_rank, so natural-language questions find passages) runs on the request's connection
 * while the vector path (embed the query, query Qdrant with a knowledge-base filter)
 * runs on its own thread; the answer waits for the vector path only until the search
 * deadline. The two rankings are fused with reciprocal rank fusion (k = 60). When the
 * vector path is off, down or late, the keyword results are returned, marked degraded
 * with the reason. */
#pragma once
#include "compat.h"
#include "config.h"
#include "err.h"
#include "pool.h"

#include <libpq-fe.h>

enum alm_search_mode { ALM_SEARCH_HYBRID, ALM_SEARCH_KEYWORD, ALM_SEARCH_VECTOR };

#define ALM_SEARCH_MAX_QUERY 1000 /* bytes */
#define ALM_SEARCH_MAX_LIMIT 50
#define ALM_SEARCH_RRF_K     60

struct alm_search_hit {
    int64_t document_id;
    int64_t knowledge_base_id;
    int chunk_index;
    char *title;
    char *section; /* NULL outside any section */
    char *snippet; /* HTML-escaped text, matches wrapped in <mark>...</mark> */
    int64_t start; /* characters (code points) in the document's text */
    int64_t end;
    int location;          /* page, slide, sheet or chapter; 0 when the format has none */
    char location_kind[8]; /* "page", "slide", "sheet", "chapter" or "" */
    double score;          /* the fused score (or the single path's in a single mode) */
    int keyword_rank;      /* 1-based rank in the keyword list, 0 when absent */
    int vector_rank;       /* 1-based rank in the vector list, 0 when absent */
};

struct alm_search_result {
    struct alm_search_hit *hits;
    size_t n;
    bool degraded;
    char reason[200]; /* why degraded */
};

/* What the search borrows: connections and clients for the vector path. */
struct alm_search_env {
    const struct alm_config *cfg;
    PGconn *pg;                 /* the request's connection */
    struct alm_pool *embedders; /* struct alm_embedder pool; NULL when no Qdrant */
    struct alm_pool *qdrants;   /* struct alm_qdrant pool; NULL when no Qdrant */
};

/* Runs the search over the given knowledge bases (already checked for permission).
 * deadline_ms is CLOCK_MONOTONIC. res is released with alm_search_result_release. */
enum alm_err alm_search_run(const struct alm_search_env *env, const char *query, const int64_t *kbs,
                            size_t n_kbs, int limit, enum alm_search_mode mode, int64_t deadline_ms,
                            struct alm_search_result *res, struct alm_errbuf *eb) ALM_MUSTCHECK;
void alm_search_result_release(struct alm_search_result *res);

struct alm_search_key {
    int64_t document_id;
    int64_t chunk_index;
};

/* The fusion alm_search_run applies to its keyword (a) and vector (b) candidates:
 * reciprocal rank fusion, each list adding 1 / (ALM_SEARCH_RRF_K + rank) to a key's
 * score. a and b hold n_a and n_b keys, best first. out_index gets the fused order,
 * best first, as indices into a (0..n_a-1) or b (n_a..n_a+n_b-1; keys also in a appear
 * once, as a's), out_score their fused scores, both sized n_a + n_b; equal scores keep
 * a's order, then b's. Returns the count. */
size_t alm_search_rrf(const struct alm_search_key *a, size_t n_a, const struct alm_search_key *b,
                      size_t n_b, size_t *out_index, double *out_score);
/* The snippet of a hit from its ts_headline (run with the \x02 / \x03 markers
 * alm_search_run asks for): text escaped for HTML, the markers turned into <mark> tags;
 * returns a new string. */
char *alm_search_snippet_html(const char *headline);

/* Pool operations for the vector path's embedders and Qdrant clients (ctx: config). */
extern const struct alm_pool_ops alm_search_embedder_pool_ops;
extern const struct alm_pool_ops alm_search_qdrant_pool_ops;
