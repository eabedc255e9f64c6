/* SPDX-License-Identifier: Apache-2.0 */
/* vindex.c: the active and the building vector collection (vector_collections). */
#include "compat.h"
#include "vindex.h"
#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void side_set(struct alm_vindex_side *s, const char *name, const char *model, int dim)
{
    snprintf(s->name, sizeof(s->name), "%s", name ? name : "");
    snprintf(s->model, sizeof(s->model), "%s", model ? model : "");
    s->dim = dim;
}

enum alm_err alm_vindex_load(PGconn *pg, int timeout_ms, const struct alm_config *cfg,
                             struct alm_vindex *v, struct alm_errbuf *eb)
{
    PGresult *res = NULL;
    enum alm_err err;

    memset(v, 0, sizeof(*v));
    side_set(&v->active, cfg->qdrant_collection, cfg->embeddings_model, (int)cfg->embeddings_dim);
    err =
        alm_db_query(pg, timeout_ms, "SELECT name, model, dimension, state FROM vector_collections",
                     0, NULL, &res, eb);
    for (int i = 0; !err && i < PQntuples(res); i++) {
        bool active = strcmp(PQgetvalue(res, i, 3), "active") == 0;
        side_set(active ? &v->active : &v->building, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
                 (int)strtol(PQgetvalue(res, i, 2), NULL, 10));
        if (!active)
            v->building_set = true;
    }
    PQclear(res);
    return err;
}

bool alm_vindex_side_is_configured(const struct alm_config *cfg, const struct alm_vindex_side *s)
{
    const char *model = cfg->embeddings_model ? cfg->embeddings_model : "";

    return s->dim == (int)cfg->embeddings_dim && strcmp(s->model, model) == 0;
}

struct alm_embedder *alm_vindex_embedder(const struct alm_config *cfg,
                                         const struct alm_vindex_side *s)
{
    struct alm_config c = *cfg; /* a shallow copy: alm_embedder_new copies what it keeps */
    char model[sizeof(s->model)];

    memcpy(model, s->model, sizeof(model));
    c.embeddings_model = model;
    c.embeddings_dim = s->dim;
    return alm_embedder_new(&c);
}

bool alm_vindex_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n < 1 || n > 200)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}
