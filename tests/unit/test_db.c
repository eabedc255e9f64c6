/* SPDX-License-Identifier: Apache-2.0 */
/* db.c's pure parts: the array literals that parametrised queries take for
 * $n::bigint[], the SQLSTATE mapping, server-side deadlines, error texts, and what a
 * failed connection attempt leaves behind (on a socket path that cannot exist: no
 * server is involved). */
#include "unit.h"
#include "db.h"

#include <stdint.h>
#include <string.h>

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

/* Every SQLSTATE class maps to the error the project answers with. */
static void sqlstate_mapping(void **state)
{
    (void)state;
    assert_int_equal(alm_db_sqlstate_error(NULL), ALM_ERR_UNAVAILABLE);
    assert_int_equal(alm_db_sqlstate_error("23505"), ALM_ERR_CONFLICT); /* unique_violation */
    assert_int_equal(alm_db_sqlstate_error("23503"), ALM_ERR_INTERNAL); /* foreign key: a bug */
    assert_int_equal(alm_db_sqlstate_error("08006"), ALM_ERR_UNAVAILABLE);
    assert_int_equal(alm_db_sqlstate_error("08000"), ALM_ERR_UNAVAILABLE);
    assert_int_equal(alm_db_sqlstate_error("57P01"), ALM_ERR_UNAVAILABLE); /* admin shutdown */
    assert_int_equal(alm_db_sqlstate_error("57P03"), ALM_ERR_UNAVAILABLE); /* cannot connect now */
    assert_int_equal(alm_db_sqlstate_error("57P02"), ALM_ERR_INTERNAL);
    assert_int_equal(alm_db_sqlstate_error("57014"), ALM_ERR_TIMEOUT); /* query_canceled */
    assert_int_equal(alm_db_sqlstate_error("55P03"), ALM_ERR_TIMEOUT); /* lock_not_available */
    assert_int_equal(alm_db_sqlstate_error("22P02"), ALM_ERR_INVALID); /* bad text for a type */
    assert_int_equal(alm_db_sqlstate_error("22001"), ALM_ERR_INVALID);
    assert_int_equal(alm_db_sqlstate_error("42P01"), ALM_ERR_INTERNAL); /* undefined table */
    assert_int_equal(alm_db_sqlstate_error("40001"), ALM_ERR_INTERNAL);
    assert_int_equal(alm_db_sqlstate_error(""), ALM_ERR_INTERNAL);
}

/* The server gives up a margin after the client would have. */
static void server_deadline(void **state)
{
    (void)state;
    assert_int_equal(alm_db_server_timeout_ms(5000), 5000 + ALM_DB_SERVER_MARGIN_MS);
    assert_int_equal(alm_db_server_timeout_ms(0), ALM_DB_SERVER_MARGIN_MS);
}

/* Only certificate failures stop the patient connect early. */
static void final_errors(void **state)
{
    (void)state;
    assert_true(alm_db_error_is_final("SSL error: certificate verify failed"));
    assert_true(alm_db_error_is_final("server certificate for \"db\" does not match host name"));
    assert_false(alm_db_error_is_final("connection refused"));
    assert_false(alm_db_error_is_final("authentication failed"));
    assert_false(alm_db_error_is_final("the database system is starting up"));
    assert_false(alm_db_error_is_final(""));
}

/* The first line of libpq's message, after its "... failed: " preamble; NULL is what
 * libpq returns when it cannot allocate a connection. */
static void error_texts(void **state)
{
    char why[160];
    PGconn *c;
    (void)state;

    alm_db_error_text(NULL, why, sizeof(why));
    assert_string_equal(why, "out of memory");
    c = PQconnectdb("bogus=1");
    alm_db_error_text(c, why, sizeof(why));
    assert_string_equal(why, "invalid connection option \"bogus\"");
    assert_false(alm_db_reusable(c));
    PQfinish(c);
    c = PQconnectdb("host=/nonexistent-almanac-unit port=5 dbname=x");
    alm_db_error_text(c, why, sizeof(why));
    assert_string_equal(why, "No such file or directory");
    PQfinish(c);
    alm_db_error_text(NULL, why, 8); /* cut to the room there is */
    assert_string_equal(why, "out of ");
    assert_false(alm_db_reusable(NULL));
}

/* A failed attempt is reported without the password and makes the process's new
 * connections count as failing, for readiness, until one succeeds. */
static void failed_connect(void **state)
{
    char url[] = "postgresql://almanac@/almanac?host=/nonexistent-almanac-unit&port=5";
    char password[] = "Xq9-unit-db-password";
    struct alm_config cfg = {
        .database_url = url, .database_password = password, .db_timeout_ms = 2000};
    struct alm_errbuf eb = {{0}};
    char why[160] = "";
    (void)state;

    assert_false(alm_db_connect_failing(60000, why, sizeof(why)));
    assert_null(alm_db_connect(&cfg, "almanac-unit", 2000, &eb));
    assert_string_equal(eb.msg, "No such file or directory");
    assert_null(strstr(eb.msg, password));
    assert_true(alm_db_connect_failing(60000, why, sizeof(why)));
    assert_non_null(strstr(why, "new database connections fail"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(array_literals),   cmocka_unit_test(capped_literal),
        cmocka_unit_test(sqlstate_mapping), cmocka_unit_test(server_deadline),
        cmocka_unit_test(final_errors),     cmocka_unit_test(error_texts),
        cmocka_unit_test(failed_connect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
