/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "config.h"
#include "log.h"
#include "mem.h"
#include "url.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <errno.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h> /* environ */

#define F(field)     offsetof(struct alm_config, field)
#define BOOL_CHOICES "true|false" /* what an ALM_SET_BOOL accepts, as enums print theirs */
#define SECRET       ALM_SET_SECRET

static const struct alm_setting settings[] = {
    {"ALMANAC_ENV", ALM_SET_ENUM, "development", 0, 0, 0, "development|production", F(env),
     "deployment environment; production refuses insecure or missing secrets"},
    {"ALMANAC_LISTEN", ALM_SET_HOSTPORT, "0.0.0.0:8000", 0, 0, 0, NULL, F(listen),
     "address and port the api listens on"},
    {"ALMANAC_DATABASE_URL", ALM_SET_PGURL, NULL, SECRET | ALM_SET_REQUIRED, 0, 0, NULL,
     F(database_url), "PostgreSQL connection URI (postgresql://user[:password]@host:port/db)"},
    {"ALMANAC_DATABASE_PASSWORD", ALM_SET_STRING, NULL, SECRET, 0, 0, NULL, F(database_password),
     "PostgreSQL password; overrides one in ALMANAC_DATABASE_URL"},
    {"ALMANAC_REDIS_URL", ALM_SET_URL, NULL, SECRET | ALM_SET_REQUIRED, 0, 0, "redis|rediss",
     F(redis_url),
     "Redis URL (redis://[user[:password]@]host:port[/db]; rediss:// for TLS, verified against "
     "the system's CAs or ?cacert=FILE)"},
    {"ALMANAC_REDIS_PASSWORD", ALM_SET_STRING, NULL, SECRET, 0, 0, NULL, F(redis_password),
     "Redis password; overrides one in ALMANAC_REDIS_URL"},
    {"ALMANAC_QDRANT_URL", ALM_SET_URL, NULL, ALM_SET_REQUIRED_PROD, 0, 0, "http|https",
     F(qdrant_url), "Qdrant REST URL; unset in development means keyword search only"},
    {"ALMANAC_QDRANT_API_KEY", ALM_SET_STRING, NULL, SECRET, 0, 0, NULL, F(qdrant_api_key),
     "Qdrant API key, if the Qdrant server requires one"},
    {"ALMANAC_JWT_SECRET", ALM_SET_STRING, NULL, SECRET | ALM_SET_REQUIRED_PROD, 0, 0, NULL,
     F(jwt_secret),
     "HS256 signing key of access tokens, at least 32 bytes; random per process in development "
     "when unset"},
    {"ALMANAC_EMBEDDINGS_URL", ALM_SET_URL, NULL, 0, 0, 0, "http|https", F(embeddings_url),
     "OpenAI-compatible embeddings base URL; unset means the built-in hashing embedder"},
    {"ALMANAC_EMBEDDINGS_MODEL", ALM_SET_STRING, "text-embedding-3-small", 0, 0, 0, NULL,
     F(embeddings_model), "model name sent to the embeddings endpoint"},
    {"ALMANAC_EMBEDDINGS_API_KEY", ALM_SET_STRING, NULL, SECRET, 0, 0, NULL, F(embeddings_api_key),
     "API key of the embeddings endpoint, if it requires one"},
    {"ALMANAC_LOG_LEVEL", ALM_SET_ENUM, "info", 0, 0, 0, "debug|info|warn|error", F(log_level),
     "lowest level logged"},
    {"ALMANAC_READY_REQUIRED", ALM_SET_LIST, "postgres,redis,qdrant", 0, 0, 0,
     "postgres|redis|qdrant|none", F(ready_required),
     "dependencies that must be up for /ready to pass, or none; others only warn"},
    {"ALMANAC_READY_TIMEOUT_MS", ALM_SET_INT, "2000", 0, 100, 5000, NULL, F(ready_timeout_ms),
     "deadline of each dependency check of /ready (connect and reply)"},
    {"ALMANAC_READY_CACHE_MS", ALM_SET_INT, "1000", 0, 0, 10000, NULL, F(ready_cache_ms),
     "how long a /ready result is reused before the dependencies are checked again"},
    {"ALMANAC_HTTP_THREADS", ALM_SET_INT, "0", 0, 0, 256, NULL, F(http_threads),
     "HTTP worker threads; 0 means two per CPU"},
    {"ALMANAC_HTTP_MAX_CONNECTIONS", ALM_SET_INT, "1024", 0, 16, 65536, NULL,
     F(http_max_connections), "concurrent HTTP connections accepted"},
    {"ALMANAC_HTTP_TIMEOUT_S", ALM_SET_INT, "30", 0, 1, 3600, NULL, F(http_timeout_s),
     "seconds an idle or stalled HTTP connection is kept"},
    {"ALMANAC_HTTP_MAX_CONNECTIONS_PER_ADDRESS", ALM_SET_INT, "256", 0, 0, 65536, NULL,
     F(http_max_per_address),
     "concurrent HTTP connections from one client address (0: no limit); behind a proxy every "
     "connection comes from the proxy's address"},
    {"ALMANAC_HTTP_HEAD_TIMEOUT_MS", ALM_SET_INT, "10000", 0, 100, 600000, NULL,
     F(http_head_timeout_ms),
     "a request head must be complete this long after its connection opened or its previous "
     "answer went out, however slowly the bytes come"},
    {"ALMANAC_HTTP_MIN_BODY_RATE", ALM_SET_INT, "4096", 0, 0, 1073741824, NULL,
     F(http_min_body_rate),
     "bytes per second a request body must average once it has been arriving for "
     "ALMANAC_HTTP_HEAD_TIMEOUT_MS (0: no minimum)"},
    {"ALMANAC_HTTP_BODY_BUDGET_BYTES", ALM_SET_INT, "134217728", 0, 1048576, 17179869184, NULL,
     F(http_body_budget),
     "request body bytes all requests together may hold in memory; past it uploads get 503 "
     "with Retry-After"},
    {"ALMANAC_HTTP_DRAIN_BYTES", ALM_SET_INT, "33554432", 0, 0, 1073741824, NULL,
     F(http_drain_bytes),
     "after an answer sent before the body was read (401, 413, ...), body bytes read and "
     "dropped so that the client sees the answer (0: close at once)"},
    {"ALMANAC_HTTP_DRAIN_MS", ALM_SET_INT, "5000", 0, 0, 60000, NULL, F(http_drain_ms),
     "how long such a body is read and dropped at most"},
    {"ALMANAC_MAX_UPLOAD_BYTES", ALM_SET_INT, "20971520", 0, 1024, 1073741824, NULL,
     F(max_upload_bytes), "largest document accepted by upload, in bytes"},
    {"ALMANAC_MAX_UPLOAD_BYTES_TEXT", ALM_SET_INT, "20971520", 0, 1024, 1073741824, NULL,
     F(max_upload_text),
     "largest plain text, Markdown or HTML upload (also capped by "
     "ALMANAC_MAX_UPLOAD_BYTES, the request body limit)"},
    {"ALMANAC_MAX_UPLOAD_BYTES_PDF", ALM_SET_INT, "20971520", 0, 1024, 1073741824, NULL,
     F(max_upload_pdf), "largest PDF upload (also capped by ALMANAC_MAX_UPLOAD_BYTES)"},
    {"ALMANAC_MAX_UPLOAD_BYTES_OFFICE", ALM_SET_INT, "20971520", 0, 1024, 1073741824, NULL,
     F(max_upload_office),
     "largest DOCX, PPTX, XLSX, ODT, ODS, ODP or EPUB upload (also capped by "
     "ALMANAC_MAX_UPLOAD_BYTES)"},
    {"ALMANAC_MAX_UPLOAD_BYTES_IMAGE", ALM_SET_INT, "10485760", 0, 1024, 1073741824, NULL,
     F(max_upload_image),
     "largest PNG, JPEG or TIFF upload (also capped by "
     "ALMANAC_MAX_UPLOAD_BYTES)"},
    {"ALMANAC_OCR", ALM_SET_BOOL, "false", 0, 0, 0, NULL, F(ocr),
     "read images and PDFs without a text layer with Tesseract (slow: seconds a page)"},
    {"ALMANAC_OCR_LANGUAGES", ALM_SET_STRING, "eng", 0, 0, 0, NULL, F(ocr_languages),
     "Tesseract languages, '+'-separated (eng+deu); each needs its tesseract-ocr-LANG data"},
    {"ALMANAC_EXTRACT_TOOLS_DIR", ALM_SET_STRING, "/usr/bin", 0, 0, 0, NULL, F(extract_tools_dir),
     "where pdfinfo, pdftotext, pdftoppm (poppler-utils) and tesseract are installed"},
    {"ALMANAC_EXTRACT_MEMORY_MB", ALM_SET_INT, "1024", 0, 64, 65536, NULL, F(extract_memory_mb),
     "address space of one extractor process (RLIMIT_AS), in MiB"},
    {"ALMANAC_EXTRACT_CPU_S", ALM_SET_INT, "120", 0, 1, 86400, NULL, F(extract_cpu_s),
     "CPU seconds of one extractor process (RLIMIT_CPU)"},
    {"ALMANAC_EXTRACT_TIMEOUT_MS", ALM_SET_INT, "120000", 0, 1000, 86400000, NULL,
     F(extract_timeout_ms), "wall-clock deadline of one extractor process; then it is killed"},
    {"ALMANAC_EXTRACT_MAX_TEXT_BYTES", ALM_SET_INT, "67108864", 0, 4096, 1073741824, NULL,
     F(extract_max_text), "largest text one extractor may print; more fails the document"},
    {"ALMANAC_PDF_MAX_PAGES", ALM_SET_INT, "5000", 0, 1, 1000000, NULL, F(pdf_max_pages),
     "PDFs with more pages are refused"},
    {"ALMANAC_SHUTDOWN_DELAY_MS", ALM_SET_INT, "2000", 0, 0, 60000, NULL, F(shutdown_delay_ms),
     "after SIGTERM, how long to keep serving while /ready fails, so load balancers drain"},
    {"ALMANAC_SHUTDOWN_TIMEOUT_MS", ALM_SET_INT, "20000", 0, 0, 300000, NULL,
     F(shutdown_timeout_ms), "after the delay, how long in-flight work may take to finish"},
    {"ALMANAC_DB_POOL_SIZE", ALM_SET_INT, "8", 0, 1, 256, NULL, F(db_pool_size),
     "PostgreSQL connections of the api's request pool"},
    {"ALMANAC_DB_TIMEOUT_MS", ALM_SET_INT, "5000", 0, 100, 120000, NULL, F(db_timeout_ms),
     "deadline of one database statement of a request (and of waiting for a connection)"},
    {"ALMANAC_JWT_EXPIRY_S", ALM_SET_INT, "3600", 0, 60, 2592000, NULL, F(jwt_expiry_s),
     "lifetime of an access token in seconds"},
    {"ALMANAC_ALLOW_SIGNUP", ALM_SET_BOOL, "false", 0, 0, 0, NULL, F(allow_signup),
     "whether anyone may create an account through POST /api/v1/auth/signup"},
    {"ALMANAC_LOGIN_MAX_ATTEMPTS", ALM_SET_INT, "5", 0, 1, 1000, NULL, F(login_max_attempts),
     "failed sign-ins allowed per account within the window before 429"},
    {"ALMANAC_LOGIN_MAX_ATTEMPTS_PER_IP", ALM_SET_INT, "20", 0, 1, 100000, NULL,
     F(login_max_attempts_ip), "failed sign-ins allowed per client address within the window"},
    {"ALMANAC_LOGIN_WINDOW_S", ALM_SET_INT, "900", 0, 10, 86400, NULL, F(login_window_s),
     "window of the sign-in limits in seconds"},
    {"ALMANAC_TRUST_PROXY", ALM_SET_BOOL, "false", 0, 0, 0, NULL, F(trust_proxy),
     "take the client address from X-Real-IP, when it is a valid IPv4 or IPv6 address; only "
     "where nothing but the bundled nginx can reach the api (docs/http.md)"},
    {"ALMANAC_QDRANT_COLLECTION", ALM_SET_STRING, "almanac_chunks", 0, 0, 0, NULL,
     F(qdrant_collection), "Qdrant collection holding the chunk vectors"},
    {"ALMANAC_EMBEDDINGS_DIM", ALM_SET_INT, "384", 0, 8, 8192, NULL, F(embeddings_dim),
     "vector dimension: of the hashing embedder, or the one the endpoint's model returns"},
    {"ALMANAC_EMBEDDINGS_BATCH", ALM_SET_INT, "32", 0, 1, 2048, NULL, F(embeddings_batch),
     "texts per embeddings request"},
    {"ALMANAC_EMBEDDINGS_TIMEOUT_MS", ALM_SET_INT, "15000", 0, 100, 300000, NULL,
     F(embeddings_timeout_ms), "deadline of one embeddings request"},
    {"ALMANAC_EMBEDDINGS_RETRIES", ALM_SET_INT, "3", 0, 0, 10, NULL, F(embeddings_retries),
     "retries of an embeddings request that timed out, failed to connect or was answered 429 or "
     "5xx, with exponential backoff and jitter"},
    {"ALMANAC_CHUNK_SIZE", ALM_SET_INT, "800", 0, 100, 8000, NULL, F(chunk_size),
     "target chunk length in characters"},
    {"ALMANAC_CHUNK_OVERLAP", ALM_SET_INT, "100", 0, 0, 2000, NULL, F(chunk_overlap),
     "characters shared by consecutive chunks; less than half of ALMANAC_CHUNK_SIZE"},
    {"ALMANAC_SEARCH_TIMEOUT_MS", ALM_SET_INT, "3000", 0, 200, 30000, NULL, F(search_timeout_ms),
     "deadline of a search; the vector path is dropped (degraded answer) when it is late"},
    {"ALMANAC_HEALTHCHECK_URL", ALM_SET_URL, NULL, 0, 0, 0, "http|https", F(healthcheck_url),
     "URL `almanac healthcheck` probes when given none; unset means the api's /health on "
     "ALMANAC_LISTEN's port (set it to the probe listener for worker and beat)"},
    {"ALMANAC_PROBE_LISTEN", ALM_SET_HOSTPORT, "0.0.0.0:8001", 0, 0, 0, NULL, F(probe_listen),
     "address and port of the /health, /ready and /metrics listener of api, worker and beat"},
    {"ALMANAC_WORKER_CONCURRENCY", ALM_SET_INT, "2", 0, 1, 64, NULL, F(worker_concurrency),
     "jobs one worker process runs at once (threads)"},
    {"ALMANAC_JOB_TIMEOUT_MS", ALM_SET_INT, "300000", 0, 1000, 86400000, NULL, F(job_timeout_ms),
     "deadline of one job"},
    {"ALMANAC_JOB_MAX_ATTEMPTS", ALM_SET_INT, "5", 0, 1, 100, NULL, F(job_max_attempts),
     "attempts of a job before it goes to the dead letters (and its document fails)"},
    {"ALMANAC_JOB_RETRY_BASE_MS", ALM_SET_INT, "2000", 0, 10, 3600000, NULL, F(job_retry_base_ms),
     "first retry delay; doubled for each attempt, with jitter"},
    {"ALMANAC_JOB_CLAIM_IDLE_MS", ALM_SET_INT, "30000", 0, 1000, 86400000, NULL,
     F(job_claim_idle_ms),
     "a job whose worker stopped renewing it this long is taken over by another worker"},
    {"ALMANAC_HEARTBEAT_MS", ALM_SET_INT, "5000", 0, 200, 60000, NULL, F(heartbeat_ms),
     "heartbeat period of workers and beats (their record expires after three)"},
    {"ALMANAC_STUCK_AFTER_S", ALM_SET_INT, "900", 0, 10, 604800, NULL, F(stuck_after_s),
     "the beat requeues a document still processing after this long"},
    {"ALMANAC_LOST_JOB_CHECK_MS", ALM_SET_INT, "30000", 0, 500, 3600000, NULL, F(lost_job_check_ms),
     "the beat looks this often for documents waiting on a job that is nowhere in Redis and "
     "queues them again after two looks in a row (about a minute by default)"},
    {"ALMANAC_BEAT_LEASE_MS", ALM_SET_INT, "15000", 0, 1000, 600000, NULL, F(beat_lease_ms),
     "leader lease of the beat: a standby takes over within about 4/3 of it after a leader "
     "dies, at once after a leader stops"},
    {"ALMANAC_DEAD_LETTER_TTL_S", ALM_SET_INT, "604800", 0, 60, 31536000, NULL,
     F(dead_letter_ttl_s), "dead letters older than this are trimmed by the beat"},
    {"ALMANAC_LLM_URL", ALM_SET_URL, NULL, 0, 0, 0, "http|https", F(llm_url),
     "OpenAI-compatible chat completions base URL (LiteLLM, Ollama, vLLM, OpenAI: up to /v1); "
     "unset means answers return search results only"},
    {"ALMANAC_LLM_MODEL", ALM_SET_STRING, "gpt-4o-mini", 0, 0, 0, NULL, F(llm_model),
     "model name sent to the chat completions endpoint"},
    {"ALMANAC_LLM_API_KEY", ALM_SET_STRING, NULL, SECRET, 0, 0, NULL, F(llm_api_key),
     "API key of the chat completions endpoint, if it requires one"},
    {"ALMANAC_LLM_TIMEOUT_MS", ALM_SET_INT, "30000", 0, 500, 600000, NULL, F(llm_timeout_ms),
     "deadline of a whole answer from the model, retries included; past it the client gets the "
     "search results with answer_unavailable"},
    {"ALMANAC_LLM_IDLE_TIMEOUT_MS", ALM_SET_INT, "15000", 0, 200, 600000, NULL,
     F(llm_idle_timeout_ms),
     "an attempt that receives nothing from the model for this long (before the first token or "
     "between chunks) is abandoned"},
    {"ALMANAC_LLM_RETRIES", ALM_SET_INT, "2", 0, 0, 10, NULL, F(llm_retries),
     "retries of a chat request refused with 429 or 5xx or failing to connect, with exponential "
     "backoff and jitter, before any text was received"},
    {"ALMANAC_LLM_MAX_TOKENS", ALM_SET_INT, "512", 0, 16, 32768, NULL, F(llm_max_tokens),
     "max_tokens of an answer"},
    {"ALMANAC_ANSWER_PASSAGES", ALM_SET_INT, "6", 0, 1, 20, NULL, F(answer_passages),
     "passages retrieved by hybrid search for an answer (fewer when the token budget is spent)"},
    {"ALMANAC_ANSWER_CONTEXT_TOKENS", ALM_SET_INT, "3000", 0, 100, 100000, NULL,
     F(answer_context_tokens),
     "token budget of the passages in a prompt (estimated at 4 bytes a token)"},
    {"ALMANAC_ANSWER_MIN_RELEVANCE", ALM_SET_INT, "20", 0, 0, 100, NULL, F(answer_min_relevance),
     "relevance floor: when no retrieved passage holds this percent of the question's words, "
     "the answer says nothing relevant was found instead of asking the model"},
    {"ALMANAC_ANSWER_RATE_LIMIT", ALM_SET_INT, "20", 0, 1, 100000, NULL, F(answer_rate_limit),
     "answers one user may ask for per minute before 429"},
    {"ALMANAC_ANSWER_HISTORY_TURNS", ALM_SET_INT, "3", 0, 0, 20, NULL, F(answer_history_turns),
     "earlier turns of a conversation sent with a follow-up question"},
};

