/* SPDX-License-Identifier: Apache-2.0 */
/* The capped buffer, the uncapped one, and the error table. */
#include "unit.h"
#include "err.h"
#include "mem.h"

#include <errno.h>
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

static void put_grows_an_uncapped_buffer(void **state)
{
    struct alm_buf b = ALM_BUF_INIT(0);
    (void)state;
    for (int i = 0; i < 1000; i++)
        alm_buf_putf(&b, "%d,", i);
    alm_buf_put(&b, "end", 3);
    assert_true(strncmp(b.data, "0,1,2,", 6) == 0);
    assert_int_equal(b.len, strlen(b.data));
    assert_string_equal(b.data + b.len - 7, "999,end");
    alm_buf_release(&b);
}

static void strerror_is_the_errno_text(void **state)
{
    (void)state;
    assert_string_equal(alm_strerror(ENOENT), "No such file or directory");
    assert_non_null(strstr(alm_strerror(99999), "99999")); /* unknown: "Unknown error 99999" */
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
        cmocka_unit_test(put_grows_an_uncapped_buffer),
        cmocka_unit_test(strerror_is_the_errno_text),
        cmocka_unit_test(error_mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
