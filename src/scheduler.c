/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "scheduler.h"
#include "clock.h"
#include "db.h"
#include "log.h"
#include "mem.h"
#include "outbox.h"
#include "qdrant.h"
#include "vindex.h"
#include "queue.h"
#include "redis.h"
#include "schema.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TICK_MS 250

struct alm_scheduler;
typedef enum alm_err (*task_fn)(struct alm_scheduler *s, struct alm_errbuf *eb);

struct task {
    const char *name;
    int64_t period_ms;
    int64_t jitter_ms;
    task_fn run;
    int64_t next_ms; /* CLOCK_MONOTONIC */
    long long runs, failures;
};

struct alm_scheduler {
    const struct alm_config *cfg;
    char id[128];
    pthread_t thread;
    atomic_bool stopping;
    _Atomic int64_t progress_ms;
    pthread_mutex_t mu; /* guards what snapshots read: term, tasks' counters */
    char term[160];     /* the lease value while leader, else "" */
    int64_t lease_renew_ms, next_try_ms;
    redisContext *redis;
    PGconn *pg;
    struct alm_qdrant *qdrant;
    struct task *tasks;
    size_t ntasks;
    /* Documents whose job the last find_lost_jobs run found nowhere in Redis. */
    long long *suspects;
    size_t nsuspects;
};

static enum alm_err task_relay(struct alm_scheduler *s, struct alm_errbuf *eb);
static enum alm_err task_requeue_stuck(struct alm_scheduler *s, struct alm_errbuf *eb);
static enum alm_err task_reconcile(struct alm_scheduler *s, struct alm_errbuf *eb);
static enum alm_err task_purge_deleted(struct alm_scheduler *s, struct alm_errbuf *eb);
static enum alm_err task_trim_dead(struct alm_scheduler *s, struct alm_errbuf *eb);
static enum alm_err task_prune_consumers(struct alm_scheduler *s, struct alm_errbuf *eb);
static enum alm_err task_queue_epoch(struct alm_scheduler *s, struct alm_errbuf *eb);
static enum alm_err task_find_lost(struct alm_scheduler *s, struct alm_errbuf *eb);

/* A consumer of the job queues that holds nothing and has been silent for this many
 * ALMANAC_JOB_CLAIM_IDLE_MS (the time after which its jobs would be taken from it) is a
 * worker that exited; prune_consumers runs as often as that. Live workers read every second. */
#define PRUNE_AFTER_CLAIM_IDLES  10
#define PRUNE_PERIOD_FROM_CONFIG 0
#define LOST_PERIOD_FROM_CONFIG  (-1)
/* Candidates of one find_lost_jobs run at most; the rest wait for the next. */
#define LOST_MAX_CANDIDATES 1000

/* The schedule: task, period, jitter. */
static const struct task schedule[] = {
    {"relay_outbox", 5000, 1000, task_relay, 0, 0, 0},
    {"queue_epoch", 5000, 1000, task_queue_epoch, 0, 0, 0},
    {"requeue_stuck", 60000, 5000, task_requeue_stuck, 0, 0, 0},
    {"find_lost_jobs", LOST_PERIOD_FROM_CONFIG, 1000, task_find_lost, 0, 0, 0},
    {"reconcile_vectors", 300000, 30000, task_reconcile, 0, 0, 0},
    {"purge_deleted", 60000, 5000, task_purge_deleted, 0, 0, 0},
    {"trim_dead_letters", 3600000, 60000, task_trim_dead, 0, 0, 0},
    {"prune_consumers", PRUNE_PERIOD_FROM_CONFIG, 5000, task_prune_consumers, 0, 0, 0},
};

/* KEYS: leader, fence; ARGV: id, lease ms. Returns the new term or nil. */
static const char acquire_script[] = "if redis.call('EXISTS', KEYS[1]) == 1 then return false end "
                                     "local v = ARGV[1] .. ':' .. redis.call('INCR', KEYS[2]) "
                                     "redis.call('SET', KEYS[1], v, 'PX', ARGV[2]) return v";