#undef F
#undef SECRET

/* Known insecure values, refused for every secret in production: the original system's
 * defaults, the obvious words, and every development default this repository ships
 * (infrastructure/docker/docker-compose.yml, scripts/run.sh, the .env template). */
static const char *const denied_values[] = {
    "change-me-in-production",
    "sk-dev-master-key",
    "password",
    "postgres",
    "secret",
    "changeme",
    "change-me",
    "CHANGE_ME",
    "admin",
    "root",
    "redis",
    "qdrant",
    "almanac",
    "test",
    "almanac-dev",
    "almanac-dev-password",
    "almanac-dev-redis-password",
    "almanac-dev-jwt-secret-do-not-use-in-production",
    "almanac-local-jwt-secret-for-development-only",
};

bool alm_config_is_denied(const char *value)
{
    for (size_t i = 0; i < ALM_ARRAY_SIZE(denied_values); i++) {
        if (strcasecmp(value, denied_values[i]) == 0)
            return true;
    }
    return false;
}

const struct alm_setting *alm_config_settings(size_t *count)
{
    *count = ALM_ARRAY_SIZE(settings);
    return settings;
}

static void report_add(struct alm_config_report *r, const char *fmt, ...) ALM_PRINTF(2, 3);

static void report_add(struct alm_config_report *r, const char *fmt, ...)
{
    va_list ap;
    char *line;

    va_start(ap, fmt);
    if (vasprintf(&line, fmt, ap) < 0)
        line = alm_xstrdup("out of memory while reporting a configuration problem");
    va_end(ap);
    r->lines = alm_xrealloc(r->lines, (r->count + 1) * sizeof(*r->lines));
    r->lines[r->count++] = line;
}

