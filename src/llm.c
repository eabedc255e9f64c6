/* SPDX-License-Identifier: Apache-2.0 */
/* llm.c: the OpenAI-compatible chat completions client and its stream parser. */
#include "compat.h"
#include "llm.h"
#include "clock.h"
#include "http_client.h"
#include "log.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BACKOFF_BASE_MS    250
#define BACKOFF_CAP_MS     4000
#define RETRY_AFTER_MAX_MS 30000
/* A whole (non-streamed) answer or an error body is read up to this. */
#define WHOLE_CAP (4 * 1024 * 1024)

static const char *const fail_names[ALM_LLM_FAIL_COUNT] = {
    "ok",      "not_configured", "unavailable",    "rate_limited",
    "timeout", "interrupted",    "upstream_error", "cancelled",
};

const char *alm_llm_fail_name(enum alm_llm_fail f)
{
    return (unsigned)f < ALM_LLM_FAIL_COUNT ? fail_names[f] : "unknown";
}

/* ---------------------------------------------------------------- SSE */

void alm_llm_sse_init(struct alm_llm_sse *p)
{
    *p = (struct alm_llm_sse){.line = ALM_BUF_INIT(ALM_LLM_SSE_CAP),
                              .data = ALM_BUF_INIT(ALM_LLM_SSE_CAP)};
}

void alm_llm_sse_release(struct alm_llm_sse *p)
{
    alm_buf_release(&p->line);
    alm_buf_release(&p->data);
}

/* One complete line: a blank one dispatches the event, "data" fields add to it. */
static enum alm_err sse_line(struct alm_llm_sse *p,
                             enum alm_err (*on_event)(void *, const char *, size_t), void *arg)
{
    const char *l = p->line.data ? p->line.data : "";
    size_t n = p->line.len;
    enum alm_err err = ALM_OK;

    if (n == 0) {
        if (p->has_data)
            err = on_event(arg, p->data.data ? p->data.data : "", p->data.len);
        p->data.len = 0;
        if (p->data.data)
            p->data.data[0] = '\0';
        p->has_data = false;
        return err;
    }
    size_t field = strcspn(l, ":");
    if (field != 4 || strncmp(l, "data", 4) != 0 || field >= n)
        return ALM_OK; /* a comment (":..."), "event:", "id:", "retry:" or a bare name */
    const char *v = l + 5;
    size_t vn = n - 5;
    if (vn && *v == ' ') {
        v++;
        vn--;
    }
    if (p->has_data)
        err = alm_buf_append(&p->data, "\n", 1);
    if (!err)
        err = alm_buf_append(&p->data, v, vn);
    p->has_data = true;
    return err;
}

enum alm_err alm_llm_sse_feed(struct alm_llm_sse *p, const char *buf, size_t n,
                              enum alm_err (*on_event)(void *arg, const char *data, size_t len),
                              void *arg)
{
    enum alm_err err = ALM_OK;

    for (size_t i = 0; i < n && !err; i++) {
        char c = buf[i];
        if (c == '\n' && p->after_cr) {
            p->after_cr = false; /* the \n of a \r\n */
            continue;
        }
        p->after_cr = c == '\r';
        if (c == '\r' || c == '\n') {
            err = sse_line(p, on_event, arg);
            p->line.len = 0;
            if (p->line.data)
                p->line.data[0] = '\0';
            continue;
        }
        /* A run up to the next line end at once: chunks are mostly one long line. */
        size_t j = i;
        while (j < n && buf[j] != '\r' && buf[j] != '\n')
            j++;
        err = alm_buf_append(&p->line, buf + i, j - i);
        i = j - 1;
    }
    return err;
}

/* ---------------------------------------------------------------- chunks */

void alm_llm_chunk_release(struct alm_llm_chunk *c)
{
    ALM_FREE(c->text);
}

static long tokens_of(const json_t *usage, const char *key)
{
    const json_t *v = json_object_get(usage, key);

    return json_is_integer(v) && json_integer_value(v) >= 0 ? (long)json_integer_value(v) : -1;
}

