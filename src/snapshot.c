/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "snapshot.h"
#include "http_client.h"
#include "mem.h"

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Replies other than the snapshot file are small JSON. */
#define SNAPSHOT_MAX_REPLY ((size_t)1 << 20)
/* Making a snapshot of a big collection takes minutes; a stalled transfer is cut after
 * a minute without a byte instead of by a total deadline. */
#define SNAPSHOT_CREATE_TIMEOUT_MS (2 * 3600 * 1000)
#define SNAPSHOT_STALL_S           60L
#define SNAPSHOT_SHORT_TIMEOUT_MS  30000

struct client {
    CURL *curl;
    struct curl_slist *headers;
    char *base;
};

static void client_open(struct client *c, const struct alm_config *cfg, const char *content_type)
{
    size_t n = strlen(cfg->qdrant_url);

    while (n > 0 && cfg->qdrant_url[n - 1] == '/')
        n--;
    c->base = alm_xstrndup(cfg->qdrant_url, n);
    c->curl = alm_http_client_new();
    c->headers = alm_http_headers(content_type, NULL, "api-key: ", cfg->qdrant_api_key);
}

static void client_close(struct client *c)
{
    curl_easy_cleanup(c->curl);
    alm_http_headers_free(c->headers);
    free(c->base);
}

/* "/collections/<collection, escaped><suffix>" (a new string). */
static char *collection_path(const char *collection, const char *suffix)
{
    char *escaped = curl_easy_escape(NULL, collection, 0);
    char *path;

    if (!escaped)
        abort(); /* only out of memory */
    path = alm_xasprintf("/collections/%s%s", escaped, suffix);
    curl_free(escaped);
    return path;
}

/* Starts a request to base + path (path is URL-safe: collection_path). timeout_ms 0:
 * no total deadline, only the stall cut. */
static void client_target(struct client *c, const char *path, long timeout_ms)
{
    char *url = alm_xasprintf("%s%s", c->base, path);

    curl_easy_reset(c->curl);
    alm_http_client_target(c->curl, url, c->headers);
    free(url); /* libcurl copies CURLOPT_URL */
    if (timeout_ms > 0) {
        alm_http_client_timeout(c->curl, (int)timeout_ms);
    } else {
        curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)SNAPSHOT_SHORT_TIMEOUT_MS);
        curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_TIME, SNAPSHOT_STALL_S);
    }
}

/* The outcome of a transfer; Qdrant's own error text (status.error) when it sent one. */
static enum alm_err outcome(struct client *c, CURLcode rc, const struct alm_buf *body,
                            const char *what, struct alm_errbuf *eb)
{
    long status = 0;

    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK)
        return alm_fail(eb, rc == CURLE_OPERATION_TIMEDOUT ? ALM_ERR_TIMEOUT : ALM_ERR_UNAVAILABLE,
                        "%s: qdrant: %s", what, curl_easy_strerror(rc));
    if (status >= 200 && status < 300)
        return ALM_OK;
    const char *detail = "";
    json_t *doc = body && body->len ? json_loadb(body->data, body->len, 0, NULL) : NULL;
    const char *e = json_string_value(json_object_get(json_object_get(doc, "status"), "error"));
    if (e)
        detail = e;
    alm_fail(eb, status == 404 ? ALM_ERR_NOT_FOUND : ALM_ERR_UPSTREAM, "%s: qdrant HTTP %ld %.200s",
             what, status, detail);
    json_decref(doc);
    return status == 404 ? ALM_ERR_NOT_FOUND : ALM_ERR_UPSTREAM;
}

/* A JSON request whose reply's "result" goes to *result (new reference) when wanted. */
static enum alm_err call_json(struct client *c, const char *method, const char *path,
                              long timeout_ms, const char *what, json_t **result,
                              struct alm_errbuf *eb)
{
    struct alm_http_sink sink = {.buf = ALM_BUF_INIT(SNAPSHOT_MAX_REPLY)};
    enum alm_err err;

    client_target(c, path, timeout_ms);
    curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
    alm_http_client_sink(c->curl, &sink);
    err = outcome(c, curl_easy_perform(c->curl), &sink.buf, what, eb);
    if (!err && result) {
        json_t *doc = json_loadb(sink.buf.data ? sink.buf.data : "", sink.buf.len, 0, NULL);
        *result = json_incref(json_object_get(doc, "result"));
        json_decref(doc);
        if (!*result)
            err = alm_fail(eb, ALM_ERR_UPSTREAM, "%s: qdrant answered without a result", what);
    }
    alm_buf_release(&sink.buf);
    return err;
}

enum alm_err alm_snapshot_collection(const struct alm_config *cfg, const char *collection,
                                     int64_t *points, int64_t *dim, struct alm_errbuf *eb)
{
    struct client c;
    json_t *info = NULL;
    char *path = collection_path(collection, "");
    enum alm_err err;

    client_open(&c, cfg, NULL);
    err = call_json(&c, "GET", path, SNAPSHOT_SHORT_TIMEOUT_MS, "collection info", &info, eb);
    if (!err) {
        json_t *size = json_object_get(
            json_object_get(json_object_get(json_object_get(info, "config"), "params"), "vectors"),
            "size");
        *points = json_integer_value(json_object_get(info, "points_count"));
        *dim = json_integer_value(size);
    }
    json_decref(info);
    free(path);
    client_close(&c);
    return err;
}

struct download {
    CURL *curl;
    FILE *out;
    crypto_hash_sha256_state sha;
    int64_t bytes;
    struct alm_buf error_body; /* a non-2xx reply is an error text, not a snapshot */
    bool write_failed;
};

