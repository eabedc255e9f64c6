/* SPDX-License-Identifier: Apache-2.0 */
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
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Bodies of routes without ALM_ROUTE_BODY (JSON commands) are capped at this. */
#define SMALL_BODY_MAX (1024 * 1024)
#define MAX_HEADERS    8
/* Per-connection buffer for request headers (and reading): libmicrohttpd clears it for
 * every request, so its size costs on every request; 16 KiB still takes large tokens
 * and cookies (bigger header blocks get 431). Bodies are read outside it. */
#define CONNECTION_MEMORY (16 * 1024)

/* How often the housekeeping thread checks deadlines (and picks up sockets to drain). */
#define TICK_MS 50
/* The drain reads into one buffer shared by all drained sockets. */
#define DRAIN_CHUNK (64 * 1024)
/* A connection refused at a limit is cut this long after its 503 unless its head came. */
#define REFUSED_LINGER_MS 1000

/* What a connection is doing, for the deadlines. */
enum conn_phase {
    PHASE_HEAD, /* waiting for a complete request head: since phase_ms */
    PHASE_BODY, /* receiving a body: since phase_ms, body_bytes so far */
    PHASE_BUSY, /* handled or answering: MHD's idle timeout applies */
};

/* One per TCP connection (MHD's socket context), in the server's list while open. */
struct conn {
    struct conn *prev, *next;
    int fd;
    unsigned char addr[16]; /* IPv4 as mapped IPv6 */
    bool counted;           /* in the per-address table */
    bool refused;           /* past a limit: its requests are not served */
    atomic_int phase;
    atomic_llong phase_ms;
    atomic_size_t body_bytes;
    bool cut; /* cut off by the housekeeping thread */
    int64_t opened_ms;
    bool served; /* a request came on it already */
};

/* Connections per client address: a small chained hash table. */
#define ADDR_BUCKETS 256
struct addr_count {
    unsigned char addr[16];
    unsigned n;
    struct addr_count *next;
};

/* A socket handed over after an early answer: read and dropped until its deadline. */
struct drain {
    int fd;
    int64_t deadline_ms;
    size_t left;
    struct drain *next;
};

struct alm_http {
    struct MHD_Daemon *mhd;
    atomic_bool closing; /* quiesced: answers close their connection */
    struct alm_http_opts opts;
    atomic_uint inflight;
    int listen_fd; /* ours: given to MHD, closed once after MHD_stop_daemon */
    bool quiesced;
    int port;
    atomic_size_t body_bytes; /* reserved by bodies in flight */

    pthread_mutex_t mu; /* conns, addrs, nconns, pending drains */
    struct conn *conns;
    unsigned nconns;
    struct addr_count *addrs[ADDR_BUCKETS];
    struct drain *pending; /* handed over, not yet in the epoll set */

    /* Housekeeping thread: deadlines and drains; only it touches draining. */
    pthread_t keeper;
    atomic_bool stopping;
    int epfd;
    struct drain *draining;
    atomic_uint ndrain; /* pending + draining */
};

