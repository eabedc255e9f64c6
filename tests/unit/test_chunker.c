/* SPDX-License-Identifier: Apache-2.0 */
/* Chunking: boundaries, sizes, overlap, coverage, offsets and sections. */
#include "unit.h"
#include "chunker.h"
#include "extract.h"
#include "mem.h"
#include "text.h"

#include <stdlib.h>
#include <string.h>

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

/* Whether a section starts inside (start, end). */
static bool crosses_section(const struct alm_extracted *d, size_t start, size_t end)
{
    for (size_t i = 0; i < d->nsections; i++) {
        if (d->sections[i].start > start && d->sections[i].start < end)
            return true;
    }
    return false;
}

/* Every promise of alm_chunk_text() that holds for any text. */
static void assert_chunks(const struct alm_extracted *d, const struct alm_chunk_opts *o,
                          const struct alm_chunk *c, size_t n)
{
    char *covered = alm_xcalloc(d->len + 1, 1);

    for (size_t i = 0; i < n; i++) {
        const char *s = d->text + c[i].start;
        size_t len = c[i].end - c[i].start;
        const struct alm_section *sec = alm_extracted_section_at(d, c[i].start);

        assert_true(c[i].start < c[i].end && c[i].end <= d->len);
        assert_true(alm_text_valid_utf8(s, len)); /* so both ends are on boundaries */
        assert_false(blank(s[0]));
        assert_false(blank(s[len - 1]));
        assert_int_equal(c[i].cstart, cps(d->text, c[i].start));
        assert_int_equal(c[i].cend - c[i].cstart, cps(s, len));
        assert_true(c[i].cend - c[i].cstart <= o->target_chars + o->target_chars / 5);
        assert_false(crosses_section(d, c[i].start, c[i].end));
        assert_ptr_equal(c[i].section, sec ? sec->title : NULL);
        if (i > 0) {
            assert_true(c[i].start > c[i - 1].start && c[i].end > c[i - 1].end);
            if (c[i].start < c[i - 1].end) /* overlap: bounded, from a word start */
                assert_true(c[i - 1].cend - c[i].cstart <= o->overlap_chars && blank(s[-1]));
        }
        memset(covered + c[i].start, 1, len);
    }
    for (size_t i = 0; i < d->len; i++)
        assert_true(covered[i] || blank(d->text[i]));
    free(covered);
}

static struct alm_chunk *chunk(const struct alm_extracted *d, size_t target, size_t overlap,
                               size_t *n)
{
    struct alm_chunk_opts o = {target, overlap};
    struct alm_errbuf eb;
    struct alm_chunk *c;

    assert_int_equal(alm_chunk_text(d, &o, &c, n, &eb), ALM_OK);
    assert_chunks(d, &o, c, *n);
    return c;
}

static struct alm_extracted plain(char *text)
{
    struct alm_extracted d = {.text = text, .len = strlen(text)};
    return d;
}

static char *repeat(const char *unit, size_t n)
{
    struct alm_buf b = ALM_BUF_INIT(0);

    for (size_t i = 0; i < n; i++)
        assert_int_equal(alm_buf_append(&b, unit, strlen(unit)), ALM_OK);
    return alm_buf_detach(&b, NULL);
}

static void short_text_one_chunk(void **state)
{
    char text[] = "\n  A short note.  \n";
    struct alm_extracted d = plain(text);
    size_t n;
    struct alm_chunk *c = chunk(&d, 800, 100, &n);
    (void)state;
    assert_int_equal(n, 1);
    assert_int_equal(c[0].start, 3);
    assert_int_equal(c[0].end, 16);
    assert_int_equal(c[0].cstart, 3);
    assert_int_equal(c[0].cend, 16);
    assert_null(c[0].section);
    free(c);
}

static void blank_text_no_chunk(void **state)
{
    char text[] = " \n\n\t ";
    struct alm_extracted d = plain(text);
    size_t n;
    struct alm_chunk *c = chunk(&d, 10, 2, &n);
    (void)state;
    assert_int_equal(n, 0);
    free(c);
}

static void paragraph_breaks_preferred(void **state)
{
    /* paragraphs of 60 characters; with a target of 100 each chunk ends at a break */
    char *text = repeat("Alpha beta gamma. Delta epsilon zeta. Eta theta iota kappa.\n\n", 40);
    struct alm_extracted d = plain(text);
    size_t n;
    struct alm_chunk *c = chunk(&d, 100, 20, &n);
    (void)state;
    assert_true(n > 20);
    for (size_t i = 0; i < n; i++)
        assert_true(c[i].end == d.len - 2 || strncmp(text + c[i].end, "\n\n", 2) == 0);
    free(c);
    free(text);
}

static void sentence_ends_without_paragraphs(void **state)
{
    char *text = repeat("The quick brown fox jumps over the lazy dog. ", 50);
    struct alm_extracted d = plain(text);
    size_t n;
    struct alm_chunk *c = chunk(&d, 100, 49, &n);
    (void)state;
    assert_true(n > 10);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(text[c[i].end - 1], '.');
        /* the overlap starts at the sentence inside it */
        if (i > 0)
            assert_memory_equal(text + c[i].start, "The quick", 9);
    }
    free(c);
    free(text);
}

