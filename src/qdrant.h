/* SPDX-License-Identifier: Apache-2.0 */
/* qdrant.h: the Qdrant REST client (libcurl).
 *
 * One struct alm_qdrant holds one curl handle and so one kept-alive connection; it is
 * used by one thread at a time. Timeouts are libcurl's, enforced on the socket. Request
 * and reply bodies follow the Qdrant OpenAPI contract (v1.x): collections, points
 * upsert/delete/count and the universal query endpoint. Reply bodies are read through a
 * capped buffer. */
#pragma once
#include "compat.h"
#include "config.h"
#include "err.h"

#include <jansson.h>

struct alm_qdrant;

/* Returns a new client for cfg->qdrant_url (which must be set); free with alm_qdrant_free. */
struct alm_qdrant *alm_qdrant_new(const struct alm_config *cfg);
void alm_qdrant_free(struct alm_qdrant *q);
/* GET /readyz: ALM_OK when Qdrant answers 2xx within timeout_ms. */
enum alm_err alm_qdrant_readyz(struct alm_qdrant *q, int timeout_ms,
                               struct alm_errbuf *eb) ALM_MUSTCHECK;

/* The point id of a chunk: the UUIDv5 (RFC 4122, SHA-1) of "<document_id>:<chunk_index>"
 * in Almanac's namespace, as 36 characters plus NUL. Deterministic, so re-running an
 * ingestion overwrites instead of duplicating. */
void alm_qdrant_point_id(int64_t document_id, int chunk_index, char out[37]);

/* Creates collection with dim-dimensional cosine vectors and payload indexes on
 * knowledge_base_id and document_id unless it exists; ALM_ERR_CONFLICT naming both sizes
 * when it exists with another dimension. */
enum alm_err alm_qdrant_ensure_collection(struct alm_qdrant *q, const char *collection, int dim,
                                          int timeout_ms, struct alm_errbuf *eb) ALM_MUSTCHECK;

/* Reads the collection without changing it: ALM_OK when it exists with dim-dimensional
 * cosine vectors, ALM_ERR_NOT_FOUND when missing, ALM_ERR_CONFLICT naming both sizes. */
enum alm_err alm_qdrant_check_collection(struct alm_qdrant *q, const char *collection, int dim,
                                         int timeout_ms, struct alm_errbuf *eb) ALM_MUSTCHECK;

struct alm_qdrant_point {
    char id[37];
    const float *vector; /* dim floats, borrowed */
    json_t *payload;     /* borrowed object */
};

/* Upserts points (wait=true: visible to queries when this returns). */
enum alm_err alm_qdrant_upsert(struct alm_qdrant *q, const char *collection,
                               const struct alm_qdrant_point *points, size_t n, int dim,
                               int timeout_ms, struct alm_errbuf *eb) ALM_MUSTCHECK;
/* Deletes the points whose payload key (e.g. "document_id") equals value; with
 * min_chunk >= 0 only those whose chunk_index is >= min_chunk (stale chunks of a
 * document that became shorter). */
enum alm_err alm_qdrant_delete_where(struct alm_qdrant *q, const char *collection, const char *key,
                                     int64_t value, int min_chunk, int timeout_ms,
                                     struct alm_errbuf *eb) ALM_MUSTCHECK;
/* Counts the points of one document (exact). */
enum alm_err alm_qdrant_count_document(struct alm_qdrant *q, const char *collection,
                                       int64_t document_id, int64_t *count, int timeout_ms,
                                       struct alm_errbuf *eb) ALM_MUSTCHECK;

struct alm_qdrant_hit {
    int64_t document_id;
    int chunk_index;
    double score;
};

/* Nearest chunks to vector among those whose knowledge_base_id is one of kbs (n_kbs >= 1):
 * *hits is a new array of *n hits (caller frees), best first, at most limit. */
enum alm_err alm_qdrant_query(struct alm_qdrant *q, const char *collection, const float *vector,
                              int dim, const int64_t *kbs, size_t n_kbs, int limit, int timeout_ms,
                              struct alm_qdrant_hit **hits, size_t *n,
                              struct alm_errbuf *eb) ALM_MUSTCHECK;