struct alm_req {
    struct alm_http *http;
    struct MHD_Connection *conn;
    const char *method; /* owned by libmicrohttpd for the request's life */
    const char *path;
    const char *version;
    struct conn *cn; /* its connection */
    struct alm_route_match match;
    char request_id[65];
    struct alm_buf body;
    size_t reserved;    /* of the server's body budget */
    bool body_expected; /* Content-Length > 0 or Transfer-Encoding */
    bool early;         /* answering from the head: answers go out raw, then the drain */
    char *raw;          /* such an answer, formatted */
    size_t raw_len;
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
    void *wait;
    void (*wait_free)(void *);
    int64_t arrived_ms;
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

unsigned alm_req_route_flags(const struct alm_req *req)
{
    return req->match.route ? req->match.route->flags : 0;
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

void alm_req_set_wait(struct alm_req *req, void *wait, void (*free_fn)(void *))
{
    req->wait = wait;
    req->wait_free = free_fn;
}

void *alm_req_wait(const struct alm_req *req)
{
    return req->wait;
}

int64_t alm_req_arrived_ms(const struct alm_req *req)
{
    return req->arrived_ms;
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

/* An answer written straight to the socket, for the hand-over to the drain: what MHD
 * would send, plus Connection: close. */
static void format_raw(struct alm_req *req, int status, const char *content_type, const char *data,
                       size_t len)
{
    struct alm_buf out = ALM_BUF_INIT(0);
    const char *reason = MHD_get_reason_phrase_for((unsigned)status);
    char date[64];
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    alm_buf_putf(&out,
                 "HTTP/1.1 %d %s\r\nConnection: close\r\nDate: %s\r\n"
                 "Content-Length: %zu\r\nContent-Type: %s\r\nX-Request-Id: %s\r\n"
                 "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n",
                 status, reason && *reason ? reason : "Unknown", date, len, content_type,
                 req->request_id);
    for (size_t i = 0; i < req->nextra; i++)
        alm_buf_putf(&out, "%s: %s\r\n", req->extra_headers[i][0], req->extra_headers[i][1]);
    alm_buf_put(&out, "\r\n", 2);
    if (strcmp(req->method, "HEAD") != 0)
        alm_buf_put(&out, data, len);
    free(req->raw);
    req->raw = alm_buf_detach(&out, &req->raw_len);
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
    if (req->early && req->body_expected) {
        format_raw(req, status, content_type, data, len);
        free(data);
        return;
    }
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
        snprintf(req->request_id, sizeof(req->request_id), "%s", in);
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

static void refused(struct alm_http *h, const char *reason)
{
    if (h->opts.refused)
        h->opts.refused(reason);
}

/* ------------------------------------------------------------------ connections */

static unsigned addr_bucket(const unsigned char addr[16])
{
    unsigned v = 2166136261u;

    for (int i = 0; i < 16; i++)
        v = (v ^ addr[i]) * 16777619u;
    return v % ADDR_BUCKETS;
}

/* Adds one connection of addr; returns the new count. Called with h->mu held. */
static unsigned addr_add(struct alm_http *h, const unsigned char addr[16])
{
    struct addr_count **head = &h->addrs[addr_bucket(addr)], *a;

    for (a = *head; a; a = a->next) {
        if (memcmp(a->addr, addr, 16) == 0)
            return ++a->n;
    }
    a = alm_xcalloc(1, sizeof(*a));
    memcpy(a->addr, addr, 16);
    a->n = 1;
    a->next = *head;
    *head = a;
    return 1;
}

static void addr_del(struct alm_http *h, const unsigned char addr[16])
{
    struct addr_count **pp = &h->addrs[addr_bucket(addr)], *a;

    for (; (a = *pp); pp = &a->next) {
        if (memcmp(a->addr, addr, 16) != 0)
            continue;
        if (--a->n == 0) {
            *pp = a->next;
            free(a);
        }
        return;
    }
}

static void conn_addr(struct MHD_Connection *mc, unsigned char out[16])
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;

    memset(out, 0, 16);
    if (sa && sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
    } else if (sa && sa->sa_family == AF_INET) {
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    }
}

static void set_phase(struct conn *c, enum conn_phase p)
{
    if (!c)
        return;
    atomic_store(&c->phase_ms, (long long)alm_clock_ms());
    atomic_store(&c->body_bytes, 0);
    atomic_store(&c->phase, (int)p);
}

/* Past a limit: a canned 503 written at once (best effort: the socket is fresh, so it fits
 * in the send buffer) and our side shut for writing. Its request head, once complete, is
 * not served: the socket goes to the drain (on_request), so that the client reads the 503
 * rather than a reset; one that sends no complete head is cut after REFUSED_LINGER_MS. */
static void refuse(struct conn *c)
{
    static const char body[] = "{\"error\":{\"code\":\"unavailable\",\"message\":\"too many "
                               "connections; try again later\"}}";
    char msg[512];
    int n = snprintf(msg, sizeof(msg),
                     "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: "
                     "1\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n\r\n%s",
                     sizeof(body) - 1, body);

    c->refused = true;
    if (send(c->fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        /* the client is gone already */
    }
    shutdown(c->fd, SHUT_WR);
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct alm_http *h = cls;
    struct conn *c = *socket_context;
    const char *reason = NULL;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        c = alm_xcalloc(1, sizeof(*c));
        c->fd = ci ? ci->connect_fd : -1;
        conn_addr(mc, c->addr);
        set_phase(c, PHASE_HEAD);
        c->opened_ms = alm_clock_ms();
        pthread_mutex_lock(&h->mu);
        c->next = h->conns;
        if (h->conns)
            h->conns->prev = c;
        h->conns = c;
        if (++h->nconns > h->opts.max_connections)
            reason = "max_connections";
        c->counted = true;
        if (addr_add(h, c->addr) > h->opts.max_per_address && h->opts.max_per_address)
            reason = reason ? reason : "per_address";
        if (reason)
            refuse(c);
        pthread_mutex_unlock(&h->mu);
        *socket_context = c;
        if (reason)
            refused(h, reason);
        return;
    }
    if (!c)
        return;
    /* MHD calls this before it closes the socket: once c is out of the list, the
     * housekeeping thread can no longer shut down a descriptor number reused meanwhile. */
    pthread_mutex_lock(&h->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->nconns--;
    if (c->counted)
        addr_del(h, c->addr);
    pthread_mutex_unlock(&h->mu);
    free(c);
    *socket_context = NULL;
}

static struct conn *conn_of(struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* ------------------------------------------------------------------ housekeeping */

/* Whether a whole request head sits in the kernel's buffer of fd, unread: then the
 * client sent it in time and the server is the slow one (the thread that serves the
 * connection is busy with another request), so the head deadline must not cut it. */
static bool head_waiting(int fd)
{
    char buf[8192];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_PEEK | MSG_DONTWAIT);

    if (n <= 0)
        return false;
    buf[n] = '\0';
    return strstr(buf, "\r\n\r\n") != NULL;
}

/* Which deadline c missed, if any; h->mu held. */
static const char *missed(const struct alm_http *h, struct conn *c, int64_t now)
{
    int phase = atomic_load(&c->phase);
    int64_t since = now - (int64_t)atomic_load(&c->phase_ms);

    if (c->cut)
        return NULL;
    if (c->refused)
        return since > REFUSED_LINGER_MS ? "" : NULL; /* counted when refused */
    if (phase == PHASE_HEAD && since > (int64_t)h->opts.head_timeout_ms && !head_waiting(c->fd))
        return "head_timeout";
    /* After the grace period the body must have averaged the minimum rate. */
    if (phase == PHASE_BODY && h->opts.min_body_rate && since > (int64_t)h->opts.head_timeout_ms &&
        (double)atomic_load(&c->body_bytes) <
            (double)h->opts.min_body_rate * (double)since / 1000.0)
        return "slow_body";
    return NULL;
}

static void check_deadlines(struct alm_http *h)
{
    const char *cut[64];
    size_t ncut = 0;
    int64_t now = alm_clock_ms();

    pthread_mutex_lock(&h->mu);
    for (struct conn *c = h->conns; c; c = c->next) {
        const char *why = missed(h, c, now);
        if (!why)
            continue;
        /* MHD sees the end of the stream on its next read and closes the connection. */
        c->cut = true;
        shutdown(c->fd, SHUT_RDWR);
        if (!*why)
            continue;
        if (ncut < ALM_ARRAY_SIZE(cut))
            cut[ncut++] = why;
        else
            refused(h, why);
    }
    pthread_mutex_unlock(&h->mu);
    for (size_t i = 0; i < ncut; i++)
        refused(h, cut[i]);
}

static void drain_close(struct alm_http *h, struct drain *d)
{
    epoll_ctl(h->epfd, EPOLL_CTL_DEL, d->fd, NULL);
    close(d->fd);
    free(d);
    atomic_fetch_sub(&h->ndrain, 1);
}

/* Reads what is there; true when the drain of d is over. */
static bool drain_read(struct drain *d, char *buf)
{
    for (;;) {
        ssize_t n = recv(d->fd, buf, DRAIN_CHUNK, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return true;
        if (n < 0)
            return errno != EINTR ? false : drain_read(d, buf);
        if ((size_t)n >= d->left)
            return true;
        d->left -= (size_t)n;
    }
}

static void drain_tick(struct alm_http *h, char *buf, int wait_ms)
{
    struct epoll_event ev[64];
    struct drain *add, **pp;
    int64_t now;
    int n;

    pthread_mutex_lock(&h->mu);
    add = h->pending;
    h->pending = NULL;
    pthread_mutex_unlock(&h->mu);
    while (add) {
        struct drain *next = add->next;
        struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = add};
        add->next = h->draining;
        h->draining = add;
        if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, add->fd, &e) < 0)
            add->deadline_ms = 0; /* closed on this tick's sweep */
        add = next;
    }
    n = epoll_wait(h->epfd, ev, (int)ALM_ARRAY_SIZE(ev), wait_ms);
    for (int i = 0; i < n; i++) {
        struct drain *d = ev[i].data.ptr;
        if (drain_read(d, buf))
            d->deadline_ms = 0;
    }
    now = alm_clock_ms();
    for (pp = &h->draining; *pp;) {
        struct drain *d = *pp;
        if (d->deadline_ms > now) {
            pp = &d->next;
            continue;
        }
        *pp = d->next;
        drain_close(h, d);
    }
}

static void *keeper_thread(void *arg)
{
    struct alm_http *h = arg;
    char *buf = alm_xmalloc(DRAIN_CHUNK);
    int64_t next_check = 0;

    while (!atomic_load(&h->stopping)) {
        drain_tick(h, buf, TICK_MS);
        if (alm_clock_ms() >= next_check) {
            check_deadlines(h);
            if (h->opts.tick)
                h->opts.tick(h->opts.app);
            next_check = alm_clock_ms() + TICK_MS;
        }
    }
    /* Stopping: take what is pending, then close everything. Sockets handed over later,
     * while MHD stops, are closed by alm_http_stop(). */
    drain_tick(h, buf, 0);
    for (struct drain *d = h->draining; d; d = d->next)
        d->deadline_ms = 0;
    drain_tick(h, buf, 0);
    free(buf);
    return NULL;
}

/* Gives the drain a descriptor of its own for fd; MHD then closes its side (shutting
 * down writing only: the client gets end of stream) while the drain reads and drops what
 * the client still sends, so that a client writing its whole body before reading sees
 * the answer, not a reset. */
static void drain_add(struct alm_http *h, int fd)
{
    struct drain *d;
    int dup;

    if (!h->opts.drain_bytes)
        return;
    if (atomic_fetch_add(&h->ndrain, 1) >= h->opts.max_connections ||
        (dup = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
        atomic_fetch_sub(&h->ndrain, 1);
        return;
    }
    d = alm_xcalloc(1, sizeof(*d));
    d->fd = dup;
    d->left = h->opts.drain_bytes;
    d->deadline_ms = alm_clock_ms() + h->opts.drain_ms;
    pthread_mutex_lock(&h->mu);
    d->next = h->pending;
    h->pending = d;
    pthread_mutex_unlock(&h->mu);
}

/* Writes the early answer to the socket and hands the socket to the drain. */
static void hand_over(struct alm_req *req)
{
    struct conn *c = req->cn;
    ssize_t n;

    if (!c || c->fd < 0)
        return;
    n = send(c->fd, req->raw, req->raw_len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n == (ssize_t)req->raw_len) /* else the client is not reading: no point */
        drain_add(req->http, c->fd);
}

/* ------------------------------------------------------------------ requests */

static struct alm_req *req_new(struct alm_http *h, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version)
{
    struct alm_req *req = alm_xcalloc(1, sizeof(*req));

    req->http = h;
    req->conn = conn;
    req->cn = conn_of(conn);
    req->method = method;
    req->path = url;
    req->version = version;
    req->start_ms = alm_clock_ms_f();
    req->arrived_ms = req->cn && !req->cn->served ? req->cn->opened_ms : alm_clock_ms();
    if (req->cn)
        req->cn->served = true;
    set_request_id(req);
    alm_route_find(h->opts.routes, h->opts.nroutes, method, url, &req->match);
    req->body = (struct alm_buf)ALM_BUF_INIT(body_cap(req));
    atomic_fetch_add(&h->inflight, 1);
    return req;
}

static void req_free(struct alm_req *req)
{
    if (req->wait_free)
        req->wait_free(req->wait);
    if (req->data_free)
        req->data_free(req->data);
    for (size_t i = 0; i < req->nextra; i++) {
        free(req->extra_headers[i][0]);
        free(req->extra_headers[i][1]);
    }
    alm_buf_release(&req->body);
    atomic_fetch_sub(&req->http->body_bytes, req->reserved);
    free(req->raw);
    free(req);
}

/* Takes n more bytes of the body budget; false when it is spent. */
static bool reserve(struct alm_req *req, size_t n)
{
    struct alm_http *h = req->http;
    size_t was = atomic_fetch_add(&h->body_bytes, n);

    if (h->opts.body_budget && was + n > h->opts.body_budget) {
        atomic_fetch_sub(&h->body_bytes, n);
        return false;
    }
    req->reserved += n;
    return true;
}

/* The framing headers, all of their occurrences. */
struct framing {
    unsigned ncl, nte, nhost;
    bool cl_differ, cl_bad, te_other;
    unsigned long long cl;
};

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct framing *f = cls;

    (void)kind;
    value = value ? value : "";
    if (strcasecmp(key, "Content-Length") == 0) {
        char *end;
        unsigned long long n;
        errno = 0;
        n = strtoull(value, &end, 10);
        if (!*value || *end || errno || strspn(value, "0123456789") != strlen(value))
            f->cl_bad = true;
        if (f->ncl++ && n != f->cl)
            f->cl_differ = true;
        f->cl = n;
    } else if (strcasecmp(key, "Transfer-Encoding") == 0) {
        /* Only "chunked", once: anything else (gzip, "gzip, chunked") is not supported. */
        if (f->nte++ || strcasecmp(value, "chunked") != 0)
            f->te_other = true;
    } else if (strcasecmp(key, "Host") == 0) {
        f->nhost++;
    }
    return MHD_YES;
}

/* RFC 9112 framing; true when the request was answered. */
static bool answer_framing(struct alm_req *req, const struct framing *f)
{
    bool http11 = req->version && strcmp(req->version, "HTTP/1.1") == 0;

    if (f->ncl && f->nte) {
        alm_reply_error(req, ALM_ERR_INVALID,
                        "Content-Length together with Transfer-Encoding is not accepted");
        return true;
    }
    if (f->cl_bad || f->cl_differ) {
        alm_reply_error(req, ALM_ERR_INVALID, "%s",
                        f->cl_bad ? "Content-Length is not a decimal number"
                                  : "Content-Length headers differ");
        return true;
    }
    if (f->te_other) {
        alm_reply_header(req, "Connection", "close");
        alm_reply_error(req, ALM_ERR_NOT_IMPLEMENTED,
                        "Transfer-Encoding other than chunked is not supported");
        return true;
    }
    if ((http11 && f->nhost == 0) || f->nhost > 1) {
        alm_reply_error(req, ALM_ERR_INVALID, "%s",
                        f->nhost ? "more than one Host header" : "HTTP/1.1 requires a Host header");
        return true;
    }
    return false;
}

/* Checks that need only the headers; true when the request was answered already. */
static bool answer_early(struct alm_req *req)
{
    struct framing f = {0};

    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, scan_header, &f);
    req->body_expected = f.nte || (f.ncl && f.cl > 0) || f.cl_bad;
    if (answer_framing(req, &f))
        return true;
    if (!req->match.route) {
        if (req->match.method_mismatch)
            alm_reply_error(req, ALM_ERR_METHOD, "method %s not allowed on '%s'", req->method,
                            req->path);
        else
            alm_reply_error(req, ALM_ERR_NOT_FOUND, "no route for '%s'", req->path);
        return true;
    }
    if (req->match.route->flags & (ALM_ROUTE_AUTH | ALM_ROUTE_KB) && req->http->opts.admit &&
        !req->http->opts.admit(req))
        return true;
    if (f.ncl && f.cl > body_cap(req)) {
        alm_reply_error(req, ALM_ERR_TOO_LARGE, "request body larger than %zu bytes",
                        body_cap(req));
        return true;
    }
    if (f.ncl && f.cl > 0) {
        if (!reserve(req, (size_t)f.cl)) {
            refused(req->http, "body_budget");
            alm_reply_error(req, ALM_ERR_UNAVAILABLE, "too many uploads in progress; try again");
            return true;
        }
        /* Known length: one allocation of the right size. */
        req->body.data = alm_xmalloc((size_t)f.cl + 1);
        req->body.data[0] = '\0';
        req->body.alloc = (size_t)f.cl + 1;
    }
    if (req->body_expected)
        set_phase(req->cn, PHASE_BODY);
    return false;
}

static void dispatch(struct alm_req *req)
{
    set_phase(req->cn, PHASE_BUSY);
    req->suspended = false;
    req->match.route->fn(req);
    if (!req->suspended && !req->answered) {
        alm_error("http.no_reply", "handler produced no answer", "{s:s}", "route",
                  req->match.route->pattern);
        alm_reply_error(req, ALM_ERR_INTERNAL, "internal error");
    }
}

/* MHD reports returning MHD_NO as an application error; after a hand-over it is not. */
static _Thread_local bool handing_over;

/* Answers from the head or mid-body with the rest of the body unread: write the answer
 * ourselves, hand the socket to the drain, let MHD close its side. */
static enum MHD_Result finish_early(struct alm_req *req)
{
    hand_over(req);
    handing_over = true;
    return MHD_NO;
}

/* Mid-body: the body passed its cap or the budget. */
static enum MHD_Result answer_mid_body(struct alm_req *req, enum alm_err err)
{
    alm_buf_release(&req->body);
    req->early = true;
    if (err == ALM_ERR_TOO_LARGE) {
        alm_reply_error(req, ALM_ERR_TOO_LARGE, "request body larger than %zu bytes",
                        body_cap(req));
    } else {
        refused(req->http, "body_budget");
        alm_reply_error(req, ALM_ERR_UNAVAILABLE, "too many uploads in progress; try again");
    }
    return finish_early(req);
}

static enum MHD_Result take_body(struct alm_req *req, const char *data, size_t n)
{
    struct conn *c = req->cn;
    size_t have = req->body.len;

