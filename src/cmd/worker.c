/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "cmd.h"
#include "sandbox.h"
#include "heartbeat.h"
#include "log.h"
#include "service.h"
#include "worker.h"

#include <stdio.h>
#include <unistd.h>

static const char usage[] =
    "usage: almanac worker\n"
    "\n"
    "Runs ingestion and maintenance jobs from the Redis queues with\n"
    "ALMANAC_WORKER_CONCURRENCY threads; delivery is at least once and jobs are\n"
    "idempotent. Serves /health (fails when a job thread stops making progress), /ready\n"
    "and /metrics on ALMANAC_PROBE_LISTEN and heartbeats into Redis. SIGTERM stops taking\n"
    "jobs; running ones get ALMANAC_SHUTDOWN_TIMEOUT_MS to finish, else they stay\n"
    "unacknowledged for another worker to reclaim; exit 0 either way.\n";

int alm_cmd_worker(int argc, char **argv)
{
    struct alm_service svc;
    struct alm_worker *w;
    struct alm_heartbeat *hb;
    int rc, threads;

    if (!alm_service_begin(&svc, "worker", usage, argc, argv, &rc))
        return rc;
    threads = (int)svc.cfg.worker_concurrency;
    w = alm_worker_start(&svc.cfg, svc.id);
    hb = alm_heartbeat_start(
        &svc.cfg, svc.id,
        &(struct alm_heartbeat_role){"worker", threads, alm_worker_snapshot, alm_worker_renew, w});
    alm_service_run(&svc, alm_worker_alive, alm_worker_metrics, w);
    alm_info("worker.started", "worker running", "{s:s, s:i, s:s}", "id", svc.id, "threads",
             threads, "extractor_network", alm_sandbox_network());
    alm_service_wait(&svc);
    if (!alm_worker_stop(w, svc.cfg.shutdown_timeout_ms)) {
        /* Their jobs stay pending; another worker reclaims them after the idle time. */
        alm_warn("shutdown.timeout", "jobs still running at the deadline are left for others",
                 NULL);
        alm_heartbeat_stop(hb);
        _exit(ALM_EXIT_OK);
    }
    alm_heartbeat_stop(hb); /* before the worker it reads goes */
    alm_worker_free(w);
    return alm_service_end(&svc);
}