static const char renew_script[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                   "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0";
static const char release_script[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
    "return 0";

static bool leader(struct alm_scheduler *s)
{
    return s->term[0] != '\0';
}

static void set_term(struct alm_scheduler *s, const char *term)
{
    pthread_mutex_lock(&s->mu);
    snprintf(s->term, sizeof(s->term), "%s", term);
    pthread_mutex_unlock(&s->mu);
}

static int64_t jitter(int64_t max)
{
    return max > 0 ? (int64_t)randombytes_uniform((uint32_t)max) : 0;
}

/* Continues each task's schedule from its last run, as recorded by any leader. */
static void load_last_runs(struct alm_scheduler *s)
{
    int64_t now_wall = (int64_t)time(NULL) * 1000, now = alm_clock_ms();

    for (size_t i = 0; i < s->ntasks; i++) {
        struct task *t = &s->tasks[i];
        redisReply *r = redisCommand(s->redis, "HGET " ALM_BEAT_LAST_RUN " %s", t->name);
        int64_t last = r && r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
        int64_t due_in = last ? last + t->period_ms - now_wall : 0;
        t->next_ms = now + (due_in > 0 ? due_in : 0) + jitter(t->jitter_ms);
        if (r)
            freeReplyObject(r);
    }
}

/* Takes, keeps or loses the lease; logs each change. */
static void lead(struct alm_scheduler *s)
{
    char lease[24];
    int64_t now = alm_clock_ms();
    redisReply *r;

    snprintf(lease, sizeof(lease), "%ld", s->cfg->beat_lease_ms);
    if (leader(s) && now >= s->lease_renew_ms) {
        r = redisCommand(s->redis, "EVAL %s 1 %s %s %s", renew_script, ALM_BEAT_LEADER, s->term,
                         lease);
        if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
            s->lease_renew_ms = now + s->cfg->beat_lease_ms / 3;
        } else if (r) { /* an error reply or 0: someone else holds it now */
            alm_warn("beat.leadership_lost", "lost the beat lease", "{s:s}", "term", s->term);
            set_term(s, "");
        }
        if (r)
            freeReplyObject(r);
        return;
    }
    if (leader(s) || now < s->next_try_ms)
        return;
    s->next_try_ms = now + s->cfg->beat_lease_ms / 3;
    r = redisCommand(s->redis, "EVAL %s 2 %s %s %s %s", acquire_script, ALM_BEAT_LEADER,
                     ALM_BEAT_FENCE, s->id, lease);
    if (r && r->type == REDIS_REPLY_STRING) {
        set_term(s, r->str);
        s->lease_renew_ms = now + s->cfg->beat_lease_ms / 3;
        load_last_runs(s);
        alm_info("beat.leader", "this beat leads now", "{s:s}", "term", s->term);
    }
    if (r)
        freeReplyObject(r);
}

/* Reconnects what is missing; false when Redis or PostgreSQL is down. */
static bool connected(struct alm_scheduler *s)
{
    struct alm_errbuf eb = {{0}};

    if (s->redis && s->redis->err) {
        redisFree(s->redis);
        s->redis = NULL;
        set_term(s, ""); /* cannot renew: assume the lease is gone */
    }
    if (!s->redis && !(s->redis = alm_redis_connect(s->cfg, (int)s->cfg->ready_timeout_ms, &eb)))
        return false;
    if (s->pg && !alm_db_reusable(s->pg)) {
        PQfinish(s->pg);
        s->pg = NULL;
    }
    if (!s->pg) {
        s->pg = alm_db_connect(s->cfg, "almanac-beat", (int)s->cfg->db_timeout_ms, &eb);
        if (s->pg && alm_schema_require_current(s->pg, (int)s->cfg->db_timeout_ms, &eb)) {
            PQfinish(s->pg);
            s->pg = NULL;
        }
    }
    return s->pg != NULL;
}

/* For long tasks, between their steps: renews the lease when due and records progress;
 * false when leadership is gone, and the task must stop writing. */
static bool still_leading(struct alm_scheduler *s)
{
    atomic_store(&s->progress_ms, alm_clock_ms());
    lead(s);
    return leader(s);
}

static void run_task(struct alm_scheduler *s, struct task *t)
{
    struct alm_errbuf eb = {{0}};
    int64_t t0 = alm_clock_ms();
    enum alm_err err = t->run(s, &eb);
    redisReply *r;

    pthread_mutex_lock(&s->mu);
    t->runs++;
    t->failures += err != ALM_OK;
    pthread_mutex_unlock(&s->mu);
    t->next_ms = alm_clock_ms() + t->period_ms + jitter(t->jitter_ms);
    if (err) {
        alm_warn("beat.task_failed", "periodic task failed", "{s:s, s:s}", "task", t->name, "error",
                 eb.msg);
        return;
    }
    alm_debug("beat.task_done", "periodic task done", "{s:s, s:I}", "task", t->name, "dur_ms",
              (json_int_t)(alm_clock_ms() - t0));
    r = redisCommand(s->redis, "HSET " ALM_BEAT_LAST_RUN " %s %lld", t->name,
                     (long long)time(NULL) * 1000);
    if (r)
        freeReplyObject(r);
}

static void *tick_thread(void *arg)
{
    struct alm_scheduler *s = arg;

    while (!atomic_load(&s->stopping)) {
        atomic_store(&s->progress_ms, alm_clock_ms());
        if (connected(s)) {
            lead(s);
            /* The lease is checked (and renewed when due) before each task: a task never
             * starts on a lease that may have run out meanwhile. */
            for (size_t i = 0; i < s->ntasks && !atomic_load(&s->stopping); i++) {
                if (alm_clock_ms() >= s->tasks[i].next_ms && still_leading(s))
                    run_task(s, &s->tasks[i]);
            }
        }
        alm_clock_sleep_ms(TICK_MS);
    }
    return NULL;
}

struct alm_scheduler *alm_scheduler_start(const struct alm_config *cfg, const char *id)
{
    struct alm_scheduler *s = alm_xcalloc(1, sizeof(*s));

    s->cfg = cfg;
    snprintf(s->id, sizeof(s->id), "%s", id);
    pthread_mutex_init(&s->mu, NULL);
    s->ntasks = ALM_ARRAY_SIZE(schedule);
    s->tasks = alm_xcalloc(s->ntasks, sizeof(*s->tasks));
    memcpy(s->tasks, schedule, sizeof(schedule));
    for (size_t i = 0; i < s->ntasks; i++) {
        if (s->tasks[i].period_ms == PRUNE_PERIOD_FROM_CONFIG)
            s->tasks[i].period_ms = cfg->job_claim_idle_ms * PRUNE_AFTER_CLAIM_IDLES;
        else if (s->tasks[i].period_ms == LOST_PERIOD_FROM_CONFIG)
            s->tasks[i].period_ms = cfg->lost_job_check_ms;
    }
    s->qdrant = cfg->qdrant_url ? alm_qdrant_new(cfg) : NULL;
    atomic_store(&s->progress_ms, alm_clock_ms());
    alm_xthread_create(&s->thread, tick_thread, s, "alm-beat");
    return s;
}

void alm_scheduler_stop(struct alm_scheduler *s)
{
    redisReply *r;

    atomic_store(&s->stopping, true);
    pthread_join(s->thread, NULL);
    if (leader(s) && s->redis) { /* hand over at once instead of after the lease */
        r = redisCommand(s->redis, "EVAL %s 1 %s %s", release_script, ALM_BEAT_LEADER, s->term);
        if (r)
            freeReplyObject(r);
        alm_info("beat.released", "beat lease released", "{s:s}", "term", s->term);
    }
    if (s->redis)
        redisFree(s->redis);
    PQfinish(s->pg);
    alm_qdrant_free(s->qdrant);
    pthread_mutex_destroy(&s->mu);
    free(s->suspects);
    free(s->tasks);
    free(s);
}

json_t *alm_scheduler_snapshot(void *arg)
{
    struct alm_scheduler *s = arg;
    json_t *tasks = json_object(), *o;

    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->ntasks; i++)
        json_object_set_new(tasks, s->tasks[i].name,
                            json_pack("{s:I, s:I}", "runs", (json_int_t)s->tasks[i].runs,
                                      "failures", (json_int_t)s->tasks[i].failures));
    o = json_pack("{s:b, s:s, s:o}", "leader", leader(s), "term", s->term, "tasks", tasks);
    pthread_mutex_unlock(&s->mu);
    return o;
}

