/* SPDX-License-Identifier: Apache-2.0 */
/* Text extraction: plain text as is, Markdown through cmark's AST, HTML through libxml2's
 * tree. Both markup walks feed one writer (struct sink) that owns the layout rules:
 * separators are held back until the next visible character, so the text never starts
 * or ends with blank space and a paragraph break is always exactly one blank line. */
#include "compat.h"
#include "extract.h"
#include "frontmatter.h"
#include "mem.h"
#include "text.h"

#include <cmark.h>
#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_SECTIONS   10000
#define MAX_HTML_DEPTH 256
#define MAX_TITLE      200 /* bytes */

/* Separators, weakest first; a pending one is upgraded, never downgraded. */
enum brk { BRK_NONE, BRK_SPACE, BRK_LINE, BRK_PARA };

struct sink {
    struct alm_buf text;
    struct alm_buf indent; /* spaces held inside pre until the line shows text */
    enum brk pending;
    int pre;             /* inside pre or a code block: keep spaces and line breaks */
    int lists;           /* inside a list: paragraph breaks become line breaks */
    const void *heading; /* the node of the open heading, NULL when none */
    int hlevel;
    size_t hstart;
    bool hseen; /* the open heading has shown text; hstart is set */
    struct alm_section *sections;
    size_t nsections, alloc;
};

static bool is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static void sink_break(struct sink *s, enum brk b)
{
    if (b == BRK_PARA && s->lists > 0)
        b = BRK_LINE;
    if (b > s->pending)
        s->pending = b;
    if (b >= BRK_LINE)
        s->indent.len = 0; /* spaces at the end of a line are dropped */
}

/* A newline in pre text: two in a row (blank lines between) make a paragraph break. */
static void pre_newline(struct sink *s)
{
    sink_break(s, s->pending >= BRK_LINE ? BRK_PARA : BRK_LINE);
}

static enum alm_err put_visible(struct sink *s, const char *p, size_t n)
{
    static const char *const seps[] = {"", " ", "\n", "\n\n"};
    enum alm_err err = ALM_OK;

    if (s->text.len > 0) {
        err = alm_buf_append(&s->text, seps[s->pending], strlen(seps[s->pending]));
        if (!err && s->pre > 0)
            err = alm_buf_append(&s->text, s->indent.data, s->indent.len);
    }
    s->pending = BRK_NONE;
    s->indent.len = 0;
    if (s->heading && !s->hseen) {
        s->hstart = s->text.len;
        s->hseen = true;
    }
    return err ? err : alm_buf_append(&s->text, p, n);
}

static enum alm_err put_space(struct sink *s, unsigned char c)
{
    if (s->pre == 0) {
        sink_break(s, BRK_SPACE);
        return ALM_OK;
    }
    if (c == '\n') {
        pre_newline(s);
        return ALM_OK;
    }
    if (c == '\r')
        return ALM_OK; /* the \n of a CRLF does the work */
    return alm_buf_append(&s->indent, c == ' ' || c == '\t' ? (const char *)&c : " ", 1);
}

static bool is_nbsp(const char *p, size_t n)
{
    return n >= 2 && (unsigned char)p[0] == 0xc2 && (unsigned char)p[1] == 0xa0;
}

/* p[0..n) is valid UTF-8 without NUL. */
static enum alm_err put_valid(struct sink *s, const char *p, size_t n)
{
    enum alm_err err = ALM_OK;
    size_t i = 0;

    while (i < n && !err) {
        size_t j = i;
        while (j < n && !is_space((unsigned char)p[j]) && !is_nbsp(p + j, n - j))
            j++;
        if (j > i) {
            err = put_visible(s, p + i, j - i);
        } else if (is_space((unsigned char)p[i])) {
            err = put_space(s, (unsigned char)p[i]);
            j = i + 1;
        } else {
            err = put_space(s, ' '); /* U+00A0, a space in every sense that counts here */
            j = i + 2;
        }
        i = j;
    }
    return err;
}

/* Libraries hand back their own bytes (entities decoded, etc.): anything that is not
 * well-formed UTF-8, and NUL, becomes U+FFFD so the text stays valid. */
