/* SPDX-License-Identifier: Apache-2.0 */
/* router.h: matching a method and path against the route table.
 *
 * Patterns are literal segments and {name} placeholders ("/api/v1/documents/{id}"); a
 * placeholder matches one non-empty segment. The table is static and small, so a linear
 * scan is as fast as anything cleverer. */
#pragma once
#include "compat.h"

struct alm_req;
typedef void (*alm_handler)(struct alm_req *req);

enum alm_route_flags {
    ALM_ROUTE_BODY = 1 << 0,  /* takes a request body up to the upload limit */
    ALM_ROUTE_PROBE = 1 << 1, /* health and metrics: access-logged at debug level */
    /* Signed-in users only: the token is checked as soon as the head is complete, before
     * any body is read (the server's admit hook). */
    ALM_ROUTE_AUTH = 1 << 2,
    /* Also: placeholder 0 is a knowledge base the user must be able to see. */
    ALM_ROUTE_KB = 1 << 3,
};

struct alm_route {
    const char *method;
    const char *pattern;
    alm_handler fn;
    unsigned flags;
};

#define ALM_ROUTE_MAX_PARAMS 4
#define ALM_ROUTE_PARAM_MAX  128

struct alm_route_match {
    const struct alm_route *route; /* NULL when nothing matched */
    bool method_mismatch;          /* the path matched some route, the method did not */
    char params[ALM_ROUTE_MAX_PARAMS][ALM_ROUTE_PARAM_MAX];
    size_t nparams;
};

/* Finds the route for method and path (path without the query string). HEAD matches
 * the GET routes: the server sends the same head without the body. */
void alm_route_find(const struct alm_route *routes, size_t n, const char *method, const char *path,
                    struct alm_route_match *m);
