/* SPDX-License-Identifier: Apache-2.0 */
/* checks.h: the dependency checks of /ready: PostgreSQL, Redis and Qdrant.
 *
 * Each check keeps one dedicated connection for its whole life and reconnects with
 * exponential backoff after a failure, so probes never open a connection each and a
 * dead dependency is not hammered. */
#pragma once
#include "compat.h"
#include "config.h"
#include "health.h"

#include <stdatomic.h>

/* Adds the PostgreSQL, Redis and Qdrant checks for cfg to h (which borrows cfg for its
 * whole life). Qdrant unset (development only) is added as not configured. */
void alm_checks_add_dependencies(struct alm_health *h, const struct alm_config *cfg);
/* Adds the "schema" check: passes when the applied schema is at least the version this
 * binary needs, and publishes the version it read into *version for request gating. */
/* The qdrant_collection check: the collection exists with ALMANAC_EMBEDDINGS_DIM cosine
 * vectors. With create (the worker) a missing one is created; without (the api) it warns. */
void alm_checks_add_collection(struct alm_health *h, const struct alm_config *cfg, bool create);
void alm_checks_add_schema(struct alm_health *h, const struct alm_config *cfg, atomic_int *version);