static enum alm_err sink_text(struct sink *s, const char *p, size_t n)
{
    struct alm_buf fixed = ALM_BUF_INIT(0);
    enum alm_err err = ALM_OK;

    if (alm_text_valid_utf8(p, n))
        return put_valid(s, p, n);
    for (size_t i = 0; i < n && !err;) {
        size_t k = 1;
        while (k <= 4 && (i + k > n || !alm_text_valid_utf8(p + i, k)))
            k++;
        if (k <= 4)
            err = alm_buf_append(&fixed, p + i, k);
        else
            err = alm_buf_append(&fixed, "\xef\xbf\xbd", 3);
        i += k <= 4 ? k : 1;
    }
    if (!err)
        err = put_valid(s, fixed.data, fixed.len);
    alm_buf_release(&fixed);
    return err;
}

static void heading_begin(struct sink *s, int level, const void *node)
{
    if (s->heading)
        return; /* a heading inside a heading is just more title */
    s->heading = node;
    s->hlevel = level < 1 ? 1 : level > 6 ? 6 : level;
    s->hseen = false;
}

/* The heading's text on one line, spaces collapsed, cut to MAX_TITLE bytes. */
static char *make_title(const char *p, size_t n)
{
    char *t = alm_xmalloc(MAX_TITLE + 1);
    size_t len = 0;

    for (size_t i = 0; i < n;) {
        size_t k = 1;
        while (i + k < n && ((unsigned char)p[i + k] & 0xc0) == 0x80)
            k++;
        if (is_space((unsigned char)p[i])) {
            while (i + k < n && is_space((unsigned char)p[i + k]))
                k++;
            if (len + 1 > MAX_TITLE)
                break;
            t[len++] = ' ';
        } else {
            if (len + k > MAX_TITLE)
                break;
            memcpy(t + len, p + i, k);
            len += k;
        }
        i += k;
    }
    while (len > 0 && t[len - 1] == ' ')
        len--;
    t[len] = '\0';
    return t;
}

static enum alm_err heading_end(struct sink *s, const void *node, struct alm_errbuf *eb)
{
    struct alm_section *sec;

    if (!s->heading || s->heading != node)
        return ALM_OK;
    s->heading = NULL;
    if (!s->hseen)
        return ALM_OK; /* an empty heading starts nothing */
    if (s->nsections == MAX_SECTIONS)
        return alm_fail(eb, ALM_ERR_UNPROCESSABLE, "more than %d sections", MAX_SECTIONS);
    if (s->nsections == s->alloc) {
        s->alloc = s->alloc ? s->alloc * 2 : 16;
        s->sections = alm_xrealloc(s->sections, s->alloc * sizeof(*s->sections));
    }
    sec = &s->sections[s->nsections++];
    sec->start = s->hstart;
    sec->end = 0;
    sec->level = s->hlevel;
    sec->title = make_title(s->text.data + s->hstart, s->text.len - s->hstart);
    return ALM_OK;
}

/* A section ends where the next one of the same or a higher level starts. */
static void close_sections(struct alm_section *secs, size_t n, size_t len)
{
    struct alm_section *open[7] = {NULL};

    for (size_t i = 0; i < n; i++) {
        for (int l = secs[i].level; l <= 6; l++) {
            if (open[l])
                open[l]->end = secs[i].start;
            open[l] = NULL;
        }
        open[secs[i].level] = &secs[i];
    }
    for (int l = 1; l <= 6; l++) {
        if (open[l])
            open[l]->end = len;
    }
}

static void sink_release(struct sink *s)
{
    for (size_t i = 0; i < s->nsections; i++)
        free(s->sections[i].title);
    free(s->sections);
    alm_buf_release(&s->text);
    alm_buf_release(&s->indent);
}

/* Hands the result to out; the sink is empty afterwards. */
static enum alm_err sink_finish(struct sink *s, struct alm_extracted *out, struct alm_errbuf *eb)
{
    if (s->text.len == 0)
        return alm_fail(eb, ALM_ERR_UNPROCESSABLE, "the document holds no text");
    close_sections(s->sections, s->nsections, s->text.len);
    out->text = alm_buf_detach(&s->text, &out->len);
    out->sections = s->sections;
    out->nsections = s->nsections;
    if (s->nsections > 0 && !out->title)
        out->title = alm_xstrdup(s->sections[0].title); /* the first heading */
    s->sections = NULL;
    s->nsections = 0;
    return ALM_OK;
}

