/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

static const struct {
    const char *name;
    int status;
} table[] = {
    [ALM_OK] = {"ok", 200},
    [ALM_ERR_NOMEM] = {"out_of_memory", 503},
    [ALM_ERR_INVALID] = {"invalid_request", 400},
    [ALM_ERR_UNAUTHORIZED] = {"unauthorized", 401},
    [ALM_ERR_FORBIDDEN] = {"forbidden", 403},
    [ALM_ERR_NOT_FOUND] = {"not_found", 404},
    [ALM_ERR_METHOD] = {"method_not_allowed", 405},
    [ALM_ERR_CONFLICT] = {"conflict", 409},
    [ALM_ERR_TOO_LARGE] = {"payload_too_large", 413},
    [ALM_ERR_MEDIA_TYPE] = {"unsupported_media_type", 415},
    [ALM_ERR_UNPROCESSABLE] = {"unprocessable", 422},
    [ALM_ERR_RATE_LIMITED] = {"rate_limited", 429},
    [ALM_ERR_TIMEOUT] = {"timeout", 504},
    [ALM_ERR_UNAVAILABLE] = {"unavailable", 503},
    [ALM_ERR_UPSTREAM] = {"upstream_error", 502},
    [ALM_ERR_SHUTTING_DOWN] = {"shutting_down", 503},
    [ALM_ERR_INTERNAL] = {"internal", 500},
    [ALM_ERR_NOT_IMPLEMENTED] = {"not_implemented", 501},
};

const char *alm_err_name(enum alm_err err)
{
    if ((size_t)err >= ALM_ARRAY_SIZE(table) || !table[err].name)
        return "internal";
    return table[err].name;
}

int alm_err_http_status(enum alm_err err)
{
    if ((size_t)err >= ALM_ARRAY_SIZE(table) || !table[err].name)
        return 500;
    return table[err].status;
}

enum alm_err alm_fail(struct alm_errbuf *eb, enum alm_err err, const char *fmt, ...)
{
    va_list ap;

    if (!eb)
        return err;
    va_start(ap, fmt);
    vsnprintf(eb->msg, sizeof(eb->msg), fmt, ap);
    va_end(ap);
    return err;
}

bool alm_err_permanent(enum alm_err err)
{
    switch (err) {
    case ALM_ERR_INVALID:       /* a malformed job, or input no parser accepts */
    case ALM_ERR_UNPROCESSABLE: /* well-formed input we refuse (an empty or corrupt document) */
    case ALM_ERR_MEDIA_TYPE:    /* a format we cannot read now will not be readable later */
    case ALM_ERR_TOO_LARGE:     /* over a configured cap, which a retry does not raise */
        return true;
    default: /* the rest may pass another time: outages, timeouts, odd replies, bugs */
        return false;
    }
}

bool alm_err_outage(enum alm_err err)
{
    return err == ALM_ERR_UNAVAILABLE || err == ALM_ERR_SHUTTING_DOWN ||
           err == ALM_ERR_RATE_LIMITED;
}

const char *alm_strerror(int errnum)
{
    static _Thread_local char buf[128];

    return strerror_r(errnum, buf, sizeof(buf)); /* GNU: a constant string or buf */
}
