/* SPDX-License-Identifier: Apache-2.0 */
/* chunker.h: splitting extracted text into overlapping chunks for search.
 *
 * Chunks follow the text's structure: a chunk ends at a paragraph break when one lies
 * near the target size, else at a sentence end, else at a space, and only as a last
 * resort inside a word, never inside a UTF-8 sequence. Chunks never cross a section
 * start (a heading begins a new chunk) nor a location start (a page, slide, sheet). Consecutive
 * chunks of one section overlap by about overlap characters, starting at a sentence or word
 * boundary. */
#pragma once
#include "compat.h"
#include "err.h"
#include "extract.h"

struct alm_chunk_opts {
    size_t target_chars;  /* aimed-at length in characters (code points), e.g. 800 */
    size_t overlap_chars; /* e.g. 100; less than target_chars / 2 */
};

struct alm_chunk {
    size_t start, end;   /* byte offsets in the extracted text: text[start..end) */
    size_t cstart, cend; /* the same in characters (code points), for clients */
    const char *section; /* borrowed from the extraction; NULL outside any section */
    int location;        /* page, slide, sheet or chapter of the chunk's start; 0: none */
};

/* Chunks doc. *out is a new array of *n chunks (caller frees); a document with text
 * always yields at least one chunk, and chunks cover all non-blank text in order. */
enum alm_err alm_chunk_text(const struct alm_extracted *doc, const struct alm_chunk_opts *opts,
                            struct alm_chunk **out, size_t *n, struct alm_errbuf *eb) ALM_MUSTCHECK;
