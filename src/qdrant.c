#include "compat.h"
#include "qdrant.h"
#include "mem.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

struct alm_qdrant {
    CURL *curl;
    char *base; /* without a trailing slash */
    struct curl_slist *headers;
};

struct alm_qdrant *alm_qdrant_new(const struct alm_config *cfg)
{
    struct alm_qdrant *q = alm_xcalloc(1, sizeof(*q));
    size_t n = strlen(cfg->qdrant_url);

    while (n > 0 && cfg->qdrant_url[n - 1] == '/')
        n--;
    q->base = alm_xstrndup(cfg->qdrant_url, n);
    q->curl = curl_easy_init();
    if (!q->curl)
        abort(); /* only fails when out of memory */
    q->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (cfg->qdrant_api_key) {
        char *h = alm_xasprintf("api-key: %s", cfg->qdrant_api_key);
        q->headers = curl_slist_append(q->headers, h);
        free(h);
    }
    return q;
}

void alm_qdrant_free(struct alm_qdrant *q)
{
    if (!q)
        return;
    curl_easy_cleanup(q->curl);
    curl_slist_free_all(q->headers);
    free(q->base);
    free(q);
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* Translates a transfer's outcome into our error, never quoting the URL. */
static enum alm_err curl_outcome(CURLcode rc, long status, int timeout_ms, struct alm_errbuf *eb)
{
    switch (rc) {
    case CURLE_OK:
        if (status >= 200 && status < 300)
            return ALM_OK;
        return alm_fail(eb, ALM_ERR_UPSTREAM, "not ready (HTTP %ld)", status);
    case CURLE_OPERATION_TIMEDOUT:
        return alm_fail(eb, ALM_ERR_TIMEOUT, "timeout after %d ms", timeout_ms);
    case CURLE_COULDNT_CONNECT:
        return alm_fail(eb, ALM_ERR_UNAVAILABLE, "connection refused");
    case CURLE_COULDNT_RESOLVE_HOST:
        return alm_fail(eb, ALM_ERR_UNAVAILABLE, "cannot resolve host");
    default:
        return alm_fail(eb, ALM_ERR_UNAVAILABLE, "%s", curl_easy_strerror(rc));
    }
}

enum alm_err alm_qdrant_readyz(struct alm_qdrant *q, int timeout_ms, struct alm_errbuf *eb)
{
    char *url = alm_xasprintf("%s/readyz", q->base);
    long status = 0;
    CURLcode rc;

    curl_easy_reset(q->curl);
    curl_easy_setopt(q->curl, CURLOPT_URL, url);
    curl_easy_setopt(q->curl, CURLOPT_HTTPHEADER, q->headers);
    curl_easy_setopt(q->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(q->curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(q->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(q->curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(q->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    rc = curl_easy_perform(q->curl);
    curl_easy_getinfo(q->curl, CURLINFO_RESPONSE_CODE, &status);
    free(url);
    return curl_outcome(rc, status, timeout_ms, eb);
}
