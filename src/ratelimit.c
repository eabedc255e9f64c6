/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "ratelimit.h"
#include "redis.h"

#include <stdio.h>
#include <stdlib.h>

#define RL_TIMEOUT_MS 1000

/* KEYS: account, address; ARGV: window s. Counts the attempt on both keys (each window
 * starts with its first count, so a crash never leaves a key without TTL) and returns
 * {account count, address count, account ttl, address ttl}: counting and reading are one
 * step, so parallel attempts cannot all see the count from before any of them. */
static const char take_script[] = "local out = {} "
                                  "for i = 1, 2 do local n = redis.call('INCR', KEYS[i]) "
                                  "  if n == 1 then redis.call('EXPIRE', KEYS[i], ARGV[1]) end "
                                  "  out[i] = n out[i + 2] = redis.call('TTL', KEYS[i]) end "
                                  "return out";

/* KEYS: account, address. The attempt succeeded: the account starts over and the
 * address gets its count back (successful sign-ins from a shared address do not count). */
static const char succeeded_script[] =
    "redis.call('DEL', KEYS[1]) "
    "if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end "
    "return 1";

enum alm_err alm_ratelimit_take(redisContext *c, const char *acct, const char *addr, long window_s,
                                long counts[2], long retry_after_s[2], struct alm_errbuf *eb)
{
    char win[24];
    redisReply *r;
    enum alm_err err = ALM_OK;

    snprintf(win, sizeof(win), "%ld", window_s);
    r = redisCommand(c, "EVAL %s 2 %s %s %s", take_script, acct, addr, win);
    if (!r)
        return alm_redis_error(c, RL_TIMEOUT_MS, eb);
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 4) {
        for (int i = 0; i < 2; i++) {
            counts[i] = (long)r->element[i]->integer;
            retry_after_s[i] =
                r->element[i + 2]->integer > 0 ? (long)r->element[i + 2]->integer : 1;
        }
    } else {
        /* e.g. OOM with maxmemory and noeviction: nothing was counted, as when it is down */
        err = alm_fail(eb, ALM_ERR_UNAVAILABLE, "redis refused the count: %.100s",
                       r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }
    freeReplyObject(r);
    return err;
}

void alm_ratelimit_succeeded(redisContext *c, const char *acct, const char *addr)
{
    redisReply *r = redisCommand(c, "EVAL %s 2 %s %s", succeeded_script, acct, addr);
    if (r)
        freeReplyObject(r);
}
