/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "queue.h"
#include "clock.h"
#include "mem.h"
#include "outbox.h"
#include "redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const alm_queue_names[] = {ALM_QUEUE_INGEST, ALM_QUEUE_MAINTENANCE,
                                       ALM_QUEUE_INGEST_BULK};
const size_t alm_queue_count = ALM_ARRAY_SIZE(alm_queue_names);
_Static_assert(ALM_ARRAY_SIZE(alm_queue_names) <= ALM_QUEUE_READ_MAX,
               "a read delivers up to one job per queue");

#define QUEUE_TIMEOUT_MS 5000

/* KEYS: stream; ARGV: group, entry. */
static const char ack_script[] = "redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) "
                                 "redis.call('XDEL', KEYS[1], ARGV[2]) return 1";
/* KEYS: stream, delayed set; ARGV: group, entry, due ms, new job json. */
static const char retry_script[] = "redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4]) "
                                   "redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) "
                                   "redis.call('XDEL', KEYS[1], ARGV[2]) return 1";
/* KEYS: stream, dead stream; ARGV: group, entry, job json, error, queue, max dead. */
static const char bury_script[] =
    "redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'job', ARGV[3], 'error', ARGV[4], "
    "'queue', ARGV[5]) "
    "redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) "
    "redis.call('XDEL', KEYS[1], ARGV[2]) return 1";
/* KEYS: delayed set, stream; ARGV: now ms. At most 100 a call keeps the script short. */
static const char promote_script[] =
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100) "
    "for _, j in ipairs(due) do redis.call('XADD', KEYS[2], '*', 'job', j) "
    "redis.call('ZREM', KEYS[1], j) end return #due";
/* KEYS: dead stream, stream. Replays up to 1000 dead letters as first attempts. */
static const char replay_script[] =
    "local n = 0 "
    "for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1000)) do "
    "  local f = e[2] local job = nil "
    "  for i = 1, #f, 2 do if f[i] == 'job' then job = f[i + 1] end end "
    "  if job then local ok, j = pcall(cjson.decode, job) "
    "    if ok and type(j) == 'table' then j.attempt = 1 j.last_error = nil "
    "      redis.call('XADD', KEYS[2], '*', 'job', cjson.encode(j)) n = n + 1 end end "
    "  redis.call('XDEL', KEYS[1], e[1]) "
    "end return n";

void alm_job_release(struct alm_job *job)
{
    free(job->json);
    json_decref(job->doc);
    memset(job, 0, sizeof(*job));
}

static char *stream_key(const char *queue)
{
    return alm_xasprintf(ALM_STREAM_PREFIX "%s", queue);
}

enum alm_err alm_queue_setup(redisContext *c, struct alm_errbuf *eb)
{
    for (size_t i = 0; i < alm_queue_count; i++) {
        char *key = stream_key(alm_queue_names[i]);
        const char *argv[] = {"XGROUP", "CREATE", key, ALM_QUEUE_GROUP, "0", "MKSTREAM"};
        redisReply *r = redisCommandArgv(c, 6, argv, NULL);
        bool ok = r && (r->type != REDIS_REPLY_ERROR || strncmp(r->str, "BUSYGROUP", 9) == 0);
        if (!r)
            alm_redis_error(c, QUEUE_TIMEOUT_MS, eb);
        else if (!ok)
            alm_fail(eb, ALM_ERR_UNAVAILABLE, "cannot create the consumer group: %.120s", r->str);
        if (r)
            freeReplyObject(r);
        free(key);
        if (!ok)
            return ALM_ERR_UNAVAILABLE;
    }
    return ALM_OK;
}

/* Fills job from a stream entry reply [id, [field, value, ...]]; a malformed job (not
 * ours) still gets an entry id, so the caller can bury it. False, and job left empty,
 * when the entry has no id: there is nothing to acknowledge or bury. */
