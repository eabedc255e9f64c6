/* SPDX-License-Identifier: Apache-2.0 */
/* extract_doc.h: extraction of every accepted type, the binary ones in the sandbox.
 *
 * Text types (plain, Markdown, HTML) go through alm_extract() in-process: they are
 * UTF-8 already and their parsers are bounded. PDF runs poppler's pdfinfo and
 * pdftotext (GPL tools, used as separate programs, never linked), pages split on form
 * feeds; images and PDFs without a text layer go through pdftoppm and tesseract when
 * OCR is on. Office, OpenDocument and EPUB files are read by `almanac extract` (libzip
 * and libxml2, extract_office.c) in the sandbox too, so that a zip or XML bomb, a
 * parser bug or a runaway allocation ends one child, not the worker. */
#pragma once
#include "compat.h"
#include "err.h"
#include "extract.h"
#include "sandbox.h"

struct alm_extract_env {
    const char *tools_dir; /* where pdftotext, pdfinfo, pdftoppm, tesseract are */
    const char *self;      /* the almanac binary, for `almanac extract` */
    bool ocr;
    const char *ocr_languages; /* tesseract's -l, e.g. "eng+deu" */
    int max_pages;             /* PDFs with more pages are refused */
    struct alm_sandbox_limits lim;
};

struct alm_config;
/* The environment from the settings (ALMANAC_OCR*, ALMANAC_EXTRACT_*, ...). */
void alm_extract_env_from_config(const struct alm_config *cfg, struct alm_extract_env *env);
/* The upload limit of a media type (ALMANAC_MAX_UPLOAD_BYTES_*). */
size_t alm_extract_upload_limit(const struct alm_config *cfg, const char *mt);

/* Whether documents of this type are binary (kept as bytes, extracted in the sandbox). */
bool alm_extract_is_binary(const char *media_type);
/* Extracts a document of media_type: text types from data[0..len), binary ones from
 * the memfd fd (alm_sandbox_memfd) when fd >= 0, else from data[0..len). Errors are the
 * document's own (bad file: ALM_ERR_UNPROCESSABLE, message fit for documents.error) or
 * ALM_ERR_INTERNAL when no child could be started. out is released with
 * alm_extracted_release(). */
enum alm_err alm_extract_document(const struct alm_extract_env *env, const char *media_type,
                                  const char *data, size_t len, int fd, struct alm_extracted *out,
                                  struct alm_errbuf *eb) ALM_MUSTCHECK;

/* The office side, also behind `almanac extract` (and the fuzz targets): DOCX, PPTX,
 * XLSX, ODT, ODS, ODP, EPUB from a zip in memory. Caps entries, each entry's and the
 * total uncompressed size and the compression ratio; XML without network, external
 * entities or DTD loading. */
enum alm_err alm_extract_office(const char *media_type, const char *data, size_t len,
                                struct alm_extracted *out, struct alm_errbuf *eb) ALM_MUSTCHECK;
/* The extraction as JSON (what `almanac extract` prints) and back, checking every
 * offset: the child's output is not trusted more than the document. */
char *alm_extracted_to_json(const struct alm_extracted *x);
enum alm_err alm_extracted_from_json(const char *json, size_t len, struct alm_extracted *out,
                                     struct alm_errbuf *eb) ALM_MUSTCHECK;
/* The PDF side that reads pdftotext's output (pages split on form feeds). */
enum alm_err alm_extract_pdf_pages(const char *txt, size_t len, size_t cap,
                                   struct alm_extracted *out, struct alm_errbuf *eb) ALM_MUSTCHECK;
