/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "worker.h"
#include "clock.h"
#include "db.h"
#include "embed.h"
#include "ingest.h"
#include "log.h"
#include "mem.h"
#include "qdrant.h"
#include "queue.h"
#include "redis.h"
#include "outbox.h"
#include "reconnect.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_BLOCK_MS    1000
#define PROMOTE_EVERY_MS 1000
#define RECONNECT_MAX_MS 5000
/* A job put back during an outage is due again after this; the thread itself waits for
 * the dependency before it takes any job. */
#define PUT_BACK_DELAY_MS  1000
#define OUTAGE_POLL_MAX_MS 5000

struct slot {
    struct alm_worker *w;
    int index;
    pthread_t thread;
    _Atomic int64_t progress_ms; /* CLOCK_MONOTONIC of the last loop turn or job end */
    /* The job in flight, for heartbeats and renewal; guarded by w->mu. */
    bool busy;
    struct alm_job job;
    char started_at[32];
    int64_t started_ms;
    /* Jobs delivered with the one running (a read returns one per queue): renewed with
     * it and run next, in queue order; guarded by w->mu. */
    int nnext;
    struct alm_job next[ALM_QUEUE_READ_MAX - 1];
    /* The dependency this thread waits for ("" when none); guarded by w->mu. */
    char waiting_for[160];
    /* Owned by the thread. */
    redisContext *redis;
    struct alm_ingest_ctx ingest;
};

/* Job types with their own metrics; anything else counts as "other". */
static const char *const job_types[] = {"ingest", "purge_vectors", "other"};
#define NTYPES 3
static const double duration_buckets[] = {0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300};
#define NBUCKETS ALM_ARRAY_SIZE(duration_buckets)

struct type_stats {
    _Atomic long long processed, failed, retried, dead;
    _Atomic long long le[NBUCKETS + 1]; /* per bucket, last is +Inf; cumulated on render */
    _Atomic long long count, sum_us;
};

struct alm_worker {
    const struct alm_config *cfg;
    char consumer[128];
    atomic_bool stopping;
    pthread_mutex_t mu;
    pthread_cond_t done; /* a thread finished */
    int running;
    _Atomic long long processed, failed, retried, dead;
    struct type_stats by_type[NTYPES];
    struct slot *slots;
    int n;
};

static struct type_stats *stats_of(struct alm_worker *w, const struct alm_job *job)
{
    for (int i = 0; job->type && i < NTYPES - 1; i++) {
        if (strcmp(job->type, job_types[i]) == 0)
            return &w->by_type[i];
    }
    return &w->by_type[NTYPES - 1];
}

static void observe_duration(struct type_stats *t, double seconds)
{
    size_t b = 0;

    while (b < NBUCKETS && seconds > duration_buckets[b])
        b++;
    atomic_fetch_add(&t->le[b], 1);
    atomic_fetch_add(&t->count, 1);
    atomic_fetch_add(&t->sum_us, (long long)(seconds * 1e6));
}

/* Connects what the thread lacks; false (after logging) when something is down. */
static bool connect_all(struct slot *s)
{
    const struct alm_config *cfg = s->w->cfg;
    struct alm_errbuf eb = {{0}};

    switch (alm_reconnect(cfg, "almanac-worker", (int)cfg->ready_timeout_ms + READ_BLOCK_MS,
                          alm_queue_setup, &s->redis, &s->ingest.pg, &eb)) {
    case ALM_RECONNECT_UP:
        return true;
    case ALM_RECONNECT_REDIS_DOWN:
        alm_warn("worker.redis_down", "cannot reach redis; retrying", "{s:s, s:i}", "detail",
                 eb.msg, "thread", s->index);
        return false;
    case ALM_RECONNECT_DB_DOWN:
        alm_warn("worker.db_down", "cannot reach the database; retrying", "{s:s, s:i}", "detail",
                 eb.msg, "thread", s->index);
        return false;
    case ALM_RECONNECT_SCHEMA_OLD:
        alm_warn("worker.schema_old", "database schema not ready; waiting", "{s:s}", "detail",
                 eb.msg);
        return false;
    }
    return false;
}

