/* SPDX-License-Identifier: Apache-2.0 */
/* clock.h: monotonic time for deadlines, wall time for logs and reports. */
#pragma once
#include "compat.h"

#include <time.h>

/* Milliseconds on CLOCK_MONOTONIC: for deadlines and durations only. */
int64_t alm_clock_ms(void);
double alm_clock_ms_f(void);
/* Wall-clock time as "2026-01-05T10:12:03.412Z" into out (at least 32 bytes). */
void alm_clock_iso8601(char *out, size_t n, const struct timespec *ts);
void alm_clock_now_iso8601(char *out, size_t n);
/* Sleeps ms milliseconds, resuming after signals. */
void alm_clock_sleep_ms(int64_t ms);