/* What a piece of structure is to the layout, whichever markup it comes from. */
enum kind {
    K_INLINE,  /* text flows through */
    K_SKIP,    /* dropped with everything inside */
    K_BLOCK,   /* a paragraph of its own */
    K_LINE,    /* a line of its own */
    K_CELL,    /* a table cell: a space apart */
    K_LIST,    /* a block whose paragraphs are lines */
    K_PRE,     /* a block with spaces and line breaks kept */
    K_HEADING, /* a block and a section */
    K_HEAD,    /* only its title counts */
};

/* The separator a kind puts on either side of itself. */
static const enum brk kind_break[] = {
    [K_INLINE] = BRK_NONE, [K_SKIP] = BRK_NONE,    [K_BLOCK] = BRK_PARA,
    [K_LINE] = BRK_LINE,   [K_CELL] = BRK_SPACE,   [K_LIST] = BRK_PARA,
    [K_PRE] = BRK_PARA,    [K_HEADING] = BRK_PARA, [K_HEAD] = BRK_NONE,
};

/* Entering a piece of structure of kind k; level and node matter to headings only. */
static void sink_enter(struct sink *s, enum kind k, int level, const void *node)
{
    sink_break(s, kind_break[k]);
    if (k == K_LIST)
        s->lists++;
    else if (k == K_PRE)
        s->pre++;
    else if (k == K_HEADING)
        heading_begin(s, level, node);
}

/* Leaving what sink_enter() entered; only a heading's end can fail. */
static enum alm_err sink_leave(struct sink *s, enum kind k, const void *node, struct alm_errbuf *eb)
{
    enum alm_err err = ALM_OK;

    if (k == K_LIST)
        s->lists--;
    else if (k == K_PRE)
        s->pre--;
    else if (k == K_HEADING)
        err = heading_end(s, node, eb);
    sink_break(s, kind_break[k]);
    return err;
}

/* ---- Markdown ---------------------------------------------------------------------- */

static enum alm_err md_literal(struct sink *s, cmark_node *node)
{
    const char *lit = cmark_node_get_literal(node);
    return lit ? sink_text(s, lit, strlen(lit)) : ALM_OK;
}

static enum alm_err md_enter(struct sink *s, cmark_node *node)
{
    enum alm_err err = ALM_OK;

    switch (cmark_node_get_type(node)) {
    case CMARK_NODE_LIST:
        sink_enter(s, K_LIST, 0, node);
        break;
    case CMARK_NODE_ITEM:
        sink_enter(s, K_LINE, 0, node);
        break;
    case CMARK_NODE_HEADING:
        sink_enter(s, K_HEADING, cmark_node_get_heading_level(node), node);
        break;
    case CMARK_NODE_CODE_BLOCK: /* a leaf: no exit event follows */
        sink_enter(s, K_PRE, 0, node);
        err = md_literal(s, node);
        (void)sink_leave(s, K_PRE, node, NULL);
        break;
    case CMARK_NODE_TEXT:
    case CMARK_NODE_CODE:
        err = md_literal(s, node);
        break;
    case CMARK_NODE_SOFTBREAK:
        sink_break(s, BRK_SPACE);
        break;
    case CMARK_NODE_LINEBREAK:
        sink_break(s, BRK_LINE);
        break;
    case CMARK_NODE_HTML_INLINE:
        break; /* raw HTML is markup, not text */
    default:
        /* paragraphs, quotes, rules, raw HTML blocks: at least a paragraph apart;
         * emphasis, links and images: only their text counts */
        if (cmark_node_get_type(node) <= CMARK_NODE_LAST_BLOCK)
            sink_enter(s, K_BLOCK, 0, node);
        break;
    }
    return err;
}

static enum alm_err md_exit(struct sink *s, cmark_node *node, struct alm_errbuf *eb)
{
    switch (cmark_node_get_type(node)) {
    case CMARK_NODE_LIST:
        return sink_leave(s, K_LIST, node, eb);
    case CMARK_NODE_ITEM:
        return sink_leave(s, K_LINE, node, eb);
    case CMARK_NODE_HEADING:
        return sink_leave(s, K_HEADING, node, eb);
    case CMARK_NODE_BLOCK_QUOTE:
    case CMARK_NODE_PARAGRAPH:
        return sink_leave(s, K_BLOCK, node, eb);
    default:
        return ALM_OK;
    }
}

