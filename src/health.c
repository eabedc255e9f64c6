/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "health.h"
#include "clock.h"
#include "log.h"
#include "mem.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CHECKS 8
/* The coordinator closes a refresh this long after the checks' own deadline: checks
 * enforce the deadline on their sockets, so this is only a backstop. */
#define DEADLINE_SLACK_MS 200

struct waiter {
    void (*done)(void *);
    void *arg;
    struct waiter *next;
};

struct slot {
    struct alm_check def;
    struct alm_check_result result; /* latest finished */
    uint64_t done_gen;              /* refresh generation of result */
    uint64_t runs, failures;
    int64_t last_success_wall_ms;
    pthread_t thread;
    struct alm_health *h;
};

struct alm_health {
    pthread_mutex_t mu;
    pthread_cond_t cond; /* refresh started, check finished, stop */
    struct slot slots[MAX_CHECKS];
    size_t n;
    int timeout_ms, cache_ms;
    const char *version;
    uint64_t gen;       /* generation of the refresh started last */
    bool refreshing;    /* a refresh is running */
    bool want_refresh;  /* the coordinator should start one */
    bool have_snapshot; /* at least one refresh finished */
    int64_t snapshot_mono_ms;
    struct waiter *waiters;
    bool draining;
    bool stopping;
    bool started;
    pthread_t coordinator;
    char *notes[4];
    size_t nnotes;
};

struct alm_health *alm_health_new(int timeout_ms, int cache_ms, const char *version)
{
    struct alm_health *h = alm_xcalloc(1, sizeof(*h));

    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cond, NULL);
    h->timeout_ms = timeout_ms;
    h->cache_ms = cache_ms;
    h->version = version;
    return h;
}

void alm_health_add(struct alm_health *h, const struct alm_check *check)
{
    if (h->n >= MAX_CHECKS || h->started)
        abort(); /* a programming error, caught by any test */
    h->slots[h->n].def = *check;
    h->slots[h->n].h = h;
    h->n++;
}

/* Runs the check outside the lock and stores its result under it. */
static void run_one(struct slot *s, uint64_t gen)
{
    struct alm_check_result r = {.ran = true};
    double t0 = alm_clock_ms_f();

    r.pass = s->def.run(s->def.state, s->h->timeout_ms, r.output, sizeof(r.output));
    r.latency_ms = alm_clock_ms_f() - t0;
    r.observed_wall_ms = alm_clock_wall_ms();
    r.observed_mono_ms = alm_clock_ms();
    if (r.pass)
        r.output[0] = '\0';
    else if (s->def.soft)
        r.soft = s->def.soft(s->def.state);
    pthread_mutex_lock(&s->h->mu);
    if (s->result.ran && s->result.pass != r.pass)
        alm_log(r.pass ? ALM_LOG_INFO : ALM_LOG_WARN, "ready.check_changed",
                r.pass ? "dependency check passes again" : "dependency check fails",
                "{s:s, s:s, s:f}", "check", s->def.name, "output", r.output, "latency_ms",
                r.latency_ms);
    else if (!s->result.ran && !r.pass)
        alm_warn("ready.check_changed", "dependency check fails", "{s:s, s:s}", "check",
                 s->def.name, "output", r.output);
    s->result = r;
    s->done_gen = gen;
    s->runs++;
    if (r.pass)
        s->last_success_wall_ms = r.observed_wall_ms;
    else
        s->failures++;
    pthread_cond_broadcast(&s->h->cond);
    pthread_mutex_unlock(&s->h->mu);
}

