#include "compat.h"
#include "http_server.h"
#include "clock.h"
#include "log.h"
#include "text.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* Bodies of routes without ALM_ROUTE_BODY (JSON commands) are capped at this. */
#define SMALL_BODY_MAX (1024 * 1024)
/* Past the cap, a chunked upload is read and dropped up to this many times the cap, so the
 * client still gets its 413; beyond that the connection is closed. */
#define DISCARD_FACTOR 4
#define MAX_HEADERS    8
/* Per-connection buffer for request headers (and reading): libmicrohttpd clears it for
 * every request, so its size costs on every request; 16 KiB still takes large tokens
 * and cookies (bigger header blocks get 431). Bodies are read outside it. */
#define CONNECTION_MEMORY (16 * 1024)

struct alm_http {
    struct MHD_Daemon *mhd;
    atomic_bool closing; /* quiesced: answers close their connection */
    struct alm_http_opts opts;
    atomic_uint inflight;
    int listen_fd;
    int port;
};

struct alm_req {
    struct alm_http *http;
    struct MHD_Connection *conn;
    const char *method; /* owned by libmicrohttpd for the request's life */
    const char *path;
    char *log_path; /* path with invalid UTF-8 replaced, when it had any */
    struct alm_route_match match;
    char request_id[65];
    struct alm_buf body;
    size_t discarded;
    bool too_large;
    bool answered;
    bool suspended;
    bool resumed;
    int status;
    size_t sent_bytes;
    double start_ms;
    char *extra_headers[MAX_HEADERS][2];
    size_t nextra;
    void *data;
    void (*data_free)(void *);
};

void *alm_req_app(const struct alm_req *req)
{
    return req->http->opts.app;
}

const char *alm_req_method(const struct alm_req *req)
{
    return req->method;
}

const char *alm_req_path(const struct alm_req *req)
{
    return req->path;
}

const char *alm_req_id(const struct alm_req *req)
{
    return req->request_id;
}

const char *alm_req_param(const struct alm_req *req, size_t i)
{
    return i < req->match.nparams ? req->match.params[i] : "";
}

const char *alm_req_header(const struct alm_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *alm_req_query(const struct alm_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const struct alm_buf *alm_req_body(const struct alm_req *req)
{
    return &req->body;
}

bool alm_req_resumed(const struct alm_req *req)
{
    return req->resumed;
}

void alm_req_peer(const struct alm_req *req, char *out, size_t n)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;

    out[0] = '\0';
    if (!sa)
        return;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)n);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)n);
}

void alm_req_set_data(struct alm_req *req, void *data, void (*free_fn)(void *))
{
    req->data = data;
    req->data_free = free_fn;
}

void *alm_req_data(const struct alm_req *req)
{
    return req->data;
}

void alm_req_suspend(struct alm_req *req)
{
    req->suspended = true;
    MHD_suspend_connection(req->conn);
}

void alm_req_resume(struct alm_req *req)
{
    MHD_resume_connection(req->conn);
}

void alm_reply_header(struct alm_req *req, const char *name, const char *value)
{
    if (req->nextra >= MAX_HEADERS)
        return;
    req->extra_headers[req->nextra][0] = alm_xstrdup(name);
    req->extra_headers[req->nextra][1] = alm_xstrdup(value);
    req->nextra++;
}

void alm_reply_raw(struct alm_req *req, int status, const char *content_type, char *data,
                   size_t len)
{
    struct MHD_Response *resp;

    if (req->answered) {
        alm_error("http.double_reply", "handler answered twice", "{s:s}", "request_id",
                  req->request_id);
        free(data);
        return;
    }
    req->sent_bytes = len;
    resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(data);
        return;
    }
    alm_reply_response(req, status, content_type, resp);
    MHD_destroy_response(resp);
}

void *alm_req_connection(const struct alm_req *req)
{
    return req->conn;
}

void alm_reply_response(struct alm_req *req, int status, const char *content_type, void *response)
{
    struct MHD_Response *resp = response;

    req->answered = true;
    req->status = status;
    MHD_add_response_header(resp, "Content-Type", content_type);
    MHD_add_response_header(resp, "X-Request-Id", req->request_id);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    for (size_t i = 0; i < req->nextra; i++)
        MHD_add_response_header(resp, req->extra_headers[i][0], req->extra_headers[i][1]);
    if (atomic_load(&req->http->closing))
        MHD_add_response_header(resp, "Connection", "close"); /* so drain can end */
    if (MHD_queue_response(req->conn, (unsigned)status, resp) != MHD_YES)
        alm_warn("http.queue_failed", "cannot queue the answer", "{s:s}", "request_id",
                 req->request_id);
}