static enum alm_err extract_markdown(struct sink *s, const char *src, size_t len,
                                     struct alm_errbuf *eb)
{
    /* CMARK_OPT_DEFAULT: raw HTML is not rendered, and the walk drops it anyway */
    cmark_node *doc = cmark_parse_document(src ? src : "", len, CMARK_OPT_DEFAULT);
    cmark_iter *it;
    cmark_event_type ev;
    enum alm_err err = ALM_OK;

    if (!doc)
        return alm_fail(eb, ALM_ERR_NOMEM, "markdown parser failed");
    it = cmark_iter_new(doc);
    while (!err && (ev = cmark_iter_next(it)) != CMARK_EVENT_DONE) {
        cmark_node *node = cmark_iter_get_node(it);
        err = ev == CMARK_EVENT_ENTER ? md_enter(s, node) : md_exit(s, node, eb);
    }
    cmark_iter_free(it);
    cmark_node_free(doc);
    return err;
}

/* ---- HTML -------------------------------------------------------------------------- */

static const struct {
    const char *name;
    enum kind kind;
} kinds[] = {
    {"script", K_SKIP},   {"style", K_SKIP},       {"noscript", K_SKIP},  {"template", K_SKIP},
    {"head", K_HEAD},     {"br", K_LINE},          {"li", K_LINE},        {"tr", K_LINE},
    {"dt", K_LINE},       {"dd", K_LINE},          {"td", K_CELL},        {"th", K_CELL},
    {"ul", K_LIST},       {"ol", K_LIST},          {"dl", K_LIST},        {"menu", K_LIST},
    {"dir", K_LIST},      {"pre", K_PRE},          {"listing", K_PRE},    {"xmp", K_PRE},
    {"plaintext", K_PRE}, {"p", K_BLOCK},          {"div", K_BLOCK},      {"section", K_BLOCK},
    {"article", K_BLOCK}, {"blockquote", K_BLOCK}, {"title", K_BLOCK},    {"address", K_BLOCK},
    {"aside", K_BLOCK},   {"body", K_BLOCK},       {"caption", K_BLOCK},  {"center", K_BLOCK},
    {"details", K_BLOCK}, {"dialog", K_BLOCK},     {"fieldset", K_BLOCK}, {"figcaption", K_BLOCK},
    {"figure", K_BLOCK},  {"footer", K_BLOCK},     {"form", K_BLOCK},     {"header", K_BLOCK},
    {"hgroup", K_BLOCK},  {"hr", K_BLOCK},         {"legend", K_BLOCK},   {"main", K_BLOCK},
    {"nav", K_BLOCK},     {"summary", K_BLOCK},    {"table", K_BLOCK},    {"tbody", K_BLOCK},
    {"thead", K_BLOCK},   {"tfoot", K_BLOCK},      {"html", K_BLOCK},
};

static int heading_level(const char *name)
{
    if ((name[0] == 'h' || name[0] == 'H') && name[1] >= '1' && name[1] <= '6' && !name[2])
        return name[1] - '0';
    return 0;
}

static bool in_head(const xmlNode *node)
{
    return node->parent && node->parent->type == XML_ELEMENT_NODE && node->parent->name &&
           strcasecmp((const char *)node->parent->name, "head") == 0;
}

static enum kind element_kind(const xmlNode *node)
{
    const char *name = (const char *)node->name;

    if (!name)
        return K_INLINE;
    /* <head> holds metadata, the title included: pages repeat it in their first heading,
     * and outside any section it would only blur the first chunk. */
    if (in_head(node))
        return K_SKIP;
    if (heading_level(name))
        return K_HEADING;
    for (size_t i = 0; i < ALM_ARRAY_SIZE(kinds); i++) {
        if (strcasecmp(name, kinds[i].name) == 0)
            return kinds[i].kind;
    }
    return K_INLINE;
}

/* Sets *descend when node is an element to walk into (and to leave afterwards). */
static enum alm_err html_enter(struct sink *s, const xmlNode *node, bool *descend)
{
    enum kind k;

