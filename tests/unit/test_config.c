/* SPDX-License-Identifier: Apache-2.0 */
/* Settings: defaults, types, *_FILE, the deny-list, production rules, reporting. */
#include "unit.h"
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static const char *const good_jwt = "0123456789abcdef0123456789abcdef-unit";

/* Every test starts from an environment with no ALMANAC_* variable. */
static int clean_env(void **state)
{
    (void)state;
    for (;;) {
        char **e = environ;
        while (*e && strncmp(*e, "ALMANAC_", 8) != 0)
            e++;
        if (!*e)
            break;
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(*e, "="), *e);
        unsetenv(name);
    }
    setenv("ALMANAC_DATABASE_URL", "postgresql://almanac@127.0.0.1:5432/almanac", 1);
    setenv("ALMANAC_REDIS_URL", "redis://127.0.0.1:6379/0", 1);
    return 0;
}

struct loaded {
    struct alm_config cfg;
    struct alm_config_report errs, warns;
    bool ok;
};

static void load(struct loaded *l)
{
    memset(l, 0, sizeof(*l));
    l->ok = alm_config_load(&l->cfg, &l->errs, &l->warns);
}

static void unload(struct loaded *l)
{
    alm_config_release(&l->cfg);
    alm_config_report_release(&l->errs);
    alm_config_report_release(&l->warns);
}

/* Whether some line of the report contains text. */
static bool reported(const struct alm_config_report *r, const char *text)
{
    for (size_t i = 0; i < r->count; i++) {
        if (strstr(r->lines[i], text))
            return true;
    }
    return false;
}

static bool reported_anywhere(const struct loaded *l, const char *text)
{
    return reported(&l->errs, text) || reported(&l->warns, text);
}

static void production_env(void)
{
    setenv("ALMANAC_ENV", "production", 1);
    setenv("ALMANAC_DATABASE_URL", "postgresql://almanac:Xq9-db-pass-unit@db:5432/almanac", 1);
    setenv("ALMANAC_REDIS_URL", "redis://:Rk7-redis-pass-unit@redis:6379/0", 1);
    setenv("ALMANAC_QDRANT_URL", "http://qdrant:6333", 1);
    setenv("ALMANAC_QDRANT_API_KEY", "qdrant-key-unit-0123456789", 1);
    setenv("ALMANAC_JWT_SECRET", good_jwt, 1);
}

static void defaults_apply(void **state)
{
    struct loaded l;
    (void)state;
    load(&l);
    assert_true(l.ok);
    assert_false(l.cfg.production);
    assert_string_equal(l.cfg.listen, "0.0.0.0:8000");
    assert_int_equal(l.cfg.ready_timeout_ms, 2000);
    assert_int_equal(l.cfg.ready_cache_ms, 1000);
    assert_string_equal(l.cfg.ready_required, "postgres,redis,qdrant");
    assert_null(l.cfg.qdrant_url);
    /* development without a JWT secret: a random one, said in a warning */
    assert_true(l.cfg.jwt_secret_generated);
    assert_int_equal(strlen(l.cfg.jwt_secret), 64);
    assert_true(reported(&l.warns, "ALMANAC_JWT_SECRET"));
    assert_true(reported(&l.warns, "keyword"));
    unload(&l);
}

static void required_missing_reported_together(void **state)
{
    struct loaded l;
    (void)state;
    unsetenv("ALMANAC_DATABASE_URL");
    unsetenv("ALMANAC_REDIS_URL");
    setenv("ALMANAC_READY_TIMEOUT_MS", "9000", 1);
    load(&l);
    assert_false(l.ok);
    assert_int_equal(l.errs.count, 3);
    assert_true(reported(&l.errs, "ALMANAC_DATABASE_URL: required"));
    assert_true(reported(&l.errs, "ALMANAC_REDIS_URL: required"));
    assert_true(reported(&l.errs, "ALMANAC_READY_TIMEOUT_MS: must be an integer from 100 to 5000"));
    unload(&l);
}

