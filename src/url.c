/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "url.h"
#include "mem.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

void alm_url_release(struct alm_url *u)
{
    ALM_FREE(u->scheme);
    ALM_FREE(u->user);
    ALM_FREE(u->password);
    ALM_FREE(u->host);
    ALM_FREE(u->path);
    u->port = 0;
}

static bool parse_port(const char *p, size_t n, int *port)
{
    long v = 0;

    if (n == 0 || n > 5)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i]))
            return false;
        v = v * 10 + (p[i] - '0');
    }
    if (v < 1 || v > 65535)
        return false;
    *port = (int)v;
    return true;
}

/* Parses "host[:port]" or "[v6][:port]" of length n. */
static bool parse_hostport(const char *p, size_t n, struct alm_url *u)
{
    const char *colon = NULL;
    size_t hlen;

    if (n == 0)
        return false;
    if (p[0] == '[') {
        const char *close = memchr(p, ']', n);
        if (!close || close == p + 1)
            return false;
        u->host = alm_xstrndup(p + 1, (size_t)(close - p - 1));
        if ((size_t)(close - p) + 1 == n)
            return true;
        if (close[1] != ':')
            return false;
        return parse_port(close + 2, n - (size_t)(close - p) - 2, &u->port);
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] == ':')
            colon = p + i;
    }
    hlen = colon ? (size_t)(colon - p) : n;
    if (hlen == 0)
        return false;
    for (size_t i = 0; i < hlen; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!isalnum(c) && c != '.' && c != '-' && c != '_')
            return false;
    }
    u->host = alm_xstrndup(p, hlen);
    if (colon)
        return parse_port(colon + 1, n - hlen - 1, &u->port);
    return true;
}

bool alm_url_parse(const char *text, struct alm_url *u)
{
    const char *sep, *auth, *end, *at;

    memset(u, 0, sizeof(*u));
    sep = strstr(text, "://");
    if (!sep || sep == text)
        goto fail;
    for (const char *s = text; s < sep; s++) {
        if (!isalnum((unsigned char)*s) && *s != '+' && *s != '-' && *s != '.')
            goto fail;
    }
    u->scheme = alm_xstrndup(text, (size_t)(sep - text));
    for (char *s = u->scheme; *s; s++)
        *s = (char)tolower((unsigned char)*s);
    auth = sep + 3;
    end = auth + strcspn(auth, "/?#");
    /* The last '@' before the path ends the userinfo: passwords may hold '@'. */
    at = NULL;
    for (const char *s = auth; s < end; s++) {
        if (*s == '@')
            at = s;
    }
    if (at) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        if (colon) {
            u->user = alm_xstrndup(auth, (size_t)(colon - auth));
            u->password = alm_xstrndup(colon + 1, (size_t)(at - colon - 1));
        } else {
            u->user = alm_xstrndup(auth, (size_t)(at - auth));
        }
        auth = at + 1;
    }
    if (!parse_hostport(auth, (size_t)(end - auth), u))
        goto fail;
    u->path = alm_xstrdup(end);
    return true;
fail:
    alm_url_release(u);
    return false;
}

bool alm_url_host_is_loopback(const char *host)
{
    return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
           strcmp(host, "::1") == 0;
}

char *alm_url_redact(const char *text)
{
    struct alm_url u;
    char *out;

    if (!text)
        return alm_xstrdup("");
    if (!alm_url_parse(text, &u))
        return alm_xstrdup("***");
    out = alm_xasprintf("%s://%s%s%s%s%s%s%s%.0d%s", u.scheme, u.user ? u.user : "",
                        u.password ? ":***" : "", u.user || u.password ? "@" : "",
                        strchr(u.host, ':') ? "[" : "", u.host, strchr(u.host, ':') ? "]" : "",
                        u.port ? ":" : "", u.port, u.path);
    /* Query strings can carry credentials too (libpq's ?password=): drop them. */
    char *q = strchr(out, '?');
    if (q) {
        char *t = alm_xasprintf("%.*s?***", (int)(q - out), out);
        free(out);
        out = t;
    }
    alm_url_release(&u);
    return out;
}