long alm_worker_retry_ceiling(long base_ms, int attempt)
{
    double d = (double)base_ms;

    for (int i = 1; i < attempt && d < ALM_WORKER_RETRY_MAX_MS; i++)
        d *= 2;
    return d > ALM_WORKER_RETRY_MAX_MS ? ALM_WORKER_RETRY_MAX_MS : (long)d;
}

/* Half the ceiling fixed, half random ("equal jitter"): spreads the retries of many jobs
 * that failed together, and never retries much sooner than the backoff says. */
long alm_worker_retry_delay(long base_ms, int attempt)
{
    long d = alm_worker_retry_ceiling(base_ms, attempt);

    return d - d / 2 + (long)randombytes_uniform((uint32_t)(d / 2) + 1);
}

/* Runs the job's work; eb says why it failed. */
static enum alm_err execute(struct slot *s, const struct alm_job *job, struct alm_errbuf *eb)
{
    const struct alm_config *cfg = s->w->cfg;
    int64_t deadline = alm_clock_ms() + cfg->job_timeout_ms;
    json_t *v;

    if (job->type && strcmp(job->type, "ingest") == 0) {
        v = json_object_get(job->payload, "document_id");
        if (!json_is_integer(v))
            return alm_fail(eb, ALM_ERR_INVALID, "ingest job without a document_id");
        return alm_ingest_document(&s->ingest, json_integer_value(v), deadline, eb);
    }
    if (job->type && strcmp(job->type, "purge_vectors") == 0) {
        v = json_object_get(job->payload, "document_id");
        if (json_is_integer(v))
            return alm_ingest_purge(&s->ingest, "document_id", json_integer_value(v), eb);
        v = json_object_get(job->payload, "knowledge_base_id");
        if (json_is_integer(v))
            return alm_ingest_purge(&s->ingest, "knowledge_base_id", json_integer_value(v), eb);
        return alm_fail(eb, ALM_ERR_INVALID, "purge job without a target");
    }
    return alm_fail(eb, ALM_ERR_INVALID, "unknown job type");
}

static void set_busy(struct slot *s, const struct alm_job *job)
{
    pthread_mutex_lock(&s->w->mu);
    s->busy = job != NULL;
    if (job) {
        s->job = *job; /* a shallow copy: fields are read only while busy */
        s->started_ms = alm_clock_ms();
        alm_clock_now_iso8601(s->started_at, sizeof(s->started_at));
    }
    pthread_mutex_unlock(&s->w->mu);
}

static void set_waiting(struct slot *s, const char *what)
{
    pthread_mutex_lock(&s->w->mu);
    snprintf(s->waiting_for, sizeof(s->waiting_for), "%s", what);
    pthread_mutex_unlock(&s->w->mu);
}

/* Which dependency is down, into what ("postgres: ..."); false when all answer. A
 * connection left unusable by a timed-out statement is replaced first, so a frozen
 * PostgreSQL is told from a slow document. The embeddings endpoint is asked to embed one
 * word: one that refuses, answers 429/5xx or hangs is down, so a job it failed is put
 * back and the thread waits for it. Without a named culprit, an outage error (err) still
 * counts. */
static bool dependency_down(struct slot *s, enum alm_err err, const char *why, char *what, size_t n)
{
    const struct alm_config *cfg = s->w->cfg;
    int t = (int)cfg->ready_timeout_ms;
    struct alm_errbuf eb = {{0}};

    if (s->ingest.pg && !alm_db_reusable(s->ingest.pg)) {
        PQfinish(s->ingest.pg);
        s->ingest.pg = NULL;
    }
    if (!s->ingest.pg)
        s->ingest.pg = alm_db_connect(cfg, "almanac-worker", t, &eb);
    if (!s->ingest.pg || alm_db_ping(s->ingest.pg, t, &eb)) {
        snprintf(what, n, "postgres: %s", eb.msg);
        return true;
    }
    if (!s->redis || alm_redis_ping(s->redis, t, &eb)) {
        snprintf(what, n, "redis: %s", s->redis ? eb.msg : "not connected");
        return true;
    }
    if (s->ingest.qdrant && alm_qdrant_readyz(s->ingest.qdrant, t, &eb)) {
        snprintf(what, n, "qdrant: %s", eb.msg);
        return true;
    }
    if (s->ingest.embedder && alm_embedder_probe(s->ingest.embedder, t, &eb)) {
        snprintf(what, n, "embeddings: %s", eb.msg);
        return true;
    }
    if (alm_err_outage(err)) {
        snprintf(what, n, "a dependency: %s", why);
        return true;
    }
    return false;
}