bool alm_llm_chunk_parse(const char *data, size_t len, bool whole, struct alm_llm_chunk *c)
{
    json_t *root, *choice, *part, *content, *usage, *finish;

    *c = (struct alm_llm_chunk){.prompt_tokens = -1, .completion_tokens = -1};
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        c->done = true;
        return true;
    }
    root = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return false;
    }
    c->error = json_object_get(root, "error") != NULL;
    choice = json_array_get(json_object_get(root, "choices"), 0);
    part = json_object_get(choice, whole ? "message" : "delta");
    content = json_object_get(part, "content");
    if (json_is_string(content) && json_string_length(content) > 0)
        c->text = alm_xstrndup(json_string_value(content), json_string_length(content));
    finish = json_object_get(choice, "finish_reason");
    if (json_is_string(finish))
        snprintf(c->finish_reason, sizeof(c->finish_reason), "%s", json_string_value(finish));
    usage = json_object_get(root, "usage");
    if (json_is_object(usage)) {
        c->prompt_tokens = tokens_of(usage, "prompt_tokens");
        c->completion_tokens = tokens_of(usage, "completion_tokens");
    }
    json_decref(root);
    return true;
}

/* ---------------------------------------------------------------- one attempt */

struct attempt {
    const struct alm_llm_sink *sink;
    struct alm_llm_usage *usage;
    int64_t call_t0_ms; /* of the whole call, for the time to first token */
    int64_t t0_ms, last_data_ms, idle_ms;
    long status;
    bool checked_type, whole; /* whole: the server answered application/json */
    struct alm_llm_sse sse;
    struct alm_http_sink body; /* a whole answer, or an error's body */
    bool got_text, finished, saw_done, stream_error, bad_chunk;
    bool cancelled, idle;
    int64_t retry_after_ms;
};

static bool give_text(struct attempt *a, const char *text, size_t n)
{
    if (!a->got_text)
        a->usage->first_token_ms = alm_clock_ms() - a->call_t0_ms;
    a->got_text = true;
    if (a->sink && a->sink->on_text && !a->sink->on_text(a->sink->arg, text, n)) {
        a->cancelled = true;
        return false;
    }
    return true;
}

static void take_chunk(struct attempt *a, const struct alm_llm_chunk *c)
{
    if (c->finish_reason[0]) {
        a->finished = true;
        snprintf(a->usage->finish_reason, sizeof(a->usage->finish_reason), "%s", c->finish_reason);
    }
    if (c->prompt_tokens >= 0)
        a->usage->prompt_tokens = c->prompt_tokens;
    if (c->completion_tokens >= 0)
        a->usage->completion_tokens = c->completion_tokens;
    if (c->error)
        a->stream_error = true;
}

static enum alm_err on_event(void *arg, const char *data, size_t len)
{
    struct attempt *a = arg;
    struct alm_llm_chunk c;
    bool ok = alm_llm_chunk_parse(data, len, false, &c);

    if (!ok) {
        a->bad_chunk = true;
        alm_llm_chunk_release(&c);
        return ALM_ERR_UPSTREAM;
    }
    if (c.done)
        a->saw_done = true;
    take_chunk(a, &c);
    ok = !c.text || give_text(a, c.text, strlen(c.text));
    alm_llm_chunk_release(&c);
    return ok && !a->stream_error ? ALM_OK : ALM_ERR_UPSTREAM;
}

static bool on_data(void *arg, long status, const char *p, size_t n)
{
    struct attempt *a = arg;

    a->last_data_ms = alm_clock_ms();
    if (status >= 200 && status < 300 && !a->whole)
        return alm_llm_sse_feed(&a->sse, p, n, on_event, a) == ALM_OK;
    return alm_buf_append(&a->body.buf, p, n) == ALM_OK;
}

static bool keep_going(void *arg)
{
    struct attempt *a = arg;

    if (a->sink && a->sink->keep_going && !a->sink->keep_going(a->sink->arg)) {
        a->cancelled = true;
        return false;
    }
    if (alm_clock_ms() - a->last_data_ms > a->idle_ms) {
        a->idle = true;
        return false;
    }
    return true;
}

