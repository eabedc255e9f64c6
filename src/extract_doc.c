/* SPDX-License-Identifier: Apache-2.0 */
/* Extraction by type: text in-process, PDF and images through poppler and Tesseract,
 * office files through `almanac extract`, the last two in the sandbox (sandbox.c). */
#include "compat.h"
#include "extract_doc.h"
#include "config.h"
#include "mem.h"
#include "text.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MT_PDF "application/pdf"

static const char *const binary_types[] = {
    MT_PDF,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
    "application/epub+zip",
    "image/png",
    "image/jpeg",
    "image/tiff",
};

bool alm_extract_is_binary(const char *media_type)
{
    for (size_t i = 0; i < ALM_ARRAY_SIZE(binary_types); i++) {
        if (strcmp(media_type, binary_types[i]) == 0)
            return true;
    }
    return false;
}

static bool is_image(const char *mt)
{
    return strncmp(mt, "image/", 6) == 0;
}

void alm_extract_env_from_config(const struct alm_config *cfg, struct alm_extract_env *env)
{
    memset(env, 0, sizeof(*env));
    env->tools_dir = cfg->extract_tools_dir;
    env->self = "/proc/self/exe";
    env->ocr = cfg->ocr;
    env->ocr_languages = cfg->ocr_languages;
    env->max_pages = (int)cfg->pdf_max_pages;
    env->lim.as_bytes = (size_t)cfg->extract_memory_mb << 20;
    env->lim.cpu_s = (int)cfg->extract_cpu_s;
    env->lim.fsize_bytes = 64u << 20; /* the tools write no file; a stray one stays small */
    env->lim.nofile = 64;
    env->lim.wall_ms = (int)cfg->extract_timeout_ms;
    env->lim.max_out = (size_t)cfg->extract_max_text;
}

size_t alm_extract_upload_limit(const struct alm_config *cfg, const char *mt)
{
    long lim = !alm_extract_is_binary(mt) ? cfg->max_upload_text
               : strcmp(mt, MT_PDF) == 0  ? cfg->max_upload_pdf
               : is_image(mt)             ? cfg->max_upload_image
                                          : cfg->max_upload_office;
    return (size_t)(lim < cfg->max_upload_bytes ? lim : cfg->max_upload_bytes);
}

/* What a child reads: the document's memfd, or bytes in memory (a page image). */
struct input {
    int fd; /* -1: data[0..len) */
    const char *data;
    size_t len;
};

