/* SPDX-License-Identifier: Apache-2.0 */
/* POST /api/v1/answers: a grounded answer with citations, as one JSON object or streamed
 * as Server-Sent Events.
 *
 * The handler does the quick, bounded part on the server thread: sign-in, validation,
 * the per-user rate limit, the conversation's last turns, hybrid search over the
 * knowledge bases the user may read, and the prompt from the passages that pass the
 * relevance floor and fit the token budget. The model is then asked on a thread of the
 * answer's own: a streamed answer goes out through http_stream.c as the tokens come; an
 * answer in one object suspends its request until the thread resumes it. Whatever the
 * model does (unconfigured, down, slow past the deadline, cut mid-stream), the client
 * gets the search results and a reason in answer_unavailable within the deadline. */
#include "compat.h"
#include "answer.h"
#include "handlers.h"
#include "clock.h"
#include "db.h"
#include "http_stream.h"
#include "llm.h"
#include "log.h"
#include "redis.h"
#include "redis_keys.h"
#include "search.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_QUESTION     ALM_SEARCH_MAX_QUERY
#define MAX_CITED        20
#define PING_MS          1000
#define RATE_WINDOW_S    60
#define ANSWER_CAP       (1024 * 1024)
#define SHUTDOWN_WAIT_MS 3000
#define TITLE_MAX        80

/* ---------------------------------------------------------------- metrics */

static const double latency_buckets[] = {0.25, 0.5, 1, 2, 5, 10, 20, 30, 60};
static const double first_token_buckets[] = {0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30};
#define NB ALM_ARRAY_SIZE(latency_buckets)

struct histogram {
    atomic_ullong buckets[NB + 1]; /* the last one is +Inf */
    atomic_ullong sum_us;
    atomic_ullong count;
};

static struct {
    struct histogram latency, first_token;
    atomic_ullong outcomes[3]; /* answered, nothing_relevant, unavailable */
    atomic_ullong upstream_errors[ALM_LLM_FAIL_COUNT];
    atomic_ullong tokens_in, tokens_out, citations_dropped, rate_limited;
} metrics;

static void observe(struct histogram *h, const double *bounds, double seconds)
{
    size_t i = 0;

    while (i < NB && seconds > bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (unsigned long long)(seconds * 1e6),
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

static void render_histogram(struct alm_buf *out, const char *name, const char *help,
                             struct histogram *h, const double *bounds)
{
    unsigned long long cum = 0;

    alm_buf_putf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (size_t i = 0; i <= NB; i++) {
        cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < NB)
            alm_buf_putf(out, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], cum);
        else
            alm_buf_putf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, cum);
    }
    alm_buf_putf(out, "%s_sum %.6f\n%s_count %llu\n", name, (double)atomic_load(&h->sum_us) / 1e6,
                 name, atomic_load(&h->count));
}

void alm_api_answers_metrics(struct alm_buf *out)
{
    static const char *const outcome_names[3] = {"answered", "nothing_relevant", "unavailable"};

    render_histogram(out, "almanac_answer_duration_seconds",
                     "Time from an answer's request to its last byte.", &metrics.latency,
                     latency_buckets);
    render_histogram(out, "almanac_answer_first_token_seconds",
                     "Time from an answer's request to the model's first token.",
                     &metrics.first_token, first_token_buckets);
    alm_buf_putf(out, "# HELP almanac_answers_total Answers by outcome.\n"
                      "# TYPE almanac_answers_total counter\n");
    for (size_t i = 0; i < 3; i++)
        alm_buf_putf(out, "almanac_answers_total{outcome=\"%s\"} %llu\n", outcome_names[i],
                     atomic_load(&metrics.outcomes[i]));
    alm_buf_putf(out, "# HELP almanac_llm_errors_total Answers the model did not "
                      "give, by answer_unavailable reason.\n"
                      "# TYPE almanac_llm_errors_total counter\n");
    for (int i = 1; i < ALM_LLM_FAIL_COUNT; i++)
        alm_buf_putf(out, "almanac_llm_errors_total{reason=\"%s\"} %llu\n",
                     alm_llm_fail_name((enum alm_llm_fail)i),
                     atomic_load(&metrics.upstream_errors[i]));
    alm_buf_putf(
        out,
        "# HELP almanac_llm_tokens_total Tokens the model reported, by direction.\n"
        "# TYPE almanac_llm_tokens_total counter\n"
        "almanac_llm_tokens_total{direction=\"in\"} %llu\n"
        "almanac_llm_tokens_total{direction=\"out\"} %llu\n"
        "# HELP almanac_answer_citations_dropped_total Citations that named no passage of the "
        "prompt.\n# TYPE almanac_answer_citations_dropped_total counter\n"
        "almanac_answer_citations_dropped_total %llu\n"
        "# HELP almanac_answers_rate_limited_total Answers refused by the per-user limit.\n"
        "# TYPE almanac_answers_rate_limited_total counter\n"
        "almanac_answers_rate_limited_total %llu\n",
        atomic_load(&metrics.tokens_in), atomic_load(&metrics.tokens_out),
        atomic_load(&metrics.citations_dropped), atomic_load(&metrics.rate_limited));
}

