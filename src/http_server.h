/* SPDX-License-Identifier: Apache-2.0 */
/* http_server.h: the HTTP server (libmicrohttpd), one struct alm_req per request.
 *
 * A handler answers exactly once through alm_reply_*(). Every answer is JSON (errors are
 * {"error":{"code","message","request_id"}}) and carries X-Request-Id. A handler that
 * must wait for another thread (readiness checks) suspends its request, so no server
 * thread is held, and the waker resumes it: the handler then runs again with
 * alm_req_resumed() true. The request and everything it owns is freed when libmicrohttpd
 * reports it completed: one free point per request. */
#pragma once
#include "compat.h"
#include "err.h"
#include "mem.h"
#include "router.h"

#include <jansson.h>

struct alm_http;
struct alm_req;

/* Called when a request is finished, for metrics: route is NULL when nothing matched. */
typedef void (*alm_http_observer)(const struct alm_route *route, int status, double seconds);
/* Called when the server refuses or cuts off a connection itself, for metrics. reason is
 * one of ALM_HTTP_REFUSAL_REASONS. */
typedef void (*alm_http_refusal_observer)(const char *reason);

/* Every reason a connection is refused or cut off, for metrics with a fixed label set:
 * at the global connection limit, at the per-address limit, a request head not complete
 * within the head deadline, a body slower than the minimum rate, the body memory budget
 * exhausted (a 503). */
#define ALM_HTTP_REFUSAL_REASONS                                                                   \
    {                                                                                              \
        "max_connections", "per_address", "head_timeout", "slow_body", "body_budget"               \
    }

struct alm_http_opts {
    const char *listen; /* host:port */
    unsigned threads;   /* 0: two per CPU */
    unsigned max_connections;
    unsigned max_per_address; /* connections from one client address; 0: no limit */
    unsigned timeout_s;       /* idle connections */
    /* A request head (request line and headers) must be complete this long after the
     * connection opened or its previous answer was sent, however the bytes trickle in. */
    unsigned head_timeout_ms;
    /* Once a body has been arriving for head_timeout_ms, it must average at least this
     * many bytes per second; 0: no minimum. */
    size_t min_body_rate;
    size_t max_body;    /* for ALM_ROUTE_BODY routes */
    size_t body_budget; /* bytes of request bodies held at once, all requests; 0: none */
    /* After an answer sent before the body was read, up to drain_bytes of the body are
     * read and dropped within drain_ms, so that the client sees the answer. */
    size_t drain_bytes;
    unsigned drain_ms;
    const struct alm_route *routes;
    size_t nroutes;
    void *app; /* handed to handlers through alm_req_app() */
    alm_http_observer observe;
    alm_http_refusal_observer refused;
    /* For routes flagged ALM_ROUTE_AUTH or ALM_ROUTE_KB: runs as soon as the request head
     * is complete, before any body is read; false when it answered (401, 403, 404, 503),
     * and then the body is never buffered. */
    bool (*admit)(struct alm_req *req);
    /* Called every few tens of milliseconds on the server's housekeeping thread, for the
     * app's own deadlines (requests suspended while they wait); may be NULL. */
    void (*tick)(void *app);
};

/* Binds and starts serving; NULL with eb filled when the address cannot be used. */
struct alm_http *alm_http_start(const struct alm_http_opts *opts, struct alm_errbuf *eb);
/* Stops accepting new connections; open ones are still served. */
void alm_http_quiesce(struct alm_http *h);
/* Requests received and not yet answered and sent. */
unsigned alm_http_inflight(const struct alm_http *h);
/* Closes every connection, then the listening socket (once), and frees h. */
void alm_http_stop(struct alm_http *h);
/* The port actually bound (useful with port 0). */
int alm_http_port(const struct alm_http *h);

void *alm_req_app(const struct alm_req *req);
const char *alm_req_method(const struct alm_req *req);
const char *alm_req_path(const struct alm_req *req);
const char *alm_req_id(const struct alm_req *req);
/* Path placeholder i of the matched route ("" when absent). */
const char *alm_req_param(const struct alm_req *req, size_t i);
const char *alm_req_header(const struct alm_req *req, const char *name);
/* Flags of the matched route (0 when none matched). */
unsigned alm_req_route_flags(const struct alm_req *req);
const char *alm_req_query(const struct alm_req *req, const char *name);
/* The request body (borrowed; NUL-terminated). */
const struct alm_buf *alm_req_body(const struct alm_req *req);
bool alm_req_resumed(const struct alm_req *req);
/* The peer's address as text ("127.0.0.1", "::1"); "" when unknown. */
void alm_req_peer(const struct alm_req *req, char *out, size_t n);
/* Per-request slot for the handler's own state, kept across suspension. The handler owns
 * what it stores; free_fn (may be NULL) is called when the request is freed. */
void alm_req_set_data(struct alm_req *req, void *data, void (*free_fn)(void *));
void *alm_req_data(const struct alm_req *req);
/* The same for what a shared helper suspends the request for (the api's wait for a pooled
 * connection), apart from the handler's own slot. */
void alm_req_set_wait(struct alm_req *req, void *wait, void (*free_fn)(void *));
void *alm_req_wait(const struct alm_req *req);
/* alm_clock_ms() when the request could first have been read: its connection's accept
 * for the first request on it (a server thread busy with another request may read it
 * much later), when its head was complete for later ones (keep-alive idles between). */
int64_t alm_req_arrived_ms(const struct alm_req *req);

/* Suspends the request; alm_req_resume() (from any thread) runs its handler again. */
void alm_req_suspend(struct alm_req *req);
void alm_req_resume(struct alm_req *req);

/* Adds a header to the coming answer; name and value are copied. */
void alm_reply_header(struct alm_req *req, const char *name, const char *value);
/* Answers with body (taken, also on failure) as JSON of the given content type. */
void alm_reply_json_as(struct alm_req *req, int status, const char *content_type, json_t *body);
void alm_reply_json(struct alm_req *req, int status, json_t *body);
/* Answers with a raw body (taken). */
void alm_reply_raw(struct alm_req *req, int status, const char *content_type, char *data,
                   size_t len);
void alm_reply_error(struct alm_req *req, enum alm_err err, const char *fmt, ...) ALM_PRINTF(3, 4);

/* For http_stream.c: the request's libmicrohttpd connection, and queueing a response
 * (struct MHD_Response *) with the headers every answer carries; the caller still
 * destroys its reference. */
void *alm_req_connection(const struct alm_req *req);
void alm_reply_response(struct alm_req *req, int status, const char *content_type, void *response);