void alm_config_report_release(struct alm_config_report *r)
{
    for (size_t i = 0; i < r->count; i++)
        free(r->lines[i]);
    ALM_FREE(r->lines);
    r->count = 0;
}

static char **str_field(struct alm_config *cfg, const struct alm_setting *s)
{
    return (char **)((char *)cfg + s->offset);
}

static long *int_field(struct alm_config *cfg, const struct alm_setting *s)
{
    return (long *)((char *)cfg + s->offset);
}

static bool *bool_field(struct alm_config *cfg, const struct alm_setting *s)
{
    return (bool *)((char *)cfg + s->offset);
}

/* Strings are kept (and freed) as they are; integers and booleans are parsed into their
 * fields. */
static bool held_as_text(const struct alm_setting *s)
{
    return s->type != ALM_SET_INT && s->type != ALM_SET_BOOL;
}

static const char *str_value(const struct alm_config *cfg, const struct alm_setting *s)
{
    return *(char *const *)((const char *)cfg + s->offset);
}

static long int_value(const struct alm_config *cfg, const struct alm_setting *s)
{
    return *(const long *)((const char *)cfg + s->offset);
}

static bool bool_value(const struct alm_config *cfg, const struct alm_setting *s)
{
    return *(const bool *)((const char *)cfg + s->offset);
}

