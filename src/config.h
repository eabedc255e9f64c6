/* SPDX-License-Identifier: Apache-2.0 */
/* config.h: every setting, declared once in a table, read from the environment.
 *
 * Each setting is an ALMANAC_* environment variable; a secret may instead come from
 * ALMANAC_<NAME>_FILE. alm_config_load() validates everything before anything starts and
 * collects every problem (one line each, naming the variable, never its value), so that
 * an operator fixes them all in one round. */
#pragma once
#include "compat.h"

#include <stdio.h>

enum alm_setting_type {
    ALM_SET_STRING,
    ALM_SET_INT,
    ALM_SET_ENUM,     /* one of choices, '|'-separated */
    ALM_SET_LIST,     /* comma-separated subset of choices */
    ALM_SET_HOSTPORT, /* host:port */
    ALM_SET_URL,      /* scheme://host[:port][/path], scheme from choices */
    ALM_SET_PGURL,    /* a libpq connection URI */
    ALM_SET_BOOL,     /* true or false; the field is a bool */
};

enum alm_setting_flags {
    ALM_SET_SECRET = 1 << 0,        /* redacted; may come from NAME_FILE */
    ALM_SET_REQUIRED = 1 << 1,      /* required in every environment */
    ALM_SET_REQUIRED_PROD = 1 << 2, /* required when ALMANAC_ENV=production */
};

struct alm_setting {
    const char *name;
    enum alm_setting_type type;
    const char *def; /* default as text; NULL for none */
    unsigned flags;
    long min, max;       /* bounds of an INT */
    const char *choices; /* ENUM, LIST, URL schemes */
    size_t offset;       /* of the field in struct alm_config */
    const char *description;
};

struct alm_config {
    bool production;
    char *env;
    char *listen;
    char *database_url;
    char *database_password;
    char *redis_url;
    char *redis_password;
    char *qdrant_url;
    char *qdrant_api_key;
    char *jwt_secret;
    char *embeddings_url;
    char *embeddings_model;
    char *embeddings_api_key;
    char *log_level;
    char *ready_required;
    long ready_timeout_ms;
    long ready_cache_ms;
    long http_threads;
    long http_max_connections;
    long http_timeout_s;
    long http_max_per_address;
    long http_head_timeout_ms;
    long http_min_body_rate;
    long http_body_budget;
    long http_drain_bytes;
    long http_drain_ms;
    long max_upload_bytes;
    long max_upload_text;
    long max_upload_pdf;
    long max_upload_office;
    long max_upload_image;
    bool ocr;
    char *ocr_languages;
    char *extract_tools_dir;
    long extract_memory_mb;
    long extract_cpu_s;
    long extract_timeout_ms;
    long extract_max_text;
    long pdf_max_pages;
    long shutdown_delay_ms;
    long shutdown_timeout_ms;
    long db_pool_size;
    long db_timeout_ms;
    long jwt_expiry_s;
    long login_max_attempts;
    long login_max_attempts_ip;
    long login_window_s;
    bool allow_signup;
    char *qdrant_collection;
    long embeddings_dim;
    long embeddings_batch;
    long embeddings_timeout_ms;
    long embeddings_retries;
    long chunk_size;
    long search_timeout_ms;
    char *probe_listen;
    /* only read by `almanac healthcheck` (getenv); declared so that it is a known setting */
    char *healthcheck_url;
    long worker_concurrency;
    long job_timeout_ms;
    long job_max_attempts;
    long job_retry_base_ms;
    long job_claim_idle_ms;
    long heartbeat_ms;
    long stuck_after_s;
    long lost_job_check_ms;
    long beat_lease_ms;
    long dead_letter_ttl_s;
    long chunk_overlap;
    bool trust_proxy;
    char *llm_url;
    char *llm_model;
    char *llm_api_key;
    long llm_timeout_ms;
    long llm_idle_timeout_ms;
    long llm_retries;
    long llm_max_tokens;
    long answer_passages;
    long answer_context_tokens;
    long answer_min_relevance;
    long answer_rate_limit;
    long answer_history_turns;
    bool jwt_secret_generated; /* development only: no secret was given */
};

/* A list of lines: problems that stop start-up, or warnings. */
struct alm_config_report {
    char **lines;
    size_t count;
};

/* The table, for check-config --list and the docs. */
const struct alm_setting *alm_config_settings(size_t *count);
/* Reads and validates every setting. Fills cfg (release with alm_config_release) and
 * appends to errors and warnings; returns true when errors is empty. */
bool alm_config_load(struct alm_config *cfg, struct alm_config_report *errors,
                     struct alm_config_report *warnings);
void alm_config_release(struct alm_config *cfg);
void alm_config_report_release(struct alm_config_report *r);
/* Whether value is on the deny-list of known insecure values (case-insensitive). */
bool alm_config_is_denied(const char *value);
/* Whether a dependency (postgres, redis, qdrant) must be up for /ready to pass. */
bool alm_config_requires(const struct alm_config *cfg, const char *dep);
/* Logs the effective configuration once, secrets as "***" and URLs redacted. */
void alm_config_log(const struct alm_config *cfg);
/* Prints the table: format "text" or "markdown". */
void alm_config_print_table(FILE *out, const char *format);
/* Prints errors to stderr, one line each, and returns ALM_EXIT_CONFIG; for commands. */
int alm_config_fail(const struct alm_config_report *errors);
/* Loads, logs warnings (when log_warnings: services do, one-shot commands need not) and
 * prints errors to stderr; the usual start of a command. Returns 0 or ALM_EXIT_CONFIG. */
int alm_config_load_or_report(struct alm_config *cfg, bool log_warnings);