static bool job_from_entry(struct alm_job *job, const char *queue, const redisReply *e)
{
    json_error_t jerr;

    memset(job, 0, sizeof(*job));
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
        e->element[0]->type != REDIS_REPLY_STRING)
        return false;
    snprintf(job->queue, sizeof(job->queue), "%s", queue);
    snprintf(job->entry, sizeof(job->entry), "%s", e->element[0]->str);
    const redisReply *f = e->element[1];
    for (size_t i = 0; f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements; i += 2) {
        if (f->element[i]->type == REDIS_REPLY_STRING && strcmp(f->element[i]->str, "job") == 0 &&
            f->element[i + 1]->type == REDIS_REPLY_STRING)
            job->json = alm_xstrndup(f->element[i + 1]->str, f->element[i + 1]->len);
    }
    job->doc = job->json ? json_loads(job->json, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    job->id = json_string_value(json_object_get(job->doc, "id"));
    job->type = json_string_value(json_object_get(job->doc, "type"));
    job->payload = json_object_get(job->doc, "payload");
    job->attempt = (int)json_integer_value(json_object_get(job->doc, "attempt"));
    if (job->attempt < 1)
        job->attempt = 1;
    job->deliveries = 1;
    return true;
}

enum alm_err alm_queue_read_reply(const redisReply *r, struct alm_job *jobs, size_t *got,
                                  struct alm_errbuf *eb)
{
    size_t prefix = strlen(ALM_STREAM_PREFIX);

    *got = 0;
    if (r->type == REDIS_REPLY_ERROR)
        return alm_fail(eb, ALM_ERR_UNAVAILABLE, "XREADGROUP failed: %.120s", r->str);
    /* [[stream, [[id, fields]]], ...]: COUNT 1 applies per stream, so each stream may
     * deliver one entry; every one is now pending at this consumer and is kept. A stream
     * that is not a queue's cannot come back: it is skipped rather than trusted. */
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && *got < ALM_QUEUE_READ_MAX;
         i++) {
        const redisReply *s = r->element[i];
        if (s->type != REDIS_REPLY_ARRAY || s->elements < 2 ||
            s->element[0]->type != REDIS_REPLY_STRING ||
            strncmp(s->element[0]->str, ALM_STREAM_PREFIX, prefix) != 0 ||
            s->element[1]->type != REDIS_REPLY_ARRAY || s->element[1]->elements == 0)
            continue;
        if (job_from_entry(&jobs[*got], s->element[0]->str + prefix, s->element[1]->element[0]))
            (*got)++;
    }
    return ALM_OK;
}

enum alm_err alm_queue_claim_reply(const redisReply *r, const char *queue, struct alm_job *job,
                                   bool *got, struct alm_errbuf *eb)
{
    *got = false;
    if (r->type == REDIS_REPLY_ERROR)
        return alm_fail(eb, ALM_ERR_UNAVAILABLE, "XAUTOCLAIM failed: %.120s", r->str);
    /* [next cursor, [[id, fields]], [deleted ids]] */
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
        r->element[1]->type == REDIS_REPLY_ARRAY && r->element[1]->elements > 0)
        *got = job_from_entry(job, queue, r->element[1]->element[0]);
    return ALM_OK;
}

enum alm_err alm_queue_read(redisContext *c, const char *consumer, int block_ms,
                            struct alm_job *jobs, size_t *got, struct alm_errbuf *eb)
{
    const char *argv[16];
    char block[16], *keys[4];
    int argc = 0;
    redisReply *r;

    *got = 0;
    snprintf(block, sizeof(block), "%d", block_ms);
    argv[argc++] = "XREADGROUP";
    argv[argc++] = "GROUP";
    argv[argc++] = ALM_QUEUE_GROUP;
    argv[argc++] = consumer;
    argv[argc++] = "COUNT";
    argv[argc++] = "1";
    argv[argc++] = "BLOCK";
    argv[argc++] = block;
    argv[argc++] = "STREAMS";
    for (size_t i = 0; i < alm_queue_count; i++)
        argv[argc++] = keys[i] = stream_key(alm_queue_names[i]);
    for (size_t i = 0; i < alm_queue_count; i++)
        argv[argc++] = ">";
    r = redisCommandArgv(c, argc, argv, NULL);
    for (size_t i = 0; i < alm_queue_count; i++)
        free(keys[i]);
    if (!r)
        return alm_redis_error(c, QUEUE_TIMEOUT_MS, eb);
    enum alm_err err = alm_queue_read_reply(r, jobs, got, eb);
    freeReplyObject(r);
    return err;
}