void alm_reply_json_as(struct alm_req *req, int status, const char *content_type, json_t *body)
{
    char *text =
        body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10))
             : NULL;
    size_t len;

    json_decref(body);
    if (!text) {
        text = alm_xstrdup("{\"error\":{\"code\":\"internal\",\"message\":\"cannot encode the "
                           "answer\"}}");
        status = 500;
    }
    len = strlen(text);
    alm_reply_raw(req, status, content_type, text, len);
}

void alm_reply_json(struct alm_req *req, int status, json_t *body)
{
    alm_reply_json_as(req, status, "application/json", body);
}

static bool has_header(const struct alm_req *req, const char *name)
{
    for (size_t i = 0; i < req->nextra; i++) {
        if (strcasecmp(req->extra_headers[i][0], name) == 0)
            return true;
    }
    return false;
}

void alm_reply_error(struct alm_req *req, enum alm_err err, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    int status = alm_err_http_status(err);

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    alm_text_scrub_utf8(msg); /* it may quote a client's path or value */
    if ((status == 503 || status == 429) && !has_header(req, "Retry-After"))
        alm_reply_header(req, "Retry-After", "1"); /* unless the handler knows better */
    alm_reply_json(req, status,
                   json_pack("{s:{s:s, s:s, s:s}}", "error", "code", alm_err_name(err), "message",
                             msg, "request_id", req->request_id));
}

/* Request ids need to be unique, not secret: a per-thread splitmix64 sequence seeded
 * from the system's randomness costs far less than a getrandom() per request. */