/* ---------------------------------------------------------------- running answers */

/* Answer threads still running, and the flag that cancels them all at shutdown. */
static pthread_mutex_t running_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t running_cond = PTHREAD_COND_INITIALIZER;
static int running;
static atomic_bool shutting_down;

void alm_api_answers_shutdown(void)
{
    int64_t until = alm_clock_ms() + SHUTDOWN_WAIT_MS;
    int left;

    atomic_store(&shutting_down, true);
    pthread_mutex_lock(&running_mu);
    while (running > 0 && alm_clock_wait_until(&running_cond, &running_mu, until))
        ;
    left = running;
    pthread_mutex_unlock(&running_mu);
    if (left)
        alm_warn("answers.shutdown", "answers still running at shutdown", "{s:i}", "running", left);
    /* Resumed requests need a moment on the server's threads before it stops. */
    alm_clock_sleep_ms(50);
}

/* One answer, shared by the request (for an answer in one object) and its thread. */
struct job {
    pthread_mutex_t mu;
    int refs;
    struct alm_app *app;
    char request_id[65];
    int64_t user_id, conversation_id;
    char *question;
    struct alm_passage *passages;
    size_t n;
    json_t *results; /* the search results, as /search shows them */
    bool degraded;
    char degraded_reason[200];
    struct alm_llm_msg *msgs;
    size_t n_msgs;
    char **owned; /* message texts the job allocated */
    size_t n_owned;
    /* The delivery: a stream, or a suspended request. */
    struct alm_stream *out;
    struct alm_req *req;
    /* The outcome. */
    struct alm_buf answer;
    enum alm_llm_fail fail;
    char fail_detail[256];
    struct alm_llm_usage usage;
    json_t *citations;
    int dropped;
    int64_t turn_id;
    int64_t t0_ms, search_ms, deadline_ms, last_write_ms;
    bool client_gone;
};

static void job_unref(void *arg)
{
    struct job *j = arg;
    bool last;

    pthread_mutex_lock(&j->mu);
    last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (!last)
        return;
    pthread_mutex_destroy(&j->mu);
    for (size_t i = 0; i < j->n; i++)
        alm_passage_release(&j->passages[i]);
    free(j->passages);
    for (size_t i = 0; i < j->n_owned; i++)
        free(j->owned[i]);
    free(j->owned);
    free(j->msgs);
    free(j->question);
    json_decref(j->results);
    json_decref(j->citations);
    alm_buf_release(&j->answer);
    free(j);
}

static void add_msg(struct job *j, const char *role, char *content)
{
    j->msgs = alm_xrealloc(j->msgs, (j->n_msgs + 1) * sizeof(*j->msgs));
    j->msgs[j->n_msgs++] = (struct alm_llm_msg){role, content};
    j->owned = alm_xrealloc(j->owned, (j->n_owned + 1) * sizeof(*j->owned));
    j->owned[j->n_owned++] = content;
}

/* ---------------------------------------------------------------- events */

