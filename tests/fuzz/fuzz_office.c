/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_office.c: our side of the office, OpenDocument and EPUB extractor (zip checks,
 * XML walks, the builder) and of the sandbox's answers: pdftotext's paged output and
 * the JSON that `almanac extract` prints.
 *
 * The first byte picks the reader: 0-6 an office type (the rest is the zip), 7 the
 * pdftotext parser, 8 the JSON reader. Whatever is read must keep the extraction's
 * promises: valid UTF-8 text, sections and locations in order, inside the text and on
 * code point boundaries; chunks then carry the location of their start. */
#include "compat.h"
#include "chunker.h"
#include "extract_doc.h"
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(const char *what)
{
    fprintf(stderr, "invariant broken: %s\n", what);
    abort();
}

static bool boundary(const struct alm_extracted *d, size_t at)
{
    return at <= d->len && (at == d->len || ((unsigned char)d->text[at] & 0xc0) != 0x80);
}

static void check(const struct alm_extracted *d)
{
    struct alm_chunk_opts o = {50, 10};
    struct alm_errbuf eb;
    struct alm_chunk *c;
    size_t n;

    if (!d->text || d->text[d->len] != '\0' || !alm_text_valid_utf8(d->text, d->len))
        fail("text");
    for (size_t i = 0; i < d->nsections; i++) {
        if (!boundary(d, d->sections[i].start) || !boundary(d, d->sections[i].end) ||
            d->sections[i].end < d->sections[i].start ||
            (i && d->sections[i].start < d->sections[i - 1].start))
            fail("sections");
    }
    for (size_t i = 0; i < d->nlocations; i++) {
        if (!boundary(d, d->locations[i].start) || d->locations[i].number < 1 ||
            (i && d->locations[i].start < d->locations[i - 1].start))
            fail("locations");
    }
    if (d->title && !alm_text_valid_utf8(d->title, strlen(d->title)))
        fail("title");
    if (alm_chunk_text(d, &o, &c, &n, &eb) != ALM_OK)
        fail("chunking");
    for (size_t i = 0; i < n; i++) {
        if (c[i].location != alm_extracted_location_at(d, c[i].start))
            fail("chunk location");
        for (size_t k = 0; k < d->nlocations; k++) {
            if (d->locations[k].start > c[i].start && d->locations[k].start < c[i].end)
                fail("chunk crosses a location start");
        }
    }
    free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const types[] = {
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
        "application/epub+zip",
    };
    struct alm_extracted d;
    struct alm_errbuf eb = {{0}};
    size_t len = size ? size - 1 : 0;
    char *src;
    enum alm_err err;

    if (size == 0)
        return 0;
    src = malloc(len + 1);
    if (!src)
        abort();
    memcpy(src, data + 1, len);
    src[len] = '\0';
    if (data[0] % 9 < 7)
        err = alm_extract_office(types[data[0] % 9], src, len, &d, &eb);
    else if (data[0] % 9 == 7)
        err = alm_extract_pdf_pages(src, len, 1u << 20, &d, &eb);
    else
        err = alm_extracted_from_json(src, len, &d, &eb);
    if (err == ALM_OK)
        check(&d);
    else if (!eb.msg[0])
        fail("an error without a message");
    alm_extracted_release(&d);
    free(src);
    return 0;
}