/* Whether word is one of the '|'-separated choices. */
static bool in_choices(const char *choices, const char *word, size_t n)
{
    const char *p = choices;

    while (*p) {
        size_t len = strcspn(p, "|");
        if (len == n && strncmp(p, word, n) == 0)
            return true;
        p += len;
        if (*p == '|')
            p++;
    }
    return false;
}

/* Reads NAME_FILE: the whole file, trailing newlines stripped as $(< file) does.
 * Returns a new string, or NULL after reporting why. */
static char *read_secret_file(const char *var, const char *path, struct alm_config_report *errs)
{
    enum { MAX_SECRET_FILE = 65536 };
    FILE *f = fopen(path, "rb");
    char *data;
    size_t n;

    if (!f) {
        report_add(errs, "%s: cannot read '%s': %s", var, path, alm_strerror(errno));
        return NULL;
    }
    data = alm_xmalloc(MAX_SECRET_FILE + 1);
    n = fread(data, 1, MAX_SECRET_FILE + 1, f);
    if (ferror(f) || n > MAX_SECRET_FILE) {
        report_add(errs, "%s: '%s' is unreadable or larger than %d bytes", var, path,
                   MAX_SECRET_FILE);
        fclose(f);
        free(data);
        return NULL;
    }
    fclose(f);
    while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == '\r'))
        n--;
    data[n] = '\0';
    return data;
}

