/* SPDX-License-Identifier: Apache-2.0 */
/* Route matching. */
#include "unit.h"
#include "router.h"

#include <string.h>

static void h(struct alm_req *req)
{
    (void)req;
}

static const struct alm_route routes[] = {
    {"GET", "/health", h, 0},
    {"GET", "/api/v1/documents/{id}", h, 0},
    {"DELETE", "/api/v1/documents/{id}", h, 0},
    {"POST", "/api/v1/knowledge-bases/{id}/documents", h, ALM_ROUTE_BODY},
};

static void matches_literal_and_params(void **state)
{
    struct alm_route_match m;
    (void)state;
    alm_route_find(routes, 4, "GET", "/health", &m);
    assert_ptr_equal(m.route, &routes[0]);
    alm_route_find(routes, 4, "DELETE", "/api/v1/documents/42", &m);
    assert_ptr_equal(m.route, &routes[2]);
    assert_int_equal(m.nparams, 1);
    assert_string_equal(m.params[0], "42");
    alm_route_find(routes, 4, "POST", "/api/v1/knowledge-bases/7/documents", &m);
    assert_ptr_equal(m.route, &routes[3]);
    assert_string_equal(m.params[0], "7");
}

static void misses(void **state)
{
    struct alm_route_match m;
    (void)state;
    alm_route_find(routes, 4, "GET", "/health/", &m);
    assert_null(m.route);
    assert_false(m.method_mismatch);
    alm_route_find(routes, 4, "GET", "/api/v1/documents/", &m);
    assert_null(m.route);
    alm_route_find(routes, 4, "GET", "/api/v1/documents/1/2", &m);
    assert_null(m.route);
    alm_route_find(routes, 4, "PUT", "/api/v1/documents/1", &m);
    assert_null(m.route);
    assert_true(m.method_mismatch);
}

static void head_matches_get_routes_only(void **state)
{
    struct alm_route_match m;
    (void)state;
    alm_route_find(routes, 4, "HEAD", "/api/v1/documents/9", &m);
    assert_ptr_equal(m.route, &routes[1]);
    assert_string_equal(m.params[0], "9");
    alm_route_find(routes, 4, "HEAD", "/api/v1/knowledge-bases/7/documents", &m);
    assert_null(m.route);
    assert_true(m.method_mismatch);
}

static void long_segment_rejected(void **state)
{
    struct alm_route_match m;
    char path[400] = "/api/v1/documents/";
    (void)state;
    for (size_t i = strlen(path); i < sizeof(path) - 1; i++)
        path[i] = 'x';
    path[sizeof(path) - 1] = '\0';
    alm_route_find(routes, 4, "GET", path, &m);
    assert_null(m.route);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches_literal_and_params),
        cmocka_unit_test(misses),
        cmocka_unit_test(head_matches_get_routes_only),
        cmocka_unit_test(long_segment_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