/* Runs tool (a name in tools_dir, or the almanac binary when tool is NULL). */
static enum alm_err run(const struct alm_extract_env *env, const char *tool, const char **args,
                        const struct input *in, struct alm_sandbox_result *r, struct alm_errbuf *eb)
{
    const char *argv[16];
    char path[512];
    size_t n = 0;

    snprintf(path, sizeof(path), "%s/%s", env->tools_dir, tool ? tool : "");
    argv[n++] = tool ? path : env->self;
    for (size_t i = 0; args[i] && n < ALM_ARRAY_SIZE(argv) - 1; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    if (in->fd >= 0)
        return alm_sandbox_run_fd(argv, in->fd, &env->lim, r, eb);
    return alm_sandbox_run(argv, in->data, in->len, &env->lim, r, eb);
}

/* The document's error for a child that did not finish well; what names the format. */
/* Whether a tool's run is no result: it failed, was cut at its deadline or output cap,
 * or died of a signal (child_failed says which). */
static bool ran_badly(const struct alm_sandbox_result *r)
{
    return r->exit_code != 0 || r->timed_out || r->out_capped || r->signal;
}

static enum alm_err child_failed(const struct alm_extract_env *env, const char *what,
                                 const struct alm_sandbox_result *r, struct alm_errbuf *eb)
{
    if (r->timed_out)
        return alm_fail(eb, ALM_ERR_UNPROCESSABLE,
                        "%s could not be read: extraction took longer than %d ms", what,
                        env->lim.wall_ms);
    if (r->out_capped)
        return alm_fail(eb, ALM_ERR_UNPROCESSABLE,
                        "%s could not be read: its text is larger than %zu bytes", what,
                        env->lim.max_out);
    if (r->signal)
        return alm_fail(eb, ALM_ERR_UNPROCESSABLE,
                        "%s could not be read: the extractor was stopped by signal %d (%s)", what,
                        r->signal, r->signal == 24 ? "CPU time limit" : "likely its memory limit");
    if (r->exit_code == 127 || r->exit_code == 126)
        return alm_fail(eb, ALM_ERR_INTERNAL, "the %s extractor could not be started", what);
    return alm_fail(eb, ALM_ERR_UNPROCESSABLE, "%s could not be read: %s", what,
                    r->err[0] ? r->err : "the extractor failed");
}

/* Tesseract's output into b: paragraphs apart by blank lines, like pdftotext's. */
/* The OCR result in out, or err; none names an OCR that read nothing. Releases b. */
static enum alm_err ocr_finish(struct alm_build *b, enum alm_err err, struct alm_extracted *out,
                               const char *none, struct alm_errbuf *eb)
{
    if (err) {
        alm_build_release(b);
        return err;
    }
    err = alm_build_finish(b, out, eb);
    if (err == ALM_ERR_UNPROCESSABLE)
        alm_fail(eb, ALM_ERR_UNPROCESSABLE, "%s", none);
    return err;
}

static enum alm_err ocr_text(const struct alm_sandbox_result *r, struct alm_build *b,
                             struct alm_errbuf *eb)
{
    enum alm_err err = ALM_OK;

    if (!r->out.data)
        return ALM_OK; /* no output: no text */
    if (!alm_text_valid_utf8(r->out.data, r->out.len))
        return alm_fail(eb, ALM_ERR_UNPROCESSABLE, "OCR gave text that is not UTF-8");
    for (size_t i = 0; !err && i < r->out.len;) {
        size_t n = strcspn(r->out.data + i, "\n");
        if (n == 0)
            alm_build_break(b, ALM_BRK_PARA);
        err = alm_build_text(b, r->out.data + i, n);
        alm_build_break(b, ALM_BRK_LINE);
        i += n + 1;
    }
    return err;
}

/* One page image through tesseract; text appended to b. */
static enum alm_err ocr_image(const struct alm_extract_env *env, const char *img, size_t len,
                              struct alm_build *b, struct alm_errbuf *eb)
{
    const char *args[] = {"stdin", "stdout", "-l", env->ocr_languages, "--psm", "3", NULL};
    struct alm_sandbox_result r;
    struct input in = {-1, img, len};
    enum alm_err err = run(env, "tesseract", args, &in, &r, eb);

    if (!err && ran_badly(&r))
        err = child_failed(env, "image (OCR)", &r, eb);
    if (!err)
        err = ocr_text(&r, b, eb);
    alm_sandbox_result_release(&r);
    return err;
}

/* pdfinfo's page count; a count past INT_MAX stays over any page limit. */
static int page_count(const char *text)
{
    long n = strtol(text, NULL, 10); /* LONG_MAX on overflow */

    return n < 0 ? 0 : n > INT_MAX ? INT_MAX : (int)n;
}

struct pdf_info {
    int pages;
    bool encrypted;
    char title[256];
};

static enum alm_err pdf_info(const struct alm_extract_env *env, const struct input *in,
                             struct pdf_info *info, struct alm_errbuf *eb)
{
    const char *args[] = {"-enc", "UTF-8", "fd://0", NULL};
    struct alm_sandbox_result r;
    enum alm_err err = run(env, "pdfinfo", args, in, &r, eb);

    memset(info, 0, sizeof(*info));
    if (!err && r.exit_code != 0 && strstr(r.err, "Incorrect password"))
        err = alm_fail(eb, ALM_ERR_UNPROCESSABLE, "encrypted PDF: it needs a password to open");
    else if (!err && ran_badly(&r))
        err = child_failed(env, "PDF", &r, eb);
    for (const char *p = r.out.data; !err && p && *p;) {
        size_t n = strcspn(p, "\n");
        if (strncmp(p, "Pages:", 6) == 0)
            info->pages = page_count(p + 6);
        else if (strncmp(p, "Encrypted:", 10) == 0)
            info->encrypted = strstr(p + 10, "yes") != NULL && strstr(p + 10, "yes") < p + n;
        else if (strncmp(p, "Title:", 6) == 0 && n > 6) {
            const char *v = p + 6 + strspn(p + 6, " ");
            snprintf(info->title, sizeof(info->title), "%.*s", (int)(p + n - v), v);
        }
        p += n + (p[n] != '\0');
    }
    alm_sandbox_result_release(&r);
    return err;
}

enum alm_err alm_extract_pdf_pages(const char *txt, size_t len, size_t cap,
                                   struct alm_extracted *out, struct alm_errbuf *eb)
{
    struct alm_build b;
    enum alm_err err = ALM_OK;
    int page = 1;

    memset(out, 0, sizeof(*out));
    alm_build_init(&b, cap, "page");
    if (!alm_text_valid_utf8(txt, len))
        err = alm_fail(eb, ALM_ERR_UNPROCESSABLE, "PDF text is not valid UTF-8");
    alm_build_location(&b, page);
    for (size_t i = 0; !err && i < len;) {
        size_t n = 0;
        while (i + n < len && txt[i + n] != '\n' && txt[i + n] != '\f')
            n++;
        if (n == 0 && txt[i] == '\n')
            alm_build_break(&b, ALM_BRK_PARA); /* a blank line: a paragraph ends */
        err = alm_build_text(&b, txt + i, n);
        alm_build_break(&b, ALM_BRK_LINE);
        i += n;
        if (i < len && txt[i] == '\f')
            alm_build_location(&b, ++page);
        i += i < len;
    }
    if (err) {
        alm_build_release(&b);
        return err;
    }
    return alm_build_finish(&b, out, eb);
}

/* Every page rendered and read by tesseract: the document becomes the OCR text. */
static enum alm_err pdf_ocr(const struct alm_extract_env *env, const struct input *in, int pages,
                            struct alm_extracted *out, struct alm_errbuf *eb)
{
    struct alm_build b;
    enum alm_err err = ALM_OK;

    alm_build_init(&b, env->lim.max_out, "page");
    for (int p = 1; !err && p <= pages; p++) {
        char num[16];
        struct alm_sandbox_result r;
        snprintf(num, sizeof(num), "%d", p);
        const char *args[] = {"-r", "300", "-gray",       "-png",   "-f", num,
                              "-l", num,   "-singlefile", "fd://0", NULL};
        err = run(env, "pdftoppm", args, in, &r, eb);
        if (!err && ran_badly(&r))
            err = child_failed(env, "PDF page image", &r, eb);
        alm_build_location(&b, p);
        if (!err)
            err = ocr_image(env, r.out.data, r.out.len, &b, eb);
        alm_sandbox_result_release(&r);
    }
    return ocr_finish(&b, err, out, "no text layer and OCR found no text", eb);
}

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != ' ' && s[i] != '\n' && s[i] != '\f' && s[i] != '\t' && s[i] != '\r')
            return false;
    }
    return true;
}

