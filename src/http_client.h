/* SPDX-License-Identifier: Apache-2.0 */
/* http_client.h: the one adapter to libcurl. The outgoing HTTP clients (embeddings,
 * Qdrant, chat, the healthcheck command) build their headers, send their requests and
 * turn the outcome into our error here. (alm_http_* without "client" is the server,
 * http_server.h.) */
#pragma once
#include "compat.h"
#include "err.h"
#include "mem.h"

#include <curl/curl.h>
#include <stdio.h>

/* ---------------------------------------------------------------- process */

/* Once, before any thread exists; false when libcurl cannot start. */
bool alm_http_client_global_init(void);
void alm_http_client_global_cleanup(void);
/* libcurl's version line, for "almanac version". */
const char *alm_http_client_version(void);

/* ---------------------------------------------------------------- headers */

/* The headers of a request: "Content-Type: <content_type>" and "Accept: <accept>" when
 * set, no "Expect: 100-continue" round trip before large bodies, and, when secret is set
 * and not empty, the line "<secret_prefix><secret>" (e.g. "Authorization: Bearer ",
 * "api-key: "). Owned by the caller, or by the client it is given to; aborts when out of
 * memory. */
struct curl_slist *alm_http_client_headers(const char *content_type, const char *accept,
                                           const char *secret_prefix, const char *secret);
/* Wipes every header (they may carry an API key), then frees the list. */
void alm_http_client_headers_free(struct curl_slist *list);

/* ---------------------------------------------------------------- requests */

/* A reply body read through a capped buffer (its cap must not be 0); too_large tells a
 * cap hit from other write errors. The caller releases buf. */
struct alm_http_sink {
    struct alm_buf buf;
    bool too_large;
};

/* A body read as it arrives (the chat client's event stream). */
struct alm_http_client_stream {
    /* Each header line as it arrives, the status line first, of every answer (interim
     * ones too); NULL for none. */
    void (*on_header)(void *arg, const char *line, size_t n);
    /* Each piece of the body of the answer whose HTTP status is status; false ends the
     * transfer (ALM_HTTP_CLIENT_STOPPED). */
    bool (*on_data)(void *arg, long status, const char *p, size_t n);
    /* Polled while the transfer runs, at least once a second; false ends it
     * (ALM_HTTP_CLIENT_STOPPED). NULL for none. */
    bool (*keep_going)(void *arg);
    void *arg;
};

/* A multipart/form-data body of one file part, read from in as it goes (chunked: its size
 * need not be known). A read error ends the transfer (ALM_HTTP_CLIENT_STOPPED). */
struct alm_http_client_upload {
    const char *field;
    const char *filename;
    const char *type;
    FILE *in;
};

struct alm_http_client_request {
    const char *method; /* NULL: GET, or POST when there is a body */
    const char *url;
    const char *body;                            /* JSON or other text; NULL for none */
    const struct alm_http_client_upload *upload; /* instead of body; NULL for none */
    int timeout_ms; /* bounds the whole transfer, and the connect within it */
    /* When set, a transfer that may take hours: timeout_ms bounds only the connect, and
     * stall_ms without a byte moving ends it (both ALM_HTTP_CLIENT_TIMEOUT). */
    int stall_ms;
    bool compressed; /* offers every encoding libcurl can decode */
    /* Where the body goes: sink, else stream, else nowhere. A reply that announces or
     * grows past sink's cap ends the transfer (ALM_HTTP_CLIENT_TOO_LARGE). */
    struct alm_http_sink *sink;
    struct alm_http_client_stream *stream;
};

/* How a transfer ended, whatever the HTTP status. */
enum alm_http_client_fault {
    ALM_HTTP_CLIENT_DONE = 0,  /* an answer arrived: the status says which */
    ALM_HTTP_CLIENT_TIMEOUT,   /* the request's timeout passed */
    ALM_HTTP_CLIENT_REFUSED,   /* nothing accepts connections there */
    ALM_HTTP_CLIENT_NO_HOST,   /* the host name does not resolve */
    ALM_HTTP_CLIENT_BROKEN,    /* the connection broke: sending, receiving, or a cut reply */
    ALM_HTTP_CLIENT_TOO_LARGE, /* the reply passed the sink's cap */
    ALM_HTTP_CLIENT_STOPPED,   /* a stream callback ended it */
    ALM_HTTP_CLIENT_FAILED,    /* anything else (TLS, protocol...): detail says what */
};

struct alm_http_client_result {
    enum alm_http_client_fault fault;
    const char *detail; /* libcurl's words for the fault (static); "" when DONE */
    long status;        /* the answer's HTTP status; 0 when none arrived */
    /* The answer's Retry-After in milliseconds (alm_http_client_retry_after_ms), or -1. */
    int64_t retry_after_ms;
    /* The request's timeouts and its sink's cap (0 for none), for the messages. */
    int timeout_ms;
    int stall_ms;
    size_t cap;
};

/* A client: an easy handle, reused so that connections are kept alive, and the headers
 * every request sends. Used by one thread at a time. */
struct alm_http_client;

/* headers (taken, NULL for none) are wiped and freed with the client; aborts when out of
 * memory. */
struct alm_http_client *alm_http_client_open(struct curl_slist *headers);
void alm_http_client_close(struct alm_http_client *h);
/* Sends req and waits for the end of the reply; res says how it went. Only http and
 * https, no redirects, no signals (the clients run in threads). */
void alm_http_client_perform(struct alm_http_client *h, const struct alm_http_client_request *req,
                             struct alm_http_client_result *res);
/* s percent-encoded for a URL path segment (a new string); aborts when out of memory. */
char *alm_http_client_escape(const char *s);

/* ---------------------------------------------------------------- outcomes */

/* The error of a finished request, never quoting the URL or the answer's text (which may
 * echo a key); ALM_OK for a 2xx answer. An endpoint that cannot be reached or talked to
 * (refused, unresolved, a broken connection, TLS) or that sheds load (429, 5xx) is an
 * outage (alm_err_outage); a timeout is ALM_ERR_TIMEOUT; a reply past the sink's cap is
 * ALM_ERR_TOO_LARGE; any other answer is the endpoint's refusal (ALM_ERR_UPSTREAM).
 * *transient (when not NULL) says whether the same request may pass later: timeouts,
 * refused, unresolved or broken connections, 429 and 5xx. */
enum alm_err alm_http_client_error(const struct alm_http_client_result *r, bool *transient,
                                   struct alm_errbuf *eb);
/* A Retry-After value in delay-seconds as milliseconds, at most a day; -1 when it is not
 * one (absent, empty, or an HTTP date: the caller's backoff applies). */
int64_t alm_http_client_retry_after_ms(const char *value);