/* Learns the content type once the headers are in, before the first byte; each answer
 * (after an interim one) starts over. */
static void on_header(void *arg, const char *p, size_t len)
{
    struct attempt *a = arg;
    static const char ct[] = "content-type:";

    a->last_data_ms = alm_clock_ms();
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        a->whole = false;
    } else if (len > sizeof(ct) - 1 && strncasecmp(p, ct, sizeof(ct) - 1) == 0) {
        const char *v = p + sizeof(ct) - 1;
        while (*v == ' ' && v < p + len)
            v++;
        a->whole = (size_t)(p + len - v) >= 16 && strncasecmp(v, "application/json", 16) == 0;
    }
}

/* A whole chat.completion (a server that does not stream). */
static enum alm_llm_fail read_whole(struct attempt *a, struct alm_errbuf *eb)
{
    struct alm_llm_chunk c;

    if (!a->body.buf.data || !alm_llm_chunk_parse(a->body.buf.data, a->body.buf.len, true, &c)) {
        alm_fail(eb, ALM_ERR_UPSTREAM, "the reply is not a chat completion");
        return ALM_LLM_UPSTREAM_ERROR;
    }
    take_chunk(a, &c);
    bool ok = !c.text || give_text(a, c.text, strlen(c.text));
    bool had = c.text != NULL;
    alm_llm_chunk_release(&c);
    if (!ok)
        return ALM_LLM_CANCELLED;
    if (a->stream_error || !had) {
        alm_fail(eb, ALM_ERR_UPSTREAM, "the reply holds no answer");
        return ALM_LLM_UPSTREAM_ERROR;
    }
    return ALM_LLM_OK;
}

/* What a finished transfer means; *retry says whether another attempt may do better. */
static enum alm_llm_fail outcome(struct attempt *a, const struct alm_http_client_result *r,
                                 bool *retry, struct alm_errbuf *eb)
{
    bool cut = r->fault != ALM_HTTP_CLIENT_DONE;

    *retry = false;
    if (a->cancelled)
        return (void)alm_fail(eb, ALM_ERR_SHUTTING_DOWN, "cancelled"), ALM_LLM_CANCELLED;
    if (a->idle || r->fault == ALM_HTTP_CLIENT_TIMEOUT) {
        *retry = !a->got_text && a->idle;
        alm_fail(eb, ALM_ERR_TIMEOUT, "%s after %lld ms",
                 a->idle ? "no data from the model" : "deadline passed",
                 (long long)(alm_clock_ms() - a->t0_ms));
        return a->got_text ? ALM_LLM_INTERRUPTED : ALM_LLM_TIMEOUT;
    }
    if (a->stream_error || a->bad_chunk) {
        alm_fail(eb, ALM_ERR_UPSTREAM, "%s",
                 a->stream_error ? "the model reported an error mid-stream"
                                 : "a stream chunk is not JSON");
        return a->got_text ? ALM_LLM_INTERRUPTED : ALM_LLM_UPSTREAM_ERROR;
    }
    if (cut && !(a->status >= 200 && a->status < 300 && a->got_text)) {
        *retry = !a->got_text && a->status == 0;
        alm_http_client_error(r, NULL, eb);
        return a->got_text ? ALM_LLM_INTERRUPTED : ALM_LLM_UNAVAILABLE;
    }
    if (a->status < 200 || a->status >= 300) {
        enum alm_err err = alm_http_client_error(r, retry, eb);
        return err == ALM_ERR_RATE_LIMITED ? ALM_LLM_RATE_LIMITED
               : alm_err_outage(err)       ? ALM_LLM_UNAVAILABLE
                                           : ALM_LLM_UPSTREAM_ERROR;
    }
    if (a->whole)
        return read_whole(a, eb);
    if (cut || (!a->saw_done && !a->finished)) {
        alm_fail(eb, ALM_ERR_UNAVAILABLE, "the stream ended before the answer did");
        return a->got_text ? ALM_LLM_INTERRUPTED : ALM_LLM_UNAVAILABLE;
    }
    return ALM_LLM_OK;
}

