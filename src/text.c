/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "text.h"
#include "mem.h"

#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CHARSET_MAX 40

/* Length of the well-formed sequence at s[0..n), or 0 (Unicode 15, table 3-7). */
static size_t sequence_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    size_t len;

    if (c >= 0x01 && c <= 0x7f)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4;
    else
        return 0; /* NUL, a stray continuation byte, C0, C1 (overlong) or F5..FF */
    /* The second byte carries the remaining range rules. */
    if (c == 0xe0)
        lo = 0xa0; /* overlong below U+0800 */
    else if (c == 0xed)
        hi = 0x9f; /* surrogates U+D800..U+DFFF */
    else if (c == 0xf0)
        lo = 0x90; /* overlong below U+10000 */
    else if (c == 0xf4)
        hi = 0x8f; /* past U+10FFFF */
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    }
    return len;
}

bool alm_text_valid_utf8(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;

    while (n) {
        size_t len = sequence_len(p, n);
        if (!len)
            return false;
        p += len;
        n -= len;
    }
    return true;
}

/* ------------------------------------------------------------------------- conversion */

static bool is_utf8_name(const char *cs)
{
    /* ASCII is a subset of UTF-8: text labelled ASCII that is UTF-8 in fact is kept. */
    return strcasecmp(cs, "utf-8") == 0 || strcasecmp(cs, "utf8") == 0 ||
           strcasecmp(cs, "us-ascii") == 0 || strcasecmp(cs, "ascii") == 0;
}

/* Charset names come from clients: keep them to what names look like, so that no iconv
 * suffix ("//IGNORE") or path reaches iconv_open. */
static bool plausible_name(const char *cs)
{
    size_t n = strlen(cs);

    if (n == 0 || n > CHARSET_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = cs[i];
        if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') &&
            !strchr("-_.:", c))
            return false;
    }
    return true;
}

struct out {
    char *data;
    size_t len, alloc; /* alloc excludes the byte kept for the final NUL */
    size_t cap;        /* alloc never grows past it */
};

