/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_parsers.c: the URL parser and redaction, and the router, against invariants.
 *
 * Each input is used whole as a URL, and split at its first space into a method and a
 * path for the router. Invariants are checked with abort(), so a violation is reported
 * by libFuzzer like a crash, with the input that caused it. */
#include "compat.h"
#include "router.h"
#include "url.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void handler(struct alm_req *req)
{
    (void)req;
}

/* Placeholders in various positions, literals shared between routes, and one route with
 * more placeholders than a match can hold (it must never match). */
static const struct alm_route routes[] = {
    {"GET", "/health", handler, 0},
    {"GET", "/api/v1/documents", handler, 0},
    {"POST", "/api/v1/documents", handler, ALM_ROUTE_BODY},
    {"GET", "/api/v1/documents/{id}", handler, 0},
    {"DELETE", "/api/v1/documents/{id}", handler, 0},
    {"GET", "/api/v1/documents/{id}/chunks/{n}", handler, 0},
    {"GET", "/api/v1/documents/search", handler, 0}, /* shadowed by {id} for GET */
    {"GET", "/{a}/{b}/{c}/{d}", handler, 0},
    {"PUT", "/p/{a}/{b}/{c}/{d}/{e}", handler, 0},
    {"GET", "/", handler, 0},
};

static void fail(const char *what, const char *input)
{
    fprintf(stderr, "invariant broken: %s (input \"%s\")\n", what, input);
    abort();
}

/* ------------------------------------------------------------------------- URLs */

static bool valid_scheme(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '+' || *s == '-' ||
              *s == '.'))
            return false;
    }
    return true;
}

/* The text with the password (found between the first ':' and the last '@' of the
 * authority, as the parser reads it) removed, or NULL when the text has no password. */
static char *without_password(const char *text)
{
    const char *auth = strstr(text, "://"), *end, *at = NULL, *colon;
    char *out;

    if (!auth)
        return NULL;
    auth += 3;
    end = auth + strcspn(auth, "/?#");
    for (const char *s = auth; s < end; s++) {
        if (*s == '@')
            at = s;
    }
    if (!at)
        return NULL;
    colon = memchr(auth, ':', (size_t)(at - auth));
    if (!colon)
        return NULL;
    out = malloc(strlen(text) + 1);
    if (!out)
        abort();
    memcpy(out, text, (size_t)(colon + 1 - text));
    memcpy(out + (colon + 1 - text), at, strlen(at) + 1);
    return out;
}

static void check_url(const char *text)
{
    struct alm_url u;
    char *red = alm_url_redact(text);

    if (!alm_url_parse(text, &u)) {
        /* Unparseable text might be a secret itself: nothing of it may come back. */
        if (strcmp(red, "***") != 0)
            fail("an unparseable URL is redacted to something else than ***", text);
        free(red);
        return;
    }
    if (!u.scheme || !valid_scheme(u.scheme))
        fail("scheme missing or not lower-case", text);
    if (!u.host || !*u.host)
        fail("host missing", text);
    if (u.port < 0 || u.port > 65535)
        fail("port out of range", text);
    if (!u.path || (*u.path && !strchr("/?#", *u.path)))
        fail("path neither empty nor starting at a delimiter", text);
    if (strpbrk(u.host, "/?#") || (u.user && strpbrk(u.user, "/?#")) ||
        (u.password && strpbrk(u.password, "/?#")))
        fail("a delimiter inside the authority", text);

    if (u.password) {
        /* The redaction must not depend on the password at all: the same URL without it
         * redacts to the very same text. This is the exact form of "never shows it". */
        char *bare = without_password(text);
        char *bare_red;
        if (!bare)
            fail("the parser found a password the reference does not", text);
        bare_red = alm_url_redact(bare);
        if (strcmp(red, bare_red) != 0)
            fail("the redaction depends on the password", text);
        /* The plain form of the rule (implied by the equality above, kept as the statement
         * reviewers look for): a password of 4+ characters found nowhere else is not shown. */
        if (strlen(u.password) >= 4 && !strstr(bare_red, u.password) && strstr(red, u.password))
            fail("the redaction shows the password", text);
        free(bare_red);
        free(bare);
    }
    /* A query can carry credentials (libpq's ?password=): nothing after '?' is kept. */
    {
        const char *q = strchr(red, '?');
        if (q && strcmp(q, "?***") != 0)
            fail("the query survives redaction", text);
    }
    alm_url_release(&u);
    free(red);
}

