/* SPDX-License-Identifier: Apache-2.0 */
/* Worker and queue introspection: GET /health/workers and /health/queues (internal: the
 * frontend does not proxy /health), and the same for administrators under
 * /api/v1/admin/, with the replay of dead letters and the progress of re-indexing. */
#include "compat.h"
#include "handlers.h"
#include "heartbeat.h"
#include "log.h"
#include "queue.h"
#include "reindex.h"

#include <string.h>

/* The body of /health/workers, or NULL after replying with the error. */
static json_t *workers_or_reply(struct alm_req *req)
{
    const struct alm_app *app = alm_req_app(req);
    struct alm_errbuf eb = {{0}};
    redisContext *c = alm_pool_get(app->redis, &eb);
    json_t *list = NULL;

    if (!c || alm_heartbeat_list(c, app->cfg->heartbeat_ms, &list, &eb)) {
        alm_reply_error(req, ALM_ERR_UNAVAILABLE, "redis unavailable: %s", eb.msg);
        alm_pool_put(app->redis, c);
        return NULL;
    }
    alm_pool_put(app->redis, c);
    /* Beats always say whether they lead; workers never do. */
    size_t i;
    json_t *w;
    json_array_foreach(list, i, w)
    {
        if (!json_object_get(w, "leader"))
            json_object_set_new(w, "leader", json_false());
    }
    return json_pack("{s:o}", "workers", list);
}

static json_t *queues_or_reply(struct alm_req *req)
{
    const struct alm_app *app = alm_req_app(req);
    struct alm_errbuf eb = {{0}};
    redisContext *c = alm_pool_get(app->redis, &eb);
    struct alm_queue_stats s;
    json_t *list = json_array();

    for (size_t i = 0; c && i < alm_queue_count; i++) {
        if (alm_queue_stats(c, alm_queue_names[i], &s, &eb))
            break;
        json_array_append_new(
            list, json_pack("{s:s, s:I, s:I, s:f, s:I, s:I, s:I, s:I}", "name", alm_queue_names[i],
                            "length", (json_int_t)s.length, "pending", (json_int_t)s.pending,
                            "oldest_pending_age_s", s.oldest_pending_age_s, "delayed",
                            (json_int_t)s.delayed, "dead", (json_int_t)s.dead, "consumers",
                            (json_int_t)s.consumers, "lag", (json_int_t)s.lag));
    }
    alm_pool_put(app->redis, c);
    if (!c || json_array_size(list) != alm_queue_count) {
        json_decref(list);
        alm_reply_error(req, ALM_ERR_UNAVAILABLE, "redis unavailable: %s", eb.msg);
        return NULL;
    }
    return json_pack("{s:o}", "queues", list);
}

void alm_api_health_workers(struct alm_req *req)
{
    json_t *body = workers_or_reply(req);
    if (body)
        alm_reply_json(req, 200, body);
}

void alm_api_health_queues(struct alm_req *req)
{
    json_t *body = queues_or_reply(req);
    if (body)
        alm_reply_json(req, 200, body);
}

/* Admin checks first, then the same answer as the internal route. */
static void as_admin(struct alm_req *req, json_t *(*build)(struct alm_req *))
{
    PGconn *conn = alm_api_db_or_reply(req);
    struct alm_user me;
    json_t *body;

    if (conn && alm_api_user_or_reply(req, conn, &me) && alm_api_admin_or_reply(req, &me)) {
        body = build(req);
        if (body)
            alm_reply_json(req, 200, body);
    }
    alm_api_db_put(req, conn);
}

void alm_api_admin_workers(struct alm_req *req)
{
    as_admin(req, workers_or_reply);
}

void alm_api_admin_queues(struct alm_req *req)
{
    as_admin(req, queues_or_reply);
}

void alm_api_admin_reindex(struct alm_req *req)
{
    PGconn *conn = alm_api_db_or_reply(req);
    struct alm_errbuf eb = {{0}};
    struct alm_user me;
    json_t *runs = NULL;

    if (conn && alm_api_user_or_reply(req, conn, &me) && alm_api_admin_or_reply(req, &me)) {
        const struct alm_app *app = alm_req_app(req);
        enum alm_err err = alm_reindex_list(conn, (int)app->cfg->db_timeout_ms, 10, &runs, &eb);
        if (err)
            alm_api_reply_err(req, err, &eb);
        else
            alm_reply_json(req, 200, json_pack("{s:o}", "runs", runs));
    }
    alm_api_db_put(req, conn);
}

static json_t *retry_dead_or_reply(struct alm_req *req)
{
    const struct alm_app *app = alm_req_app(req);
    struct alm_errbuf eb = {{0}};
    redisContext *c = alm_pool_get(app->redis, &eb);
    long n = 0;

    if (!c || alm_queue_replay_dead(c, &n, &eb)) {
        alm_pool_put(app->redis, c);
        alm_reply_error(req, ALM_ERR_UNAVAILABLE, "redis unavailable: %s", eb.msg);
        return NULL;
    }
    alm_pool_put(app->redis, c);
    alm_info("jobs.retry_dead", "dead letters queued again", "{s:i}", "count", (int)n);
    return json_pack("{s:I}", "requeued", (json_int_t)n);
}

void alm_api_admin_retry_dead(struct alm_req *req)
{
    as_admin(req, retry_dead_or_reply);
}

void alm_api_queue_metrics(void *arg, struct alm_buf *out)
{
    alm_api_answers_metrics(out);
    const struct alm_app *app = arg;
    struct alm_errbuf eb = {{0}};
    redisContext *c = alm_pool_get(app->redis, &eb);
    struct alm_queue_stats s[8];
    size_t n = 0;

    for (; c && n < alm_queue_count && n < ALM_ARRAY_SIZE(s); n++) {
        if (alm_queue_stats(c, alm_queue_names[n], &s[n], &eb))
            break;
    }
    alm_pool_put(app->redis, c);
    alm_buf_putf(out,
                 "# HELP almanac_queue_up Whether the queue figures below could "
                 "be read from Redis.\n# TYPE almanac_queue_up gauge\n"
                 "almanac_queue_up %d\n",
                 n == alm_queue_count);
    if (n != alm_queue_count)
        return;
    static const struct {
        const char *name, *help;
    } gauges[] = {
        {"almanac_queue_length", "Jobs in the stream, waiting or running."},
        {"almanac_queue_pending", "Jobs delivered and not yet acknowledged."},
        {"almanac_queue_oldest_pending_age_seconds", "Age of the oldest pending job."},
        {"almanac_queue_delayed", "Jobs waiting for a retry."},
        {"almanac_queue_dead", "Dead letters."},
    };
    for (size_t g = 0; g < ALM_ARRAY_SIZE(gauges); g++) {
        alm_buf_putf(out, "# HELP %s %s\n# TYPE %s gauge\n", gauges[g].name, gauges[g].help,
                     gauges[g].name);
        for (size_t i = 0; i < n; i++) {
            double v = g == 0   ? (double)s[i].length
                       : g == 1 ? (double)s[i].pending
                       : g == 2 ? s[i].oldest_pending_age_s
                       : g == 3 ? (double)s[i].delayed
                                : (double)s[i].dead;
            alm_buf_putf(out, "%s{queue=\"%s\"} %g\n", gauges[g].name, alm_queue_names[i], v);
        }
    }
}
