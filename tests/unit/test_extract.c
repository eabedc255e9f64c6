/* SPDX-License-Identifier: Apache-2.0 */
/* Text extraction: plain text kept, Markdown and HTML to clean text with sections. */
#include "unit.h"
#include "extract.h"
#include "extract_doc.h"
#include "frontmatter.h"
#include "mem.h"
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool blank(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* The layout promises of extracted markup: valid UTF-8, no blank text at either end,
 * paragraphs exactly one blank line apart, sections ordered and within the text. */
static void assert_clean(const struct alm_extracted *d)
{
    assert_non_null(d->text);
    assert_int_equal(strlen(d->text), d->len);
    assert_true(alm_text_valid_utf8(d->text, d->len));
    assert_true(d->len > 0);
    assert_false(blank(d->text[0]));
    assert_false(blank(d->text[d->len - 1]));
    assert_null(strstr(d->text, "\n\n\n"));
    assert_null(strstr(d->text, " \n"));
    for (size_t i = 0; i < d->nsections; i++) {
        const struct alm_section *s = &d->sections[i];
        assert_true(s->start < s->end && s->end <= d->len);
        assert_true(s->level >= 1 && s->level <= 6);
        assert_true(i == 0 || d->sections[i - 1].start < s->start);
        assert_true(s->title[0] && strlen(s->title) <= 200 && !strchr(s->title, '\n'));
        assert_true(alm_text_valid_utf8(s->title, strlen(s->title)));
    }
}

static enum alm_err extract(const char *type, const char *src, struct alm_extracted *d)
{
    struct alm_errbuf eb = {{0}};
    enum alm_err err = alm_extract(type, src, strlen(src), d, &eb);

    if (err)
        assert_true(eb.msg[0]);
    else if (strcmp(type, "text/plain") != 0)
        assert_clean(d);
    return err;
}

/* Asserts section i: its heading text starts it, and its extent and level. */
static void assert_section(const struct alm_extracted *d, size_t i, const char *title, int level,
                           const char *end_text)
{
    const struct alm_section *s = &d->sections[i];

    assert_true(i < d->nsections);
    assert_string_equal(s->title, title);
    assert_int_equal(s->level, level);
    assert_memory_equal(d->text + s->start, title, strlen(title));
    if (end_text)
        assert_int_equal(s->end, (size_t)(strstr(d->text, end_text) - d->text));
    else
        assert_int_equal(s->end, d->len);
}

static void plain_unchanged(void **state)
{
    const char *src = "  Line one\r\n\r\n\n\ttwo  \xc3\xa9\n";
    struct alm_extracted d;
    (void)state;
    assert_int_equal(extract("text/plain", src, &d), ALM_OK);
    assert_int_equal(d.len, strlen(src));
    assert_memory_equal(d.text, src, d.len);
    assert_int_equal(d.nsections, 0);
    assert_null(alm_extracted_section_at(&d, 3));
    alm_extracted_release(&d);
    assert_int_equal(extract("Text/Plain; charset=utf-8", "x", &d), ALM_OK);
    assert_string_equal(d.text, "x");
    alm_extracted_release(&d);
}

static void markdown_sections_nest(void **state)
{
    const char *src = "Preface.\n\n# One\n\nIntro.\n\n## One A\n\nText a.\n\n### Deep\n\nd\n\n"
                      "## One B\n\nText b.\n\n# Two\n\nLast.\n";
    struct alm_extracted d;
    (void)state;
    assert_int_equal(extract("text/markdown", src, &d), ALM_OK);
    assert_string_equal(d.text, "Preface.\n\nOne\n\nIntro.\n\nOne A\n\nText a.\n\nDeep\n\nd\n\n"
                                "One B\n\nText b.\n\nTwo\n\nLast.");
    assert_int_equal(d.nsections, 5);
    assert_section(&d, 0, "One", 1, "Two");
    assert_section(&d, 1, "One A", 2, "One B");
    assert_section(&d, 2, "Deep", 3, "One B");
    assert_section(&d, 3, "One B", 2, "Two");
    assert_section(&d, 4, "Two", 1, NULL);
    /* the innermost section holding a position */
    assert_null(alm_extracted_section_at(&d, 0));
    assert_ptr_equal(alm_extracted_section_at(&d, d.sections[0].start), &d.sections[0]);
    assert_ptr_equal(alm_extracted_section_at(&d, (size_t)(strstr(d.text, "d\n") - d.text)),
                     &d.sections[2]);
    assert_ptr_equal(alm_extracted_section_at(&d, (size_t)(strstr(d.text, "Text b") - d.text)),
                     &d.sections[3]);
    assert_ptr_equal(alm_extracted_section_at(&d, d.len - 1), &d.sections[4]);
    assert_null(alm_extracted_section_at(&d, d.len));
    alm_extracted_release(&d);
}

static void markdown_inline_markup_stripped(void **state)
{
    const char *src = "Some *emphasis*, __strong__, [a link](http://example.com \"t\"),\n"
                      "`code  span` and ![an image](i.png) &amp; &copy;.\n\n"
                      "# A *styled* `heading`\n";
    struct alm_extracted d;
    (void)state;
    assert_int_equal(extract("text/markdown", src, &d), ALM_OK);
    assert_string_equal(d.text, "Some emphasis, strong, a link, code span and an image & "
                                "\xc2\xa9.\n\nA styled heading");
    assert_int_equal(d.nsections, 1);
    assert_string_equal(d.sections[0].title, "A styled heading");
    alm_extracted_release(&d);
}

static void markdown_lists_code_and_html(void **state)
{
    const char *src = "Before:\n\n- one\n- two\n  - nested\n- three\n\n1. first\n\n2. second\n\n"
                      "<div>\n<b>raw block</b>\n</div>\n\nInline <span>raw</span> html.\n\n"
                      "```python\ndef f():\n    return 1\n\n\n\n    # spaced\n```\n\n"
                      "> quoted\n> text\n\nhard  \nbreak\n";
    struct alm_extracted d;
    (void)state;
    assert_int_equal(extract("text/markdown", src, &d), ALM_OK);
    assert_string_equal(d.text, "Before:\n\none\ntwo\nnested\nthree\n\nfirst\nsecond\n\n"
                                "Inline raw html.\n\n"
                                "def f():\n    return 1\n\n    # spaced\n\n"
                                "quoted text\n\nhard\nbreak");
    assert_int_equal(d.nsections, 0);
    alm_extracted_release(&d);
}

static void html_drops_non_text(void **state)
{
    const char *src = "<!DOCTYPE html><html><head><title>The  Title</title>"
                      "<meta charset=\"iso-8859-1\"><style>p { color: red }</style>"
                      "<script>var hidden = 1;</script><link rel=\"x\" href=\"y\"></head>"
                      "<body><script>alert('x')</script><style>.a{}</style>"
                      "<noscript>enable js</noscript><template><p>tpl</p></template>"
                      "<!-- a comment --><p>Visible   text\n with <b>bold</b>"
                      "<i>italic</i> and <mark>a</mark> <mark>b</mark>.</p></body></html>";
    struct alm_extracted d;
    (void)state;
    assert_int_equal(extract("text/html", src, &d), ALM_OK);
    /* nothing of <head> is document text, the title included */
    assert_string_equal(d.text, "Visible text with bolditalic and a b.");
    alm_extracted_release(&d);
}

static void html_entities_decoded(void **state)
{
    const char *src = "<p>Fish &amp; chips, caf&eacute;, &#x1F600; &#233; &lt;tag&gt; "
                      "a&nbsp;b &unknown; caf\xc3\xa9</p>";
    struct alm_extracted d;
    (void)state;
    assert_int_equal(extract("text/html", src, &d), ALM_OK);
    assert_string_equal(d.text, "Fish & chips, caf\xc3\xa9, \xf0\x9f\x98\x80 \xc3\xa9 <tag> "
                                "a b &unknown; caf\xc3\xa9");
    alm_extracted_release(&d);
}

static void html_headings_become_sections(void **state)
{
    const char *src = "<body><p>Lead</p><h1>Guide</h1><p>Intro</p><h3>Detail <em>one</em></h3>"
                      "<p>x</p><h2>Part\n  two</h2><div>y</div><h1></h1><h1>End</h1></body>";
    struct alm_extracted d;
    (void)state;
    assert_int_equal(extract("text/html", src, &d), ALM_OK);
    assert_string_equal(d.text,
                        "Lead\n\nGuide\n\nIntro\n\nDetail one\n\nx\n\nPart two\n\ny\n\nEnd");
    assert_int_equal(d.nsections, 4); /* the empty heading is no section */
    assert_section(&d, 0, "Guide", 1, "End");
    assert_section(&d, 1, "Detail one", 3, "Part");
    assert_section(&d, 2, "Part two", 2, "End");
    assert_section(&d, 3, "End", 1, NULL);
    alm_extracted_release(&d);
}

static void html_lists_tables_pre(void **state)
{
    const char *src = "<ul><li>one<ul><li>one.a</li><li>one.b</li></ul></li><li><p>two</p>"
                      "<p>more</p></li></ul><ol><li>first</li></ol>"
                      "<table><tr><th>k</th><th>v</th></tr><tr><td>a</td><td>1</td></tr></table>"
                      "<pre>  keep   this\n\tindent\n\n\n\nend  </pre><p>line<br>break</p>";
    struct alm_extracted d;
    (void)state;
    assert_int_equal(extract("text/html", src, &d), ALM_OK);
    assert_string_equal(d.text, "one\none.a\none.b\ntwo\nmore\n\nfirst\n\nk v\na 1\n\n"
                                "  keep   this\n\tindent\n\nend\n\nline\nbreak");
    alm_extracted_release(&d);
}

static void html_malformed_tolerated(void **state)
{
    const char *src = "<p>one<b>two<i>three</p>four</b></i><div><span>five</div></span>"
                      "<p attr=unquoted>six<p>seven &amp; eight</td></tr><h2>nine<h2>ten"
                      "<unknown-tag>eleven</unknown-tag></body></html>twelve<div";
    struct alm_extracted d;
    (void)state;
    assert_int_equal(extract("text/html", src, &d), ALM_OK);
    assert_non_null(strstr(d.text, "onetwothree"));
    assert_non_null(strstr(d.text, "five"));
    assert_non_null(strstr(d.text, "seven & eight"));
    assert_non_null(strstr(d.text, "eleven"));
    assert_non_null(strstr(d.text, "twelve"));
    assert_true(d.nsections >= 1);
    alm_extracted_release(&d);
    /* an attribute value that never ends takes the rest of the input with it */
    assert_int_equal(extract("text/html", "<p>kept</p><p title=\"open>lost", &d), ALM_OK);
    assert_string_equal(d.text, "kept");
    alm_extracted_release(&d);
}

static char *repeat(const char *unit, size_t n, const char *tail)
{
    struct alm_buf b = ALM_BUF_INIT(0);

    for (size_t i = 0; i < n; i++)
        assert_int_equal(alm_buf_append(&b, unit, strlen(unit)), ALM_OK);
    assert_int_equal(alm_buf_append(&b, tail, strlen(tail)), ALM_OK);
    return alm_buf_detach(&b, NULL);
}

static void limits_refused(void **state)
{
    struct alm_extracted d;
    char *src;
    (void)state;
    src = repeat("<div>", 200, "shallow enough");
    assert_int_equal(extract("text/html", src, &d), ALM_OK);
    alm_extracted_release(&d);
    free(src);
    src = repeat("<div>", 100000, "too deep");
    assert_int_equal(extract("text/html", src, &d), ALM_ERR_UNPROCESSABLE);
    alm_extracted_release(&d);
    free(src);
    src = repeat("<h2>s</h2>", 10000, "");
    assert_int_equal(extract("text/html", src, &d), ALM_OK);
    assert_int_equal(d.nsections, 10000);
    alm_extracted_release(&d);
    free(src);
    src = repeat("# s\n", 10001, "");
    assert_int_equal(extract("text/markdown", src, &d), ALM_ERR_UNPROCESSABLE);
    alm_extracted_release(&d);
    free(src);
    /* Markdown nesting is walked without recursion */
    src = repeat(">", 50000, " deep quote");
    assert_int_equal(extract("text/markdown", src, &d), ALM_OK);
    assert_string_equal(d.text, "deep quote");
    alm_extracted_release(&d);
    free(src);
}

static void long_title_cut_on_boundary(void **state)
{
    char *src = repeat("\xc3\xa9", 150, "");
    char *h = alm_xasprintf("<h1>x%s</h1>", src);
    struct alm_extracted d;
    (void)state;
    assert_int_equal(extract("text/html", h, &d), ALM_OK);
    assert_int_equal(d.nsections, 1);
    assert_int_equal(strlen(d.sections[0].title), 199); /* "x" and 99 two-byte characters */
    assert_int_equal(d.sections[0].end, d.len);
    alm_extracted_release(&d);
    free(h);
    free(src);
}

static void empty_results_refused(void **state)
{
    const char *const cases[][2] = {
        {"text/plain", ""},
        {"text/plain", " \r\n\t "},
        {"text/markdown", ""},
        {"text/markdown", "<!-- only a comment -->\n\n<div></div>\n"},
        {"text/markdown", "---\n\n#\n"},
        {"text/html", ""},
        {"text/html", "<html><head><title> </title><script>x()</script></head><body> </body>"},
        {"text/html", "<p>&nbsp;</p><!-- nothing -->"},
    };
    (void)state;
    for (size_t i = 0; i < ALM_ARRAY_SIZE(cases); i++) {
        struct alm_extracted d;
        assert_int_equal(extract(cases[i][0], cases[i][1], &d), ALM_ERR_UNPROCESSABLE);
        assert_null(d.text);
        alm_extracted_release(&d);
    }
}

static void bad_input_refused(void **state)
{
    const char *const types[] = {"application/pdf", "text/csv", "text/plainx", "", "text/html x"};
    struct alm_extracted d;
    struct alm_errbuf eb;
    (void)state;
    for (size_t i = 0; i < ALM_ARRAY_SIZE(types); i++) {
        assert_int_equal(extract(types[i], "text", &d), ALM_ERR_MEDIA_TYPE);
        alm_extracted_release(&d);
    }
    assert_int_equal(alm_extract(NULL, "x", 1, &d, &eb), ALM_ERR_MEDIA_TYPE);
    alm_extracted_release(&d);
    assert_int_equal(extract("text/html", "caf\xe9", &d), ALM_ERR_UNPROCESSABLE);
    alm_extracted_release(&d);
    assert_int_equal(alm_extract("text/plain", "a\0b", 3, &d, &eb), ALM_ERR_UNPROCESSABLE);
    alm_extracted_release(&d);
    alm_extracted_release(NULL);
}

/* The reader itself (libyaml): what counts as front matter and which title is taken. */
static void front_matter_reader(void **state)
{
    static const struct {
        const char *src;
        bool is_front_matter;
        const char *title; /* NULL: none */
    } cases[] = {
        {"---\ntitle: Plain\n---\nx", true, "Plain"},
        {"---\r\ntitle: \"Quoted \\u00e9\"\r\n---\r\nx", true, "Quoted \xc3\xa9"},
        {"---\ntitle: >\n  Folded\n  title\n...\nx", true, "Folded title\n"},
        {"---\n# only a comment\n---\nx", true, NULL},
        {"---\n---\nx", true, NULL},
        /* only a top-level string scalar is the title */
        {"---\nmeta:\n  title: Nested\n---\nx", true, NULL},
        {"---\ntitle: [a, b]\n---\nx", true, NULL},
        {"---\ntitle: !!binary aGk=\n---\nx", true, NULL},
        {"---\nt: &a Anchor\ntitle: *a\n---\nx", true, NULL},
        {"---\n? [complex, key]\n: v\ntitle: After\n---\nx", true, "After"},
        {"---\ntitle: First\ntitle: Second\n---\nx", true, "First"},
        /* malformed YAML, a list or a bare scalar: not front matter (body text) */
        {"---\ntitle: [unclosed\n---\nx", false, NULL},
        {"---\ntitle: \"a\" b\n---\nx", false, NULL},
        {"---\n\tkey: tab indented\n---\nx", false, NULL},
        {"---\n- a\n- b\n---\nx", false, NULL},
        {"---\nA setext heading\n---\nx", false, NULL},
        /* no opening or no closing line */
        {"--- \ntitle: x\n---\n", false, NULL},
        {"----\ntitle: x\n---\n", false, NULL},
        {"---\ntitle: x\n", false, NULL},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        static char untouched[] = "untouched";
        char *title = untouched;
        size_t len = strlen(cases[i].src);
        size_t skip = alm_front_matter(cases[i].src, len, &title);

        if (cases[i].is_front_matter)
            assert_int_equal(skip, len - 1); /* everything up to the final "x" */
        else
            assert_int_equal(skip, 0);
        if (cases[i].title)
            assert_string_equal(title, cases[i].title);
        else
            assert_null(title);
        free(title);
    }
}

/* Front matter closes within ALM_FRONT_MATTER_MAX bytes (delimiters included), or it is
 * body text: tested at the limit and one byte past it. */
static void front_matter_bound(void **state)
{
    const size_t max = ALM_FRONT_MATTER_MAX;
    char *src = malloc(max + 16);
    char *title;

    (void)state;
    for (size_t over = 0; over <= 1; over++) {
        /* "---\ntitle: T\n#xxxx...\n---\n": a comment fills it to max + over bytes */
        size_t n = 0, total = max + over;
        n += (size_t)snprintf(src, max + 16, "---\ntitle: T\n#");
        memset(src + n, 'x', total - n - 5);
        n = total - 5;
        memcpy(src + n, "\n---\n", 5);
        memcpy(src + total, "body", 5);
        assert_int_equal(alm_front_matter(src, total + 4, &title), over ? 0 : total);
        if (over)
            assert_null(title);
        else
            assert_string_equal(title, "T");
        free(title);
    }
    free(src);
}

static void markdown_front_matter_is_metadata(void **state)
{
    struct alm_extracted d;

    (void)state;
    assert_int_equal(extract("text/markdown",
                             "---\ntitle: 'Pilot handbook'\nauthor: Ada\n---\n# Intro\n\nBody.\n",
                             &d),
                     ALM_OK);
    assert_string_equal(d.title, "Pilot handbook");
    assert_string_equal(d.text, "Intro\n\nBody.");
    alm_extracted_release(&d);
    /* without a title key: the first heading; "..." also closes front matter */
    assert_int_equal(extract("text/markdown", "---\ntags: [a]\n...\n## Setup\n\nText.", &d),
                     ALM_OK);
    assert_string_equal(d.title, "Setup");
    assert_null(strstr(d.text, "tags"));
    alm_extracted_release(&d);
    /* never closed: not front matter, the text stays */
    assert_int_equal(extract("text/markdown", "---\ntitle: x\nno end", &d), ALM_OK);
    assert_non_null(strstr(d.text, "no end"));
    alm_extracted_release(&d);
    /* malformed YAML: not front matter either; its lines stay body text, its title unused */
    assert_int_equal(extract("text/markdown", "---\ntitle: [Broken\n---\n# Heading\n", &d), ALM_OK);
    assert_non_null(strstr(d.text, "title: [Broken"));
    assert_string_equal(d.title, "title: [Broken");
    alm_extracted_release(&d);
    /* a folded title becomes one line */
    assert_int_equal(extract("text/markdown", "---\ntitle: |\n  Two\n  lines\n---\nBody.\n", &d),
                     ALM_OK);
    assert_string_equal(d.title, "Two lines");
    assert_string_equal(d.text, "Body.");
    alm_extracted_release(&d);
    /* plain text has no title of its own */
    assert_int_equal(extract("text/plain", "# not a heading", &d), ALM_OK);
    assert_null(d.title);
    alm_extracted_release(&d);
}

static void builder_pages_cells_and_sections(void **state)
{
    struct alm_build b;
    struct alm_extracted d;
    struct alm_errbuf eb;

    (void)state;
    alm_build_init(&b, 1 << 20, "sheet");
    alm_build_location(&b, 1);
    alm_build_heading_begin(&b, 1);
    assert_int_equal(alm_build_text(&b, "Budget", 6), ALM_OK);
    alm_build_heading_end(&b);
    assert_int_equal(alm_build_text(&b, "  Ferry  ", 9), ALM_OK);
    alm_build_cell_end(&b);
    assert_int_equal(alm_build_text(&b, "1200", 4), ALM_OK);
    alm_build_cell_end(&b);
    alm_build_break(&b, ALM_BRK_LINE);
    assert_int_equal(alm_build_text(&b, "Ship", 4), ALM_OK);
    alm_build_location(&b, 2);
    alm_build_location(&b, 3); /* an empty sheet: the later number wins */
    assert_int_equal(alm_build_text(&b, "Staff", 5), ALM_OK);
    assert_int_equal(alm_build_finish(&b, &d, &eb), ALM_OK);
    assert_string_equal(d.text, "Budget\n\nFerry | 1200\nShip\n\nStaff");
    assert_string_equal(d.location_kind, "sheet");
    assert_int_equal(d.nlocations, 2);
    assert_int_equal(d.locations[1].number, 3);
    assert_string_equal(d.text + d.locations[1].start, "Staff");
    assert_int_equal(alm_extracted_location_at(&d, 0), 1);
    assert_int_equal(alm_extracted_location_at(&d, d.len - 1), 3);
    assert_null(d.title); /* a sheet name is no title for the workbook */
    assert_int_equal(d.nsections, 1);
    assert_int_equal(d.sections[0].end, d.len);
    alm_extracted_release(&d);
    /* nothing visible: refused, and released */
    alm_build_init(&b, 1 << 20, NULL);
    assert_int_equal(alm_build_text(&b, " \n ", 3), ALM_OK);
    assert_int_equal(alm_build_finish(&b, &d, &eb), ALM_ERR_UNPROCESSABLE);
    alm_extracted_release(&d);
}

static void pdftotext_pages(void **state)
{
    struct alm_extracted d;
    struct alm_errbuf eb;
    const char out[] = "Title line\nsecond line\n\nnew para\n\f\fThird page\n\f";

    (void)state;
    assert_int_equal(alm_extract_pdf_pages(out, sizeof(out) - 1, 1 << 20, &d, &eb), ALM_OK);
    assert_string_equal(d.text, "Title line\nsecond line\n\nnew para\n\nThird page");
    assert_string_equal(d.location_kind, "page");
    assert_int_equal(d.nlocations, 2); /* page 2 is empty */
    assert_int_equal(d.locations[1].number, 3);
    alm_extracted_release(&d);
    assert_int_equal(alm_extract_pdf_pages("\xff", 1, 1 << 20, &d, &eb), ALM_ERR_UNPROCESSABLE);
    alm_extracted_release(&d);
}

static void child_answers_checked(void **state)
{
    struct alm_extracted d;
    struct alm_errbuf eb;
    const char *good = "{\"text\":\"h\u00e9 there\",\"sections\":[[0,9,1,\"h\u00e9\"]],"
                       "\"kind\":\"slide\",\"locations\":[[0,1],[4,2]],\"title\":null}";
    const char *bad[] = {
        "{\"text\":\"abc\",\"sections\":[[0,9,1,\"x\"]],\"locations\":[]}", /* past end */
        "{\"text\":\"h\u00e9\",\"sections\":[],\"locations\":[[2,1]]}",     /* mid code point */
        "{\"text\":\"abc\",\"sections\":[],\"locations\":[[2,1],[1,2]]}",   /* out of order */
        "{\"text\":\"abc\",\"sections\":[[0,1,9,\"x\"]],\"locations\":[]}", /* level */
        "not json",
    };

    (void)state;
    assert_int_equal(alm_extracted_from_json(good, strlen(good), &d, &eb), ALM_OK);
    assert_string_equal(d.location_kind, "slide");
    assert_int_equal(d.nlocations, 2);
    assert_null(d.title);
    alm_extracted_release(&d);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(alm_extracted_from_json(bad[i], strlen(bad[i]), &d, &eb),
                         ALM_ERR_UNPROCESSABLE);
        assert_null(d.text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_unchanged),
        cmocka_unit_test(markdown_sections_nest),
        cmocka_unit_test(markdown_inline_markup_stripped),
        cmocka_unit_test(markdown_lists_code_and_html),
        cmocka_unit_test(html_drops_non_text),
        cmocka_unit_test(html_entities_decoded),
        cmocka_unit_test(html_headings_become_sections),
        cmocka_unit_test(html_lists_tables_pre),
        cmocka_unit_test(html_malformed_tolerated),
        cmocka_unit_test(limits_refused),
        cmocka_unit_test(long_title_cut_on_boundary),
        cmocka_unit_test(empty_results_refused),
        cmocka_unit_test(bad_input_refused),
        cmocka_unit_test(front_matter_reader),
        cmocka_unit_test(front_matter_bound),
        cmocka_unit_test(markdown_front_matter_is_metadata),
        cmocka_unit_test(builder_pages_cells_and_sections),
        cmocka_unit_test(pdftotext_pages),
        cmocka_unit_test(child_answers_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
