/* SPDX-License-Identifier: Apache-2.0 */
/* http_client.h: what the outgoing HTTP clients (embeddings, Qdrant, chat) share on top of
 * libcurl's easy handles: the options every request takes and a capped reply buffer. */
#pragma once
#include "compat.h"
#include "mem.h"

#include <curl/curl.h>

/* A reply body read through a capped buffer (its cap must not be 0); too_large tells a
 * cap hit from other write errors. The caller releases buf. */
struct alm_http_sink {
    struct alm_buf buf;
    bool too_large;
};

/* A new easy handle, owned by the caller (curl_easy_cleanup it); aborts when out of
 * memory, the only way curl_easy_init fails. */
CURL *alm_http_client_new(void);
/* The options every request shares: url and headers (borrowed: they must outlive the
 * transfers), no signals (the clients run in threads), only http and https. */
void alm_http_client_target(CURL *curl, const char *url, struct curl_slist *headers);
/* Bounds the whole transfer, and the connect within it, by timeout_ms. */
void alm_http_client_timeout(CURL *curl, int timeout_ms);
/* Reads the reply into sink, borrowed for the transfer. A reply that announces or
 * grows past the cap ends the transfer (CURLE_FILESIZE_EXCEEDED or CURLE_WRITE_ERROR
 * with sink->too_large set). */
void alm_http_client_sink(CURL *curl, struct alm_http_sink *sink);
/* list with line appended (curl copies it); aborts when out of memory, the only way
 * curl_slist_append fails. */
struct curl_slist *alm_http_client_header(struct curl_slist *list, const char *line);
/* Wipes every header (they may carry an API key), then frees the list. */
void alm_http_client_headers_free(struct curl_slist *list);
