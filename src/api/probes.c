/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "probes.h"
#include "app.h"
#include "clock.h"
#include "metrics.h"
#include "version.h"

#define HEALTH_JSON "application/health+json"

void alm_api_health(struct alm_req *req)
{
    const struct alm_app *app = alm_req_app(req);
    double uptime = (double)(alm_clock_ms() - app->start_ms) / 1000.0;
    char why[160];

    if (app->alive && !app->alive(app->alive_arg, why, sizeof(why))) {
        alm_reply_json_as(req, 503, HEALTH_JSON,
                          json_pack("{s:s, s:s, s:s, s:s, s:f}", "status", "fail", "output", why,
                                    "version", ALM_VERSION, "service", app->svc, "uptime_s",
                                    uptime));
        return;
    }
    alm_reply_json_as(req, 200, HEALTH_JSON,
                      json_pack("{s:s, s:s, s:s, s:f}", "status", "pass", "version", ALM_VERSION,
                                "service", app->svc, "uptime_s", uptime));
}

static void resume(void *arg)
{
    alm_req_resume(arg);
}

void alm_api_ready(struct alm_req *req)
{
    const struct alm_app *app = alm_req_app(req);
    json_t *body;
    int status;

    /* Suspend before registering: the refresh may end, and resume, at once. */
    if (!alm_req_resumed(req) && !alm_health_fresh(app->health)) {
        alm_req_suspend(req);
        if (!alm_health_wait(app->health, resume, req))
            return;
        alm_req_resume(req);
        return;
    }
    status = alm_health_report(app->health, &body);
    alm_reply_json_as(req, status, HEALTH_JSON, body);
}

void alm_api_metrics(struct alm_req *req)
{
    const struct alm_app *app = alm_req_app(req);
    struct alm_buf out = ALM_BUF_INIT(0);
    size_t len;
    char *text;

    alm_metrics_render(&out, app->svc);
    alm_health_metrics(app->health, &out);
    if (app->metrics)
        app->metrics(app->metrics_arg, &out);
    text = alm_buf_detach(&out, &len);
    alm_reply_raw(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}
