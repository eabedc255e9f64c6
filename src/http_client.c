/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "http_client.h"
#include "version.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Retry-After beyond a day is no advice at all; callers cap it much lower. */
#define RETRY_AFTER_MAX_MS ((int64_t)24 * 3600 * 1000)

/* ---------------------------------------------------------------- process */

bool alm_http_client_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

void alm_http_client_global_cleanup(void)
{
    curl_global_cleanup();
}

const char *alm_http_client_version(void)
{
    return curl_version();
}

/* ---------------------------------------------------------------- headers */

/* list with line appended (curl copies it); aborts when out of memory, the only way
 * curl_slist_append fails. */
static struct curl_slist *append(struct curl_slist *list, const char *line)
{
    struct curl_slist *l = curl_slist_append(list, line);

    if (!l)
        abort();
    return l;
}

struct curl_slist *alm_http_client_headers(const char *content_type, const char *accept,
                                           const char *secret_prefix, const char *secret)
{
    struct curl_slist *h = NULL;

    if (content_type) {
        char *line = alm_xasprintf("Content-Type: %s", content_type);
        h = append(h, line);
        free(line);
    }
    if (accept) {
        char *line = alm_xasprintf("Accept: %s", accept);
        h = append(h, line);
        free(line);
    }
    h = append(h, "Expect:");
    if (secret && *secret) {
        char *line = alm_xasprintf("%s%s", secret_prefix, secret);
        h = append(h, line);
        sodium_memzero(line, strlen(line));
        free(line);
    }
    return h;
}

void alm_http_client_headers_free(struct curl_slist *list)
{
    for (struct curl_slist *l = list; l; l = l->next)
        sodium_memzero(l->data, strlen(l->data));
    curl_slist_free_all(list);
}

/* ---------------------------------------------------------------- requests */

struct alm_http_client {
    CURL *curl;
    struct curl_slist *headers; /* may hold an API key: wiped when freed */
};

struct alm_http_client *alm_http_client_open(struct curl_slist *headers)
{
    struct alm_http_client *h = alm_xcalloc(1, sizeof(*h));

    h->curl = curl_easy_init();
    if (!h->curl)
        abort(); /* the only way curl_easy_init fails is out of memory */
    h->headers = headers;
    return h;
}

void alm_http_client_close(struct alm_http_client *h)
{
    if (!h)
        return;
    curl_easy_cleanup(h->curl);
    alm_http_client_headers_free(h->headers);
    free(h);
}

char *alm_http_client_escape(const char *s)
{
    char *esc = curl_easy_escape(NULL, s, 0);
    char *copy;

    if (!esc)
        abort();
    copy = alm_xstrdup(esc);
    curl_free(esc);
    return copy;
}

/* NOLINTNEXTLINE(readability-non-const-parameter): curl's write callback type */
static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
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

/* The stream and its handle, for the body's status. */
struct streaming {
    struct alm_http_client_stream *stream;
    CURL *curl;
};

static size_t stream_data(char *p, size_t size, size_t n, void *arg)
{
    struct streaming *st = arg;
    long status = 0;

    curl_easy_getinfo(st->curl, CURLINFO_RESPONSE_CODE, &status);
    return st->stream->on_data(st->stream->arg, status, p, size * n) ? size * n : 0;
}

static size_t stream_header(char *p, size_t size, size_t n, void *arg)
{
    struct alm_http_client_stream *s = arg;

    s->on_header(s->arg, p, size * n);
    return size * n;
}

static int stream_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                           curl_off_t ulnow)
{
    struct alm_http_client_stream *s = arg;

    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return s->keep_going(s->arg) ? 0 : 1;
}

static size_t upload_read(char *buf, size_t size, size_t n, void *arg)
{
    FILE *in = arg;
    size_t got = fread(buf, 1, size * n, in);

    if (got == 0 && ferror(in))
        return CURL_READFUNC_ABORT;
    return got;
}

/* The form of an upload, set on curl; free it after the transfer. */
static curl_mime *set_upload(CURL *curl, const struct alm_http_client_upload *up)
{
    curl_mime *mime = curl_mime_init(curl);
    curl_mimepart *part = curl_mime_addpart(mime);

    if (!mime || !part)
        abort(); /* only out of memory */
    curl_mime_name(part, up->field);
    curl_mime_filename(part, up->filename);
    curl_mime_type(part, up->type);
    /* Unknown size: the body goes chunked, so a pipe streams through. */
    curl_mime_data_cb(part, -1, upload_read, NULL, NULL, up->in);
    curl_easy_setopt(curl, CURLOPT_MIMEPOST, mime);
    return mime;
}

static void set_body(CURL *curl, const struct alm_http_client_request *req)
{
    if (req->body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(req->body));
        if (req->method && strcmp(req->method, "POST") != 0)
            curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
        return;
    }
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    if (req->method && strcmp(req->method, "GET") != 0)
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
}

static void set_timeouts(CURL *curl, const struct alm_http_client_request *req)
{
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)req->timeout_ms);
    if (!req->stall_ms) {
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
        return;
    }
    long stall_s = (req->stall_ms + 999) / 1000;
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, stall_s);
}

static void set_reader(CURL *curl, const struct alm_http_client_request *req, struct streaming *st)
{
    struct alm_http_client_stream *s = req->stream;

    if (req->sink) {
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, req->sink);
        curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->sink->buf.cap);
        return;
    }
    if (!s) {
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
        return;
    }
    *st = (struct streaming){s, curl};
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, stream_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, st);
    if (s->on_header) {
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, stream_header);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, s);
    }
    if (s->keep_going) {
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, stream_progress);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, s);
    }
}

