/* SPDX-License-Identifier: Apache-2.0 */
/* auth.h: password hashing (Argon2id) and access tokens (JWT, HS256).
 *
 * Passwords are hashed with libsodium's crypto_pwhash_str (Argon2id, interactive
 * limits by default) and verified in constant time. Tokens are compact JWS with the
 * header {"alg":"HS256","typ":"JWT"} only: any other alg ("none" included) is refused,
 * the signature is checked in constant time before the claims are even parsed, and
 * exp/iat/sub/role are required. */
#pragma once
#include "compat.h"
#include "err.h"

#include <jansson.h>

/* Returns a new encoded hash (caller frees), or NULL when out of memory. */
char *alm_auth_hash_password(const char *password);
/* Whether password matches the encoded hash; false on a malformed hash. */
bool alm_auth_verify_password(const char *hash, const char *password);

struct alm_token_claims {
    char sub[64];  /* user id */
    char role[16]; /* "admin" or "user" */
    int64_t iat;   /* issued at, Unix seconds */
    int64_t exp;   /* expiry, Unix seconds */
};

/* Signs claims with key (at least 32 bytes recommended); returns a new string, or NULL
 * for claims that verification would refuse (empty or over-long sub, unknown role). */
char *alm_auth_token_sign(const struct alm_token_claims *claims, const char *key, size_t keylen);
/* Verifies token against key at time now (Unix seconds), allowing leeway_s of clock skew
 * on exp and iat. ALM_OK with claims filled, or ALM_ERR_UNAUTHORIZED with a short reason
 * in eb ("malformed token", "bad signature", "token expired", "unsupported algorithm",
 * ...) that is safe to show the client. */
enum alm_err alm_auth_token_verify(const char *token, const char *key, size_t keylen, int64_t now,
                                   int leeway_s, struct alm_token_claims *claims,
                                   struct alm_errbuf *eb) ALM_MUSTCHECK;