/* A client of the model's API that accepts accept (a media type). */
static struct alm_http_client *client_for(const char *api_key, const char *accept)
{
    return alm_http_client_open(
        alm_http_client_headers("application/json", accept, "Authorization: Bearer ", api_key));
}

/* {url}/{path} when the URL ends with /v1, else {url}/v1/{path}, as embed.c does. */
static char *endpoint_of(const char *url, const char *path)
{
    size_t n = strlen(url);

    while (n > 0 && url[n - 1] == '/')
        n--;
    bool has_v1 = n >= 4 && memcmp(url + n - 3, "/v1", 3) == 0 && url[n - 4] != '/';
    return alm_xasprintf("%.*s%s/%s", (int)n, url, has_v1 ? "" : "/v1", path);
}

static char *request_body(const struct alm_config *cfg, const struct alm_llm_msg *msgs, size_t n)
{
    json_t *arr = json_array();

    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            arr, json_pack("{s:s, s:s}", "role", msgs[i].role, "content", msgs[i].content));
    json_t *body = json_pack("{s:s, s:o, s:b, s:{s:b}, s:i, s:f}", "model", cfg->llm_model,
                             "messages", arr, "stream", 1, "stream_options", "include_usage", 1,
                             "max_tokens", (int)cfg->llm_max_tokens, "temperature", 0.0);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        abort(); /* jansson fails only when out of memory */
    return text;
}

/* What every attempt of one call sends: through its client, to its endpoint, its body. */
struct call {
    struct alm_http_client *http;
    const char *endpoint;
    const char *body;
};

static enum alm_llm_fail attempt_once(const struct call *call, const struct alm_config *cfg,
                                      int timeout_ms, int64_t call_t0,
                                      const struct alm_llm_sink *sink, struct alm_llm_usage *u,
                                      bool *retry, int64_t *retry_after, struct alm_errbuf *eb)
{
    struct attempt a = {.sink = sink, .usage = u, .call_t0_ms = call_t0, .t0_ms = alm_clock_ms()};
    struct alm_http_client_stream stream = {
        .on_header = on_header, .on_data = on_data, .keep_going = keep_going, .arg = &a};
    struct alm_http_client_request req = {
        .url = call->endpoint, .body = call->body, .timeout_ms = timeout_ms, .stream = &stream};
    struct alm_http_client_result res;

    a.last_data_ms = a.t0_ms;
    a.idle_ms = cfg->llm_idle_timeout_ms;
    a.body = (struct alm_http_sink){ALM_BUF_INIT(WHOLE_CAP), false};
    alm_llm_sse_init(&a.sse);
    alm_http_client_perform(call->http, &req, &res);
    a.status = res.status;
    *retry_after =
        res.retry_after_ms > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS : res.retry_after_ms;
    enum alm_llm_fail f = outcome(&a, &res, retry, eb);
    alm_llm_sse_release(&a.sse);
    alm_buf_release(&a.body.buf);
    return f;
}

static int64_t backoff_ms(int attempt)
{
    int64_t d = (int64_t)BACKOFF_BASE_MS << (attempt < 5 ? attempt : 5);

    if (d > BACKOFF_CAP_MS)
        d = BACKOFF_CAP_MS;
    return d + randombytes_uniform((uint32_t)(d / 2 + 1));
}

/* Sleeps ms in short steps so that a cancelled request stops waiting at once. */
static bool wait_or_cancel(const struct alm_llm_sink *sink, int64_t ms)
{
    int64_t end = alm_clock_ms() + ms;

    while (alm_clock_ms() < end) {
        if (sink && sink->keep_going && !sink->keep_going(sink->arg))
            return false;
        int64_t left = end - alm_clock_ms();
        alm_clock_sleep_ms(left < 50 ? left : 50);
    }
    return true;
}

enum alm_llm_fail alm_llm_chat(const struct alm_config *cfg, const struct alm_llm_msg *msgs,
                               size_t n, int64_t deadline_ms, const struct alm_llm_sink *sink,
                               struct alm_llm_usage *u, struct alm_errbuf *eb)
{
    enum alm_llm_fail f;

