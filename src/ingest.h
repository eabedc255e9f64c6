/* SPDX-License-Identifier: Apache-2.0 */
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
    /* ensure_collection done by this thread; forgotten after any Qdrant error, so a
     * collection lost with Qdrant's data is created again by the next job. */
    bool collection_ready;
};

/* Processes document id. ALM_OK also when the document no longer exists (deleted
 * meanwhile: nothing to do). deadline_ms is CLOCK_MONOTONIC; the chunk writes get what
 * is left of it. A failure changes nothing in the document's status: the caller records
 * it (alm_ingest_record_failure), since only it knows whether the document or a
 * dependency is to blame. */
enum alm_err alm_ingest_document(struct alm_ingest_ctx *ctx, int64_t id, int64_t deadline_ms,
                                 struct alm_errbuf *eb) ALM_MUSTCHECK;
/* A failed attempt of the document itself: failed after the last one (last), else
 * pending with the error, for the retry. */
void alm_ingest_record_failure(struct alm_ingest_ctx *ctx, int64_t id, bool last,
                               const char *error);
/* The job is put back because a dependency is down: pending, the error says what it
 * waits for. Best effort (the database may be the one that is down). */
void alm_ingest_record_waiting(struct alm_ingest_ctx *ctx, int64_t id, const char *waiting_for);
/* Deletes the vectors of a document (document_id) or a whole knowledge base. */
enum alm_err alm_ingest_purge(struct alm_ingest_ctx *ctx, const char *key, int64_t value,
                              struct alm_errbuf *eb) ALM_MUSTCHECK;
/* Marks a document failed with error (after the last attempt, or for a dead letter). */
void alm_ingest_mark_failed(struct alm_ingest_ctx *ctx, int64_t id, const char *error);
