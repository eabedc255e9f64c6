/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "snapshot.h"
#include "http_client.h"
#include "mem.h"

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
#define SNAPSHOT_STALL_MS          60000
#define SNAPSHOT_SHORT_TIMEOUT_MS  30000

struct client {
    struct alm_http_client *http;
    char *base;
};

static void client_open(struct client *c, const struct alm_config *cfg)
{
    size_t n = strlen(cfg->qdrant_url);

    while (n > 0 && cfg->qdrant_url[n - 1] == '/')
        n--;
    c->base = alm_xstrndup(cfg->qdrant_url, n);
    c->http =
        alm_http_client_open(alm_http_client_headers(NULL, NULL, "api-key: ", cfg->qdrant_api_key));
}

static void client_close(struct client *c)
{
    alm_http_client_close(c->http);
    free(c->base);
}

/* "/collections/<collection, escaped><suffix>" (a new string). */
static char *collection_path(const char *collection, const char *suffix)
{
    char *escaped = alm_http_client_escape(collection);
    char *path = alm_xasprintf("/collections/%s%s", escaped, suffix);

    free(escaped);
    return path;
}

/* Sends req to base + path (path is URL-safe: collection_path). timeout_ms 0: no total
 * deadline, only the stall cut. */
static void client_send(struct client *c, struct alm_http_client_request *req, const char *path,
                        long timeout_ms, struct alm_http_client_result *res)
{
    char *url = alm_xasprintf("%s%s", c->base, path);

    req->url = url;
    req->timeout_ms = timeout_ms > 0 ? (int)timeout_ms : SNAPSHOT_SHORT_TIMEOUT_MS;
    req->stall_ms = timeout_ms > 0 ? 0 : SNAPSHOT_STALL_MS;
    alm_http_client_perform(c->http, req, res);
    req->url = NULL;
    free(url);
}

/* The outcome of a transfer; Qdrant's own error text (status.error) when it sent one. */
static enum alm_err outcome(const struct alm_http_client_result *r, const struct alm_buf *body,
                            const char *what, struct alm_errbuf *eb)
{
    long status = r->status;

    if (r->fault != ALM_HTTP_CLIENT_DONE) {
        struct alm_errbuf why = {{0}};
        enum alm_err err = alm_http_client_error(r, NULL, &why);
        return alm_fail(eb, err, "%s: qdrant: %s", what, why.msg);
    }
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
    struct alm_http_client_request req = {.method = method, .sink = &sink};
    struct alm_http_client_result res;
    enum alm_err err;

    client_send(c, &req, path, timeout_ms, &res);
    err = outcome(&res, &sink.buf, what, eb);
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

    client_open(&c, cfg);
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
    FILE *out;
    crypto_hash_sha256_state sha;
    int64_t bytes;
    struct alm_buf error_body; /* a non-2xx reply is an error text, not a snapshot */
    bool write_failed;
};

static bool download_write(void *arg, long status, const char *p, size_t n)
{
    struct download *d = arg;

    if (status < 200 || status >= 300)
        return alm_buf_append(&d->error_body, p, n) == ALM_OK;
    crypto_hash_sha256_update(&d->sha, (const unsigned char *)p, n);
    d->bytes += (int64_t)n;
    if (fwrite(p, 1, n, d->out) != n) {
        d->write_failed = true;
        return false;
    }
    return true;
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
    client_open(&c, cfg);
    err = call_json(&c, "POST", path, SNAPSHOT_CREATE_TIMEOUT_MS, "create snapshot", &desc, eb);
    const char *name = json_string_value(json_object_get(desc, "name"));
    if (!err && (!name || strlen(name) >= sizeof(info->name)))
        err = alm_fail(eb, ALM_ERR_UPSTREAM, "create snapshot: qdrant gave no usable name");
    if (err)
        goto close;
    snprintf(info->name, sizeof(info->name), "%s", name);
    char *escaped = alm_http_client_escape(name);
    char *suffix = alm_xasprintf("/snapshots/%s", escaped);
    free(escaped);
    free(path);
    path = collection_path(collection, suffix);
    free(suffix);

    struct alm_http_client_stream stream = {.on_data = download_write, .arg = &d};
    struct alm_http_client_request req = {.stream = &stream};
    struct alm_http_client_result res;
    crypto_hash_sha256_init(&d.sha);
    client_send(&c, &req, path, 0, &res);
    if (d.write_failed)
        err = alm_fail(eb, ALM_ERR_INTERNAL, "download snapshot: cannot write the output");
    else
        err = outcome(&res, &d.error_body, "download snapshot", eb);
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
    /* Unknown size: the body goes chunked, so stdin streams through. */
    struct alm_http_client_upload up = {"snapshot", "almanac.snapshot", "application/octet-stream",
                                        in};
    struct alm_http_client_request req = {.upload = &up, .sink = &sink};
    struct alm_http_client_result res;
    client_open(&c, cfg);
    client_send(&c, &req, path, 0, &res);
    err = outcome(&res, &sink.buf, "upload snapshot", eb);
    if (!err && ferror(in))
        err = alm_fail(eb, ALM_ERR_INTERNAL, "upload snapshot: cannot read the input");
    alm_buf_release(&sink.buf);
    client_close(&c);
    free(path);
    return err;
}
