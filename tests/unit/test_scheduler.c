/* SPDX-License-Identifier: Apache-2.0 */
/* When the beat's tasks are due after a leader change: from the last run recorded in
 * Redis, never later than one period. */
#include "unit.h"
#include "scheduler.h"

#include <stdint.h>

#define NOW    1700000000000LL /* ms since the epoch */
#define PERIOD 60000LL

/* Never run (no record, or an unreadable one that reads as 0): due at once. */
static void never_run_is_due_now(void **state)
{
    (void)state;
    assert_int_equal(alm_scheduler_due_in(0, PERIOD, NOW), 0);
    assert_int_equal(alm_scheduler_due_in(-5, PERIOD, NOW), 0);
}

/* A new leader continues the schedule of the old one. */
static void continues_from_last_run(void **state)
{
    (void)state;
    assert_int_equal(alm_scheduler_due_in(NOW, PERIOD, NOW), PERIOD);
    assert_int_equal(alm_scheduler_due_in(NOW - 1, PERIOD, NOW), PERIOD - 1);
    assert_int_equal(alm_scheduler_due_in(NOW - 45000, PERIOD, NOW), 15000);
    assert_int_equal(alm_scheduler_due_in(NOW - PERIOD + 1, PERIOD, NOW), 1);
}

/* A run missed while no beat led is due at once, however long ago. */
static void overdue_is_due_now(void **state)
{
    (void)state;
    assert_int_equal(alm_scheduler_due_in(NOW - PERIOD, PERIOD, NOW), 0);
    assert_int_equal(alm_scheduler_due_in(NOW - 10 * PERIOD, PERIOD, NOW), 0);
    assert_int_equal(alm_scheduler_due_in(1, PERIOD, NOW), 0);
}

/* A last run in the future (the old leader's clock ran ahead, a damaged record) waits
 * one period at most, never until that future moment. */
static void future_run_waits_one_period(void **state)
{
    (void)state;
    assert_int_equal(alm_scheduler_due_in(NOW + 1, PERIOD, NOW), PERIOD);
    assert_int_equal(alm_scheduler_due_in(NOW + 86400000LL, PERIOD, NOW), PERIOD);
    assert_int_equal(alm_scheduler_due_in(INT64_MAX / 2, 3600000, NOW), 3600000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(never_run_is_due_now),
        cmocka_unit_test(continues_from_last_run),
        cmocka_unit_test(overdue_is_due_now),
        cmocka_unit_test(future_run_waits_one_period),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
