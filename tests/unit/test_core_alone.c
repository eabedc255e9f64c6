/* SPDX-License-Identifier: Apache-2.0 */
/* The core library links by itself: this test links every object of almcore (whole
 * archive, see CMakeLists.txt) and no command wiring, so a call from the core into
 * src/cmd/ fails the build here. It checks the api's route table through the router. */
#include "unit.h"
#include "api/handlers.h"
#include "api/probes.h"

#include <string.h>

static const struct alm_route probe_routes[] = {ALM_HEALTH_ROUTES};

/* The probe listener serves the table's leading rows: they must be the probe routes. */
static void probe_routes_lead_the_table(void **state)
{
    size_t n;
    const struct alm_route *routes = alm_api_routes(&n);
    (void)state;
    assert_int_equal(ALM_ARRAY_SIZE(probe_routes), ALM_API_PROBE_ROUTES);
    assert_true(n > ALM_API_PROBE_ROUTES);
    for (size_t i = 0; i < ALM_API_PROBE_ROUTES; i++) {
        assert_string_equal(routes[i].method, probe_routes[i].method);
        assert_string_equal(routes[i].pattern, probe_routes[i].pattern);
        assert_ptr_equal(routes[i].fn, probe_routes[i].fn);
        assert_true(routes[i].flags & ALM_ROUTE_PROBE);
    }
}

/* Each row is reachable: the router finds it for its own method and pattern, so no
 * earlier row shadows it. */
static void every_route_is_reachable(void **state)
{
    size_t n;
    const struct alm_route *routes = alm_api_routes(&n);
    struct alm_route_match m;
    (void)state;
    for (size_t i = 0; i < n; i++) {
        char path[256];
        const char *p = routes[i].pattern;
        size_t o = 0;

        assert_non_null(routes[i].fn);
        /* A placeholder becomes an id. */
        while (*p && o + 2 < sizeof(path)) {
            if (*p == '{') {
                path[o++] = '7';
                p = strchr(p, '}') + 1;
            } else {
                path[o++] = *p++;
            }
        }
        path[o] = '\0';
        alm_route_find(routes, n, routes[i].method, path, &m);
        assert_ptr_equal(m.route, &routes[i]);
    }
}

static void finds_search_with_its_flags(void **state)
{
    size_t n;
    const struct alm_route *routes = alm_api_routes(&n);
    struct alm_route_match m;
    (void)state;
    alm_route_find(routes, n, "POST", "/api/v1/search", &m);
    assert_non_null(m.route);
    assert_ptr_equal(m.route->fn, alm_api_search);
    assert_true(m.route->flags & ALM_ROUTE_AUTH);
    alm_route_find(routes, n, "PUT", "/api/v1/search", &m);
    assert_null(m.route);
    assert_true(m.method_mismatch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(probe_routes_lead_the_table),
        cmocka_unit_test(every_route_is_reachable),
        cmocka_unit_test(finds_search_with_its_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