/* ------------------------------------------------------------------------- routes */

/* An independent matcher, segment by segment: a "{...}" segment takes one non-empty
 * segment without '/' shorter than ALM_ROUTE_PARAM_MAX, any other must be equal. */
static bool ref_match(const char *pattern, const char *path, size_t *nparams)
{
    const char *p = pattern, *s = path;

    *nparams = 0;
    for (;;) {
        size_t pl = strcspn(p, "/"), sl = strcspn(s, "/");
        if (pl >= 2 && p[0] == '{' && p[pl - 1] == '}') {
            if (sl == 0 || sl >= ALM_ROUTE_PARAM_MAX || *nparams >= ALM_ROUTE_MAX_PARAMS)
                return false;
            (*nparams)++;
        } else if (pl != sl || memcmp(p, s, pl) != 0) {
            return false;
        }
        p += pl;
        s += sl;
        if (!*p || !*s)
            return !*p && !*s;
        p++; /* both at a '/' */
        s++;
    }
}

/* Rebuilds the path from the pattern and the captured params. */
static void rebuild(const char *pattern, const struct alm_route_match *m, char *out, size_t n)
{
    size_t len = 0, k = 0;

    for (const char *p = pattern; *p;) {
        const char *piece = p;
        size_t plen = 1;
        if (*p == '{') {
            piece = k < m->nparams ? m->params[k] : "";
            plen = strlen(piece);
            k++;
            p = strchr(p, '}') + 1;
        } else {
            p++;
        }
        if (len + plen >= n)
            return;
        memcpy(out + len, piece, plen);
        len += plen;
    }
    out[len] = '\0';
}

static void check_route(const char *method, const char *path)
{
    struct alm_route_match m;
    const struct alm_route *want = NULL;
    bool mismatch = false;
    size_t want_params = 0;
    /* HEAD is served by the GET routes. */
    const char *as = strcmp(method, "HEAD") == 0 ? "GET" : method;

    alm_route_find(routes, ALM_ARRAY_SIZE(routes), method, path, &m);
    for (size_t i = 0; i < ALM_ARRAY_SIZE(routes) && !want; i++) {
        size_t np;
        if (!ref_match(routes[i].pattern, path, &np))
            continue;
        if (strcmp(routes[i].method, as) != 0) {
            mismatch = true;
            continue;
        }
        want = &routes[i];
        want_params = np;
    }
    if (m.route != want)
        fail("the router and the reference matcher disagree on the route", path);
    if (!want && m.method_mismatch != mismatch)
        fail("method_mismatch disagrees with the reference", path);
    if (want && m.method_mismatch)
        fail("method_mismatch set on a match", path);
    if (!m.route) {
        if (m.nparams != 0)
            fail("params on no match", path);
        return;
    }
    if (m.nparams != want_params || m.nparams > ALM_ROUTE_MAX_PARAMS)
        fail("wrong number of params", path);
    for (size_t i = 0; i < m.nparams; i++) {
        size_t len = strnlen(m.params[i], ALM_ROUTE_PARAM_MAX);
        if (len == 0 || len == ALM_ROUTE_PARAM_MAX)
            fail("a param is empty or unterminated", path);
        if (strchr(m.params[i], '/'))
            fail("a param holds a '/'", path);
    }
    {
        char back[4096];
        rebuild(m.route->pattern, &m, back, sizeof(back));
        if (strlen(path) < sizeof(back) && strcmp(back, path) != 0)
            fail("pattern and params do not give the path back", path);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    char *sp;

    if (!text)
        abort();
    memcpy(text, data, size);
    text[size] = '\0'; /* C strings: everything after an embedded NUL is ignored */
    check_url(text);
    sp = strchr(text, ' ');
    if (sp) {
        *sp = '\0';
        check_route(text, sp + 1);
    } else {
        check_route("GET", text);
    }
    free(text);
    return 0;
}
