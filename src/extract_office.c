/* SPDX-License-Identifier: Apache-2.0 */
/* Office Open XML, OpenDocument and EPUB: a zip (libzip) of XML parts (libxml2).
 *
 * The zip is checked before anything is inflated: entry count, each entry's and the
 * total declared size, and the compression ratio; while inflating, an entry that gives
 * more than it declared is refused. XML is parsed without network access, without
 * entity substitution or DTD loading, and a part that declares entities is refused
 * outright (no package format needs them: that is an entity bomb). Text goes through
 * the builder of extract.c: paragraphs, headings as sections, and pages (explicit page
 * breaks), slides, sheets or chapters as locations. */
#include "compat.h"
#include "extract_doc.h"
#include "mem.h"
#include "text.h"

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zip.h>

#define MAX_ENTRIES 10000
#define MAX_ENTRY   (64u << 20)  /* one part, uncompressed */
#define MAX_TOTAL   (512u << 20) /* all entries, uncompressed, as declared */
#define MAX_RATIO   200          /* uncompressed / compressed, for entries over 1 MiB */
#define MAX_TEXT    (64u << 20)
#define MAX_DEPTH   256
#define MAX_PARTS   5000 /* slides, sheets or chapters */

enum fmt { F_DOCX, F_PPTX, F_XLSX, F_ODT, F_ODS, F_ODP, F_EPUB };

struct pkg {
    zip_t *zip;
    zip_source_t *src;
};

struct walk {
    enum fmt fmt;
    struct alm_build *b;
    char **strings; /* XLSX shared strings */
    size_t nstrings;
    int page;  /* DOCX/ODT page count so far */
    int sheet; /* ODS sheets / ODP pages so far */
};