/* One Server-Sent Event; false when the client is gone. */
static bool send_event(struct job *j, const char *name, json_t *data)
{
    char *text = json_dumps(data, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(data);
    if (!text)
        return false;
    char *ev = alm_xasprintf("event: %s\ndata: %s\n\n", name, text);
    bool ok = alm_stream_write(j->out, ev, strlen(ev));
    free(ev);
    free(text);
    j->last_write_ms = alm_clock_ms();
    return ok;
}

static bool on_text(void *arg, const char *text, size_t n)
{
    struct job *j = arg;

    if (alm_buf_append(&j->answer, text, n) != ALM_OK)
        return false; /* a runaway answer: stop it */
    if (j->out && !send_event(j, "delta", json_pack("{s:s%}", "text", text, n))) {
        j->client_gone = true;
        return false;
    }
    return !atomic_load(&shutting_down);
}

/* Polled while the model works: a stream pings (which is also how a vanished client is
 * noticed); a suspended request looks at its socket. */
static bool keep_going(void *arg)
{
    struct job *j = arg;

    if (atomic_load(&shutting_down))
        return false;
    if (j->out) {
        if (alm_clock_ms() - j->last_write_ms >= PING_MS) {
            j->last_write_ms = alm_clock_ms();
            if (!alm_stream_write(j->out, ": ping\n\n", 8))
                j->client_gone = true;
        }
    } else if (alm_req_peer_closed(j->req)) {
        j->client_gone = true;
    }
    return !j->client_gone;
}

/* ---------------------------------------------------------------- the answer's outcome */

/* "page" for the UI's "page 12"; "location" says where in any paged format, as search does. */
static json_t *passage_json(const struct alm_passage *p, int n)
{
    bool located = p->location && p->location_kind[0];
    bool paged = located && strcmp(p->location_kind, "page") == 0;

    return json_pack(
        "{s:i, s:I, s:I, s:s, s:o, s:o, s:o, s:i, s:I, s:I, s:s}", "n", n, "document_id",
        (json_int_t)p->document_id, "knowledge_base_id", (json_int_t)p->knowledge_base_id, "title",
        p->title, "section", p->section ? json_string(p->section) : json_null(), "page",
        paged ? json_integer(p->location) : json_null(), "location",
        located ? json_pack("{s:s, s:i}", "kind", p->location_kind, "number", p->location)
                : json_null(),
        "chunk_index", p->chunk_index, "start", (json_int_t)p->start, "end", (json_int_t)p->end,
        "text", p->text);
}

static void ground(struct job *j)
{
    int cited[MAX_CITED];
    size_t n = alm_answer_citations(j->answer.data ? j->answer.data : "", j->n, cited, MAX_CITED,
                                    &j->dropped);

    j->citations = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(j->citations, passage_json(&j->passages[cited[i] - 1], cited[i]));
    atomic_fetch_add(&metrics.citations_dropped, (unsigned long long)j->dropped);
}

static const char *unavailable_message(enum alm_llm_fail f)
{
    switch (f) {
    case ALM_LLM_NOT_CONFIGURED:
        return "no language model is configured: here are the search results";
    case ALM_LLM_RATE_LIMITED:
        return "the language model is rate limited: here are the search results";
    case ALM_LLM_TIMEOUT:
        return "the language model did not answer in time: here are the search results";
    case ALM_LLM_INTERRUPTED:
        return "the language model's answer broke off: here are the search results";
    case ALM_LLM_CANCELLED:
        return "the answer was cancelled";
    case ALM_LLM_UPSTREAM_ERROR:
        return "the language model refused the request: here are the search results";
    default:
        return "the language model is unavailable: here are the search results";
    }
}

static json_t *unavailable_json(const struct job *j)
{
    if (j->fail == ALM_LLM_OK)
        return json_null();
    return json_pack("{s:s, s:s}", "reason", alm_llm_fail_name(j->fail), "message",
                     unavailable_message(j->fail));
}

static json_t *usage_json(const struct job *j)
{
    int64_t now = alm_clock_ms();

    return json_pack(
        "{s:{s:o, s:o}, s:{s:I, s:o, s:I}}", "usage", "prompt_tokens",
        j->usage.prompt_tokens >= 0 ? json_integer(j->usage.prompt_tokens) : json_null(),
        "completion_tokens",
        j->usage.completion_tokens >= 0 ? json_integer(j->usage.completion_tokens) : json_null(),
        "timing", "search_ms", (json_int_t)j->search_ms, "first_token_ms",
        j->usage.first_token_ms >= 0 ? json_integer(j->search_ms + j->usage.first_token_ms)
                                     : json_null(),
        "total_ms", (json_int_t)(now - j->t0_ms));
}

/* Stores the turn; a failure is logged, never fatal to the answer already given. */
static void save_turn(struct job *j)
{
    struct alm_errbuf eb = {{0}};
    PGconn *conn = alm_pool_get(j->app->db, &eb);
    PGresult *res = NULL;
    json_t *stored = json_array(), *c;
    size_t i;
    char cid[ALM_API_ID_TEXT], dropped[16];

    json_array_foreach(j->citations, i, c)
    {
        json_t *copy = json_deep_copy(c);
        json_object_del(copy, "text"); /* read from the document while it exists */
        json_array_append_new(stored, copy);
    }
    char *cits = json_dumps(stored, JSON_COMPACT);
    json_decref(stored);
    alm_api_id_text(j->conversation_id, cid);
    snprintf(dropped, sizeof(dropped), "%d", j->dropped);
    const char *params[6] = {cid,
                             j->question,
                             j->fail == ALM_LLM_OK ? j->answer.data : NULL,
                             j->fail == ALM_LLM_OK ? NULL : alm_llm_fail_name(j->fail),
                             cits,
                             dropped};
    if (j->fail == ALM_LLM_OK && !params[2])
        params[2] = "";
    enum alm_err err =
        conn ? alm_db_query(conn, (int)j->app->cfg->db_timeout_ms,
                            "WITH t AS (INSERT INTO conversation_turns (conversation_id, question, "
                            "answer, answer_unavailable, citations, dropped_citations, "
                            "nothing_relevant) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7) "
                            "RETURNING id), u AS (UPDATE conversations SET updated_at = now() "
                            "WHERE id = $1) SELECT id FROM t",
                            7,
                            (const char *const[]){params[0], params[1], params[2], params[3],
                                                  params[4], params[5], j->n ? "f" : "t"},
                            &res, &eb)
             : ALM_ERR_UNAVAILABLE;
    if (!err && PQntuples(res) == 1)
        j->turn_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    else
        alm_warn("answers.save_failed", "cannot store the conversation turn", "{s:s, s:s}",
                 "request_id", j->request_id, "detail", eb.msg);
    PQclear(res);
    free(cits);
    alm_pool_put(j->app->db, conn);
}

static void count_outcome(struct job *j)
{
    int64_t total = alm_clock_ms() - j->t0_ms;

    observe(&metrics.latency, latency_buckets, (double)total / 1000.0);
    if (j->usage.first_token_ms >= 0)
        observe(&metrics.first_token, first_token_buckets,
                (double)(j->search_ms + j->usage.first_token_ms) / 1000.0);
    if (j->usage.prompt_tokens > 0)
        atomic_fetch_add(&metrics.tokens_in, (unsigned long long)j->usage.prompt_tokens);
    if (j->usage.completion_tokens > 0)
        atomic_fetch_add(&metrics.tokens_out, (unsigned long long)j->usage.completion_tokens);
    atomic_fetch_add(&metrics.outcomes[j->fail != ALM_LLM_OK ? 2 : j->n ? 0 : 1], 1);
    if (j->fail != ALM_LLM_OK)
        atomic_fetch_add(&metrics.upstream_errors[j->fail], 1);
    /* Never the question, the passages or the answer: only their shape. */
    alm_log(
        j->fail == ALM_LLM_OK || j->fail == ALM_LLM_CANCELLED ? ALM_LOG_INFO : ALM_LOG_WARN,
        "answers.done", "answer finished",
        "{s:s, s:I, s:I, s:s, s:s, s:i, s:i, s:I, s:I, s:i, s:I, s:I, s:b}", "request_id",
        j->request_id, "user_id", (json_int_t)j->user_id, "conversation_id",
        (json_int_t)j->conversation_id, "outcome", alm_llm_fail_name(j->fail), "detail",
        j->fail_detail, "passages", (int)j->n, "citations", (int)json_array_size(j->citations),
        "search_ms", (json_int_t)j->search_ms, "first_token_ms",
        (json_int_t)(j->usage.first_token_ms >= 0 ? j->search_ms + j->usage.first_token_ms : -1),
        "attempts", j->usage.attempts, "answer_bytes", (json_int_t)j->answer.len, "total_ms",
        (json_int_t)total, "client_gone", j->client_gone);
}

static void finish_stream(struct job *j)
{
    if (j->fail != ALM_LLM_OK && j->fail != ALM_LLM_CANCELLED)
        send_event(j, "error",
                   json_pack("{s:s, s:s, s:s}", "code", "answer_unavailable", "reason",
                             alm_llm_fail_name(j->fail), "message", unavailable_message(j->fail)));
    send_event(j, "citations",
               json_pack("{s:O, s:i}", "citations", j->citations, "dropped_citations", j->dropped));
    json_t *done = usage_json(j);
    json_object_set_new(done, "conversation_id", json_integer(j->conversation_id));
    json_object_set_new(done, "turn_id", j->turn_id ? json_integer(j->turn_id) : json_null());
    json_object_set_new(done, "answer_unavailable", unavailable_json(j));
    json_object_set_new(done, "nothing_relevant", json_boolean(j->n == 0));
    json_object_set(done, "results", j->results);
    send_event(j, "done", done);
    alm_stream_end(j->out);
}

static void *run(void *arg)
{
    struct job *j = arg;
    struct alm_errbuf eb = {{0}};

    if (j->n == 0) {
        if (alm_buf_append(&j->answer, alm_answer_nothing_relevant,
                           strlen(alm_answer_nothing_relevant)) == ALM_OK &&
            j->out)
            send_event(j, "delta", json_pack("{s:s}", "text", alm_answer_nothing_relevant));
        j->fail = ALM_LLM_OK;
    } else {
        struct alm_llm_sink sink = {on_text, keep_going, j};
        j->fail =
            alm_llm_chat(j->app->cfg, j->msgs, j->n_msgs, j->deadline_ms, &sink, &j->usage, &eb);
        snprintf(j->fail_detail, sizeof(j->fail_detail), "%s", j->fail ? eb.msg : "");
        if (j->fail == ALM_LLM_CANCELLED && atomic_load(&shutting_down))
            j->fail = ALM_LLM_UNAVAILABLE; /* for the client: the server is going away */
    }
    ground(j);
    save_turn(j);
    count_outcome(j);
    if (j->out)
        finish_stream(j);
    else
        alm_req_resume(j->req);
    job_unref(j);
    pthread_mutex_lock(&running_mu);
    running--;
    pthread_cond_broadcast(&running_cond);
    pthread_mutex_unlock(&running_mu);
    return NULL;
}

static bool start_thread(struct job *j)
{
    pthread_t t;
    pthread_attr_t attr;

    pthread_mutex_lock(&running_mu);
    running++;
    pthread_mutex_unlock(&running_mu);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    bool ok = pthread_create(&t, &attr, run, j) == 0;
    pthread_attr_destroy(&attr);
    if (!ok) {
        pthread_mutex_lock(&running_mu);
        running--;
        pthread_mutex_unlock(&running_mu);
    }
    return ok;
}

/* ---------------------------------------------------------------- the request */

static json_t *answer_json(const struct job *j)
{
    json_t *body = usage_json(j);

    json_object_set_new(body, "conversation_id", json_integer(j->conversation_id));
    json_object_set_new(body, "turn_id", j->turn_id ? json_integer(j->turn_id) : json_null());
    json_object_set_new(body, "answer",
                        j->fail == ALM_LLM_OK && j->answer.data ? json_string(j->answer.data)
                                                                : json_null());
    if (j->fail != ALM_LLM_OK && j->answer.len)
        json_object_set_new(body, "partial_answer", json_string(j->answer.data));
    json_object_set_new(body, "answer_unavailable", unavailable_json(j));
    json_object_set_new(body, "nothing_relevant", json_boolean(j->n == 0));
    json_object_set(body, "citations", j->citations);
    json_object_set_new(body, "dropped_citations", json_integer(j->dropped));
    json_object_set(body, "results", j->results);
    json_object_set_new(body, "degraded", json_boolean(j->degraded));
    if (j->degraded)
        json_object_set_new(body, "degraded_reason", json_string(j->degraded_reason));
    return body;
}

static const char *question_or_reply(struct alm_req *req, const json_t *body)
{
    const char *q = alm_api_json_str(body, "question");

    if (!q || strspn(q, " \t\r\n") == strlen(q)) {
        alm_reply_error(req, ALM_ERR_UNPROCESSABLE, "\"question\" must be a non-empty string");
        return NULL;
    }
    if (strlen(q) > MAX_QUESTION) {
        alm_reply_error(req, ALM_ERR_UNPROCESSABLE, "\"question\" is longer than %d bytes",
                        MAX_QUESTION);
        return NULL;
    }
    return q;
}

static bool options_or_reply(struct alm_req *req, const json_t *body, int64_t *conversation,
                             bool *stream)
{
    const json_t *c = json_object_get(body, "conversation_id");
    const json_t *s = json_object_get(body, "stream");

    *conversation = 0;
    *stream = false;
    if (c && !json_is_null(c)) {
        if (!json_is_integer(c) || json_integer_value(c) < 1) {
            alm_reply_error(req, ALM_ERR_UNPROCESSABLE,
                            "\"conversation_id\" must be a positive integer");
            return false;
        }
        *conversation = json_integer_value(c);
    }
    if (s && !json_is_boolean(s)) {
        alm_reply_error(req, ALM_ERR_UNPROCESSABLE, "\"stream\" must be true or false");
        return false;
    }
    *stream = json_is_true(s);
    return true;
}

/* A fixed window per user in Redis; Redis down lets answers through (logged), as the
 * sign-in limits do. */
static bool rate_or_reply(struct alm_req *req, const struct alm_user *me)
{
    static const char script[] = "local n = redis.call('INCR', KEYS[1]) "
                                 "if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end "
                                 "return {n, redis.call('TTL', KEYS[1])}";
    struct alm_app *app = alm_req_app(req);
    struct alm_errbuf eb = {{0}};
    redisContext *c = alm_pool_get(app->redis, &eb);
    redisReply *r = NULL;
    long long n = 0, ttl = 1;
    char key[64];

    snprintf(key, sizeof(key), ALM_ANSWER_LIMIT "%lld", (long long)me->id);
    if (c)
        r = redisCommand(c, "EVAL %s 1 %s %d", script, key, RATE_WINDOW_S);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        n = r->element[0]->integer;
        ttl = r->element[1]->integer > 0 ? r->element[1]->integer : 1;
    } else {
        alm_warn("answers.ratelimit_unavailable", "answer rate limit not applied: redis failed",
                 "{s:s}", "request_id", alm_req_id(req));
    }
    if (r)
        freeReplyObject(r);
    alm_pool_put(app->redis, c);
    if (n <= app->cfg->answer_rate_limit)
        return true;
    char retry[24];
    snprintf(retry, sizeof(retry), "%lld", ttl);
    alm_reply_header(req, "Retry-After", retry);
    atomic_fetch_add(&metrics.rate_limited, 1);
    alm_reply_error(req, ALM_ERR_RATE_LIMITED, "at most %ld answers a minute",
                    app->cfg->answer_rate_limit);
    return false;
}

