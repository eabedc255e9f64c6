/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "cmd.h"
#include "mem.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: almanac healthcheck [--timeout MS] [URL]\n"
    "\n"
    "A tiny HTTP client for container health checks, so images need no curl: GETs URL\n"
    "(default ALMANAC_HEALTHCHECK_URL, else http://127.0.0.1:PORT/health with PORT from\n"
    "ALMANAC_LISTEN, else 8000: an image's exec-form HEALTHCHECK needs no argument) and\n"
    "exits 0 on a 2xx answer, 1 otherwise. The whole run, connect and reply, is bounded\n"
    "by --timeout (default 3000 ms).\n";

/* NOLINTNEXTLINE(readability-non-const-parameter): curl's write callback type */
static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* ALMANAC_HEALTHCHECK_URL, else http://127.0.0.1:PORT/health from ALMANAC_LISTEN; a new
 * string. The variable lets one image-level HEALTHCHECK serve the api and the worker and
 * beat (their probe listener) without a shell to pick the URL. */
static char *default_url(void)
{
    const char *set = getenv("ALMANAC_HEALTHCHECK_URL");
    const char *listen = getenv("ALMANAC_LISTEN");

    if (set && *set)
        return alm_xstrdup(set);
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    long port = colon ? strtol(colon + 1, NULL, 10) : 0;

    if (port <= 0 || port > 65535)
        port = 8000;
    return alm_xasprintf("http://127.0.0.1:%ld/health", port);
}

int alm_cmd_healthcheck(int argc, char **argv)
{
    char *url = NULL;
    long timeout_ms = 3000, status = 0;
    CURL *curl;
    CURLcode rc;

    if (alm_cmd_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return ALM_EXIT_OK;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            char *end;
            timeout_ms = strtol(argv[++i], &end, 10);
            if (*end || timeout_ms < 1 || timeout_ms > 60000) {
                free(url);
                return alm_cmd_usage_error("healthcheck", "--timeout must be 1..60000 ms");
            }
        } else if (argv[i][0] != '-' && !url) {
            url = alm_xstrdup(argv[i]);
        } else {
            free(url);
            return alm_cmd_usage_error("healthcheck", "unexpected argument '%s'", argv[i]);
        }
    }
    if (!url)
        url = default_url();
    curl = curl_easy_init();
    if (!curl) {
        free(url);
        return ALM_EXIT_FAILURE;
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK)
        fprintf(stderr, "almanac: healthcheck: %s: %s\n", url, curl_easy_strerror(rc));
    else if (status < 200 || status > 299)
        fprintf(stderr, "almanac: healthcheck: %s: HTTP %ld\n", url, status);
    free(url);
    return rc == CURLE_OK && status >= 200 && status <= 299 ? ALM_EXIT_OK : ALM_EXIT_FAILURE;
}
