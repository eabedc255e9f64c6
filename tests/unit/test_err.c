/* SPDX-License-Identifier: Apache-2.0 */
/* Errors: which codes no retry can fix, and that none is also an outage. */
#include "unit.h"
#include "err.h"

static void permanent_codes(void **state)
{
    static const enum alm_err permanent[] = {ALM_ERR_INVALID, ALM_ERR_UNPROCESSABLE,
                                             ALM_ERR_MEDIA_TYPE, ALM_ERR_TOO_LARGE};
    size_t npermanent = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(permanent) / sizeof(permanent[0]); i++)
        assert_true(alm_err_permanent(permanent[i]));
    /* Dependencies down, timeouts, odd replies, bugs and success are worth another try
     * (or none is needed). */
    assert_false(alm_err_permanent(ALM_OK));
    assert_false(alm_err_permanent(ALM_ERR_UNAVAILABLE));
    assert_false(alm_err_permanent(ALM_ERR_TIMEOUT));
    assert_false(alm_err_permanent(ALM_ERR_UPSTREAM));
    assert_false(alm_err_permanent(ALM_ERR_RATE_LIMITED));
    assert_false(alm_err_permanent(ALM_ERR_SHUTTING_DOWN));
    assert_false(alm_err_permanent(ALM_ERR_INTERNAL));
    assert_false(alm_err_permanent(ALM_ERR_NOMEM));
    assert_false(alm_err_permanent(ALM_ERR_NOT_FOUND));
    for (int e = ALM_OK; e <= ALM_ERR_NOT_IMPLEMENTED; e++)
        npermanent += alm_err_permanent((enum alm_err)e);
    assert_int_equal(npermanent, sizeof(permanent) / sizeof(permanent[0]));
}

/* The worker blames the input for a permanent error and a dependency for an outage: no
 * code may be both. */
static void permanent_is_never_an_outage(void **state)
{
    (void)state;
    for (int e = ALM_OK; e <= ALM_ERR_NOT_IMPLEMENTED; e++)
        assert_false(alm_err_permanent((enum alm_err)e) && alm_err_outage((enum alm_err)e));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(permanent_codes),
        cmocka_unit_test(permanent_is_never_an_outage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
