/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "outbox.h"
#include "clock.h"
#include "db.h"
#include "log.h"
#include "mem.h"
#include "redis.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Dedup keys outlive any plausible relay retry by far. */
#define DEDUP_TTL_S     "604800"
#define RETRY_MS        2000
#define RELAY_BATCH     200
#define RELAY_TIMEOUTMS 5000

/* KEYS[1] dedup key, KEYS[2] stream, KEYS[3] fence key or ""; ARGV[1] the job JSON,
 * ARGV[2] the dedup TTL, ARGV[3] the fence value expected there. */
static const char relay_script[] =
    "if KEYS[3] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[3] then "
    "  return redis.error_reply('FENCED leadership lost') "
    "end "
    "if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then "
    "  return redis.call('XADD', KEYS[2], '*', 'job', ARGV[1]) "
    "end "
    "return false";

enum alm_err alm_outbox_add(PGconn *conn, int timeout_ms, const char *queue, const char *type,
                            const json_t *payload, struct alm_errbuf *eb)
{
    char *text = json_dumps(payload, JSON_COMPACT);
    const char *params[3] = {queue, type, text};
    enum alm_err err;

    if (!text)
        return alm_fail(eb, ALM_ERR_NOMEM, "cannot encode a job");
    err = alm_db_query(conn, timeout_ms,
                       "INSERT INTO outbox (queue, job_type, payload) VALUES ($1, $2, $3)", 3,
                       params, NULL, eb);
    free(text);
    return err;
}

/* The job as the worker reads it: id, type, payload, attempt, enqueued time. */
static char *job_json(const PGresult *res, int row)
{
    json_error_t jerr;
    json_t *payload = json_loads(PQgetvalue(res, row, 3), 0, &jerr);
    json_t *job =
        json_pack("{s:s+, s:s, s:o, s:i, s:I}", "id", "outbox-", PQgetvalue(res, row, 5), "type",
                  PQgetvalue(res, row, 2), "payload", payload ? payload : json_object(), "attempt",
                  1, "enqueued_at", (json_int_t)strtoll(PQgetvalue(res, row, 4), NULL, 10));
    char *text = job ? json_dumps(job, JSON_COMPACT) : NULL;

    json_decref(job);
    return text;
}

/* Sends one row through the dedup script; ALM_OK when it is in the stream now (new or
 * sent by an earlier relay), ALM_ERR_CONFLICT when fenced off. The dedup key is the
 * row's random uid, never its id: ids start over after a restore, markers in Redis do
 * not. */
static enum alm_err send_row(redisContext *redis, const PGresult *res, int row,
                             const char *fence_key, const char *fence_value, struct alm_errbuf *eb)
{
    char *job = job_json(res, row);
    char *dedup = alm_xasprintf(ALM_OUTBOX_DEDUP "%s", PQgetvalue(res, row, 5));
    char *stream = alm_xasprintf(ALM_STREAM_PREFIX "%s", PQgetvalue(res, row, 1));
    const char *argv[] = {"EVAL",
                          relay_script,
                          "3",
                          dedup,
                          stream,
                          fence_key ? fence_key : "",
                          job ? job : "{}",
                          DEDUP_TTL_S,
                          fence_value ? fence_value : ""};
    redisReply *r = redisCommandArgv(redis, 9, argv, NULL);
    enum alm_err err = ALM_OK;

    if (!r)
        err = alm_redis_error(redis, RELAY_TIMEOUTMS, eb);
    else if (r->type == REDIS_REPLY_ERROR && strstr(r->str, "FENCED"))
        err = alm_fail(eb, ALM_ERR_CONFLICT, "not the leader any more: nothing enqueued");
    else if (r->type == REDIS_REPLY_ERROR)
        err = alm_fail(eb, ALM_ERR_UNAVAILABLE, "relay script failed: %.100s", r->str);
    if (r)
        freeReplyObject(r);
    free(job);
    free(dedup);
    free(stream);
    return err;
}

/* Relays up to max rows; *relayed gets how many left the outbox. */
static enum alm_err relay_batch(PGconn *pg, redisContext *redis, int timeout_ms, int max,
                                const char *fence_key, const char *fence_value, int *relayed,
                                struct alm_errbuf *eb)
{
    char maxs[16];
    const char *params[1] = {maxs};
    PGresult *res = NULL;
    enum alm_err err, send_err = ALM_OK;
    int n, sent = 0;

