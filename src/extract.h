/* SPDX-License-Identifier: Apache-2.0 */
/* extract.h: document text for chunking: Markdown and HTML to clean text.
 *
 * The extracted text is what chunks, offsets and citations refer to: it is stored with
 * the document (documents.text) and served by GET /api/v1/documents/{id}/content.
 * Plain text is kept as is. Markdown (cmark) and HTML (libxml2's HTML parser) become
 * readable text: block elements separated by blank lines, list items on their own lines,
 * markup, scripts and styles dropped, entities decoded. Headings stay in the text as
 * their own paragraphs and also become sections: each section runs from its heading to
 * the next heading of the same or a higher level, and its title is the heading text. */
#pragma once
#include "compat.h"
#include "err.h"
#include "mem.h"

struct alm_section {
    size_t start; /* byte offset of the heading in text */
    size_t end;   /* byte offset where the section ends */
    int level;    /* 1..6 */
    char *title;  /* the heading's text, one line, owned by the extraction */
};

/* Where a page, slide, sheet or chapter begins: it runs to the next one's start. */
struct alm_location {
    size_t start; /* byte offset in text */
    int number;   /* 1-based: page 12, slide 3, sheet 2, chapter 4 */
};

struct alm_extracted {
    char *text; /* UTF-8, NUL-terminated, owned */
    size_t len;
    struct alm_section *sections; /* ordered by start, owned */
    size_t nsections;
    /* Paged formats only: "page", "slide", "sheet" or "chapter" (static), else NULL. */
    const char *location_kind;
    struct alm_location *locations; /* ordered by start, owned */
    size_t nlocations;
    char *title; /* from the document's metadata or first heading; NULL when none */
};

/* Extracts text from src (UTF-8, len bytes) of media type "text/plain", "text/markdown"
 * or "text/html". ALM_ERR_MEDIA_TYPE for any other type; ALM_ERR_UNPROCESSABLE when the
 * result holds no text at all. out is released with alm_extracted_release() also when
 * this fails. */
enum alm_err alm_extract(const char *media_type, const char *src, size_t len,
                         struct alm_extracted *out, struct alm_errbuf *eb) ALM_MUSTCHECK;
void alm_extracted_release(struct alm_extracted *doc);
/* The number of the location holding byte offset pos; 0 when none. */
int alm_extracted_location_at(const struct alm_extracted *doc, size_t pos);

/* A writer of extracted text for the paged formats (PDF, office, EPUB), with the same
 * layout rules as the Markdown and HTML walks: separators are held back until the next
 * visible text, runs of blank space become one separator, the strongest one wins. */
enum alm_brk { ALM_BRK_NONE, ALM_BRK_SPACE, ALM_BRK_LINE, ALM_BRK_PARA };
struct alm_build {
    struct alm_buf text;
    enum alm_brk pending;
    const char *kind;
    struct alm_location *locs;
    size_t nlocs, alocs;
    int pending_loc; /* a location starts at the next visible text; 0 when none */
    struct alm_section *secs;
    size_t nsecs, asecs;
    int hlevel; /* the open heading's level, 0 when none */
    size_t hstart;
    bool hseen;
    char *title;
    bool cell_sep; /* the next text on this line is another cell: " | " before it */
};
/* cap: the largest text in bytes; kind: the location kind or NULL. */
void alm_build_init(struct alm_build *b, size_t cap, const char *kind);
/* A new page/slide/sheet/chapter numbered number: a paragraph break before it. */
void alm_build_location(struct alm_build *b, int number);
/* Text; blank space inside it collapses to single spaces (line breaks too). */
enum alm_err alm_build_text(struct alm_build *b, const char *p, size_t n) ALM_MUSTCHECK;
void alm_build_break(struct alm_build *b, enum alm_brk brk);
/* A table cell that showed text ended: the next one on the line is set off by " | ". */
void alm_build_cell_end(struct alm_build *b);
/* A heading (level 1..6) around the text between begin and end: a section. */
void alm_build_heading_begin(struct alm_build *b, int level);
void alm_build_heading_end(struct alm_build *b);
/* Sets the title when none is set yet (metadata before first heading). */
void alm_build_title(struct alm_build *b, const char *title, size_t n);
/* Appends an extraction (a chapter) with its sections; alm_build_location first. */
enum alm_err alm_build_append(struct alm_build *b, const struct alm_extracted *x) ALM_MUSTCHECK;
/* Moves the result to out; ALM_ERR_UNPROCESSABLE when it holds no text. The builder is
 * released in every case. */
enum alm_err alm_build_finish(struct alm_build *b, struct alm_extracted *out,
                              struct alm_errbuf *eb) ALM_MUSTCHECK;
void alm_build_release(struct alm_build *b);

/* The innermost section holding byte offset pos, or NULL. */
const struct alm_section *alm_extracted_section_at(const struct alm_extracted *doc, size_t pos);
