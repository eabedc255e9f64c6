/* SPDX-License-Identifier: Apache-2.0 */
/* Chunking: each stretch between section starts is cut on its own, so no chunk crosses
 * a heading. Within a stretch a chunk is aimed at the target length and ends at the best
 * boundary within [0.6, 1.2] x target characters: a paragraph break, else a sentence
 * end, else a space, else a cut at target. Every boundary looked for is an ASCII byte,
 * so a position found next to one is always on a UTF-8 sequence boundary. */
#include "compat.h"
#include "chunker.h"
#include "mem.h"

#include <string.h>

struct chunker {
    const struct alm_extracted *doc;
    const char *t;
    size_t min_cp, target_cp, max_cp, overlap_cp;
    struct alm_chunk *chunks;
    size_t n, alloc;
    size_t cur_byte, cur_cp; /* a known byte / code point pair, to count from */
};

static bool is_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static bool is_stop(char c)
{
    return c == '.' || c == '!' || c == '?';
}

static bool is_cont(char c)
{
    return ((unsigned char)c & 0xc0) == 0x80;
}

/* Up to k code points forward from i, not past end. */
static size_t forward(const char *t, size_t i, size_t end, size_t k)
{
    while (k-- > 0 && i < end) {
        i++;
        while (i < end && is_cont(t[i]))
            i++;
    }
    return i;
}

/* Up to k code points back from i, not before start. */
static size_t backward(const char *t, size_t i, size_t start, size_t k)
{
    while (k-- > 0 && i > start) {
        i--;
        while (i > start && is_cont(t[i]))
            i--;
    }
    return i;
}

static size_t skip_space(const char *t, size_t i, size_t end)
{
    while (i < end && is_space(t[i]))
        i++;
    return i;
}

static size_t trim_back(const char *t, size_t start, size_t end)
{
    while (end > start && is_space(t[end - 1]))
        end--;
    return end;
}

/* Whether the newline at t[i] ends a blank line (a paragraph break), looking no further
 * back than start. */
static bool ends_blank_line(const char *t, size_t start, size_t i)
{
    while (i > start && (t[i - 1] == ' ' || t[i - 1] == '\t' || t[i - 1] == '\r'))
        i--;
    return i > start && t[i - 1] == '\n';
}

/* Where a chunk starting at c (not a space) ends, before trimming; end is the trimmed end
 * of the stretch. */
static size_t chunk_end(const struct chunker *ck, size_t c, size_t end)
{
    const char *t = ck->t;
    size_t hi = forward(t, c, end, ck->max_cp);
    size_t lo, sentence = 0, space = 0;

    if (hi == end)
        return end; /* the rest fits */
    lo = forward(t, c, hi, ck->min_cp);
    for (size_t e = hi; e >= lo; e--) {
        if (!is_space(t[e]))
            continue;
        if (t[e] == '\n' && ends_blank_line(t, c, e))
            return e;
        if (!sentence && is_stop(t[e - 1]))
            sentence = e;
        if (!space)
            space = e;
    }
    if (sentence)
        return sentence;
    if (space)
        return space;
    return forward(t, c, hi, ck->target_cp);
}

/* Whether the word at p (after a space) opens a sentence or a paragraph. */
static bool opens_sentence(const char *t, size_t start, size_t p)
{
    size_t newlines = 0;

    while (p > start && is_space(t[p - 1]))
        newlines += t[--p] == '\n';
    return newlines >= 2 || (p > start && is_stop(t[p - 1]));
}

/* Where the chunk after [s, te) starts: about overlap characters before te, at the
 * first sentence start there, else at the first word start; never at or before s. */
static size_t overlap_start(const struct chunker *ck, size_t s, size_t te)
{
    const char *t = ck->t;
    size_t q = backward(t, te, s, ck->overlap_cp);
    size_t word = 0;

    if (q <= s)
        q = s + 1;
    for (size_t p = q; p < te; p++) {
        if (is_space(t[p]) || !is_space(t[p - 1]))
            continue;
        if (opens_sentence(t, s, p))
            return p;
        if (!word)
            word = p;
    }
    return word;
}

