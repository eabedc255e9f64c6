/* SPDX-License-Identifier: Apache-2.0 */
/* Embedders: the hashing one's properties, and the OpenAI-compatible client against an
 * in-process fake endpoint (libmicrohttpd) that can rate-limit, fail, hang or answer
 * nonsense on demand. */
#include "unit.h"
#include "clock.h"
#include "embed.h"
#include "mem.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HASH_DIM 384
#define FAKE_DIM 16
#define KEY      "sk-unit-embed-key"

/* ---------------------------------------------------------------- helpers */

static double dot(const float *a, const float *b, size_t dim)
{
    double s = 0;

    for (size_t i = 0; i < dim; i++)
        s += (double)a[i] * (double)b[i];
    return s;
}

static struct alm_embedder *hashing(void)
{
    struct alm_config cfg = {0};

    cfg.embeddings_dim = HASH_DIM;
    return alm_embedder_new(&cfg);
}

/* Embeds one text with the hashing embedder into v (HASH_DIM floats). */
static void hash_one(const char *text, float *v)
{
    struct alm_embedder *e = hashing();
    struct alm_errbuf eb;

    assert_int_equal(alm_embed(e, &text, 1, v, 0, &eb), ALM_OK);
    alm_embedder_free(e);
}

static double cosine(const char *a, const char *b)
{
    float va[HASH_DIM], vb[HASH_DIM];

    hash_one(a, va);
    hash_one(b, vb);
    return dot(va, vb, HASH_DIM);
}

static void assert_unit(const float *v, size_t dim)
{
    assert_true(fabs(dot(v, v, dim) - 1.0) < 1e-5);
}

/* ---------------------------------------------------------------- hashing embedder */

static void hashing_describes_itself(void **state)
{
    struct alm_embedder *e = hashing();
    (void)state;
    assert_string_equal(alm_embedder_kind(e), "hashing");
    assert_string_equal(alm_embedder_describe(e), "hashing (lexical, 384 dimensions)");
    assert_int_equal(alm_embedder_dim(e), HASH_DIM);
    alm_embedder_free(e);
}

static void hashing_deterministic_unit(void **state)
{
    const char *texts[] = {"Almanac stores documents.", "Vectors, chunks and payloads", "x"};
    float a[3 * HASH_DIM], b[3 * HASH_DIM];
    struct alm_embedder *e1 = hashing(), *e2 = hashing();
    struct alm_errbuf eb;
    (void)state;
    assert_int_equal(alm_embed(e1, texts, 3, a, 0, &eb), ALM_OK);
    assert_int_equal(alm_embed(e2, texts, 3, b, 0, &eb), ALM_OK);
    assert_memory_equal(a, b, sizeof(a));
    for (size_t i = 0; i < 3; i++)
        assert_unit(a + i * HASH_DIM, HASH_DIM);
    assert_int_equal(alm_embed(e1, texts, 0, a, 0, &eb), ALM_OK);
    alm_embedder_free(e1);
    alm_embedder_free(e2);
}

/* Stored vectors depend on the exact hash: a change here means re-embedding everything. */
static void hashing_is_stable(void **state)
{
    float v[HASH_DIM];
    size_t nonzero = 0, top = 0;
    (void)state;
    hash_one("stable", v);
    for (size_t i = 0; i < HASH_DIM; i++) {
        nonzero += v[i] != 0.0f;
        if (fabsf(v[i]) > fabsf(v[top]))
            top = i;
    }
    /* "stable" and the 6 + 5 n-grams of "<stable>", each in its own bucket here. */
    assert_int_equal(nonzero, 12);
    assert_int_equal(top, 50); /* the word, weight 1 against 0.5 */
    assert_true(fabs((double)v[50] + 1.0 / sqrt(1.0 + 11 * 0.25)) < 1e-6);
    assert_true(fabs((double)v[3] - 0.5 / sqrt(1.0 + 11 * 0.25)) < 1e-6);
    assert_true(fabs((double)v[367] + 0.5 / sqrt(1.0 + 11 * 0.25)) < 1e-6);
}