static bool is(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static const char *attr(const xmlNode *n, const char *name)
{
    for (const xmlAttr *a = n->properties; a; a = a->next) {
        if (strcmp((const char *)a->name, name) == 0 && a->children &&
            a->children->type == XML_TEXT_NODE)
            return (const char *)a->children->content;
    }
    return NULL;
}

static enum alm_err pkg_open(const char *data, size_t len, struct pkg *p, struct alm_errbuf *eb)
{
    zip_error_t ze;
    zip_int64_t n;
    zip_uint64_t total = 0;

    memset(p, 0, sizeof(*p));
    zip_error_init(&ze);
    p->src = zip_source_buffer_create(data, len, 0, &ze);
    if (p->src)
        p->zip = zip_open_from_source(p->src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
    zip_error_fini(&ze);
    if (!p->zip) {
        if (p->src)
            zip_source_free(p->src);
        p->src = NULL;
        return alm_fail(eb, ALM_ERR_UNPROCESSABLE, "the file is not a readable zip package");
    }
    n = zip_get_num_entries(p->zip, 0);
    if (n < 0 || n > MAX_ENTRIES)
        return alm_fail(eb, ALM_ERR_UNPROCESSABLE, "the package has more than %d entries",
                        MAX_ENTRIES);
    for (zip_int64_t i = 0; i < n; i++) {
        zip_stat_t st;
        if (zip_stat_index(p->zip, (zip_uint64_t)i, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE) ||
            !(st.valid & ZIP_STAT_COMP_SIZE))
            return alm_fail(eb, ALM_ERR_UNPROCESSABLE, "the package has an unreadable entry");
        total += st.size;
        if (total > MAX_TOTAL)
            return alm_fail(eb, ALM_ERR_UNPROCESSABLE,
                            "the package would inflate to more than %u MiB (a zip bomb?)",
                            MAX_TOTAL >> 20);
        if (st.size > (1u << 20) && st.size / (st.comp_size ? st.comp_size : 1) > MAX_RATIO)
            return alm_fail(eb, ALM_ERR_UNPROCESSABLE,
                            "an entry compresses more than %d to 1 (a zip bomb?)", MAX_RATIO);
    }
    return ALM_OK;
}

static void pkg_close(struct pkg *p)
{
    if (p->zip)
        zip_discard(p->zip); /* frees the source too */
    else if (p->src)
        zip_source_free(p->src);
}

/* The entry name's content, NUL-terminated; *found false when there is no such entry. */
static enum alm_err pkg_read(struct pkg *p, const char *name, char **out, size_t *len, bool *found,
                             struct alm_errbuf *eb)
{
    zip_stat_t st;
    zip_file_t *f;
    zip_int64_t got = 0, r;
    char *buf;

    *out = NULL;
    *len = 0;
    *found = false;
    if (zip_stat(p->zip, name, 0, &st) != 0)
        return ALM_OK;
    *found = true;
    if (st.size > MAX_ENTRY)
        return alm_fail(eb, ALM_ERR_UNPROCESSABLE, "%.80s is larger than %u MiB", name,
                        MAX_ENTRY >> 20);
    f = zip_fopen_index(p->zip, st.index, 0);
    if (!f)
        return alm_fail(eb, ALM_ERR_UNPROCESSABLE, "%.80s cannot be read from the package", name);
    buf = alm_xmalloc((size_t)st.size + 2);
    /* One byte more than declared: an entry that gives more is lying about its size. */
    while ((r = zip_fread(f, buf + got, st.size + 1 - (zip_uint64_t)got)) > 0) {
        got += r;
        if ((zip_uint64_t)got > st.size)
            break;
    }
    zip_fclose(f);
    if (r < 0 || (zip_uint64_t)got != st.size) {
        free(buf);
        return alm_fail(eb, ALM_ERR_UNPROCESSABLE, "%.80s is damaged in the package", name);
    }
    buf[got] = '\0';
    *out = buf;
    *len = (size_t)got;
    return ALM_OK;
}

static enum alm_err parse_xml(const char *data, size_t len, const char *name, xmlDoc **doc,
                              struct alm_errbuf *eb)
{
    /* No XML_PARSE_NOENT (no entity substitution), no DTDLOAD/DTDATTR, no network. */
    const int opts = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA;

    *doc = NULL;
    if (len > INT32_MAX)
        return alm_fail(eb, ALM_ERR_UNPROCESSABLE, "%.80s is too large", name);
    if (memmem(data, len, "<!ENTITY", 8))
        return alm_fail(eb, ALM_ERR_UNPROCESSABLE,
                        "%.80s declares XML entities, which no package needs (an entity bomb?)",
                        name);
    *doc = xmlReadMemory(data, (int)len, NULL, NULL, opts);
    if (!*doc)
        return alm_fail(eb, ALM_ERR_UNPROCESSABLE, "%.80s is not well-formed XML", name);
    return ALM_OK;
}

/* Reads and parses one part; *doc NULL (and ALM_OK) when the part is absent. */
static enum alm_err read_xml(struct pkg *p, const char *name, xmlDoc **doc, struct alm_errbuf *eb)
{
    char *data;
    size_t len;
    bool found;
    enum alm_err err = pkg_read(p, name, &data, &len, &found, eb);

    *doc = NULL;
    if (!err && found && data)
        err = parse_xml(data, len, name, doc, eb);
    free(data);
    return err;
}

/* All text under n, for titles and shared strings (phonetic runs left out). */
static void gather(const xmlNode *n, struct alm_buf *out, int depth)
{
    for (const xmlNode *c = n; c && depth < MAX_DEPTH; c = c->next) {
        if (c->type == XML_TEXT_NODE && c->content &&
            alm_buf_append(out, c->content, strlen((const char *)c->content)))
            return; /* past the cap: the text so far is enough for a title or a cell */
        else if (c->type == XML_ELEMENT_NODE && !is(c, "rPh"))
            gather(c->children, out, depth + 1);
    }
}

static void title_from(struct pkg *p, struct alm_build *b, const char *part)
{
    struct alm_errbuf eb;
    xmlDoc *doc = NULL;

    if (read_xml(p, part, &doc, &eb) || !doc)
        goto out;
    /* dc:title anywhere (core.xml, meta.xml, the OPF's metadata) */
    for (xmlNode *n = xmlDocGetRootElement(doc); n;) {
        if (is(n, "title") && n->ns && n->ns->prefix &&
            strcmp((const char *)n->ns->prefix, "dc") == 0) {
            struct alm_buf t = ALM_BUF_INIT(4096);
            gather(n->children, &t, 0);
            if (t.data)
                alm_build_title(b, t.data, t.len);
            alm_buf_release(&t);
            break;
        }
        if (n->children && n->type == XML_ELEMENT_NODE)
            n = n->children;
        else {
            while (n && !n->next)
                n = n->parent && n->parent->type == XML_ELEMENT_NODE ? n->parent : NULL;
            if (n)
                n = n->next;
        }
    }
out:
    xmlFreeDoc(doc);
}

static enum alm_err text_node(struct walk *w, const xmlNode *n)
{
    return n->content
               ? alm_build_text(w->b, (const char *)n->content, strlen((const char *)n->content))
               : ALM_OK;
}

static enum alm_err walk(struct walk *w, const xmlNode *n, int depth);

/* DOCX: a paragraph's heading level from its style (Heading1..6, Title), 0 if none. */
static int docx_heading(const xmlNode *p)
{
    for (const xmlNode *c = p->children; c; c = c->next) {
        if (!is(c, "pPr"))
            continue;
        for (const xmlNode *s = c->children; s; s = s->next) {
            const char *v = is(s, "pStyle") ? attr(s, "val") : NULL;
            if (v && strcasecmp(v, "Title") == 0)
                return 1;
            if (v && strncasecmp(v, "Heading", 7) == 0 && v[7] >= '1' && v[7] <= '6')
                return v[7] - '0';
        }
    }
    return 0;
}

static bool pptx_title_shape(const xmlNode *sp)
{
    for (const xmlNode *a = sp->children; a; a = a->next) {
        if (!is(a, "nvSpPr"))
            continue;
        for (const xmlNode *b = a->children; b; b = b->next) {
            for (const xmlNode *c = is(b, "nvPr") ? b->children : NULL; c; c = c->next) {
                const char *t = is(c, "ph") ? attr(c, "type") : NULL;
                if (t && (strcmp(t, "title") == 0 || strcmp(t, "ctrTitle") == 0))
                    return true;
            }
        }
    }
    return false;
}

static enum alm_err walk_children(struct walk *w, const xmlNode *n, int depth)
{
    enum alm_err err = ALM_OK;
    for (const xmlNode *c = n->children; c && !err; c = c->next)
        err = walk(w, c, depth + 1);
    return err;
}

/* A block (paragraph, heading or row) around the children. */
static enum alm_err block(struct walk *w, const xmlNode *n, int depth, int heading,
                          enum alm_brk brk)
{
    enum alm_err err;

    if (heading)
        alm_build_heading_begin(w->b, heading);
    alm_build_break(w->b, brk);
    err = walk_children(w, n, depth);
    if (heading)
        alm_build_heading_end(w->b);
    alm_build_break(w->b, brk);
    return err;
}

static enum alm_err cell(struct walk *w, const xmlNode *n, int depth)
{
    size_t before = w->b->text.len;
    enum alm_err err = walk_children(w, n, depth);
    if (w->b->text.len > before)
        alm_build_cell_end(w->b);
    return err;
}

static enum alm_err walk_ooxml(struct walk *w, const xmlNode *n, int depth, bool *done)
{
    *done = true;
    if (is(n, "t") && w->fmt != F_XLSX)
        return walk_children(w, n, depth);
    if (is(n, "p"))
        return block(w, n, depth, w->fmt == F_DOCX ? docx_heading(n) : 0, ALM_BRK_PARA);
    if (is(n, "tab")) {
        alm_build_break(w->b, ALM_BRK_SPACE);
        return ALM_OK;
    }
    if (is(n, "br")) {
        const char *type = attr(n, "type");
        if (w->fmt == F_DOCX && type && strcmp(type, "page") == 0)
            alm_build_location(w->b, ++w->page);
        else
            alm_build_break(w->b, ALM_BRK_LINE);
        return ALM_OK;
    }
    if (is(n, "lastRenderedPageBreak") && w->fmt == F_DOCX) {
        alm_build_location(w->b, ++w->page);
        return ALM_OK;
    }
    if (is(n, "instrText") || is(n, "delText") || is(n, "rPh"))
        return ALM_OK; /* field codes, deleted text, phonetic guides */
    if (is(n, "tr"))
        return block(w, n, depth, 0, ALM_BRK_LINE);
    if (is(n, "tc"))
        return cell(w, n, depth);
    if (is(n, "sp") && w->fmt == F_PPTX && pptx_title_shape(n))
        return block(w, n, depth, 2, ALM_BRK_PARA);
    *done = false;
    return ALM_OK;
}

/* text:outline-level as a heading level: 1 when absent, 0 (a paragraph) when 0 or not a
 * number, else clamped to 1..6 (strtol gives LONG_MIN or LONG_MAX on overflow). */
static int outline_level(const char *v)
{
    long n = v ? strtol(v, NULL, 10) : 1;

    return n < 0 ? 1 : n > 6 ? 6 : (int)n;
}

static enum alm_err walk_odf(struct walk *w, const xmlNode *n, int depth, bool *done)
{
    const char *v;

    *done = true;
    if (is(n, "h")) {
        v = attr(n, "outline-level");
        return block(w, n, depth, outline_level(v), ALM_BRK_PARA);
    }
    if (is(n, "p"))
        return block(w, n, depth, 0, ALM_BRK_PARA);
    if (is(n, "s") || is(n, "tab")) {
        alm_build_break(w->b, ALM_BRK_SPACE);
        return ALM_OK;
    }
    if (is(n, "line-break")) {
        alm_build_break(w->b, ALM_BRK_LINE);
        return ALM_OK;
    }
    if (is(n, "soft-page-break") && w->fmt == F_ODT) {
        alm_build_location(w->b, ++w->page);
        return ALM_OK;
    }
    if (is(n, "annotation") || is(n, "notes") || is(n, "tracked-changes"))
        return ALM_OK;
    if (is(n, "table") && w->fmt == F_ODS) {
        const char *name = attr(n, "name");
        enum alm_err err = ALM_OK;
        alm_build_location(w->b, ++w->sheet);
        if (name) {
            alm_build_heading_begin(w->b, 1);
            err = alm_build_text(w->b, name, strlen(name));
            alm_build_heading_end(w->b);
        }
        return err ? err : walk_children(w, n, depth);
    }
    if (is(n, "page") && w->fmt == F_ODP) {
        alm_build_location(w->b, ++w->sheet);
        return walk_children(w, n, depth);
    }
    if (is(n, "frame") && w->fmt == F_ODP && (v = attr(n, "class")) && strcmp(v, "title") == 0)
        return block(w, n, depth, 2, ALM_BRK_PARA);
    if (is(n, "table-row"))
        return block(w, n, depth, 0, ALM_BRK_LINE);
    if (is(n, "table-cell"))
        return cell(w, n, depth);
    *done = false;
    return ALM_OK;
}

static enum alm_err walk(struct walk *w, const xmlNode *n, int depth)
{
    bool done = false;
    enum alm_err err;

    if (depth > MAX_DEPTH)
        return ALM_ERR_UNPROCESSABLE;
    if (n->type == XML_TEXT_NODE)
        return n->parent && (is(n->parent, "t") || is(n->parent, "span") || is(n->parent, "p") ||
                             is(n->parent, "h") || is(n->parent, "a"))
                   ? text_node(w, n)
                   : ALM_OK;
    if (n->type != XML_ELEMENT_NODE)
        return ALM_OK; /* entity references among them: never followed */
    err = w->fmt <= F_XLSX ? walk_ooxml(w, n, depth, &done) : walk_odf(w, n, depth, &done);
    return err || done ? err : walk_children(w, n, depth);
}

static enum alm_err walk_part(struct walk *w, struct pkg *p, const char *name, bool required,
                              struct alm_errbuf *eb)
{
    xmlDoc *doc = NULL;
    enum alm_err err = read_xml(p, name, &doc, eb);

    if (!err && !doc && required)
        err = alm_fail(eb, ALM_ERR_UNPROCESSABLE, "the package has no %s", name);
    if (!err && doc) {
        err = walk(w, xmlDocGetRootElement(doc), 0);
        if (err == ALM_ERR_UNPROCESSABLE && !eb->msg[0])
            alm_fail(eb, err, "%.80s nests deeper than %d elements", name, MAX_DEPTH);
        else if (err == ALM_ERR_TOO_LARGE)
            err = alm_fail(eb, ALM_ERR_UNPROCESSABLE, "its text is larger than %u MiB",
                           MAX_TEXT >> 20);
    }
    xmlFreeDoc(doc);
    return err;
}

/* ---- PPTX: slides in number order -------------------------------------------------- */

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The number of a slide part ("ppt/slides/slide12.xml"), or 0 when name is none. The
 * digits are an untrusted package's: strtol, whose overflow is defined, reads them. */
static int slide_number(const char *name)
{
    static const char prefix[] = "ppt/slides/slide";
    const char *digits = name ? name + sizeof(prefix) - 1 : NULL;
    char *end;
    long num;

    if (!name || strncmp(name, prefix, sizeof(prefix) - 1) != 0 || *digits < '0' || *digits > '9')
        return 0;
    num = strtol(digits, &end, 10);
    return num > 0 && num <= INT_MAX && strcmp(end, ".xml") == 0 ? (int)num : 0;
}

static enum alm_err pptx(struct walk *w, struct pkg *p, struct alm_errbuf *eb)
{
    zip_int64_t n = zip_get_num_entries(p->zip, 0);
    int *nums = alm_xcalloc(MAX_PARTS, sizeof(int));
    size_t count = 0;
    enum alm_err err = ALM_OK;

    for (zip_int64_t i = 0; i < n && count < MAX_PARTS; i++) {
        int num = slide_number(zip_get_name(p->zip, (zip_uint64_t)i, 0));
        if (num > 0)
            nums[count++] = num;
    }
    qsort(nums, count, sizeof(int), cmp_int);
    for (size_t i = 0; i < count && !err; i++) {
        char name[64];
        snprintf(name, sizeof(name), "ppt/slides/slide%d.xml", nums[i]);
        alm_build_location(w->b, (int)i + 1);
        err = walk_part(w, p, name, true, eb);
    }
    free(nums);
    return err;
}

/* ---- XLSX: sheets by the workbook's order, cells through the shared strings -------- */

static enum alm_err xlsx_strings(struct walk *w, struct pkg *p, struct alm_errbuf *eb)
{
    xmlDoc *doc;
    enum alm_err err = read_xml(p, "xl/sharedStrings.xml", &doc, eb);
    size_t alloc = 0;

    if (err || !doc)
        return err;
    for (xmlNode *si = xmlDocGetRootElement(doc)->children; si; si = si->next) {
        struct alm_buf t = ALM_BUF_INIT(1u << 20);
        if (!is(si, "si"))
            continue;
        gather(si->children, &t, 0);
        if (w->nstrings == alloc) {
            alloc = alloc ? alloc * 2 : 64;
            w->strings = alm_xrealloc(w->strings, alloc * sizeof(char *));
        }
        w->strings[w->nstrings++] = t.data ? alm_buf_detach(&t, NULL) : alm_xstrdup("");
    }
    xmlFreeDoc(doc);
    return ALM_OK;
}

static enum alm_err xlsx_cell(struct walk *w, const xmlNode *c)
{
    const char *type = attr(c, "t");
    struct alm_buf v = ALM_BUF_INIT(1u << 20);
    const char *text;
    enum alm_err err = ALM_OK;

    for (const xmlNode *k = c->children; k; k = k->next) {
        if (is(k, "v") || is(k, "is"))
            gather(k->children, &v, 0);
    }
    text = v.data ? v.data : "";
    if (type && strcmp(type, "s") == 0) {
        char *end;
        unsigned long i = strtoul(text, &end, 10);
        text = *text && !*end && i < w->nstrings ? w->strings[i] : "";
    } else if (type && strcmp(type, "b") == 0) {
        text = strcmp(text, "1") == 0 ? "TRUE" : "FALSE";
    }
    if (*text && alm_text_valid_utf8(text, strlen(text))) {
        err = alm_build_text(w->b, text, strlen(text));
        alm_build_cell_end(w->b);
    }
    alm_buf_release(&v);
    return err;
}

static enum alm_err xlsx_sheet(struct walk *w, struct pkg *p, const char *part,
                               struct alm_errbuf *eb)
{
    xmlDoc *doc;
    enum alm_err err = read_xml(p, part, &doc, eb);

    if (err || !doc)
        return err;
    for (xmlNode *sd = xmlDocGetRootElement(doc)->children; sd && !err; sd = sd->next) {
        for (xmlNode *row = is(sd, "sheetData") ? sd->children : NULL; row && !err;
             row = row->next) {
            if (!is(row, "row"))
                continue;
            alm_build_break(w->b, ALM_BRK_LINE);
            for (xmlNode *c = row->children; c && !err; c = c->next) {
                if (is(c, "c"))
                    err = xlsx_cell(w, c);
            }
            alm_build_break(w->b, ALM_BRK_LINE);
        }
    }
    xmlFreeDoc(doc);
    return err;
}

/* Relationship id -> target, from a .rels part; NULL when absent. */
static char *rel_target(xmlDoc *rels, const char *id)
{
    for (xmlNode *r = rels ? xmlDocGetRootElement(rels)->children : NULL; r; r = r->next) {
        const char *rid = is(r, "Relationship") ? attr(r, "Id") : NULL;
        if (rid && strcmp(rid, id) == 0 && attr(r, "Target"))
            return alm_xstrdup(attr(r, "Target"));
    }
    return NULL;
}

static enum alm_err xlsx(struct walk *w, struct pkg *p, struct alm_errbuf *eb)
{
    xmlDoc *book = NULL, *rels = NULL;
    enum alm_err err = xlsx_strings(w, p, eb);

    if (!err)
        err = read_xml(p, "xl/workbook.xml", &book, eb);
    if (!err && !book)
        err = alm_fail(eb, ALM_ERR_UNPROCESSABLE, "the package has no xl/workbook.xml");
    if (!err)
        err = read_xml(p, "xl/_rels/workbook.xml.rels", &rels, eb);
    for (xmlNode *s = book ? xmlDocGetRootElement(book)->children : NULL; s && !err; s = s->next) {
        for (xmlNode *sh = is(s, "sheets") ? s->children : NULL; sh && !err; sh = sh->next) {
            const char *name = is(sh, "sheet") ? attr(sh, "name") : NULL;
            const char *rid = name ? attr(sh, "id") : NULL;
            char *target = rid ? rel_target(rels, rid) : NULL;
            char part[512];
            if (!target)
                continue;
            snprintf(part, sizeof(part), "%s%s", target[0] == '/' ? "" : "xl/",
                     target[0] == '/' ? target + 1 : target);
            free(target);
            if (++w->sheet > MAX_PARTS)
                break;
            alm_build_location(w->b, w->sheet);
            alm_build_heading_begin(w->b, 1);
            err = alm_build_text(w->b, name, strlen(name));
            alm_build_heading_end(w->b);
            if (!err)
                err = xlsx_sheet(w, p, part, eb);
        }
    }
    xmlFreeDoc(book);
    xmlFreeDoc(rels);
    return err;
}

/* ---- EPUB: container -> package document -> spine, each chapter as HTML ------------ */

static char *epub_opf_path(struct pkg *p, struct alm_errbuf *eb, enum alm_err *err)
{
    xmlDoc *doc;
    char *path = NULL;

    *err = read_xml(p, "META-INF/container.xml", &doc, eb);
    if (*err || !doc) {
        if (!*err)
            *err = alm_fail(eb, ALM_ERR_UNPROCESSABLE, "the EPUB has no META-INF/container.xml");
        return NULL;
    }
    for (xmlNode *a = xmlDocGetRootElement(doc)->children; a && !path; a = a->next) {
        for (xmlNode *r = is(a, "rootfiles") ? a->children : NULL; r && !path; r = r->next) {
            if (is(r, "rootfile") && attr(r, "full-path"))
                path = alm_xstrdup(attr(r, "full-path"));
        }
    }
    xmlFreeDoc(doc);
    if (!path)
        *err = alm_fail(eb, ALM_ERR_UNPROCESSABLE, "the EPUB names no package document");
    return path;
}

static enum alm_err epub_chapter(struct walk *w, struct pkg *p, const char *part,
                                 struct alm_errbuf *eb)
{
    char *data;
    size_t len;
    bool found;
    struct alm_extracted x;
    enum alm_err err = pkg_read(p, part, &data, &len, &found, eb);

    if (err || !found) {
        free(data);
        return err;
    }
    if (!alm_text_valid_utf8(data, len) || alm_extract("text/html", data, len, &x, eb) != ALM_OK) {
        free(data);
        eb->msg[0] = '\0';
        return ALM_OK; /* a chapter without text (a cover, an image) */
    }
    free(data);
    alm_build_location(w->b, ++w->sheet);
    err = alm_build_append(w->b, &x);
    alm_extracted_release(&x);
    return err;
}

static enum alm_err epub(struct walk *w, struct pkg *p, struct alm_errbuf *eb)
{
    enum alm_err err;
    char *opf = epub_opf_path(p, eb, &err), *slash;
    xmlDoc *doc = NULL;
    xmlNode *manifest = NULL, *spine = NULL;
    size_t dir;

    if (!opf)
        return err;
    title_from(p, w->b, opf);
    slash = strrchr(opf, '/');
    dir = slash ? (size_t)(slash - opf + 1) : 0;
    err = read_xml(p, opf, &doc, eb);
    if (!err && !doc)
        err = alm_fail(eb, ALM_ERR_UNPROCESSABLE, "the EPUB's package document is missing");
    for (xmlNode *n = doc && !err ? xmlDocGetRootElement(doc)->children : NULL; n; n = n->next) {
        if (is(n, "manifest"))
            manifest = n;
        else if (is(n, "spine"))
            spine = n;
    }
    for (xmlNode *it = spine ? spine->children : NULL; it && !err; it = it->next) {
        const char *idref = is(it, "itemref") ? attr(it, "idref") : NULL;
        for (xmlNode *m = idref && manifest ? manifest->children : NULL; m && !err; m = m->next) {
            const char *id = is(m, "item") ? attr(m, "id") : NULL, *href = attr(m, "href");
            char part[1024];
            if (!id || !href || strcmp(id, idref) != 0)
                continue;
            snprintf(part, sizeof(part), "%.*s%s", (int)dir, opf, href);
            if (w->sheet >= MAX_PARTS)
                break;
            err = epub_chapter(w, p, part, eb);
            break;
        }
    }
    xmlFreeDoc(doc);
    free(opf);
    return err;
}

/* ---- Entry point -------------------------------------------------------------------- */

static const struct {
    const char *type;
    enum fmt fmt;
    const char *kind;
} formats[] = {
    {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", F_DOCX, "page"},
    {"application/vnd.openxmlformats-officedocument.presentationml.presentation", F_PPTX, "slide"},
    {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", F_XLSX, "sheet"},
    {"application/vnd.oasis.opendocument.text", F_ODT, "page"},
    {"application/vnd.oasis.opendocument.spreadsheet", F_ODS, "sheet"},
    {"application/vnd.oasis.opendocument.presentation", F_ODP, "slide"},
    {"application/epub+zip", F_EPUB, "chapter"},
};

static enum alm_err extract_fmt(struct walk *w, struct pkg *p, struct alm_errbuf *eb)
{
    switch (w->fmt) {
    case F_DOCX:
        title_from(p, w->b, "docProps/core.xml");
        w->page = 1;
        alm_build_location(w->b, 1);
        return walk_part(w, p, "word/document.xml", true, eb);
    case F_PPTX:
        title_from(p, w->b, "docProps/core.xml");
        return pptx(w, p, eb);
    case F_XLSX:
        title_from(p, w->b, "docProps/core.xml");
        return xlsx(w, p, eb);
    case F_ODT:
    case F_ODS:
    case F_ODP:
        title_from(p, w->b, "meta.xml");
        if (w->fmt == F_ODT) {
            w->page = 1;
            alm_build_location(w->b, 1);
        }
        return walk_part(w, p, "content.xml", true, eb);
    case F_EPUB:
        return epub(w, p, eb);
    }
    return ALM_ERR_INTERNAL;
}

enum alm_err alm_extract_office(const char *media_type, const char *data, size_t len,
                                struct alm_extracted *out, struct alm_errbuf *eb)
{
    struct alm_build b;
    struct walk w = {.b = &b};
    struct pkg p;
    const char *kind = NULL;
    enum alm_err err;
    size_t i;

    memset(out, 0, sizeof(*out));
    for (i = 0; i < ALM_ARRAY_SIZE(formats) && strcmp(formats[i].type, media_type) != 0; i++)
        ;
    if (i == ALM_ARRAY_SIZE(formats))
        return alm_fail(eb, ALM_ERR_MEDIA_TYPE, "not an office, OpenDocument or EPUB type");
    w.fmt = formats[i].fmt;
    kind = formats[i].kind;
    alm_build_init(&b, MAX_TEXT, kind);
    eb->msg[0] = '\0';
    err = pkg_open(data, len, &p, eb);
    if (!err)
        err = extract_fmt(&w, &p, eb);
    pkg_close(&p);
    for (size_t k = 0; k < w.nstrings; k++)
        free(w.strings[k]);
    free(w.strings);
    /* Page breaks that never came: a document of one page says nothing about pages. */
    if (!err && (w.fmt == F_DOCX || w.fmt == F_ODT) && w.page <= 1) {
        b.nlocs = 0;
        b.kind = NULL;
    }
    if (err) {
        alm_build_release(&b);
        return err;
    }
    return alm_build_finish(&b, out, eb);
}
