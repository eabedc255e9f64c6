/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_sse.c: the chat stream parser (text/event-stream, then each event's chunk JSON)
 * and the answer's citation markers, against arbitrary bytes.
 *
 * The input is fed whole, and again split at every position given by its first byte, so
 * that the events must come out the same however the bytes arrive: the parser keeps its
 * state across reads as libcurl hands them over. Each event is read as a chat chunk, and
 * the input as an answer is scanned for [n] markers, whose results must stay in range.
 * Invariants are checked with abort(). */
#include "compat.h"
#include "answer.h"
#include "llm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct seen {
    struct alm_buf all; /* every event's data, each followed by a NUL */
    size_t events;
};

static void fail(const char *what)
{
    fprintf(stderr, "invariant broken: %s\n", what);
    abort();
}

static enum alm_err on_event(void *arg, const char *data, size_t len)
{
    struct seen *s = arg;
    struct alm_llm_chunk c;

    if (strlen(data) > len)
        fail("event data longer than its length");
    s->events++;
    if (alm_buf_append(&s->all, data, len) || alm_buf_append(&s->all, "", 1))
        return ALM_ERR_TOO_LARGE;
    bool ok = alm_llm_chunk_parse(data, len, s->events % 2 == 0, &c);
    if (!ok && (c.text || c.done))
        fail("an unparsable chunk gave text");
    if (c.text && strlen(c.text) == 0)
        fail("an empty text");
    alm_llm_chunk_release(&c);
    return ALM_OK;
}

static enum alm_err feed(const uint8_t *data, size_t size, size_t step, struct seen *s)
{
    struct alm_llm_sse p;
    enum alm_err err = ALM_OK;

    alm_llm_sse_init(&p);
    for (size_t off = 0; off < size && !err; off += step) {
        size_t n = size - off < step ? size - off : step;
        err = alm_llm_sse_feed(&p, (const char *)data + off, n, on_event, s);
    }
    alm_llm_sse_release(&p);
    return err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct seen whole = {ALM_BUF_INIT(0), 0}, split = {ALM_BUF_INIT(0), 0};
    size_t step = size ? (size_t)(data[0] % 7) + 1 : 1;

    enum alm_err e1 = feed(data, size, size ? size : 1, &whole);
    enum alm_err e2 = feed(data, size, step, &split);
    if (e1 != e2 || whole.events != split.events || whole.all.len != split.all.len ||
        (whole.all.len && memcmp(whole.all.data, split.all.data, whole.all.len) != 0))
        fail("the events depend on how the bytes were split");
    alm_buf_release(&whole.all);
    alm_buf_release(&split.all);

    char *text = malloc(size + 1);
    int cited[8], dropped = 0;
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    size_t n = alm_answer_citations(text, 5, cited, 8, &dropped);
    if (n > 8 || dropped < 0)
        fail("citation counts out of range");
    for (size_t i = 0; i < n; i++) {
        if (cited[i] < 1 || cited[i] > 5)
            fail("a citation outside the passages");
        for (size_t k = 0; k < i; k++)
            if (cited[k] == cited[i])
                fail("a citation repeated");
    }
    (void)alm_answer_relevance(text, "some passage text with words");
    free(text);
    return 0;
}