/* The user's conversation (404 otherwise) and its last turns as messages, plus the last
 * question for the retrieval query. */
static bool conversation_or_reply(struct alm_req *req, PGconn *conn, const struct alm_user *me,
                                  struct job *j, char **last_question)
{
    const struct alm_app *app = alm_req_app(req);
    PGresult *res = NULL;
    char uid[ALM_API_ID_TEXT], cid[ALM_API_ID_TEXT], turns[16];

    alm_api_id_text(me->id, uid);
    if (!j->conversation_id)
        return true; /* created once the retrieval worked: create_conversation_or_reply */
    alm_api_id_text(j->conversation_id, cid);
    snprintf(turns, sizeof(turns), "%ld", app->cfg->answer_history_turns);
    const char *params[3] = {cid, uid, turns};
    if (!alm_api_query_or_reply(
            req, conn,
            "SELECT c.id, t.question, t.answer FROM conversations c LEFT JOIN LATERAL ("
            "SELECT id, question, answer FROM conversation_turns WHERE conversation_id = c.id "
            "ORDER BY id DESC LIMIT $3) t ON true WHERE c.id = $1 AND c.user_id = $2 "
            "ORDER BY t.id",
            3, params, &res)) {
        PQclear(res);
        return false;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        alm_reply_error(req, ALM_ERR_NOT_FOUND, "conversation %lld not found",
                        (long long)j->conversation_id);
        return false;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        if (PQgetisnull(res, r, 1))
            continue; /* a conversation without turns yet */
        add_msg(j, "user", alm_xstrdup(PQgetvalue(res, r, 1)));
        if (!PQgetisnull(res, r, 2))
            add_msg(j, "assistant", alm_xstrdup(PQgetvalue(res, r, 2)));
        free(*last_question);
        *last_question = alm_xstrdup(PQgetvalue(res, r, 1));
    }
    PQclear(res);
    return true;
}

