/* SPDX-License-Identifier: Apache-2.0 */
/* embed.c: the built-in hashing embedder and the OpenAI-compatible embeddings client. */
#include "compat.h"
#include "embed.h"
#include "clock.h"
#include "http_client.h"
#include "log.h"
#include "mem.h"

#include <float.h>
#include <jansson.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* A reply may hold batch * dim numbers of up to ~25 characters each; the cap allows that
 * with room to spare, and at least 64 MiB, so that only a runaway answer hits it. */
#define REPLY_MIN_CAP     ((size_t)64 << 20)
#define REPLY_BYTES_PER_X 32
#define BACKOFF_BASE_MS   200
#define BACKOFF_CAP_MS    5000
/* Retry-After beyond this is a misconfigured proxy rather than advice worth following. */
#define RETRY_AFTER_MAX_MS 60000
/* Bytes of a word that make features; longer runs are hashes, base64 or noise. */
#define MAX_WORD 64

struct alm_embedder {
    int dim;
    char *description;
    /* The OpenAI-compatible client; http is NULL for the hashing embedder. */
    struct alm_http_client *http;
    char *endpoint;
    char *model;
    size_t batch;
    int timeout_ms;
    int retries;
    size_t reply_cap;
};

/* ---------------------------------------------------------------- vectors */

/* Scales v to unit length; false when it is all zeros or not finite. */
static bool normalise(float *v, size_t dim)
{
    double sum = 0;

    for (size_t i = 0; i < dim; i++)
        sum += (double)v[i] * (double)v[i];
    if (!(sum > 0) || !isfinite(sum))
        return false;
    double inv = 1.0 / sqrt(sum);
    for (size_t i = 0; i < dim; i++)
        v[i] = (float)((double)v[i] * inv);
    return true;
}

/* ---------------------------------------------------------------- hashing embedder */

/* Kept short on purpose: only words that carry no topic in any text. */
static const char *const stop_words[] = {
    "a",     "an",    "and",   "are",  "as",   "at",    "be",  "been", "but",  "by",   "can",
    "could", "did",   "do",    "does", "for",  "from",  "had", "has",  "have", "he",   "her",
    "his",   "i",     "if",    "in",   "into", "is",    "it",  "its",  "me",   "my",   "no",
    "not",   "of",    "on",    "or",   "our",  "she",   "so",  "than", "that", "the",  "their",
    "them",  "then",  "there", "they", "this", "to",    "us",  "was",  "we",   "were", "what",
    "when",  "which", "who",   "will", "with", "would", "you", "your",
};

/* Called for every word of every chunk: cheap rejections first. */
static bool is_stop_word(const unsigned char *w, size_t n)
{
    if (n == 0 || n > 5) /* the longest stop word has five letters */
        return false;
    for (size_t i = 0; i < ALM_ARRAY_SIZE(stop_words); i++) {
        const char *sw = stop_words[i];
        if ((unsigned char)sw[0] == w[0] && strncmp(sw, (const char *)w, n) == 0 && sw[n] == '\0')
            return true;
    }
    return false;
}

/* murmur3's finaliser: FNV-1a alone mixes the low bits, which pick the bucket, poorly. */
static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* FNV-1a of a tag byte (words and n-grams are separate features) and the bytes. Fixed
 * constants and plain integer arithmetic: stored vectors must come out the same on every
 * run, machine and version. */
static uint64_t feature_hash(char tag, const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    h = (h ^ (unsigned char)tag) * 0x100000001b3ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return mix(h);
}

/* Signed feature hashing: the sign bit makes collisions cancel out on average instead of
 * piling up. */
static void add_feature(float *v, size_t dim, char tag, const unsigned char *p, size_t n,
                        float weight)
{
    uint64_t h = feature_hash(tag, p, n);

    v[h % dim] += (h >> 63) ? -weight : weight;
}

/* The word itself (weight 1 an occurrence) and the character 3- and 4-grams of "<word>"
 * (weight 0.5), so that "running" and "runs" share features. n-grams count characters,
 * not bytes: a UTF-8 sequence is never split. */
