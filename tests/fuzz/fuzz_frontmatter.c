/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_frontmatter.c: the Markdown front matter reader (src/frontmatter.c over libyaml).
 *
 * The input is the start of a Markdown upload, in an exact-size heap copy so that
 * AddressSanitizer catches any read past it; inputs that are not valid UTF-8 are skipped
 * (uploads are converted and validated before extraction). The reader must stay inside
 * its bound, end front matter at the end of a delimiter line, give a title only with
 * front matter, and give it as valid UTF-8. Invariants are checked with abort(). */
#include "compat.h"
#include "frontmatter.h"
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(const char *what)
{
    fprintf(stderr, "invariant broken: %s\n", what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *src, *title = NULL;
    size_t skip;

    if (!alm_text_valid_utf8((const char *)data, size))
        return 0;
    src = malloc(size ? size : 1);
    if (!src)
        abort();
    if (size)
        memcpy(src, data, size);
    skip = alm_front_matter(src, size, &title);
    if (skip > size || skip > ALM_FRONT_MATTER_MAX)
        fail("front matter past the input or its bound");
    if (skip == 0 && title)
        fail("a title without front matter");
    if (skip > 0 &&
        (skip < 7 || memcmp(src, "---", 3) != 0 || (skip < size && src[skip - 1] != '\n')))
        fail("front matter does not end at a delimiter line");
    if (title && !alm_text_valid_utf8(title, strlen(title)))
        fail("title is not UTF-8");
    free(title);
    free(src);
    return 0;
}
