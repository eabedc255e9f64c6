/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "clock.h"

#include <errno.h>
#include <stdio.h>

int64_t alm_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double alm_clock_ms_f(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

void alm_clock_iso8601(char *out, size_t n, const struct timespec *ts)
{
    struct tm tm;
    char base[24];

    gmtime_r(&ts->tv_sec, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, n, "%s.%03ldZ", base, ts->tv_nsec / 1000000);
}

void alm_clock_now_iso8601(char *out, size_t n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    alm_clock_iso8601(out, n, &ts);
}

void alm_clock_sleep_ms(int64_t ms)
{
    struct timespec req = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&req, &req) < 0 && errno == EINTR)
        ;
}