static void add_word(float *v, size_t dim, const unsigned char *w, size_t n)
{
    unsigned char padded[MAX_WORD + 2];
    size_t starts[MAX_WORD + 3]; /* byte offset of each character, then the end */
    size_t chars = 0;

    if (is_stop_word(w, n))
        return;
    add_feature(v, dim, 'w', w, n, 1.0f);
    padded[0] = '<';
    memcpy(padded + 1, w, n);
    padded[n + 1] = '>';
    for (size_t i = 0; i < n + 2; i++) {
        if ((padded[i] & 0xC0) != 0x80)
            starts[chars++] = i;
    }
    starts[chars] = n + 2;
    for (size_t len = 3; len <= 4; len++) {
        for (size_t i = 0; i + len <= chars; i++)
            add_feature(v, dim, 'g', padded + starts[i], starts[i + len] - starts[i], 0.5f);
    }
}

/* Bytes of the separator at p, or 0 when a word character starts there. Words are ASCII
 * letters and digits and any non-ASCII character, so that UTF-8 words stay whole, except
 * the non-ASCII punctuation common in prose: U+00A0-U+00BF (no-break space, guillemets),
 * x and division signs, U+2000-U+206F (dashes, curly quotes), U+3000-U+303F (CJK
 * punctuation) and the byte-order mark. The string's NUL stops every look-ahead. */
static size_t separator_len(const unsigned char *p)
{
    unsigned char c = p[0];

    if (c < 0x80)
        return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9') ? 0 : 1;
    if (c == 0xC2 && p[1] >= 0xA0 && p[1] <= 0xBF)
        return 2;
    if (c == 0xC3 && (p[1] == 0x97 || p[1] == 0xB7))
        return 2;
    if (((c == 0xE2 && (p[1] == 0x80 || p[1] == 0x81)) || (c == 0xE3 && p[1] == 0x80)) &&
        (p[2] & 0xC0) == 0x80)
        return 3;
    if (c == 0xEF && p[1] == 0xBB && p[2] == 0xBF)
        return 3;
    return 0;
}

/* Lower-cases ASCII and the Latin-1 capitals (U+00C0-U+00DE but x) in place; other
 * scripts keep their case. */
static void lower(unsigned char *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (w[i] >= 'A' && w[i] <= 'Z')
            w[i] = (unsigned char)(w[i] + 32);
        else if (w[i] == 0xC3 && i + 1 < n && w[i + 1] >= 0x80 && w[i + 1] <= 0x9E &&
                 w[i + 1] != 0x97)
            w[i + 1] = (unsigned char)(w[i + 1] + 32);
    }
}

/* Feature-hashes text into v. A text without features (empty, punctuation or stop words
 * only) gets the unit vector on bucket 0 rather than zeros, so that cosine similarity and
 * Qdrant's normalisation stay defined; such texts all look alike, and like nothing else
 * in particular. */
static void hash_text(const char *text, size_t dim, float *v)
{
    const unsigned char *p = (const unsigned char *)text;

    memset(v, 0, dim * sizeof(*v));
    while (*p) {
        size_t sep = separator_len(p);
        if (sep) {
            p += sep;
            continue;
        }
        const unsigned char *start = p;
        while (*p && !separator_len(p))
            p++;
        size_t n = (size_t)(p - start);
        if (n > MAX_WORD) {
            n = MAX_WORD;
            while (n > 0 && (start[n] & 0xC0) == 0x80)
                n--; /* cut before the character that straddles the limit */
        }
        unsigned char word[MAX_WORD];
        memcpy(word, start, n);
        lower(word, n);
        add_word(v, dim, word, n);
    }
    if (!normalise(v, dim))
        v[0] = 1.0f;
}

/* ---------------------------------------------------------------- client setup */

/* {url}/embeddings when the URL already ends with /v1 (as OpenAI and LiteLLM base URLs are
 * usually written), else {url}/v1/embeddings (Ollama, TEI, a bare host); trailing slashes
 * do not count, and a host named "v1" is not a path. */