/* A new conversation titled by the question (its first line, up to 80 bytes). */
static bool create_conversation_or_reply(struct alm_req *req, PGconn *conn,
                                         const struct alm_user *me, struct job *j)
{
    PGresult *res = NULL;
    char uid[ALM_API_ID_TEXT];

    alm_api_id_text(me->id, uid);
    char title[TITLE_MAX + 4];
    size_t n = strlen(j->question);
    if (n > TITLE_MAX) {
        n = TITLE_MAX;
        while (n > 0 && ((unsigned char)j->question[n] & 0xC0) == 0x80)
            n--;
    }
    snprintf(title, sizeof(title), "%.*s", (int)n, j->question);
    for (char *p = title; *p; p++)
        if (*p == '\r' || *p == '\n' || *p == '\t')
            *p = ' ';
    const char *params[2] = {uid, title};
    if (!alm_api_query_or_reply(
            req, conn, "INSERT INTO conversations (user_id, title) VALUES ($1, $2) RETURNING id", 2,
            params, &res)) {
        PQclear(res);
        return false;
    }
    j->conversation_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return true;
}

/* Follow-ups retrieve with the last question and the new one together, so that "and for
 * contractors?" still finds the passages its conversation is about; the new question
 * comes first, so that it gets the room when the two are too long together. */