static void hashing_similar_texts_are_closer(void **state)
{
    const char *a = "The quick brown fox jumps over the lazy dog";
    const char *b = "A quick brown fox jumped over a lazy dog";
    const char *c = "Quarterly revenue grew strongly in European markets";
    (void)state;
    assert_true(cosine(a, b) > 0.5);
    assert_true(cosine(a, b) > cosine(a, c) + 0.3);
    assert_true(cosine(b, c) < 0.2);
}

static void hashing_ignores_order_and_case(void **state)
{
    (void)state;
    assert_true(cosine("alpha beta gamma", "gamma Alpha BETA") > 0.99999);
    assert_true(cosine("Hello, World!", "hello world") > 0.99999);
    assert_true(cosine("ÜBER CAFÉ", "über café") > 0.99999);
}

static void hashing_relates_word_forms(void **state)
{
    (void)state;
    assert_true(cosine("running", "runs") > 0.2);
    assert_true(cosine("running", "runs") > cosine("running", "table") + 0.15);
    assert_true(cosine("documents", "document") > 0.5);
}

/* No features: one fixed unit vector, so that cosine stays defined. */
static void hashing_featureless_is_unit(void **state)
{
    const char *texts[] = {"", "  ... !!! -- ", "the of and a to", "\xE2\x80\x94 \xC2\xAB\xC2\xBB"};
    float v[4 * HASH_DIM];
    struct alm_embedder *e = hashing();
    struct alm_errbuf eb;
    (void)state;
    assert_int_equal(alm_embed(e, texts, 4, v, 0, &eb), ALM_OK);
    for (size_t i = 0; i < 4; i++) {
        assert_unit(v + i * HASH_DIM, HASH_DIM);
        assert_memory_equal(v, v + i * HASH_DIM, HASH_DIM * sizeof(float));
    }
    assert_true(v[0] == 1.0f);
    alm_embedder_free(e);
}

static void hashing_multibyte_text(void **state)
{
    float v[HASH_DIM];
    char long_word[3000];
    (void)state;
    hash_one("Übergrößenträger naïve café 東京都の天気 Москва", v);
    assert_unit(v, HASH_DIM);
    /* Typographic punctuation separates words like ASCII punctuation does. */
    assert_true(cosine("“fox”—dog", "fox dog") > 0.99999);
    assert_true(cosine("Москва город", "Москва") > 0.5);
    /* Truncated and invalid UTF-8 is hashed, not trusted. */
    hash_one("abc\xE2\x80", v);
    assert_unit(v, HASH_DIM);
    hash_one("\xFF\xFE\x80 z\xC3", v);
    assert_unit(v, HASH_DIM);
    /* A word far longer than the n-gram window, cut in the middle of a character. */
    memset(long_word, 'a', sizeof(long_word));
    for (size_t i = 1; i + 1 < sizeof(long_word); i += 2)
        memcpy(long_word + i, "\xC3\xA9", 2);
    long_word[sizeof(long_word) - 1] = '\0';
    hash_one(long_word, v);
    assert_unit(v, HASH_DIM);
}

static void missing_text_refused(void **state)
{
    const char *texts[] = {"a", NULL};
    float v[2 * HASH_DIM];
    struct alm_embedder *e = hashing();
    struct alm_errbuf eb;
    (void)state;
    assert_int_equal(alm_embed(e, texts, 2, v, 0, &eb), ALM_ERR_INVALID);
    assert_string_equal(eb.msg, "text 1 is missing");
    alm_embedder_free(e);
}

/* ---------------------------------------------------------------- fake endpoint */

enum mode {
    MODE_OK,
    MODE_RATELIMIT,    /* 429, with retry_after when set */
    MODE_ERROR,        /* 500 */
    MODE_UNAUTHORIZED, /* 401 */
    MODE_BADDIM,       /* one number too many in each embedding */
    MODE_SHORT,        /* one embedding too few */
    MODE_ZEROS,        /* all-zero embeddings */
    MODE_GARBAGE,      /* 200 with a body that is not JSON */
    MODE_HANG,         /* never answers (until the server stops) */
};

