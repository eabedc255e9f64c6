#include "compat.h"
#include "ratelimit.h"
#include "redis.h"

#include <stdio.h>
#include <stdlib.h>

#define RL_TIMEOUT_MS 1000

/* INCR and the window's expiry in one step, so a crash never leaves a key without TTL. */
static const char fail_script[] = "local n = redis.call('INCR', KEYS[1]) "
                                  "if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end "
                                  "return n";

enum alm_err alm_ratelimit_peek(redisContext *c, const char *key, long *count, long *retry_after_s,
                                struct alm_errbuf *eb)
{
    redisReply *r;

    *count = 0;
    *retry_after_s = 0;
    if (redisAppendCommand(c, "GET %s", key) != REDIS_OK ||
        redisAppendCommand(c, "TTL %s", key) != REDIS_OK)
        return alm_redis_error(c, RL_TIMEOUT_MS, eb);
    for (int i = 0; i < 2; i++) {
        if (redisGetReply(c, (void **)&r) != REDIS_OK)
            return alm_redis_error(c, RL_TIMEOUT_MS, eb);
        if (i == 0 && r->type == REDIS_REPLY_STRING)
            *count = strtol(r->str, NULL, 10);
        if (i == 1 && r->type == REDIS_REPLY_INTEGER)
            *retry_after_s = r->integer > 0 ? (long)r->integer : 1;
        freeReplyObject(r);
    }
    return ALM_OK;
}

enum alm_err alm_ratelimit_fail(redisContext *c, const char *key, long window_s,
                                struct alm_errbuf *eb)
{
    char win[24];
    redisReply *r;

    snprintf(win, sizeof(win), "%ld", window_s);
    r = redisCommand(c, "EVAL %s 1 %s %s", fail_script, key, win);
    if (!r)
        return alm_redis_error(c, RL_TIMEOUT_MS, eb);
    freeReplyObject(r);
    return ALM_OK;
}

void alm_ratelimit_reset(redisContext *c, const char *key)
{
    redisReply *r = redisCommand(c, "DEL %s", key);
    if (r)
        freeReplyObject(r);
}