bool alm_scheduler_alive(void *arg, char *why, size_t n)
{
    struct alm_scheduler *s = arg;
    /* A tick takes a task at most: the longest is bounded by the statement deadlines. */
    int64_t idle = alm_clock_ms() - atomic_load(&s->progress_ms);
    int64_t limit = 10 * s->cfg->db_timeout_ms + 60000;

    if (idle <= limit)
        return true;
    snprintf(why, n, "beat tick loop made no progress for %lld s", (long long)(idle / 1000));
    return false;
}

void alm_scheduler_metrics(void *arg, struct alm_buf *out)
{
    struct alm_scheduler *s = arg;
    enum alm_err err;

    pthread_mutex_lock(&s->mu);
    err = alm_buf_appendf(out,
                          "# HELP almanac_beat_leader 1 while this beat holds the lease.\n"
                          "# TYPE almanac_beat_leader gauge\nalmanac_beat_leader %d\n"
                          "# HELP almanac_beat_task_runs_total Periodic task runs.\n"
                          "# TYPE almanac_beat_task_runs_total counter\n",
                          leader(s));
    for (size_t i = 0; i < s->ntasks && !err; i++)
        err = alm_buf_appendf(out,
                              "almanac_beat_task_runs_total{task=\"%s\",outcome=\"ok\"} %lld\n"
                              "almanac_beat_task_runs_total{task=\"%s\",outcome=\"failed\"} "
                              "%lld\n",
                              s->tasks[i].name, s->tasks[i].runs - s->tasks[i].failures,
                              s->tasks[i].name, s->tasks[i].failures);
    pthread_mutex_unlock(&s->mu);
}

