/* SPDX-License-Identifier: Apache-2.0 */
/* multipart.c: multipart/form-data (RFC 7578, RFC 2046 section 5.1) over a complete body.
 *
 * Hand-written rather than libmicrohttpd's post processor: that one is bound to a live
 * connection and streams callbacks, while our bodies are complete, capped buffers that
 * must also be fuzzed standalone. Every read is checked against [body, body + len). */
#include "compat.h"
#include "multipart.h"

#include <string.h>
#include <strings.h>

#define BOUNDARY_MAX 70 /* RFC 2046 */

/* A byte range; never NUL-terminated. */
struct span {
    const char *p;
    size_t n;
};

struct param {
    struct span name;
    struct span value; /* without the quotes, escapes still in */
    bool quoted;
};

static bool span_is(struct span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && strncasecmp(s.p, lit, n) == 0;
}

static void skip_ows(struct span *s)
{
    while (s->n && (*s->p == ' ' || *s->p == '\t')) {
        s->p++;
        s->n--;
    }
}

static void trim_ows(struct span *s)
{
    skip_ows(s);
    while (s->n && (s->p[s->n - 1] == ' ' || s->p[s->n - 1] == '\t'))
        s->n--;
}

/* Takes the text of s up to the first of stop (or the end), advancing s past it. */
static struct span take_until(struct span *s, const char *stop)
{
    struct span t = {s->p, 0};

    while (t.n < s->n && !(s->p[t.n] && strchr(stop, s->p[t.n])))
        t.n++;
    s->p += t.n;
    s->n -= t.n;
    return t;
}

/* A quoted string starting after its opening quote; s is left after the closing one. */
static bool take_quoted(struct span *s, struct span *value)
{
    value->p = s->p;
    for (size_t i = 0; i < s->n; i++) {
        if (s->p[i] == '\\' && i + 1 < s->n) {
            i++;
        } else if (s->p[i] == '"') {
            value->n = i;
            s->p += i + 1;
            s->n -= i + 1;
            return true;
        }
    }
    return false;
}

/* Reads the next "; name=value" of s. 1 when found, 0 at the end, -1 when malformed. */
static int next_param(struct span *s, struct param *prm)
{
    skip_ows(s);
    if (!s->n)
        return 0;
    if (*s->p != ';')
        return -1;
    s->p++;
    s->n--;
    skip_ows(s);
    prm->name = take_until(s, "= \t;\"");
    trim_ows(&prm->name);
    skip_ows(s);
    if (!prm->name.n || !s->n || *s->p != '=')
        return -1;
    s->p++;
    s->n--;
    skip_ows(s);
    prm->quoted = s->n && *s->p == '"';
    if (prm->quoted) {
        s->p++;
        s->n--;
        if (!take_quoted(s, &prm->value))
            return -1;
    } else {
        prm->value = take_until(s, "; \t\"");
        if (!prm->value.n)
            return -1;
    }
    return 1;
}

/* Copies a parameter value into out[n], undoing the escapes \" and \\ only: browsers send
 * Windows paths such as "C:\x\doc.txt" unescaped, so any other backslash is kept. With
 * basename, a '/' or '\\' restarts the copy, keeping only the last path component. False
 * when the result does not fit. */
static bool copy_value(const struct param *prm, bool basename, char *out, size_t n)
{
    size_t k = 0;
    bool overflow = false; /* of the current component: only the last one must fit */

    for (size_t i = 0; i < prm->value.n; i++) {
        char c = prm->value.p[i];
        if (prm->quoted && c == '\\' && i + 1 < prm->value.n &&
            (prm->value.p[i + 1] == '"' || prm->value.p[i + 1] == '\\'))
            c = prm->value.p[++i];
        if (basename && (c == '/' || c == '\\')) {
            k = 0;
            overflow = false;
        } else if (k + 1 < n) {
            out[k++] = c;
        } else {
            overflow = true;
        }
    }
    out[k] = '\0';
    if (overflow)
        return false;
    /* "." and ".." are path components too, never names */
    if (basename && (strcmp(out, ".") == 0 || strcmp(out, "..") == 0))
        out[0] = '\0';
    return true;
}

/* ------------------------------------------------------------------------- boundary */

/* RFC 2046 bchars, the last one not a space. */
static bool valid_boundary(const char *b, size_t n)
{
    if (n < 1 || n > BOUNDARY_MAX || b[n - 1] == ' ')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') &&
            !strchr("'()+_,-./:=? ", c))
            return false;
    }
    return true;
}

/* The boundary parameter of a multipart/form-data Content-Type value, into out. */
static enum alm_err find_boundary(const char *content_type, char out[BOUNDARY_MAX + 1],
                                  struct alm_errbuf *eb)
{
    struct span s = {content_type, content_type ? strlen(content_type) : 0};
    struct span type;
    struct param prm;
    bool found = false;
    int r;

