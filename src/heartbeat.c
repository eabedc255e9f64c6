/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "heartbeat.h"
#include "clock.h"
#include "log.h"
#include "mem.h"
#include "redis.h"
#include "redis_keys.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct alm_heartbeat {
    const struct alm_config *cfg;
    struct alm_heartbeat_role role;
    char id[128];
    char host[64];
    char started_at[32];
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stopping;
    redisContext *redis;
};

void alm_heartbeat_make_id(const char *role, char *out, size_t n)
{
    char host[64] = "unknown";
    uint32_t r = randombytes_random();

    gethostname(host, sizeof(host) - 1);
    snprintf(out, n, "%s-%s-%d-%04x", role, host, (int)getpid(), (unsigned)(r & 0xffff));
}

static char *record(struct alm_heartbeat *hb)
{
    char now[32];
    int64_t now_ms = alm_clock_wall_ms();
    json_t *o, *extra;
    char *text;

    alm_clock_iso8601(now, sizeof(now), now_ms);
    o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:I, s:i}", "id", hb->id, "role", hb->role.role,
                  "host", hb->host, "pid", (int)getpid(), "started_at", hb->started_at, "last_seen",
                  now, "last_seen_ms", (json_int_t)now_ms, "concurrency", hb->role.concurrency);
    extra = hb->role.snapshot ? hb->role.snapshot(hb->role.arg) : NULL;
    if (extra)
        json_object_update(o, extra);
    json_decref(extra);
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

/* One beat; reconnects on the next one after any failure. */
static void beat(struct alm_heartbeat *hb)
{
    struct alm_errbuf eb = {{0}};
    char *text;
    redisReply *r;

    if (!hb->redis) {
        hb->redis = alm_redis_connect(hb->cfg, (int)hb->cfg->ready_timeout_ms, &eb);
        if (!hb->redis) {
            alm_warn("heartbeat.failed", "cannot reach redis for the heartbeat", "{s:s}", "detail",
                     eb.msg);
            return;
        }
    }
    text = record(hb);
    r = redisCommand(hb->redis, "SET " ALM_HEARTBEAT_PREFIX "%s %s PX %ld", hb->id, text,
                     3 * hb->cfg->heartbeat_ms);
    free(text);
    if (r)
        freeReplyObject(r);
    if (!r || hb->redis->err) {
        redisFree(hb->redis);
        hb->redis = NULL;
        return;
    }
    if (hb->role.tick)
        hb->role.tick(hb->role.arg, hb->redis);
}

static void *heartbeat_thread(void *arg)
{
    struct alm_heartbeat *hb = arg;

    pthread_mutex_lock(&hb->mu);
    while (!hb->stopping) {
        int64_t until = alm_clock_ms() + hb->cfg->heartbeat_ms;
        pthread_mutex_unlock(&hb->mu);
        beat(hb);
        pthread_mutex_lock(&hb->mu);
        while (!hb->stopping && alm_clock_wait_until(&hb->cond, &hb->mu, until))
            ;
    }
    pthread_mutex_unlock(&hb->mu);
    return NULL;
}

struct alm_heartbeat *alm_heartbeat_start(const struct alm_config *cfg, const char *id,
                                          const struct alm_heartbeat_role *role)
{
    struct alm_heartbeat *hb = alm_xcalloc(1, sizeof(*hb));

    hb->cfg = cfg;
    hb->role = *role;
    snprintf(hb->id, sizeof(hb->id), "%s", id);
    gethostname(hb->host, sizeof(hb->host) - 1);
    alm_clock_now_iso8601(hb->started_at, sizeof(hb->started_at));
    pthread_mutex_init(&hb->mu, NULL);
    pthread_cond_init(&hb->cond, NULL);
    alm_xthread_create(&hb->thread, heartbeat_thread, hb, "alm-heartbeat");
    return hb;
}

void alm_heartbeat_stop(struct alm_heartbeat *hb)
{
    redisReply *r;

    if (!hb)
        return;
    pthread_mutex_lock(&hb->mu);
    hb->stopping = true;
    pthread_cond_signal(&hb->cond);
    pthread_mutex_unlock(&hb->mu);
    pthread_join(hb->thread, NULL);
    if (hb->redis) {
        r = redisCommand(hb->redis, "DEL " ALM_HEARTBEAT_PREFIX "%s", hb->id);
        if (r)
            freeReplyObject(r);
        redisFree(hb->redis);
    }
    pthread_cond_destroy(&hb->cond);
    pthread_mutex_destroy(&hb->mu);
    free(hb);
}

/* Adds the records named by keys (a SCAN batch) to out. */
static enum alm_err read_records(redisContext *c, const redisReply *keys, long period_ms,
                                 json_t *out, struct alm_errbuf *eb)
{
    const char **argv;
    redisReply *r;
    int64_t now = alm_clock_wall_ms();

    if (keys->elements == 0)
        return ALM_OK;
    argv = alm_xcalloc(keys->elements + 1, sizeof(*argv));
    argv[0] = "MGET";
    for (size_t i = 0; i < keys->elements; i++)
        argv[i + 1] = keys->element[i]->str;
    r = redisCommandArgv(c, (int)keys->elements + 1, argv, NULL);
    free(argv);
    if (!r)
        return alm_redis_error(c, 2000, eb);
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        json_t *o;
        if (r->element[i]->type != REDIS_REPLY_STRING)
            continue; /* expired between SCAN and MGET */
        o = json_loads(r->element[i]->str, 0, NULL);
        if (!json_is_object(o)) {
            json_decref(o);
            continue;
        }
        int64_t seen = json_integer_value(json_object_get(o, "last_seen_ms"));
        json_object_set_new(o, "stale", json_boolean(now - seen > 2 * period_ms));
        json_array_append_new(out, o);
    }
    freeReplyObject(r);
    return ALM_OK;
}

enum alm_err alm_heartbeat_list(redisContext *c, long period_ms, json_t **out,
                                struct alm_errbuf *eb)
{
    char cursor[32] = "0";
    enum alm_err err = ALM_OK;

    *out = json_array();
    do {
        redisReply *r =
            redisCommand(c, "SCAN %s MATCH " ALM_HEARTBEAT_PREFIX "* COUNT 500", cursor);
        if (!r) {
            err = alm_redis_error(c, 2000, eb);
            break;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            freeReplyObject(r);
            err = alm_fail(eb, ALM_ERR_UPSTREAM, "unexpected SCAN reply");
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        err = read_records(c, r->element[1], period_ms, *out, eb);
        freeReplyObject(r);
    } while (!err && strcmp(cursor, "0") != 0);
    if (err) {
        json_decref(*out);
        *out = NULL;
    }
    return err;
}