/* ---- the tasks ---- */

static enum alm_err task_relay(struct alm_scheduler *s, struct alm_errbuf *eb)
{
    int relayed, total = 0;
    enum alm_err err;

    do {
        err = alm_outbox_relay(s->pg, s->redis, (int)s->cfg->db_timeout_ms, 200, ALM_BEAT_LEADER,
                               s->term, &relayed, eb);
        total += relayed;
    } while (!err && relayed == 200);
    if (total)
        alm_info("outbox.relayed", "jobs moved to the queue", "{s:i, s:s}", "count", total, "by",
                 "beat");
    if (err == ALM_ERR_CONFLICT)
        set_term(s, "");
    return err;
}

/* Runs one statement that moves rows into the outbox and logs how many. */
static enum alm_err outbox_statement(struct alm_scheduler *s, const char *what, const char *sql,
                                     const char *param, struct alm_errbuf *eb)
{
    const char *params[1] = {param};
    PGresult *res = NULL;
    enum alm_err err = alm_db_query_long(s->pg, (int)s->cfg->db_timeout_ms * 4, sql, param ? 1 : 0,
                                         params, &res, eb);

    if (!err && PQntuples(res) > 0)
        alm_info("beat.enqueued", what, "{s:i}", "count", PQntuples(res));
    PQclear(res);
    return err;
}

/* Documents stuck in processing (a worker died with no reclaim, Redis lost data) or
 * pending with no job go through ingestion again. */
static enum alm_err task_requeue_stuck(struct alm_scheduler *s, struct alm_errbuf *eb)
{
    char after[24];

    snprintf(after, sizeof(after), "%ld", s->cfg->stuck_after_s);
    return outbox_statement(
        s, "stuck documents queued again",
        "WITH stuck AS (UPDATE documents SET status = 'pending', updated_at = now(), "
        "error = 'queued again: no progress for ' || $1 || ' s' "
        "WHERE status IN ('processing', 'pending') "
        "AND updated_at < now() - $1::int * interval '1 second' RETURNING id) "
        "INSERT INTO outbox (queue, job_type, payload) "
        "SELECT 'ingest', 'ingest', jsonb_build_object('document_id', id) FROM stuck RETURNING 1",
        after, eb);
}

