/* SPDX-License-Identifier: Apache-2.0 */
/* Passwords (Argon2id) and access tokens (JWT HS256): round trips and every refusal. */
#include "unit.h"
#include "auth.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1700000000

static const char key[] = "0123456789abcdef0123456789abcdef-unit";

static int init_sodium(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

static void b64(const void *bin, size_t len, char *out, size_t n)
{
    sodium_bin2base64(out, n, bin, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* A token built by hand from JSON texts, signed with HS256 whatever its header says. */
static char *build(const char *header, const char *payload, const char *k)
{
    char h[1024], p[1024], sig[64], *msg;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;

    b64(header, strlen(header), h, sizeof(h));
    b64(payload, strlen(payload), p, sizeof(p));
    size_t size = strlen(h) + strlen(p) + sizeof(sig) + 2;
    msg = malloc(size);
    assert_non_null(msg);
    snprintf(msg, size, "%s.%s", h, p);
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)k, strlen(k));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, strlen(msg));
    crypto_auth_hmacsha256_final(&st, mac);
    b64(mac, sizeof(mac), sig, sizeof(sig));
    snprintf(msg + strlen(msg), size - strlen(msg), ".%s", sig);
    return msg;
}

static const char *const hs256 = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
static const char *const good_claims =
    "{\"sub\":\"u-42\",\"role\":\"user\",\"iat\":1699999000,\"exp\":1700003600}";

/* The reason a token is refused, or "ok". */
static const char *verdict(const char *token, const char *k, int64_t now, int leeway)
{
    static struct alm_errbuf eb;
    struct alm_token_claims c;
    enum alm_err err = alm_auth_token_verify(token, k, k ? strlen(k) : 0, now, leeway, &c, &eb);

    if (err == ALM_OK)
        return "ok";
    assert_int_equal(err, ALM_ERR_UNAUTHORIZED);
    /* nothing of a refused token is handed out */
    assert_string_equal(c.sub, "");
    return eb.msg;
}

static const char *verdict_of(const char *header, const char *payload)
{
    static char reason[256];
    char *t = build(header, payload, key);
    snprintf(reason, sizeof(reason), "%s", verdict(t, key, NOW, 0));
    free(t);
    return reason;
}

static void password_round_trip(void **state)
{
    char *h = alm_auth_hash_password("correct horse battery staple");
    (void)state;
    assert_non_null(h);
    assert_true(strncmp(h, "$argon2id$", 10) == 0);
    assert_true(alm_auth_verify_password(h, "correct horse battery staple"));
    assert_false(alm_auth_verify_password(h, "correct horse battery stapl"));
    assert_false(alm_auth_verify_password(h, ""));
    free(h);
}

static void password_malformed_hash(void **state)
{
    char long_hash[300];
    (void)state;
    assert_false(alm_auth_verify_password("", "x"));
    assert_false(alm_auth_verify_password("plaintext", "plaintext"));
    assert_false(alm_auth_verify_password("$argon2id$v=19$m=65536,t=2,p=1$garbage", "x"));
    memset(long_hash, 'a', sizeof(long_hash) - 1);
    long_hash[sizeof(long_hash) - 1] = '\0';
    assert_false(alm_auth_verify_password(long_hash, "x"));
    assert_false(alm_auth_verify_password(NULL, "x"));
}