    *relayed = 0;
    snprintf(maxs, sizeof(maxs), "%d", max);
    err = alm_db_begin(pg, timeout_ms, eb);
    if (err)
        return err;
    err = alm_db_query(pg, timeout_ms,
                       "SELECT id, queue, job_type, payload::text, "
                       "(extract(epoch FROM created_at) * 1000)::bigint, uid "
                       "FROM outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                       1, params, &res, eb);
    if (err)
        goto out;
    n = PQntuples(res);
    struct alm_buf ids = ALM_BUF_INIT(0); /* no cap: appends cannot fail */
    for (int i = 0; i < n && !send_err; i++) {
        send_err = send_row(redis, res, i, fence_key, fence_value, eb);
        if (!send_err && !alm_db_array_add(&ids, strtoll(PQgetvalue(res, i, 0), NULL, 10)))
            sent++;
    }
    if (sent > 0 && !alm_db_array_close(&ids)) {
        const char *del[1] = {ids.data};
        err = alm_db_query(pg, timeout_ms, "DELETE FROM outbox WHERE id = ANY($1::bigint[])", 1,
                           del, NULL, eb);
    }
    alm_buf_release(&ids);
    if (!err)
        err = alm_db_commit(pg, timeout_ms, eb);
    if (!err) {
        *relayed = sent;
        if (sent < n) /* Redis failed part-way (or fenced): the rest waits */
            err = send_err;
    }
out:
    PQclear(res);
    if (err)
        alm_db_rollback(pg, timeout_ms);
    return err;
}

enum alm_err alm_outbox_relay(PGconn *pg, redisContext *redis, int timeout_ms,
                              const char *fence_key, const char *fence_value, const char *by,
                              struct alm_errbuf *eb)
{
    int relayed = 0, total = 0;
    enum alm_err err;

    do {
        err = relay_batch(pg, redis, timeout_ms, RELAY_BATCH, fence_key, fence_value, &relayed, eb);
        total += relayed;
    } while (!err && relayed == RELAY_BATCH);
    if (total)
        alm_info("outbox.relayed", "jobs moved to the queue", "{s:i, s:s}", "count", total, "by",
                 by);
    return err;
}

struct alm_relayer {
    const struct alm_config *cfg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool kicked;
    bool stopping;
    PGconn *pg;
    redisContext *redis;
};

/* One relay pass with (re)connection; true when the outbox is drained. */
static bool relay_pass(struct alm_relayer *r)
{
    struct alm_errbuf eb = {{0}};

    if (!r->pg)
        r->pg = alm_db_connect(r->cfg, "almanac-relay", RELAY_TIMEOUTMS, &eb);
    if (r->pg && !r->redis)
        r->redis = alm_redis_connect(r->cfg, RELAY_TIMEOUTMS, &eb);
    if (!r->pg || !r->redis) {
        alm_warn("outbox.relay_failed", "cannot reach the database or redis; will retry", "{s:s}",
                 "detail", eb.msg);
        return false;
    }
    if (!alm_outbox_relay(r->pg, r->redis, RELAY_TIMEOUTMS, NULL, NULL, "api", &eb))
        return true;
    alm_warn("outbox.relay_failed", "relay failed; will retry", "{s:s}", "detail", eb.msg);
    /* Either side may be broken: start both afresh next time. */
    PQfinish(r->pg);
    r->pg = NULL;
    redisFree(r->redis);
    r->redis = NULL;
    return false;
}

static void *relayer_thread(void *arg)
{
    struct alm_relayer *r = arg;
    bool pending = true; /* rows may be left from before a restart */

    pthread_mutex_lock(&r->mu);
    while (!r->stopping) {
        if (!r->kicked && !pending) {
            pthread_cond_wait(&r->cond, &r->mu);
            continue;
        }
        r->kicked = false;
        pthread_mutex_unlock(&r->mu);
        pending = !relay_pass(r);
        pthread_mutex_lock(&r->mu);
        if (pending && !r->stopping && !r->kicked) {
            alm_clock_wait_until(&r->cond, &r->mu, alm_clock_ms() + RETRY_MS);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

struct alm_relayer *alm_relayer_start(const struct alm_config *cfg)
{
    struct alm_relayer *r = alm_xcalloc(1, sizeof(*r));

    r->cfg = cfg;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cond, NULL);
    alm_xthread_create(&r->thread, relayer_thread, r, "alm-relay");
    return r;
}

void alm_relayer_kick(struct alm_relayer *r)
{
    pthread_mutex_lock(&r->mu);
    r->kicked = true;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->mu);
}

void alm_relayer_stop(struct alm_relayer *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stopping = true;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    PQfinish(r->pg);
    if (r->redis)
        redisFree(r->redis);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
