/* SPDX-License-Identifier: Apache-2.0 */
/* outbox.h: jobs written with the change that needs them, relayed to the Redis queue.
 *
 * A handler adds an outbox row inside its own transaction, so a committed upload always
 * has its job, whatever Redis does at that moment. The relay moves rows to the queue
 * streams exactly once: each row is added to its stream by a Lua script that first sets
 * a dedup key for the row (SET NX), so a relay that crashes between XADD and deleting
 * the row, or two relays racing, never enqueue a row twice. Rows are taken with FOR
 * UPDATE SKIP LOCKED, so any number of relays (api kicks, beat) can run at once. */
#pragma once
#include "compat.h"
#include "config.h"
#include "err.h"
#include "redis_keys.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>

/* The ingest queue of a document of knowledge base kb (a SQL expression): bulk when its
 * owner has more than 8 (the fair share) documents pending or processing. */
#define ALM_INGEST_QUEUE_SQL(kb)                                                                   \
    "(SELECT CASE WHEN count(*) > 8 THEN '" ALM_QUEUE_INGEST_BULK "' ELSE '" ALM_QUEUE_INGEST      \
    "' END FROM documents wd JOIN knowledge_bases wk ON wk.id = "                                  \
    "wd.knowledge_base_id WHERE wk.owner_id = (SELECT owner_id FROM knowledge_bases WHERE id "     \
    "= " kb ") AND wd.status IN ('pending', 'processing'))"

/* Adds a job to the outbox on conn, inside the caller's transaction. payload is
 * borrowed. */
enum alm_err alm_outbox_add(PGconn *conn, int timeout_ms, const char *queue, const char *type,
                            const json_t *payload, struct alm_errbuf *eb) ALM_MUSTCHECK;
/* Relays rows in batches until the outbox is empty or a batch fails, and logs how many
 * left it (outbox.relayed, with by: who relayed them). With fence_key set, a row is
 * enqueued only while that key still holds fence_value (the beat's leadership): a leader
 * that lost its lease cannot enqueue, ALM_ERR_CONFLICT then. On an error other than
 * that, either connection may be broken. */
enum alm_err alm_outbox_relay(PGconn *pg, redisContext *redis, int timeout_ms,
                              const char *fence_key, const char *fence_value, const char *by,
                              struct alm_errbuf *eb) ALM_MUSTCHECK;

/* A background relay thread with its own connections: kicked after each commit that
 * added rows, and retrying every few seconds while rows remain (Redis down). */
struct alm_relayer;
struct alm_relayer *alm_relayer_start(const struct alm_config *cfg);
void alm_relayer_kick(struct alm_relayer *r);
void alm_relayer_stop(struct alm_relayer *r);
