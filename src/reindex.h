/* SPDX-License-Identifier: Apache-2.0 */
/* reindex.h: bulk re-indexing, a run at a time, resumable.
 *
 * A run queues ingestion jobs (through the outbox, like a reprocess) for every document
 * of its scope, in id order, a batch per transaction that also advances the run's
 * cursor in reindex_runs: a run stopped at any point resumes after the last batch it
 * committed. Scopes: all documents, one knowledge base, those whose vectors in Qdrant
 * do not match their chunks (missing), and those left pending or processing (after a
 * restore, their jobs are not in the new Redis). Progress is a count: each queued
 * document names the run (documents.reindex_run) until it is ready or failed. */
#pragma once
#include "compat.h"
#include "err.h"
#include "qdrant.h"

#include <jansson.h>
#include <libpq-fe.h>

enum alm_reindex_scope {
    ALM_REINDEX_ALL,
    ALM_REINDEX_KB,
    ALM_REINDEX_MISSING,
    ALM_REINDEX_UNFINISHED,
    ALM_REINDEX_COLLECTION /* every document, for the collection being built (vindex.h) */
};

struct alm_reindex_run {
    int64_t id;
    enum alm_reindex_scope scope;
    int64_t kb;     /* ALM_REINDEX_KB only */
    int64_t cursor; /* last document examined */
    int64_t total;  /* documents of the scope when the run started */
    int64_t examined, queued, ready, failed;
    bool finished; /* every document examined */
    bool resumed;  /* alm_reindex_open found this run unfinished */
};

const char *alm_reindex_scope_name(enum alm_reindex_scope scope);
/* The unfinished run of the same scope (and kb), resumed, or a new one. */
enum alm_err alm_reindex_open(PGconn *pg, int timeout_ms, enum alm_reindex_scope scope, int64_t kb,
                              struct alm_reindex_run *run, struct alm_errbuf *eb) ALM_MUSTCHECK;
/* Examines up to batch documents after the cursor and queues those the scope takes
 * (missing: asks q, in collection, for each document's point count), committing them
 * and the cursor together. Sets run->finished when none are left. */
enum alm_err alm_reindex_step(PGconn *pg, int timeout_ms, struct alm_qdrant *q,
                              const char *collection, int batch, struct alm_reindex_run *run,
                              struct alm_errbuf *eb) ALM_MUSTCHECK;
/* Re-reads the run's counters, and how many of its documents are ready or failed. */
enum alm_err alm_reindex_refresh(PGconn *pg, int timeout_ms, struct alm_reindex_run *run,
                                 struct alm_errbuf *eb) ALM_MUSTCHECK;
/* The latest runs (at most limit), newest first, as the operations API shows them. */
enum alm_err alm_reindex_list(PGconn *pg, int timeout_ms, int limit, json_t **runs,
                              struct alm_errbuf *eb) ALM_MUSTCHECK;
