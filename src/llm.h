/* SPDX-License-Identifier: Apache-2.0 */
/* llm.h: the OpenAI-compatible chat completions client (LiteLLM, Ollama, vLLM, OpenAI).
 *
 * Every request streams ("stream": true, usage asked for with stream_options), so that
 * the first token can be passed on as it arrives and a model that goes quiet is noticed
 * by an idle timeout rather than by the whole deadline. A server that ignores "stream"
 * and answers one JSON object is understood too. Requests refused with 429 or 5xx, or
 * that fail to connect, are retried with backoff while no text has been received; once
 * text has been passed on, a cut is reported as such (a retry would repeat it). */
#pragma once
#include "compat.h"
#include "config.h"
#include "err.h"
#include "health.h"
#include "mem.h"

/* Why there is no answer; the names are the API's answer_unavailable reasons. */
enum alm_llm_fail {
    ALM_LLM_OK,
    ALM_LLM_NOT_CONFIGURED, /* ALMANAC_LLM_URL unset */
    ALM_LLM_UNAVAILABLE,    /* refused, down, 5xx after the retries */
    ALM_LLM_RATE_LIMITED,   /* 429 after the retries */
    ALM_LLM_TIMEOUT,        /* the deadline or the idle timeout passed */
    ALM_LLM_INTERRUPTED,    /* the stream broke off after text had arrived */
    ALM_LLM_UPSTREAM_ERROR, /* refused the request (4xx, key), or answered nonsense */
    ALM_LLM_CANCELLED,      /* our side gave up: the client went away, or shutdown */
};
#define ALM_LLM_FAIL_COUNT 8

const char *alm_llm_fail_name(enum alm_llm_fail f);

struct alm_llm_msg {
    const char *role; /* "system", "user", "assistant" */
    const char *content;
};

/* What the caller hears during a request; both may be NULL. */
struct alm_llm_sink {
    /* A piece of the answer's text; false stops the request (CANCELLED). */
    bool (*on_text)(void *arg, const char *text, size_t n);
    /* Polled about once a second while the request runs; false cancels it. */
    bool (*keep_going)(void *arg);
    void *arg;
};

struct alm_llm_usage {
    long prompt_tokens; /* as the server reported them; -1 when it did not */
    long completion_tokens;
    int64_t first_token_ms; /* since the call; -1 when no text came */
    int attempts;
    char finish_reason[24];
};

/* Asks the model; deadline_ms is CLOCK_MONOTONIC. On failure eb says why, without the
 * key, the URL's credentials or the server's text. */
enum alm_llm_fail alm_llm_chat(const struct alm_config *cfg, const struct alm_llm_msg *msgs,
                               size_t n, int64_t deadline_ms, const struct alm_llm_sink *sink,
                               struct alm_llm_usage *usage, struct alm_errbuf *eb);

/* Adds the LLM endpoint to /ready as a check that never fails readiness (answers degrade
 * to search results without it): GET {url}/models. Not configured, a note says so. */
void alm_llm_add_check(struct alm_health *h, const struct alm_config *cfg);

/* ---------------------------------------------------------------- stream parsing
 * Exposed for the unit and fuzz tests. */

/* An incremental text/event-stream parser: lines end with \n, \r\n or \r; "data:" lines
 * (one leading space dropped) make an event, dispatched at a blank line; comments and
 * other fields are ignored. A line or an event larger than the cap is an error. */
struct alm_llm_sse {
    struct alm_buf line;
    struct alm_buf data;
    bool has_data;
    bool after_cr;
};
#define ALM_LLM_SSE_CAP (1024 * 1024)

void alm_llm_sse_init(struct alm_llm_sse *p);
void alm_llm_sse_release(struct alm_llm_sse *p);
/* Feeds bytes; each complete event's data goes to on_event (NUL-terminated, borrowed),
 * which returns ALM_OK to go on. Returns the first error. */
enum alm_err alm_llm_sse_feed(struct alm_llm_sse *p, const char *buf, size_t n,
                              enum alm_err (*on_event)(void *arg, const char *data, size_t len),
                              void *arg) ALM_MUSTCHECK;

/* One chat.completion.chunk (or, with whole = true, one chat.completion) read. */
struct alm_llm_chunk {
    char *text; /* new, NULL when the chunk has none */
    bool done;  /* the data was [DONE] */
    bool error; /* the server sent {"error": ...} */
    char finish_reason[24];
    long prompt_tokens; /* -1 when absent */
    long completion_tokens;
};
/* false when data is neither [DONE] nor a JSON object; release chunk either way. */
bool alm_llm_chunk_parse(const char *data, size_t len, bool whole, struct alm_llm_chunk *chunk);
void alm_llm_chunk_release(struct alm_llm_chunk *chunk);