/* The raw text of a setting from NAME or NAME_FILE; a new string or NULL when unset.
 * *bad is set when a problem was reported. */
static char *raw_value(const struct alm_setting *s, struct alm_config_report *errs, bool *bad)
{
    const char *direct = getenv(s->name);
    char file_var[128];
    const char *file = NULL;

    if (s->flags & ALM_SET_SECRET) {
        snprintf(file_var, sizeof(file_var), "%s_FILE", s->name);
        file = getenv(file_var);
        if (file && !*file)
            file = NULL;
    }
    if (direct && !*direct)
        direct = NULL; /* an empty variable means unset, as compose's ${VAR:-} yields */
    if (direct && file) {
        report_add(errs, "%s and %s_FILE are both set; set only one", s->name, s->name);
        *bad = true;
        return NULL;
    }
    if (file) {
        char *v = read_secret_file(file_var, file, errs);
        if (!v) {
            *bad = true;
        } else if (!*v) {
            report_add(errs, "%s: the file is empty", file_var);
            free(v);
            *bad = true;
            v = NULL;
        }
        return v;
    }
    return direct ? alm_xstrdup(direct) : NULL;
}

static bool parse_long(const char *text, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(text, &end, 10);
    if (errno || end == text || *end)
        return false;
    *out = v;
    return true;
}

static bool valid_hostport(const char *text)
{
    struct alm_url u;
    char *as_url = alm_xasprintf("tcp://%s", text);
    bool ok = false;

    if (alm_url_parse(as_url, &u)) {
        ok = u.port && !*u.path && !u.user && !u.password;
        alm_url_release(&u);
    }
    free(as_url);
    return ok;
}

static bool valid_list(const char *choices, const char *text)
{
    const char *p = text;

    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 0 || !in_choices(choices, p, n))
            return false;
        p += n;
        if (*p == ',')
            p++;
    }
    return true;
}

static bool valid_url(const struct alm_setting *s, const char *text)
{
    struct alm_url u;
    bool ok;

    if (!alm_url_parse(text, &u))
        return false;
    ok = in_choices(s->choices, u.scheme, strlen(u.scheme));
    alm_url_release(&u);
    return ok;
}

static bool valid_pgurl(const char *text)
{
    char *err = NULL;
    PQconninfoOption *opts;

    /* Only URIs: a key=value string would not survive our redaction. */
    if (strncmp(text, "postgresql://", 13) != 0 && strncmp(text, "postgres://", 11) != 0)
        return false;
    opts = PQconninfoParse(text, &err);
    PQfreemem(err); /* may quote the input: never shown */
    if (!opts)
        return false;
    PQconninfoFree(opts);
    return true;
}

/* Checks one value against its type; reports without quoting the value. */
static bool validate_value(const struct alm_setting *s, const char *v, struct alm_config *cfg,
                           struct alm_config_report *errs)
{
    long n;

    switch (s->type) {
    case ALM_SET_INT:
        if (!parse_long(v, &n) || n < s->min || n > s->max) {
            report_add(errs, "%s: must be an integer from %ld to %ld", s->name, s->min, s->max);
            return false;
        }
        *int_field(cfg, s) = n;
        return true;
    case ALM_SET_BOOL:
        if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0) {
            report_add(errs, "%s: must be one of " BOOL_CHOICES, s->name);
            return false;
        }
        *bool_field(cfg, s) = strcmp(v, "true") == 0;
        return true;
    case ALM_SET_ENUM:
        if (!in_choices(s->choices, v, strlen(v))) {
            report_add(errs, "%s: must be one of %s", s->name, s->choices);
            return false;
        }
        return true;
    case ALM_SET_LIST:
        if (!valid_list(s->choices, v)) {
            report_add(errs, "%s: must be a comma-separated list of %s", s->name, s->choices);
            return false;
        }
        return true;
    case ALM_SET_HOSTPORT:
        if (!valid_hostport(v)) {
            report_add(errs, "%s: must be host:port", s->name);
            return false;
        }
        return true;
    case ALM_SET_URL:
        if (!valid_url(s, v)) {
            report_add(errs, "%s: must be a URL with scheme %s", s->name, s->choices);
            return false;
        }
        return true;
    case ALM_SET_PGURL:
        if (!valid_pgurl(v)) {
            report_add(errs, "%s: must be a PostgreSQL URI (postgresql://user@host:port/db)",
                       s->name);
            return false;
        }
        return true;
    case ALM_SET_STRING:
        return true;
    }
    return true;
}

