/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "cmd.h"
#include "heartbeat.h"
#include "log.h"
#include "scheduler.h"
#include "service.h"

#include <stdio.h>

static const char usage[] =
    "usage: almanac beat\n"
    "\n"
    "Runs the periodic tasks: relay the outbox to the queue, queue stuck documents again,\n"
    "reconcile PostgreSQL with Qdrant, purge vectors of deleted documents, trim old dead\n"
    "letters. Any number may run: one holds the Redis lease and works, the others stand\n"
    "by and take over within about 4/3 of ALMANAC_BEAT_LEASE_MS. Serves /health, /ready and "
    "/metrics on\n"
    "ALMANAC_PROBE_LISTEN and heartbeats into Redis. SIGTERM finishes the running task,\n"
    "releases the lease and exits 0.\n";

int alm_cmd_beat(int argc, char **argv)
{
    struct alm_service svc;
    struct alm_scheduler *s;
    struct alm_heartbeat *hb;
    int rc;

    if (!alm_service_begin(&svc, "beat", usage, argc, argv, &rc))
        return rc;
    s = alm_scheduler_start(&svc.cfg, svc.id);
    hb = alm_heartbeat_start(
        &svc.cfg, svc.id, &(struct alm_heartbeat_role){"beat", 1, alm_scheduler_snapshot, NULL, s});
    alm_service_run(&svc, alm_scheduler_alive, alm_scheduler_metrics, s);
    alm_info("beat.started", "beat running", "{s:s}", "id", svc.id);
    alm_service_wait(&svc);
    alm_heartbeat_stop(hb); /* before the scheduler it reads goes */
    alm_scheduler_stop(s);
    return alm_service_end(&svc);
}