static void token_round_trip(void **state)
{
    struct alm_token_claims in = {"u-42", "admin", NOW - 5, NOW + 3600}, out;
    struct alm_errbuf eb;
    char *t = alm_auth_token_sign(&in, key, strlen(key));
    (void)state;
    assert_non_null(t);
    /* the fixed header, encoded */
    assert_true(strncmp(t, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", 37) == 0);
    assert_int_equal(alm_auth_token_verify(t, key, strlen(key), NOW, 0, &out, &eb), ALM_OK);
    assert_string_equal(out.sub, "u-42");
    assert_string_equal(out.role, "admin");
    assert_int_equal(out.iat, NOW - 5);
    assert_int_equal(out.exp, NOW + 3600);
    free(t);
    /* a hand-built token verifies too, with or without typ */
    assert_string_equal(verdict_of(hs256, good_claims), "ok");
    assert_string_equal(verdict_of("{\"alg\":\"HS256\"}", good_claims), "ok");
}

static void sign_refuses_bad_claims(void **state)
{
    struct alm_token_claims c = {"", "user", NOW, NOW + 60};
    (void)state;
    assert_null(alm_auth_token_sign(&c, key, strlen(key)));
    snprintf(c.sub, sizeof(c.sub), "u-1");
    snprintf(c.role, sizeof(c.role), "root");
    assert_null(alm_auth_token_sign(&c, key, strlen(key)));
    snprintf(c.role, sizeof(c.role), "user");
    snprintf(c.sub, sizeof(c.sub), "\xff\xfe"); /* not UTF-8: JSON cannot carry it */
    assert_null(alm_auth_token_sign(&c, key, strlen(key)));
    memset(c.sub, 'a', sizeof(c.sub)); /* not terminated */
    assert_null(alm_auth_token_sign(&c, key, strlen(key)));
}

static void alg_none_refused(void **state)
{
    char h[128], p[256], t[512];
    (void)state;
    b64("{\"alg\":\"none\",\"typ\":\"JWT\"}", 26, h, sizeof(h));
    b64(good_claims, strlen(good_claims), p, sizeof(p));
    /* the classic form, with an empty signature */
    snprintf(t, sizeof(t), "%s.%s.", h, p);
    assert_string_equal(verdict(t, key, NOW, 0), "malformed token");
    snprintf(t, sizeof(t), "%s.%s", h, p);
    assert_string_equal(verdict(t, key, NOW, 0), "malformed token");
    /* and with a valid HS256 signature over it */
    assert_string_equal(verdict_of("{\"alg\":\"none\",\"typ\":\"JWT\"}", good_claims),
                        "unsupported algorithm");
    assert_string_equal(verdict_of("{\"alg\":\"None\"}", good_claims), "unsupported algorithm");
}

static void other_algs_refused(void **state)
{
    (void)state;
    assert_string_equal(verdict_of("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", good_claims),
                        "unsupported algorithm");
    assert_string_equal(verdict_of("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", good_claims),
                        "unsupported algorithm");
    assert_string_equal(verdict_of("{\"alg\":\"hs256\"}", good_claims), "unsupported algorithm");
    assert_string_equal(verdict_of("{\"alg\":\"HS256 \"}", good_claims), "unsupported algorithm");
    assert_string_equal(verdict_of("{\"typ\":\"JWT\"}", good_claims), "unsupported algorithm");
    assert_string_equal(verdict_of("{\"alg\":256}", good_claims), "unsupported algorithm");
}

static void header_rules(void **state)
{
    (void)state;
    assert_string_equal(verdict_of("{\"alg\":\"HS256\",\"typ\":\"JWS\"}", good_claims),
                        "malformed token");
    assert_string_equal(verdict_of("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", good_claims),
                        "malformed token");
    /* duplicate keys: two parsers could read two different algs */
    assert_string_equal(verdict_of("{\"alg\":\"HS256\",\"alg\":\"none\"}", good_claims),
                        "malformed token");
    assert_string_equal(verdict_of("[\"HS256\"]", good_claims), "malformed token");
    assert_string_equal(verdict_of("not json", good_claims), "malformed token");
}

static void modified_payload_refused(void **state)
{
    struct alm_token_claims in = {"u-42", "user", NOW, NOW + 3600};
    char *t = alm_auth_token_sign(&in, key, strlen(key));
    char *dot1, *dot2, p[256], forged[1024];
    unsigned char json[256];
    size_t n;
    (void)state;
    assert_non_null(t);
    dot1 = strchr(t, '.');
    dot2 = strchr(dot1 + 1, '.');
    assert_int_equal(sodium_base642bin(json, sizeof(json) - 1, dot1 + 1, (size_t)(dot2 - dot1 - 1),
                                       NULL, &n, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                     0);
    json[n] = '\0';
    assert_non_null(strstr((char *)json, "\"role\":\"user\""));
    {
        char edited[300];
        char *at = strstr((char *)json, "\"user\"");
        snprintf(edited, sizeof(edited), "%.*s\"admin\"%s", (int)(at - (char *)json), (char *)json,
                 at + 6);
        b64(edited, strlen(edited), p, sizeof(p));
    }
    snprintf(forged, sizeof(forged), "%.*s.%s%s", (int)(dot1 - t), t, p, dot2);
    assert_string_equal(verdict(forged, key, NOW, 0), "bad signature");
    /* a flipped signature bit */
    t[strlen(t) - 2] = t[strlen(t) - 2] == 'A' ? 'B' : 'A';
    assert_string_equal(verdict(t, key, NOW, 0), "bad signature");
    free(t);
}

static void wrong_key_refused(void **state)
{
    char *t = build(hs256, good_claims, key);
    (void)state;
    assert_string_equal(verdict(t, "another-key-0123456789abcdef012345", NOW, 0), "bad signature");
    /* a key that is a prefix of the real one */
    assert_string_equal(verdict(t, "0123456789abcdef", NOW, 0), "bad signature");
    /* an empty key never verifies anything */
    assert_string_equal(verdict(t, "", NOW, 0), "bad signature");
    free(t);
}

static void expiry_and_leeway(void **state)
{
    char *t = build(hs256, good_claims, key); /* iat 1699999000, exp 1700003600 */
    (void)state;
    assert_string_equal(verdict(t, key, 1700003599, 0), "ok");
    assert_string_equal(verdict(t, key, 1700003600, 0), "token expired");
    assert_string_equal(verdict(t, key, 1700003629, 30), "ok");
    assert_string_equal(verdict(t, key, 1700003630, 30), "token expired");
    assert_string_equal(verdict(t, key, 1699999000, 0), "ok");
    assert_string_equal(verdict(t, key, 1699998999, 0), "token not yet valid");
    assert_string_equal(verdict(t, key, 1699998970, 30), "ok");
    assert_string_equal(verdict(t, key, 1699998969, 30), "token not yet valid");
    /* a negative leeway counts as none */
    assert_string_equal(verdict(t, key, 1700003600, -100), "token expired");
    /* extreme clocks and claims do not overflow into acceptance */
    assert_string_equal(verdict(t, key, INT64_MAX, 1000), "token expired");
    assert_string_equal(verdict(t, key, INT64_MIN, 1000), "token not yet valid");
    free(t);
    t = build(hs256,
              "{\"sub\":\"a\",\"role\":\"user\",\"iat\":-9223372036854775808,"
              "\"exp\":-9223372036854775807}",
              key);
    assert_string_equal(verdict(t, key, NOW, 2147483647), "token expired");
    free(t);
}

static void invalid_claims(void **state)
{
    char sub64[160];
    const char *bad[] = {
        "{\"role\":\"user\",\"iat\":1,\"exp\":1700003600}",
        "{\"sub\":\"u\",\"role\":\"root\",\"iat\":1,\"exp\":1700003600}",
        "{\"sub\":\"u\",\"role\":\"Admin\",\"iat\":1,\"exp\":1700003600}",
        "{\"sub\":\"\",\"role\":\"user\",\"iat\":1,\"exp\":1700003600}",
        "{\"sub\":42,\"role\":\"user\",\"iat\":1,\"exp\":1700003600}",
        "{\"sub\":\"u\",\"role\":\"user\",\"exp\":1700003600}",
        "{\"sub\":\"u\",\"role\":\"user\",\"iat\":1}",
        "{\"sub\":\"u\",\"role\":\"user\",\"iat\":1,\"exp\":\"1700003600\"}",
        "{\"sub\":\"u\",\"role\":\"user\",\"iat\":1,\"exp\":1700003600.0}",
        "{\"sub\":\"u\",\"role\":\"user\",\"iat\":1,\"exp\":99999999999999999999}",
        "{\"sub\":\"u\\u0000x\",\"role\":\"user\",\"iat\":1,\"exp\":1700003600}",
        "{\"sub\":\"u\",\"role\":\"user\",\"role\":\"admin\",\"iat\":1,\"exp\":1700003600}",
        "[\"sub\",\"u\"]",
        "{\"sub\":\"u\"",
    };
    (void)state;
    for (size_t i = 0; i < ALM_ARRAY_SIZE(bad); i++)
        assert_string_equal(verdict_of(hs256, bad[i]), "invalid claims");
    snprintf(sub64, sizeof(sub64),
             "{\"sub\":\"%064d\",\"role\":\"user\",\"iat\":1,\"exp\":1700003600}", 7);
    assert_string_equal(verdict_of(hs256, sub64), "invalid claims");
    snprintf(sub64, sizeof(sub64),
             "{\"sub\":\"%063d\",\"role\":\"user\",\"iat\":1,\"exp\":1700003600}", 7);
    assert_string_equal(verdict_of(hs256, sub64), "ok");
}

static void truncated_and_garbage(void **state)
{
    char *t = build(hs256, good_claims, key);
    size_t n = strlen(t);
    char big[5000];
    const char *garbage[] = {"",
                             "Bearer x",
                             "...",
                             "a.b.c",
                             "eyJ.eyJ.abc",
                             "!!!.???.###",
                             "aGVsbG8=.aGVsbG8=.aGVsbG8=",
                             "a b.c d.e f"};
    (void)state;
    /* every proper prefix is refused */
    for (size_t i = 0; i < n; i++) {
        char *p = strndup(t, i);
        assert_string_not_equal(verdict(p, key, NOW, 0), "ok");
        free(p);
    }
    for (size_t i = 0; i < ALM_ARRAY_SIZE(garbage); i++)
        assert_string_equal(verdict(garbage[i], key, NOW, 0), "malformed token");
    assert_string_equal(verdict(NULL, key, NOW, 0), "malformed token");
    /* characters outside base64url, padding included */
    {
        char *p = malloc(n + 2);
        const char *bad = "=+/ \n%";
        for (const char *b = bad; *b; b++) {
            snprintf(p, n + 2, "%s%c", t, *b);
            assert_string_equal(verdict(p, key, NOW, 0), "malformed token");
            memcpy(p, t, n + 1);
            p[5] = *b;
            assert_string_equal(verdict(p, key, NOW, 0), "malformed token");
        }
        free(p);
    }
    /* over-long tokens, before anything is decoded */
    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[10] = big[20] = '.';
    assert_string_equal(verdict(big, key, NOW, 0), "malformed token");
    free(t);
}

static void part_count_variants(void **state)
{
    char *t = build(hs256, good_claims, key);
    char buf[1024];
    const char *dot1 = strchr(t, '.'), *dot2 = strrchr(t, '.');
    (void)state;
    snprintf(buf, sizeof(buf), "%s.", t);
    assert_string_equal(verdict(buf, key, NOW, 0), "malformed token");
    snprintf(buf, sizeof(buf), "%s.%s", t, dot2 + 1);
    assert_string_equal(verdict(buf, key, NOW, 0), "malformed token");
    snprintf(buf, sizeof(buf), "%.*s", (int)(dot2 - t), t);
    assert_string_equal(verdict(buf, key, NOW, 0), "malformed token");
    snprintf(buf, sizeof(buf), "%.*s.%s", (int)(dot1 - t), t, t);
    assert_string_equal(verdict(buf, key, NOW, 0), "malformed token");
    snprintf(buf, sizeof(buf), "%.*s%s", (int)(dot1 - t + 1), t, dot2);
    assert_string_equal(verdict(buf, key, NOW, 0), "malformed token");
    snprintf(buf, sizeof(buf), "%s", dot1);
    assert_string_equal(verdict(buf, key, NOW, 0), "malformed token");
    /* a signature of the wrong length */
    snprintf(buf, sizeof(buf), "%.*sAAAA", (int)(dot2 - t + 1), t);
    assert_string_equal(verdict(buf, key, NOW, 0), "bad signature");
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(password_round_trip), cmocka_unit_test(password_malformed_hash),
        cmocka_unit_test(token_round_trip),    cmocka_unit_test(sign_refuses_bad_claims),
        cmocka_unit_test(alg_none_refused),    cmocka_unit_test(other_algs_refused),
        cmocka_unit_test(header_rules),        cmocka_unit_test(modified_payload_refused),
        cmocka_unit_test(wrong_key_refused),   cmocka_unit_test(expiry_and_leeway),
        cmocka_unit_test(invalid_claims),      cmocka_unit_test(truncated_and_garbage),
        cmocka_unit_test(part_count_variants),
    };
    return cmocka_run_group_tests(tests, init_sodium, NULL);
}
