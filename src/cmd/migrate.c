/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "cmd.h"
#include "schema.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: almanac migrate [--status] [--target VERSION]\n"
    "\n"
    "Applies the pending database migrations compiled into this binary, each in its own\n"
    "transaction, under an advisory lock (a second migrator waits, then finds nothing to\n"
    "do). Waits up to 60 s for PostgreSQL to accept connections, then fails. --status\n"
    "prints the applied and the needed version and applies nothing; --target stops at\n"
    "VERSION. Exits 0 on success and 1 on any error; on SIGTERM or SIGINT at once (143,\n"
    "130), leaving the migration in progress rolled back.\n";

/* The cancel handle of the open connection, for the signal handler. */
static PGcancel *volatile stop_cancel;

/* As PID 1 (a Kubernetes Job, a container) a signal's default action is dropped, so
 * SIGTERM would be ignored until the kubelet's SIGKILL: exit on it explicitly. First
 * cancel the statement in progress (PQcancel is safe in a signal handler): a backend
 * blocked on the migration lock or in a long DDL statement does not notice a closed
 * socket, and would keep its place in the lock queue. The cancel rolls the migration's
 * transaction back; the closed connection then ends the session. Only async-signal-safe
 * calls here. */
static void on_stop_signal(int sig)
{
    static const char msg[] =
        "almanac: migrate: stopped by a signal; the migration in progress is rolled back\n";
    char errbuf[256];
    PGcancel *c = stop_cancel;
    ssize_t n;

    if (c)
        (void)PQcancel(c, errbuf, sizeof(errbuf));
    n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)n;
    _exit(sig == SIGINT ? 130 : 143);
}

static void exit_on_stop_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
}

struct args {
    bool status;
    int target; /* 0: the version this binary needs */
};

static int parse(int argc, char **argv, void *args)
{
    struct args *a = args;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--status") == 0) {
            a->status = true;
        } else if (strcmp(argv[i], "--target") == 0 && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > alm_schema_expected())
                return alm_cmd_usage_error("migrate", "--target must be 1..%d",
                                           alm_schema_expected());
            a->target = (int)v;
        } else {
            return alm_cmd_usage_error("migrate", "unknown argument '%s'", argv[i]);
        }
    }
    return ALM_EXIT_OK;
}

int alm_cmd_migrate(int argc, char **argv)
{
    struct alm_config cfg = {0};
    struct alm_errbuf eb = {{0}};
    struct args a = {0};
    struct alm_cmd_start start = {.name = "migrate",
                                  .usage = usage,
                                  .parse = parse,
                                  .args = &a,
                                  .cfg = &cfg,
                                  .log_level = ALM_LOG_INFO};
    int from = 0, to = 0, rc;
    PGconn *conn;

    /* Before alm_cmd_start() unblocks the signals, so that none finds its default action. */
    exit_on_stop_signals();
    if (!alm_cmd_start(&start, argc, argv, &rc))
        return rc;
    conn = alm_cmd_db_or_report(&cfg, "migrate", 60000, false);
    if (!conn) {
        rc = ALM_EXIT_FAILURE;
        goto out;
    }
    stop_cancel = PQgetCancel(conn);
    if (a.status) {
        if (alm_schema_version(conn, 10000, &from, &eb)) {
            fprintf(stderr, "almanac: migrate: %s\n", eb.msg);
            rc = ALM_EXIT_FAILURE;
            goto out;
        }
        int pending = 0;
        for (size_t i = 0; i < alm_migration_count; i++)
            pending += alm_migrations[i].version > from;
        printf("schema version %d; this binary needs %d; %d pending\n", from, alm_schema_expected(),
               pending);
        goto out;
    }
    if (alm_schema_migrate(conn, a.target, &from, &to, &eb)) {
        fprintf(stderr, "almanac: migrate: %s (schema left at version %d)\n", eb.msg, to);
        rc = ALM_EXIT_FAILURE;
        goto out;
    }
    alm_info("migrate.done", from == to ? "schema up to date" : "schema migrated", "{s:i, s:i}",
             "from", from, "to", to);
out:
    if (stop_cancel) {
        PGcancel *c = stop_cancel;
        stop_cancel = NULL;
        PQfreeCancel(c);
    }
    PQfinish(conn);
    alm_config_release(&cfg);
    return rc;
}
