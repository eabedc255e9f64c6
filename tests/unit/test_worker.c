/* SPDX-License-Identifier: Apache-2.0 */
/* The wait before a failed job's retry: doubling backoff, its one-hour cap, its jitter. */
#include "unit.h"
#include "worker.h"

#include <sodium.h>

static void ceiling_doubles_per_attempt(void **state)
{
    (void)state;
    assert_int_equal(alm_worker_retry_ceiling(2000, 1), 2000);
    assert_int_equal(alm_worker_retry_ceiling(2000, 2), 4000);
    assert_int_equal(alm_worker_retry_ceiling(2000, 3), 8000);
    assert_int_equal(alm_worker_retry_ceiling(2000, 5), 32000);
    assert_int_equal(alm_worker_retry_ceiling(10, 4), 80);
    /* attempt counts below 1 come from damaged jobs: the first run's wait */
    assert_int_equal(alm_worker_retry_ceiling(2000, 0), 2000);
    assert_int_equal(alm_worker_retry_ceiling(2000, -3), 2000);
}

/* An hour at most, however many attempts (no overflow) and whatever the base. */
static void ceiling_is_capped(void **state)
{
    (void)state;
    assert_int_equal(alm_worker_retry_ceiling(2000, 11), 2048000);
    assert_int_equal(alm_worker_retry_ceiling(2000, 12), ALM_WORKER_RETRY_MAX_MS);
    assert_int_equal(alm_worker_retry_ceiling(2000, 13), ALM_WORKER_RETRY_MAX_MS);
    assert_int_equal(alm_worker_retry_ceiling(2000, 1000000), ALM_WORKER_RETRY_MAX_MS);
    assert_int_equal(alm_worker_retry_ceiling(10, 2147483647), ALM_WORKER_RETRY_MAX_MS);
    assert_int_equal(alm_worker_retry_ceiling(3600000, 1), ALM_WORKER_RETRY_MAX_MS);
    assert_int_equal(alm_worker_retry_ceiling(3600000, 9), ALM_WORKER_RETRY_MAX_MS);
}

/* Each delay lies between half the ceiling and the ceiling; over many draws both ends of
 * that range are reached (a delay without jitter, or with a narrower one, fails). */
static void delay_within_jitter_bounds(void **state)
{
    static const struct {
        long base;
        int attempt;
    } cases[] = {{2000, 1}, {2000, 3}, {2001, 1}, {10, 1}, {2000, 30}, {3600000, 1}};
    (void)state;

    for (size_t c = 0; c < ALM_ARRAY_SIZE(cases); c++) {
        long ceiling = alm_worker_retry_ceiling(cases[c].base, cases[c].attempt);
        long least = ceiling - ceiling / 2, lo = ceiling, hi = 0;
        for (int i = 0; i < 2000; i++) {
            long d = alm_worker_retry_delay(cases[c].base, cases[c].attempt);
            assert_in_range(d, least, ceiling);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        /* 2000 uniform draws all missing the outer tenth of the range: p < 1e-90 */
        assert_true(lo <= least + (ceiling - least) / 10);
        assert_true(hi >= ceiling - (ceiling - least) / 10);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ceiling_doubles_per_attempt),
        cmocka_unit_test(ceiling_is_capped),
        cmocka_unit_test(delay_within_jitter_bounds),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