/* The document id of an ingest job, or 0. */
static int64_t ingest_document(const struct alm_job *job)
{
    json_t *doc = json_object_get(job->payload, "document_id");

    return job->type && strcmp(job->type, "ingest") == 0 && json_is_integer(doc)
               ? json_integer_value(doc)
               : 0;
}

/* A dependency is down: the job goes back unchanged (no attempt spent) and its document
 * says what it waits for. */
static void put_back(struct slot *s, const struct alm_job *job, const char *what)
{
    struct alm_errbuf eb = {{0}};
    int64_t doc = ingest_document(job);
    char *note = alm_xasprintf("waiting for %s", what);

    if (alm_queue_put_back(s->redis, job, PUT_BACK_DELAY_MS, note, &eb))
        alm_warn("job.put_back_failed",
                 "cannot put a job back; it stays pending and is reclaimed later",
                 "{s:s, s:s, s:s}", "job", job->id ? job->id : job->entry, "queue", job->queue,
                 "error", eb.msg);
    else
        alm_warn("job.put_back", "a dependency is down; job put back without spending an attempt",
                 "{s:s, s:s, s:i, s:s}", "job", job->id ? job->id : job->entry, "queue", job->queue,
                 "attempt", job->attempt, "waiting_for", what);
    if (doc)
        alm_ingest_record_waiting(&s->ingest, doc, what);
    free(note);
}

/* After a failure of the job itself: retry later, or bury it after the last attempt.
 * Invalid jobs (not ours, or malformed) are buried at once: no retry can fix them. */
static void settle_failure(struct slot *s, const struct alm_job *job, enum alm_err err,
                           const char *why)
{
    struct alm_worker *w = s->w;
    struct alm_errbuf eb = {{0}};
    int64_t doc = ingest_document(job);
    bool last = job->attempt >= w->cfg->job_max_attempts || alm_err_permanent(err) ||
                job->deliveries > w->cfg->job_max_attempts;

    atomic_fetch_add(&w->failed, 1);
    atomic_fetch_add(&stats_of(w, job)->failed, 1);
    if (!last) {
        long delay = alm_worker_retry_delay(w->cfg->job_retry_base_ms, job->attempt);
        if (!alm_queue_retry(s->redis, job, delay, why, &eb)) {
            atomic_fetch_add(&w->retried, 1);
            atomic_fetch_add(&stats_of(w, job)->retried, 1);
            alm_warn("job.retry", "job failed; retrying later", "{s:s, s:s, s:i, s:i, s:s}", "job",
                     job->id ? job->id : job->entry, "queue", job->queue, "attempt", job->attempt,
                     "delay_ms", (int)delay, "error", why);
        } else {
            alm_error("job.retry_failed",
                      "job failed and cannot be scheduled again; it stays pending and is "
                      "reclaimed later",
                      "{s:s, s:s, s:s, s:s}", "job", job->id ? job->id : job->entry, "queue",
                      job->queue, "error", why, "detail", eb.msg);
        }
        if (doc && s->ingest.pg)
            alm_ingest_record_failure(&s->ingest, doc, false, why);
        return;
    }
    if (!alm_queue_bury(s->redis, job, why, &eb)) {
        atomic_fetch_add(&w->dead, 1);
        atomic_fetch_add(&stats_of(w, job)->dead, 1);
        alm_error("job.dead", "job failed for good; moved to the dead letters",
                  "{s:s, s:s, s:i, s:s}", "job", job->id ? job->id : job->entry, "queue",
                  job->queue, "attempt", job->attempt, "error", why);
    } else {
        alm_error("job.bury_failed",
                  "job failed for good but cannot be moved to the dead letters; it stays "
                  "pending",
                  "{s:s, s:s, s:s, s:s}", "job", job->id ? job->id : job->entry, "queue",
                  job->queue, "error", why, "detail", eb.msg);
    }
    /* An ingest that never reached its last attempt (crash loop, bad job) still fails
     * its document visibly. */
    if (doc && s->ingest.pg)
        alm_ingest_mark_failed(&s->ingest, doc, why);
}

