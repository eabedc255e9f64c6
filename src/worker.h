/* SPDX-License-Identifier: Apache-2.0 */
/* worker.h: the job consumers of `almanac worker`.
 *
 * Each of ALMANAC_WORKER_CONCURRENCY threads owns its Redis and PostgreSQL connections,
 * embedder and Qdrant client, and loops: move due retries back (one thread), reclaim a
 * job abandoned by a dead worker, else read a new one, run it under its deadline, then
 * acknowledge it, schedule its retry with backoff, or bury it after the last attempt.
 * Jobs in flight are renewed every heartbeat so that no live job is ever reclaimed.
 * Stopping lets running jobs finish; a job still running at the grace deadline stays
 * unacknowledged and another worker reclaims it. */
#pragma once
#include "compat.h"
#include "config.h"
#include "mem.h"

#include <hiredis/hiredis.h>
#include <jansson.h>

struct alm_worker;

/* Starts the threads; consumer is this process's consumer name (copied). */
struct alm_worker *alm_worker_start(const struct alm_config *cfg, const char *consumer);
/* Stops taking jobs and waits up to grace_ms for running ones; true when all finished,
 * false when some still run (then w must not be freed: exit instead). */
bool alm_worker_stop(struct alm_worker *w, int64_t grace_ms);
/* Frees a stopped worker (after its heartbeat stopped reading it). */
void alm_worker_free(struct alm_worker *w);
/* The heartbeat's fields: jobs in flight with their start times, processed, failed. */
json_t *alm_worker_snapshot(void *arg);
/* Renews the jobs in flight on c, resetting their idle time. */
void alm_worker_renew(void *arg, redisContext *c);
/* Appends the job counters in Prometheus text. */
void alm_worker_metrics(void *arg, struct alm_buf *out);
/* Whether every thread made progress recently (liveness). */
bool alm_worker_alive(void *w, char *why, size_t n);

/* The longest wait before retrying a job that failed attempt (1 for the first run):
 * base_ms (ALMANAC_JOB_RETRY_BASE_MS) doubled for each attempt before, at most an hour. */
#define ALM_WORKER_RETRY_MAX_MS 3600000L
long alm_worker_retry_ceiling(long base_ms, int attempt);
/* The wait before that retry: uniformly random between half the ceiling and the ceiling. */
long alm_worker_retry_delay(long base_ms, int attempt);
