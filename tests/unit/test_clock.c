/* SPDX-License-Identifier: Apache-2.0 */
/* Clock: wall and monotonic milliseconds, conversions, sleeps and timed waits. */
#include "unit.h"
#include "clock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

/* Generous bounds: they tell a wait that never ends or ends at once from one that ends
 * at its deadline, on a loaded machine too. */
#define LATE_MS 5000

/* Milliseconds of CLOCK_REALTIME, read here; time(NULL) would not do as a bound: glibc
 * reads it from the coarse clock, which lags the precise one by up to a tick. */
static int64_t realtime_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wall_ms_is_the_epoch_time(void **state)
{
    int64_t before = realtime_ms();
    int64_t ms = alm_clock_wall_ms();
    int64_t after = realtime_ms();

    (void)state;
    assert_true(ms >= before && ms <= after);
}

static void iso8601_formats_wall_ms(void **state)
{
    char out[32];

    (void)state;
    alm_clock_iso8601(out, sizeof(out), 1767607923412);
    assert_string_equal(out, "2026-01-05T10:12:03.412Z");
    alm_clock_iso8601(out, sizeof(out), 0);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    alm_clock_now_iso8601(out, sizeof(out));
    assert_int_equal(strlen(out), 24);
    assert_int_equal(out[23], 'Z');
}

static void conversions_split_milliseconds(void **state)
{
    struct timespec ts = alm_clock_timespec(1500);
    struct timeval tv = alm_clock_timeval(1500);

    (void)state;
    assert_int_equal(ts.tv_sec, 1);
    assert_int_equal(ts.tv_nsec, 500000000L);
    assert_int_equal(tv.tv_sec, 1);
    assert_int_equal(tv.tv_usec, 500000);
    ts = alm_clock_timespec(999);
    assert_int_equal(ts.tv_sec, 0);
    assert_int_equal(ts.tv_nsec, 999000000L);
    tv = alm_clock_timeval(0);
    assert_int_equal(tv.tv_sec, 0);
    assert_int_equal(tv.tv_usec, 0);
}

static void sleep_waits_at_least_ms(void **state)
{
    int64_t t0 = alm_clock_ms();

    (void)state;
    alm_clock_sleep_ms(0);
    alm_clock_sleep_ms(-5); /* a deadline already passed: no sleep, no error */
    assert_true(alm_clock_ms() - t0 < LATE_MS);
    t0 = alm_clock_ms();
    alm_clock_sleep_ms(30);
    assert_true(alm_clock_ms() - t0 >= 30);
}

/* A cond made by the static initializer: the wait still measures on CLOCK_MONOTONIC. */
static pthread_mutex_t static_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t static_cond = PTHREAD_COND_INITIALIZER;

static void wait_with_past_deadline_returns_at_once(void **state)
{
    int64_t t0 = alm_clock_ms();
    bool woken;

    (void)state;
    pthread_mutex_lock(&static_mu);
    woken = alm_clock_wait_until(&static_cond, &static_mu, t0 - 1000);
    pthread_mutex_unlock(&static_mu);
    assert_false(woken);
    assert_true(alm_clock_ms() - t0 < LATE_MS);
    /* 0 and negative deadlines (a deadline of none computed from 0) are past too */
    pthread_mutex_lock(&static_mu);
    woken = alm_clock_wait_until(&static_cond, &static_mu, 0);
    pthread_mutex_unlock(&static_mu);
    assert_false(woken);
}

static void wait_times_out_at_its_deadline(void **state)
{
    int64_t t0 = alm_clock_ms(), until = t0 + 100;

    (void)state;
    pthread_mutex_lock(&static_mu);
    while (alm_clock_wait_until(&static_cond, &static_mu, until))
        ; /* spurious wakeups: nobody signals this cond */
    pthread_mutex_unlock(&static_mu);
    assert_true(alm_clock_ms() >= until);
    assert_true(alm_clock_ms() - t0 < LATE_MS);
}

struct signaller {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool done;
};

static void *signal_later(void *arg)
{
    struct signaller *s = arg;

    alm_clock_sleep_ms(20);
    pthread_mutex_lock(&s->mu);
    s->done = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void wait_ends_when_signalled(void **state)
{
    struct signaller s = {.done = false};
    int64_t t0 = alm_clock_ms(), until = t0 + 60000;
    bool in_time = true;
    pthread_t t;

    (void)state;
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cond, NULL);
    pthread_mutex_lock(&s.mu);
    assert_int_equal(pthread_create(&t, NULL, signal_later, &s), 0);
    while (!s.done && in_time)
        in_time = alm_clock_wait_until(&s.cond, &s.mu, until);
    pthread_mutex_unlock(&s.mu);
    pthread_join(t, NULL);
    assert_true(s.done);
    assert_true(in_time);
    assert_true(alm_clock_ms() - t0 < LATE_MS);
    pthread_cond_destroy(&s.cond);
    pthread_mutex_destroy(&s.mu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wall_ms_is_the_epoch_time),
        cmocka_unit_test(iso8601_formats_wall_ms),
        cmocka_unit_test(conversions_split_milliseconds),
        cmocka_unit_test(sleep_waits_at_least_ms),
        cmocka_unit_test(wait_with_past_deadline_returns_at_once),
        cmocka_unit_test(wait_times_out_at_its_deadline),
        cmocka_unit_test(wait_ends_when_signalled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