static enum alm_err extract_pdf(const struct alm_extract_env *env, const struct input *in,
                                struct alm_extracted *out, struct alm_errbuf *eb)
{
    const char *args[] = {"-enc", "UTF-8", "-eol", "unix", "fd://0", "-", NULL};
    struct pdf_info info;
    struct alm_sandbox_result r;
    enum alm_err err = pdf_info(env, in, &info, eb);

    if (err)
        return err;
    if (info.pages > env->max_pages)
        return alm_fail(eb, ALM_ERR_UNPROCESSABLE, "PDF has %d pages, more than the %d allowed",
                        info.pages, env->max_pages);
    err = run(env, "pdftotext", args, in, &r, eb);
    if (!err && r.exit_code == 3)
        err = alm_fail(eb, ALM_ERR_UNPROCESSABLE, "encrypted PDF: copying its text is not allowed");
    else if (!err && ran_badly(&r))
        err = child_failed(env, "PDF", &r, eb);
    if (!err && (!r.out.data || blank(r.out.data, r.out.len))) {
        if (!env->ocr)
            err = alm_fail(eb, ALM_ERR_UNPROCESSABLE, "no text layer; OCR is off");
        else
            err = pdf_ocr(env, in, info.pages, out, eb);
    } else if (!err) {
        err = alm_extract_pdf_pages(r.out.data, r.out.len, env->lim.max_out, out, eb);
    }
    alm_sandbox_result_release(&r);
    if (!err && info.title[0] && alm_text_valid_utf8(info.title, strlen(info.title))) {
        free(out->title);
        out->title = alm_xstrdup(info.title); /* the PDF's own metadata comes first */
    }
    return err;
}

