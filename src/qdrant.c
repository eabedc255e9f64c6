/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "qdrant.h"
#include "http_client.h"
#include "mem.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest reply body we read; a bigger one is refused with ALM_ERR_TOO_LARGE. */
#define QDRANT_MAX_REPLY ((size_t)32 << 20)

/* Almanac's UUIDv5 namespace for point ids, 564302c8-166a-578c-813d-79c130c979be: itself
 * uuid5(NAMESPACE_URL, "urn:almanac:qdrant-point"), e.g. with Python's uuid module. Never change
 * it: every point id in every deployed collection derives from it, and re-ingesting a document
 * would then add points instead of replacing them. */
static const unsigned char point_namespace[16] = {0x56, 0x43, 0x02, 0xc8, 0x16, 0x6a, 0x57, 0x8c,
                                                  0x81, 0x3d, 0x79, 0xc1, 0x30, 0xc9, 0x79, 0xbe};

struct alm_qdrant {
    CURL *curl;
    char *base; /* without a trailing slash */
    struct curl_slist *headers;
    char *api_key; /* NULL when none; only to keep it out of error texts */
};

struct alm_qdrant *alm_qdrant_new(const struct alm_config *cfg)
{
    struct alm_qdrant *q = alm_xcalloc(1, sizeof(*q));
    size_t n = strlen(cfg->qdrant_url);

    while (n > 0 && cfg->qdrant_url[n - 1] == '/')
        n--;
    q->base = alm_xstrndup(cfg->qdrant_url, n);
    q->curl = alm_http_client_new();
    q->headers = curl_slist_append(NULL, "Content-Type: application/json");
    /* No "Expect: 100-continue" round trip before larger bodies. */
    q->headers = curl_slist_append(q->headers, "Expect:");
    if (cfg->qdrant_api_key && cfg->qdrant_api_key[0]) {
        char *h = alm_xasprintf("api-key: %s", cfg->qdrant_api_key);
        q->headers = curl_slist_append(q->headers, h);
        free(h);
        q->api_key = alm_xstrdup(cfg->qdrant_api_key);
    }
    if (!q->headers)
        abort();
    return q;
}

void alm_qdrant_free(struct alm_qdrant *q)
{
    if (!q)
        return;
    curl_easy_cleanup(q->curl);
    curl_slist_free_all(q->headers);
    free(q->base);
    if (q->api_key) {
        memset(q->api_key, 0, strlen(q->api_key));
        free(q->api_key);
    }
    free(q);
}

/* NOLINTNEXTLINE(readability-non-const-parameter): curl's write callback type */
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

/* Sets the options every request shares; the caller adds method, body and writer. */
static void setup(struct alm_qdrant *q, const char *url, int timeout_ms)
{
    curl_easy_reset(q->curl);
    alm_http_client_target(q->curl, url, q->headers);
    alm_http_client_timeout(q->curl, timeout_ms);
}

enum alm_err alm_qdrant_readyz(struct alm_qdrant *q, int timeout_ms, struct alm_errbuf *eb)
{
    char *url = alm_xasprintf("%s/readyz", q->base);
    long status = 0;
    CURLcode rc;

    setup(q, url, timeout_ms);
    curl_easy_setopt(q->curl, CURLOPT_WRITEFUNCTION, discard);
    rc = curl_easy_perform(q->curl);
    curl_easy_getinfo(q->curl, CURLINFO_RESPONSE_CODE, &status);
    free(url);
    return curl_outcome(rc, status, timeout_ms, eb);
}

/* ---------------------------------------------------------------- point ids */