static void types_are_checked(void **state)
{
    struct loaded l;
    (void)state;
    setenv("ALMANAC_ENV", "staging", 1);
    setenv("ALMANAC_LISTEN", "nowhere", 1);
    setenv("ALMANAC_READY_CACHE_MS", "12abc", 1);
    setenv("ALMANAC_READY_REQUIRED", "postgres,mongo", 1);
    setenv("ALMANAC_LOG_LEVEL", "loud", 1);
    setenv("ALMANAC_QDRANT_URL", "ftp://qdrant", 1);
    setenv("ALMANAC_REDIS_URL", "http://127.0.0.1:6379", 1);
    setenv("ALMANAC_DATABASE_URL", "host=db password=x", 1);
    load(&l);
    assert_false(l.ok);
    assert_int_equal(l.errs.count, 8);
    assert_true(reported(&l.errs, "ALMANAC_ENV: must be one of development|production"));
    assert_true(reported(&l.errs, "ALMANAC_LISTEN: must be host:port"));
    assert_true(reported(&l.errs, "ALMANAC_READY_CACHE_MS"));
    assert_true(reported(&l.errs, "ALMANAC_READY_REQUIRED"));
    assert_true(reported(&l.errs, "ALMANAC_LOG_LEVEL"));
    assert_true(reported(&l.errs, "ALMANAC_QDRANT_URL: must be a URL with scheme http|https"));
    assert_true(reported(&l.errs, "ALMANAC_REDIS_URL"));
    assert_true(reported(&l.errs, "ALMANAC_DATABASE_URL"));
    /* never the value itself */
    assert_false(reported(&l.errs, "password=x"));
    unload(&l);
}