static enum alm_err extract_image(const struct alm_extract_env *env, const struct input *in,
                                  struct alm_extracted *out, struct alm_errbuf *eb)
{
    const char *args[] = {"stdin", "stdout", "-l", env->ocr_languages, "--psm", "3", NULL};
    struct alm_sandbox_result r;
    struct alm_build b;
    enum alm_err err;

    if (!env->ocr)
        return alm_fail(eb, ALM_ERR_UNPROCESSABLE, "an image has no text layer; OCR is off");
    alm_build_init(&b, env->lim.max_out, NULL);
    err = run(env, "tesseract", args, in, &r, eb);
    if (!err && ran_badly(&r))
        err = child_failed(env, "image (OCR)", &r, eb);
    if (!err)
        err = ocr_text(&r, &b, eb);
    alm_sandbox_result_release(&r);
    return ocr_finish(&b, err, out, "OCR found no text in the image", eb);
}

static enum alm_err extract_in_child(const struct alm_extract_env *env, const char *mt,
                                     const struct input *in, struct alm_extracted *out,
                                     struct alm_errbuf *eb)
{
    const char *args[] = {"extract", "--type", mt, NULL};
    struct alm_sandbox_result r;
    enum alm_err err = run(env, NULL, args, in, &r, eb);

    if (!err && r.exit_code == 65)
        err = alm_fail(eb, ALM_ERR_UNPROCESSABLE, "%s", r.err[0] ? r.err : "the file is invalid");
    else if (!err && ran_badly(&r))
        err = child_failed(env, "the file", &r, eb);
    if (!err)
        err = alm_extracted_from_json(r.out.data, r.out.len, out, eb);
    alm_sandbox_result_release(&r);
    return err;
}

enum alm_err alm_extract_document(const struct alm_extract_env *env, const char *media_type,
                                  const char *data, size_t len, int fd, struct alm_extracted *out,
                                  struct alm_errbuf *eb)
{
    struct input in = {fd, data, len};

    memset(out, 0, sizeof(*out));
    if (!alm_extract_is_binary(media_type))
        return alm_extract(media_type, data, len, out, eb);
    if (strcmp(media_type, MT_PDF) == 0)
        return extract_pdf(env, &in, out, eb);
    if (is_image(media_type))
        return extract_image(env, &in, out, eb);
    return extract_in_child(env, media_type, &in, out, eb);
}

/* ---- The child's answer ------------------------------------------------------------ */

