/* SPDX-License-Identifier: Apache-2.0 */
/* Streaming documents.original out of PostgreSQL: substring() of a bytea stored EXTERNAL
 * (uncompressed, see its migration) reads only the TOAST chunks of that slice. */
#include "compat.h"
#include "docfile.h"
#include "db.h"
#include "sandbox.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define SLICE (1 << 20)

static bool write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static enum alm_err copy_slices(PGconn *pg, int timeout_ms, const char *ids, long long total,
                                int fd, struct alm_errbuf *eb)
{
    for (long long at = 0; at < total; at += SLICE) {
        char from[24], len[24];
        const char *params[3] = {ids, from, len};
        PGresult *res = NULL;
        unsigned char *bytes;
        size_t n = 0;
        bool ok;
        enum alm_err err;

        snprintf(from, sizeof(from), "%lld", at + 1); /* substring counts from 1 */
        snprintf(len, sizeof(len), "%d", SLICE);
        err = alm_db_query(pg, timeout_ms,
                           "SELECT substring(original FROM $2::int FOR $3::int) FROM documents "
                           "WHERE id = $1",
                           3, params, &res, eb);
        if (err)
            return err;
        if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0)) {
            PQclear(res);
            return alm_fail(eb, ALM_ERR_NOT_FOUND, "the document's file is gone");
        }
        bytes = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 0), &n);
        PQclear(res);
        ok = bytes && write_all(fd, bytes, n);
        PQfreemem(bytes);
        if (!ok)
            return alm_fail(eb, ALM_ERR_INTERNAL, "cannot hold the document for the extractor");
    }
    return ALM_OK;
}

enum alm_err alm_docfile_to_memfd(PGconn *pg, int timeout_ms, int64_t id, int *fd,
                                  struct alm_errbuf *eb)
{
    char ids[24];
    const char *params[1] = {ids};
    PGresult *res = NULL;
    long long total;
    enum alm_err err;

    *fd = -1;
    snprintf(ids, sizeof(ids), "%lld", (long long)id);
    err = alm_db_query(pg, timeout_ms, "SELECT octet_length(original) FROM documents WHERE id = $1",
                       1, params, &res, eb);
    if (err)
        return err;
    if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0)) {
        PQclear(res);
        return ALM_OK;
    }
    total = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    *fd = alm_sandbox_memfd();
    if (*fd < 0)
        return alm_fail(eb, ALM_ERR_INTERNAL, "cannot hold the document for the extractor");
    err = copy_slices(pg, timeout_ms, ids, total, *fd, eb);
    if (err) {
        close(*fd);
        *fd = -1;
        return err;
    }
    alm_sandbox_seal(*fd);
    return ALM_OK;
}
