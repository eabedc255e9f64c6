/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "auth.h"
#include "mem.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* A real token is about 250 bytes; the cap bounds the work an anonymous client causes. */
#define TOKEN_MAX 4096
#define B64       sodium_base64_VARIANT_URLSAFE_NO_PADDING
#define SUB_MAX   63 /* claims.sub holds it with its NUL */

_Static_assert(sizeof(((struct alm_token_claims *)NULL)->sub) == SUB_MAX + 1, "sub size");

/* The only header we issue or accept, already encoded. */
static const char header_json[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

char *alm_auth_hash_password(const char *password)
{
    char *out = alm_xmalloc(crypto_pwhash_STRBYTES);

    /* Fails only when the 64 MiB working area cannot be allocated. */
    if (crypto_pwhash_str(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

bool alm_auth_verify_password(const char *hash, const char *password)
{
    /* libsodium reads hash as a C string; anything longer than it writes is not its own. */
    if (!hash || !password || strnlen(hash, crypto_pwhash_STRBYTES) >= crypto_pwhash_STRBYTES)
        return false;
    return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

/* ------------------------------------------------------------------------- tokens */

static void hmac(const char *key, size_t keylen, const char *msg, size_t len,
                 unsigned char mac[crypto_auth_hmacsha256_BYTES])
{
    crypto_auth_hmacsha256_state st;

    crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, keylen);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof(st));
}

static enum alm_err append_b64(struct alm_buf *b, const void *bin, size_t len)
{
    size_t n = sodium_base64_ENCODED_LEN(len, B64);
    char *tmp = alm_xmalloc(n);
    enum alm_err err;

    sodium_bin2base64(tmp, n, bin, len, B64);
    err = alm_buf_append(b, tmp, strlen(tmp));
    free(tmp);
    return err;
}

/* The rules on claims shared by signing and verifying, so that whatever is signed verifies. */
static bool valid_sub(const char *s, size_t len)
{
    return len >= 1 && len <= SUB_MAX && !memchr(s, '\0', len);
}

static bool valid_role(const char *s, size_t len)
{
    return (len == 5 && memcmp(s, "admin", 5) == 0) || (len == 4 && memcmp(s, "user", 4) == 0);
}

char *alm_auth_token_sign(const struct alm_token_claims *claims, const char *key, size_t keylen)
{
    size_t sublen = strnlen(claims->sub, sizeof(claims->sub));
    size_t rolelen = strnlen(claims->role, sizeof(claims->role));
    struct alm_buf b = ALM_BUF_INIT(0);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    json_t *payload = NULL;
    char *text = NULL, *token = NULL;

    if (!valid_sub(claims->sub, sublen) || !valid_role(claims->role, rolelen))
        goto out;
    /* json_pack refuses a sub that is not UTF-8: such a token would not verify either. */
    payload =
        json_pack("{s:s#, s:s#, s:I, s:I}", "sub", claims->sub, (int)sublen, "role", claims->role,
                  (int)rolelen, "iat", (json_int_t)claims->iat, "exp", (json_int_t)claims->exp);
    if (!payload)
        goto out;
    text = json_dumps(payload, JSON_COMPACT);
    if (!text)
        goto out;
    if (append_b64(&b, header_json, strlen(header_json)) || alm_buf_append(&b, ".", 1) ||
        append_b64(&b, text, strlen(text)))
        goto out;
    hmac(key, keylen, b.data, b.len, mac);
    if (alm_buf_append(&b, ".", 1) || append_b64(&b, mac, sizeof(mac)))
        goto out;
    token = alm_buf_detach(&b, NULL);
out:
    alm_buf_release(&b);
    free(text);
    json_decref(payload);
    return token;
}

/* Decodes a base64url part (no padding, canonical: libsodium refuses non-zero unused bits)
 * and parses it as a JSON object with no duplicate keys. */
static json_t *decode_object(const char *part, size_t len)
{
    unsigned char bin[TOKEN_MAX];
    size_t binlen;
    json_t *v;

    if (sodium_base642bin(bin, sizeof(bin), part, len, NULL, &binlen, NULL, B64) != 0)
        return NULL;
    v = json_loadb((const char *)bin, binlen, JSON_REJECT_DUPLICATES, NULL);
    if (v && !json_is_object(v)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

/* Splits token into its three parts, each non-empty and of base64url characters only. */
static bool split(const char *token, const char *part[3], size_t len[3])
{
    size_t total, k = 0;

    if (!token)
        return false;
    total = strnlen(token, TOKEN_MAX + 1);
    if (total > TOKEN_MAX)
        return false;
    part[0] = token;
    for (size_t i = 0; i < total; i++) {
        unsigned char c = (unsigned char)token[i];
        if (c == '.') {
            if (k == 2)
                return false;
            len[k] = (size_t)(token + i - part[k]);
            part[++k] = token + i + 1;
        } else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_')) {
            return false;
        }
    }
    if (k != 2)
        return false;
    len[2] = (size_t)(token + total - part[2]);
    return len[0] && len[1] && len[2];
}

static bool string_is(const json_t *v, const char *want)
{
    size_t n = strlen(want);
    return json_is_string(v) && json_string_length(v) == n &&
           memcmp(json_string_value(v), want, n) == 0;
}

/* NULL when the header is acceptable, or the reason it is not. */
static const char *check_header(const char *part, size_t len)
{
    json_t *h = decode_object(part, len);
    const json_t *typ;
    const char *why = NULL;

    if (!h)
        return "malformed token";
    typ = json_object_get(h, "typ");
    if (!string_is(json_object_get(h, "alg"), "HS256"))
        why = "unsupported algorithm";
    else if ((typ && !string_is(typ, "JWT")) || json_object_get(h, "crit"))
        why = "malformed token"; /* extensions we would have to understand: none are */
    json_decref(h);
    return why;
}

static bool check_signature(const char *token, const char *sig, size_t siglen, const char *key,
                            size_t keylen)
{
    unsigned char want[crypto_auth_hmacsha256_BYTES], got[crypto_auth_hmacsha256_BYTES];
    size_t gotlen;

    /* An empty key would let anyone sign: fail closed rather than trust it. */
    if (!key || keylen == 0)
        return false;
    if (sodium_base642bin(got, sizeof(got), sig, siglen, NULL, &gotlen, NULL, B64) != 0 ||
        gotlen != sizeof(got))
        return false;
    hmac(key, keylen, token, (size_t)(sig - 1 - token), want);
    return sodium_memcmp(want, got, sizeof(want)) == 0;
}

static bool get_int(const json_t *obj, const char *name, int64_t *out)
{
    const json_t *v = json_object_get(obj, name);

    if (!json_is_integer(v))
        return false;
    *out = (int64_t)json_integer_value(v);
    return true;
}

static bool read_claims(const char *part, size_t len, struct alm_token_claims *c)
{
    json_t *p = decode_object(part, len);
    const json_t *sub, *role;
    bool ok = false;

    if (!p)
        return false;
    sub = json_object_get(p, "sub");
    role = json_object_get(p, "role");
    if (!json_is_string(sub) || !valid_sub(json_string_value(sub), json_string_length(sub)) ||
        !json_is_string(role) || !valid_role(json_string_value(role), json_string_length(role)) ||
        !get_int(p, "iat", &c->iat) || !get_int(p, "exp", &c->exp))
        goto out;
    memcpy(c->sub, json_string_value(sub), json_string_length(sub) + 1);
    memcpy(c->role, json_string_value(role), json_string_length(role) + 1);
    ok = true;
out:
    json_decref(p);
    return ok;
}

/* b - a for a <= b, exact even where the signed subtraction would overflow. */
static uint64_t distance(int64_t a, int64_t b)
{
    return (uint64_t)b - (uint64_t)a;
}

enum alm_err alm_auth_token_verify(const char *token, const char *key, size_t keylen, int64_t now,
                                   int leeway_s, struct alm_token_claims *claims,
                                   struct alm_errbuf *eb)
{
    const char *part[3];
    size_t len[3];
    const char *why;
    struct alm_token_claims c;
    uint64_t skew = leeway_s > 0 ? (uint64_t)leeway_s : 0;

    memset(claims, 0, sizeof(*claims));
    memset(&c, 0, sizeof(c));
    if (!split(token, part, len))
        return alm_fail(eb, ALM_ERR_UNAUTHORIZED, "malformed token");
    why = check_header(part[0], len[0]);
    if (why)
        return alm_fail(eb, ALM_ERR_UNAUTHORIZED, "%s", why);
    if (!check_signature(token, part[2], len[2], key, keylen))
        return alm_fail(eb, ALM_ERR_UNAUTHORIZED, "bad signature");
    if (!read_claims(part[1], len[1], &c))
        return alm_fail(eb, ALM_ERR_UNAUTHORIZED, "invalid claims");
    if (c.exp <= now && distance(c.exp, now) >= skew)
        return alm_fail(eb, ALM_ERR_UNAUTHORIZED, "token expired");
    if (c.iat > now && distance(now, c.iat) > skew)
        return alm_fail(eb, ALM_ERR_UNAUTHORIZED, "token not yet valid");
    *claims = c;
    return ALM_OK;
}