static char *write_temp(const char *content)
{
    char *path = strdup("/tmp/almanac-unit-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    return path;
}

static void secret_from_file(void **state)
{
    struct loaded l;
    char *path = write_temp("from-a-file-0123456789abcdef0123456789\r\n\n");
    (void)state;
    setenv("ALMANAC_JWT_SECRET_FILE", path, 1);
    load(&l);
    assert_true(l.ok);
    assert_string_equal(l.cfg.jwt_secret, "from-a-file-0123456789abcdef0123456789");
    assert_false(l.cfg.jwt_secret_generated);
    unload(&l);
    unlink(path);
    free(path);
}

static void secret_file_problems(void **state)
{
    struct loaded l;
    char *empty = write_temp("\n");
    (void)state;
    setenv("ALMANAC_JWT_SECRET_FILE", "/nonexistent/almanac/jwt", 1);
    setenv("ALMANAC_QDRANT_API_KEY_FILE", empty, 1);
    setenv("ALMANAC_REDIS_PASSWORD", "direct-value-unit", 1);
    setenv("ALMANAC_REDIS_PASSWORD_FILE", empty, 1);
    load(&l);
    assert_false(l.ok);
    assert_int_equal(l.errs.count, 3);
    assert_true(
        reported(&l.errs, "ALMANAC_JWT_SECRET_FILE: cannot read '/nonexistent/almanac/jwt'"));
    assert_true(reported(&l.errs, "ALMANAC_QDRANT_API_KEY_FILE: the file is empty"));
    assert_true(
        reported(&l.errs, "ALMANAC_REDIS_PASSWORD and ALMANAC_REDIS_PASSWORD_FILE are both set"));
    assert_false(reported(&l.errs, "direct-value-unit"));
    unload(&l);
    unlink(empty);
    free(empty);
}

static void production_valid(void **state)
{
    struct loaded l;
    (void)state;
    production_env();
    load(&l);
    assert_true(l.ok);
    assert_true(l.cfg.production);
    assert_int_equal(l.errs.count, 0);
    unload(&l);
}

static void production_requires_secrets(void **state)
{
    struct loaded l;
    (void)state;
    production_env();
    unsetenv("ALMANAC_JWT_SECRET");
    unsetenv("ALMANAC_QDRANT_URL");
    load(&l);
    assert_false(l.ok);
    assert_int_equal(l.errs.count, 2);
    assert_true(reported(&l.errs, "ALMANAC_JWT_SECRET: required in production"));
    assert_true(reported(&l.errs, "ALMANAC_QDRANT_URL: required in production"));
    unload(&l);
}

static void production_deny_list(void **state)
{
    struct loaded l;
    (void)state;
    production_env();
    setenv("ALMANAC_JWT_SECRET", "change-me-in-production", 1);
    setenv("ALMANAC_EMBEDDINGS_API_KEY", "sk-dev-master-key", 1);
    setenv("ALMANAC_DATABASE_URL", "postgresql://almanac:postgres@db/almanac", 1);
    setenv("ALMANAC_REDIS_URL", "redis://:Password@redis:6379", 1);
    setenv("ALMANAC_QDRANT_API_KEY", "secret", 1);
    setenv("ALMANAC_QDRANT_URL", "https://qdrant:6333", 1);
    load(&l);
    assert_false(l.ok);
    assert_true(reported(&l.errs, "ALMANAC_JWT_SECRET: a known insecure default"));
    assert_true(reported(&l.errs, "ALMANAC_EMBEDDINGS_API_KEY: a known insecure default"));
    assert_true(reported(&l.errs, "ALMANAC_DATABASE_URL (its password)"));
    assert_true(reported(&l.errs, "ALMANAC_REDIS_URL (its password)"));
    assert_true(reported(&l.errs, "ALMANAC_QDRANT_API_KEY: a known insecure default"));
    /* change-me-in-production is also shorter than 32 bytes, postgres and Password are
     * shorter than 16 */
    assert_true(reported(&l.errs, "at least 32 bytes"));
    assert_true(reported(&l.errs, "ALMANAC_DATABASE_URL: must be at least 16 bytes"));
    assert_true(reported(&l.errs, "ALMANAC_REDIS_URL: must be at least 16 bytes"));
    assert_int_equal(l.errs.count, 8);
    unload(&l);
}

static void deny_list_in_development_is_allowed(void **state)
{
    struct loaded l;
    (void)state;
    setenv("ALMANAC_JWT_SECRET", "almanac-dev-jwt-secret-do-not-use-in-production", 1);
    load(&l);
    assert_true(l.ok);
    unload(&l);
}

static void deny_list_contents(void **state)
{
    (void)state;
    assert_true(alm_config_is_denied("change-me-in-production"));
    assert_true(alm_config_is_denied("SK-DEV-MASTER-KEY"));
    assert_true(alm_config_is_denied("password"));
    assert_true(alm_config_is_denied("postgres"));
    assert_true(alm_config_is_denied("secret"));
    assert_true(alm_config_is_denied("almanac-dev-password"));
    assert_false(alm_config_is_denied("a-long-random-value-8f3e"));
}

static void short_jwt_in_production(void **state)
{
    struct loaded l;
    (void)state;
    production_env();
    setenv("ALMANAC_JWT_SECRET", "only-20-bytes-long!!", 1);
    load(&l);
    assert_false(l.ok);
    assert_int_equal(l.errs.count, 1);
    assert_true(reported(&l.errs, "ALMANAC_JWT_SECRET: must be at least 32 bytes"));
    unload(&l);
}

static void cleartext_api_key(void **state)
{
    struct loaded l;
    (void)state;
    production_env();
    setenv("ALMANAC_EMBEDDINGS_URL", "http://127.0.0.1:4000/v1", 1);
    setenv("ALMANAC_EMBEDDINGS_API_KEY", "embed-key-unit-0123456789", 1);
    /* http://qdrant, a service name on the Compose network, and loopback are fine */
    load(&l);
    assert_true(l.ok);
    unload(&l);
    setenv("ALMANAC_QDRANT_URL", "http://qdrant.example.com:6333", 1);
    load(&l);
    /* another host over plain http: refused in production */
    assert_false(l.ok);
    assert_int_equal(l.errs.count, 1);
    assert_true(
        reported(&l.errs, "ALMANAC_QDRANT_URL: sends ALMANAC_QDRANT_API_KEY over plain http"));
    unload(&l);

    setenv("ALMANAC_ENV", "development", 1);
    load(&l);
    assert_true(l.ok);
    assert_true(reported(&l.warns, "ALMANAC_QDRANT_URL: sends ALMANAC_QDRANT_API_KEY"));
    unload(&l);
}

/* Database and Redis passwords in production: from the variable, its _FILE or the URL;
 * missing, short (under 16 bytes) and denied ones are refused, naming the source. */
static void production_passwords(void **state)
{
    struct loaded l;
    char path[] = "/tmp/almanac-unit-pw-XXXXXX";
    int fd;
    (void)state;

    production_env();
    setenv("ALMANAC_DATABASE_URL", "postgresql://almanac@db:5432/almanac", 1);
    setenv("ALMANAC_REDIS_URL", "redis://redis:6379/0", 1);
    load(&l);
    assert_false(l.ok);
    assert_int_equal(l.errs.count, 2);
    assert_true(reported(&l.errs, "ALMANAC_DATABASE_PASSWORD: required in production"));
    assert_true(reported(&l.errs, "ALMANAC_REDIS_PASSWORD: required in production"));
    unload(&l);

    setenv("ALMANAC_DATABASE_PASSWORD", "abc", 1);
    setenv("ALMANAC_REDIS_PASSWORD", "fifteen-bytes!!", 1);
    load(&l);
    assert_false(l.ok);
    assert_int_equal(l.errs.count, 2);
    assert_true(reported(&l.errs, "ALMANAC_DATABASE_PASSWORD: must be at least 16 bytes"));
    assert_true(reported(&l.errs, "ALMANAC_REDIS_PASSWORD: must be at least 16 bytes"));
    assert_false(reported_anywhere(&l, "fifteen-bytes!!"));
    unload(&l);

    /* exactly 16 bytes passes; a file holds one too */
    setenv("ALMANAC_DATABASE_PASSWORD", "sixteen-bytes-ok", 1);
    unsetenv("ALMANAC_REDIS_PASSWORD");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "redis-file-secret-0123\n", 23), 23);
    close(fd);
    setenv("ALMANAC_REDIS_PASSWORD_FILE", path, 1);
    load(&l);
    assert_true(l.ok);
    unload(&l);

    /* a short one in a file, a denied one in a variable */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "short\n", 6), 6);
    close(fd);
    setenv("ALMANAC_DATABASE_PASSWORD", "almanac-dev-password", 1);
    load(&l);
    assert_false(l.ok);
    assert_true(reported(&l.errs, "ALMANAC_REDIS_PASSWORD: must be at least 16 bytes"));
    assert_true(reported(&l.errs, "ALMANAC_DATABASE_PASSWORD: a known insecure default"));
    unload(&l);
    unlink(path);
}

