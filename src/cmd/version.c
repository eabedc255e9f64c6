#include "compat.h"
#include "cmd.h"
#include "version.h"

#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <microhttpd.h>
#include <sodium.h>
#include <stdio.h>

int alm_cmd_version(int argc, char **argv)
{
    if (alm_cmd_wants_help(argc, argv)) {
        puts("usage: almanac version\n\nPrints the version, the commit and the libraries built "
             "with.");
        return ALM_EXIT_OK;
    }
    printf("almanac %s (commit %s)\n", ALM_VERSION, ALM_GIT_COMMIT);
    printf("libmicrohttpd %s, libpq %d, hiredis %d.%d.%d, %s, jansson %s, libsodium %s\n",
           MHD_get_version(), PQlibVersion(), HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH,
           curl_version(), jansson_version_str(), sodium_version_string());
    return ALM_EXIT_OK;
}
