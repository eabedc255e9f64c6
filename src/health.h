/* SPDX-License-Identifier: Apache-2.0 */
/* health.h: readiness checks with deadlines, a short cache and single-flight.
 *
 * Each check (PostgreSQL, Redis, Qdrant, ...) runs on its own thread with its own
 * long-lived connection, never one borrowed from the request pools. A refresh runs all
 * checks in parallel; a coordinator thread closes it at the deadline (timeout plus a
 * small slack) whatever the checks do, so an answer never waits longer. Results are
 * reused for the cache TTL, and concurrent callers during a refresh wait for that same
 * refresh: any number of probes cost at most one round-trip per dependency per TTL. */
#pragma once
#include "compat.h"
#include "mem.h"

#include <jansson.h>

struct alm_health;

struct alm_check {
    const char *name;           /* "postgres": the key in the report and metrics */
    const char *component_type; /* "datastore", "component" */
    bool required;              /* a failure makes /ready fail rather than warn */
    /* Not configured: reported as "warn" with this note and never run. */
    const char *disabled_note;
    /* Runs the check within timeout_ms; on failure writes a short, secret-free reason.
     * Called from the check's own thread only, so state needs no lock. */
    bool (*run)(void *state, int timeout_ms, char *why, size_t n);
    void *state;
    void (*free_state)(void *state);
    /* Optional: asked after a failed run (same thread); true when that failure is only a
     * warning even though the check is required (e.g. a collection the worker creates). */
    bool (*soft)(void *state);
};

/* Snapshot of one check, for reports and unit tests. */
struct alm_check_result {
    bool ran;
    bool pass;
    bool soft; /* failed, but only warns (alm_check.soft) */
    double latency_ms;
    int64_t observed_wall_ms; /* when it finished (Unix ms) */
    int64_t observed_mono_ms;
    char output[160];
};

struct alm_health *alm_health_new(int timeout_ms, int cache_ms, const char *version);
/* Adds a check (copied) before alm_health_start(); the health object owns its state. */
void alm_health_add(struct alm_health *h, const struct alm_check *check);
void alm_health_start(struct alm_health *h);
/* Adds a line to the report's "notes" (copied), e.g. which embedder is active. */
void alm_health_add_note(struct alm_health *h, const char *note);
/* Stops the threads (waiting for running checks) and frees everything. */
void alm_health_free(struct alm_health *h);

/* True when alm_health_report() may answer now: fresh results, or draining. */
bool alm_health_fresh(struct alm_health *h);
/* True when a result no older than the TTL is there to report now. Otherwise a refresh
 * is (or already was) started and done(arg) will be called from another thread once it
 * ends; the caller then reports without waiting again. */
bool alm_health_wait(struct alm_health *h, void (*done)(void *), void *arg);
/* From now on readiness fails with "shutting down". */
void alm_health_set_draining(struct alm_health *h);
/* Builds the application/health+json report of the latest results; returns the HTTP
 * status (200 pass or warn, 503 fail). *body is new, owned by the caller. */
int alm_health_report(struct alm_health *h, json_t **body);
/* Appends the checks' Prometheus metrics. */
void alm_health_metrics(struct alm_health *h, struct alm_buf *out);

/* The aggregation rule, exposed for unit tests: the overall status word of a set of
 * results ("pass", "warn", "fail"). stale_ms: results older than this count as failed. */
const char *alm_health_aggregate(const struct alm_check *checks,
                                 const struct alm_check_result *results, size_t n, bool draining,
                                 int64_t now_mono_ms, int64_t stale_ms);