/* Sleeps until every dependency answers again (or the worker stops), saying meanwhile
 * what the thread waits for. The thread takes no job while it waits. */
static void wait_out_outage(struct slot *s, const char *what)
{
    char now_what[160];
    int backoff = 250;

    snprintf(now_what, sizeof(now_what), "%s", what);
    set_waiting(s, now_what);
    alm_warn("worker.paused", "a dependency is down; taking no jobs until it is back", "{s:i, s:s}",
             "thread", s->index, "waiting_for", now_what);
    while (!atomic_load(&s->w->stopping)) {
        atomic_store(&s->progress_ms, alm_clock_ms());
        alm_clock_sleep_ms(backoff);
        backoff = backoff * 2 > OUTAGE_POLL_MAX_MS ? OUTAGE_POLL_MAX_MS : backoff * 2;
        /* Reconnects Redis (and sets up its queues) once it is back; logs while not. */
        if (connect_all(s) && !dependency_down(s, ALM_OK, "", now_what, sizeof(now_what)))
            break;
        set_waiting(s, now_what);
    }
    set_waiting(s, "");
    alm_info("worker.resumed", "dependencies answer again; taking jobs", "{s:i}", "thread",
             s->index);
}

static void run_job(struct slot *s, struct alm_job *job)
{
    struct alm_errbuf eb = {{0}};
    struct alm_errbuf ack = {{0}};
    enum alm_err err;
    int64_t t0 = alm_clock_ms();

    set_busy(s, job);
    if (!job->doc) {
        err = alm_fail(&eb, ALM_ERR_INVALID, "malformed job");
    } else if (job->deliveries > s->w->cfg->job_max_attempts) {
        err = alm_fail(&eb, ALM_ERR_INVALID, "delivered %lld times without finishing",
                       job->deliveries);
    } else {
        err = execute(s, job, &eb);
    }
    if (!err) {
        if (alm_queue_ack(s->redis, job, &ack))
            alm_warn("job.ack_failed", "job done but not acknowledged; it will run again",
                     "{s:s, s:s}", "job", job->id ? job->id : job->entry, "error", ack.msg);
        atomic_fetch_add(&s->w->processed, 1);
        atomic_fetch_add(&stats_of(s->w, job)->processed, 1);
        alm_info("job.done", "job done", "{s:s, s:s, s:s, s:i, s:I}", "job",
                 job->id ? job->id : job->entry, "type", job->type ? job->type : "", "queue",
                 job->queue, "attempt", job->attempt, "dur_ms", (json_int_t)(alm_clock_ms() - t0));
    } else {
        /* The one decision of who is to blame: an attempt is spent only when every
         * dependency answers (or the input can never work). */
        char what[160];
        bool outage =
            !alm_err_permanent(err) && dependency_down(s, err, eb.msg, what, sizeof(what));
        if (outage)
            put_back(s, job, what);
        else
            settle_failure(s, job, err, eb.msg);
        observe_duration(stats_of(s->w, job), (double)(alm_clock_ms() - t0) / 1000.0);
        set_busy(s, NULL);
        if (outage)
            wait_out_outage(s, what);
        return;
    }
    observe_duration(stats_of(s->w, job), (double)(alm_clock_ms() - t0) / 1000.0);
    set_busy(s, NULL);
}

