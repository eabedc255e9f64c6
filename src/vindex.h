/* SPDX-License-Identifier: Apache-2.0 */
/* vindex.h: which Qdrant collection holds the vectors, and the one being built.
 *
 * Moving to another embedding model or dimension is a new collection, filled while the
 * current one serves, then switched to (docs/backup-restore.md). The table
 * vector_collections names them: no 'active' row means the settings
 * (ALMANAC_QDRANT_COLLECTION, _EMBEDDINGS_MODEL, _EMBEDDINGS_DIM). The api searches the
 * active one; workers write to the active one and to the building one. */
#pragma once
#include "compat.h"
#include "config.h"
#include "embed.h"
#include "err.h"

#include <libpq-fe.h>

struct alm_vindex_side {
    char name[208];
    char model[256];
    int dim;
};

struct alm_vindex {
    struct alm_vindex_side active;
    bool building_set;
    struct alm_vindex_side building;
};

/* Reads the table; the active side defaults to cfg's. */
enum alm_err alm_vindex_load(PGconn *pg, int timeout_ms, const struct alm_config *cfg,
                             struct alm_vindex *v, struct alm_errbuf *eb) ALM_MUSTCHECK;
/* True when side embeds as cfg's embedder does (same model and dimension). */
bool alm_vindex_side_is_configured(const struct alm_config *cfg, const struct alm_vindex_side *s);
/* A new embedder for side: cfg's endpoint and limits with side's model and dimension. */
struct alm_embedder *alm_vindex_embedder(const struct alm_config *cfg,
                                         const struct alm_vindex_side *s);
/* True when name may name a collection (1..200 of [A-Za-z0-9_-]). */
bool alm_vindex_name_ok(const char *name);