struct fake {
    struct MHD_Daemon *daemon;
    int port;
    atomic_bool stopping;
    pthread_mutex_t lock;
    /* Set by the test: mode applies to the next faults requests (-1: all), then MODE_OK. */
    enum mode mode;
    int faults;
    const char *retry_after;
    /* Recorded. */
    int requests;
    int max_inputs;
    bool bad_request;
    char auth[128];
    char path[128];
};

/* The reply vector of a text "... <k>": 3 at k and 4 at k + 1, i.e. 0.6 and 0.8 once
 * normalised; the test checks each text's vector landed at its place. */
static json_t *vector_for(const char *text, enum mode mode)
{
    const char *digits = strrchr(text, ' ');
    long k = strtol(digits ? digits + 1 : text, NULL, 10);
    size_t dim = FAKE_DIM + (mode == MODE_BADDIM);
    json_t *v = json_array();

    for (size_t j = 0; j < dim; j++) {
        double x = 0;
        if (mode != MODE_ZEROS && j == (size_t)k % FAKE_DIM)
            x = 3;
        if (mode != MODE_ZEROS && j == (size_t)(k + 1) % FAKE_DIM)
            x = 4;
        json_array_append_new(v, json_real(x));
    }
    return v;
}

/* {"data": [...]} in reverse order, so that only "index" tells where each one goes. */
static char *embeddings_reply(json_t *input, enum mode mode)
{
    json_t *data = json_array();
    size_t n = json_array_size(input) - (mode == MODE_SHORT);

    for (size_t i = n; i-- > 0;) {
        json_t *item = json_pack("{s:s, s:o, s:I}", "object", "embedding", "embedding",
                                 vector_for(json_string_value(json_array_get(input, i)), mode),
                                 "index", (json_int_t)i);
        json_array_append_new(data, item);
    }
    json_t *root = json_pack("{s:s, s:o, s:s}", "object", "list", "data", data, "model", "fake");
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *text,
                                 const char *retry_after)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)(uintptr_t)text,
                                                             MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (retry_after)
        MHD_add_response_header(r, "Retry-After", retry_after);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Counts and records the request, and picks the mode that answers it. */
static enum mode take_mode(struct fake *f, struct MHD_Connection *c, const char *url, json_t *input)
{
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    enum mode mode = MODE_OK;

    pthread_mutex_lock(&f->lock);
    f->requests++;
    snprintf(f->auth, sizeof(f->auth), "%s", auth ? auth : "");
    snprintf(f->path, sizeof(f->path), "%s", url);
    if (!input)
        f->bad_request = true;
    else if ((int)json_array_size(input) > f->max_inputs)
        f->max_inputs = (int)json_array_size(input);
    if (f->faults != 0) {
        mode = f->mode;
        if (f->faults > 0)
            f->faults--;
    }
    pthread_mutex_unlock(&f->lock);
    return mode;
}

/* The "input" array of a valid request body, or NULL. */
static json_t *valid_input(json_t *req)
{
    json_t *input = json_object_get(req, "input");
    size_t i;
    json_t *s;

    if (!json_is_string(json_object_get(req, "model")) || !json_is_array(input) ||
        json_array_size(input) == 0)
        return NULL;
    json_array_foreach(input, i, s)
    {
        if (!json_is_string(s))
            return NULL;
    }
    return input;
}

