/* SPDX-License-Identifier: Apache-2.0 */
/* scheduler.h: the beat: periodic tasks run by exactly one process at a time.
 *
 * Leadership is a Redis lease (SET NX PX) holding "<id>:<fencing token>", the token
 * from an INCR so that every term has a new one. The leader renews it every third of
 * the lease with a compare-and-expire script; a standby tries to take it at the same
 * pace, so it takes over at most one lease after a leader dies, and at once when a
 * leader releases it on shutdown. Jobs the beat enqueues go through a script that checks
 * the lease still holds the token: a leader that lost its lease enqueues nothing.
 * Each task's last run time lives in Redis, so a new leader continues the schedule. */
#pragma once
#include "compat.h"
#include "config.h"
#include "mem.h"

#include <hiredis/hiredis.h>
#include <jansson.h>

struct alm_scheduler;

/* Starts the tick thread for instance id (copied). */
struct alm_scheduler *alm_scheduler_start(const struct alm_config *cfg, const char *id);
/* Finishes the running task, releases the lease and frees s. */
void alm_scheduler_stop(struct alm_scheduler *s);
/* Heartbeat fields: leader, term, tasks with last run and counts. */
json_t *alm_scheduler_snapshot(void *arg);
/* Whether the tick loop made progress recently (liveness). */
bool alm_scheduler_alive(void *arg, char *why, size_t n);
void alm_scheduler_metrics(void *arg, struct alm_buf *out);

/* How long after now_ms a task of period_ms that last ran at last_run_ms is due (both ms
 * since the epoch, as recorded in Redis; last_run_ms 0 or less when it never ran): 0 when
 * due already or never run, at most one period, so a last run recorded in the future (a
 * beat whose clock ran ahead, a damaged record) never holds the task back longer. The
 * beat adds the task's jitter. */
int64_t alm_scheduler_due_in(int64_t last_run_ms, int64_t period_ms, int64_t now_ms);
