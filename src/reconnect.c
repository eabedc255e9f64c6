/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "reconnect.h"
#include "db.h"
#include "redis.h"
#include "schema.h"

enum alm_reconnect_down alm_reconnect(const struct alm_config *cfg, const char *app_name,
                                      int redis_timeout_ms,
                                      enum alm_err (*setup)(redisContext *c, struct alm_errbuf *eb),
                                      redisContext **redis, PGconn **pg, struct alm_errbuf *eb)
{
    if (*redis && (*redis)->err) {
        redisFree(*redis);
        *redis = NULL;
    }
    if (!*redis) {
        *redis = alm_redis_connect(cfg, redis_timeout_ms, eb);
        if (*redis && setup && setup(*redis, eb)) {
            redisFree(*redis);
            *redis = NULL;
        }
        if (!*redis)
            return ALM_RECONNECT_REDIS_DOWN;
    }
    if (*pg && !alm_db_reusable(*pg)) {
        PQfinish(*pg);
        *pg = NULL;
    }
    if (!*pg) {
        *pg = alm_db_connect(cfg, app_name, (int)cfg->db_timeout_ms, eb);
        if (!*pg)
            return ALM_RECONNECT_DB_DOWN;
        if (alm_schema_require_current(*pg, (int)cfg->db_timeout_ms, eb)) {
            PQfinish(*pg);
            *pg = NULL;
            return ALM_RECONNECT_SCHEMA_OLD;
        }
    }
    return ALM_RECONNECT_UP;
}
