/* ingest.h: the ingestion job of one document, and the vector purge job.
 *
 * alm_ingest_document() loads the document, marks it processing, extracts its text,
 * chunks it, embeds the chunks, upserts their vectors into Qdrant under deterministic
 * point ids (and deletes points of chunks that no longer exist), then stores the chunks
 * and marks the document ready, in one transaction. Running it twice leaves the same
 * state, so at-least-once delivery is safe. Without Qdrant (development) the vector
 * steps are skipped and search is keyword only. */
#pragma once
#include "compat.h"
#include "config.h"
#include "embed.h"
#include "err.h"
#include "qdrant.h"

#include <libpq-fe.h>

/* What one worker thread holds; the caller owns every member. */
struct alm_ingest_ctx {
    const struct alm_config *cfg;
    PGconn *pg;
    struct alm_qdrant *qdrant; /* NULL when Qdrant is not configured */
    struct alm_embedder *embedder;
    bool collection_ready; /* ensure_collection done by this thread */
};

/* Processes document id. last_attempt: a failure marks the document failed (else it is
 * left pending with the error, for the retry). ALM_OK also when the document no longer
 * exists (deleted meanwhile: nothing to do). deadline_ms is CLOCK_MONOTONIC. */
enum alm_err alm_ingest_document(struct alm_ingest_ctx *ctx, int64_t id, bool last_attempt,
                                 int64_t deadline_ms, struct alm_errbuf *eb) ALM_MUSTCHECK;
/* Deletes the vectors of a document (document_id) or a whole knowledge base. */
enum alm_err alm_ingest_purge(struct alm_ingest_ctx *ctx, const char *key, int64_t value,
                              struct alm_errbuf *eb) ALM_MUSTCHECK;
/* Marks a document failed with error (after the last attempt, or for a dead letter). */
void alm_ingest_mark_failed(struct alm_ingest_ctx *ctx, int64_t id, const char *error);
