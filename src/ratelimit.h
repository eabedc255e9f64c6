/* ratelimit.h: fixed-window failure counters in Redis, for sign-in throttling.
 *
 * A counter key lives for the window from its first failure. Redis being down must not
 * lock everybody out, so callers fail open (and log it): brute-force protection pauses
 * during a Redis outage, sign-in does not. */
#pragma once
#include "compat.h"
#include "err.h"

#include <hiredis/hiredis.h>

/* Reads the failure count of key; *retry_after_s gets the seconds left in its window. */
enum alm_err alm_ratelimit_peek(redisContext *c, const char *key, long *count, long *retry_after_s,
                                struct alm_errbuf *eb) ALM_MUSTCHECK;
/* Counts one failure against key, starting a window of window_s on the first. */
enum alm_err alm_ratelimit_fail(redisContext *c, const char *key, long window_s,
                                struct alm_errbuf *eb) ALM_MUSTCHECK;
/* Forgets key (after a successful sign-in). */
void alm_ratelimit_reset(redisContext *c, const char *key);