/* How often the entry was delivered (XPENDING's count). */
static long long deliveries(redisContext *c, const char *stream, const char *entry)
{
    redisReply *r =
        redisCommand(c, "XPENDING %s %s %s %s 1", stream, ALM_QUEUE_GROUP, entry, entry);
    long long n = 1;

    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 4)
        n = r->element[0]->element[3]->integer;
    if (r)
        freeReplyObject(r);
    return n;
}

enum alm_err alm_queue_claim(redisContext *c, const char *consumer, long min_idle_ms,
                             struct alm_job *job, bool *got, struct alm_errbuf *eb)
{
    enum alm_err err = ALM_OK;

    *got = false;
    for (size_t i = 0; i < alm_queue_count && !*got && !err; i++) {
        char *key = stream_key(alm_queue_names[i]);
        redisReply *r = redisCommand(c, "XAUTOCLAIM %s %s %s %ld 0-0 COUNT 1", key, ALM_QUEUE_GROUP,
                                     consumer, min_idle_ms);
        if (!r) {
            free(key);
            return alm_redis_error(c, QUEUE_TIMEOUT_MS, eb);
        }
        err = alm_queue_claim_reply(r, alm_queue_names[i], job, got, eb);
        if (*got)
            job->deliveries = deliveries(c, key, job->entry);
        freeReplyObject(r);
        free(key);
    }
    return err;
}

/* EVAL with the stream key first; more keys and arguments follow. */
static enum alm_err eval(redisContext *c, const char *script, int nkeys, const char **keys,
                         int nargs, const char **args, long *result, struct alm_errbuf *eb)
{
    const char *argv[16];
    char nk[8];
    int argc = 0;
    redisReply *r;
    enum alm_err err = ALM_OK;

    snprintf(nk, sizeof(nk), "%d", nkeys);
    argv[argc++] = "EVAL";
    argv[argc++] = script;
    argv[argc++] = nk;
    for (int i = 0; i < nkeys; i++)
        argv[argc++] = keys[i];
    for (int i = 0; i < nargs; i++)
        argv[argc++] = args[i];
    r = redisCommandArgv(c, argc, argv, NULL);
    if (!r)
        return alm_redis_error(c, QUEUE_TIMEOUT_MS, eb);
    if (r->type == REDIS_REPLY_ERROR)
        err = alm_fail(eb, ALM_ERR_UNAVAILABLE, "queue script failed: %.120s", r->str);
    else if (result)
        *result = r->type == REDIS_REPLY_INTEGER ? (long)r->integer : 0;
    freeReplyObject(r);
    return err;
}

enum alm_err alm_queue_ack(redisContext *c, const struct alm_job *job, struct alm_errbuf *eb)
{
    char *key = stream_key(job->queue);
    const char *keys[1] = {key};
    const char *args[2] = {ALM_QUEUE_GROUP, job->entry};
    enum alm_err err = eval(c, ack_script, 1, keys, 2, args, NULL, eb);

    free(key);
    return err;
}

/* The job again with attempt raised by spent and the last error, as the delayed set
 * holds it. */
static char *next_attempt(const struct alm_job *job, int spent, const char *error)
{
    json_t *copy = job->doc ? json_deep_copy(job->doc) : json_object();
    char *text;

    json_object_set_new(copy, "attempt", json_integer(job->attempt + spent));
    json_object_set_new(copy, "last_error", json_string(error));
    text = json_dumps(copy, JSON_COMPACT);
    json_decref(copy);
    return text;
}

static enum alm_err delay_job(redisContext *c, const struct alm_job *job, long delay_ms, int spent,
                              const char *error, struct alm_errbuf *eb)
{
    char *key = stream_key(job->queue);
    char *delayed = alm_xasprintf(ALM_QUEUE_DELAYED "%s", job->queue);
    char *next = next_attempt(job, spent, error);
    char due[24];
    const char *keys[2] = {key, delayed};
    const char *args[4] = {ALM_QUEUE_GROUP, job->entry, due, next ? next : "{}"};
    enum alm_err err;

    snprintf(due, sizeof(due), "%lld", (long long)(alm_clock_wall_ms() + delay_ms));
    err = eval(c, retry_script, 2, keys, 4, args, NULL, eb);
    free(key);
    free(delayed);
    free(next);
    return err;
}

