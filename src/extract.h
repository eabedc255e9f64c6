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

struct alm_section {
    size_t start; /* byte offset of the heading in text */
    size_t end;   /* byte offset where the section ends */
    int level;    /* 1..6 */
    char *title;  /* the heading's text, one line, owned by the extraction */
};

struct alm_extracted {
    char *text; /* UTF-8, NUL-terminated, owned */
    size_t len;
    struct alm_section *sections; /* ordered by start, owned */
    size_t nsections;
};

/* Extracts text from src (UTF-8, len bytes) of media type "text/plain", "text/markdown"
 * or "text/html". ALM_ERR_MEDIA_TYPE for any other type; ALM_ERR_UNPROCESSABLE when the
 * result holds no text at all. out is released with alm_extracted_release() also when
 * this fails. */
enum alm_err alm_extract(const char *media_type, const char *src, size_t len,
                         struct alm_extracted *out, struct alm_errbuf *eb) ALM_MUSTCHECK;
void alm_extracted_release(struct alm_extracted *doc);
/* The innermost section holding byte offset pos, or NULL. */
const struct alm_section *alm_extracted_section_at(const struct alm_extracted *doc, size_t pos);