    type = take_until(&s, ";");
    trim_ows(&type);
    if (!span_is(type, "multipart/form-data"))
        return alm_fail(eb, ALM_ERR_MEDIA_TYPE, "not multipart/form-data");
    while ((r = next_param(&s, &prm)) > 0) {
        if (!span_is(prm.name, "boundary"))
            continue;
        /* a second boundary would let two parsers read the body differently */
        if (found || !copy_value(&prm, false, out, BOUNDARY_MAX + 1))
            return alm_fail(eb, ALM_ERR_INVALID, "bad boundary");
        found = true;
    }
    if (r < 0)
        return alm_fail(eb, ALM_ERR_INVALID, "malformed content-type");
    if (!found)
        return alm_fail(eb, ALM_ERR_INVALID, "no boundary");
    if (!valid_boundary(out, strlen(out)))
        return alm_fail(eb, ALM_ERR_INVALID, "bad boundary");
    return ALM_OK;
}

/* ------------------------------------------------------------------------- body */

struct scan {
    const char *body;
    size_t len;
    char delim[BOUNDARY_MAX + 3]; /* "--" boundary */
    size_t dlen;
};

/* Whether a delimiter line starts at body[at]: "--boundary" then "--" (closing), or
 * transport padding and a line end. *next is where the following line starts. */
static bool delimiter_at(const struct scan *sc, size_t at, bool *closing, size_t *next)
{
    size_t i = at + sc->dlen;

    if (sc->len - at < sc->dlen || memcmp(sc->body + at, sc->delim, sc->dlen) != 0)
        return false;
    if (sc->len - i >= 2 && sc->body[i] == '-' && sc->body[i + 1] == '-') {
        *closing = true;
        *next = i + 2;
        return true;
    }
    while (i < sc->len && (sc->body[i] == ' ' || sc->body[i] == '\t'))
        i++;
    if (i < sc->len && sc->body[i] == '\r')
        i++;
    if (i >= sc->len || sc->body[i] != '\n')
        return false;
    *closing = false;
    *next = i + 1;
    return true;
}

/* The next delimiter line at or after from that starts a line (after LF, or at the very
 * start of the body). *at is its start, *next the start of the following line. */
static bool find_delimiter(const struct scan *sc, size_t from, size_t *at, bool *closing,
                           size_t *next)
{
    if (from == 0 && delimiter_at(sc, 0, closing, next)) {
        *at = 0;
        return true;
    }
    while (from < sc->len) {
        const char *lf = memchr(sc->body + from, '\n', sc->len - from);
        if (!lf)
            return false;
        from = (size_t)(lf - sc->body) + 1;
        if (delimiter_at(sc, from, closing, next)) {
            *at = from;
            return true;
        }
    }
    return false;
}

/* Content-Disposition: form-data; name="..."; filename="..." */
static enum alm_err disposition(struct span v, struct alm_multipart_part *part,
                                struct alm_errbuf *eb)
{
    struct span type = take_until(&v, ";");
    struct param prm;
    int r;

    trim_ows(&type);
    if (!span_is(type, "form-data"))
        return alm_fail(eb, ALM_ERR_INVALID, "part is not form-data");
    while ((r = next_param(&v, &prm)) > 0) {
        bool is_name = span_is(prm.name, "name");
        if (!is_name && !span_is(prm.name, "filename"))
            continue; /* filename* and others: RFC 7578 says not to use them */
        if (is_name ? part->name != NULL : part->filename != NULL)
            return alm_fail(eb, ALM_ERR_INVALID, "malformed part header");
        if (is_name ? !copy_value(&prm, false, part->name_buf, sizeof(part->name_buf))
                    : !copy_value(&prm, true, part->filename_buf, sizeof(part->filename_buf)))
            return alm_fail(eb, ALM_ERR_INVALID, "header value too long");
        if (is_name)
            part->name = part->name_buf;
        else
            part->filename = part->filename_buf;
    }
    if (r < 0)
        return alm_fail(eb, ALM_ERR_INVALID, "malformed part header");
    return ALM_OK;
}