static char *retrieval_query(const char *question, const char *last)
{
    if (!last)
        return alm_xstrdup(question);
    char *q = alm_xasprintf("%s %s", question, last);
    size_t n = strlen(q);
    if (n > ALM_SEARCH_MAX_QUERY) {
        n = ALM_SEARCH_MAX_QUERY;
        while (n > 0 && ((unsigned char)q[n] & 0xC0) == 0x80)
            n--;
        q[n] = '\0';
    }
    return q;
}

/* The full texts of the hits' chunks, as passages with their relevance. */
static bool passages_or_reply(struct alm_req *req, PGconn *conn, struct job *j,
                              const struct alm_search_result *res)
{
    struct alm_buf docs = ALM_BUF_INIT(0), idx = ALM_BUF_INIT(0);
    enum alm_err err = ALM_OK;
    PGresult *rows = NULL;

    for (size_t i = 0; i < res->n && !err; i++) {
        err = alm_db_array_add(&docs, res->hits[i].document_id);
        if (!err)
            err = alm_db_array_add(&idx, res->hits[i].chunk_index);
    }
    if (!err)
        err = alm_db_array_close(&docs);
    if (!err)
        err = alm_db_array_close(&idx);
    const char *params[2] = {docs.data, idx.data};
    bool ok = !err && alm_api_query_or_reply(
                          req, conn,
                          "SELECT k.ord, c.text FROM unnest($1::bigint[], $2::int[]) WITH "
                          "ORDINALITY AS k(doc, idx, ord) JOIN chunks c ON c.document_id = k.doc "
                          "AND c.chunk_index = k.idx ORDER BY k.ord",
                          2, params, &rows);
    if (err)
        alm_reply_error(req, ALM_ERR_INTERNAL, "cannot build the passage list");
    alm_buf_release(&docs);
    alm_buf_release(&idx);
    if (!ok) {
        PQclear(rows);
        return false;
    }
    j->passages = alm_xcalloc((size_t)PQntuples(rows) + 1, sizeof(*j->passages));
    for (int r = 0; r < PQntuples(rows); r++) {
        const struct alm_search_hit *h = &res->hits[strtol(PQgetvalue(rows, r, 0), NULL, 10) - 1];
        struct alm_passage *p = &j->passages[j->n++];
        *p = (struct alm_passage){h->document_id,
                                  h->knowledge_base_id,
                                  h->chunk_index,
                                  alm_xstrdup(h->title),
                                  h->section ? alm_xstrdup(h->section) : NULL,
                                  alm_xstrdup(PQgetvalue(rows, r, 1)),
                                  h->start,
                                  h->end,
                                  0,
                                  h->location,
                                  {0}};
        snprintf(p->location_kind, sizeof(p->location_kind), "%s", h->location_kind);
        p->relevance = alm_answer_relevance(j->question, p->text);
    }
    PQclear(rows);
    const struct alm_config *cfg = ((struct alm_app *)alm_req_app(req))->cfg;
    j->n = alm_answer_select(j->passages, j->n, (int)cfg->answer_min_relevance,
                             cfg->answer_context_tokens);
    return true;
}