    *u = (struct alm_llm_usage){.prompt_tokens = -1, .completion_tokens = -1, .first_token_ms = -1};
    if (!cfg->llm_url) {
        alm_fail(eb, ALM_ERR_UNAVAILABLE, "no language model configured (ALMANAC_LLM_URL)");
        return ALM_LLM_NOT_CONFIGURED;
    }
    char *endpoint = endpoint_of(cfg->llm_url, "chat/completions");
    char *body = request_body(cfg, msgs, n);
    struct call call = {client_for(cfg->llm_api_key, "text/event-stream"), endpoint, body};
    int64_t t0 = alm_clock_ms();

    for (int attempt = 0;; attempt++) {
        int64_t left = deadline_ms - alm_clock_ms();
        if (left <= 0) {
            f = ALM_LLM_TIMEOUT;
            alm_fail(eb, ALM_ERR_TIMEOUT, "deadline passed after %d attempts", attempt);
            break;
        }
        bool retry;
        int64_t retry_after;
        u->attempts = attempt + 1;
        f = attempt_once(&call, cfg, (int)left, t0, sink, u, &retry, &retry_after, eb);
        if (f == ALM_LLM_OK || !retry || attempt >= cfg->llm_retries)
            break;
        int64_t wait = retry_after >= 0 ? retry_after : backoff_ms(attempt);
        if (wait >= deadline_ms - alm_clock_ms())
            break;
        alm_warn("llm.retry", "chat request failed, retrying", "{s:s, s:s, s:i, s:I}", "reason",
                 alm_llm_fail_name(f), "detail", eb->msg, "attempt", attempt + 1, "wait_ms",
                 (json_int_t)wait);
        if (!wait_or_cancel(sink, wait)) {
            f = ALM_LLM_CANCELLED;
            alm_fail(eb, ALM_ERR_SHUTTING_DOWN, "cancelled");
            break;
        }
    }
    alm_http_client_close(call.http);
    free(body);
    free(endpoint);
    return f;
}

/* ---------------------------------------------------------------- readiness */

struct check {
    const struct alm_config *cfg;
    struct alm_http_client *http;
    char *endpoint;
};

static bool run_check(void *state, int timeout_ms, char *why, size_t n)
{
    struct check *c = state;
    struct alm_http_sink s = {ALM_BUF_INIT(WHOLE_CAP), false};
    struct alm_http_client_request req = {.url = c->endpoint, .timeout_ms = timeout_ms, .sink = &s};
    struct alm_http_client_result res;
    struct alm_errbuf eb = {{0}};

    alm_http_client_perform(c->http, &req, &res);
    alm_buf_release(&s.buf);
    if (res.fault != ALM_HTTP_CLIENT_DONE) {
        alm_http_client_error(&res, NULL, &eb);
        snprintf(why, n, "%s", eb.msg);
        return false;
    }
    if (res.status < 200 || res.status >= 300) {
        snprintf(why, n, "GET /models answered HTTP %ld", res.status);
        return false;
    }
    return true;
}

static void free_check(void *state)
{
    struct check *c = state;

    alm_http_client_close(c->http);
    free(c->endpoint);
    free(c);
}

void alm_llm_add_check(struct alm_health *h, const struct alm_config *cfg)
{
    if (!cfg->llm_url) {
        /* A note rather than a check that warns: /ready of a deployment that chose search
         * without answers stays "pass". */
        alm_health_add_note(h, "answers: search results only (ALMANAC_LLM_URL unset)");
        return;
    }
    struct check *c = alm_xcalloc(1, sizeof(*c));
    struct alm_check chk = {.name = "llm",
                            .component_type = "component",
                            .required = false,
                            .run = run_check,
                            .state = c,
                            .free_state = free_check};

    c->cfg = cfg;
    c->endpoint = endpoint_of(cfg->llm_url, "models");
    c->http = client_for(cfg->llm_api_key, "application/json");
    alm_health_add(h, &chk);
}
