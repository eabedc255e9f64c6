/* SPDX-License-Identifier: Apache-2.0 */
/* frontmatter.h: YAML front matter of Markdown documents, read with libyaml.
 *
 * Front matter is a line "---" at the very start, YAML, then a line "---" or "...". It is
 * metadata: only its top-level string scalar `title` is used. A block that libyaml cannot
 * parse, whose document is not a mapping, or that does not close within
 * ALM_FRONT_MATTER_MAX bytes is not front matter: the text stays body text, so nothing a
 * writer typed is silently dropped. */
#pragma once
#include "compat.h"

#define ALM_FRONT_MATTER_MAX (64 * 1024) /* bytes, delimiters included */

/* The length of the front matter at the start of src (len bytes, UTF-8), 0 when there is
 * none. When it has a top-level string `title`, *title gets a copy of it (raw, possibly
 * multi-line; owned by the caller), else stays NULL. */
size_t alm_front_matter(const char *src, size_t len, char **title);
