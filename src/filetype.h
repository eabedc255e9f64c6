/* SPDX-License-Identifier: Apache-2.0 */
/* filetype.h: what an upload is, from its bytes (libmagic) first, then its name. */
#pragma once
#include "compat.h"

/* The media type to store for an upload of data[0..len) named filename, declared as
 * declared (a Content-Type value or NULL): one of the accepted types, or "" when the
 * bytes are of no accepted type. Bytes win over the name: a PDF named .txt is a PDF, a
 * text file named .pdf is text. A zip is taken for the package type its name or
 * declared type says (DOCX, ODT, EPUB, ...) when libmagic does not tell them apart. */
void alm_filetype_detect(const char *data, size_t len, const char *declared, const char *filename,
                         char *out, size_t n);
/* The accepted types, for error messages. */
extern const char alm_filetype_accepted[];