/* Keeps the jobs delivered along with the one about to run, renewed meanwhile. */
static void hold_next(struct slot *s, struct alm_job *jobs, size_t n)
{
    pthread_mutex_lock(&s->w->mu);
    for (size_t i = 0; i < n && s->nnext < ALM_QUEUE_READ_MAX - 1; i++) {
        s->next[s->nnext++] = jobs[i];
        memset(&jobs[i], 0, sizeof(jobs[i]));
    }
    pthread_mutex_unlock(&s->w->mu);
}

/* The first held job, if any: true and *job filled (the caller releases it). */
static bool take_next(struct slot *s, struct alm_job *job)
{
    bool got;

    pthread_mutex_lock(&s->w->mu);
    got = s->nnext > 0;
    if (got) {
        *job = s->next[0];
        memmove(&s->next[0], &s->next[1], (size_t)(s->nnext - 1) * sizeof(s->next[0]));
        s->nnext--;
        memset(&s->next[s->nnext], 0, sizeof(s->next[0]));
    }
    pthread_mutex_unlock(&s->w->mu);
    return got;
}

/* A queue command failed: the connection may be fine while the group is gone (Redis
 * restarted empty, or flushed), so start over with a new connection and queue setup. */
static void queue_failed(struct slot *s, const char *what, const struct alm_errbuf *eb)
{
    alm_warn("worker.queue_failed", "queue command failed; reconnecting", "{s:s, s:s, s:i}", "op",
             what, "error", eb->msg, "thread", s->index);
    redisFree(s->redis);
    s->redis = NULL;
}

/* One turn: promote due retries (thread 0), reclaim an abandoned job, else read. */
static void turn(struct slot *s, int64_t *next_promote, int64_t *next_claim)
{
    struct alm_worker *w = s->w;
    struct alm_errbuf eb = {{0}};
    struct alm_job jobs[ALM_QUEUE_READ_MAX];
    size_t got = 0;
    bool claimed = false;
    long moved = 0;
    int64_t now = alm_clock_ms();

    if (take_next(s, &jobs[0])) {
        run_job(s, &jobs[0]);
        alm_job_release(&jobs[0]);
        return;
    }
    if (s->index == 0 && now >= *next_promote) {
        if (alm_queue_promote(s->redis, &moved, &eb))
            alm_warn("queue.promote_failed", "cannot move due retries back; they wait", "{s:s}",
                     "error", eb.msg);
        else if (moved)
            alm_info("queue.promoted", "retries due again", "{s:i}", "count", (int)moved);
        *next_promote = now + PROMOTE_EVERY_MS;
    }
    if (now >= *next_claim) {
        if (alm_queue_claim(s->redis, w->consumer, w->cfg->job_claim_idle_ms, &jobs[0], &claimed,
                            &eb)) {
            queue_failed(s, "claim", &eb);
            return;
        }
        if (claimed) {
            got = 1;
            alm_warn("job.reclaimed", "took over a job of a worker that went away",
                     "{s:s, s:s, s:I}", "job", jobs[0].id ? jobs[0].id : jobs[0].entry, "queue",
                     jobs[0].queue, "deliveries", (json_int_t)jobs[0].deliveries);
        } else {
            *next_claim =
                now + (w->cfg->job_claim_idle_ms < 10000 ? w->cfg->job_claim_idle_ms / 2 : 5000);
        }
    }
    if (!got && alm_queue_read(s->redis, w->consumer, READ_BLOCK_MS, jobs, &got, &eb)) {
        queue_failed(s, "read", &eb);
        return;
    }
    if (got > 1)
        hold_next(s, &jobs[1], got - 1);
    if (got) {
        run_job(s, &jobs[0]);
        alm_job_release(&jobs[0]);
    }
}

