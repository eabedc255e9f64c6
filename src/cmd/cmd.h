/* SPDX-License-Identifier: Apache-2.0 */
/* cmd.h: the subcommands of the almanac binary, each in src/cmd/<name>.c, and how they
 * start. A command parses its flags, loads the configuration and wires subsystems
 * together; the work itself lives in the subsystems. */
#pragma once
#include "compat.h"
#include "config.h"
#include "log.h"

#include <libpq-fe.h>

/* A subcommand: argv[0] is its name; returns the process exit code. */
typedef int alm_cmd_fn(int argc, char **argv);
alm_cmd_fn alm_cmd_api, alm_cmd_worker, alm_cmd_beat, alm_cmd_jobs, alm_cmd_extract,
    alm_cmd_migrate, alm_cmd_user, alm_cmd_reindex, alm_cmd_snapshot, alm_cmd_check_config,
    alm_cmd_healthcheck, alm_cmd_version;

/* How a command starts; alm_cmd_start() takes the steps in this order. */
struct alm_cmd_start {
    const char *name;  /* as in 'almanac NAME': messages, the log's svc (a literal) */
    const char *usage; /* --help prints it to stdout and ends the command (exit 0) */
    /* Takes the flags in argv into args: ALM_EXIT_OK, or alm_cmd_usage_error()'s exit
     * code. NULL: the command takes no argument. */
    int (*parse)(int argc, char **argv, void *args);
    void *args;
    /* The configuration is loaded into cfg (exit 78 when invalid; the caller releases it
     * once the command went on). NULL: none is, and the steps below are not taken. */
    struct alm_config *cfg;
    /* A service (api, worker, beat): signals stay blocked for the thread of
     * alm_signals_start(), the configuration's warnings and the configuration itself
     * are logged. Otherwise a one-shot command: signals are unblocked, so that their
     * default action ends it. */
    bool service;
    /* The log level while the configuration loads; then ALMANAC_LOG_LEVEL's, unless
     * fixed: reindex prints its result as JSON on stdout, where the logs go, and
     * snapshot's stdout may carry the snapshot itself. */
    enum alm_log_level log_level;
    bool log_level_fixed;
};
/* What every command does first: --help, its flags, and for those with a configuration,
 * signals, logging and the configuration (see struct alm_cmd_start). True to go on, with
 * *rc ALM_EXIT_OK; false when the command ends here with exit code *rc. */
bool alm_cmd_start(const struct alm_cmd_start *start, int argc, char **argv, int *rc);
/* The database connection of an operator command: waits up to wait_ms for PostgreSQL to
 * accept one; with schema_current, refuses a schema other than the one this binary
 * needs. NULL once the reason is printed to stderr ("almanac: NAME: ..."). */
PGconn *alm_cmd_db_or_report(const struct alm_config *cfg, const char *name, int64_t wait_ms,
                             bool schema_current);

/* True when argv holds -h or --help. */
bool alm_cmd_wants_help(int argc, char **argv);
/* Prints "almanac: MSG" and the usage hint to stderr; returns ALM_EXIT_USAGE. */
int alm_cmd_usage_error(const char *cmd, const char *fmt, ...) ALM_PRINTF(2, 3);