/* The password inside a URL setting, or NULL; a new string. */
static char *url_password(const char *text)
{
    struct alm_url u;
    char *pw = NULL;

    if (!text || !alm_url_parse(text, &u))
        return NULL;
    if (u.password && *u.password)
        pw = alm_xstrdup(u.password);
    alm_url_release(&u);
    if (!pw && text && strstr(text, "password=")) {
        /* libpq also takes ?password=...; PQconninfoParse finds it. */
        PQconninfoOption *opts = PQconninfoParse(text, NULL);
        for (PQconninfoOption *o = opts; o && o->keyword; o++) {
            if (strcmp(o->keyword, "password") == 0 && o->val && *o->val)
                pw = alm_xstrdup(o->val);
        }
        PQconninfoFree(opts);
    }
    return pw;
}

static void check_denied(const char *name, const char *value, struct alm_config_report *errs)
{
    if (value && alm_config_is_denied(value))
        report_add(errs, "%s: a known insecure default; set a real secret in production", name);
}

/* A host whose traffic stays on this machine, or on the container network of one Compose
 * project: loopback, or a single-label name such as Compose's service name `qdrant`
 * (names of other hosts have dots; IP literals other than loopback are refused). */
static bool host_is_local_network(const char *host)
{
    if (alm_url_host_is_loopback(host))
        return true;
    if (strchr(host, '.') || strchr(host, ':'))
        return false;
    return strspn(host, "0123456789") != strlen(host);
}

/* A key sent in clear text to another host is readable by anyone on the path. */
static void check_cleartext_key(const struct alm_config *cfg, const char *url_name, const char *url,
                                const char *key_name, const char *key,
                                struct alm_config_report *errs, struct alm_config_report *warns)
{
    struct alm_url u;

    if (!url || !key || !alm_url_parse(url, &u))
        return;
    if (strcmp(u.scheme, "http") == 0 && !host_is_local_network(u.host)) {
        report_add(cfg->production ? errs : warns,
                   "%s: sends %s over plain http to another host; use https", url_name, key_name);
    }
    alm_url_release(&u);
}

/* Production: a service on another host (anything but loopback, the Compose network's
 * own service names included) must be called with a key. */
static void check_key_required(const char *url_name, const char *url, const char *key_name,
                               const char *key, struct alm_config_report *errs)
{
    struct alm_url u;

    if (!url || (key && *key) || !alm_url_parse(url, &u))
        return;
    if (!alm_url_host_is_loopback(u.host))
        report_add(errs, "%s: required in production when %s is not on loopback (or set its _FILE)",
                   key_name, url_name);
    alm_url_release(&u);
}

enum { MIN_PASSWORD_BYTES = 16 };

/* A database or Redis password: from its own variable (or _FILE), else from the URL. */
static void check_password(const char *pw_name, const char *pw, const char *url_name,
                           const char *url, struct alm_config_report *errs)
{
    char *from_url = url_password(url);
    const char *eff = pw && *pw ? pw : from_url;
    const char *name = pw && *pw ? pw_name : url_name;

    if (!eff) {
        report_add(errs, "%s: required in production (or set its _FILE, or a password in %s)",
                   pw_name, url_name);
    } else if (strlen(eff) < MIN_PASSWORD_BYTES) {
        report_add(errs, "%s: must be at least %d bytes in production", name,
                   (int)MIN_PASSWORD_BYTES);
    }
    free(from_url);
}

static void check_production(struct alm_config *cfg, struct alm_config_report *errs)
{
    char *pw;

    for (size_t i = 0; i < ALM_ARRAY_SIZE(settings); i++) {
        const struct alm_setting *s = &settings[i];
        if (s->flags & ALM_SET_SECRET && s->type == ALM_SET_STRING)
            check_denied(s->name, *str_field(cfg, s), errs);
    }
    pw = url_password(cfg->database_url);
    check_denied("ALMANAC_DATABASE_URL (its password)", pw, errs);
    free(pw);
    pw = url_password(cfg->redis_url);
    check_denied("ALMANAC_REDIS_URL (its password)", pw, errs);
    free(pw);
    check_password("ALMANAC_DATABASE_PASSWORD", cfg->database_password, "ALMANAC_DATABASE_URL",
                   cfg->database_url, errs);
    check_password("ALMANAC_REDIS_PASSWORD", cfg->redis_password, "ALMANAC_REDIS_URL",
                   cfg->redis_url, errs);
    check_key_required("ALMANAC_QDRANT_URL", cfg->qdrant_url, "ALMANAC_QDRANT_API_KEY",
                       cfg->qdrant_api_key, errs);
    check_key_required("ALMANAC_EMBEDDINGS_URL", cfg->embeddings_url, "ALMANAC_EMBEDDINGS_API_KEY",
                       cfg->embeddings_api_key, errs);
    if (cfg->jwt_secret && strlen(cfg->jwt_secret) < 32)
        report_add(errs, "ALMANAC_JWT_SECRET: must be at least 32 bytes in production");
}