static void *worker_thread(void *arg)
{
    struct slot *s = arg;
    struct alm_worker *w = s->w;
    int64_t next_promote = 0, next_claim = 0;
    int backoff = 250;

    while (!atomic_load(&w->stopping)) {
        atomic_store(&s->progress_ms, alm_clock_ms());
        if (!connect_all(s)) {
            alm_clock_sleep_ms(backoff);
            backoff = backoff * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : backoff * 2;
            continue;
        }
        backoff = 250;
        turn(s, &next_promote, &next_claim);
    }
    pthread_mutex_lock(&w->mu);
    w->running--;
    pthread_cond_broadcast(&w->done);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

struct alm_worker *alm_worker_start(const struct alm_config *cfg, const char *consumer)
{
    struct alm_worker *w = alm_xcalloc(1, sizeof(*w));

    w->cfg = cfg;
    snprintf(w->consumer, sizeof(w->consumer), "%s", consumer);
    w->n = (int)cfg->worker_concurrency;
    w->slots = alm_xcalloc((size_t)w->n, sizeof(*w->slots));
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->done, NULL);
    w->running = w->n;
    for (int i = 0; i < w->n; i++) {
        struct slot *s = &w->slots[i];
        s->w = w;
        s->index = i;
        s->ingest.cfg = cfg;
        s->ingest.embedder = alm_embedder_new(cfg);
        s->ingest.qdrant = cfg->qdrant_url ? alm_qdrant_new(cfg) : NULL;
        atomic_store(&s->progress_ms, alm_clock_ms());
        alm_xthread_create(&s->thread, worker_thread, s, "alm-worker");
    }
    return w;
}

bool alm_worker_stop(struct alm_worker *w, int64_t grace_ms)
{
    int64_t until = alm_clock_ms() + grace_ms;
    bool all;

    atomic_store(&w->stopping, true);
    pthread_mutex_lock(&w->mu);
    while (w->running > 0 && alm_clock_wait_until(&w->done, &w->mu, until))
        ;
    all = w->running == 0;
    pthread_mutex_unlock(&w->mu);
    return all;
}

void alm_worker_free(struct alm_worker *w)
{
    for (int i = 0; i < w->n; i++) {
        struct slot *s = &w->slots[i];
        pthread_join(s->thread, NULL);
        for (int k = 0; k < s->nnext; k++)
            alm_job_release(&s->next[k]); /* left pending: reclaimed by another worker */
        if (s->redis)
            redisFree(s->redis);
        PQfinish(s->ingest.pg);
        alm_embedder_free(s->ingest.embedder);
        alm_qdrant_free(s->ingest.qdrant);
    }
    pthread_cond_destroy(&w->done);
    pthread_mutex_destroy(&w->mu);
    free(w->slots);
    free(w);
}

json_t *alm_worker_snapshot(void *arg)
{
    struct alm_worker *w = arg;
    json_t *jobs = json_array();

    json_t *waiting = json_array();

    pthread_mutex_lock(&w->mu);
    for (int i = 0; i < w->n; i++) {
        const struct slot *s = &w->slots[i];
        if (s->waiting_for[0])
            json_array_append_new(waiting, json_string(s->waiting_for));
        if (!s->busy)
            continue;
        json_array_append_new(
            jobs, json_pack("{s:s, s:s, s:s, s:s, s:i}", "id", s->job.id ? s->job.id : s->job.entry,
                            "type", s->job.type ? s->job.type : "", "queue", s->job.queue,
                            "started_at", s->started_at, "attempt", s->job.attempt));
    }
    pthread_mutex_unlock(&w->mu);
    return json_pack(
        "{s:o, s:o, s:I, s:I, s:I, s:I}", "jobs", jobs, "waiting_for", waiting, "processed",
        (json_int_t)atomic_load(&w->processed), "failed", (json_int_t)atomic_load(&w->failed),
        "retried", (json_int_t)atomic_load(&w->retried), "dead", (json_int_t)atomic_load(&w->dead));
}