    if (c)
        atomic_fetch_add(&c->body_bytes, n);
    if (have + n > body_cap(req))
        return answer_mid_body(req, ALM_ERR_TOO_LARGE);
    /* Chunked bodies (no Content-Length) take from the budget as they grow. */
    if (have + n > req->reserved && !reserve(req, have + n - req->reserved))
        return answer_mid_body(req, ALM_ERR_UNAVAILABLE);
    if (alm_buf_append(&req->body, data, n))
        return answer_mid_body(req, ALM_ERR_TOO_LARGE);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct alm_http *h = cls;
    struct alm_req *req = *con_cls;

    handing_over = false; /* MHD logs right after the call that set it, if at all */
    if (!req) {
        struct conn *c = conn_of(conn);
        if (c && c->refused) { /* past a limit: answered 503 already */
            drain_add(h, c->fd);
            handing_over = true;
            return MHD_NO;
        }
        req = req_new(h, conn, url, method, version);
        *con_cls = req;
        req->early = true;
        if (answer_early(req) && req->raw)
            return finish_early(req);
        req->early = false;
        return MHD_YES;
    }
    if (req->answered) {
        /* Answered early without a body expected: drop anything the client still sends. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return take_body(req, upload_data, n);
    }
    if (req->resumed || req->suspended) {
        req->resumed = true;
        dispatch(req);
        return MHD_YES;
    }
    if (!req->body.data && alm_buf_append(&req->body, "", 0)) /* handlers see a string */
        abort(); /* an empty append cannot pass a cap */
    dispatch(req);
    return MHD_YES;
}

/* The path for the log: bytes outside printable ASCII, and '%', '"' and '\\', as %XX, so
 * that every line is valid JSON whatever the client sent. */
static char *log_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = alm_xmalloc(3 * n + 1), *o = out;

    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p > 0x20 && *p < 0x7f && *p != '%' && *p != '"' && *p != '\\') {
            *o++ = (char)*p;
            continue;
        }
        *o++ = '%';
        *o++ = hex[*p >> 4];
        *o++ = hex[*p & 15];
    }
    *o = '\0';
    return out;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct alm_http *h = cls;
    struct alm_req *req = *con_cls;
    double secs;
    const struct alm_route *route;
    char *path, *method;

    if (!req)
        return;
    *con_cls = NULL;
    set_phase(conn_of(conn), PHASE_HEAD); /* the next request's head is due from now */
    route = req->match.route;
    secs = (alm_clock_ms_f() - req->start_ms) / 1000.0;
    if (!req->answered)
        req->status = 499; /* the client went away first */
    if (h->opts.observe)
        h->opts.observe(route, req->status, secs);
    path = log_escape(req->path);
    method = log_escape(req->method);
    alm_log(route && route->flags & ALM_ROUTE_PROBE ? ALM_LOG_DEBUG : ALM_LOG_INFO, "http.request",
            "request done", "{s:s, s:s, s:s, s:s, s:i, s:f, s:I, s:b}", "request_id",
            req->request_id, "method", method, "route", route ? route->pattern : "unmatched",
            "path", path, "status", req->status, "dur_ms", secs * 1000.0, "bytes",
            (json_int_t)req->sent_bytes, "completed", toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    free(path);
    free(method);
    req_free(req);
    atomic_fetch_sub(&h->inflight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) ALM_PRINTF(2, 0);

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[256];

    (void)cls;
    if (handing_over) {
        handing_over = false; /* "Application reported internal error": ours, on purpose */
        return;
    }
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    /* What clients do to their own connections is not ours to warn about: a flood of
     * them would flood the log. */
    alm_log(strstr(msg, "remote side") || strstr(msg, "reset") || strstr(msg, "timed out")
                ? ALM_LOG_DEBUG
                : ALM_LOG_WARN,
            "http.server", "http server message", "{s:s}", "detail", msg);
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
        alm_fail(eb, ALM_ERR_UNAVAILABLE, "cannot listen on '%s': %s", addr, alm_strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
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
    unsigned mhd_limit;

    h->opts = *opts;
    if (!h->opts.head_timeout_ms)
        h->opts.head_timeout_ms = 1000 * (opts->timeout_s ? opts->timeout_s : 30);
    h->listen_fd = open_listener(opts->listen, &h->port, eb);
    if (h->listen_fd < 0) {
        free(h);
        return NULL;
    }
    h->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (h->epfd < 0) {
        alm_fail(eb, ALM_ERR_INTERNAL, "cannot create an epoll set: %s", alm_strerror(errno));
        close(h->listen_fd);
        free(h);
        return NULL;
    }
    pthread_mutex_init(&h->mu, NULL);
    if (threads == 0)
        threads = (unsigned)(ncpu > 0 ? 2 * ncpu : 2);
    /* Our limits refuse with a 503 at once (on_connection); MHD's own limit, which would
     * leave connections hanging in the backlog, stays out of reach above them. */
    mhd_limit = 2 * opts->max_connections + 16 * threads;
    h->mhd = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, h->listen_fd, MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_LIMIT, mhd_limit, MHD_OPTION_CONNECTION_TIMEOUT, opts->timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_END);
    if (!h->mhd) {
        alm_fail(eb, ALM_ERR_INTERNAL, "cannot start the http server on '%s'", opts->listen);
        close(h->epfd);
        close(h->listen_fd);
        pthread_mutex_destroy(&h->mu);
        free(h);
        return NULL;
    }
    pthread_create(&h->keeper, NULL, keeper_thread, h);
    pthread_setname_np(h->keeper, "alm-http-keep");
    return h;
}