static void next_id(unsigned char out[16])
{
    static _Thread_local uint64_t state;
    uint64_t z;

    if (!state)
        randombytes_buf(&state, sizeof(state));
    for (int half = 0; half < 2; half++) {
        z = (state += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        memcpy(out + 8 * half, &z, 8);
    }
}

/* An incoming X-Request-Id is kept when it is short and plain, else replaced. */
static void set_request_id(struct alm_req *req)
{
    const char *in = alm_req_header(req, "X-Request-Id");
    unsigned char raw[16];

    if (in && *in && strlen(in) < sizeof(req->request_id) &&
        strspn(in, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") ==
            strlen(in)) {
        strcpy(req->request_id, in);
        return;
    }
    next_id(raw);
    sodium_bin2hex(req->request_id, sizeof(req->request_id), raw, sizeof(raw));
}

static size_t body_cap(const struct alm_req *req)
{
    if (req->match.route && req->match.route->flags & ALM_ROUTE_BODY)
        return req->http->opts.max_body;
    return SMALL_BODY_MAX;
}

static struct alm_req *req_new(struct alm_http *h, struct MHD_Connection *conn, const char *url,
                               const char *method)
{
    struct alm_req *req = alm_xcalloc(1, sizeof(*req));

    req->http = h;
    req->conn = conn;
    req->method = method;
    req->path = url;
    if (!alm_text_valid_utf8(url, strlen(url))) {
        req->log_path = alm_xstrdup(url);
        alm_text_scrub_utf8(req->log_path);
    }
    req->start_ms = alm_clock_ms_f();
    set_request_id(req);
    alm_route_find(h->opts.routes, h->opts.nroutes, method, url, &req->match);
    req->body = (struct alm_buf)ALM_BUF_INIT(body_cap(req));
    atomic_fetch_add(&h->inflight, 1);
    return req;
}

static void req_free(struct alm_req *req)
{
    if (req->data_free)
        req->data_free(req->data);
    for (size_t i = 0; i < req->nextra; i++) {
        free(req->extra_headers[i][0]);
        free(req->extra_headers[i][1]);
    }
    alm_buf_release(&req->body);
    free(req->log_path);
    free(req);
}

/* Checks that need only the headers; true when the request was answered already. */
static bool answer_early(struct alm_req *req)
{
    const char *cl = alm_req_header(req, "Content-Length");

    if (!req->match.route) {
        if (req->match.method_mismatch)
            alm_reply_error(req, ALM_ERR_METHOD, "method %s not allowed on '%s'", req->method,
                            req->path);
        else
            alm_reply_error(req, ALM_ERR_NOT_FOUND, "no route for '%s'", req->path);
        return true;
    }
    if (cl) {
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);
        if (*end || n > body_cap(req)) {
            alm_reply_error(req, ALM_ERR_TOO_LARGE, "request body larger than %zu bytes",
                            body_cap(req));
            return true;
        }
    }
    return false;
}

static void dispatch(struct alm_req *req)
{
    req->suspended = false;
    req->match.route->fn(req);
    if (!req->suspended && !req->answered) {
        alm_error("http.no_reply", "handler produced no answer", "{s:s}", "route",
                  req->match.route->pattern);
        alm_reply_error(req, ALM_ERR_INTERNAL, "internal error");
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct alm_http *h = cls;
    struct alm_req *req = *con_cls;

    (void)version;
    if (!req) {
        req = req_new(h, conn, url, method);
        *con_cls = req;
        (void)answer_early(req);
        return MHD_YES;
    }
    if (req->answered) {
        /* Answered early: drop what the client still sends. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (!req->too_large &&
            alm_buf_append(&req->body, upload_data, *upload_data_size) == ALM_ERR_TOO_LARGE) {
            req->too_large = true;
            alm_buf_release(&req->body);
        }
        if (req->too_large) {
            req->discarded += *upload_data_size;
            if (req->discarded > DISCARD_FACTOR * body_cap(req))
                return MHD_NO; /* a flood: close without reading the rest */
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->resumed || req->suspended) {
        req->resumed = true;
        dispatch(req);
        return MHD_YES;
    }
    if (req->too_large) {
        alm_reply_error(req, ALM_ERR_TOO_LARGE, "request body larger than %zu bytes",
                        body_cap(req));
        return MHD_YES;
    }
    if (!req->body.data && alm_buf_append(&req->body, "", 0)) /* handlers see a string */
        abort(); /* an empty append cannot pass a cap */
    dispatch(req);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct alm_http *h = cls;
    struct alm_req *req = *con_cls;
    double secs;
    const struct alm_route *route;

    (void)conn;
    if (!req)
        return;
    *con_cls = NULL;
    route = req->match.route;
    secs = (alm_clock_ms_f() - req->start_ms) / 1000.0;
    if (!req->answered)
        req->status = 499; /* the client went away first */
    if (h->opts.observe)
        h->opts.observe(route, req->status, secs);
    alm_log(route && route->flags & ALM_ROUTE_PROBE ? ALM_LOG_DEBUG : ALM_LOG_INFO, "http.request",
            "request done", "{s:s, s:s, s:s, s:s, s:i, s:f, s:I, s:b}", "request_id",
            req->request_id, "method", req->method, "route", route ? route->pattern : "unmatched",
            "path", req->path, "status", req->status, "dur_ms", secs * 1000.0, "bytes",
            (json_int_t)req->sent_bytes, "completed", toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    req_free(req);
    atomic_fetch_sub(&h->inflight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) ALM_PRINTF(2, 0);

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[256];

    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    alm_warn("http.server", "http server message", "{s:s}", "detail", msg);
}

/* Opens the listening socket ourselves, for a clear error naming the address. */
static int open_listener(const char *addr, int *port, struct alm_errbuf *eb)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    struct addrinfo hints = {0}, *res = NULL;
    int fd = -1, one = 1, rc;
    size_t hlen;

    if (!colon || (size_t)(colon - addr) >= sizeof(host)) {
        alm_fail(eb, ALM_ERR_INVALID, "listen address '%s' is not host:port", addr);
        return -1;
    }
    hlen = (size_t)(colon - addr);
    memcpy(host, addr, hlen);
    host[hlen] = '\0';
    if (hlen >= 2 && host[0] == '[') {
        memmove(host, host + 1, hlen - 2);
        host[hlen - 2] = '\0';
    }
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    rc = getaddrinfo(*host ? host : NULL, colon + 1, &hints, &res);
    if (rc != 0) {
        alm_fail(eb, ALM_ERR_INVALID, "cannot resolve listen address '%s': %s", addr,
                 gai_strerror(rc));
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
        alm_fail(eb, ALM_ERR_UNAVAILABLE, "cannot listen on '%s': %s", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    *port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

struct alm_http *alm_http_start(const struct alm_http_opts *opts, struct alm_errbuf *eb)
{
    struct alm_http *h = alm_xcalloc(1, sizeof(*h));
    unsigned threads = opts->threads;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    h->opts = *opts;
    h->listen_fd = open_listener(opts->listen, &h->port, eb);
    if (h->listen_fd < 0) {
        free(h);
        return NULL;
    }
    if (threads == 0)
        threads = (unsigned)(ncpu > 0 ? 2 * ncpu : 2);
    h->mhd = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, h->listen_fd, MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_LIMIT, opts->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        opts->timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_END);
    if (!h->mhd) {
        alm_fail(eb, ALM_ERR_INTERNAL, "cannot start the http server on '%s'", opts->listen);
        close(h->listen_fd);
        free(h);
        return NULL;
    }
    return h;
}

void alm_http_quiesce(struct alm_http *h)
{
    MHD_socket fd;

    atomic_store(&h->closing, true);
    fd = MHD_quiesce_daemon(h->mhd);

    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    h->listen_fd = -1;
}

unsigned alm_http_inflight(const struct alm_http *h)
{
    return atomic_load(&h->inflight);
}

void alm_http_stop(struct alm_http *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->mhd);
    if (h->listen_fd >= 0)
        close(h->listen_fd);
    free(h);
}

int alm_http_port(const struct alm_http *h)
{
    return h->port;
}
