#include "compat.h"
#include "clock.h"
#include "cmd.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "schema.h"
#include "signals.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: almanac migrate [--status] [--target VERSION]\n"
    "\n"
    "Applies the pending database migrations compiled into this binary, each in its own\n"
    "transaction, under an advisory lock (a second migrator waits, then finds nothing to\n"
    "do). Waits up to 60 s for PostgreSQL to accept connections, then fails. --status\n"
    "prints the applied and the needed version and applies nothing; --target stops at\n"
    "VERSION. Exits 0 on success and 1 on any error.\n";

static int parse_args(int argc, char **argv, bool *status, int *target)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--status") == 0) {
            *status = true;
        } else if (strcmp(argv[i], "--target") == 0 && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > alm_schema_expected())
                return alm_cmd_usage_error("migrate", "--target must be 1..%d",
                                           alm_schema_expected());
            *target = (int)v;
        } else {
            return alm_cmd_usage_error("migrate", "unknown argument '%s'", argv[i]);
        }
    }
    return ALM_EXIT_OK;
}

int alm_cmd_migrate(int argc, char **argv)
{
    struct alm_config cfg;
    struct alm_errbuf eb = {{0}};
    bool status = false;
    int target = 0, from = 0, to = 0, rc;
    PGconn *conn;

    if (alm_cmd_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return ALM_EXIT_OK;
    }
    rc = parse_args(argc, argv, &status, &target);
    if (rc)
        return rc;
    /* One-shot: a signal ends the process and PostgreSQL rolls back the open
     * transaction of the migration in progress. */
    alm_signals_unblock();
    alm_log_init("migrate", ALM_LOG_INFO);
    rc = alm_config_load_or_report(&cfg, false);
    if (rc)
        return rc;
    conn = alm_db_connect_patiently(&cfg, "almanac-migrate", 60000, &eb);
    if (!conn) {
        fprintf(stderr, "almanac: migrate: cannot connect to the database: %s\n", eb.msg);
        rc = ALM_EXIT_FAILURE;
        goto out;
    }
    if (status) {
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
    if (alm_schema_migrate(conn, target, &from, &to, &eb)) {
        fprintf(stderr, "almanac: migrate: %s (schema left at version %d)\n", eb.msg, to);
        rc = ALM_EXIT_FAILURE;
        goto out;
    }
    alm_info("migrate.done", from == to ? "schema up to date" : "schema migrated", "{s:i, s:i}",
             "from", from, "to", to);
out:
    PQfinish(conn);
    alm_config_release(&cfg);
    return rc;
}