/* Ready documents whose vectors do not match their chunks get indexed again: a few per
 * run, the least recently checked first. */
static enum alm_err task_reconcile(struct alm_scheduler *s, struct alm_errbuf *eb)
{
    PGresult *res = NULL;
    enum alm_err err;
    int requeued = 0;

    struct alm_vindex v;

    if (!s->qdrant)
        return ALM_OK; /* no vectors to compare */
    err = alm_vindex_load(s->pg, (int)s->cfg->db_timeout_ms, s->cfg, &v, eb);
    if (err)
        return err;
    err = alm_db_query(s->pg, (int)s->cfg->db_timeout_ms,
                       "UPDATE documents SET reconciled_at = now() WHERE id IN (SELECT id FROM "
                       "documents WHERE status = 'ready' ORDER BY reconciled_at NULLS FIRST "
                       "LIMIT 50) RETURNING id, chunk_count",
                       0, NULL, &res, eb);
    for (int i = 0; !err && i < PQntuples(res); i++) {
        int64_t count = 0, id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        /* Up to 50 Qdrant calls: the lease is kept through them, and a beat that lost it
         * stops before its next write. */
        if (!still_leading(s)) {
            err = alm_fail(eb, ALM_ERR_CONFLICT, "leadership lost during reconcile");
            break;
        }
        err = alm_qdrant_count_document(s->qdrant, v.active.name, id, &count,
                                        (int)s->cfg->ready_timeout_ms * 5, eb);
        if (err == ALM_ERR_NOT_FOUND)
            err = ALM_OK; /* no collection yet: the next ingestion creates it */
        if (err || count == strtoll(PQgetvalue(res, i, 1), NULL, 10))
            continue;
        err = outbox_statement(s, "document with missing vectors queued again",
                               "INSERT INTO outbox (queue, job_type, payload) VALUES "
                               "('ingest', 'ingest', jsonb_build_object('document_id', "
                               "$1::bigint)) RETURNING 1",
                               PQgetvalue(res, i, 0), eb);
        requeued++;
    }
    PQclear(res);
    if (requeued)
        alm_warn("beat.reconciled", "documents whose vectors were missing are indexed again",
                 "{s:i}", "count", requeued);
    return err;
}

/* Tombstones older than ten minutes (the purge job had its chance) become purge jobs. */
static enum alm_err task_purge_deleted(struct alm_scheduler *s, struct alm_errbuf *eb)
{
    return outbox_statement(
        s, "vector purges of deleted documents queued",
        "WITH gone AS (DELETE FROM deleted_documents WHERE document_id IN (SELECT document_id "
        "FROM deleted_documents WHERE deleted_at < now() - interval '10 minutes' LIMIT 500) "
        "RETURNING document_id) "
        "INSERT INTO outbox (queue, job_type, payload) SELECT 'maintenance', 'purge_vectors', "
        "jsonb_build_object('document_id', document_id) FROM gone RETURNING 1",
        NULL, eb);
}

static enum alm_err task_prune_consumers(struct alm_scheduler *s, struct alm_errbuf *eb)
{
    long pruned = 0;
    enum alm_err err = alm_queue_prune_consumers(
        s->redis, (long long)s->cfg->job_claim_idle_ms * PRUNE_AFTER_CLAIM_IDLES, &pruned, eb);

    if (!err && pruned)
        alm_info("beat.consumers_pruned", "consumers of exited workers forgotten", "{s:i}", "count",
                 (int)pruned);
    return err;
}

static enum alm_err task_trim_dead(struct alm_scheduler *s, struct alm_errbuf *eb)
{
    long trimmed = 0;
    enum alm_err err =
        alm_queue_trim_dead(s->redis, (long long)s->cfg->dead_letter_ttl_s * 1000, &trimmed, eb);

