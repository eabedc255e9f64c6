/* SPDX-License-Identifier: Apache-2.0 */
/* Upload types: libmagic's answer for the bytes, reconciled with the declared type and
 * the file extension. One magic handle for the process behind a mutex: loading the
 * database costs milliseconds and a handle is not thread-safe. */
#include "compat.h"
#include "filetype.h"
#include "log.h"

#include <magic.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const char alm_filetype_accepted[] =
    "text/plain, text/markdown, text/html, application/pdf, DOCX, PPTX, XLSX, ODT, ODS, ODP, "
    "EPUB, image/png, image/jpeg, image/tiff";

#define DOCX "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
#define PPTX "application/vnd.openxmlformats-officedocument.presentationml.presentation"
#define XLSX "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#define ODT  "application/vnd.oasis.opendocument.text"
#define ODS  "application/vnd.oasis.opendocument.spreadsheet"
#define ODP  "application/vnd.oasis.opendocument.presentation"
#define EPUB "application/epub+zip"

static const struct {
    const char *ext, *type;
} by_ext[] = {
    {".txt", "text/plain"},
    {".text", "text/plain"},
    {".md", "text/markdown"},
    {".markdown", "text/markdown"},
    {".html", "text/html"},
    {".htm", "text/html"},
    {".xhtml", "text/html"},
    {".pdf", "application/pdf"},
    {".docx", DOCX},
    {".pptx", PPTX},
    {".xlsx", XLSX},
    {".odt", ODT},
    {".ods", ODS},
    {".odp", ODP},
    {".epub", EPUB},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".jpeg", "image/jpeg"},
    {".tif", "image/tiff"},
    {".tiff", "image/tiff"},
};

/* Binary types libmagic names exactly, as it names them. */
static const char *const exact[] = {
    "application/pdf", DOCX,         PPTX,        XLSX, ODT, ODS, ODP, EPUB,
    "image/png",       "image/jpeg", "image/tiff"};

static bool is_zip_type(const char *t)
{
    return strcmp(t, DOCX) == 0 || strcmp(t, PPTX) == 0 || strcmp(t, XLSX) == 0 ||
           strcmp(t, ODT) == 0 || strcmp(t, ODS) == 0 || strcmp(t, ODP) == 0 ||
           strcmp(t, EPUB) == 0;
}

static bool is_text_type(const char *t)
{
    return strcmp(t, "text/plain") == 0 || strcmp(t, "text/markdown") == 0 ||
           strcmp(t, "text/html") == 0;
}

/* What the client says: the declared type (parameters cut, lower-cased), else or when
 * generic the extension's. */
static void claimed(const char *declared, const char *filename, char *t, size_t n)
{
    size_t len = declared ? strcspn(declared, "; \t") : 0;
    const char *dot = strrchr(filename, '.');

    t[0] = '\0';
    if (len < n) {
        for (size_t i = 0; i < len; i++)
            t[i] =
                (char)((declared[i] >= 'A' && declared[i] <= 'Z') ? declared[i] + 32 : declared[i]);
        t[len] = '\0';
    }
    if (strcmp(t, "text/x-markdown") == 0)
        snprintf(t, n, "text/markdown");
    if (strcmp(t, "application/xhtml+xml") == 0)
        snprintf(t, n, "text/html");
    if (*t && strcmp(t, "application/octet-stream") != 0 && strcmp(t, "application/zip") != 0 &&
        strcmp(t, "text/plain") != 0)
        return;
    for (size_t i = 0; dot && i < ALM_ARRAY_SIZE(by_ext); i++) {
        if (strcasecmp(dot, by_ext[i].ext) == 0) {
            snprintf(t, n, "%s", by_ext[i].type);
            return;
        }
    }
}

static void sniff(const char *data, size_t len, char *out, size_t n)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static magic_t magic;
    static bool failed;
    const char *m = NULL;

    pthread_mutex_lock(&lock);
    if (!magic && !failed) {
        magic = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR | MAGIC_NO_CHECK_COMPRESS |
                           MAGIC_NO_CHECK_ELF);
        failed = !magic || magic_load(magic, NULL) != 0;
        if (failed) {
            if (magic)
                magic_close(magic);
            magic = NULL;
            alm_warn("filetype.no_magic",
                     "libmagic's database cannot be loaded; upload types come from names and "
                     "declared types only",
                     NULL);
        }
    }
    if (!failed)
        m = magic_buffer(magic, data, len);
    snprintf(out, n, "%s", m ? m : "");
    pthread_mutex_unlock(&lock);
}

void alm_filetype_detect(const char *data, size_t len, const char *declared, const char *filename,
                         char *out, size_t n)
{
    char said[128], found[128];

    claimed(declared, filename, said, sizeof(said));
    sniff(data, len, found, sizeof(found));
    out[0] = '\0';
    if (!found[0]) {
        /* no magic database (an image without libmagic-mgc): the client's word, as before
         * types came from the bytes */
        if (is_text_type(said) || is_zip_type(said) || strcmp(said, "application/pdf") == 0 ||
            strcmp(said, "image/png") == 0 || strcmp(said, "image/jpeg") == 0 ||
            strcmp(said, "image/tiff") == 0)
            snprintf(out, n, "%s", said);
        return;
    }
    for (size_t i = 0; i < ALM_ARRAY_SIZE(exact); i++) {
        if (strcmp(found, exact[i]) == 0) {
            /* libmagic may call any OOXML package by the first part it sees: the name
             * decides among the zip types */
            snprintf(out, n, "%s", is_zip_type(found) && is_zip_type(said) ? said : found);
            return;
        }
    }
    if ((strcmp(found, "application/zip") == 0 || strcmp(found, "application/octet-stream") == 0 ||
         strcmp(found, "application/x-zip-compressed") == 0) &&
        is_zip_type(said)) {
        snprintf(out, n, "%s", said);
        return;
    }
    if (strncmp(found, "text/", 5) == 0 || strcmp(found, "application/json") == 0 ||
        strcmp(found, "application/x-empty") == 0 ||
        (strcmp(found, "application/octet-stream") == 0 && is_text_type(said))) {
        /* text: the client's text type if it named one (Markdown looks like plain text
         * to libmagic), HTML if libmagic saw markup; a text file named as a binary
         * format is text all the same; a type no one accepts stays refused */
        if (is_text_type(said))
            snprintf(out, n, "%s", said);
        else if (strcmp(found, "text/html") == 0 && !*said)
            snprintf(out, n, "text/html");
        else if (!*said || is_zip_type(said) || strcmp(said, "application/pdf") == 0 ||
                 strncmp(said, "image/", 6) == 0)
            snprintf(out, n, "text/plain");
    }
}