/* Production calls Qdrant and the embeddings endpoint with a key unless they are on
 * loopback; the hashing embedder (no URL) needs none. */
static void production_keys_required(void **state)
{
    struct loaded l;
    (void)state;

    production_env();
    unsetenv("ALMANAC_QDRANT_API_KEY");
    setenv("ALMANAC_EMBEDDINGS_URL", "https://embed.example.com/v1", 1);
    load(&l);
    assert_false(l.ok);
    assert_int_equal(l.errs.count, 2);
    assert_true(reported(&l.errs, "ALMANAC_QDRANT_API_KEY: required in production when "
                                  "ALMANAC_QDRANT_URL is not on loopback"));
    assert_true(reported(&l.errs, "ALMANAC_EMBEDDINGS_API_KEY: required in production when "
                                  "ALMANAC_EMBEDDINGS_URL is not on loopback"));
    unload(&l);

    setenv("ALMANAC_QDRANT_URL", "http://127.0.0.1:6333", 1);
    setenv("ALMANAC_EMBEDDINGS_URL", "http://localhost:4000/v1", 1);
    load(&l);
    assert_true(l.ok);
    unload(&l);
}

static void unknown_names_warn(void **state)
{
    struct loaded l;
    (void)state;
    setenv("ALMANAC_LSITEN", "0.0.0.0:1", 1);
    setenv("ALMANAC_API_SERVICE_HOST", "10.0.0.1", 1); /* injected by Kubernetes */
    setenv("ALMANAC_JWT_SECRET_FILE", "", 1);          /* empty means unset */
    load(&l);
    assert_true(l.ok);
    assert_true(reported(&l.warns, "ALMANAC_LSITEN: not a known setting"));
    assert_false(reported_anywhere(&l, "ALMANAC_API_SERVICE_HOST"));
    unload(&l);
}