    *descend = false;
    if (node->type == XML_TEXT_NODE || node->type == XML_CDATA_SECTION_NODE) {
        const char *t = (const char *)node->content;
        return t && !in_head(node) ? sink_text(s, t, strlen(t)) : ALM_OK;
    }
    if (node->type != XML_ELEMENT_NODE)
        return ALM_OK; /* comments, processing instructions, the doctype */
    k = element_kind(node);
    if (k == K_SKIP)
        return ALM_OK;
    sink_enter(s, k, k == K_HEADING ? heading_level((const char *)node->name) : 0, node);
    *descend = true;
    return ALM_OK;
}

/* Leaves an element that html_enter() walked into. */
static enum alm_err html_leave(struct sink *s, const xmlNode *node, struct alm_errbuf *eb)
{
    return sink_leave(s, element_kind(node), node, eb);
}

/* Depth-first without recursion: libxml2 builds trees as deep as the input nests. */
static enum alm_err walk_html(struct sink *s, const xmlNode *node, struct alm_errbuf *eb)
{
    size_t depth = 1;
    enum alm_err err = ALM_OK;

    while (node && !err) {
        bool descend;

        err = html_enter(s, node, &descend);
        if (err)
            break;
        if (descend && node->children) {
            if (++depth > MAX_HTML_DEPTH)
                return alm_fail(eb, ALM_ERR_UNPROCESSABLE, "html nested deeper than %d",
                                MAX_HTML_DEPTH);
            node = node->children;
            continue;
        }
        if (descend)
            err = html_leave(s, node, eb);
        while (!err && !node->next && depth > 1) {
            node = node->parent;
            depth--;
            err = html_leave(s, node, eb);
        }
        node = node->next;
    }
    return err;
}

static void init_libxml(void)
{
    xmlInitParser(); /* once, before any thread parses */
}

static enum alm_err extract_html(struct sink *s, const char *src, size_t len, struct alm_errbuf *eb)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    /* Blank text nodes are kept: between inline elements they separate words. */
    const int opts = HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET;
    htmlDocPtr doc;
    enum alm_err err;

    if (len > INT32_MAX)
        return alm_fail(eb, ALM_ERR_TOO_LARGE, "html document too large");
    pthread_once(&once, init_libxml);
    doc = htmlReadMemory(src, (int)len, NULL, "UTF-8", opts);
    if (!doc)
        return alm_fail(eb, ALM_ERR_UNPROCESSABLE, "the document holds no text");
    err = walk_html(s, doc->children, eb);
    xmlFreeDoc(doc);
    return err;
}

/* ---- Markdown front matter -------------------------------------------------------- */

/* The length of the front matter to skip (frontmatter.c, libyaml); its title, on one
 * line and cut like a heading, into *title. */
static size_t front_matter(const char *src, size_t len, char **title)
{
    char *raw = NULL;
    size_t skip = alm_front_matter(src, len, &raw);

    if (raw) {
        *title = make_title(raw, strlen(raw));
        if (!**title)
            ALM_FREE(*title);
        free(raw);
    }
    return skip;
}

/* ---- Entry points ------------------------------------------------------------------ */

enum media { MEDIA_PLAIN, MEDIA_MARKDOWN, MEDIA_HTML, MEDIA_OTHER };

/* The type of a Content-Type-like value; parameters (charset) are ignored. */
static enum media media_of(const char *mt)
{
    static const char *const names[] = {"text/plain", "text/markdown", "text/html"};
    const char *rest;
    size_t n;

    if (!mt)
        return MEDIA_OTHER;
    n = strcspn(mt, "; \t");
    rest = mt + n + strspn(mt + n, " \t");
    if (*rest != '\0' && *rest != ';')
        return MEDIA_OTHER;
    for (size_t i = 0; i < ALM_ARRAY_SIZE(names); i++) {
        if (strlen(names[i]) == n && strncasecmp(mt, names[i], n) == 0)
            return (enum media)i;
    }
    return MEDIA_OTHER;
}

/* Plain text stays byte for byte what was uploaded, so offsets match the upload. */
static enum alm_err extract_plain(const char *src, size_t len, struct alm_extracted *out,
                                  struct alm_errbuf *eb)
{
    size_t i = 0;