/* Search, the passages and the prompt. */
static bool retrieve_or_reply(struct alm_req *req, PGconn *conn, const struct alm_user *me,
                              const json_t *body, struct job *j, const char *last_question)
{
    struct alm_app *app = alm_req_app(req);
    struct alm_search_result res = {0};
    struct alm_errbuf eb = {{0}};
    int64_t *kbs = NULL;
    size_t nkbs = 0;
    bool ok = false;

    if (!alm_api_search_kbs_or_reply(req, conn, me, body, &kbs, &nkbs))
        return false;
    char *query = retrieval_query(j->question, last_question);
    struct alm_search_env env = {app->cfg, conn, app->embedders, app->qdrants};
    enum alm_err err = nkbs
                           ? alm_search_run(&env, query, kbs, nkbs, (int)app->cfg->answer_passages,
                                            ALM_SEARCH_HYBRID,
                                            alm_clock_ms() + app->cfg->search_timeout_ms, &res, &eb)
                           : ALM_OK;
    free(query);
    free(kbs);
    if (err) {
        alm_api_reply_err(req, err, &eb);
        goto out;
    }
    j->results = json_array();
    for (size_t i = 0; i < res.n; i++)
        json_array_append_new(j->results, alm_api_search_hit_json(&res.hits[i]));
    j->degraded = res.degraded;
    snprintf(j->degraded_reason, sizeof(j->degraded_reason), "%s", res.reason);
    if (!passages_or_reply(req, conn, j, &res))
        goto out;
    j->search_ms = alm_clock_ms() - j->t0_ms;
    ok = true;
out:
    alm_search_result_release(&res);
    return ok;
}