static size_t sat_add(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* Doubles the output, up to the cap; false when already there. */
static bool grow(struct out *o)
{
    size_t want = o->alloc > o->cap / 2 ? o->cap : o->alloc * 2;

    if (o->alloc >= o->cap)
        return false;
    o->alloc = want < 64 ? (o->cap < 64 ? o->cap : 64) : want;
    o->data = alm_xrealloc(o->data, sat_add(o->alloc, 1));
    return true;
}

/* Runs iconv over in[0..n) (or the final flush when in is NULL), growing the output. */
static enum alm_err run_iconv(iconv_t cd, const char *in, size_t n, struct out *o,
                              struct alm_errbuf *eb)
{
    /* iconv's prototype predates const; it never writes through its input pointer. */
    union {
        const char *c;
        char *m;
    } src = {in};

    for (;;) {
        char *dst = o->data + o->len;
        size_t left = o->alloc - o->len;
        size_t r = iconv(cd, in ? &src.m : NULL, in ? &n : NULL, &dst, &left);
        o->len = (size_t)(dst - o->data);
        if (r != (size_t)-1)
            return ALM_OK;
        if (errno == EILSEQ || errno == EINVAL)
            return alm_fail(eb, ALM_ERR_UNPROCESSABLE, "text is not valid in its charset");
        if (errno != E2BIG)
            return alm_fail(eb, ALM_ERR_INTERNAL, "charset conversion failed");
        if (!grow(o))
            return alm_fail(eb, ALM_ERR_TOO_LARGE, "text too large");
    }
}

static enum alm_err convert(const char *charset, const char *s, size_t n, struct out *o,
                            struct alm_errbuf *eb)
{
    iconv_t cd = iconv_open("UTF-8", charset);
    enum alm_err err;

    if (cd == (iconv_t)-1) { /* NOLINT(performance-no-int-to-ptr): iconv_open's failure value */
        if (errno == EINVAL)
            return alm_fail(eb, ALM_ERR_MEDIA_TYPE, "unsupported charset");
        return alm_fail(eb, errno == ENOMEM ? ALM_ERR_NOMEM : ALM_ERR_INTERNAL,
                        "charset conversion unavailable");
    }
    err = run_iconv(cd, s, n, o, eb);
    if (!err)
        err = run_iconv(cd, NULL, 0, o, eb); /* stateful charsets end their shift state */
    iconv_close(cd);
    return err;
}

enum alm_err alm_text_to_utf8(const char *charset, const char *s, size_t n, size_t max_out,
                              char **out, size_t *outlen, struct alm_errbuf *eb)
{
    /* A BOM in the result is stripped: the cap leaves room for it. */
    struct out o = {NULL, 0, 0, sat_add(max_out, 3)};
    enum alm_err err = ALM_OK;
    size_t skip = 0;

    *out = NULL;
    *outlen = 0;
    if (!charset || !plausible_name(charset))
        return alm_fail(eb, ALM_ERR_MEDIA_TYPE, "unsupported charset");
    if (is_utf8_name(charset)) {
        if (n > o.cap)
            return alm_fail(eb, ALM_ERR_TOO_LARGE, "text too large");
        o.data = alm_xstrndup(s ? s : "", n);
        o.len = n;
    } else {
        /* About the size of most Latin texts; grow() takes it further when needed. */
        o.alloc = n < o.cap ? n : o.cap;
        o.data = alm_xmalloc(sat_add(o.alloc, 1));
        err = convert(charset, s ? s : "", n, &o, eb);
        if (err)
            goto out;
    }
    if (o.len >= 3 && memcmp(o.data, "\xef\xbb\xbf", 3) == 0)
        skip = 3;
    if (o.len - skip > max_out) {
        err = alm_fail(eb, ALM_ERR_TOO_LARGE, "text too large");
        goto out;
    }
    if (!alm_text_valid_utf8(o.data + skip, o.len - skip)) {
        err = alm_fail(eb, ALM_ERR_UNPROCESSABLE, "text is not valid UTF-8 or contains NUL");
        goto out;
    }
    memmove(o.data, o.data + skip, o.len - skip);
    o.data[o.len - skip] = '\0';
    *outlen = o.len - skip;
    *out = o.data;
    o.data = NULL;
out:
    free(o.data);
    return err;
}

/* ------------------------------------------------------------------------- charset */

static const char *skip_ows(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* Reads a parameter value (quoted string or token) at s. With out, copies it lower-cased
 * into out[n]. Returns the end of the value, or NULL when it is malformed or does not fit. */
static const char *read_value(const char *s, char *out, size_t n)
{
    bool quoted = *s == '"';
    size_t len = 0;

    for (s += quoted; *s; s++) {
        char c = *s;
        if (quoted && c == '"')
            break;
        if (!quoted && (c == ';' || c == ' ' || c == '\t' || c == '"'))
            break;
        if (quoted && c == '\\' && s[1])
            c = *++s;
        if (!out)
            continue;
        if (len + 1 >= n)
            return NULL;
        out[len++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    if (quoted && *s != '"')
        return NULL;
    if (out)
        out[len] = '\0';
    return s + quoted;
}

bool alm_text_charset_param(const char *content_type, char *out, size_t n)
{
    const char *s = content_type ? strchr(content_type, ';') : NULL;

    if (!out || n == 0)
        return false;
    out[0] = '\0';
    while (s && *s == ';') {
        const char *name = skip_ows(s + 1);
        size_t namelen = strcspn(name, "= \t;");
        bool wanted = namelen == 7 && strncasecmp(name, "charset", 7) == 0;
        s = skip_ows(name + namelen);
        if (*s != '=')
            break;
        s = read_value(skip_ows(s + 1), wanted ? out : NULL, n);
        if (!s || wanted)
            break;
        s = skip_ows(s);
    }
    if (s && *out)
        return true;
    out[0] = '\0';
    return false;
}

/* The length a lead byte announces (1 for ASCII and for bytes that cannot lead). */
static size_t sequence_length(unsigned char c)
{
    if (c >= 0xF0)
        return 4;
    if (c >= 0xE0)
        return 3;
    if (c >= 0xC0)
        return 2;
    return 1;
}

void alm_text_scrub_utf8(char *s)
{
    size_t n = strlen(s);

    for (size_t i = 0; i < n;) {
        size_t len = sequence_length((unsigned char)s[i]);
        if (len <= n - i && alm_text_valid_utf8(s + i, len)) {
            i += len;
            continue;
        }
        s[i++] = '?';
    }
}

/* The value after "charset=" in p[0..n), quotes and spaces allowed around it. */
static bool charset_value(const char *p, size_t n, char *out, size_t outn)
{
    for (size_t i = 0; i + 8 <= n; i++) {
        size_t j, k = 0;
        if (strncasecmp(p + i, "charset", 7) != 0)
            continue;
        j = i + 7;
        while (j < n && (p[j] == ' ' || p[j] == '\t'))
            j++;
        if (j >= n || p[j] != '=')
            continue;
        j++;
        while (j < n && (p[j] == ' ' || p[j] == '\t' || p[j] == '"' || p[j] == '\''))
            j++;
        /* strchr() finds the terminator too: without p[j], a NUL byte would pass */
        while (j < n && k + 1 < outn &&
               (isalnum((unsigned char)p[j]) || (p[j] && strchr("-_.:", p[j]))))
            out[k++] = (char)tolower((unsigned char)p[j++]);
        out[k] = '\0';
        return k > 0;
    }
    return false;
}

void alm_text_sniff_html_charset(const char *s, size_t n, char *out, size_t outn)
{
    size_t scan = n < 1024 ? n : 1024;

    if (n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
        snprintf(out, outn, "utf-8");
        return;
    }
    if (n >= 2 && (memcmp(s, "\xfe\xff", 2) == 0 || memcmp(s, "\xff\xfe", 2) == 0)) {
        snprintf(out, outn, "%s", s[0] == '\xfe' ? "utf-16be" : "utf-16le");
        return;
    }
    for (size_t i = 0; i + 5 < scan; i++) {
        const char *end;
        if (strncasecmp(s + i, "<meta", 5) != 0)
            continue;
        end = memchr(s + i, '>', scan - i);
        if (!end)
            break;
        if (charset_value(s + i, (size_t)(end - (s + i)), out, outn)) {
            /* the standard: a page that says UTF-16 in ASCII bytes is really UTF-8 */
            if (strncmp(out, "utf-16", 6) == 0 || strcmp(out, "x-user-defined") == 0)
                snprintf(out, outn, "utf-8");
            return;
        }
        i = (size_t)(end - s);
    }
    snprintf(out, outn, "%s", alm_text_valid_utf8(s, n) ? "utf-8" : "windows-1252");
}
