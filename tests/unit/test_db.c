/* SPDX-License-Identifier: Apache-2.0 */
/* The array literals that parametrised queries take for $n::bigint[]. */
#include "unit.h"
#include "db.h"

#include <stdint.h>

static void array_literals(void **state)
{
    struct alm_buf b = ALM_BUF_INIT(0);
    (void)state;
    assert_int_equal(alm_db_array_close(&b), ALM_OK);
    assert_string_equal(b.data, "{}");
    alm_buf_release(&b);
    assert_int_equal(alm_db_array_add(&b, 7), ALM_OK);
    assert_int_equal(alm_db_array_close(&b), ALM_OK);
    assert_string_equal(b.data, "{7}");
    alm_buf_release(&b);
    assert_int_equal(alm_db_array_add(&b, 1), ALM_OK);
    assert_int_equal(alm_db_array_add(&b, -2), ALM_OK);
    assert_int_equal(alm_db_array_add(&b, INT64_MAX), ALM_OK);
    assert_int_equal(alm_db_array_close(&b), ALM_OK);
    assert_string_equal(b.data, "{1,-2,9223372036854775807}");
    alm_buf_release(&b);
}

/* An element that does not fit leaves the literal as it was, still closable. */
static void capped_literal(void **state)
{
    struct alm_buf b = ALM_BUF_INIT(4);
    (void)state;
    assert_int_equal(alm_db_array_add(&b, 12), ALM_OK);
    assert_int_equal(alm_db_array_add(&b, 345), ALM_ERR_TOO_LARGE);
    assert_int_equal(alm_db_array_close(&b), ALM_OK);
    assert_string_equal(b.data, "{12}");
    alm_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(array_literals),
        cmocka_unit_test(capped_literal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