static enum MHD_Result answer(struct fake *f, struct MHD_Connection *c, const char *url,
                              const struct alm_buf *body)
{
    json_t *req = json_loadb(body->data ? body->data : "", body->len, 0, NULL);
    json_t *input = valid_input(req);
    enum mode mode = take_mode(f, c, url, input);
    enum MHD_Result ret;

    if (!input) {
        ret = send_text(c, 400, "{\"error\":{\"message\":\"bad request\"}}", NULL);
    } else if (mode == MODE_HANG) {
        for (int i = 0; i < 1000 && !atomic_load(&f->stopping); i++)
            alm_clock_sleep_ms(10);
        ret = MHD_NO;
    } else if (mode == MODE_RATELIMIT) {
        ret = send_text(c, 429, "{\"error\":{\"message\":\"slow down\"}}", f->retry_after);
    } else if (mode == MODE_ERROR) {
        ret = send_text(c, 500, "{\"error\":{\"message\":\"boom\"}}", NULL);
    } else if (mode == MODE_UNAUTHORIZED) {
        ret = send_text(c, 401, "{\"error\":{\"message\":\"Incorrect API key " KEY "\"}}", NULL);
    } else if (mode == MODE_GARBAGE) {
        ret = send_text(c, 200, "{\"data\": [ this is not json", NULL);
    } else {
        char *text = embeddings_reply(input, mode);
        ret = send_text(c, 200, text, NULL);
        free(text);
    }
    json_decref(req);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct alm_buf *body = *con_cls;
    (void)method;
    (void)version;
    if (!body) {
        body = alm_xcalloc(1, sizeof(*body));
        body->cap = 16 << 20;
        *con_cls = body;
        return MHD_YES;
    }
    if (*upload_size) {
        if (alm_buf_append(body, upload, *upload_size) != ALM_OK)
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    return answer(cls, c, url, body);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct alm_buf *body = *con_cls;
    (void)cls;
    (void)c;
    (void)toe;
    if (body) {
        alm_buf_release(body);
        free(body);
        *con_cls = NULL;
    }
}

static void fake_start(struct fake *f)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    pthread_mutex_init(&f->lock, NULL);
    atomic_init(&f->stopping, false);
    f->daemon = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
                                 NULL, NULL, on_request, f, MHD_OPTION_SOCK_ADDR, &addr,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, f, MHD_OPTION_END);
    assert_non_null(f->daemon);
    f->port = MHD_get_daemon_info(f->daemon, MHD_DAEMON_INFO_BIND_PORT)->port;
    assert_true(f->port > 0);
}

static void fake_stop(struct fake *f)
{
    atomic_store(&f->stopping, true);
    MHD_stop_daemon(f->daemon);
    pthread_mutex_destroy(&f->lock);
}

static void fake_set(struct fake *f, enum mode mode, int faults, const char *retry_after)
{
    pthread_mutex_lock(&f->lock);
    f->mode = mode;
    f->faults = faults;
    f->retry_after = retry_after;
    pthread_mutex_unlock(&f->lock);
}

/* Returns the request count, and makes every recorded field safe to read afterwards
 * (the server's threads wrote them under the lock). */
static int fake_requests(struct fake *f)
{
    pthread_mutex_lock(&f->lock);
    int n = f->requests;
    pthread_mutex_unlock(&f->lock);
    return n;
}

/* ---------------------------------------------------------------- client fixture */

struct client {
    struct fake fake;
    char url[128];
    char model[32];
    char key[32];
    struct alm_config cfg; /* only the fields embed.c reads */
    const char *texts[5];
    float out[5 * FAKE_DIM];
    struct alm_errbuf eb;
};

static const char *const text_values[5] = {"chunk 0", "chunk 1", "chunk 2", "chunk 3", "chunk 4"};

static int client_setup(void **state)
{
    struct client *t = alm_xcalloc(1, sizeof(*t));

    fake_start(&t->fake);
    snprintf(t->url, sizeof(t->url), "http://127.0.0.1:%d/v1", t->fake.port);
    snprintf(t->model, sizeof(t->model), "test-model");
    snprintf(t->key, sizeof(t->key), KEY);
    t->cfg.embeddings_url = t->url;
    t->cfg.embeddings_model = t->model;
    t->cfg.embeddings_api_key = t->key;
    t->cfg.embeddings_dim = FAKE_DIM;
    t->cfg.embeddings_batch = 2;
    t->cfg.embeddings_timeout_ms = 3000;
    t->cfg.embeddings_retries = 3;
    memcpy(t->texts, text_values, sizeof(t->texts));
    *state = t;
    return 0;
}

static int client_teardown(void **state)
{
    struct client *t = *state;

    fake_stop(&t->fake);
    free(t);
    return 0;
}

