/* SPDX-License-Identifier: Apache-2.0 */
/* frontmatter.c: YAML front matter of Markdown documents (see frontmatter.h).
 *
 * Only the delimiters are found here; the YAML between them is libyaml's to parse. Its
 * event parser is used rather than the document loader, so that a title is taken without
 * building a tree, and aliases are never expanded (no "billion laughs"). */
#include "frontmatter.h"
#include "mem.h"

#include <string.h>
#include <yaml.h>

/* The offset just past the closing delimiter line, 0 when none within the bound; *yaml_end
 * gets the offset where the YAML stops (the start of that line). */
static size_t closing(const char *src, size_t len, size_t from, size_t *yaml_end)
{
    size_t i = from;
    bool cut = len > ALM_FRONT_MATTER_MAX; /* a line cut by the bound does not end there */

    if (cut)
        len = ALM_FRONT_MATTER_MAX;
    while (i < len) {
        const char *line = src + i;
        const char *nl = memchr(line, '\n', len - i);
        size_t n = nl ? (size_t)(nl - line) : len - i;
        size_t ln = n > 0 && line[n - 1] == '\r' ? n - 1 : n;

        if (!nl && cut)
            return 0;
        if (ln == 3 && (memcmp(line, "---", 3) == 0 || memcmp(line, "...", 3) == 0)) {
            *yaml_end = i;
            return i + n + (nl != NULL);
        }
        i += n + 1;
    }
    return 0;
}

/* Walks the events of one YAML document: true when it is a mapping (or empty) and well
 * formed; the top-level `title`, when a string scalar, goes to *title. */
static bool read_yaml(const char *y, size_t n, char **title)
{
    yaml_parser_t p;
    yaml_event_t ev;
    bool ok = false, done = false, want_title = false;
    int depth = 0;   /* open mappings and sequences */
    bool key = true; /* at depth 1: the next scalar is a key */
    int docs = 0;

    if (!yaml_parser_initialize(&p))
        return false;
    yaml_parser_set_input_string(&p, (const unsigned char *)y, n);
    while (!done) {
        if (!yaml_parser_parse(&p, &ev))
            break;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            ok = docs <= 1;
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            docs++;
            break;
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            if (depth == 0 && ev.type == YAML_SEQUENCE_START_EVENT)
                done = true; /* a list, not metadata */
            if (depth == 1)
                key = !key, want_title = false; /* a collection is a value */
            depth++;
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            depth--;
            break;
        case YAML_SCALAR_EVENT:
            if (depth == 0) {
                /* a bare scalar (say a setext heading between thematic breaks) */
                done = ev.data.scalar.length > 0 || ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
            } else if (depth == 1 && key) {
                want_title =
                    ev.data.scalar.length == 5 && memcmp(ev.data.scalar.value, "title", 5) == 0;
                key = false;
            } else if (depth == 1) {
                if (want_title && !*title && ev.data.scalar.tag == NULL)
                    *title =
                        alm_xstrndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
                want_title = false;
                key = true;
            }
            break;
        case YAML_ALIAS_EVENT:
            if (depth == 1)
                key = !key, want_title = false;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    if (!ok) {
        free(*title);
        *title = NULL;
    }
    return ok;
}

size_t alm_front_matter(const char *src, size_t len, char **title)
{
    size_t open, end, yaml_end = 0;

    *title = NULL;
    if (len < 4 || memcmp(src, "---", 3) != 0)
        return 0;
    if (src[3] == '\n')
        open = 4;
    else if (src[3] == '\r' && len > 4 && src[4] == '\n')
        open = 5;
    else
        return 0;
    end = closing(src, len, open, &yaml_end);
    if (end == 0 || !read_yaml(src + open, yaml_end - open, title))
        return 0;
    return end;
}
