/* SPDX-License-Identifier: Apache-2.0 */
/* err.h: the one error enum of the project and its mapping to HTTP. */
#pragma once
#include "compat.h"

enum alm_err {
    ALM_OK = 0,
    ALM_ERR_NOMEM,
    ALM_ERR_INVALID,         /* bad client or caller input -> 400 */
    ALM_ERR_UNAUTHORIZED,    /* -> 401 */
    ALM_ERR_FORBIDDEN,       /* -> 403 */
    ALM_ERR_NOT_FOUND,       /* -> 404 */
    ALM_ERR_METHOD,          /* -> 405 */
    ALM_ERR_CONFLICT,        /* -> 409 */
    ALM_ERR_TOO_LARGE,       /* over a configured cap -> 413 */
    ALM_ERR_MEDIA_TYPE,      /* -> 415 */
    ALM_ERR_UNPROCESSABLE,   /* well-formed but unacceptable -> 422 */
    ALM_ERR_RATE_LIMITED,    /* -> 429 */
    ALM_ERR_TIMEOUT,         /* -> 504 */
    ALM_ERR_UNAVAILABLE,     /* dependency down, retryable -> 503 */
    ALM_ERR_UPSTREAM,        /* dependency answered with an error -> 502 */
    ALM_ERR_SHUTTING_DOWN,   /* -> 503 */
    ALM_ERR_INTERNAL,        /* a bug, logged with detail -> 500 */
    ALM_ERR_NOT_IMPLEMENTED, /* a protocol feature we do not support -> 501 */
};

/* Detail of an error: lower-case, no final period, never a secret. */
struct alm_errbuf {
    char msg[256];
};

/* Stable snake_case name for logs and JSON ("not_found"). */
const char *alm_err_name(enum alm_err err);
int alm_err_http_status(enum alm_err err);
/* Fills eb and returns err, so that "return alm_fail(eb, ALM_ERR_X, ...)" reads well. */
enum alm_err alm_fail(struct alm_errbuf *eb, enum alm_err err, const char *fmt, ...)
    ALM_PRINTF(3, 4);
/* Input that no retry can fix (bad, unprocessable, unsupported or too large): the job
 * fails at once. */
bool alm_err_permanent(enum alm_err err);
/* A dependency is unreachable, refusing or shedding load: nothing to blame the input for.
 * Other errors (timeouts, odd replies) are ambiguous: the worker looks at its
 * dependencies before it blames the document (worker.c). */
bool alm_err_outage(enum alm_err err);
/* The text of an errno value, for messages. The C library's own text function shares one
 * buffer among threads; this one is the calling thread's, valid until its next call. */
const char *alm_strerror(int errnum);