static enum alm_http_client_fault fault_of(CURLcode rc, bool too_large)
{
    switch (rc) {
    case CURLE_OK:
        return ALM_HTTP_CLIENT_DONE;
    case CURLE_OPERATION_TIMEDOUT:
        return ALM_HTTP_CLIENT_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
        return ALM_HTTP_CLIENT_REFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
        return ALM_HTTP_CLIENT_NO_HOST;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return ALM_HTTP_CLIENT_BROKEN;
    case CURLE_FILESIZE_EXCEEDED:
        return ALM_HTTP_CLIENT_TOO_LARGE;
    case CURLE_WRITE_ERROR:
        return too_large ? ALM_HTTP_CLIENT_TOO_LARGE : ALM_HTTP_CLIENT_STOPPED;
    case CURLE_ABORTED_BY_CALLBACK:
        return ALM_HTTP_CLIENT_STOPPED;
    default:
        return ALM_HTTP_CLIENT_FAILED;
    }
}

static int64_t retry_after_of(CURL *curl)
{
    struct curl_header *h;

    if (curl_easy_header(curl, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
        return -1;
    return alm_http_client_retry_after_ms(h->value);
}

void alm_http_client_perform(struct alm_http_client *h, const struct alm_http_client_request *req,
                             struct alm_http_client_result *res)
{
    CURL *curl = h->curl;
    struct streaming st;
    curl_mime *mime = NULL;
    long status = 0;

    /* Each request starts from the defaults; the connection cache survives the reset. */
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, req->url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h->headers);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "almanac/" ALM_VERSION);
    if (req->compressed)
        curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
    set_timeouts(curl, req);
    if (req->upload)
        mime = set_upload(curl, req->upload);
    else
        set_body(curl, req);
    set_reader(curl, req, &st);
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_mime_free(mime);
    *res = (struct alm_http_client_result){
        .fault = fault_of(rc, req->sink && req->sink->too_large),
        .detail = rc == CURLE_OK ? "" : curl_easy_strerror(rc),
        .status = status,
        .retry_after_ms = rc == CURLE_OK ? retry_after_of(curl) : -1,
        .timeout_ms = req->timeout_ms,
        .stall_ms = req->stall_ms,
        .cap = req->sink ? req->sink->buf.cap : 0,
    };
}

/* ---------------------------------------------------------------- outcomes */

static enum alm_err transport_error(const struct alm_http_client_result *r, bool *transient,
                                    struct alm_errbuf *eb)
{
    switch (r->fault) {
    case ALM_HTTP_CLIENT_DONE:
        break;
    case ALM_HTTP_CLIENT_TIMEOUT:
        if (r->stall_ms)
            return alm_fail(eb, ALM_ERR_TIMEOUT,
                            "timeout: no connection within %d ms or %d ms without a byte",
                            r->timeout_ms, r->stall_ms);
        return alm_fail(eb, ALM_ERR_TIMEOUT, "timeout after %d ms", r->timeout_ms);
    case ALM_HTTP_CLIENT_REFUSED:
        return alm_fail(eb, ALM_ERR_UNAVAILABLE, "connection refused");
    case ALM_HTTP_CLIENT_NO_HOST:
        return alm_fail(eb, ALM_ERR_UNAVAILABLE, "cannot resolve host");
    case ALM_HTTP_CLIENT_BROKEN:
        return alm_fail(eb, ALM_ERR_UNAVAILABLE, "%s", r->detail);
    case ALM_HTTP_CLIENT_TOO_LARGE:
        *transient = false;
        return alm_fail(eb, ALM_ERR_TOO_LARGE, "reply larger than %zu bytes", r->cap);
    case ALM_HTTP_CLIENT_STOPPED:
    case ALM_HTTP_CLIENT_FAILED:
        *transient = false;
        return alm_fail(eb, ALM_ERR_UNAVAILABLE, "%s", r->detail);
    }
    return ALM_OK;
}

enum alm_err alm_http_client_error(const struct alm_http_client_result *r, bool *transient,
                                   struct alm_errbuf *eb)
{
    bool ignored;
    long st = r->status;

    if (!transient)
        transient = &ignored;
    *transient = true;
    if (r->fault != ALM_HTTP_CLIENT_DONE)
        return transport_error(r, transient, eb);
    if (st >= 200 && st < 300)
        return ALM_OK;
    if (st == 429)
        return alm_fail(eb, ALM_ERR_RATE_LIMITED, "rate limited (HTTP 429)");
    if (st >= 500)
        return alm_fail(eb, ALM_ERR_UNAVAILABLE, "HTTP %ld", st);
    *transient = false;
    if (st == 401 || st == 403)
        return alm_fail(eb, ALM_ERR_UPSTREAM, "the api key was refused (HTTP %ld)", st);
    return alm_fail(eb, ALM_ERR_UPSTREAM, "the request was refused (HTTP %ld)", st);
}

int64_t alm_http_client_retry_after_ms(const char *value)
{
    int64_t ms = 0;
    const char *s = value;

    if (!s || !*s)
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        ms = ms * 10 + (*s - '0') * 1000;
        if (ms > RETRY_AFTER_MAX_MS)
            ms = RETRY_AFTER_MAX_MS + 1; /* stays bounded however many digits follow */
    }
    if (*s)
        return -1;
    return ms > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS : ms;
}
