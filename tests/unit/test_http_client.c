/* SPDX-License-Identifier: Apache-2.0 */
/* The outgoing HTTP clients' one mapping of a transfer's outcome to our error, the
 * Retry-After reader and the header builder. */
#include "unit.h"
#include "http_client.h"

#include <string.h>

static struct alm_http_client_result done(long status)
{
    return (struct alm_http_client_result){
        .fault = ALM_HTTP_CLIENT_DONE, .detail = "", .status = status, .retry_after_ms = -1};
}

static struct alm_http_client_result cut(enum alm_http_client_fault fault, const char *detail)
{
    return (struct alm_http_client_result){
        .fault = fault, .detail = detail, .retry_after_ms = -1, .timeout_ms = 250, .cap = 1024};
}

static void expect(const struct alm_http_client_result *r, enum alm_err err, bool transient,
                   const char *msg)
{
    struct alm_errbuf eb = {{0}};
    bool t = !transient;

    assert_int_equal(alm_http_client_error(r, &t, &eb), err);
    assert_int_equal(t, transient);
    if (msg)
        assert_string_equal(eb.msg, msg);
}

static void answers_map_by_status(void **state)
{
    struct alm_http_client_result r;
    (void)state;

    r = done(200);
    expect(&r, ALM_OK, true, NULL);
    r = done(204);
    expect(&r, ALM_OK, true, NULL);
    r = done(429);
    expect(&r, ALM_ERR_RATE_LIMITED, true, "rate limited (HTTP 429)");
    r = done(500);
    expect(&r, ALM_ERR_UNAVAILABLE, true, "HTTP 500");
    r = done(503);
    expect(&r, ALM_ERR_UNAVAILABLE, true, "HTTP 503");
    r = done(401);
    expect(&r, ALM_ERR_UPSTREAM, false, "the api key was refused (HTTP 401)");
    r = done(403);
    expect(&r, ALM_ERR_UPSTREAM, false, "the api key was refused (HTTP 403)");
    r = done(400);
    expect(&r, ALM_ERR_UPSTREAM, false, "the request was refused (HTTP 400)");
    r = done(404);
    expect(&r, ALM_ERR_UPSTREAM, false, "the request was refused (HTTP 404)");
    r = done(302); /* redirects are not followed */
    expect(&r, ALM_ERR_UPSTREAM, false, "the request was refused (HTTP 302)");
}

static void transport_faults_map_by_kind(void **state)
{
    struct alm_http_client_result r;
    (void)state;

    r = cut(ALM_HTTP_CLIENT_TIMEOUT, "Timeout was reached");
    expect(&r, ALM_ERR_TIMEOUT, true, "timeout after 250 ms");
    r = cut(ALM_HTTP_CLIENT_REFUSED, "Couldn't connect to server");
    expect(&r, ALM_ERR_UNAVAILABLE, true, "connection refused");
    r = cut(ALM_HTTP_CLIENT_NO_HOST, "Couldn't resolve host name");
    expect(&r, ALM_ERR_UNAVAILABLE, true, "cannot resolve host");
    r = cut(ALM_HTTP_CLIENT_BROKEN, "Server returned nothing (no headers, no data)");
    expect(&r, ALM_ERR_UNAVAILABLE, true, "Server returned nothing (no headers, no data)");
    r = cut(ALM_HTTP_CLIENT_TOO_LARGE, "Maximum file size exceeded");
    expect(&r, ALM_ERR_TOO_LARGE, false, "reply larger than 1024 bytes");
    r = cut(ALM_HTTP_CLIENT_STOPPED, "Callback aborted");
    expect(&r, ALM_ERR_UNAVAILABLE, false, "Callback aborted");
    r = cut(ALM_HTTP_CLIENT_FAILED, "SSL peer certificate or SSH remote key was not OK");
    expect(&r, ALM_ERR_UNAVAILABLE, false, "SSL peer certificate or SSH remote key was not OK");
    /* A long transfer is bounded by its connect and its stalls, not by a total. */
    r = cut(ALM_HTTP_CLIENT_TIMEOUT, "Operation too slow");
    r.stall_ms = 60000;
    expect(&r, ALM_ERR_TIMEOUT, true,
           "timeout: no connection within 250 ms or 60000 ms without a byte");
    /* A fault wins over whatever status came before it. */
    r = cut(ALM_HTTP_CLIENT_BROKEN, "Transferred a partial file");
    r.status = 200;
    expect(&r, ALM_ERR_UNAVAILABLE, true, "Transferred a partial file");
}

