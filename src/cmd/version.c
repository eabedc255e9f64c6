/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "cmd.h"
#include "http_client.h"
#include "schema.h"
#include "version.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <microhttpd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: almanac version [--json]\n"
    "\n"
    "Prints the version, the commit, the database schema versions this binary needs and\n"
    "supports, and the libraries built with. The binary runs on the schema it needs and on\n"
    "newer ones until a migration raises their floor above it; its own schema runs binaries\n"
    "that need the floor or newer (the oldest release a rollback may go back to). --json\n"
    "prints one JSON object (for backup manifests and scripts).\n";

static int parse(int argc, char **argv, void *as_json)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            *(bool *)as_json = true;
        else
            return alm_cmd_usage_error("version", "unknown argument '%s'", argv[i]);
    }
    return ALM_EXIT_OK;
}

int alm_cmd_version(int argc, char **argv)
{
    bool as_json = false;
    struct alm_cmd_start start = {
        .name = "version", .usage = usage, .parse = parse, .args = &as_json};
    int rc;

    if (!alm_cmd_start(&start, argc, argv, &rc))
        return rc;
    if (as_json) {
        json_t *o = json_pack("{s:s, s:s, s:{s:i, s:i, s:i}}", "version", ALM_VERSION, "commit",
                              ALM_GIT_COMMIT, "schema", "needs", alm_schema_expected(), "floor",
                              alm_schema_floor(), "migrations", (int)alm_migration_count);
        char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (!text)
            return ALM_EXIT_FAILURE;
        puts(text);
        free(text);
        return ALM_EXIT_OK;
    }
    printf("almanac %s (commit %s)\n", ALM_VERSION, ALM_GIT_COMMIT);
    printf("schema: needs version %d; runs on %d and on newer schemas whose floor is at most %d; "
           "its own schema runs binaries that need %d or newer\n",
           alm_schema_expected(), alm_schema_expected(), alm_schema_expected(), alm_schema_floor());
    printf("libmicrohttpd %s, libpq %d, hiredis %d.%d.%d, %s, jansson %s, libsodium %s\n",
           MHD_get_version(), PQlibVersion(), HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH,
           alm_http_client_version(), jansson_version_str(), sodium_version_string());
    return ALM_EXIT_OK;
}
