/* SPDX-License-Identifier: Apache-2.0 */
/* routes.c: the api's route table, one row per endpoint; the handlers live in the
 * file of their resource. */
#include "compat.h"
#include "handlers.h"
#include "probes.h"

static const struct alm_route routes[] = {
    ALM_HEALTH_ROUTES,
    {"GET", "/health/workers", alm_api_health_workers, ALM_ROUTE_PROBE},
    {"GET", "/health/queues", alm_api_health_queues, ALM_ROUTE_PROBE},
    {"GET", "/api/v1/admin/workers", alm_api_admin_workers, 0},
    {"GET", "/api/v1/admin/queues", alm_api_admin_queues, 0},
    {"POST", "/api/v1/admin/queues/retry-dead", alm_api_admin_retry_dead, ALM_ROUTE_AUTH},
    {"GET", "/api/v1/admin/reindex", alm_api_admin_reindex, 0},
    {"POST", "/api/v1/auth/login", alm_api_login, 0},
    {"POST", "/api/v1/auth/signup", alm_api_signup, 0},
    {"GET", "/api/v1/users/me", alm_api_me, 0},
    {"GET", "/api/v1/admin/users", alm_api_users_list, 0},
    {"POST", "/api/v1/admin/users", alm_api_users_create, ALM_ROUTE_AUTH},
    {"PATCH", "/api/v1/admin/users/{id}", alm_api_users_update, ALM_ROUTE_AUTH},
    {"POST", "/api/v1/knowledge-bases", alm_api_kbs_create, ALM_ROUTE_AUTH},
    {"GET", "/api/v1/knowledge-bases", alm_api_kbs_list, 0},
    {"GET", "/api/v1/knowledge-bases/{id}", alm_api_kbs_get, 0},
    {"PATCH", "/api/v1/knowledge-bases/{id}", alm_api_kbs_update, ALM_ROUTE_AUTH},
    {"DELETE", "/api/v1/knowledge-bases/{id}", alm_api_kbs_delete, 0},
    {"POST", "/api/v1/knowledge-bases/{id}/documents", alm_api_docs_upload,
     ALM_ROUTE_BODY | ALM_ROUTE_KB},
    {"GET", "/api/v1/knowledge-bases/{id}/documents", alm_api_docs_list, 0},
    {"GET", "/api/v1/documents/{id}", alm_api_docs_get, 0},
    {"DELETE", "/api/v1/documents/{id}", alm_api_docs_delete, 0},
    {"POST", "/api/v1/documents/{id}/reprocess", alm_api_docs_reprocess, ALM_ROUTE_AUTH},
    {"GET", "/api/v1/documents/{id}/content", alm_api_docs_content, 0},
    {"GET", "/api/v1/documents/{id}/file", alm_api_docs_file, 0},
    {"POST", "/api/v1/search", alm_api_search, ALM_ROUTE_AUTH},
    {"POST", "/api/v1/answers", alm_api_answers, ALM_ROUTE_AUTH},
    {"GET", "/api/v1/conversations", alm_api_conversations_list, 0},
    {"GET", "/api/v1/conversations/{id}", alm_api_conversations_get, 0},
    {"PATCH", "/api/v1/conversations/{id}", alm_api_conversations_update, ALM_ROUTE_AUTH},
    {"DELETE", "/api/v1/conversations/{id}", alm_api_conversations_delete, 0},
};

const struct alm_route *alm_api_routes(size_t *n)
{
    *n = ALM_ARRAY_SIZE(routes);
    return routes;
}
