/* SPDX-License-Identifier: Apache-2.0 */
/* ratelimit.h: fixed-window failure counters in Redis, for sign-in throttling.
 *
 * A counter key lives for the window from its first attempt. Redis being down, or
 * refusing writes (maxmemory with noeviction), must not lock everybody out, so callers
 * fail open (and log it, and /ready warns through the redis_writes check): brute-force
 * protection pauses during a Redis outage, sign-in does not. */
#pragma once
#include "compat.h"
#include "err.h"

#include <hiredis/hiredis.h>

/* Counts one sign-in attempt against the account and the address keys, before the
 * password is verified, and reads both counts in the same step (counts[0] account,
 * counts[1] address; retry_after_s the seconds left in each window). ALM_ERR_UNAVAILABLE
 * when Redis is down or refuses the write (maxmemory): the caller fails open and logs. */
enum alm_err alm_ratelimit_take(redisContext *c, const char *acct, const char *addr, long window_s,
                                long counts[2], long retry_after_s[2],
                                struct alm_errbuf *eb) ALM_MUSTCHECK;
/* The attempt succeeded: forgets the account's count and gives the address its one back. */
void alm_ratelimit_succeeded(redisContext *c, const char *acct, const char *addr);