void alm_worker_renew(void *arg, redisContext *c)
{
    struct alm_worker *w = arg;
    char(*entries)[2][48] = alm_xcalloc((size_t)w->n * ALM_QUEUE_READ_MAX, sizeof(*entries));
    int n = 0;

    /* Copied under the lock, renewed outside it: no lock is held across I/O. */
    pthread_mutex_lock(&w->mu);
    for (int i = 0; i < w->n; i++) {
        const struct slot *s = &w->slots[i];
        if (s->busy) {
            snprintf(entries[n][0], sizeof(entries[n][0]), "%s", s->job.queue);
            snprintf(entries[n][1], sizeof(entries[n][1]), "%s", s->job.entry);
            n++;
        }
        for (int k = 0; k < s->nnext; k++) {
            snprintf(entries[n][0], sizeof(entries[n][0]), "%s", s->next[k].queue);
            snprintf(entries[n][1], sizeof(entries[n][1]), "%s", s->next[k].entry);
            n++;
        }
    }
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < n; i++) {
        /* XCLAIM to ourselves with no idle minimum resets the entry's idle time. */
        redisReply *r = redisCommand(c, "XCLAIM " ALM_STREAM_PREFIX "%s %s %s 0 %s JUSTID",
                                     entries[i][0], ALM_QUEUE_GROUP, w->consumer, entries[i][1]);
        if (r)
            freeReplyObject(r);
    }
    free(entries);
}

static void render_types(struct alm_worker *w, struct alm_buf *out)
{
    static const char *const outcomes[] = {"processed", "failed", "retried", "dead"};
    alm_buf_putf(out, "# HELP almanac_jobs_total Jobs finished by this "
                      "worker, by type and outcome.\n"
                      "# TYPE almanac_jobs_total counter\n");
    for (int t = 0; t < NTYPES; t++) {
        struct type_stats *st = &w->by_type[t];
        long long v[4] = {atomic_load(&st->processed), atomic_load(&st->failed),
                          atomic_load(&st->retried), atomic_load(&st->dead)};
        for (int o = 0; o < 4; o++)
            alm_buf_putf(out, "almanac_jobs_total{type=\"%s\",outcome=\"%s\"} %lld\n", job_types[t],
                         outcomes[o], v[o]);
    }
    alm_buf_putf(out, "# HELP almanac_job_duration_seconds Time a job ran.\n"
                      "# TYPE almanac_job_duration_seconds histogram\n");
    for (int t = 0; t < NTYPES; t++) {
        struct type_stats *st = &w->by_type[t];
        long long cum = 0;
        for (size_t b = 0; b < NBUCKETS; b++) {
            cum += atomic_load(&st->le[b]);
            alm_buf_putf(out,
                         "almanac_job_duration_seconds_bucket{type=\"%s\",le=\"%g\"} "
                         "%lld\n",
                         job_types[t], duration_buckets[b], cum);
        }
        alm_buf_putf(out,
                     "almanac_job_duration_seconds_bucket{type=\"%s\",le=\"+Inf\"} %lld\n"
                     "almanac_job_duration_seconds_sum{type=\"%s\"} %.6f\n"
                     "almanac_job_duration_seconds_count{type=\"%s\"} %lld\n",
                     job_types[t], atomic_load(&st->count), job_types[t],
                     (double)atomic_load(&st->sum_us) / 1e6, job_types[t], atomic_load(&st->count));
    }
}

void alm_worker_metrics(void *arg, struct alm_buf *out)
{
    struct alm_worker *w = arg;
    int busy = 0;

    pthread_mutex_lock(&w->mu);
    for (int i = 0; i < w->n; i++)
        busy += w->slots[i].busy;
    pthread_mutex_unlock(&w->mu);
    render_types(w, out);
    alm_buf_putf(out,
                 "# HELP almanac_jobs_in_flight Jobs running now.\n"
                 "# TYPE almanac_jobs_in_flight gauge\n"
                 "almanac_jobs_in_flight %d\n"
                 "# HELP almanac_worker_threads Configured job threads.\n"
                 "# TYPE almanac_worker_threads gauge\n"
                 "almanac_worker_threads %d\n",
                 busy, w->n);
}

bool alm_worker_alive(void *arg, char *why, size_t n)
{
    struct alm_worker *w = arg;
    /* A turn takes at most a read block, a reconnect wait or a job. */
    int64_t limit = w->cfg->job_timeout_ms + 60000, now = alm_clock_ms();

    for (int i = 0; i < w->n; i++) {
        int64_t idle = now - atomic_load(&w->slots[i].progress_ms);
        if (idle > limit) {
            snprintf(why, n, "worker thread %d made no progress for %lld s", i,
                     (long long)(idle / 1000));
            return false;
        }
    }
    return true;
}
