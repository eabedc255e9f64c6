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

int64_t alm_clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void alm_clock_iso8601(char *out, size_t n, int64_t wall_ms)
{
    struct timespec ts = alm_clock_timespec(wall_ms);
    struct tm tm;
    char base[24];

    gmtime_r(&ts.tv_sec, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, n, "%s.%03ldZ", base, ts.tv_nsec / 1000000);
}

void alm_clock_now_iso8601(char *out, size_t n)
{
    alm_clock_iso8601(out, n, alm_clock_wall_ms());
}

struct timespec alm_clock_timespec(int64_t ms)
{
    return (struct timespec){(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
}

struct timeval alm_clock_timeval(int64_t ms)
{
    return (struct timeval){(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
}

void alm_clock_sleep_ms(int64_t ms)
{
    struct timespec req = alm_clock_timespec(ms);

    if (ms <= 0)
        return;
    while (nanosleep(&req, &req) < 0 && errno == EINTR)
        ;
}

bool alm_clock_wait_until(pthread_cond_t *cond, pthread_mutex_t *mu, int64_t deadline_ms)
{
    struct timespec until = alm_clock_timespec(deadline_ms > 0 ? deadline_ms : 0);

    /* pthread_cond_clockwait measures on the clock it is given, so a step of the wall
     * clock (NTP, a suspended VM) neither ends a wait early nor stretches it. */
    return pthread_cond_clockwait(cond, mu, CLOCK_MONOTONIC, &until) == 0;
}