/* Embeds the first n fixture texts with a fresh client; returns the error. */
static enum alm_err run(struct client *t, size_t n, int64_t deadline_ms)
{
    struct alm_embedder *e = alm_embedder_new(&t->cfg);
    enum alm_err err = alm_embed(e, t->texts, n, t->out, deadline_ms, &t->eb);

    alm_embedder_free(e);
    return err;
}

/* Each text's vector sits at its own place: 0.6 at k, 0.8 at k + 1. */
static void assert_placed(const struct client *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const float *v = t->out + i * FAKE_DIM;
        assert_true(fabsf(v[i] - 0.6f) < 1e-6f);
        assert_true(fabsf(v[i + 1] - 0.8f) < 1e-6f);
        assert_unit(v, FAKE_DIM);
    }
}

static void client_batches_and_places(void **state)
{
    struct client *t = *state;
    struct alm_embedder *e = alm_embedder_new(&t->cfg);

    assert_string_equal(alm_embedder_kind(e), "openai");
    assert_string_equal(alm_embedder_describe(e),
                        "openai-compatible model test-model (16 dimensions)");
    assert_int_equal(alm_embedder_dim(e), FAKE_DIM);
    assert_int_equal(alm_embed(e, t->texts, 5, t->out, alm_clock_ms() + 10000, &t->eb), ALM_OK);
    alm_embedder_free(e);
    assert_placed(t, 5);
    assert_int_equal(fake_requests(&t->fake), 3); /* ceil(5 / 2) */
    assert_int_equal(t->fake.max_inputs, 2);
    assert_false(t->fake.bad_request);
    assert_string_equal(t->fake.auth, "Bearer " KEY);
    assert_string_equal(t->fake.path, "/v1/embeddings");
}

static void client_endpoint_rule(void **state)
{
    struct client *t = *state;
    static const char *const cases[][2] = {
        {"", "/v1/embeddings"},
        {"/v1/", "/v1/embeddings"},
        {"/proxy/", "/proxy/v1/embeddings"},
        {"/openai/v1", "/openai/v1/embeddings"},
    };

    t->cfg.embeddings_api_key = NULL;
    for (size_t i = 0; i < ALM_ARRAY_SIZE(cases); i++) {
        snprintf(t->url, sizeof(t->url), "http://127.0.0.1:%d%s", t->fake.port, cases[i][0]);
        assert_int_equal(run(t, 1, 0), ALM_OK);
        assert_int_equal(fake_requests(&t->fake), (int)i + 1);
        assert_string_equal(t->fake.path, cases[i][1]);
        assert_string_equal(t->fake.auth, ""); /* no key, no header */
    }
}

static void client_nothing_to_do(void **state)
{
    struct client *t = *state;

    assert_int_equal(run(t, 0, 0), ALM_OK);
    assert_int_equal(fake_requests(&t->fake), 0);
}

static void client_rate_limited_then_ok(void **state)
{
    struct client *t = *state;

    fake_set(&t->fake, MODE_RATELIMIT, 2, NULL);
    assert_int_equal(run(t, 2, 0), ALM_OK);
    assert_int_equal(fake_requests(&t->fake), 3);
    assert_placed(t, 2);
}

static void client_honours_retry_after(void **state)
{
    struct client *t = *state;
    int64_t t0 = alm_clock_ms();

    fake_set(&t->fake, MODE_RATELIMIT, 1, "1");
    assert_int_equal(run(t, 2, 0), ALM_OK);
    assert_true(alm_clock_ms() - t0 >= 950);
    assert_int_equal(fake_requests(&t->fake), 2);
}

/* A Retry-After beyond the deadline ends the call at once with the real reason. */
static void client_retry_after_past_deadline(void **state)
{
    struct client *t = *state;
    int64_t t0 = alm_clock_ms();

    fake_set(&t->fake, MODE_RATELIMIT, -1, "30");
    assert_int_equal(run(t, 2, t0 + 2000), ALM_ERR_RATE_LIMITED);
    assert_true(alm_clock_ms() - t0 < 1000);
    assert_int_equal(fake_requests(&t->fake), 1);
}

