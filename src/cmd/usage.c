/* SPDX-License-Identifier: Apache-2.0 */
/* usage.c: what every command does with an argv it cannot take: --help, usage errors. */
#include "compat.h"
#include "cmd.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

bool alm_cmd_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    }
    return false;
}

int alm_cmd_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "almanac: %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nsee 'almanac %s --help'\n", cmd);
    return ALM_EXIT_USAGE;
}