static enum alm_err header_line(struct span line, struct alm_multipart_part *part,
                                bool *seen_disposition, struct alm_errbuf *eb)
{
    struct span name = take_until(&line, ":");

    /* Control bytes (a NUL above all) would cut or forge the values we copy out. */
    for (size_t i = 0; i < name.n + line.n; i++) {
        unsigned char c = (unsigned char)name.p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return alm_fail(eb, ALM_ERR_INVALID, "malformed part header");
    }
    if (!line.n || !name.n || name.p[name.n - 1] == ' ' || name.p[name.n - 1] == '\t')
        return alm_fail(eb, ALM_ERR_INVALID, "malformed part header");
    line.p++; /* the colon */
    line.n--;
    trim_ows(&line);
    if (span_is(name, "content-disposition")) {
        if (*seen_disposition)
            return alm_fail(eb, ALM_ERR_INVALID, "malformed part header");
        *seen_disposition = true;
        return disposition(line, part, eb);
    }
    if (span_is(name, "content-type")) {
        if (part->content_type || line.n >= sizeof(part->content_type_buf))
            return alm_fail(eb, ALM_ERR_INVALID, "header value too long");
        memcpy(part->content_type_buf, line.p, line.n);
        part->content_type_buf[line.n] = '\0';
        part->content_type = part->content_type_buf;
    }
    return ALM_OK;
}

/* Reads the headers of a part starting at *pos, up to and including the blank line. */
static enum alm_err part_headers(const struct scan *sc, size_t *pos,
                                 struct alm_multipart_part *part, struct alm_errbuf *eb)
{
    bool seen_disposition = false;

    for (;;) {
        const char *lf = memchr(sc->body + *pos, '\n', sc->len - *pos);
        struct span line = {sc->body + *pos, 0};
        enum alm_err err;

        if (!lf)
            return alm_fail(eb, ALM_ERR_INVALID, "missing closing delimiter");
        line.n = (size_t)(lf - line.p);
        *pos += line.n + 1;
        if (line.n && line.p[line.n - 1] == '\r')
            line.n--;
        if (!line.n)
            break;
        /* a delimiter before the blank line: the part has no body separator */
        if (line.n >= sc->dlen && memcmp(line.p, sc->delim, sc->dlen) == 0)
            return alm_fail(eb, ALM_ERR_INVALID, "malformed part header");
        err = header_line(line, part, &seen_disposition, eb);
        if (err)
            return err;
    }
    if (!part->name || !*part->name)
        return alm_fail(eb, ALM_ERR_INVALID, "part without content-disposition form-data name");
    return ALM_OK;
}

/* Parses the part whose headers start at *pos; *pos moves to the line after its closing
 * delimiter, and *closing says whether that was the last one. */
static enum alm_err one_part(const struct scan *sc, size_t *pos, bool *closing,
                             struct alm_multipart_part *part, struct alm_errbuf *eb)
{
    size_t start, at, end;
    enum alm_err err = part_headers(sc, pos, part, eb);

    if (err)
        return err;
    start = *pos;
    /* From the LF of the blank line: an empty part may share it with the delimiter. */
    if (!find_delimiter(sc, start - 1, &at, closing, pos))
        return alm_fail(eb, ALM_ERR_INVALID, "missing closing delimiter");
    end = at - 1; /* the LF before the delimiter */
    if (end > start && sc->body[end - 1] == '\r')
        end--;
    part->data = sc->body + start;
    part->len = end > start ? end - start : 0;
    return ALM_OK;
}

static enum alm_err parse_body(const struct scan *sc, struct alm_multipart *out,
                               struct alm_errbuf *eb)
{
    size_t at, pos;
    bool closing;

    /* Whatever precedes the first delimiter is preamble, ignored. */
    if (!find_delimiter(sc, 0, &at, &closing, &pos))
        return alm_fail(eb, ALM_ERR_INVALID, "missing closing delimiter");
    while (!closing) {
        enum alm_err err;
        if (out->nparts == ALM_MULTIPART_MAX_PARTS)
            return alm_fail(eb, ALM_ERR_INVALID, "too many parts");
        err = one_part(sc, &pos, &closing, &out->parts[out->nparts], eb);
        if (err)
            return err;
        out->nparts++;
    }
    return ALM_OK; /* the rest is epilogue, ignored */
}

enum alm_err alm_multipart_parse(const char *content_type, const char *body, size_t len,
                                 struct alm_multipart *out, struct alm_errbuf *eb)
{
    char boundary[BOUNDARY_MAX + 1] = {0};
    struct scan sc = {body ? body : "", body ? len : 0, "--", 0};
    enum alm_err err;

    memset(out, 0, sizeof(*out));
    err = find_boundary(content_type, boundary, eb);
    if (err)
        return err;
    memcpy(sc.delim + 2, boundary, strlen(boundary) + 1);
    sc.dlen = strlen(sc.delim);
    err = parse_body(&sc, out, eb);
    if (err)
        memset(out, 0, sizeof(*out)); /* no half-parsed parts for a careless caller */
    return err;
}

const struct alm_multipart_part *alm_multipart_find(const struct alm_multipart *m, const char *name)
{
    if (!m || !name)
        return NULL;
    for (size_t i = 0; i < m->nparts && i < ALM_MULTIPART_MAX_PARTS; i++) {
        if (m->parts[i].name && strcmp(m->parts[i].name, name) == 0)
            return &m->parts[i];
    }
    return NULL;
}
