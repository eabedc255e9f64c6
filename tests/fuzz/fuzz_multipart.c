/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_multipart.c: the multipart/form-data parser and the text functions on the body.
 *
 * The first line of an input is the Content-Type value, the rest the body, held in an
 * exact-size heap copy so that AddressSanitizer catches any read past it. The parts must
 * lie inside the body and carry safe names; the body must be judged the same by
 * alm_text_valid_utf8 and a reference decoder, and converting it from Latin-1 must give
 * valid UTF-8. Invariants are checked with abort(), so libFuzzer reports the input. */
#include "compat.h"
#include "multipart.h"
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OUT 4096

static void fail(const char *what)
{
    fprintf(stderr, "invariant broken: %s\n", what);
    abort();
}

static bool terminated(const char *s, size_t cap)
{
    return s && strnlen(s, cap) < cap;
}

static void check_part(const struct alm_multipart *m, const struct alm_multipart_part *p,
                       const char *body, size_t len)
{
    if (len == 0 || p->data < body || p->len > len || p->data > body + len - p->len)
        fail("part data outside the body");
    if (p->name != p->name_buf || !terminated(p->name, sizeof(p->name_buf)) || !*p->name)
        fail("part name missing or unterminated");
    if (p->filename) {
        if (p->filename != p->filename_buf || !terminated(p->filename, sizeof(p->filename_buf)))
            fail("filename unterminated");
        if (strpbrk(p->filename, "/\\") || strcmp(p->filename, "..") == 0)
            fail("filename with a path in it");
    }
    if (p->content_type && (p->content_type != p->content_type_buf ||
                            !terminated(p->content_type, sizeof(p->content_type_buf))))
        fail("content type unterminated");
    /* the first part of that name comes first */
    if (alm_multipart_find(m, p->name) > p)
        fail("find skipped a part");
}

static void check_multipart(const char *ct, const char *body, size_t len)
{
    struct alm_multipart m;
    struct alm_errbuf eb = {{0}};
    enum alm_err err = alm_multipart_parse(ct, body, len, &m, &eb);

    if (err) {
        if (err != ALM_ERR_INVALID && err != ALM_ERR_MEDIA_TYPE)
            fail("an unexpected error");
        if (!eb.msg[0] || m.nparts != 0)
            fail("a refusal without a reason, or with parts");
        return;
    }
    if (m.nparts > ALM_MULTIPART_MAX_PARTS)
        fail("too many parts");
    for (size_t i = 0; i < m.nparts; i++)
        check_part(&m, &m.parts[i], body, len);
}

/* A reference validator written differently: decode each code point, then check it. */
static bool ref_valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
        static const uint32_t min[] = {0, 0x01, 0x80, 0x800, 0x10000};

        if (len == 0 || n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

static void check_text(const char *body, size_t len)
{
    struct alm_errbuf eb;
    char *out;
    size_t outlen;
    bool valid = alm_text_valid_utf8(body, len);
    enum alm_err err;

    if (valid != ref_valid_utf8((const unsigned char *)body, len))
        fail("the validator and the reference disagree");
    err = alm_text_to_utf8("iso-8859-1", body, len, MAX_OUT, &out, &outlen, &eb);
    if (err == ALM_OK) {
        if (outlen > MAX_OUT || out[outlen] != '\0' || !alm_text_valid_utf8(out, outlen))
            fail("latin-1 conversion gave bad output");
        free(out);
    } else if (err == ALM_ERR_UNPROCESSABLE) {
        if (!memchr(body, '\0', len)) /* U+0000 is the only thing refused */
            fail("latin-1 conversion refused text without NUL");
    } else if (err != ALM_ERR_TOO_LARGE || len * 2 <= MAX_OUT) {
        fail("latin-1 conversion failed unexpectedly");
    }
    err = alm_text_to_utf8("utf-8", body, len, MAX_OUT, &out, &outlen, &eb);
    if (err == ALM_OK) {
        size_t bom = len >= 3 && memcmp(body, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
        if (!valid || outlen != len - bom || memcmp(out, body + bom, outlen) != 0)
            fail("utf-8 conversion changed the text");
        free(out);
    } else if (err == ALM_ERR_UNPROCESSABLE ? valid : len <= MAX_OUT) {
        fail("utf-8 conversion failed unexpectedly");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t ctlen = nl ? (size_t)(nl - data) : size;
    size_t len = nl ? size - ctlen - 1 : 0;
    char *ct = malloc(ctlen + 1);
    char *body = malloc(len ? len : 1);

    if (!ct || !body)
        abort();
    memcpy(ct, data, ctlen);
    ct[ctlen] = '\0';
    if (ctlen && ct[ctlen - 1] == '\r')
        ct[ctlen - 1] = '\0';
    if (len)
        memcpy(body, nl + 1, len);
    check_multipart(ct, body, len);
    check_text(body, len);
    free(body);
    free(ct);
    return 0;
}
