/* SPDX-License-Identifier: Apache-2.0 */
/* start.c: how every command starts (--help, flags, signals, logging, configuration) and
 * the database connection of the operator commands. */
#include "compat.h"
#include "cmd.h"
#include "db.h"
#include "schema.h"
#include "signals.h"

#include <stdio.h>

bool alm_cmd_start(const struct alm_cmd_start *start, int argc, char **argv, int *rc)
{
    *rc = ALM_EXIT_OK;
    if (alm_cmd_wants_help(argc, argv)) {
        fputs(start->usage, stdout);
        return false;
    }
    if (start->parse)
        *rc = start->parse(argc, argv, start->args);
    else if (argc > 1)
        *rc = alm_cmd_usage_error(start->name, "unexpected argument '%s'", argv[1]);
    if (*rc != ALM_EXIT_OK)
        return false;
    if (!start->cfg)
        return true;
    if (!start->service)
        alm_signals_unblock();
    alm_log_init(start->name, start->log_level);
    *rc = alm_config_load_or_report(start->cfg, start->service);
    if (*rc != ALM_EXIT_OK)
        return false;
    if (start->log_level_fixed)
        alm_log_init(NULL, start->log_level);
    if (start->service)
        alm_config_log(start->cfg);
    return true;
}

PGconn *alm_cmd_db_or_report(const struct alm_config *cfg, const char *name, int64_t wait_ms,
                             bool schema_current)
{
    struct alm_errbuf eb = {{0}};
    char app_name[64];
    PGconn *conn;

    snprintf(app_name, sizeof(app_name), "almanac-%s", name);
    conn = alm_db_connect_patiently(cfg, app_name, wait_ms, &eb);
    if (!conn) {
        fprintf(stderr, "almanac: %s: cannot connect to the database: %s\n", name, eb.msg);
        return NULL;
    }
    if (schema_current && alm_schema_require_current(conn, 10000, &eb)) {
        fprintf(stderr, "almanac: %s: %s\n", name, eb.msg);
        PQfinish(conn);
        return NULL;
    }
    return conn;
}
