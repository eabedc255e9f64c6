/* SPDX-License-Identifier: Apache-2.0 */
/* The capped buffer and the error table. */
#include "unit.h"
#include "err.h"
#include "mem.h"

#include <stdlib.h>
#include <string.h>

static void cap_is_enforced(void **state)
{
    struct alm_buf b = ALM_BUF_INIT(10);
    (void)state;
    assert_int_equal(alm_buf_append(&b, "12345", 5), ALM_OK);
    assert_int_equal(alm_buf_append(&b, "67890", 5), ALM_OK);
    assert_int_equal(alm_buf_append(&b, "x", 1), ALM_ERR_TOO_LARGE);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "1234567890");
    assert_int_equal(alm_buf_append(&b, "", (size_t)-1), ALM_ERR_TOO_LARGE);
    alm_buf_release(&b);
    assert_null(b.data);
}

static void appendf_and_detach(void **state)
{
    struct alm_buf b = ALM_BUF_INIT(0);
    size_t len;
    char *s;
    (void)state;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(alm_buf_appendf(&b, "%d,", i), ALM_OK);
    s = alm_buf_detach(&b, &len);
    assert_int_equal(len, strlen(s));
    assert_true(strncmp(s, "0,1,2,", 6) == 0);
    assert_null(b.data);
    free(s);
    s = alm_buf_detach(&b, &len); /* empty: still a string */
    assert_string_equal(s, "");
    free(s);
}

static void error_mapping(void **state)
{
    (void)state;
    assert_int_equal(alm_err_http_status(ALM_ERR_NOT_FOUND), 404);
    assert_int_equal(alm_err_http_status(ALM_ERR_TOO_LARGE), 413);
    assert_int_equal(alm_err_http_status(ALM_ERR_SHUTTING_DOWN), 503);
    assert_string_equal(alm_err_name(ALM_ERR_UNPROCESSABLE), "unprocessable");
    assert_string_equal(alm_err_name((enum alm_err)999), "internal");
    assert_int_equal(alm_err_http_status((enum alm_err)999), 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cap_is_enforced),
        cmocka_unit_test(appendf_and_detach),
        cmocka_unit_test(error_mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