    if (!err && trimmed)
        alm_info("beat.dead_trimmed", "old dead letters dropped", "{s:i}", "count", (int)trimmed);
    return err;
}

/* Records epoch as the one last seen in Redis (a no-op when it is already). */
static enum alm_err remember_epoch(struct alm_scheduler *s, const char *epoch,
                                   struct alm_errbuf *eb)
{
    const char *params[1] = {epoch};

    return alm_db_query(s->pg, (int)s->cfg->db_timeout_ms,
                        "INSERT INTO queue_epoch (id, epoch) VALUES (1, $1) ON CONFLICT (id) DO "
                        "UPDATE SET epoch = EXCLUDED.epoch, seen_at = now() "
                        "WHERE queue_epoch.epoch <> EXCLUDED.epoch",
                        1, params, NULL, eb);
}

/* Queues again every document still waiting for a job that Redis lost: pending or
 * processing, with no outbox row yet to relay. A duplicate run is harmless: ingestion is
 * idempotent. */
static enum alm_err requeue_lost(struct alm_scheduler *s, struct alm_errbuf *eb)
{
    return outbox_statement(
        s, "documents of a lost queue queued again",
        "WITH lost AS (UPDATE documents d SET status = 'pending', updated_at = now(), "
        "error = 'queued again: the job queue lost its data' "
        "WHERE d.status IN ('processing', 'pending') AND NOT EXISTS (SELECT 1 FROM outbox o "
        "WHERE o.job_type = 'ingest' AND o.payload->>'document_id' = d.id::text) RETURNING id) "
        "INSERT INTO outbox (queue, job_type, payload) "
        "SELECT 'ingest', 'ingest', jsonb_build_object('document_id', id) FROM lost RETURNING 1",
        NULL, eb);
}

/* Redis lost its data when its epoch key is gone while PostgreSQL remembers one: the
 * documents whose jobs went with it are queued again at once, instead of after
 * ALMANAC_STUCK_AFTER_S. Neither key nor record: a new system (or the first run of this
 * version), nothing to repair. */
static enum alm_err task_queue_epoch(struct alm_scheduler *s, struct alm_errbuf *eb)
{
    char epoch[160];
    redisReply *r;
    PGresult *res = NULL;
    bool had;
    enum alm_err err;

    r = redisCommand(s->redis, "GET " ALM_QUEUE_EPOCH);
    if (!r)
        return alm_redis_error(s->redis, (int)s->cfg->ready_timeout_ms, eb);
    if (r->type == REDIS_REPLY_STRING) {
        snprintf(epoch, sizeof(epoch), "%s", r->str);
        freeReplyObject(r);
        return remember_epoch(s, epoch, eb);
    }
    freeReplyObject(r);
    err = alm_db_query(s->pg, (int)s->cfg->db_timeout_ms, "SELECT epoch FROM queue_epoch", 0, NULL,
                       &res, eb);
    if (err)
        return err;
    had = PQntuples(res) > 0;
    PQclear(res);
    snprintf(epoch, sizeof(epoch), "%s:%lld", s->id, (long long)time(NULL));
    r = redisCommand(s->redis, "SET " ALM_QUEUE_EPOCH " %s NX", epoch);
    if (!r)
        return alm_redis_error(s->redis, (int)s->cfg->ready_timeout_ms, eb);
    if (r->type == REDIS_REPLY_ERROR) {
        alm_fail(eb, ALM_ERR_UNAVAILABLE, "redis refused the epoch key: %.100s", r->str);
        freeReplyObject(r);
        return ALM_ERR_UNAVAILABLE;
    }
    if (r->type != REDIS_REPLY_STATUS) { /* set by someone else meanwhile: next run */
        freeReplyObject(r);
        return ALM_OK;
    }
    freeReplyObject(r);
    if (had) {
        alm_warn("beat.queue_lost",
                 "redis lost its data (no epoch key): queueing waiting documents again", "{s:s}",
                 "epoch", epoch);
        err = requeue_lost(s, eb);
        if (err) { /* try again next time: forget the epoch just set */
            r = redisCommand(s->redis, "DEL " ALM_QUEUE_EPOCH);
            if (r)
                freeReplyObject(r);
            return err;
        }
    }
    return remember_epoch(s, epoch, eb);
}

