/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "router.h"

#include <string.h>

/* Matches one pattern; fills params on success. */
static bool match_path(const char *pattern, const char *path, struct alm_route_match *m)
{
    const char *p = pattern, *s = path;

    m->nparams = 0;
    while (*p && *s) {
        if (*p == '{') {
            size_t seg = strcspn(s, "/");
            const char *close = strchr(p, '}');
            if (!close || seg == 0 || seg >= ALM_ROUTE_PARAM_MAX ||
                m->nparams >= ALM_ROUTE_MAX_PARAMS)
                return false;
            memcpy(m->params[m->nparams], s, seg);
            m->params[m->nparams++][seg] = '\0';
            p = close + 1;
            s += seg;
            continue;
        }
        if (*p != *s)
            return false;
        p++;
        s++;
    }
    return *p == '\0' && *s == '\0';
}

void alm_route_find(const struct alm_route *routes, size_t n, const char *method, const char *path,
                    struct alm_route_match *m)
{
    memset(m, 0, sizeof(*m));
    if (strcmp(method, "HEAD") == 0)
        method = "GET";
    for (size_t i = 0; i < n; i++) {
        struct alm_route_match tmp;
        if (!match_path(routes[i].pattern, path, &tmp))
            continue;
        if (strcmp(routes[i].method, method) != 0) {
            m->method_mismatch = true;
            continue;
        }
        *m = tmp;
        m->route = &routes[i];
        m->method_mismatch = false;
        return;
    }
}
