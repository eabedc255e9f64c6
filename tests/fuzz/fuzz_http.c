/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_http.c: request handling end to end, through the real server on a loopback port.
 *
 * LLVMFuzzerInitialize starts alm_http_start() with the health routes and one JSON route
 * written the way API handlers are (body, query and header through alm_req_*, answers
 * through alm_reply_*). Each input is sent as raw bytes over a fresh TCP connection, which
 * is then half-closed; answers are read until the server closes or stays silent for
 * READ_IDLE_MS, so a request the server never finishes cannot hang the fuzzer. An input
 * that does not start with a method gets a POST /fuzz/json request line and headers
 * prepended, so most inputs exercise JSON bodies rather than the request-line parser.
 *
 * Crashes in server threads (ASan, UBSan) abort the process, and libFuzzer reports the
 * input being sent. Environment:
 *   FUZZ_HTTP_LOG=1     keep the server's log lines on stdout (default: /dev/null; they
 *                       are still formatted at debug level, so logging is exercised)
 *   FUZZ_HTTP_STRICT=1  abort on any 500 answer too: the server must answer bad input
 *                       with a 4xx, never by failing to encode its own error */
#include "compat.h"
#include "api/probes.h"
#include "app.h"
#include "health.h"
#include "http_server.h"
#include "log.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Loopback answers take well under a millisecond; an incomplete request gets none, and
 * mutated raw requests often are, so a long wait here would cost most of the run time. */
#define READ_IDLE_MS     20
#define ANSWERED_IDLE_MS 5
#define READ_TOTAL_MS    1000
#define ANSWERS_MAX      (1024 * 1024)
#define MAX_BODY         (64 * 1024)

/* POST /fuzz/json: parses the body like an API handler would, and echoes what it read. */
static void fuzz_json(struct alm_req *req)
{
    const struct alm_buf *body = alm_req_body(req);
    const char *x = alm_req_query(req, "x");
    const char *ctype = alm_req_header(req, "Content-Type");
    json_error_t jerr;
    json_t *doc;

    doc = json_loadb(body->data, body->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        alm_reply_error(req, ALM_ERR_INVALID, "invalid JSON at %d:%d: %s", jerr.line, jerr.column,
                        jerr.text);
        return;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        alm_reply_error(req, ALM_ERR_UNPROCESSABLE, "the body must be a JSON object");
        return;
    }
    /* Reflected into a header: client bytes in answer headers must stay harmless. */
    if (x)
        alm_reply_header(req, "X-Fuzz-X", x);
    alm_reply_json(req, 200,
                   json_pack("{s:o, s:s?, s:s?, s:I, s:s}", "echo", doc, "x", x, "content_type",
                             ctype, "bytes", (json_int_t)body->len, "request_id", alm_req_id(req)));
}

static const struct alm_route routes[] = {
    ALM_HEALTH_ROUTES,
    {"POST", "/fuzz/json", fuzz_json, ALM_ROUTE_BODY},
};

static struct alm_http *server; /* runs until the process exits */
static struct sockaddr_in server_addr;
static bool strict;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static struct alm_config cfg; /* the handlers under test read no setting */
    static struct alm_app app;
    struct alm_errbuf eb = {{0}};
    const char *log = getenv("FUZZ_HTTP_LOG");
    const char *st = getenv("FUZZ_HTTP_STRICT");

    (void)argc;
    (void)argv;
    strict = st && strcmp(st, "1") == 0;
    if (!(log && strcmp(log, "1") == 0)) {
        int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (devnull < 0 || dup2(devnull, STDOUT_FILENO) < 0)
            abort();
        close(devnull);
    }
    alm_log_init("fuzz", ALM_LOG_DEBUG);

    app.svc = "fuzz";
    app.cfg = &cfg;
    app.start_ms = 0;
    /* No checks: /ready reports the empty set, after a refresh that ends at once. */
    app.health = alm_health_new(100, 50, "fuzz");
    alm_health_start(app.health);
    alm_metrics_init(routes, ALM_ARRAY_SIZE(routes));

    struct alm_http_opts opts = {.listen = "127.0.0.1:0",
                                 .threads = 2,
                                 .max_connections = 256,
                                 .timeout_s = 2,
                                 .max_body = MAX_BODY,
                                 .routes = routes,
                                 .nroutes = ALM_ARRAY_SIZE(routes),
                                 .app = &app,
                                 .observe = alm_metrics_observe_http};
    server = alm_http_start(&opts, &eb);
    if (!server) {
        fprintf(stderr, "fuzz_http: cannot start the server: %s\n", eb.msg);
        abort();
    }
    server_addr.sin_family = AF_INET;
    server_addr.sin_port = htons((uint16_t)alm_http_port(server));
    server_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* The server runs until the process exits: stopping it would only add exit-time
     * races to the fuzzer's own teardown. */
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An uppercase token and a space: the input already is a request line. */
static bool starts_with_method(const uint8_t *data, size_t size)
{
    size_t i = 0;

    while (i < size && i < 16 && data[i] >= 'A' && data[i] <= 'Z')
        i++;
    return i > 0 && i < size && data[i] == ' ';
}

