/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_charset.c: the charset of an HTML upload, as the upload handler finds it, and the
 * conversion to UTF-8 from it.
 *
 * The first line of an input is the declared Content-Type value (an empty line: none),
 * the rest the HTML body. As in api/documents.c, the charset parameter of the declared
 * type wins, else the body is sniffed (byte order mark, <meta> in the first 1024 bytes,
 * else UTF-8 or windows-1252), and the body is converted from that charset. The body and
 * every output buffer are exact-size heap copies, so that AddressSanitizer catches any
 * access past them. Invariants are checked with abort(), so libFuzzer reports the input. */
#include "compat.h"
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NAME_BUF  64 /* the upload's charset buffer (api/documents.c) */
#define SMALL_BUF 6  /* too small for most names */
#define SCAN      1024

static void fail(const char *what)
{
    fprintf(stderr, "invariant broken: %s\n", what);
    abort();
}

static void *copy(const void *p, size_t n, size_t extra)
{
    char *c = malloc(n + extra ? n + extra : 1);

    if (!c)
        abort();
    if (n)
        memcpy(c, p, n);
    if (extra)
        c[n] = '\0';
    return c;
}

static bool name_chars(const char *s)
{
    for (; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || strchr("-_.:", *s)))
            return false;
    }
    return true;
}

/* A charset parameter is found whole and lower-cased, or reported absent, whatever the
 * buffer: never cut. */
static bool declared_charset(const char *declared, char *cs)
{
    char *small = malloc(SMALL_BUF);
    bool found, found_small;

    if (!small)
        abort();
    found = alm_text_charset_param(declared, cs, NAME_BUF);
    found_small = alm_text_charset_param(declared, small, SMALL_BUF);
    if (strnlen(cs, NAME_BUF) >= NAME_BUF || strnlen(small, SMALL_BUF) >= SMALL_BUF)
        fail("charset parameter unterminated");
    if (found != (cs[0] != '\0') || found_small != (small[0] != '\0'))
        fail("charset parameter found but empty, or absent but not empty");
    for (const char *c = cs; *c; c++) {
        if (*c >= 'A' && *c <= 'Z')
            fail("charset parameter not lower-cased");
    }
    if (found_small && (!found || strcmp(small, cs) != 0))
        fail("charset parameter differs with a smaller buffer");
    if (found && strlen(cs) < SMALL_BUF && !found_small)
        fail("charset parameter that fits a small buffer not found in it");
    free(small);
    return found;
}

/* Whether "<meta" (any case) starts within the first SCAN bytes of the body. */
static bool has_meta(const char *s, size_t n)
{
    size_t scan = n < SCAN ? n : SCAN;

    for (size_t i = 0; i + 5 <= scan; i++) {
        if (strncasecmp(s + i, "<meta", 5) == 0)
            return true;
    }
    return false;
}

static void sniffed_charset(const char *body, size_t n, char *cs)
{
    char *small = malloc(SMALL_BUF);
    bool bom8 = n >= 3 && memcmp(body, "\xef\xbb\xbf", 3) == 0;
    bool bom16 =
        !bom8 && n >= 2 && (memcmp(body, "\xfe\xff", 2) == 0 || memcmp(body, "\xff\xfe", 2) == 0);

    if (!small)
        abort();
    alm_text_sniff_html_charset(body, n, cs, NAME_BUF);
    alm_text_sniff_html_charset(body, n, small, SMALL_BUF);
    if (strnlen(cs, NAME_BUF) >= NAME_BUF || strnlen(small, SMALL_BUF) >= SMALL_BUF)
        fail("sniffed charset unterminated");
    if (!cs[0] || !name_chars(cs))
        fail("sniffed charset empty or not a lower-case name");
    if (bom8 && strcmp(cs, "utf-8") != 0)
        fail("UTF-8 byte order mark not followed");
    if (bom16 && strcmp(cs, body[0] == '\xfe' ? "utf-16be" : "utf-16le") != 0)
        fail("UTF-16 byte order mark not followed");
    /* the standard: a UTF-16 or x-user-defined label in ASCII bytes means UTF-8 */
    if (!bom16 && (strncmp(cs, "utf-16", 6) == 0 || strcmp(cs, "x-user-defined") == 0))
        fail("UTF-16 or x-user-defined taken from a <meta>");
    if (!bom8 && !bom16 && !has_meta(body, n) &&
        strcmp(cs, alm_text_valid_utf8(body, n) ? "utf-8" : "windows-1252") != 0)
        fail("no label, yet neither UTF-8 for valid UTF-8 nor windows-1252 otherwise");
    free(small);
}

/* The conversion from the chosen charset: valid UTF-8 or a clear refusal. */
static void convert(const char *cs, const char *body, size_t n)
{
    static char untouched;
    struct alm_errbuf eb = {{0}};
    size_t max = n * 4, outlen = 1;
    char *out = &untouched;
    enum alm_err err = alm_text_to_utf8(cs, body, n, max, &out, &outlen, &eb);
    size_t skip = n >= 3 && memcmp(body, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
    bool utf8 = strcmp(cs, "utf-8") == 0;

    if (err) {
        if (out || outlen)
            fail("a failed conversion left output");
        if ((err != ALM_ERR_MEDIA_TYPE && err != ALM_ERR_UNPROCESSABLE &&
             err != ALM_ERR_TOO_LARGE) ||
            !eb.msg[0])
            fail("conversion failed without a client error and its message");
        if (utf8 && alm_text_valid_utf8(body + skip, n - skip))
            fail("valid UTF-8 labelled or sniffed UTF-8 refused");
        return;
    }
    if (!out || out[outlen] != '\0' || strlen(out) != outlen || outlen > max ||
        !alm_text_valid_utf8(out, outlen))
        fail("converted text not NUL-terminated valid UTF-8 within the cap");
    if (utf8 && (outlen != n - skip || memcmp(out, body + skip, outlen) != 0))
        fail("UTF-8 not kept byte for byte, but for its byte order mark");
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t head = nl ? (size_t)(nl - data) : 0;
    size_t n = nl ? size - head - 1 : size;
    char *declared = copy(data, head, 1);
    char *body = copy(data + size - n, n, 0);
    char *labelled = malloc(NAME_BUF), *sniffed = malloc(NAME_BUF);
    bool found;

    if (!labelled || !sniffed)
        abort();
    found = declared_charset(head ? declared : NULL, labelled);
    sniffed_charset(body, n, sniffed);
    convert(found ? labelled : sniffed, body, n);
    free(sniffed);
    free(labelled);
    free(body);
    free(declared);
    return 0;
}
