/* SPDX-License-Identifier: Apache-2.0 */
/* cmd.h: one function per subcommand of the almanac binary, each in src/cmd/<name>.c.
 * A command parses its flags, loads the configuration and wires subsystems together;
 * the work itself lives in the subsystems. Each returns the process exit code. */
#pragma once
#include "compat.h"

int alm_cmd_api(int argc, char **argv);
int alm_cmd_check_config(int argc, char **argv);
int alm_cmd_healthcheck(int argc, char **argv);
int alm_cmd_version(int argc, char **argv);
int alm_cmd_migrate(int argc, char **argv);
int alm_cmd_user(int argc, char **argv);
int alm_cmd_worker(int argc, char **argv);
int alm_cmd_beat(int argc, char **argv);
int alm_cmd_jobs(int argc, char **argv);
int alm_cmd_snapshot(int argc, char **argv);
int alm_cmd_reindex(int argc, char **argv);
int alm_cmd_extract(int argc, char **argv);

/* True when argv holds -h or --help; commands print their usage and exit 0 then. */
bool alm_cmd_wants_help(int argc, char **argv);
/* Prints "almanac: MSG" and the usage hint to stderr; returns ALM_EXIT_USAGE. */
int alm_cmd_usage_error(const char *cmd, const char *fmt, ...) ALM_PRINTF(2, 3);