static void spaces_without_sentences(void **state)
{
    char *text = repeat("word ", 400);
    struct alm_extracted d = plain(text);
    size_t n;
    struct alm_chunk *c = chunk(&d, 50, 10, &n);
    (void)state;
    for (size_t i = 0; i < n; i++) {
        assert_memory_equal(text + c[i].start, "word", 4);
        assert_memory_equal(text + c[i].end - 4, "word", 4);
    }
    free(c);
    free(text);
}

static void long_word_cut_on_code_points(void **state)
{
    /* 5000 characters without a space: é (2 bytes) and 😀 (4 bytes) */
    char *text = repeat("\xc3\xa9\xf0\x9f\x98\x80", 2500);
    struct alm_extracted d = plain(text);
    size_t n;
    struct alm_chunk *c = chunk(&d, 97, 20, &n);
    (void)state;
    assert_int_equal(n, (5000 + 96) / 97);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(c[i].cstart, i * 97);
        assert_int_equal(c[i].cend, i + 1 < n ? (i + 1) * 97 : 5000);
    }
    free(c);
    free(text);
}

static void overlap_present_and_bounded(void **state)
{
    char *text = repeat("lorem ipsum dolor sit amet consectetur adipiscing elit sed do ", 30);
    struct alm_extracted d = plain(text);
    size_t n, overlapped = 0;
    struct alm_chunk *c = chunk(&d, 120, 25, &n);
    (void)state;
    for (size_t i = 1; i < n; i++) {
        if (c[i].start < c[i - 1].end) {
            overlapped++;
            assert_true(c[i - 1].cend - c[i].cstart >= 10);
        }
    }
    assert_int_equal(overlapped, n - 1);
    free(c);
    /* without overlap the chunks follow each other */
    c = chunk(&d, 120, 0, &n);
    for (size_t i = 1; i < n; i++)
        assert_true(c[i].start > c[i - 1].end);
    free(c);
    free(text);
}

static void sections_start_chunks(void **state)
{
    char *body = repeat("Some words that fill a section with text. ", 12);
    char *md = alm_xasprintf("Lead in.\n\n# First\n\n%s\n\n## Nested\n\nshort\n\n"
                             "# Second\n\n%s\n",
                             body, body);
    struct alm_extracted d;
    struct alm_errbuf eb;
    size_t n, at;
    struct alm_chunk *c;
    (void)state;
    assert_int_equal(alm_extract("text/markdown", md, strlen(md), &d, &eb), ALM_OK);
    assert_int_equal(d.nsections, 3);
    c = chunk(&d, 100, 20, &n);
    assert_null(c[0].section);
    assert_int_equal(c[0].end, strlen("Lead in."));
    /* each section start begins a chunk that carries its title */
    at = 1;
    for (size_t s = 0; s < d.nsections; s++) {
        while (at < n && c[at].start < d.sections[s].start)
            at++;
        assert_true(at < n);
        assert_int_equal(c[at].start, d.sections[s].start);
        assert_string_equal(c[at].section, d.sections[s].title);
    }
    assert_string_equal(c[n - 1].section, "Second");
    free(c);
    alm_extracted_release(&d);
    free(md);
    free(body);
}

static void deterministic(void **state)
{
    char *text = repeat("Ein Satz mit \xc3\xbc und \xe2\x82\xac.\n Noch einer! Und? ", 60);
    struct alm_extracted d = plain(text);
    size_t n1, n2;
    struct alm_chunk *a = chunk(&d, 64, 16, &n1);
    struct alm_chunk *b = chunk(&d, 64, 16, &n2);
    (void)state;
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1 * sizeof(*a));
    free(a);
    free(b);
    free(text);
}

static void small_targets(void **state)
{
    char text[] = "a bb ccc dddd. e\n\nf \xc3\xa9\xc3\xa9 g";
    struct alm_extracted d = plain(text);
    (void)state;
    for (size_t target = 1; target < 12; target++) {
        for (size_t overlap = 0; overlap * 2 < target; overlap++) {
            size_t n;
            free(chunk(&d, target, overlap, &n));
            assert_true(n >= 1);
        }
    }
}

static void bad_options_refused(void **state)
{
    char text[] = "text";
    struct alm_extracted d = plain(text);
    struct alm_chunk_opts zero = {0, 0}, wide = {100, 50};
    struct alm_errbuf eb;
    struct alm_chunk *c;
    size_t n;
    (void)state;
    assert_int_equal(alm_chunk_text(&d, &zero, &c, &n, &eb), ALM_ERR_INVALID);
    assert_int_equal(alm_chunk_text(&d, &wide, &c, &n, &eb), ALM_ERR_INVALID);
    assert_null(c);
    assert_int_equal(n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(short_text_one_chunk),
        cmocka_unit_test(blank_text_no_chunk),
        cmocka_unit_test(paragraph_breaks_preferred),
        cmocka_unit_test(sentence_ends_without_paragraphs),
        cmocka_unit_test(spaces_without_sentences),
        cmocka_unit_test(long_word_cut_on_code_points),
        cmocka_unit_test(overlap_present_and_bounded),
        cmocka_unit_test(sections_start_chunks),
        cmocka_unit_test(deterministic),
        cmocka_unit_test(small_targets),
        cmocka_unit_test(bad_options_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