    while (i < len && is_space((unsigned char)src[i]))
        i++;
    if (i == len)
        return alm_fail(eb, ALM_ERR_UNPROCESSABLE, "the document holds no text");
    out->text = alm_xstrndup(src, len);
    out->len = len;
    return ALM_OK;
}

enum alm_err alm_extract(const char *media_type, const char *src, size_t len,
                         struct alm_extracted *out, struct alm_errbuf *eb)
{
    enum media media = media_of(media_type);
    struct sink s = {.text = ALM_BUF_INIT(0), .indent = ALM_BUF_INIT(0)};
    enum alm_err err;

    memset(out, 0, sizeof(*out));
    if (media == MEDIA_OTHER)
        return alm_fail(eb, ALM_ERR_MEDIA_TYPE, "cannot extract text from this media type");
    if (!alm_text_valid_utf8(src, len))
        return alm_fail(eb, ALM_ERR_UNPROCESSABLE, "the document is not valid UTF-8 text");
    if (media == MEDIA_PLAIN)
        return extract_plain(src, len, out, eb);
    if (media == MEDIA_MARKDOWN) {
        size_t skip = front_matter(src, len, &out->title);
        err = extract_markdown(&s, src + skip, len - skip, eb);
    } else
        err = extract_html(&s, src, len, eb);
    if (err)
        goto out;
    err = sink_finish(&s, out, eb);
out:
    sink_release(&s);
    return err;
}

void alm_extracted_release(struct alm_extracted *doc)
{
    if (!doc)
        return;
    for (size_t i = 0; i < doc->nsections; i++)
        free(doc->sections[i].title);
    free(doc->sections);
    free(doc->locations);
    free(doc->title);
    free(doc->text);
    memset(doc, 0, sizeof(*doc));
}

const struct alm_section *alm_extracted_section_at(const struct alm_extracted *doc, size_t pos)
{
    size_t lo = 0, hi = doc->nsections;

    /* Sections nest and end only where another starts (or at the end of the text), so
     * the last one starting at or before pos is the innermost one holding it, if any. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (doc->sections[mid].start <= pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || pos >= doc->sections[lo - 1].end)
        return NULL;
    return &doc->sections[lo - 1];
}

int alm_extracted_location_at(const struct alm_extracted *doc, size_t pos)
{
    size_t lo = 0, hi = doc->nlocations;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (doc->locations[mid].start <= pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 ? (doc->nlocations ? doc->locations[0].number : 0)
                   : doc->locations[lo - 1].number;
}

/* ---- The builder of the paged formats --------------------------------------------- */

void alm_build_init(struct alm_build *b, size_t cap, const char *kind)
{
    memset(b, 0, sizeof(*b));
    b->text = (struct alm_buf)ALM_BUF_INIT(cap);
    b->kind = kind;
}

void alm_build_break(struct alm_build *b, enum alm_brk brk)
{
    if (brk > b->pending)
        b->pending = brk;
    if (brk >= ALM_BRK_LINE)
        b->cell_sep = false;
}

void alm_build_cell_end(struct alm_build *b)
{
    alm_build_break(b, ALM_BRK_SPACE);
    b->cell_sep = true;
}

void alm_build_location(struct alm_build *b, int number)
{
    alm_build_break(b, ALM_BRK_PARA);
    b->pending_loc = number;
}

static enum alm_err build_visible(struct alm_build *b, const char *p, size_t n)
{
    static const char *const seps[] = {"", " ", "\n", "\n\n"};
    enum alm_err err = ALM_OK;

    if (b->text.len > 0 && b->cell_sep && b->pending < ALM_BRK_LINE)
        err = alm_buf_append(&b->text, " | ", 3);
    else if (b->text.len > 0)
        err = alm_buf_append(&b->text, seps[b->pending], strlen(seps[b->pending]));
    b->pending = ALM_BRK_NONE;
    b->cell_sep = false;
    if (!err && b->pending_loc) {
        if (b->nlocs == b->alocs) {
            b->alocs = b->alocs ? b->alocs * 2 : 16;
            b->locs = alm_xrealloc(b->locs, b->alocs * sizeof(*b->locs));
        }
        b->locs[b->nlocs++] = (struct alm_location){b->text.len, b->pending_loc};
        b->pending_loc = 0;
    }
    if (!err && b->hlevel && !b->hseen) {
        b->hstart = b->text.len;
        b->hseen = true;
    }
    return err ? err : alm_buf_append(&b->text, p, n);
}

enum alm_err alm_build_text(struct alm_build *b, const char *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t j = i;
        if (is_space((unsigned char)p[i])) {
            while (i < n && is_space((unsigned char)p[i]))
                i++;
            alm_build_break(b, ALM_BRK_SPACE);
            continue;
        }
        while (j < n && !is_space((unsigned char)p[j]))
            j++;
        enum alm_err err = build_visible(b, p + i, j - i);
        if (err)
            return err;
        i = j;
    }
    return ALM_OK;
}