static char *endpoint_of(const char *url)
{
    size_t n = strlen(url);

    while (n > 0 && url[n - 1] == '/')
        n--;
    bool has_v1 = n >= 4 && memcmp(url + n - 3, "/v1", 3) == 0 && url[n - 4] != '/';
    return alm_xasprintf("%.*s%s", (int)n, url, has_v1 ? "/embeddings" : "/v1/embeddings");
}

static void client_init(struct alm_embedder *e, const struct alm_config *cfg)
{
    e->endpoint = endpoint_of(cfg->embeddings_url);
    e->model = alm_xstrdup(cfg->embeddings_model);
    e->batch = (size_t)cfg->embeddings_batch;
    e->timeout_ms = (int)cfg->embeddings_timeout_ms;
    e->retries = (int)cfg->embeddings_retries;
    e->reply_cap = e->batch * (size_t)e->dim * REPLY_BYTES_PER_X;
    if (e->reply_cap < REPLY_MIN_CAP)
        e->reply_cap = REPLY_MIN_CAP;
    e->http = alm_http_client_open(alm_http_client_headers(
        "application/json", "application/json", "Authorization: Bearer ", cfg->embeddings_api_key));
}

/* cfg's values are trusted: alm_config_load() bounded them. */
struct alm_embedder *alm_embedder_new(const struct alm_config *cfg)
{
    struct alm_embedder *e = alm_xcalloc(1, sizeof(*e));

    e->dim = (int)cfg->embeddings_dim;
    if (cfg->embeddings_url) {
        client_init(e, cfg);
        e->description =
            alm_xasprintf("openai-compatible model %s (%d dimensions)", e->model, e->dim);
    } else {
        e->description = alm_xasprintf("hashing (lexical, %d dimensions)", e->dim);
    }
    return e;
}

void alm_embedder_free(struct alm_embedder *e)
{
    if (!e)
        return;
    alm_http_client_close(e->http);
    free(e->endpoint);
    free(e->model);
    free(e->description);
    free(e);
}

const char *alm_embedder_kind(const struct alm_embedder *e)
{
    return e->http ? "openai" : "hashing";
}

const char *alm_embedder_describe(const struct alm_embedder *e)
{
    return e->description;
}

int alm_embedder_dim(const struct alm_embedder *e)
{
    return e->dim;
}

/* ---------------------------------------------------------------- one request */

/* What an attempt tells the retry loop besides its error. */
struct attempt {
    bool retry;             /* whether another attempt may succeed */
    int64_t retry_after_ms; /* the server's Retry-After; -1 when it named none */
};

/* POSTs body once with a timeout; on ALM_OK, reply holds a 2xx answer's body. */
static enum alm_err post(struct alm_embedder *e, const char *body, int timeout_ms,
                         struct alm_buf *reply, struct attempt *a, struct alm_errbuf *eb)
{
    struct alm_http_sink s = {ALM_BUF_INIT(e->reply_cap), false};
    struct alm_http_client_request req = {
        .url = e->endpoint, .body = body, .timeout_ms = timeout_ms, .compressed = true, .sink = &s};
    struct alm_http_client_result res;

    /* The error never quotes the URL or the answer's text (which may echo the key). */
    alm_http_client_perform(e->http, &req, &res);
    a->retry_after_ms =
        res.retry_after_ms > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS : res.retry_after_ms;
    enum alm_err err = alm_http_client_error(&res, &a->retry, eb);
    if (err == ALM_OK)
        *reply = s.buf;
    else
        alm_buf_release(&s.buf);
    return err;
}

/* 200 ms, 400, 800... up to 5 s, plus up to half as much again at random so that workers
 * that failed together do not come back together. */
static int64_t backoff_ms(int attempt)
{
    int64_t d = (int64_t)BACKOFF_BASE_MS << (attempt < 5 ? attempt : 5);

    if (d > BACKOFF_CAP_MS)
        d = BACKOFF_CAP_MS;
    return d + randombytes_uniform((uint32_t)(d / 2 + 1));
}

