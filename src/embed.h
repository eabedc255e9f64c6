/* SPDX-License-Identifier: Apache-2.0 */
/* embed.h: turning chunk and query text into dense vectors.
 *
 * Two implementations behind one interface:
 * - "openai": an OpenAI-compatible /v1/embeddings client (LiteLLM, Ollama, OpenAI, TEI)
 *   when ALMANAC_EMBEDDINGS_URL is set: batches, a per-request timeout, retries with
 *   exponential backoff and jitter on 429 and 5xx (honouring Retry-After), the API key
 *   as a bearer token. Semantic.
 * - "hashing": a built-in deterministic feature-hashing embedder (words and character
 *   n-grams, signed hashing, L2-normalised) used when no URL is set, so the system works
 *   offline. Lexical, not semantic: logs and /ready say so.
 * An embedder holds a connection and is used by one thread at a time: make one per
 * worker thread. */
#pragma once
#include "compat.h"
#include "config.h"
#include "err.h"

struct alm_embedder;

/* Returns a new embedder for cfg (the hashing one when no URL is set). */
struct alm_embedder *alm_embedder_new(const struct alm_config *cfg);
void alm_embedder_free(struct alm_embedder *e);
/* "hashing" or "openai". */
const char *alm_embedder_kind(const struct alm_embedder *e);
/* A description for logs and /ready ("hashing (lexical, 384 dimensions)", or the model). */
const char *alm_embedder_describe(const struct alm_embedder *e);
int alm_embedder_dim(const struct alm_embedder *e);
/* Embeds n texts into out (n * dim floats, L2-normalised), batching as configured.
 * deadline_ms (CLOCK_MONOTONIC, 0 = none) bounds the whole call including retries.
 * ALM_ERR_UPSTREAM for an answer that is not a valid embeddings reply (wrong count or
 * dimension), ALM_ERR_UNAVAILABLE / ALM_ERR_TIMEOUT when the endpoint is down or slow
 * after the retries, ALM_ERR_RATE_LIMITED when it kept answering 429. */
enum alm_err alm_embed(struct alm_embedder *e, const char *const *texts, size_t n, float *out,
                       int64_t deadline_ms, struct alm_errbuf *eb) ALM_MUSTCHECK;
/* Whether the endpoint answers: one request embedding one word, no retry, within
 * timeout_ms. ALM_OK for any answer but 429 and 5xx (and always for the hashing
 * embedder); otherwise ALM_ERR_UNAVAILABLE, ALM_ERR_RATE_LIMITED or ALM_ERR_TIMEOUT. The
 * worker asks when a job failed, to tell an endpoint that is down or hanging from a
 * failure of the job itself. */
enum alm_err alm_embedder_probe(struct alm_embedder *e, int timeout_ms,
                                struct alm_errbuf *eb) ALM_MUSTCHECK;
