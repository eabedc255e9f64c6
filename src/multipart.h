/* SPDX-License-Identifier: Apache-2.0 */
/* multipart.h: a parser of multipart/form-data bodies held in memory (RFC 7578).
 *
 * The body is already complete and capped by the HTTP server, so this is a bounded,
 * allocation-free scan: parts point into the body. */
#pragma once
#include "compat.h"
#include "err.h"

#define ALM_MULTIPART_MAX_PARTS 16

struct alm_multipart_part {
    const char *name;         /* the form field name: NUL-terminated copy in the parser */
    const char *filename;     /* NULL when absent */
    const char *content_type; /* NULL when absent */
    const char *data;         /* points into the body; not NUL-terminated */
    size_t len;
    char name_buf[128];
    char filename_buf[256];
    char content_type_buf[128];
};

/* Parts point into their own buffers and into the body: never copy this struct, and keep
 * the body alive while it is used. */
struct alm_multipart {
    struct alm_multipart_part parts[ALM_MULTIPART_MAX_PARTS];
    size_t nparts;
};

/* Parses body according to the Content-Type header value content_type (which must be
 * multipart/form-data with a boundary parameter, quoted or not). ALM_ERR_INVALID with a
 * short reason in eb on anything malformed: no boundary, missing closing delimiter,
 * part without Content-Disposition form-data name, too many parts, over-long header
 * values. Filenames are reduced to their last path component (no '/' or '\\'). */
enum alm_err alm_multipart_parse(const char *content_type, const char *body, size_t len,
                                 struct alm_multipart *out, struct alm_errbuf *eb) ALM_MUSTCHECK;
/* The first part named name, or NULL. */
const struct alm_multipart_part *alm_multipart_find(const struct alm_multipart *m,
                                                    const char *name);