/* Milliseconds until deadline_ms; INT64_MAX when there is none. */
static int64_t time_left(int64_t deadline_ms)
{
    return deadline_ms ? deadline_ms - alm_clock_ms() : INT64_MAX;
}

/* Adds the number of attempts to the detail of a final error. */
static enum alm_err gave_up(enum alm_err err, int attempts, struct alm_errbuf *eb)
{
    if (err != ALM_OK && attempts > 1) {
        size_t n = strlen(eb->msg);
        snprintf(eb->msg + n, sizeof(eb->msg) - n, " (%d attempts)", attempts);
    }
    return err;
}

/* POSTs body until it succeeds, fails for good, runs out of retries, or the next wait
 * would pass the deadline (then the last error stands: it says more than a timeout). */
static enum alm_err post_with_retries(struct alm_embedder *e, const char *body, int64_t deadline_ms,
                                      struct alm_buf *reply, struct alm_errbuf *eb)
{
    for (int attempt = 0;; attempt++) {
        int64_t left = time_left(deadline_ms);
        if (left <= 0)
            return gave_up(alm_fail(eb, ALM_ERR_TIMEOUT, "deadline passed"), attempt, eb);
        int timeout_ms = left < e->timeout_ms ? (int)left : e->timeout_ms;
        struct attempt a;
        enum alm_err err = post(e, body, timeout_ms, reply, &a, eb);
        if (err == ALM_OK || !a.retry || attempt >= e->retries)
            return gave_up(err, attempt + 1, eb);
        int64_t wait = a.retry_after_ms >= 0 ? a.retry_after_ms : backoff_ms(attempt);
        if (wait >= time_left(deadline_ms))
            return gave_up(err, attempt + 1, eb);
        alm_warn("embed.retry", "embeddings request failed, retrying", "{s:s, s:s, s:i, s:I}",
                 "error", alm_err_name(err), "detail", eb->msg, "attempt", attempt + 1, "wait_ms",
                 (json_int_t)wait);
        alm_clock_sleep_ms(wait);
    }
}

/* ---------------------------------------------------------------- request and reply */

static json_t *must(json_t *j)
{
    if (!j)
        abort(); /* jansson fails to build a value only when out of memory */
    return j;
}

/* {"model": ..., "input": [...]} for texts[0..m); first is the index of texts[0] in the
 * caller's array, for the error. */
static enum alm_err request_body(const struct alm_embedder *e, const char *const *texts, size_t m,
                                 size_t first, char **out, struct alm_errbuf *eb)
{
    json_t *input = must(json_array());

    for (size_t i = 0; i < m; i++) {
        json_t *s = json_string(texts[i]);
        if (!s) {
            json_decref(input);
            return alm_fail(eb, ALM_ERR_INVALID, "text %zu is not valid UTF-8", first + i);
        }
        json_array_append_new(input, s);
    }
    json_t *req = must(json_pack("{s:s, s:o}", "model", e->model, "input", input));
    *out = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!*out)
        abort(); /* jansson fails only when out of memory */
    return ALM_OK;
}

/* Stores item pos of "data" at its "index" (its position when it has none) in out. */
static enum alm_err place(const struct alm_embedder *e, json_t *item, size_t pos, size_t m,
                          bool *seen, float *out, struct alm_errbuf *eb)
{
    json_t *index = json_object_get(item, "index");
    json_t *vec = json_object_get(item, "embedding");
    size_t dim = (size_t)e->dim;
    size_t at = pos;

    if (index) {
        if (!json_is_integer(index) || json_integer_value(index) < 0 ||
            (uint64_t)json_integer_value(index) >= m)
            return alm_fail(eb, ALM_ERR_UPSTREAM, "embedding %zu has a bad index", pos);
        at = (size_t)json_integer_value(index);
    }
    if (seen[at])
        return alm_fail(eb, ALM_ERR_UPSTREAM, "index %zu appears twice", at);
    seen[at] = true;
    if (!json_is_array(vec))
        return alm_fail(eb, ALM_ERR_UPSTREAM, "embedding %zu is not an array", pos);
    if (json_array_size(vec) != dim)
        return alm_fail(eb, ALM_ERR_UPSTREAM, "embedding dimension %zu, expected %zu",
                        json_array_size(vec), dim);
    float *v = out + at * dim;
    for (size_t j = 0; j < dim; j++) {
        json_t *x = json_array_get(vec, j);
        double d = json_number_value(x);
        if (!json_is_number(x) || !(fabs(d) <= (double)FLT_MAX))
            return alm_fail(eb, ALM_ERR_UPSTREAM, "embedding %zu holds a bad number", pos);
        v[j] = (float)d;
    }
    if (!normalise(v, dim))
        return alm_fail(eb, ALM_ERR_UPSTREAM, "embedding %zu is all zeros", pos);
    return ALM_OK;
}