/* The code point offset of byte offset pos, counted from the last one asked for. */
static size_t cp_at(struct chunker *ck, size_t pos)
{
    while (ck->cur_byte < pos) {
        ck->cur_cp += !is_cont(ck->t[ck->cur_byte]);
        ck->cur_byte++;
    }
    while (ck->cur_byte > pos) {
        ck->cur_byte--;
        ck->cur_cp -= !is_cont(ck->t[ck->cur_byte]);
    }
    return ck->cur_cp;
}

static void add_chunk(struct chunker *ck, size_t start, size_t end)
{
    const struct alm_section *sec = alm_extracted_section_at(ck->doc, start);
    struct alm_chunk *c;

    if (ck->n == ck->alloc) {
        ck->alloc = ck->alloc ? ck->alloc * 2 : 16;
        ck->chunks = alm_xrealloc(ck->chunks, ck->alloc * sizeof(*ck->chunks));
    }
    c = &ck->chunks[ck->n++];
    memset(c, 0, sizeof(*c)); /* padding too: chunks compare byte for byte */
    c->start = start;
    c->end = end;
    c->cstart = cp_at(ck, start);
    c->cend = cp_at(ck, end);
    c->section = sec ? sec->title : NULL;
    c->location = alm_extracted_location_at(ck->doc, start);
}

/* Chunks the stretch t[from..to), which no section start lies inside. */
static void chunk_stretch(struct chunker *ck, size_t from, size_t to)
{
    const char *t = ck->t;
    size_t end = trim_back(t, from, to);
    size_t s = skip_space(t, from, end);

    while (s < end) {
        size_t te = trim_back(t, s, chunk_end(ck, s, end));
        size_t next = skip_space(t, te, end);
        size_t c;

        add_chunk(ck, s, te);
        /* no overlap wanted, no word start to go back to, or no new text from there */
        if (next >= end || ck->overlap_cp == 0 || (c = overlap_start(ck, s, te)) == 0 ||
            trim_back(t, c, chunk_end(ck, c, end)) <= te)
            s = next;
        else
            s = c;
    }
}

enum alm_err alm_chunk_text(const struct alm_extracted *doc, const struct alm_chunk_opts *opts,
                            struct alm_chunk **out, size_t *n, struct alm_errbuf *eb)
{
    struct chunker ck = {.doc = doc, .t = doc->text};
    size_t from = 0;

    *out = NULL;
    *n = 0;
    if (opts->target_chars == 0 || opts->target_chars > SIZE_MAX / 4 ||
        (opts->overlap_chars > 0 && opts->overlap_chars * 2 >= opts->target_chars))
        return alm_fail(eb, ALM_ERR_INVALID, "chunk sizes out of range");
    ck.target_cp = opts->target_chars;
    ck.min_cp = opts->target_chars * 3 / 5 ? opts->target_chars * 3 / 5 : 1;
    ck.max_cp = opts->target_chars + opts->target_chars / 5;
    ck.overlap_cp = opts->overlap_chars;
    /* Stretches end at section and location starts, both lists in order: merged. */
    for (size_t i = 0, j = 0; i < doc->nsections || j < doc->nlocations;) {
        size_t at;
        if (j == doc->nlocations ||
            (i < doc->nsections && doc->sections[i].start <= doc->locations[j].start))
            at = doc->sections[i++].start;
        else
            at = doc->locations[j++].start;
        if (at <= from || at >= doc->len)
            continue; /* not a new stretch: a start at 0, a repeat, or out of order */
        chunk_stretch(&ck, from, at);
        from = at;
    }
    if (doc->len > 0)
        chunk_stretch(&ck, from, doc->len);
    *out = ck.chunks;
    *n = ck.n;
    return ALM_OK;
}
