/* SPDX-License-Identifier: Apache-2.0 */
/* url.h: a small parser for the URLs in our settings, and their redaction.
 *
 * Handles scheme://[user[:password]@]host[:port][/path]; IPv6 hosts in brackets. It is
 * not a general RFC 3986 parser: settings only ever hold such URLs. */
#pragma once
#include "compat.h"

struct alm_url {
    char *scheme;   /* lower-case */
    char *user;     /* NULL when absent */
    char *password; /* NULL when absent; a secret */
    char *host;     /* without brackets */
    int port;       /* 0 when absent */
    char *path;     /* "" when absent, else starts with '/' (query included) */
};

/* Fills u with strings owned by u (alm_url_release frees them); false on a malformed URL,
 * in which case u holds nothing. */
bool alm_url_parse(const char *text, struct alm_url *u) ALM_MUSTCHECK;
void alm_url_release(struct alm_url *u);
/* Whether host is a loopback name or address. */
bool alm_url_host_is_loopback(const char *host);
/* Returns a new string (caller frees) with any password replaced by "***". Text that is
 * not a URL comes back as "***" whole: it might be a secret itself. */
char *alm_url_redact(const char *text);