/* What the worker treats as an outage: whatever says the endpoint is down or shedding
 * load, never its refusal of this request. */
static void outages_are_outages(void **state)
{
    struct alm_errbuf eb = {{0}};
    struct alm_http_client_result r;
    (void)state;

    r = cut(ALM_HTTP_CLIENT_REFUSED, "");
    assert_true(alm_err_outage(alm_http_client_error(&r, NULL, &eb)));
    r = cut(ALM_HTTP_CLIENT_NO_HOST, "");
    assert_true(alm_err_outage(alm_http_client_error(&r, NULL, &eb)));
    r = done(503);
    assert_true(alm_err_outage(alm_http_client_error(&r, NULL, &eb)));
    r = done(429);
    assert_true(alm_err_outage(alm_http_client_error(&r, NULL, &eb)));
    r = done(400);
    assert_false(alm_err_outage(alm_http_client_error(&r, NULL, &eb)));
    r = done(401);
    assert_false(alm_err_outage(alm_http_client_error(&r, NULL, &eb)));
}

static void retry_after_reads_seconds(void **state)
{
    (void)state;
    assert_int_equal(alm_http_client_retry_after_ms("0"), 0);
    assert_int_equal(alm_http_client_retry_after_ms("2"), 2000);
    assert_int_equal(alm_http_client_retry_after_ms("120"), 120000);
    assert_int_equal(alm_http_client_retry_after_ms("86400"), 86400000);
    assert_int_equal(alm_http_client_retry_after_ms("99999999999999999999999999"), 86400000);
    assert_int_equal(alm_http_client_retry_after_ms(NULL), -1);
    assert_int_equal(alm_http_client_retry_after_ms(""), -1);
    assert_int_equal(alm_http_client_retry_after_ms("-5"), -1);
    assert_int_equal(alm_http_client_retry_after_ms("1.5"), -1);
    assert_int_equal(alm_http_client_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT"), -1);
}

static void headers_carry_the_secret_line(void **state)
{
    (void)state;
    struct curl_slist *h = alm_http_client_headers("application/json", "text/event-stream",
                                                   "Authorization: Bearer ", "k1");
    const char *want[] = {"Content-Type: application/json", "Accept: text/event-stream",
                          "Expect:", "Authorization: Bearer k1"};
    size_t i = 0;

    for (struct curl_slist *l = h; l; l = l->next, i++) {
        assert_true(i < 4);
        assert_string_equal(l->data, want[i]);
    }
    assert_int_equal(i, 4);
    alm_http_client_headers_free(h);

    /* No key, or an empty one: no secret line at all. */
    h = alm_http_client_headers(NULL, NULL, "api-key: ", "");
    assert_string_equal(h->data, "Expect:");
    assert_null(h->next);
    alm_http_client_headers_free(h);
    h = alm_http_client_headers("application/json", NULL, "api-key: ", NULL);
    assert_string_equal(h->data, "Content-Type: application/json");
    assert_string_equal(h->next->data, "Expect:");
    assert_null(h->next->next);
    alm_http_client_headers_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(answers_map_by_status),
        cmocka_unit_test(transport_faults_map_by_kind),
        cmocka_unit_test(outages_are_outages),
        cmocka_unit_test(retry_after_reads_seconds),
        cmocka_unit_test(headers_carry_the_secret_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
