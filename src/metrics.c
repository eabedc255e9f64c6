/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "metrics.h"
#include "http_server.h"
#include "version.h"

#include <stdatomic.h>
#include <string.h>

#define MAX_ROUTES 64 /* plus one row for requests that matched no route */

static const int statuses[] = {200, 201, 202, 204, 301, 304, 400, 401, 403, 404, 405, 409,
                               413, 415, 422, 429, 431, 499, 500, 501, 502, 503, 504};
#define NSTATUS (ALM_ARRAY_SIZE(statuses) + 1) /* last: any other */

static const double buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                 0.25,  0.5,    1,     2.5,  5,     10};
#define NBUCKET ALM_ARRAY_SIZE(buckets)

struct route_stats {
    atomic_ullong by_status[NSTATUS];
    atomic_ullong le[NBUCKET]; /* cumulative at render time, not here */
    atomic_ullong count;
    atomic_ullong sum_us;
};

static const char *const refusal_reasons[] = ALM_HTTP_REFUSAL_REASONS;
static atomic_ullong refusals[ALM_ARRAY_SIZE(refusal_reasons)];

static const struct alm_route *route_table;
static size_t route_count;
static struct route_stats stats[MAX_ROUTES + 1];

void alm_metrics_init(const struct alm_route *routes, size_t n)
{
    route_table = routes;
    route_count = n < MAX_ROUTES ? n : MAX_ROUTES;
}

static size_t route_index(const struct alm_route *route)
{
    if (!route || route < route_table || route >= route_table + route_count)
        return route_count; /* the "unmatched" row */
    return (size_t)(route - route_table);
}

void alm_metrics_observe_http(const struct alm_route *route, int status, double seconds)
{
    struct route_stats *s = &stats[route_index(route)];
    size_t si = NSTATUS - 1, bi = NBUCKET;

    for (size_t i = 0; i < ALM_ARRAY_SIZE(statuses); i++) {
        if (statuses[i] == status)
            si = i;
    }
    for (size_t i = 0; i < NBUCKET && bi == NBUCKET; i++) {
        if (seconds <= buckets[i])
            bi = i;
    }
    atomic_fetch_add_explicit(&s->by_status[si], 1, memory_order_relaxed);
    if (bi < NBUCKET)
        atomic_fetch_add_explicit(&s->le[bi], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum_us, (unsigned long long)(seconds * 1e6),
                              memory_order_relaxed);
}

void alm_metrics_observe_refusal(const char *reason)
{
    for (size_t i = 0; i < ALM_ARRAY_SIZE(refusal_reasons); i++) {
        if (strcmp(refusal_reasons[i], reason) == 0)
            atomic_fetch_add_explicit(&refusals[i], 1, memory_order_relaxed);
    }
}

static unsigned long long load(atomic_ullong *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

static void render_counts(struct alm_buf *out, size_t r, const char *method, const char *pattern)
{
    struct route_stats *s = &stats[r];

    for (size_t i = 0; i < NSTATUS; i++) {
        unsigned long long v = load(&s->by_status[i]);
        if (!v)
            continue;
        if (i < ALM_ARRAY_SIZE(statuses))
            alm_buf_putf(out,
                         "almanac_http_requests_total{method=\"%s\",route=\"%s\","
                         "status=\"%d\"} %llu\n",
                         method, pattern, statuses[i], v);
        else
            alm_buf_putf(out,
                         "almanac_http_requests_total{method=\"%s\",route=\"%s\","
                         "status=\"other\"} %llu\n",
                         method, pattern, v);
    }
}

static void render_histogram(struct alm_buf *out, size_t r, const char *method, const char *pattern)
{
    struct route_stats *s = &stats[r];
    unsigned long long cum = 0;

    if (!load(&s->count))
        return;
    for (size_t i = 0; i < NBUCKET; i++) {
        cum += load(&s->le[i]);
        alm_buf_putf(out,
                     "almanac_http_request_duration_seconds_bucket{method=\"%s\","
                     "route=\"%s\",le=\"%g\"} %llu\n",
                     method, pattern, buckets[i], cum);
    }
    alm_buf_putf(out,
                 "almanac_http_request_duration_seconds_bucket{method=\"%s\","
                 "route=\"%s\",le=\"+Inf\"} %llu\n"
                 "almanac_http_request_duration_seconds_sum{method=\"%s\","
                 "route=\"%s\"} %.6f\n"
                 "almanac_http_request_duration_seconds_count{method=\"%s\","
                 "route=\"%s\"} %llu\n",
                 method, pattern, load(&s->count), method, pattern, (double)load(&s->sum_us) / 1e6,
                 method, pattern, load(&s->count));
}

void alm_metrics_render(struct alm_buf *out, const char *svc)
{

    alm_buf_putf(out,
                 "# HELP almanac_build_info Build of the running binary.\n"
                 "# TYPE almanac_build_info gauge\n"
                 "almanac_build_info{version=\"%s\",commit=\"%s\",service=\"%s\"} 1\n"
                 "# HELP almanac_http_requests_total HTTP requests answered.\n"
                 "# TYPE almanac_http_requests_total counter\n",
                 ALM_VERSION, ALM_GIT_COMMIT, svc);
    for (size_t r = 0; r < route_count; r++)
        render_counts(out, r, route_table[r].method, route_table[r].pattern);
    render_counts(out, route_count, "any", "unmatched");
    alm_buf_putf(out, "# HELP almanac_http_request_duration_seconds Time from request "
                      "to answer.\n# TYPE almanac_http_request_duration_seconds "
                      "histogram\n");
    for (size_t r = 0; r < route_count; r++)
        render_histogram(out, r, route_table[r].method, route_table[r].pattern);
    render_histogram(out, route_count, "any", "unmatched");
    alm_buf_putf(out, "# HELP almanac_http_refused_total Connections the server "
                      "refused or cut off itself, by reason.\n# TYPE "
                      "almanac_http_refused_total counter\n");
    for (size_t i = 0; i < ALM_ARRAY_SIZE(refusal_reasons); i++)
        alm_buf_putf(out, "almanac_http_refused_total{reason=\"%s\"} %llu\n", refusal_reasons[i],
                     load(&refusals[i]));
}