void alm_qdrant_point_id(int64_t document_id, int chunk_index, char out[37])
{
    unsigned char msg[16 + 48];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    int name_len;

    memcpy(msg, point_namespace, sizeof(point_namespace));
    name_len =
        snprintf((char *)msg + 16, sizeof(msg) - 16, "%" PRId64 ":%d", document_id, chunk_index);
    if (!EVP_Digest(msg, 16 + (size_t)name_len, md, &md_len, EVP_sha1(), NULL) || md_len < 16)
        abort(); /* SHA-1 in the default provider fails only when out of memory */
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x50); /* version 5 */
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", md[0],
             md[1], md[2], md[3], md[4], md[5], md[6], md[7], md[8], md[9], md[10], md[11], md[12],
             md[13], md[14], md[15]);
}

/* ---------------------------------------------------------------- transport */

/* Aborts when jansson could not build a value: only out of memory, or a bug here. */
static json_t *must(json_t *j)
{
    if (!j)
        abort();
    return j;
}

struct reply {
    long status;
    json_t *json; /* the parsed body; NULL when it was empty or not JSON */
};

static void reply_release(struct reply *r)
{
    json_decref(r->json);
    r->json = NULL;
}

/* Sends method path (relative to the base URL, already escaped) with the JSON text
 * (taken; NULL for none) and reads the reply through a capped buffer. ALM_OK means an HTTP
 * answer arrived, whatever its status: r->status says which. */