enum alm_err alm_queue_retry(redisContext *c, const struct alm_job *job, long delay_ms,
                             const char *error, struct alm_errbuf *eb)
{
    return delay_job(c, job, delay_ms, 1, error, eb);
}

enum alm_err alm_queue_put_back(redisContext *c, const struct alm_job *job, long delay_ms,
                                const char *error, struct alm_errbuf *eb)
{
    return delay_job(c, job, delay_ms, 0, error, eb);
}

enum alm_err alm_queue_bury(redisContext *c, const struct alm_job *job, const char *error,
                            struct alm_errbuf *eb)
{
    char *key = stream_key(job->queue);
    char *dead = alm_xasprintf(ALM_QUEUE_DEAD "%s", job->queue);
    char max[16];
    const char *keys[2] = {key, dead};
    const char *args[6] = {ALM_QUEUE_GROUP, job->entry, job->json ? job->json : "{}",
                           error,           job->queue, max};
    enum alm_err err;

    snprintf(max, sizeof(max), "%d", ALM_QUEUE_MAX_DEAD);
    err = eval(c, bury_script, 2, keys, 6, args, NULL, eb);
    free(key);
    free(dead);
    return err;
}

/* Runs a two-key script (a per-queue key, the stream) on every queue and sums results. */
static enum alm_err each_queue(redisContext *c, const char *script, const char *prefix, int nargs,
                               const char **args, long *total, struct alm_errbuf *eb)
{
    enum alm_err err = ALM_OK;

    *total = 0;
    for (size_t i = 0; i < alm_queue_count && !err; i++) {
        char *first = alm_xasprintf("%s%s", prefix, alm_queue_names[i]);
        char *stream = stream_key(alm_queue_names[i]);
        const char *keys[2] = {first, stream};
        long n = 0;
        err = eval(c, script, 2, keys, nargs, args, &n, eb);
        *total += n;
        free(first);
        free(stream);
    }
    return err;
}

enum alm_err alm_queue_promote(redisContext *c, long *moved, struct alm_errbuf *eb)
{
    char ms[24];
    const char *args[1] = {ms};

    snprintf(ms, sizeof(ms), "%lld", (long long)alm_clock_wall_ms());
    return each_queue(c, promote_script, ALM_QUEUE_DELAYED, 1, args, moved, eb);
}

enum alm_err alm_queue_replay_dead(redisContext *c, long *replayed, struct alm_errbuf *eb)
{
    long n = 0;
    enum alm_err err;

    *replayed = 0;
    do { /* 1000 a call */
        err = each_queue(c, replay_script, ALM_QUEUE_DEAD, 0, NULL, &n, eb);
        *replayed += n;
    } while (!err && n > 0);
    return err;
}

enum alm_err alm_queue_trim_dead(redisContext *c, long long max_age_ms, long *trimmed,
                                 struct alm_errbuf *eb)
{
    long long min_id = (long long)alm_clock_wall_ms() - max_age_ms;
    *trimmed = 0;
    for (size_t i = 0; i < alm_queue_count; i++) {
        redisReply *r = redisCommand(c, "XTRIM " ALM_QUEUE_DEAD "%s MINID %lld-0",
                                     alm_queue_names[i], min_id > 0 ? min_id : 0);
        if (!r)
            return alm_redis_error(c, QUEUE_TIMEOUT_MS, eb);
        if (r->type == REDIS_REPLY_INTEGER)
            *trimmed += (long)r->integer;
        freeReplyObject(r);
    }
    return ALM_OK;
}

/* KEYS: stream (twice); ARGV: group, idle ms. Forgets the consumers that hold no job and
 * have been silent for longer than the idle time: workers that exited. In one script, so
 * that no consumer can take a job between the check and the delete (deleting a consumer
 * drops its pending entries). A live consumer that is forgotten anyway is created again by
 * its next read. */