/* KEYS: every queue's stream, delayed set and dead-letter stream; ARGV: document ids.
 * Returns the ids whose document no job in those keys names. One script, so no job is
 * missed while a Lua move carries it from one key to another; it stops reading once
 * every id was found. */
static const char lost_script[] =
    "local want, left = {}, 0 "
    "for i = 1, #ARGV do want[ARGV[i]] = true left = left + 1 end "
    "local function see(text) "
    "  local ok, j = pcall(cjson.decode, text) "
    "  if not ok or type(j) ~= 'table' or type(j.payload) ~= 'table' then return end "
    "  local d = j.payload.document_id "
    "  if type(d) == 'number' then d = string.format('%d', d) end "
    "  if type(d) == 'string' and want[d] then want[d] = nil left = left - 1 end "
    "end "
    "for k = 1, #KEYS do "
    "  if left == 0 then break end "
    "  local t = redis.call('TYPE', KEYS[k]).ok "
    "  if t == 'stream' then "
    "    local start = '-' "
    "    repeat "
    "      local page = redis.call('XRANGE', KEYS[k], start, '+', 'COUNT', 500) "
    "      for _, e in ipairs(page) do "
    "        local f = e[2] "
    "        for i = 1, #f - 1, 2 do if f[i] == 'job' then see(f[i + 1]) end end "
    "        start = '(' .. e[1] "
    "      end "
    "    until #page < 500 or left == 0 "
    "  elseif t == 'zset' then "
    "    local i = 0 "
    "    repeat "
    "      local page = redis.call('ZRANGE', KEYS[k], i, i + 499) "
    "      for _, m in ipairs(page) do see(m) end "
    "      i = i + 500 "
    "    until #page < 500 or left == 0 "
    "  end "
    "end "
    "local out = {} "
    "for id in pairs(want) do out[#out + 1] = id end "
    "return out";

