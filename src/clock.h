/* SPDX-License-Identifier: Apache-2.0 */
/* clock.h: monotonic time for deadlines and waits, wall time for logs and reports. */
#pragma once
#include "compat.h"

#include <pthread.h>
#include <sys/time.h>
#include <time.h>

/* Milliseconds on CLOCK_MONOTONIC: for deadlines and durations only. */
int64_t alm_clock_ms(void);
double alm_clock_ms_f(void);
/* Milliseconds since the epoch on CLOCK_REALTIME: for times others read (logs, Redis
 * stream ids and scores, reports), never for a deadline (the wall clock may step). */
int64_t alm_clock_wall_ms(void);
/* Wall time wall_ms (alm_clock_wall_ms) as "2026-01-05T10:12:03.412Z" into out (at least
 * 32 bytes). */
void alm_clock_iso8601(char *out, size_t n, int64_t wall_ms);
void alm_clock_now_iso8601(char *out, size_t n);
/* A duration of ms milliseconds (>= 0) as a timespec or (for socket options) a timeval. */
struct timespec alm_clock_timespec(int64_t ms);
struct timeval alm_clock_timeval(int64_t ms);
/* Sleeps ms milliseconds (none when ms <= 0), resuming after signals. */
void alm_clock_sleep_ms(int64_t ms);
/* Waits on cond (mu held) until it is signalled or CLOCK_MONOTONIC reaches deadline_ms
 * (an alm_clock_ms value); false once the deadline has passed. Any cond will do, also
 * PTHREAD_COND_INITIALIZER: the clock is chosen by the wait, not by the cond's
 * attributes. Wakeups may be spurious: the caller checks its condition in a loop. */
bool alm_clock_wait_until(pthread_cond_t *cond, pthread_mutex_t *mu, int64_t deadline_ms);