static void check_development(const struct alm_config *cfg, struct alm_config_report *warns)
{
    if (cfg->jwt_secret && strlen(cfg->jwt_secret) < 32)
        report_add(warns, "ALMANAC_JWT_SECRET: shorter than 32 bytes; refused in production");
    if (!cfg->qdrant_url)
        report_add(warns, "ALMANAC_QDRANT_URL: not set; Qdrant is off and search is keyword "
                          "only (development only)");
}

/* Development without ALMANAC_JWT_SECRET: a random key for this process, so that sign-in
 * works out of the box; tokens die with the process. */
static void generate_jwt_secret(struct alm_config *cfg, struct alm_config_report *warns)
{
    unsigned char key[32];
    char hex[65];

    randombytes_buf(key, sizeof(key));
    sodium_bin2hex(hex, sizeof(hex), key, sizeof(key));
    sodium_memzero(key, sizeof(key));
    cfg->jwt_secret = alm_xstrdup(hex);
    sodium_memzero(hex, sizeof(hex));
    cfg->jwt_secret_generated = true;
    report_add(warns, "ALMANAC_JWT_SECRET: not set; using a random secret for this process "
                      "(development only: tokens end with the process)");
}

static void check_cross(struct alm_config *cfg, struct alm_config_report *errs,
                        struct alm_config_report *warns)
{
    check_cleartext_key(cfg, "ALMANAC_QDRANT_URL", cfg->qdrant_url, "ALMANAC_QDRANT_API_KEY",
                        cfg->qdrant_api_key, errs, warns);
    check_cleartext_key(cfg, "ALMANAC_EMBEDDINGS_URL", cfg->embeddings_url,
                        "ALMANAC_EMBEDDINGS_API_KEY", cfg->embeddings_api_key, errs, warns);
    check_cleartext_key(cfg, "ALMANAC_LLM_URL", cfg->llm_url, "ALMANAC_LLM_API_KEY",
                        cfg->llm_api_key, errs, warns);
    if (cfg->job_claim_idle_ms && cfg->job_claim_idle_ms < 2 * cfg->heartbeat_ms)
        report_add(errs, "ALMANAC_JOB_CLAIM_IDLE_MS: must be at least twice ALMANAC_HEARTBEAT_MS, "
                         "or live jobs would be taken over");
    if (cfg->llm_url &&
        cfg->llm_timeout_ms + cfg->search_timeout_ms > (cfg->http_timeout_s + 5) * 1000)
        report_add(warns,
                   "ALMANAC_LLM_TIMEOUT_MS: with the search deadline it passes nginx's proxy "
                   "timeout (ALMANAC_HTTP_TIMEOUT_S + 5 s): answers in one JSON object may be "
                   "cut there; streamed answers are not");
    if (cfg->chunk_size && cfg->chunk_overlap * 2 >= cfg->chunk_size)
        report_add(errs, "ALMANAC_CHUNK_OVERLAP: must be less than half of ALMANAC_CHUNK_SIZE");
    if (cfg->production)
        check_production(cfg, errs);
    else
        check_development(cfg, warns);
}

/* Names that look like ours but are not settings are usually typos. Kubernetes adds
 * ALMANAC_*_SERVICE_* and ALMANAC_*_PORT* for Services named almanac-*: not ours. */
static void check_unknown(struct alm_config_report *warns)
{
    for (char **e = environ; e && *e; e++) {
        size_t n = strcspn(*e, "=");
        bool known = false;
        if (strncmp(*e, "ALMANAC_", 8) != 0)
            continue;
        for (size_t i = 0; i < ALM_ARRAY_SIZE(settings) && !known; i++) {
            size_t len = strlen(settings[i].name);
            known = (n == len && strncmp(*e, settings[i].name, n) == 0) ||
                    (settings[i].flags & ALM_SET_SECRET && n == len + 5 &&
                     strncmp(*e, settings[i].name, len) == 0 && strncmp(*e + len, "_FILE", 5) == 0);
        }
        if (!known && !strstr(*e, "_SERVICE_") && !strstr(*e, "_PORT"))
            report_add(warns, "%.*s: not a known setting (a typo?); ignored", (int)n, *e);
    }
}

bool alm_config_load(struct alm_config *cfg, struct alm_config_report *errs,
                     struct alm_config_report *warns)
{
    size_t before = errs->count;

    memset(cfg, 0, sizeof(*cfg));
    /* ALMANAC_ENV first: which settings are required depends on it. */
    const char *env = getenv("ALMANAC_ENV");
    cfg->production = env && strcmp(env, "production") == 0;
    for (size_t i = 0; i < ALM_ARRAY_SIZE(settings); i++) {
        const struct alm_setting *s = &settings[i];
        bool bad = false;
        char *v = raw_value(s, errs, &bad);
        bool required =
            s->flags & ALM_SET_REQUIRED || (cfg->production && s->flags & ALM_SET_REQUIRED_PROD);
        if (bad)
            continue;
        if (!v && required) {
            report_add(errs, "%s: required%s but not set%s", s->name,
                       s->flags & ALM_SET_REQUIRED ? "" : " in production",
                       s->flags & ALM_SET_SECRET ? " (or set its _FILE)" : "");
            continue;
        }
        if (!v && s->def)
            v = alm_xstrdup(s->def);
        if (!v)
            continue;
        if (!validate_value(s, v, cfg, errs)) {
            free(v);
            continue;
        }
        if (held_as_text(s))
            *str_field(cfg, s) = v;
        else
            free(v);
    }
    check_cross(cfg, errs, warns);
    if (!cfg->production && !cfg->jwt_secret)
        generate_jwt_secret(cfg, warns);
    check_unknown(warns);
    return errs->count == before;
}