static void client_rate_limited_for_good(void **state)
{
    struct client *t = *state;

    t->cfg.embeddings_retries = 2;
    fake_set(&t->fake, MODE_RATELIMIT, -1, "0");
    assert_int_equal(run(t, 2, 0), ALM_ERR_RATE_LIMITED);
    assert_string_equal(t->eb.msg, "rate limited (HTTP 429) (3 attempts)");
    assert_int_equal(fake_requests(&t->fake), 3);
}

static void client_server_error_once(void **state)
{
    struct client *t = *state;

    fake_set(&t->fake, MODE_ERROR, 1, NULL);
    assert_int_equal(run(t, 2, 0), ALM_OK);
    assert_int_equal(fake_requests(&t->fake), 2);
    assert_placed(t, 2);
}

static void client_server_error_always(void **state)
{
    struct client *t = *state;

    t->cfg.embeddings_retries = 2;
    fake_set(&t->fake, MODE_ERROR, -1, NULL);
    assert_int_equal(run(t, 2, 0), ALM_ERR_UNAVAILABLE);
    assert_string_equal(t->eb.msg, "HTTP 500 (3 attempts)");
    assert_int_equal(fake_requests(&t->fake), 3);
}

/* Not retried, and the answer's text (which echoes the key) is not repeated. */
static void client_key_refused(void **state)
{
    struct client *t = *state;

    fake_set(&t->fake, MODE_UNAUTHORIZED, -1, NULL);
    assert_int_equal(run(t, 2, 0), ALM_ERR_UPSTREAM);
    assert_int_equal(fake_requests(&t->fake), 1);
    assert_null(strstr(t->eb.msg, KEY));
    assert_string_equal(t->eb.msg, "the api key was refused (HTTP 401)");
}

static void client_bad_replies(void **state)
{
    struct client *t = *state;
    static const struct {
        enum mode mode;
        const char *msg;
    } cases[] = {
        {MODE_BADDIM, "embedding dimension 17, expected 16"},
        {MODE_SHORT, "1 embeddings for 2 texts"},
        {MODE_ZEROS, "embedding 0 is all zeros"},
        {MODE_GARBAGE, "not an embeddings reply"},
    };

    for (size_t i = 0; i < ALM_ARRAY_SIZE(cases); i++) {
        int before = fake_requests(&t->fake);
        fake_set(&t->fake, cases[i].mode, -1, NULL);
        assert_int_equal(run(t, 2, 0), ALM_ERR_UPSTREAM);
        assert_string_equal(t->eb.msg, cases[i].msg);
        assert_int_equal(fake_requests(&t->fake), before + 1); /* not retried */
    }
}

/* The deadline cuts a hanging request short, retries or not. */
static void client_hang_deadline(void **state)
{
    struct client *t = *state;
    int64_t t0 = alm_clock_ms();

    fake_set(&t->fake, MODE_HANG, -1, NULL);
    assert_int_equal(run(t, 2, t0 + 400), ALM_ERR_TIMEOUT);
    int64_t took = alm_clock_ms() - t0;
    assert_true(took >= 350);
    assert_true(took < 1500);
}

static void client_hang_timeout_retried(void **state)
{
    struct client *t = *state;
    int64_t t0 = alm_clock_ms();

    t->cfg.embeddings_timeout_ms = 200;
    t->cfg.embeddings_retries = 1;
    fake_set(&t->fake, MODE_HANG, -1, NULL);
    assert_int_equal(run(t, 2, 0), ALM_ERR_TIMEOUT);
    assert_string_equal(t->eb.msg, "timeout after 200 ms (2 attempts)");
    assert_int_equal(fake_requests(&t->fake), 2);
    assert_true(alm_clock_ms() - t0 < 2000);
}

/* A port that was free a moment ago. */
static int closed_port(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    close(fd);
    return ntohs(addr.sin_port);
}

static void client_connection_refused(void **state)
{
    struct client *t = *state;

    t->cfg.embeddings_retries = 1;
    snprintf(t->url, sizeof(t->url), "http://127.0.0.1:%d/v1", closed_port());
    assert_int_equal(run(t, 2, 0), ALM_ERR_UNAVAILABLE);
    assert_string_equal(t->eb.msg, "connection refused (2 attempts)");
}