static bool send_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false; /* the server closed early, or stopped reading: both are fine */
        c += w;
        n -= (size_t)w;
    }
    return true;
}

/* The answers read so far, framed by their Content-Length. */
struct answers {
    char *buf;
    size_t len, alloc;
    size_t framed; /* bytes of complete answers */
    unsigned done; /* complete final (non-1xx) answers */
    unsigned status500;
};

/* Counts the complete answers in the stream; true when the rest cannot be framed (no
 * Content-Length), in which case only EOF or silence ends the read. */
static bool frame_answers(struct answers *a)
{
    for (;;) {
        const char *start = a->buf + a->framed, *end, *cl;
        size_t hlen, body = 0;
        if (a->len - a->framed < 12)
            return false;
        end = memmem(start, a->len - a->framed, "\r\n\r\n", 4);
        if (!end)
            return false;
        hlen = (size_t)(end + 4 - start);
        if (start[9] == '1') { /* "HTTP/1.1 1xx": an interim answer, no body */
            a->framed += hlen;
            continue;
        }
        cl = memmem(start, hlen, "\r\nContent-Length:", 17);
        if (!cl)
            return true;
        body = strtoul(cl + 17, NULL, 10);
        if (a->len - a->framed < hlen + body)
            return false;
        if (strncmp(start, "HTTP/1.1 500", 12) == 0)
            a->status500++;
        a->framed += hlen + body;
        a->done++;
    }
}

/* Reads answers until EOF, an error, READ_IDLE_MS of silence or READ_TOTAL_MS in all, or
 * until the expected number of answers (0: unknown) is in. libmicrohttpd often misses a
 * FIN that comes with the request and keeps the connection open after its answer, so
 * once at least one complete answer is in, a short silence (ANSWERED_IDLE_MS, enough for
 * the answers to pipelined requests) ends the read too. */
static void read_answers(int fd, struct answers *a, unsigned expected)
{
    int64_t deadline = now_ms() + READ_TOTAL_MS;
    bool unframed = false;

    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - now_ms();
        int idle = a->done > 0 && !unframed ? ANSWERED_IDLE_MS : READ_IDLE_MS;
        int rc;
        ssize_t r;

        if (left <= 0)
            return;
        rc = poll(&pfd, 1, left < idle ? (int)left : idle);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return;
        if (a->alloc - a->len < 8192) {
            if (a->alloc >= ANSWERS_MAX) {
                a->len = a->framed = 0; /* too much to keep: count nothing more */
                unframed = true;
            } else {
                a->alloc = a->alloc ? 2 * a->alloc : 16384;
                a->buf = realloc(a->buf, a->alloc);
                if (!a->buf)
                    abort();
            }
        }
        r = recv(fd, a->buf + a->len, a->alloc - a->len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return;
        a->len += (size_t)r;
        if (!unframed)
            unframed = frame_answers(a);
        if (expected > 0 && a->done >= expected)
            return;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct timeval sndto = {.tv_sec = 0, .tv_usec = READ_IDLE_MS * 1000};
    struct answers a = {0};
    unsigned expected = 0;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        abort();
    /* A server that stops reading must not block us on a full socket buffer. */
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &sndto, sizeof(sndto));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* Closing with a reset leaves no TIME_WAIT behind: thousands of connections a second
     * would otherwise pile them up, and the server drops whatever it still holds. */
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &(struct linger){.l_onoff = 1, .l_linger = 0},
               sizeof(struct linger));
    if (connect(fd, (const struct sockaddr *)&server_addr, sizeof(server_addr)) < 0) {
        fprintf(stderr, "fuzz_http: connect: %s\n", alm_strerror(errno));
        abort();
    }
    if (!starts_with_method(data, size)) {
        expected = 1; /* the whole input is the body of this one request */
        char prefix[160];
        int n = snprintf(prefix, sizeof(prefix),
                         "POST /fuzz/json?x=1 HTTP/1.1\r\nHost: a\r\n"
                         "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                         size);
        if (!send_all(fd, prefix, (size_t)n))
            goto done;
    }
    if (size > 0 && !send_all(fd, data, size))
        goto done;
    shutdown(fd, SHUT_WR);
    read_answers(fd, &a, expected);
    if (strict && a.status500 > 0) {
        fprintf(stderr, "fuzz_http: the server answered 500\n");
        abort();
    }
done:
    free(a.buf);
    close(fd);
    return 0;
}