static void *check_thread(void *arg)
{
    struct slot *s = arg;
    struct alm_health *h = s->h;
    uint64_t seen = 0;

    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (!h->stopping && h->gen == seen)
            pthread_cond_wait(&h->cond, &h->mu);
        if (h->stopping)
            break;
        seen = h->gen;
        pthread_mutex_unlock(&h->mu);
        run_one(s, seen);
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

static bool all_done(const struct alm_health *h, uint64_t gen)
{
    for (size_t i = 0; i < h->n; i++) {
        if (!h->slots[i].def.disabled_note && h->slots[i].done_gen != gen)
            return false;
    }
    return true;
}

/* Marks checks that missed the deadline; called with the lock held. */
static void close_refresh(struct alm_health *h, uint64_t gen)
{
    for (size_t i = 0; i < h->n; i++) {
        struct slot *s = &h->slots[i];
        if (s->def.disabled_note || s->done_gen == gen)
            continue;
        s->result.ran = true;
        s->result.pass = false;
        s->result.latency_ms = h->timeout_ms;
        s->result.observed_wall_ms = alm_clock_wall_ms();
        s->result.observed_mono_ms = alm_clock_ms();
        snprintf(s->result.output, sizeof(s->result.output), "timeout after %d ms (no answer)",
                 h->timeout_ms);
        s->failures++;
    }
    h->have_snapshot = true;
    h->snapshot_mono_ms = alm_clock_ms();
    h->refreshing = false;
}

static void *coordinator_thread(void *arg)
{
    struct alm_health *h = arg;

    pthread_mutex_lock(&h->mu);
    while (!h->stopping) {
        int64_t until;
        struct waiter *w;
        uint64_t gen;

        if (!h->want_refresh) {
            pthread_cond_wait(&h->cond, &h->mu);
            continue;
        }
        h->want_refresh = false;
        h->refreshing = true;
        gen = ++h->gen;
        pthread_cond_broadcast(&h->cond);
        until = alm_clock_ms() + h->timeout_ms + DEADLINE_SLACK_MS;
        while (!h->stopping && !all_done(h, gen)) {
            if (!alm_clock_wait_until(&h->cond, &h->mu, until))
                break;
        }
        close_refresh(h, gen);
        w = h->waiters;
        h->waiters = NULL;
        pthread_mutex_unlock(&h->mu);
        while (w) {
            struct waiter *next = w->next;
            w->done(w->arg);
            free(w);
            w = next;
        }
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

void alm_health_add_note(struct alm_health *h, const char *note)
{
    if (h->nnotes < ALM_ARRAY_SIZE(h->notes))
        h->notes[h->nnotes++] = alm_xstrdup(note);
}

void alm_health_start(struct alm_health *h)
{
    h->started = true;
    for (size_t i = 0; i < h->n; i++) {
        if (h->slots[i].def.disabled_note)
            continue;
        alm_xthread_create(&h->slots[i].thread, check_thread, &h->slots[i], "alm-check");
    }
    alm_xthread_create(&h->coordinator, coordinator_thread, h, "alm-health");
}

void alm_health_free(struct alm_health *h)
{
    struct waiter *w;

    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pthread_cond_broadcast(&h->cond);
    w = h->waiters;
    h->waiters = NULL;
    pthread_mutex_unlock(&h->mu);
    if (h->started) {
        pthread_join(h->coordinator, NULL);
        for (size_t i = 0; i < h->n; i++) {
            if (!h->slots[i].def.disabled_note)
                pthread_join(h->slots[i].thread, NULL);
        }
    }
    for (; w; w = h->waiters) {
        h->waiters = w->next;
        w->done(w->arg);
        free(w);
    }
    for (size_t i = 0; i < h->n; i++) {
        if (h->slots[i].def.free_state)
            h->slots[i].def.free_state(h->slots[i].def.state);
    }
    for (size_t i = 0; i < h->nnotes; i++)
        free(h->notes[i]);
    pthread_cond_destroy(&h->cond);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/* Called with the lock held. */
static bool fresh_locked(const struct alm_health *h)
{
    return h->draining || h->stopping ||
           (h->have_snapshot && !h->refreshing &&
            alm_clock_ms() - h->snapshot_mono_ms < h->cache_ms);
}

bool alm_health_fresh(struct alm_health *h)
{
    bool fresh;

    pthread_mutex_lock(&h->mu);
    fresh = fresh_locked(h);
    pthread_mutex_unlock(&h->mu);
    return fresh;
}

bool alm_health_wait(struct alm_health *h, void (*done)(void *), void *arg)
{
    struct waiter *w;

    pthread_mutex_lock(&h->mu);
    if (fresh_locked(h)) {
        pthread_mutex_unlock(&h->mu);
        return true;
    }
    w = alm_xmalloc(sizeof(*w));
    w->done = done;
    w->arg = arg;
    w->next = h->waiters;
    h->waiters = w;
    if (!h->refreshing) {
        h->want_refresh = true;
        pthread_cond_broadcast(&h->cond);
    }
    pthread_mutex_unlock(&h->mu);
    return false;
}

void alm_health_set_draining(struct alm_health *h)
{
    pthread_mutex_lock(&h->mu);
    h->draining = true;
    pthread_mutex_unlock(&h->mu);
}

/* The status word of one check. */
static const char *check_status(const struct alm_check *c, const struct alm_check_result *r,
                                int64_t now, int64_t stale_ms)
{
    if (c->disabled_note)
        return "warn";
    if (!r->ran || now - r->observed_mono_ms > stale_ms)
        return c->required ? "fail" : "warn";
    if (!r->pass)
        return c->required && !r->soft ? "fail" : "warn";
    return "pass";
}

const char *alm_health_aggregate(const struct alm_check *checks,
                                 const struct alm_check_result *results, size_t n, bool draining,
                                 int64_t now_mono_ms, int64_t stale_ms)
{
    const char *overall = "pass";

    if (draining)
        return "fail";
    for (size_t i = 0; i < n; i++) {
        const char *st = check_status(&checks[i], &results[i], now_mono_ms, stale_ms);
        if (strcmp(st, "fail") == 0)
            return "fail";
        if (strcmp(st, "warn") == 0)
            overall = "warn";
    }
    return overall;
}

static json_t *check_json(const struct alm_check *c, const struct alm_check_result *r, int64_t now,
                          int64_t stale_ms)
{
    json_t *o = json_pack("{s:s, s:s, s:b}", "componentType", c->component_type, "status",
                          check_status(c, r, now, stale_ms), "required", c->required);
    char when[32];

    if (c->disabled_note) {
        json_object_set_new(o, "output", json_string(c->disabled_note));
        return o;
    }
    if (!r->ran) {
        json_object_set_new(o, "output", json_string("not checked yet"));
        return o;
    }
    alm_clock_iso8601(when, sizeof(when), r->observed_wall_ms);
    json_object_set_new(o, "observedValue",
                        json_real((double)(int64_t)(r->latency_ms * 100) / 100));
    json_object_set_new(o, "observedUnit", json_string("ms"));
    json_object_set_new(o, "time", json_string(when));
    if (!r->pass)
        json_object_set_new(o, "output", json_string(r->output));
    else if (now - r->observed_mono_ms > stale_ms)
        json_object_set_new(o, "output", json_string("result too old"));
    return o;
}

/* A result older than this counts as failed: it can only happen when a check thread is
 * stuck, and then an old "pass" must not hide it. */
static int64_t stale_after(const struct alm_health *h)
{
    return 3 * (int64_t)(h->cache_ms > h->timeout_ms ? h->cache_ms : h->timeout_ms) +
           DEADLINE_SLACK_MS;
}

int alm_health_report(struct alm_health *h, json_t **body)
{
    struct alm_check defs[MAX_CHECKS] = {{0}};
    struct alm_check_result res[MAX_CHECKS] = {{0}};
    json_t *checks = json_object();
    bool draining;
    size_t n;
    int64_t now = alm_clock_ms(), stale;
    const char *status;

    pthread_mutex_lock(&h->mu);
    n = h->n;
    for (size_t i = 0; i < n; i++) {
        defs[i] = h->slots[i].def;
        res[i] = h->slots[i].result;
    }
    draining = h->draining;
    stale = stale_after(h);
    pthread_mutex_unlock(&h->mu);
    status = alm_health_aggregate(defs, res, n, draining, now, stale);
    for (size_t i = 0; i < n; i++) {
        char key[64];
        snprintf(key, sizeof(key), "%s:responseTime", defs[i].name);
        json_object_set_new(checks, key,
                            json_pack("[o]", check_json(&defs[i], &res[i], now, stale)));
    }
    *body = json_pack("{s:s, s:s, s:s, s:o}", "status", status, "version", h->version,
                      "description", "almanac readiness", "checks", checks);
    if (draining)
        json_object_set_new(*body, "output", json_string("shutting down"));
    if (h->nnotes) {
        json_t *notes = json_array();
        for (size_t i = 0; i < h->nnotes; i++)
            json_array_append_new(notes, json_string(h->notes[i]));
        json_object_set_new(*body, "notes", notes);
    }
    return strcmp(status, "fail") == 0 ? 503 : 200;
}

void alm_health_metrics(struct alm_health *h, struct alm_buf *out)
{
    int64_t now = alm_clock_ms();

    pthread_mutex_lock(&h->mu);
    alm_buf_putf(out, "# HELP almanac_ready_check_up Whether the dependency check "
                      "passed at its last run.\n# TYPE almanac_ready_check_up gauge\n");
    for (size_t i = 0; i < h->n; i++)
        alm_buf_putf(
            out, "almanac_ready_check_up{check=\"%s\"} %d\n", h->slots[i].def.name,
            strcmp(check_status(&h->slots[i].def, &h->slots[i].result, now, stale_after(h)),
                   "pass") == 0);
    alm_buf_putf(out, "# HELP almanac_ready_check_duration_seconds Duration of the "
                      "last run of the check.\n# TYPE "
                      "almanac_ready_check_duration_seconds gauge\n");
    for (size_t i = 0; i < h->n; i++)
        alm_buf_putf(out, "almanac_ready_check_duration_seconds{check=\"%s\"} %.6f\n",
                     h->slots[i].def.name, h->slots[i].result.latency_ms / 1000.0);
    alm_buf_putf(out, "# HELP almanac_ready_checks_total Dependency checks run.\n"
                      "# TYPE almanac_ready_checks_total counter\n");
    for (size_t i = 0; i < h->n; i++)
        alm_buf_putf(out, "almanac_ready_checks_total{check=\"%s\"} %llu\n", h->slots[i].def.name,
                     (unsigned long long)h->slots[i].runs);
    alm_buf_putf(out, "# HELP almanac_ready_check_failures_total Dependency checks "
                      "that failed.\n# TYPE almanac_ready_check_failures_total "
                      "counter\n");
    for (size_t i = 0; i < h->n; i++)
        alm_buf_putf(out, "almanac_ready_check_failures_total{check=\"%s\"} %llu\n",
                     h->slots[i].def.name, (unsigned long long)h->slots[i].failures);
    alm_buf_putf(out, "# HELP almanac_ready_check_last_success_timestamp_seconds "
                      "When the check last passed.\n# TYPE "
                      "almanac_ready_check_last_success_timestamp_seconds gauge\n");
    for (size_t i = 0; i < h->n; i++)
        alm_buf_putf(out,
                     "almanac_ready_check_last_success_timestamp_seconds{check=\"%s\"} "
                     "%.3f\n",
                     h->slots[i].def.name, h->slots[i].last_success_wall_ms / 1000.0);
    pthread_mutex_unlock(&h->mu);
}