static enum alm_err perform(struct alm_qdrant *q, const char *method, const char *path, char *text,
                            int timeout_ms, struct reply *r, struct alm_errbuf *eb)
{
    char *url = alm_xasprintf("%s%s", q->base, path);
    struct alm_http_sink sink = {ALM_BUF_INIT(QDRANT_MAX_REPLY), false};
    CURLcode rc;
    enum alm_err err = ALM_OK;

    r->status = 0;
    r->json = NULL;
    setup(q, url, timeout_ms);
    alm_http_client_sink(q->curl, &sink);
    if (text) {
        curl_easy_setopt(q->curl, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(q->curl, CURLOPT_POSTFIELDS, text);
        curl_easy_setopt(q->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(text));
    } else {
        curl_easy_setopt(q->curl, CURLOPT_HTTPGET, 1L);
        if (strcmp(method, "GET") != 0)
            curl_easy_setopt(q->curl, CURLOPT_CUSTOMREQUEST, method);
    }
    rc = curl_easy_perform(q->curl);
    curl_easy_getinfo(q->curl, CURLINFO_RESPONSE_CODE, &r->status);
    free(text);
    free(url);

    switch (rc) {
    case CURLE_OK:
        break;
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        if (sink.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
            err = alm_fail(eb, ALM_ERR_TOO_LARGE, "qdrant reply larger than %zu bytes",
                           QDRANT_MAX_REPLY);
            break;
        }
        err = alm_fail(eb, ALM_ERR_UNAVAILABLE, "%s", curl_easy_strerror(rc));
        break;
    default:
        err = curl_outcome(rc, 0, timeout_ms, eb);
        break;
    }
    if (err == ALM_OK && sink.buf.len > 0)
        r->json = json_loadb(sink.buf.data, sink.buf.len, 0, NULL);
    alm_buf_release(&sink.buf);
    return err;
}

/* Qdrant's own error text ("status":{"error":...}), or NULL; never one quoting our key. */
static const char *error_text(const struct alm_qdrant *q, const struct reply *r)
{
    const char *s = json_string_value(json_object_get(json_object_get(r->json, "status"), "error"));

    if (!s || (q->api_key && strstr(s, q->api_key)))
        return NULL;
    return s;
}

/* The error for a non-2xx answer about collection. */
static enum alm_err http_error(const struct alm_qdrant *q, const struct reply *r,
                               const char *collection, struct alm_errbuf *eb)
{
    const char *why = error_text(q, r);

    if (r->status == 404)
        return alm_fail(eb, ALM_ERR_NOT_FOUND, "collection %s missing", collection);
    if (r->status == 401 || r->status == 403)
        return alm_fail(eb, ALM_ERR_UPSTREAM, "qdrant refused the api key (HTTP %ld)", r->status);
    if (why)
        return alm_fail(eb, ALM_ERR_UPSTREAM, "qdrant answered HTTP %ld: %.120s", r->status, why);
    return alm_fail(eb, ALM_ERR_UPSTREAM, "qdrant answered HTTP %ld", r->status);
}

static bool ok_status(long status)
{
    return status >= 200 && status < 300;
}

/* "result" of a 2xx reply in the contract's envelope, or NULL. */
static json_t *result_of(const struct reply *r)
{
    return json_object_get(r->json, "result");
}

static enum alm_err unexpected(const char *what, struct alm_errbuf *eb)
{
    return alm_fail(eb, ALM_ERR_UPSTREAM, "unexpected qdrant reply: %s", what);
}

/* "/collections/<escaped name><suffix>"; free the result. */
static char *collection_path(struct alm_qdrant *q, const char *collection, const char *suffix)
{
    char *esc = curl_easy_escape(q->curl, collection, 0);
    char *path;

    if (!esc)
        abort();
    path = alm_xasprintf("/collections/%s%s", esc, suffix);
    curl_free(esc);
    return path;
}

/* One request about collection; *r holds the 2xx reply on ALM_OK (release it). */
/* The body as JSON text (a new string), the body itself stolen. */
static char *body_text(json_t *body)
{
    char *text;

    if (!body)
        return NULL;
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        abort(); /* jansson fails only when out of memory */
    return text;
}

/* As call(), with the body already as JSON text (taken). */
static enum alm_err call_text(struct alm_qdrant *q, const char *method, const char *collection,
                              const char *suffix, char *text, int timeout_ms, struct reply *r,
                              struct alm_errbuf *eb)
{
    char *path = collection_path(q, collection, suffix);
    enum alm_err err = perform(q, method, path, text, timeout_ms, r, eb);

    free(path);
    if (err != ALM_OK)
        return err;
    if (!ok_status(r->status)) {
        err = http_error(q, r, collection, eb);
        reply_release(r);
    }
    return err;
}

static enum alm_err call(struct alm_qdrant *q, const char *method, const char *collection,
                         const char *suffix, json_t *body, int timeout_ms, struct reply *r,
                         struct alm_errbuf *eb)
{
    return call_text(q, method, collection, suffix, body_text(body), timeout_ms, r, eb);
}

/* A write's UpdateResult: "completed" (we always wait) or "acknowledged". */
static enum alm_err check_update(const struct reply *r, int timeout_ms, struct alm_errbuf *eb)
{
    const char *status = json_string_value(json_object_get(result_of(r), "status"));

    if (!status)
        return unexpected("no result.status", eb);
    if (strcmp(status, "completed") == 0 || strcmp(status, "acknowledged") == 0)
        return ALM_OK;
    if (strcmp(status, "wait_timeout") == 0)
        return alm_fail(eb, ALM_ERR_TIMEOUT, "qdrant did not apply the write within %d ms",
                        timeout_ms);
    return unexpected("unknown result.status", eb);
}

static enum alm_err check_collection(const char *collection, struct alm_errbuf *eb)
{
    if (!collection || !collection[0])
        return alm_fail(eb, ALM_ERR_INVALID, "no collection name");
    return ALM_OK;
}

/* ---------------------------------------------------------------- collections */

static const char *const indexed_fields[] = {"knowledge_base_id", "document_id"};

/* Checks the existing collection's vectors against dim; sets *indexed when both payload
 * indexes exist already. */
static enum alm_err check_existing(json_t *info, const char *collection, int dim, bool *indexed,
                                   struct alm_errbuf *eb)
{
    json_t *vectors =
        json_object_get(json_object_get(json_object_get(info, "config"), "params"), "vectors");
    json_t *size = json_object_get(vectors, "size");
    const char *distance = json_string_value(json_object_get(vectors, "distance"));
    json_t *schema = json_object_get(info, "payload_schema");

    if (!json_is_object(vectors))
        return unexpected("no result.config.params.vectors", eb);
    if (!size)
        return alm_fail(eb, ALM_ERR_CONFLICT,
                        "collection %s has named vectors, Almanac needs one unnamed vector",
                        collection);
    if (!json_is_integer(size))
        return unexpected("vectors.size is not an integer", eb);
    if (json_integer_value(size) != dim)
        return alm_fail(eb, ALM_ERR_CONFLICT,
                        "collection %s has dimension %" JSON_INTEGER_FORMAT
                        ", the embedder produces %d",
                        collection, json_integer_value(size), dim);
    if (distance && strcmp(distance, "Cosine") != 0)
        return alm_fail(eb, ALM_ERR_CONFLICT,
                        "collection %s uses %.20s distance, Almanac needs Cosine", collection,
                        distance);
    *indexed = true;
    for (size_t i = 0; i < sizeof(indexed_fields) / sizeof(indexed_fields[0]); i++) {
        if (!json_object_get(schema, indexed_fields[i]))
            *indexed = false;
    }
    return ALM_OK;
}

static enum alm_err create_indexes(struct alm_qdrant *q, const char *collection, int timeout_ms,
                                   struct alm_errbuf *eb)
{
    for (size_t i = 0; i < sizeof(indexed_fields) / sizeof(indexed_fields[0]); i++) {
        struct reply r;
        json_t *body = must(
            json_pack("{s:s, s:s}", "field_name", indexed_fields[i], "field_schema", "integer"));
        enum alm_err err = call(q, "PUT", collection, "/index?wait=true", body, timeout_ms, &r, eb);

        if (err != ALM_OK)
            return err;
        err = check_update(&r, timeout_ms, eb);
        reply_release(&r);
        if (err != ALM_OK)
            return err;
    }
    return ALM_OK;
}

/* Whether a failed create means that someone else created the collection meanwhile. */
static bool already_exists(const struct reply *r)
{
    const char *why =
        json_string_value(json_object_get(json_object_get(r->json, "status"), "error"));

    return r->status == 409 || (r->status == 400 && why && strstr(why, "already exists"));
}

enum alm_err alm_qdrant_check_collection(struct alm_qdrant *q, const char *collection, int dim,
                                         int timeout_ms, struct alm_errbuf *eb)
{
    enum alm_err err = check_collection(collection, eb);
    struct reply r;
    bool indexed = false;
    char *path;

    if (err != ALM_OK)
        return err;
    path = collection_path(q, collection, "");
    err = perform(q, "GET", path, NULL, timeout_ms, &r, eb);
    free(path);
    if (err != ALM_OK)
        return err;
    if (r.status == 404)
        err = alm_fail(eb, ALM_ERR_NOT_FOUND, "collection %s missing", collection);
    else if (!ok_status(r.status))
        err = http_error(q, &r, collection, eb);
    else if (!json_is_object(result_of(&r)))
        err = unexpected("no result object", eb);
    else
        err = check_existing(result_of(&r), collection, dim, &indexed, eb);
    reply_release(&r);
    return err;
}

enum alm_err alm_qdrant_ensure_collection(struct alm_qdrant *q, const char *collection, int dim,
                                          int timeout_ms, struct alm_errbuf *eb)
{
    enum alm_err err = check_collection(collection, eb);
    char *path;

    if (err != ALM_OK)
        return err;
    if (dim <= 0)
        return alm_fail(eb, ALM_ERR_INVALID, "vector dimension must be positive");
    path = collection_path(q, collection, "");
    /* A second round only after losing a creation race: then the collection exists. */
    for (int round = 0; round < 2; round++) {
        struct reply r;
        bool indexed = false;

        err = perform(q, "GET", path, NULL, timeout_ms, &r, eb);
        if (err != ALM_OK)
            break;
        if (ok_status(r.status)) {
            json_t *info = result_of(&r);
            err = json_is_object(info) ? check_existing(info, collection, dim, &indexed, eb)
                                       : unexpected("no result object", eb);
            reply_release(&r);
            if (err == ALM_OK && !indexed)
                err = create_indexes(q, collection, timeout_ms, eb);
            break;
        }
        if (r.status != 404) {
            err = http_error(q, &r, collection, eb);
            reply_release(&r);
            break;
        }
        reply_release(&r);

        json_t *body =
            must(json_pack("{s:{s:i, s:s}}", "vectors", "size", dim, "distance", "Cosine"));
        err = perform(q, "PUT", path, body_text(body), timeout_ms, &r, eb);
        if (err != ALM_OK)
            break;
        if (!ok_status(r.status)) {
            bool raced = already_exists(&r);
            if (!raced || round > 0)
                err = raced ? alm_fail(eb, ALM_ERR_UPSTREAM, "collection %s keeps changing",
                                       collection)
                            : http_error(q, &r, collection, eb);
            reply_release(&r);
            if (raced && round == 0)
                continue; /* look again: it may have another dimension */
            break;
        }
        if (!json_is_true(result_of(&r)))
            err = unexpected("collection creation did not return true", eb);
        reply_release(&r);
        if (err == ALM_OK)
            err = create_indexes(q, collection, timeout_ms, eb);
        break;
    }
    free(path);
    return err;
}

/* ---------------------------------------------------------------- points */

static enum alm_err vector_json(const float *v, int dim, json_t **out, struct alm_errbuf *eb)
{
    json_t *a = must(json_array());

    for (int i = 0; i < dim; i++) {
        if (!isfinite(v[i])) {
            json_decref(a);
            return alm_fail(eb, ALM_ERR_INVALID, "vector has a non-finite value");
        }
        json_array_append_new(a, must(json_real((double)v[i])));
    }
    *out = a;
    return ALM_OK;
}

/* Appends v as a JSON number. Vector components are printed with 8 decimals from an
 * integer, not with printf's %g: formatting floats was most of an ingestion's CPU time,
 * and 1e-8 is far below what moves a cosine score. Large values (not from our
 * embedders) take the slow exact path. */
static void put_component(struct alm_buf *b, float v)
{
    char tmp[40], *p = tmp + sizeof(tmp);
    size_t n;

    if (fabsf(v) < 1e6f) {
        long long x = llround((double)v * 1e8);
        unsigned long long ax = (unsigned long long)(x < 0 ? -x : x);
        unsigned long long whole = ax / 100000000ULL, frac = ax % 100000000ULL;
        int digits = 8;
        while (digits > 1 && frac % 10 == 0) { /* "1.0", not "1": a float for every reader */
            frac /= 10;
            digits--;
        }
        for (int i = 0; i < digits; i++, frac /= 10) /* written backwards from the end */
            *--p = (char)('0' + frac % 10);
        *--p = '.';
        do {
            *--p = (char)('0' + whole % 10);
            whole /= 10;
        } while (whole);
        if (x < 0)
            *--p = '-';
        n = (size_t)(tmp + sizeof(tmp) - p);
    } else {
        p = tmp;
        n = (size_t)snprintf(tmp, sizeof(tmp), "%.9g", (double)v);
    }
    if (alm_buf_append(b, p, n)) {
        /* an uncapped buffer only fails by aborting */
    }
}

/* The upsert body as JSON text, vectors written directly (a new string). */
static enum alm_err upsert_text(const struct alm_qdrant_point *points, size_t n, int dim,
                                char **out, struct alm_errbuf *eb)
{
    struct alm_buf b = ALM_BUF_INIT(0);
    enum alm_err err = alm_buf_append(&b, "{\"points\":[", 11);

    for (size_t i = 0; i < n && !err; i++) {
        char *payload;
        if (!points[i].vector || (points[i].payload && !json_is_object(points[i].payload))) {
            err =
                alm_fail(eb, ALM_ERR_INVALID, "point %zu has no vector or a non-object payload", i);
            break;
        }
        err = alm_buf_appendf(&b, "%s{\"id\":\"%s\",\"vector\":[", i ? "," : "", points[i].id);
        for (int k = 0; k < dim && !err; k++) {
            if (!isfinite(points[i].vector[k]))
                err = alm_fail(eb, ALM_ERR_INVALID, "vector has a non-finite value");
            else if (k && alm_buf_append(&b, ",", 1))
                err = ALM_ERR_NOMEM;
            if (!err)
                put_component(&b, points[i].vector[k]);
        }
        payload = points[i].payload ? json_dumps(points[i].payload, JSON_COMPACT) : NULL;
        if (!err)
            err = alm_buf_appendf(&b, "]%s%s}", payload ? ",\"payload\":" : "",
                                  payload ? payload : "");
        free(payload);
    }
    if (!err)
        err = alm_buf_append(&b, "]}", 2);
    if (err) {
        alm_buf_release(&b);
        return err;
    }
    *out = alm_buf_detach(&b, NULL);
    return ALM_OK;
}

enum alm_err alm_qdrant_upsert(struct alm_qdrant *q, const char *collection,
                               const struct alm_qdrant_point *points, size_t n, int dim,
                               int timeout_ms, struct alm_errbuf *eb)
{
    enum alm_err err = check_collection(collection, eb);
    struct reply r;
    char *text = NULL;

    if (err != ALM_OK)
        return err;
    if (n == 0)
        return ALM_OK;
    if (dim <= 0)
        return alm_fail(eb, ALM_ERR_INVALID, "vector dimension must be positive");
    err = upsert_text(points, n, dim, &text, eb);
    if (err != ALM_OK)
        return err;
    err = call_text(q, "PUT", collection, "/points?wait=true", text, timeout_ms, &r, eb);
    if (err != ALM_OK)
        return err;
    err = check_update(&r, timeout_ms, eb);
    reply_release(&r);
    return err;
}

/* {"must":[{"key":key,"match":{"value":value}}]} */
static json_t *match_filter(const char *key, int64_t value)
{
    return must(
        json_pack("{s:[{s:s, s:{s:I}}]}", "must", "key", key, "match", "value", (json_int_t)value));
}

enum alm_err alm_qdrant_delete_where(struct alm_qdrant *q, const char *collection, const char *key,
                                     int64_t value, int min_chunk, int timeout_ms,
                                     struct alm_errbuf *eb)
{
    enum alm_err err = check_collection(collection, eb);
    json_t *filter;
    struct reply r;

    if (err != ALM_OK)
        return err;
    if (!key || !key[0])
        return alm_fail(eb, ALM_ERR_INVALID, "no payload key");
    filter = match_filter(key, value);
    if (min_chunk >= 0)
        json_array_append_new(
            json_object_get(filter, "must"),
            must(json_pack("{s:s, s:{s:i}}", "key", "chunk_index", "range", "gte", min_chunk)));
    err = call(q, "POST", collection, "/points/delete?wait=true",
               must(json_pack("{s:o}", "filter", filter)), timeout_ms, &r, eb);
    if (err != ALM_OK)
        return err;
    err = check_update(&r, timeout_ms, eb);
    reply_release(&r);
    return err;
}

enum alm_err alm_qdrant_count_document(struct alm_qdrant *q, const char *collection,
                                       int64_t document_id, int64_t *count, int timeout_ms,
                                       struct alm_errbuf *eb)
{
    enum alm_err err = check_collection(collection, eb);
    json_t *c;
    struct reply r;

    *count = 0;
    if (err != ALM_OK)
        return err;
    err = call(q, "POST", collection, "/points/count",
               must(json_pack("{s:o, s:b}", "filter", match_filter("document_id", document_id),
                              "exact", 1)),
               timeout_ms, &r, eb);
    if (err != ALM_OK)
        return err;
    c = json_object_get(result_of(&r), "count");
    if (json_is_integer(c) && json_integer_value(c) >= 0)
        *count = (int64_t)json_integer_value(c);
    else
        err = unexpected("no result.count", eb);
    reply_release(&r);
    return err;
}

struct ranked {
    struct alm_qdrant_hit hit;
    size_t pos;
};

/* Best score first; equal scores keep Qdrant's order. */
static int by_score(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;

    if (x->hit.score != y->hit.score)
        return x->hit.score > y->hit.score ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static enum alm_err parse_hits(json_t *points, int limit, struct alm_qdrant_hit **hits, size_t *n,
                               struct alm_errbuf *eb)
{
    size_t count = json_array_size(points);
    struct ranked *ranked;

    if (!json_is_array(points))
        return unexpected("no result.points array", eb);
    if (count == 0)
        return ALM_OK;
    ranked = alm_xcalloc(count, sizeof(*ranked));
    for (size_t i = 0; i < count; i++) {
        json_t *p = json_array_get(points, i);
        json_t *score = json_object_get(p, "score");
        json_t *payload = json_object_get(p, "payload");
        json_t *doc = json_object_get(payload, "document_id");
        json_t *chunk = json_object_get(payload, "chunk_index");

        if (!json_is_number(score) || !json_is_integer(doc) || !json_is_integer(chunk) ||
            json_integer_value(chunk) < 0 || json_integer_value(chunk) > INT_MAX) {
            free(ranked);
            return unexpected("point without score, document_id or chunk_index", eb);
        }
        ranked[i].hit.document_id = (int64_t)json_integer_value(doc);
        ranked[i].hit.chunk_index = (int)json_integer_value(chunk);
        ranked[i].hit.score = json_number_value(score);
        ranked[i].pos = i;
    }
    qsort(ranked, count, sizeof(*ranked), by_score);
    if (count > (size_t)limit)
        count = (size_t)limit;
    *hits = alm_xcalloc(count, sizeof(**hits));
    for (size_t i = 0; i < count; i++)
        (*hits)[i] = ranked[i].hit;
    *n = count;
    free(ranked);
    return ALM_OK;
}

enum alm_err alm_qdrant_query(struct alm_qdrant *q, const char *collection, const float *vector,
                              int dim, const int64_t *kbs, size_t n_kbs, int limit, int timeout_ms,
                              struct alm_qdrant_hit **hits, size_t *n, struct alm_errbuf *eb)
{
    enum alm_err err = check_collection(collection, eb);
    json_t *query = NULL, *any, *body;
    struct reply r;

    *hits = NULL;
    *n = 0;
    if (err != ALM_OK)
        return err;
    if (dim <= 0 || !vector || !kbs || n_kbs == 0 || limit < 1)
        return alm_fail(eb, ALM_ERR_INVALID,
                        "a query needs a vector, a knowledge base and a positive limit");
    err = vector_json(vector, dim, &query, eb);
    if (err != ALM_OK)
        return err;
    any = must(json_array());
    for (size_t i = 0; i < n_kbs; i++) {
        bool seen = false; /* the contract wants unique values */
        for (size_t j = 0; j < i && !seen; j++)
            seen = kbs[j] == kbs[i];
        if (!seen)
            json_array_append_new(any, must(json_integer((json_int_t)kbs[i])));
    }
    body = must(json_pack("{s:o, s:{s:[{s:s, s:{s:o}}]}, s:i, s:[s,s]}", "query", query, "filter",
                          "must", "key", "knowledge_base_id", "match", "any", any, "limit", limit,
                          "with_payload", "document_id", "chunk_index"));
    err = call(q, "POST", collection, "/points/query", body, timeout_ms, &r, eb);
    if (err != ALM_OK)
        return err;
    err = parse_hits(json_object_get(result_of(&r), "points"), limit, hits, n, eb);
    reply_release(&r);
    return err;
}
