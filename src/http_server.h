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

struct alm_http_opts {
    const char *listen; /* host:port */
    unsigned threads;   /* 0: two per CPU */
    unsigned max_connections;
    unsigned timeout_s;
    size_t max_body; /* for ALM_ROUTE_BODY routes */
    const struct alm_route *routes;
    size_t nroutes;
    void *app; /* handed to handlers through alm_req_app() */
    alm_http_observer observe;
};

/* Binds and starts serving; NULL with eb filled when the address cannot be used. */
struct alm_http *alm_http_start(const struct alm_http_opts *opts, struct alm_errbuf *eb);
/* Stops accepting new connections; open ones are still served. */
void alm_http_quiesce(struct alm_http *h);
/* Requests received and not yet answered and sent. */
unsigned alm_http_inflight(const struct alm_http *h);
/* Closes every connection and frees h. */
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