static size_t download_write(char *p, size_t size, size_t n, void *arg)
{
    struct download *d = arg;
    long status = 0;

    curl_easy_getinfo(d->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status >= 300)
        return alm_buf_append(&d->error_body, p, size * n) == ALM_OK ? size * n : 0;
    crypto_hash_sha256_update(&d->sha, (const unsigned char *)p, size * n);
    d->bytes += (int64_t)(size * n);
    if (fwrite(p, 1, size * n, d->out) != size * n) {
        d->write_failed = true;
        return 0;
    }
    return size * n;
}

enum alm_err alm_snapshot_save(const struct alm_config *cfg, const char *collection, FILE *out,
                               struct alm_snapshot_info *info, struct alm_errbuf *eb)
{
    struct client c;
    json_t *desc = NULL;
    char *path = collection_path(collection, "/snapshots?wait=true");
    unsigned char digest[crypto_hash_sha256_BYTES];
    struct download d = {.out = out, .error_body = ALM_BUF_INIT(SNAPSHOT_MAX_REPLY)};
    enum alm_err err;

    memset(info, 0, sizeof(*info));
    err = alm_snapshot_collection(cfg, collection, &info->points, &info->dim, eb);
    if (err)
        goto done;
    client_open(&c, cfg, NULL);
    err = call_json(&c, "POST", path, SNAPSHOT_CREATE_TIMEOUT_MS, "create snapshot", &desc, eb);
    const char *name = json_string_value(json_object_get(desc, "name"));
    if (!err && (!name || strlen(name) >= sizeof(info->name)))
        err = alm_fail(eb, ALM_ERR_UPSTREAM, "create snapshot: qdrant gave no usable name");
    if (err)
        goto close;
    snprintf(info->name, sizeof(info->name), "%s", name);
    char *escaped = curl_easy_escape(c.curl, name, 0);
    char *suffix = alm_xasprintf("/snapshots/%s", escaped ? escaped : "");
    curl_free(escaped);
    free(path);
    path = collection_path(collection, suffix);
    free(suffix);

    client_target(&c, path, 0);
    d.curl = c.curl;
    crypto_hash_sha256_init(&d.sha);
    curl_easy_setopt(c.curl, CURLOPT_WRITEFUNCTION, download_write);
    curl_easy_setopt(c.curl, CURLOPT_WRITEDATA, &d);
    CURLcode rc = curl_easy_perform(c.curl);
    if (d.write_failed)
        err = alm_fail(eb, ALM_ERR_INTERNAL, "download snapshot: cannot write the output");
    else
        err = outcome(&c, rc, &d.error_body, "download snapshot", eb);
    if (!err && fflush(out) != 0)
        err = alm_fail(eb, ALM_ERR_INTERNAL, "download snapshot: cannot write the output");
    crypto_hash_sha256_final(&d.sha, digest);
    sodium_bin2hex(info->sha256, sizeof(info->sha256), digest, sizeof(digest));
    info->bytes = d.bytes;

    /* Qdrant keeps every snapshot on its own disk until deleted: always delete. */
    struct alm_errbuf del_eb = {{0}};
    if (call_json(&c, "DELETE", path, SNAPSHOT_SHORT_TIMEOUT_MS, "delete snapshot", NULL,
                  &del_eb) &&
        !err)
        err = alm_fail(eb, ALM_ERR_UPSTREAM, "%s", del_eb.msg);
close:
    client_close(&c);
done:
    alm_buf_release(&d.error_body);
    json_decref(desc);
    free(path);
    return err;
}

static size_t upload_read(char *buf, size_t size, size_t n, void *arg)
{
    FILE *in = arg;
    size_t got = fread(buf, 1, size * n, in);

    if (got == 0 && ferror(in))
        return CURL_READFUNC_ABORT;
    return got;
}

enum alm_err alm_snapshot_load(const struct alm_config *cfg, const char *collection, FILE *in,
                               const char *sha256, struct alm_errbuf *eb)
{
    struct client c;
    struct alm_http_sink sink = {.buf = ALM_BUF_INIT(SNAPSHOT_MAX_REPLY)};
    char *path;
    enum alm_err err;

    if (sha256 && strspn(sha256, "0123456789abcdef") != 64)
        return alm_fail(eb, ALM_ERR_INVALID, "the checksum must be 64 lower-case hex digits");
    char *suffix = alm_xasprintf("/snapshots/upload?wait=true&priority=snapshot%s%s",
                                 sha256 ? "&checksum=" : "", sha256 ? sha256 : "");
    path = collection_path(collection, suffix);
    free(suffix);
    client_open(&c, cfg, NULL);
    client_target(&c, path, 0);
    curl_mime *mime = curl_mime_init(c.curl);
    curl_mimepart *part = curl_mime_addpart(mime);
    curl_mime_name(part, "snapshot");
    curl_mime_filename(part, "almanac.snapshot");
    curl_mime_type(part, "application/octet-stream");
    /* Unknown size: the body goes chunked, so stdin streams through. */
    curl_mime_data_cb(part, -1, upload_read, NULL, NULL, in);
    curl_easy_setopt(c.curl, CURLOPT_MIMEPOST, mime);
    alm_http_client_sink(c.curl, &sink);
    err = outcome(&c, curl_easy_perform(c.curl), &sink.buf, "upload snapshot", eb);
    if (!err && ferror(in))
        err = alm_fail(eb, ALM_ERR_INTERNAL, "upload snapshot: cannot read the input");
    curl_mime_free(mime);
    alm_buf_release(&sink.buf);
    client_close(&c);
    free(path);
    return err;
}