static struct job *job_new(struct alm_req *req, const struct alm_user *me, const char *question,
                           int64_t conversation)
{
    struct alm_app *app = alm_req_app(req);
    struct job *j = alm_xcalloc(1, sizeof(*j));

    pthread_mutex_init(&j->mu, NULL);
    j->refs = 1;
    j->app = app;
    snprintf(j->request_id, sizeof(j->request_id), "%s", alm_req_id(req));
    j->user_id = me->id;
    j->conversation_id = conversation;
    j->question = alm_xstrdup(question);
    j->answer = (struct alm_buf)ALM_BUF_INIT(ANSWER_CAP);
    j->t0_ms = alm_clock_ms();
    j->usage =
        (struct alm_llm_usage){.prompt_tokens = -1, .completion_tokens = -1, .first_token_ms = -1};
    add_msg(j, "system", alm_xstrdup(alm_answer_system_prompt));
    return j;
}

/* Starts the answer's thread, streaming or with the request suspended. */
static void deliver(struct alm_req *req, struct job *j, bool stream)
{
    struct alm_app *app = alm_req_app(req);

    j->deadline_ms = j->t0_ms + app->cfg->llm_timeout_ms;
    add_msg(j, "user", alm_answer_user_prompt(j->passages, j->n, j->question));
    j->refs++; /* the thread's */
    if (stream) {
        j->out = alm_reply_stream(req, 200, "text/event-stream; charset=utf-8");
        send_event(j, "start",
                   json_pack("{s:I, s:s, s:i}", "conversation_id", (json_int_t)j->conversation_id,
                             "request_id", j->request_id, "passages", (int)j->n));
        if (!start_thread(j)) {
            j->fail = ALM_LLM_UNAVAILABLE;
            j->citations = json_array();
            finish_stream(j);
            j->refs--;
        }
        return;
    }
    j->req = req;
    j->refs++; /* the request's, until it is freed */
    alm_req_set_data(req, j, job_unref);
    alm_req_suspend(req);
    if (!start_thread(j)) {
        j->refs--;
        alm_req_resume(req); /* answers "unavailable" when it runs again */
    }
}

void alm_api_answers(struct alm_req *req)
{
    struct job *j = alm_req_data(req);
    PGconn *conn = NULL;
    json_t *body = NULL;
    struct alm_user me;
    char *last_question = NULL;
    const char *q;
    int64_t conversation;
    bool stream;

    if (alm_req_resumed(req) && j) {
        if (!j->citations) /* the thread never ran */
            alm_reply_error(req, ALM_ERR_UNAVAILABLE, "cannot start the answer");
        else
            alm_reply_json(req, 200, answer_json(j));
        return;
    }
    conn = alm_api_db_or_reply(req);
    if (!conn || !alm_api_user_or_reply(req, conn, &me))
        goto out;
    body = alm_api_json_or_reply(req);
    if (!body || !(q = question_or_reply(req, body)) ||
        !options_or_reply(req, body, &conversation, &stream) || !rate_or_reply(req, &me))
        goto out;
    j = job_new(req, &me, q, conversation);
    if (!conversation_or_reply(req, conn, &me, j, &last_question) ||
        !retrieve_or_reply(req, conn, &me, body, j, last_question) ||
        (!j->conversation_id && !create_conversation_or_reply(req, conn, &me, j))) {
        job_unref(j);
        goto out;
    }
    alm_api_db_put(req, conn);
    conn = NULL;
    deliver(req, j, stream);
    job_unref(j);
out:
    free(last_question);
    json_decref(body);
    alm_api_db_put(req, conn);
}
