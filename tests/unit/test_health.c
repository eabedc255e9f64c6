/* SPDX-License-Identifier: Apache-2.0 */
/* Readiness: aggregation, cache, single-flight, the deadline backstop, draining. */
#include "unit.h"
#include "clock.h"
#include "health.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

struct fake {
    atomic_int runs;
    int sleep_ms;
    bool pass;
};

static bool fake_run(void *state, int timeout_ms, char *why, size_t n)
{
    struct fake *f = state;
    (void)timeout_ms;
    atomic_fetch_add(&f->runs, 1);
    alm_clock_sleep_ms(f->sleep_ms);
    if (!f->pass)
        snprintf(why, n, "connection refused");
    return f->pass;
}

static void aggregate_rules(void **state)
{
    struct alm_check c[2] = {{.name = "a", .required = true}, {.name = "b", .required = false}};
    struct alm_check_result r[2] = {{.ran = true, .pass = true, .observed_mono_ms = 1000},
                                    {.ran = true, .pass = true, .observed_mono_ms = 1000}};
    (void)state;
    assert_string_equal(alm_health_aggregate(c, r, 2, false, 1000, 5000), "pass");
    r[1].pass = false; /* optional down: warn, still ready */
    assert_string_equal(alm_health_aggregate(c, r, 2, false, 1000, 5000), "warn");
    r[0].pass = false; /* required down: fail */
    assert_string_equal(alm_health_aggregate(c, r, 2, false, 1000, 5000), "fail");
    r[0].pass = r[1].pass = true;
    /* an old pass must not hide a stuck check */
    assert_string_equal(alm_health_aggregate(c, r, 2, false, 7000, 5000), "fail");
    /* never run yet */
    r[0].ran = false;
    assert_string_equal(alm_health_aggregate(c, r, 2, false, 1000, 5000), "fail");
    r[0].ran = true;
    /* draining fails whatever the checks say */
    assert_string_equal(alm_health_aggregate(c, r, 2, true, 1000, 5000), "fail");
    /* not configured: warn */
    c[1].disabled_note = "not configured";
    r[1].ran = false;
    assert_string_equal(alm_health_aggregate(c, r, 2, false, 1000, 5000), "warn");
}

static atomic_int callbacks;

static void done_cb(void *arg)
{
    (void)arg;
    atomic_fetch_add(&callbacks, 1);
}

static void wait_refresh(struct alm_health *h)
{
    int64_t until = alm_clock_ms() + 3000;
    while (!alm_health_fresh(h) && alm_clock_ms() < until)
        alm_clock_sleep_ms(2);
}

static void single_flight_and_cache(void **state)
{
    struct fake f = {.sleep_ms = 100, .pass = true};
    struct alm_check c = {.name = "dep",
                          .component_type = "datastore",
                          .required = true,
                          .run = fake_run,
                          .state = &f};
    struct alm_health *h = alm_health_new(1000, 300, "test");
    json_t *body;
    (void)state;
    alm_health_add(h, &c);
    alm_health_start(h);
    atomic_store(&callbacks, 0);
    /* 50 callers during one refresh: one run, 50 callbacks */
    for (int i = 0; i < 50; i++)
        assert_false(alm_health_wait(h, done_cb, NULL));
    wait_refresh(h);
    alm_clock_sleep_ms(20);
    assert_int_equal(atomic_load(&f.runs), 1);
    assert_int_equal(atomic_load(&callbacks), 50);
    /* within the TTL: answered from the cache */
    assert_true(alm_health_wait(h, done_cb, NULL));
    assert_int_equal(alm_health_report(h, &body), 200);
    assert_string_equal(json_string_value(json_object_get(body, "status")), "pass");
    json_decref(body);
    /* after the TTL: one more run */
    alm_clock_sleep_ms(350);
    assert_false(alm_health_wait(h, done_cb, NULL));
    wait_refresh(h);
    assert_int_equal(atomic_load(&f.runs), 2);
    alm_health_free(h);
}

static void deadline_closes_refresh(void **state)
{
    struct fake slow = {.sleep_ms = 1500, .pass = true};
    struct fake quick = {.sleep_ms = 0, .pass = false};
    struct alm_check a = {.name = "slow",
                          .component_type = "datastore",
                          .required = true,
                          .run = fake_run,
                          .state = &slow};
    struct alm_check b = {.name = "quick",
                          .component_type = "datastore",
                          .required = true,
                          .run = fake_run,
                          .state = &quick};
    struct alm_health *h = alm_health_new(300, 1000, "test");
    json_t *body, *entry;
    int64_t t0;
    (void)state;
    alm_health_add(h, &a);
    alm_health_add(h, &b);
    alm_health_start(h);
    t0 = alm_clock_ms();
    assert_false(alm_health_wait(h, done_cb, NULL));
    wait_refresh(h);
    /* closed at the deadline plus slack, not when the slow check returns */
    assert_in_range(alm_clock_ms() - t0, 290, 1300); /* well before the 1500 ms check */
    assert_int_equal(alm_health_report(h, &body), 503);
    entry =
        json_array_get(json_object_get(json_object_get(body, "checks"), "slow:responseTime"), 0);
    assert_string_equal(json_string_value(json_object_get(entry, "status")), "fail");
    assert_non_null(strstr(json_string_value(json_object_get(entry, "output")), "timeout"));
    entry =
        json_array_get(json_object_get(json_object_get(body, "checks"), "quick:responseTime"), 0);
    assert_string_equal(json_string_value(json_object_get(entry, "output")), "connection refused");
    assert_non_null(json_object_get(entry, "time"));
    assert_non_null(json_object_get(entry, "observedValue"));
    json_decref(body);
    alm_health_free(h);
}

static void draining_fails_at_once(void **state)
{
    struct fake f = {.sleep_ms = 0, .pass = true};
    struct alm_check c = {.name = "dep",
                          .component_type = "datastore",
                          .required = true,
                          .run = fake_run,
                          .state = &f};
    struct alm_health *h = alm_health_new(1000, 10000, "test");
    json_t *body;
    (void)state;
    alm_health_add(h, &c);
    alm_health_start(h);
    assert_false(alm_health_wait(h, done_cb, NULL));
    wait_refresh(h);
    assert_int_equal(alm_health_report(h, &body), 200);
    json_decref(body);
    alm_health_set_draining(h);
    assert_true(alm_health_fresh(h));
    assert_int_equal(alm_health_report(h, &body), 503);
    assert_string_equal(json_string_value(json_object_get(body, "output")), "shutting down");
    json_decref(body);
    alm_health_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(aggregate_rules),
        cmocka_unit_test(single_flight_and_cache),
        cmocka_unit_test(deadline_closes_refresh),
        cmocka_unit_test(draining_fails_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