static void build_section(struct alm_build *b, size_t start, int level, char *title)
{
    if (b->nsecs == MAX_SECTIONS) {
        free(title); /* past the cap, more headings are text only */
        return;
    }
    if (b->nsecs == b->asecs) {
        b->asecs = b->asecs ? b->asecs * 2 : 16;
        b->secs = alm_xrealloc(b->secs, b->asecs * sizeof(*b->secs));
    }
    b->secs[b->nsecs++] = (struct alm_section){start, 0, level, title};
}

void alm_build_heading_begin(struct alm_build *b, int level)
{
    if (b->hlevel)
        return;
    alm_build_break(b, ALM_BRK_PARA);
    b->hlevel = level < 1 ? 1 : level > 6 ? 6 : level;
    b->hseen = false;
}

void alm_build_heading_end(struct alm_build *b)
{
    if (!b->hlevel)
        return;
    if (b->hseen)
        build_section(b, b->hstart, b->hlevel,
                      make_title(b->text.data + b->hstart, b->text.len - b->hstart));
    b->hlevel = 0;
    alm_build_break(b, ALM_BRK_PARA);
}

void alm_build_title(struct alm_build *b, const char *title, size_t n)
{
    char *t;

    if (b->title || !alm_text_valid_utf8(title, n))
        return;
    t = make_title(title, n);
    if (*t)
        b->title = t;
    else
        free(t);
}

enum alm_err alm_build_append(struct alm_build *b, const struct alm_extracted *x)
{
    size_t base;
    enum alm_err err;

    if (x->len == 0)
        return ALM_OK;
    /* The first visible byte carries the separator and the pending location. */
    err = build_visible(b, x->text, 0);
    base = b->text.len;
    if (!err)
        err = alm_buf_append(&b->text, x->text, x->len);
    for (size_t i = 0; !err && i < x->nsections; i++)
        build_section(b, base + x->sections[i].start, x->sections[i].level,
                      alm_xstrdup(x->sections[i].title));
    if (!err && x->title)
        alm_build_title(b, x->title, strlen(x->title));
    return err;
}

void alm_build_release(struct alm_build *b)
{
    for (size_t i = 0; i < b->nsecs; i++)
        free(b->secs[i].title);
    free(b->secs);
    free(b->locs);
    free(b->title);
    alm_buf_release(&b->text);
    memset(b, 0, sizeof(*b));
}

enum alm_err alm_build_finish(struct alm_build *b, struct alm_extracted *out, struct alm_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    if (b->text.len == 0) {
        alm_build_release(b);
        return alm_fail(eb, ALM_ERR_UNPROCESSABLE, "the document holds no text");
    }
    close_sections(b->secs, b->nsecs, b->text.len);
    out->text = alm_buf_detach(&b->text, &out->len);
    out->sections = b->secs;
    out->nsections = b->nsecs;
    out->location_kind = b->kind;
    out->locations = b->locs;
    out->nlocations = b->nlocs;
    /* else the first heading; a sheet's name is no title for the whole workbook */
    out->title = b->title ? b->title
                 : b->nsecs && !(b->kind && !strcmp(b->kind, "sheet"))
                     ? alm_xstrdup(b->secs[0].title)
                     : NULL;
    b->secs = NULL;
    b->nsecs = 0;
    b->locs = NULL;
    b->title = NULL;
    alm_build_release(b);
    return ALM_OK;
}
