/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_jwt.c: token verification against arbitrary input, and sign/verify round trips.
 *
 * Each input is verified as a token with a fixed key and clock: whatever it is, the
 * answer is ALM_OK with well-formed claims or ALM_ERR_UNAUTHORIZED with a reason. A
 * short input also becomes claims (its bytes as the sub) that are signed: the token must
 * verify to the same claims, and fail with another key. Invariants are checked with
 * abort(), so that libFuzzer reports a violation like a crash. */
#include "compat.h"
#include "auth.h"
#include "text.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW    1700000000
#define LEEWAY 30

static const char key[] = "fuzz-jwt-key-0123456789abcdef0123";
static const char other_key[] = "fuzz-jwt-key-0123456789abcdef0124";

static void fail(const char *what)
{
    fprintf(stderr, "invariant broken: %s\n", what);
    abort();
}

static void check_claims(const struct alm_token_claims *c)
{
    size_t sublen = strnlen(c->sub, sizeof(c->sub));

    if (sublen == 0 || sublen == sizeof(c->sub))
        fail("sub empty or unterminated");
    if (strcmp(c->role, "admin") != 0 && strcmp(c->role, "user") != 0)
        fail("role neither admin nor user");
    if (c->exp <= NOW - LEEWAY)
        fail("an expired token verified");
    if (c->iat > NOW + LEEWAY)
        fail("a token from the future verified");
}

static void verify_input(const char *text)
{
    struct alm_token_claims c;
    struct alm_errbuf eb = {{0}};
    enum alm_err err = alm_auth_token_verify(text, key, strlen(key), NOW, LEEWAY, &c, &eb);

    if (err == ALM_OK) {
        check_claims(&c);
        return;
    }
    if (err != ALM_ERR_UNAUTHORIZED)
        fail("verify failed with another error than unauthorized");
    if (eb.msg[0] == '\0')
        fail("a refusal without a reason");
    if (c.sub[0] != '\0' || c.role[0] != '\0')
        fail("claims left filled on a refusal");
}

static void round_trip(const uint8_t *data, size_t size)
{
    struct alm_token_claims in, out;
    struct alm_errbuf eb;
    size_t sublen = size - 1 < sizeof(in.sub) - 1 ? size - 1 : sizeof(in.sub) - 1;
    char *token;

    memset(&in, 0, sizeof(in));
    memcpy(in.sub, data + 1, sublen);
    snprintf(in.role, sizeof(in.role), "%s", data[0] & 1 ? "admin" : "user");
    in.iat = NOW - (data[0] >> 1);
    in.exp = NOW + 1 + data[0];
    sublen = strlen(in.sub); /* up to an embedded NUL */
    token = alm_auth_token_sign(&in, key, strlen(key));
    if (!token) {
        /* only claims that no token could carry are refused */
        if (sublen != 0 && alm_text_valid_utf8(in.sub, sublen))
            fail("signing refused valid claims");
        return;
    }
    if (alm_auth_token_verify(token, key, strlen(key), NOW, LEEWAY, &out, &eb) != ALM_OK)
        fail("a freshly signed token does not verify");
    if (strcmp(in.sub, out.sub) != 0 || strcmp(in.role, out.role) != 0 || in.iat != out.iat ||
        in.exp != out.exp)
        fail("claims changed in the round trip");
    if (alm_auth_token_verify(token, other_key, strlen(other_key), NOW, LEEWAY, &out, &eb) !=
            ALM_ERR_UNAUTHORIZED ||
        strcmp(eb.msg, "bad signature") != 0)
        fail("a token verified with another key");
    free(token);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    char *text;

    if (!ready) {
        if (sodium_init() < 0)
            abort();
        ready = true;
    }
    text = malloc(size + 1);
    if (!text)
        abort();
    memcpy(text, data, size);
    text[size] = '\0'; /* a C string: everything after an embedded NUL is ignored */
    verify_input(text);
    free(text);
    if (size >= 1 && size <= 65)
        round_trip(data, size);
    return 0;
}
