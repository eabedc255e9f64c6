/* SPDX-License-Identifier: Apache-2.0 */
/* main.c: the almanac binary; argv[1] names the command, as git's builtins do. */
#include "compat.h"
#include "cmd.h"
#include "http_client.h"
#include "signals.h"
#include "version.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

static const struct alm_command {
    const char *name;
    alm_cmd_fn *run;
    const char *summary;
} commands[] = {
    {"api", alm_cmd_api, "serve the HTTP API, /health, /ready and /metrics"},
    {"worker", alm_cmd_worker, "run ingestion jobs from the queue"},
    {"beat", alm_cmd_beat, "run the periodic tasks (one leader at a time)"},
    {"jobs", alm_cmd_jobs, "inspect queues, replay dead letters"},
    {"extract", alm_cmd_extract, "extract an office or EPUB file's text (the worker's sandbox)"},
    {"migrate", alm_cmd_migrate, "apply pending database migrations"},
    {"user", alm_cmd_user, "create users (the first admin)"},
    {"reindex", alm_cmd_reindex, "queue documents for indexing again, in bulk, resumable"},
    {"snapshot", alm_cmd_snapshot, "save or load a Qdrant snapshot of the chunk vectors"},
    {"check-config", alm_cmd_check_config, "validate the configuration and exit"},
    {"healthcheck", alm_cmd_healthcheck, "probe a health endpoint (for container checks)"},
    {"version", alm_cmd_version, "print version and build information"},
};

static void print_usage(FILE *out)
{
    fprintf(out, "usage: almanac <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < ALM_ARRAY_SIZE(commands); i++)
        fprintf(out, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'almanac <command> --help' tells more of each. Settings come from ALMANAC_*\n"
                 "environment variables: 'almanac check-config --list'.\n");
}

int main(int argc, char **argv)
{
    int rc;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? ALM_EXIT_USAGE : ALM_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0)
        return alm_cmd_version(1, argv);
    /* Before any thread exists, so that every thread inherits the mask. */
    alm_signals_block();
    if (sodium_init() < 0 || !alm_http_client_global_init()) {
        fprintf(stderr, "almanac: cannot initialise libsodium or libcurl\n");
        return ALM_EXIT_FAILURE;
    }
    for (size_t i = 0; i < ALM_ARRAY_SIZE(commands); i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            rc = commands[i].run(argc - 1, argv + 1);
            alm_http_client_global_cleanup();
            return rc;
        }
    }
    fprintf(stderr, "almanac: '%s' is not a command; see 'almanac --help'\n", argv[1]);
    return ALM_EXIT_USAGE;
}
