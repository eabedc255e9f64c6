/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "http_client.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

CURL *alm_http_client_new(void)
{
    CURL *curl = curl_easy_init();

    if (!curl)
        abort();
    return curl;
}

void alm_http_client_target(CURL *curl, const char *url, struct curl_slist *headers)
{
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
}

void alm_http_client_timeout(CURL *curl, int timeout_ms)
{
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
}

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
    struct alm_http_sink *s = arg;

    if (alm_buf_append(&s->buf, p, size * n) != ALM_OK) {
        s->too_large = true;
        return 0; /* aborts the transfer */
    }
    return size * n;
}

void alm_http_client_sink(CURL *curl, struct alm_http_sink *sink)
{
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)sink->buf.cap);
}

struct curl_slist *alm_http_client_header(struct curl_slist *list, const char *line)
{
    struct curl_slist *l = curl_slist_append(list, line);

    if (!l)
        abort();
    return l;
}

void alm_http_client_headers_free(struct curl_slist *list)
{
    for (struct curl_slist *l = list; l; l = l->next)
        sodium_memzero(l->data, strlen(l->data));
    curl_slist_free_all(list);
}