void alm_http_quiesce(struct alm_http *h)
{
    atomic_store(&h->closing, true);
    if (h->quiesced)
        return;
    /* MHD stops using the socket, but its threads may still hold it until
     * MHD_stop_daemon: it stays open (and ours) until then. */
    (void)MHD_quiesce_daemon(h->mhd);
    h->quiesced = true;
}

unsigned alm_http_inflight(const struct alm_http *h)
{
    return atomic_load(&h->inflight);
}

void alm_http_stop(struct alm_http *h)
{
    if (!h)
        return;
    atomic_store(&h->stopping, true);
    pthread_join(h->keeper, NULL);
    /* Quiesced first, so that MHD_stop_daemon leaves the listening socket to us. */
    alm_http_quiesce(h);
    MHD_stop_daemon(h->mhd);
    close(h->listen_fd);
    while (h->pending) {
        struct drain *d = h->pending;
        h->pending = d->next;
        close(d->fd);
        free(d);
    }
    close(h->epfd);
    for (size_t i = 0; i < ADDR_BUCKETS; i++) {
        while (h->addrs[i]) {
            struct addr_count *a = h->addrs[i];
            h->addrs[i] = a->next;
            free(a);
        }
    }
    pthread_mutex_destroy(&h->mu);
    free(h);
}

int alm_http_port(const struct alm_http *h)
{
    return h->port;
}
