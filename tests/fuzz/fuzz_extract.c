/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_extract.c: text extraction and chunking.
 *
 * The first byte of an input picks the media type (plain, Markdown, HTML), the rest is
 * the document, held in an exact-size heap copy so that AddressSanitizer catches any
 * read past it. Inputs that are not valid UTF-8 are skipped: uploads are converted and
 * validated before extraction. The extracted text and sections must keep their layout
 * promises, and chunks with a small target must keep theirs: on code point boundaries,
 * trimmed, bounded in size, in order with progress, bounded overlap, never across a
 * section start, and together covering every non-blank byte. Invariants are checked
 * with abort(), so libFuzzer reports the input. */
#include "compat.h"
#include "chunker.h"
#include "extract.h"
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TARGET  50
#define OVERLAP 10

static void fail(const char *what)
{
    fprintf(stderr, "invariant broken: %s\n", what);
    abort();
}

static bool blank(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static size_t cps(const char *s, size_t n)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xc0) != 0x80;
    return k;
}

static void check_sections(const struct alm_extracted *d)
{
    for (size_t i = 0; i < d->nsections; i++) {
        const struct alm_section *s = &d->sections[i];
        size_t tlen = strnlen(s->title, 201);

        if (s->start >= s->end || s->end > d->len || blank(d->text[s->start]))
            fail("section outside the text or starting blank");
        if (s->level < 1 || s->level > 6)
            fail("section level");
        if (i > 0 && d->sections[i - 1].start >= s->start)
            fail("sections out of order");
        /* nesting: a section ends where one of the same or a higher level starts */
        for (size_t j = i + 1; j < d->nsections && d->sections[j].start < s->end; j++) {
            if (d->sections[j].level <= s->level || d->sections[j].end > s->end)
                fail("sections do not nest");
        }
        if (tlen == 0 || tlen > 200 || strchr(s->title, '\n') ||
            !alm_text_valid_utf8(s->title, tlen))
            fail("section title");
        if (alm_extracted_section_at(d, s->start) != s)
            fail("section_at misses a heading");
    }
}

static void check_text(const struct alm_extracted *d, bool markup)
{
    if (!d->text || d->len == 0 || d->text[d->len] != '\0')
        fail("text missing or unterminated");
    if (!alm_text_valid_utf8(d->text, d->len))
        fail("text not valid UTF-8 or with NUL");
    if (!markup)
        return;
    if (blank(d->text[0]) || blank(d->text[d->len - 1]) || strstr(d->text, "\n\n\n") ||
        strstr(d->text, " \n"))
        fail("blank text at an end or between paragraphs");
    check_sections(d);
}

static bool crosses_section(const struct alm_extracted *d, size_t start, size_t end)
{
    for (size_t i = 0; i < d->nsections; i++) {
        if (d->sections[i].start > start && d->sections[i].start < end)
            return true;
    }
    return false;
}

static void check_chunk(const struct alm_extracted *d, const struct alm_chunk *c,
                        const struct alm_chunk *prev)
{
    const char *s = d->text + c->start;
    size_t len = c->end - c->start;
    const struct alm_section *sec;

    if (c->start >= c->end || c->end > d->len)
        fail("chunk empty or outside the text");
    if (!alm_text_valid_utf8(s, len))
        fail("chunk not on code point boundaries");
    if (blank(s[0]) || blank(s[len - 1]))
        fail("chunk not trimmed");
    if (c->cstart != cps(d->text, c->start) || c->cend - c->cstart != cps(s, len))
        fail("chunk code point offsets");
    if (c->cend - c->cstart > TARGET + TARGET / 5)
        fail("chunk too long");
    if (crosses_section(d, c->start, c->end))
        fail("chunk crosses a section start");
    sec = alm_extracted_section_at(d, c->start);
    if (c->section != (sec ? sec->title : NULL))
        fail("chunk section");
    if (!prev)
        return;
    if (c->start <= prev->start || c->end <= prev->end)
        fail("chunks without progress");
    if (c->start < prev->end && (prev->cend - c->cstart > OVERLAP || !blank(s[-1])))
        fail("overlap too long or not at a word start");
}

static void check_chunks(const struct alm_extracted *d)
{
    struct alm_chunk_opts o = {TARGET, OVERLAP};
    struct alm_errbuf eb;
    struct alm_chunk *c;
    size_t n, covered = 0;

    if (alm_chunk_text(d, &o, &c, &n, &eb) != ALM_OK)
        fail("chunking failed");
    if (n == 0)
        fail("text without chunks");
    for (size_t i = 0; i < n; i++) {
        check_chunk(d, &c[i], i ? &c[i - 1] : NULL);
        /* chunks are in order, so coverage is a sweep: only blanks between them */
        for (size_t k = covered; k < c[i].start; k++) {
            if (!blank(d->text[k]))
                fail("text not covered by any chunk");
        }
        if (c[i].end > covered)
            covered = c[i].end;
    }
    for (size_t k = covered; k < d->len; k++) {
        if (!blank(d->text[k]))
            fail("text after the last chunk");
    }
    free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const types[] = {"text/plain", "text/markdown", "text/html"};
    struct alm_extracted d;
    struct alm_errbuf eb;
    size_t len = size ? size - 1 : 0;
    char *src;
    enum alm_err err;
    int type;

    if (size == 0)
        return 0;
    type = data[0] % 3;
    if (!alm_text_valid_utf8((const char *)data + 1, len))
        return 0;
    src = malloc(len ? len : 1);
    if (!src)
        abort();
    if (len)
        memcpy(src, data + 1, len);
    err = alm_extract(types[type], src, len, &d, &eb);
    if (err == ALM_OK) {
        check_text(&d, type != 0);
        check_chunks(&d);
    } else if (err != ALM_ERR_UNPROCESSABLE || !eb.msg[0] || d.text) {
        fail("unexpected extraction error");
    }
    alm_extracted_release(&d);
    free(src);
    return 0;
}