/* The probe: one request, never retried; down only when refused, 429, 5xx or no answer. */
static void client_probe(void **state)
{
    struct client *t = *state;
    static const struct {
        enum mode mode;
        enum alm_err err;
        const char *msg;
    } cases[] = {
        {MODE_OK, ALM_OK, NULL},
        {MODE_UNAUTHORIZED, ALM_OK, NULL}, /* it answers: the key is the job's failure */
        {MODE_BADDIM, ALM_OK, NULL},
        {MODE_ERROR, ALM_ERR_UNAVAILABLE, "HTTP 500"},
        {MODE_RATELIMIT, ALM_ERR_RATE_LIMITED, "rate limited (HTTP 429)"},
        {MODE_HANG, ALM_ERR_TIMEOUT, "timeout after 300 ms"},
    };
    struct alm_embedder *e = alm_embedder_new(&t->cfg);

    for (size_t i = 0; i < ALM_ARRAY_SIZE(cases); i++) {
        int before = fake_requests(&t->fake);
        t->eb.msg[0] = '\0';
        fake_set(&t->fake, cases[i].mode, -1, "0");
        assert_int_equal(alm_embedder_probe(e, 300, &t->eb), cases[i].err);
        if (cases[i].msg)
            assert_string_equal(t->eb.msg, cases[i].msg);
        assert_int_equal(fake_requests(&t->fake), before + 1);
    }
    alm_embedder_free(e);
    snprintf(t->url, sizeof(t->url), "http://127.0.0.1:%d/v1", closed_port());
    e = alm_embedder_new(&t->cfg);
    assert_int_equal(alm_embedder_probe(e, 300, &t->eb), ALM_ERR_UNAVAILABLE);
    assert_string_equal(t->eb.msg, "connection refused");
    alm_embedder_free(e);
    e = hashing();
    assert_int_equal(alm_embedder_probe(e, 300, &t->eb), ALM_OK);
    alm_embedder_free(e);
}

static void client_refuses_invalid_utf8(void **state)
{
    struct client *t = *state;

    t->texts[1] = "caf\xC3";
    assert_int_equal(run(t, 3, 0), ALM_ERR_INVALID);
    assert_string_equal(t->eb.msg, "text 1 is not valid UTF-8");
    assert_int_equal(fake_requests(&t->fake), 0);
}

static int init_libraries(void **state)
{
    (void)state;
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    return 0;
}

static int cleanup_libraries(void **state)
{
    (void)state;
    curl_global_cleanup();
    return 0;
}

#define CLIENT_TEST(f) cmocka_unit_test_setup_teardown(f, client_setup, client_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hashing_describes_itself),
        cmocka_unit_test(hashing_deterministic_unit),
        cmocka_unit_test(hashing_is_stable),
        cmocka_unit_test(hashing_similar_texts_are_closer),
        cmocka_unit_test(hashing_ignores_order_and_case),
        cmocka_unit_test(hashing_relates_word_forms),
        cmocka_unit_test(hashing_featureless_is_unit),
        cmocka_unit_test(hashing_multibyte_text),
        cmocka_unit_test(missing_text_refused),
        CLIENT_TEST(client_batches_and_places),
        CLIENT_TEST(client_endpoint_rule),
        CLIENT_TEST(client_nothing_to_do),
        CLIENT_TEST(client_rate_limited_then_ok),
        CLIENT_TEST(client_honours_retry_after),
        CLIENT_TEST(client_retry_after_past_deadline),
        CLIENT_TEST(client_rate_limited_for_good),
        CLIENT_TEST(client_server_error_once),
        CLIENT_TEST(client_server_error_always),
        CLIENT_TEST(client_key_refused),
        CLIENT_TEST(client_bad_replies),
        CLIENT_TEST(client_hang_deadline),
        CLIENT_TEST(client_hang_timeout_retried),
        CLIENT_TEST(client_connection_refused),
        CLIENT_TEST(client_probe),
        CLIENT_TEST(client_refuses_invalid_utf8),
    };
    return cmocka_run_group_tests(tests, init_libraries, cleanup_libraries);
}