static const char prune_script[] =
    "local ok, cs = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[2], ARGV[1]) "
    "if not ok then return 0 end "
    "local n = 0 "
    "for _, c in ipairs(cs) do local f = {} "
    "  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end "
    "  if f['pending'] == 0 and f['idle'] > tonumber(ARGV[2]) then "
    "    redis.call('XGROUP', 'DELCONSUMER', KEYS[2], ARGV[1], f['name']) n = n + 1 end end "
    "return n";

enum alm_err alm_queue_prune_consumers(redisContext *c, long long idle_ms, long *pruned,
                                       struct alm_errbuf *eb)
{
    char idle[24];
    const char *args[2] = {ALM_QUEUE_GROUP, idle};

    snprintf(idle, sizeof(idle), "%lld", idle_ms);
    return each_queue(c, prune_script, ALM_STREAM_PREFIX, 2, args, pruned, eb);
}

/* A field of an XINFO GROUPS entry (a flat [name, value, ...] array). */
static long long info_field(const redisReply *g, const char *name)
{
    for (size_t i = 0; g->type == REDIS_REPLY_ARRAY && i + 1 < g->elements; i += 2) {
        if (g->element[i]->type == REDIS_REPLY_STRING && strcmp(g->element[i]->str, name) == 0)
            return g->element[i + 1]->type == REDIS_REPLY_INTEGER ? g->element[i + 1]->integer : 0;
    }
    return 0;
}

/* Pipelines the reads; any reply missing makes the whole answer an error. */
enum alm_err alm_queue_stats(redisContext *c, const char *queue, struct alm_queue_stats *s,
                             struct alm_errbuf *eb)
{
    redisReply *r[6] = {0};
    enum alm_err err = ALM_OK;

    memset(s, 0, sizeof(*s));
    redisAppendCommand(c, "XLEN " ALM_STREAM_PREFIX "%s", queue);
    redisAppendCommand(c, "XINFO GROUPS " ALM_STREAM_PREFIX "%s", queue);
    redisAppendCommand(c, "XPENDING " ALM_STREAM_PREFIX "%s %s", queue, ALM_QUEUE_GROUP);
    redisAppendCommand(c, "ZCARD " ALM_QUEUE_DELAYED "%s", queue);
    redisAppendCommand(c, "XLEN " ALM_QUEUE_DEAD "%s", queue);
    redisAppendCommand(c, "TIME");
    for (int i = 0; i < 6; i++) {
        if (redisGetReply(c, (void **)&r[i]) != REDIS_OK) {
            err = alm_redis_error(c, QUEUE_TIMEOUT_MS, eb);
            goto out;
        }
    }
    s->length = r[0]->type == REDIS_REPLY_INTEGER ? r[0]->integer : 0;
    for (size_t i = 0; r[1]->type == REDIS_REPLY_ARRAY && i < r[1]->elements; i++) {
        s->pending = info_field(r[1]->element[i], "pending");
        s->consumers = info_field(r[1]->element[i], "consumers");
        s->lag = info_field(r[1]->element[i], "lag");
    }
    /* [count, smallest id, greatest id, consumers]: the smallest id holds its enqueue time */
    if (r[2]->type == REDIS_REPLY_ARRAY && r[2]->elements >= 2 &&
        r[2]->element[1]->type == REDIS_REPLY_STRING && r[5]->type == REDIS_REPLY_ARRAY &&
        r[5]->elements == 2) {
        double now_ms = strtod(r[5]->element[0]->str, NULL) * 1000.0 +
                        strtod(r[5]->element[1]->str, NULL) / 1000.0;
        double id_ms = strtod(r[2]->element[1]->str, NULL);
        s->oldest_pending_age_s = now_ms > id_ms ? (now_ms - id_ms) / 1000.0 : 0;
    }
    s->delayed = r[3]->type == REDIS_REPLY_INTEGER ? r[3]->integer : 0;
    s->dead = r[4]->type == REDIS_REPLY_INTEGER ? r[4]->integer : 0;
out:
    for (int i = 0; i < 6; i++) {
        if (r[i])
            freeReplyObject(r[i]);
    }
    return err;
}
