/* SPDX-License-Identifier: Apache-2.0 */
/* The schema gate: which schema versions a binary runs on, from the compiled migrations
 * (never a hard-coded version: numbers change when branches merge). */
#include "unit.h"
#include "schema.h"

#include <stdio.h>
#include <string.h>

static void migrations_increase_and_floor_is_sane(void **state)
{
    (void)state;
    assert_true(alm_migration_count > 0);
    for (size_t i = 0; i < alm_migration_count; i++) {
        assert_true(alm_migrations[i].compatible_from >= 1);
        assert_true(alm_migrations[i].compatible_from <= alm_migrations[i].version);
        if (i > 0)
            assert_true(alm_migrations[i].version > alm_migrations[i - 1].version);
    }
    assert_int_equal(alm_schema_expected(), alm_migrations[alm_migration_count - 1].version);
    assert_true(alm_schema_floor() <= alm_schema_expected());
}

static void fits_its_own_and_newer_compatible_schemas(void **state)
{
    int e = alm_schema_expected();
    char why[200];
    (void)state;
    assert_int_equal(alm_schema_fit(e, alm_schema_floor(), why, sizeof(why)), ALM_SCHEMA_FITS);
    assert_string_equal(why, "");
    /* newer, expand-only: the floor stays at or below what this binary needs */
    assert_int_equal(alm_schema_fit(e + 3, e, why, sizeof(why)), ALM_SCHEMA_FITS);
    assert_int_equal(alm_schema_fit(e + 1, 1, why, sizeof(why)), ALM_SCHEMA_FITS);
}

static void refuses_old_and_incompatible_schemas_saying_what_to_do(void **state)
{
    int e = alm_schema_expected();
    char why[200], want[200];
    (void)state;
    assert_int_equal(alm_schema_fit(e - 1, e - 1, why, sizeof(why)), ALM_SCHEMA_OLD);
    snprintf(want, sizeof(want),
             "schema at version %d, this binary needs %d: run 'almanac migrate'", e - 1, e);
    assert_string_equal(why, want);
    assert_int_equal(alm_schema_fit(0, 0, why, sizeof(why)), ALM_SCHEMA_OLD);
    assert_int_equal(alm_schema_fit(e + 2, e + 1, why, sizeof(why)), ALM_SCHEMA_TOO_NEW);
    assert_non_null(strstr(why, "runs only binaries that need version"));
    assert_non_null(strstr(why, "run the newer release"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(migrations_increase_and_floor_is_sane),
        cmocka_unit_test(fits_its_own_and_newer_compatible_schemas),
        cmocka_unit_test(refuses_old_and_incompatible_schemas_saying_what_to_do),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