/* The ids of ids (n) that no job in Redis names, as a new array in *lost. */
static enum alm_err lost_in_redis(struct alm_scheduler *s, const long long *ids, size_t n,
                                  long long **lost, size_t *nlost, struct alm_errbuf *eb)
{
    size_t nkeys = alm_queue_count * 3, argc = 3 + nkeys + n, a = 0;
    const char **argv = alm_xcalloc(argc, sizeof(*argv));
    char **owned = alm_xcalloc(nkeys + n + 1, sizeof(*owned));
    size_t nowned = 0;
    redisReply *r;
    enum alm_err err = ALM_OK;

    argv[a++] = "EVAL";
    argv[a++] = lost_script;
    argv[a++] = owned[nowned++] = alm_xasprintf("%zu", nkeys);
    for (size_t q = 0; q < alm_queue_count; q++) {
        argv[a++] = owned[nowned++] = alm_xasprintf(ALM_STREAM_PREFIX "%s", alm_queue_names[q]);
        argv[a++] = owned[nowned++] = alm_xasprintf(ALM_QUEUE_DELAYED "%s", alm_queue_names[q]);
        argv[a++] = owned[nowned++] = alm_xasprintf(ALM_QUEUE_DEAD "%s", alm_queue_names[q]);
    }
    for (size_t i = 0; i < n; i++)
        argv[a++] = owned[nowned++] = alm_xasprintf("%lld", ids[i]);
    r = redisCommandArgv(s->redis, (int)a, argv, NULL);
    *lost = NULL;
    *nlost = 0;
    if (!r) {
        err = alm_redis_error(s->redis, (int)s->cfg->ready_timeout_ms, eb);
    } else if (r->type != REDIS_REPLY_ARRAY) {
        err = alm_fail(eb, ALM_ERR_UPSTREAM, "lost-job scan: %.100s",
                       r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    } else {
        *lost = alm_xcalloc(r->elements + 1, sizeof(**lost));
        for (size_t i = 0; i < r->elements; i++)
            if (r->element[i]->type == REDIS_REPLY_STRING)
                (*lost)[(*nlost)++] = strtoll(r->element[i]->str, NULL, 10);
    }
    if (r)
        freeReplyObject(r);
    for (size_t i = 0; i < nowned; i++)
        free(owned[i]);
    free(owned);
    free(argv);
    return err;
}

static bool suspected(const struct alm_scheduler *s, long long id)
{
    for (size_t i = 0; i < s->nsuspects; i++)
        if (s->suspects[i] == id)
            return true;
    return false;
}

/* Documents pending or processing, untouched for a period and with no outbox row, whose
 * job is in none of the streams (with their pending entries), delayed sets or dead
 * letters: a job lost on its own (an entry deleted, a partial loss, a failed write that
 * no log reached). Queued again only when two runs in a row found it lost, so a job
 * between two places at one moment is never queued twice; within about two
 * ALMANAC_LOST_JOB_CHECK_MS instead of ALMANAC_STUCK_AFTER_S. */
static enum alm_err task_find_lost(struct alm_scheduler *s, struct alm_errbuf *eb)
{
    char grace[24], limit[24];
    const char *params[2] = {grace, limit};
    PGresult *res = NULL;
    long long *ids, *lost = NULL;
    size_t n, nlost = 0, nrequeue = 0;
    enum alm_err err;

    snprintf(grace, sizeof(grace), "%ld", s->cfg->lost_job_check_ms);
    snprintf(limit, sizeof(limit), "%d", LOST_MAX_CANDIDATES);
    err = alm_db_query(s->pg, (int)s->cfg->db_timeout_ms,
                       "SELECT d.id FROM documents d WHERE d.status IN ('pending', 'processing') "
                       "AND d.updated_at < now() - $1::bigint * interval '1 millisecond' "
                       "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.job_type = 'ingest' "
                       "AND o.payload->>'document_id' = d.id::text) ORDER BY d.id LIMIT $2",
                       2, params, &res, eb);
    if (err)
        return err;
    n = (size_t)PQntuples(res);
    ids = alm_xcalloc(n + 1, sizeof(*ids));
    for (size_t i = 0; i < n; i++)
        ids[i] = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
    PQclear(res);
    if (n)
        err = lost_in_redis(s, ids, n, &lost, &nlost, eb);
    free(ids);
    if (err)
        return err;

    /* A PostgreSQL array literal of the ids lost in this run and the last: "{1,2}". */
    char *list = alm_xcalloc(nlost * 22 + 3, 1);
    size_t len = 0;
    list[len++] = '{';
    for (size_t i = 0; i < nlost; i++) {
        if (suspected(s, lost[i]))
            len += (size_t)sprintf(list + len, "%s%lld", nrequeue++ ? "," : "", lost[i]);
    }
    list[len++] = '}';
    free(s->suspects);
    s->suspects = lost;
    s->nsuspects = nlost;
    if (nrequeue) {
        alm_warn("beat.jobs_lost", "documents whose job is nowhere in the queue: queued again",
                 "{s:i, s:s}", "count", (int)nrequeue, "documents", list);
        err = outbox_statement(
            s, "documents with a lost job queued again",
            "WITH lost AS (UPDATE documents d SET status = 'pending', updated_at = now(), "
            "error = 'queued again: its job was lost from the queue' "
            "WHERE d.id = ANY($1::bigint[]) AND d.status IN ('processing', 'pending') "
            "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.job_type = 'ingest' "
            "AND o.payload->>'document_id' = d.id::text) RETURNING id) "
            "INSERT INTO outbox (queue, job_type, payload) "
            "SELECT 'ingest', 'ingest', jsonb_build_object('document_id', id) FROM lost "
            "RETURNING 1",
            list, eb);
        if (!err) { /* queued: no longer suspects */
            free(s->suspects);
            s->suspects = NULL;
            s->nsuspects = 0;
        }
    }
    free(list);
    return err;
}
