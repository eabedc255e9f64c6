/* SPDX-License-Identifier: Apache-2.0 */
/* queue.h: the job queue on Redis Streams: at-least-once, retries, dead letters.
 *
 * Each queue is a stream (almanac:queue:<name>) read by one consumer group. A job is
 * acknowledged (and deleted from the stream) only after its work is committed; a job
 * held by a consumer that died stays pending and is reclaimed with XAUTOCLAIM after an
 * idle time. A failed job goes to a delayed set (almanac:delayed:<name>, scored by due
 * time) with its attempt count raised, and the runtime moves due jobs back to the stream;
 * after the last attempt it goes to the dead-letter stream (almanac:dead:<name>) with its
 * error. Each move is one Lua script, so a crash never leaves a job in two places or in
 * none. */
#pragma once
#include "compat.h"
#include "err.h"
#include "redis_keys.h"

#include <hiredis/hiredis.h>
#include <jansson.h>

#define ALM_QUEUE_MAX_DEAD 100000 /* dead letters kept per queue at most */

/* The queues every worker reads, in priority order. */
extern const char *const alm_queue_names[];
extern const size_t alm_queue_count;

struct alm_job {
    char queue[32];
    char entry[48];        /* stream entry id */
    char *json;            /* the job as stored, owned */
    json_t *doc;           /* parsed json, owned */
    const char *id, *type; /* borrowed from doc */
    const json_t *payload;
    int attempt;          /* 1 for the first run; raised by each retry */
    long long deliveries; /* times this entry was delivered (reclaims count) */
};

void alm_job_release(struct alm_job *job);

/* Creates the consumer group of every queue (and the streams) unless they exist. */
enum alm_err alm_queue_setup(redisContext *c, struct alm_errbuf *eb) ALM_MUSTCHECK;
/* At most one job per queue in one read. */
#define ALM_QUEUE_READ_MAX 3
/* Reads new jobs for consumer, at most one per queue (jobs has room for
 * ALM_QUEUE_READ_MAX), in priority order, waiting up to block_ms; *got is how many. Each
 * one delivered is pending at consumer: the caller runs (or renews) every one. */
enum alm_err alm_queue_read(redisContext *c, const char *consumer, int block_ms,
                            struct alm_job *jobs, size_t *got, struct alm_errbuf *eb) ALM_MUSTCHECK;
/* Takes over one job pending longer than min_idle_ms at another consumer. */
enum alm_err alm_queue_claim(redisContext *c, const char *consumer, long min_idle_ms,
                             struct alm_job *job, bool *got, struct alm_errbuf *eb) ALM_MUSTCHECK;
/* What alm_queue_read and alm_queue_claim make of Redis's replies; each job filled is
 * the caller's to release.
 * An XREADGROUP reply, [[stream, [[entry id, [field, value, ...]]]], ...] or nil (nothing
 * new), gives at most one job per queue stream, ALM_QUEUE_READ_MAX in all; *got is how
 * many. An entry whose job field is missing or not JSON still gives a job with its entry
 * id (no doc), for the caller to bury; parts that are no queue's entry are skipped. An
 * error reply is ALM_ERR_UNAVAILABLE. */
enum alm_err alm_queue_read_reply(const redisReply *r, struct alm_job *jobs, size_t *got,
                                  struct alm_errbuf *eb) ALM_MUSTCHECK;
/* An XAUTOCLAIM reply of queue's stream, [next cursor, [[entry id, fields]], [deleted
 * ids]] (COUNT 1): *got when it holds a job (deliveries 1: the claim asks XPENDING for
 * the real count). An error reply is ALM_ERR_UNAVAILABLE. */
enum alm_err alm_queue_claim_reply(const redisReply *r, const char *queue, struct alm_job *job,
                                   bool *got, struct alm_errbuf *eb) ALM_MUSTCHECK;
/* The job is done: acknowledged and deleted. */
enum alm_err alm_queue_ack(redisContext *c, const struct alm_job *job,
                           struct alm_errbuf *eb) ALM_MUSTCHECK;
/* The job failed: moved to the delayed set, due in delay_ms, attempt + 1, with error. */
enum alm_err alm_queue_retry(redisContext *c, const struct alm_job *job, long delay_ms,
                             const char *error, struct alm_errbuf *eb) ALM_MUSTCHECK;
/* A dependency was down: moved to the delayed set, due in delay_ms, attempt unchanged. */
enum alm_err alm_queue_put_back(redisContext *c, const struct alm_job *job, long delay_ms,
                                const char *error, struct alm_errbuf *eb) ALM_MUSTCHECK;
/* The job failed for good: moved to the dead-letter stream with error. */
enum alm_err alm_queue_bury(redisContext *c, const struct alm_job *job, const char *error,
                            struct alm_errbuf *eb) ALM_MUSTCHECK;
/* Moves delayed jobs that are due back to their streams; *moved counts them. */
enum alm_err alm_queue_promote(redisContext *c, long *moved, struct alm_errbuf *eb) ALM_MUSTCHECK;
/* Replays every dead letter of every queue as a fresh job (attempt 1). */
enum alm_err alm_queue_replay_dead(redisContext *c, long *replayed,
                                   struct alm_errbuf *eb) ALM_MUSTCHECK;
/* Drops dead letters older than max_age_ms. */
enum alm_err alm_queue_trim_dead(redisContext *c, long long max_age_ms, long *trimmed,
                                 struct alm_errbuf *eb) ALM_MUSTCHECK;

/* Deletes, from every queue's group, the consumers that hold no job and were last heard
 * from more than idle_ms ago; *pruned is how many. */
enum alm_err alm_queue_prune_consumers(redisContext *c, long long idle_ms, long *pruned,
                                       struct alm_errbuf *eb) ALM_MUSTCHECK;

struct alm_queue_stats {
    long long length;  /* jobs in the stream: waiting or being worked on */
    long long pending; /* delivered, not acknowledged */
    long long consumers;
    double oldest_pending_age_s;
    long long delayed; /* waiting for a retry */
    long long dead;
    long long lag; /* not yet delivered */
};

enum alm_err alm_queue_stats(redisContext *c, const char *queue, struct alm_queue_stats *s,
                             struct alm_errbuf *eb) ALM_MUSTCHECK;
