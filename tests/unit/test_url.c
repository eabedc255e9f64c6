/* SPDX-License-Identifier: Apache-2.0 */
/* URL parsing and redaction. */
#include "unit.h"
#include "url.h"

#include <stdlib.h>
#include <string.h>

static void parses_full_url(void **state)
{
    struct alm_url u;
    (void)state;
    assert_true(alm_url_parse("REDIS://user:p@ss:w0rd@cache.local:6380/2", &u));
    assert_string_equal(u.scheme, "redis");
    assert_string_equal(u.user, "user");
    assert_string_equal(u.password, "p@ss:w0rd");
    assert_string_equal(u.host, "cache.local");
    assert_int_equal(u.port, 6380);
    assert_string_equal(u.path, "/2");
    alm_url_release(&u);
}

static void parses_ipv6_and_minimal(void **state)
{
    struct alm_url u;
    (void)state;
    assert_true(alm_url_parse("http://[::1]:6333", &u));
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6333);
    assert_string_equal(u.path, "");
    assert_null(u.user);
    assert_null(u.password);
    assert_true(alm_url_host_is_loopback(u.host));
    alm_url_release(&u);
    assert_true(alm_url_parse("https://qdrant", &u));
    assert_int_equal(u.port, 0);
    assert_false(alm_url_host_is_loopback(u.host));
    alm_url_release(&u);
}

static void rejects_malformed(void **state)
{
    struct alm_url u;
    const char *bad[] = {"",
                         "qdrant:6333",
                         "://host",
                         "http://",
                         "http://host:0",
                         "http://host:70000",
                         "http://host:12ab",
                         "http://[::1",
                         "http://a b",
                         "http://[]:80",
                         "ht tp://host"};
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(alm_url_parse(bad[i], &u));
}

static void redacts_passwords(void **state)
{
    char *r;
    (void)state;
    r = alm_url_redact("postgresql://almanac:s3cr3t-pw@db:5432/almanac?sslmode=require");
    assert_string_equal(r, "postgresql://almanac:***@db:5432/almanac?***");
    free(r);
    r = alm_url_redact("redis://:hunter2@[::1]:6379/0");
    assert_string_equal(r, "redis://:***@[::1]:6379/0");
    free(r);
    r = alm_url_redact("http://qdrant:6333");
    assert_string_equal(r, "http://qdrant:6333");
    free(r);
    /* not a URL: it might be a secret, so nothing of it is shown */
    r = alm_url_redact("host=db password=hunter2");
    assert_string_equal(r, "***");
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_full_url),
        cmocka_unit_test(parses_ipv6_and_minimal),
        cmocka_unit_test(rejects_malformed),
        cmocka_unit_test(redacts_passwords),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