static void required_dependencies(void **state)
{
    struct loaded l;
    (void)state;
    setenv("ALMANAC_READY_REQUIRED", "postgres,redis", 1);
    load(&l);
    assert_true(l.ok);
    assert_true(alm_config_requires(&l.cfg, "postgres"));
    assert_true(alm_config_requires(&l.cfg, "redis"));
    assert_false(alm_config_requires(&l.cfg, "qdrant"));
    assert_false(alm_config_requires(&l.cfg, "post"));
    unload(&l);
    setenv("ALMANAC_READY_REQUIRED", "none", 1); /* readiness: up and not draining only */
    load(&l);
    assert_true(l.ok);
    assert_false(alm_config_requires(&l.cfg, "postgres"));
    assert_false(alm_config_requires(&l.cfg, "redis"));
    unload(&l);
}

static void booleans_are_parsed(void **state)
{
    struct loaded l;
    (void)state;
    load(&l);
    assert_true(l.ok);
    assert_false(l.cfg.ocr);
    assert_false(l.cfg.allow_signup);
    assert_false(l.cfg.trust_proxy);
    unload(&l);
    setenv("ALMANAC_OCR", "true", 1);
    setenv("ALMANAC_ALLOW_SIGNUP", "true", 1);
    setenv("ALMANAC_TRUST_PROXY", "false", 1);
    load(&l);
    assert_true(l.ok);
    assert_true(l.cfg.ocr);
    assert_true(l.cfg.allow_signup);
    assert_false(l.cfg.trust_proxy);
    unload(&l);
    setenv("ALMANAC_OCR", "yes", 1);
    setenv("ALMANAC_TRUST_PROXY", "TRUE", 1);
    load(&l);
    assert_false(l.ok);
    assert_int_equal(l.errs.count, 2);
    assert_true(reported(&l.errs, "ALMANAC_OCR: must be one of true|false"));
    assert_true(reported(&l.errs, "ALMANAC_TRUST_PROXY: must be one of true|false"));
    unload(&l);
}

static void table_is_complete(void **state)
{
    size_t n;
    const struct alm_setting *s = alm_config_settings(&n);
    (void)state;
    assert_true(n >= 20);
    for (size_t i = 0; i < n; i++) {
        assert_true(strncmp(s[i].name, "ALMANAC_", 8) == 0);
        assert_non_null(s[i].description);
        /* a secret never has a default: it would be a shipped credential */
        if (s[i].flags & ALM_SET_SECRET)
            assert_null(s[i].def);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(defaults_apply, clean_env),
        cmocka_unit_test_setup(required_missing_reported_together, clean_env),
        cmocka_unit_test_setup(types_are_checked, clean_env),
        cmocka_unit_test_setup(secret_from_file, clean_env),
        cmocka_unit_test_setup(secret_file_problems, clean_env),
        cmocka_unit_test_setup(production_valid, clean_env),
        cmocka_unit_test_setup(production_requires_secrets, clean_env),
        cmocka_unit_test_setup(production_deny_list, clean_env),
        cmocka_unit_test_setup(deny_list_in_development_is_allowed, clean_env),
        cmocka_unit_test(deny_list_contents),
        cmocka_unit_test_setup(short_jwt_in_production, clean_env),
        cmocka_unit_test_setup(production_passwords, clean_env),
        cmocka_unit_test_setup(production_keys_required, clean_env),
        cmocka_unit_test_setup(cleartext_api_key, clean_env),
        cmocka_unit_test_setup(unknown_names_warn, clean_env),
        cmocka_unit_test_setup(required_dependencies, clean_env),
        cmocka_unit_test_setup(booleans_are_parsed, clean_env),
        cmocka_unit_test(table_is_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