void alm_config_release(struct alm_config *cfg)
{
    for (size_t i = 0; i < ALM_ARRAY_SIZE(settings); i++) {
        if (held_as_text(&settings[i])) {
            char **f = str_field(cfg, &settings[i]);
            if (*f && settings[i].flags & ALM_SET_SECRET)
                sodium_memzero(*f, strlen(*f));
            ALM_FREE(*f);
        }
    }
}

bool alm_config_requires(const struct alm_config *cfg, const char *dep)
{
    const char *list = cfg->ready_required ? cfg->ready_required : "";
    size_t n = strlen(dep);

    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, dep, n) == 0)
            return true;
        p += len;
        if (*p == ',')
            p++;
    }
    return false;
}

void alm_config_log(const struct alm_config *cfg)
{
    json_t *fields;

    if (!alm_log_enabled(ALM_LOG_INFO))
        return; /* alm_log would not take the "o" reference below */
    fields = json_object();

    for (size_t i = 0; i < ALM_ARRAY_SIZE(settings); i++) {
        const struct alm_setting *s = &settings[i];
        if (s->type == ALM_SET_INT) {
            json_object_set_new(fields, s->name, json_integer(int_value(cfg, s)));
            continue;
        }
        if (s->type == ALM_SET_BOOL) {
            json_object_set_new(fields, s->name, json_boolean(bool_value(cfg, s)));
            continue;
        }
        const char *v = str_value(cfg, s);
        if (!v)
            continue;
        if (s->type == ALM_SET_URL || s->type == ALM_SET_PGURL) {
            char *r = alm_url_redact(v);
            json_object_set_new(fields, s->name, json_string(r));
            free(r);
        } else {
            json_object_set_new(fields, s->name,
                                json_string(s->flags & ALM_SET_SECRET ? "***" : v));
        }
    }
    alm_info("config.loaded", "configuration loaded", "{s:o}", "settings", fields);
}

static const char *type_name(const struct alm_setting *s)
{
    static const char *const names[] = {"string",    "integer", "enum",         "list",
                                        "host:port", "url",     "postgres-url", "boolean"};
    return names[s->type];
}

static const char *required_text(const struct alm_setting *s)
{
    if (s->flags & ALM_SET_REQUIRED)
        return "always";
    if (s->flags & ALM_SET_REQUIRED_PROD)
        return "production";
    return "no";
}

/* What a value may be: bounds, choices or type, for people reading the table. */
static void allowed_text(const struct alm_setting *s, char *out, size_t n)
{
    if (s->type == ALM_SET_INT)
        snprintf(out, n, "%ld..%ld", s->min, s->max);
    else if (s->type == ALM_SET_BOOL)
        snprintf(out, n, "%s", BOOL_CHOICES);
    else if (s->choices && s->type == ALM_SET_URL)
        snprintf(out, n, "%s URL", s->choices);
    else if (s->choices)
        snprintf(out, n, "%s", s->choices);
    else
        snprintf(out, n, "%s", type_name(s));
}

void alm_config_print_table(FILE *out, const char *format)
{
    bool md = strcmp(format, "markdown") == 0;
    char allowed[96];

    if (md) {
        fprintf(out,
                "| Variable | Allowed | Default | Required | Secret (`_FILE`) | Description |\n");
        fprintf(out, "|---|---|---|---|---|---|\n");
    } else {
        fprintf(out, "%-30s %-22s %-22s %-10s %-6s %s\n", "NAME", "ALLOWED", "DEFAULT", "REQUIRED",
                "SECRET", "DESCRIPTION");
    }
    for (size_t i = 0; i < ALM_ARRAY_SIZE(settings); i++) {
        const struct alm_setting *s = &settings[i];
        allowed_text(s, allowed, sizeof(allowed));
        if (md) {
            /* a '|' inside a cell would end it */
            for (char *p = strchr(allowed, '|'); p; p = strchr(p + 1, '|'))
                *p = '/';
            fprintf(out, "| `%s` | %s | %s%s%s | %s | %s | %s |\n", s->name, allowed,
                    s->def ? "`" : "", s->def ? s->def : "(none)", s->def ? "`" : "",
                    required_text(s), s->flags & ALM_SET_SECRET ? "yes" : "no", s->description);
        } else {
            fprintf(out, "%-30s %-22s %-22s %-10s %-6s %s\n", s->name, allowed,
                    s->def ? s->def : "-", required_text(s),
                    s->flags & ALM_SET_SECRET ? "yes" : "no", s->description);
        }
    }
}

int alm_config_fail(const struct alm_config_report *errors)
{
    for (size_t i = 0; i < errors->count; i++)
        fprintf(stderr, "almanac: config: %s\n", errors->lines[i]);
    fprintf(stderr, "almanac: %zu configuration problem%s; see 'almanac check-config --list'\n",
            errors->count, errors->count == 1 ? "" : "s");
    return ALM_EXIT_CONFIG;
}

int alm_config_load_or_report(struct alm_config *cfg, bool log_warnings)
{
    struct alm_config_report errs = {0}, warns = {0};
    enum alm_log_level level = ALM_LOG_INFO;
    int rc = 0;

    if (!alm_config_load(cfg, &errs, &warns)) {
        rc = alm_config_fail(&errs);
        alm_config_release(cfg);
        goto out;
    }
    if (alm_log_level_parse(cfg->log_level, &level))
        alm_log_init(NULL, level);
    for (size_t i = 0; log_warnings && i < warns.count; i++)
        alm_warn("config.warning", "configuration warning", "{s:s}", "detail", warns.lines[i]);
out:
    alm_config_report_release(&errs);
    alm_config_report_release(&warns);
    return rc;
}
