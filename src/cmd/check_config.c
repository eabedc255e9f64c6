/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "cmd.h"
#include "config.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: almanac check-config [--list [--format text|markdown]]\n"
    "\n"
    "Validates the configuration in the environment exactly as the services do at start,\n"
    "reports every problem (one line each, never a secret's value) and exits 0 when it is\n"
    "valid or 78 when not. --list prints every setting instead: name, allowed values,\n"
    "default, whether required, whether secret (settable through NAME_FILE), meaning.\n";

struct args {
    bool list;
    const char *format;
};

static int parse(int argc, char **argv, void *args)
{
    struct args *a = args;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--list") == 0)
            a->list = true;
        else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
            a->format = argv[++i];
        else
            return alm_cmd_usage_error("check-config", "unknown argument '%s'", argv[i]);
    }
    if (strcmp(a->format, "text") != 0 && strcmp(a->format, "markdown") != 0)
        return alm_cmd_usage_error("check-config", "unknown format '%s'", a->format);
    return ALM_EXIT_OK;
}

int alm_cmd_check_config(int argc, char **argv)
{
    struct alm_config cfg = {0};
    struct alm_config_report errs = {0}, warns = {0};
    struct args a = {.format = "text"};
    struct alm_cmd_start start = {
        .name = "check-config", .usage = usage, .parse = parse, .args = &a};
    int rc;

    if (!alm_cmd_start(&start, argc, argv, &rc))
        return rc;
    if (a.list) {
        alm_config_print_table(stdout, a.format);
        return ALM_EXIT_OK;
    }
    /* Loaded here, not by alm_cmd_start(): check-config prints the warnings and its
     * verdict rather than logging them. */
    rc = ALM_EXIT_OK;
    if (!alm_config_load(&cfg, &errs, &warns)) {
        rc = alm_config_fail(&errs);
    } else {
        for (size_t i = 0; i < warns.count; i++)
            fprintf(stderr, "almanac: warning: %s\n", warns.lines[i]);
        printf("configuration ok (%s)\n", cfg.env);
    }
    alm_config_release(&cfg);
    alm_config_report_release(&errs);
    alm_config_report_release(&warns);
    return rc;
}