char *alm_extracted_to_json(const struct alm_extracted *x)
{
    json_t *secs = json_array(), *locs = json_array(), *o;
    char *s;

    for (size_t i = 0; i < x->nsections; i++)
        json_array_append_new(secs, json_pack("[I, I, i, s]", (json_int_t)x->sections[i].start,
                                              (json_int_t)x->sections[i].end, x->sections[i].level,
                                              x->sections[i].title));
    for (size_t i = 0; i < x->nlocations; i++)
        json_array_append_new(
            locs, json_pack("[I, i]", (json_int_t)x->locations[i].start, x->locations[i].number));
    o = json_pack("{s:s%, s:o, s:o, s:o, s:o}", "text", x->text, x->len, "sections", secs, "kind",
                  x->location_kind ? json_string(x->location_kind) : json_null(), "locations", locs,
                  "title", x->title ? json_string(x->title) : json_null());
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static const char *known_kind(const char *k)
{
    static const char *const kinds[] = {"page", "slide", "sheet", "chapter"};
    for (size_t i = 0; k && i < ALM_ARRAY_SIZE(kinds); i++) {
        if (strcmp(k, kinds[i]) == 0)
            return kinds[i];
    }
    return NULL;
}

static bool on_boundary(const struct alm_extracted *x, json_int_t at)
{
    return at >= 0 && (size_t)at <= x->len &&
           ((size_t)at == x->len || ((unsigned char)x->text[at] & 0xc0) != 0x80);
}

enum alm_err alm_extracted_from_json(const char *json, size_t len, struct alm_extracted *out,
                                     struct alm_errbuf *eb)
{
    json_t *o = json_loadb(json ? json : "", len, 0, NULL), *secs, *locs, *v, *jkind = NULL,
           *jtitle = NULL;
    const char *text = NULL, *kind, *title;
    size_t tlen = 0, i;
    enum alm_err err = ALM_OK;

    memset(out, 0, sizeof(*out));
    if (!o ||
        json_unpack(o, "{s:s%, s:o, s:o, s?o, s?o}", "text", &text, &tlen, "sections", &secs,
                    "locations", &locs, "kind", &jkind, "title", &jtitle) != 0 ||
        !json_is_array(secs) || !json_is_array(locs) || !alm_text_valid_utf8(text, tlen)) {
        json_decref(o);
        return alm_fail(eb, ALM_ERR_UNPROCESSABLE, "the extractor's answer is malformed");
    }
    kind = json_string_value(jkind);
    title = json_string_value(jtitle);
    out->text = alm_xstrndup(text, tlen);
    out->len = tlen;
    out->location_kind = known_kind(kind);
    out->title = title ? alm_xstrdup(title) : NULL;
    out->sections = alm_xcalloc(json_array_size(secs) + 1, sizeof(*out->sections));
    json_array_foreach(secs, i, v)
    {
        json_int_t s, e;
        int level;
        const char *t;
        if (json_unpack(v, "[I, I, i, s]", &s, &e, &level, &t) != 0 || !on_boundary(out, s) ||
            !on_boundary(out, e) || e < s || level < 1 || level > 6 ||
            (out->nsections && (size_t)s < out->sections[out->nsections - 1].start)) {
            err = ALM_ERR_UNPROCESSABLE;
            break;
        }
        out->sections[out->nsections++] =
            (struct alm_section){(size_t)s, (size_t)e, level, alm_xstrdup(t)};
    }
    out->locations = alm_xcalloc(json_array_size(locs) + 1, sizeof(*out->locations));
    json_array_foreach(locs, i, v)
    {
        json_int_t s;
        int n;
        if (err || json_unpack(v, "[I, i]", &s, &n) != 0 || !on_boundary(out, s) || n < 1 ||
            (out->nlocations && (size_t)s < out->locations[out->nlocations - 1].start)) {
            err = ALM_ERR_UNPROCESSABLE;
            break;
        }
        out->locations[out->nlocations++] = (struct alm_location){(size_t)s, n};
    }
    json_decref(o);
    if (err) {
        alm_extracted_release(out);
        return alm_fail(eb, err, "the extractor's answer has offsets out of range");
    }
    if (strspn(out->text, " \t\r\n") == out->len) {
        alm_extracted_release(out);
        return alm_fail(eb, ALM_ERR_UNPROCESSABLE, "the document holds no text");
    }
    return ALM_OK;
}