/* Fills out with the m embeddings of an OpenAI-style {"data": [{"embedding", "index"}]}. */
static enum alm_err parse_reply(const struct alm_embedder *e, const struct alm_buf *reply, size_t m,
                                float *out, struct alm_errbuf *eb)
{
    json_t *root = json_loadb(reply->data ? reply->data : "", reply->len, 0, NULL);
    json_t *data = json_object_get(root, "data");
    enum alm_err err = ALM_OK;

    if (!json_is_array(data)) {
        err = alm_fail(eb, ALM_ERR_UPSTREAM, "not an embeddings reply");
    } else if (json_array_size(data) != m) {
        err = alm_fail(eb, ALM_ERR_UPSTREAM, "%zu embeddings for %zu texts", json_array_size(data),
                       m);
    } else {
        bool *seen = alm_xcalloc(m, sizeof(*seen));
        for (size_t i = 0; i < m && err == ALM_OK; i++)
            err = place(e, json_array_get(data, i), i, m, seen, out, eb);
        free(seen);
    }
    json_decref(root);
    return err;
}

/* One batch: texts[first..first+m) into out (m * dim floats). */
static enum alm_err embed_batch(struct alm_embedder *e, const char *const *texts, size_t first,
                                size_t m, float *out, int64_t deadline_ms, struct alm_errbuf *eb)
{
    char *body = NULL;
    struct alm_buf reply = ALM_BUF_INIT(0);
    enum alm_err err = request_body(e, texts + first, m, first, &body, eb);

    if (err == ALM_OK)
        err = post_with_retries(e, body, deadline_ms, &reply, eb);
    if (err == ALM_OK)
        err = parse_reply(e, &reply, m, out, eb);
    alm_buf_release(&reply);
    free(body);
    return err;
}

enum alm_err alm_embed(struct alm_embedder *e, const char *const *texts, size_t n, float *out,
                       int64_t deadline_ms, struct alm_errbuf *eb)
{
    size_t dim = (size_t)e->dim;
    enum alm_err err = ALM_OK;

    for (size_t i = 0; i < n; i++) {
        if (!texts[i])
            return alm_fail(eb, ALM_ERR_INVALID, "text %zu is missing", i);
    }
    if (!e->http) {
        for (size_t i = 0; i < n; i++)
            hash_text(texts[i], dim, out + i * dim);
        return ALM_OK;
    }
    for (size_t i = 0; i < n && err == ALM_OK; i += e->batch) {
        size_t m = n - i < e->batch ? n - i : e->batch;
        err = embed_batch(e, texts, i, m, out + i * dim, deadline_ms, eb);
    }
    return err;
}

enum alm_err alm_embedder_probe(struct alm_embedder *e, int timeout_ms, struct alm_errbuf *eb)
{
    static const char *const word[] = {"almanac"};
    char *body = NULL;
    struct alm_buf reply = ALM_BUF_INIT(0);
    struct attempt a;

    if (!e->http)
        return ALM_OK;
    enum alm_err err = request_body(e, word, 1, 0, &body, eb);
    if (err == ALM_OK)
        err = post(e, body, timeout_ms, &reply, &a, eb);
    alm_buf_release(&reply);
    free(body);
    /* An answer that is no embedding (a refused key, a bad reply) still says it is up. */
    return alm_err_outage(err) || err == ALM_ERR_TIMEOUT ? err : ALM_OK;
}
