/* SPDX-License-Identifier: Apache-2.0 */
/* docfile.h: the uploaded file of a document (documents.original), for the extractors. */
#pragma once
#include "compat.h"
#include "err.h"

#include <libpq-fe.h>

/* Copies document id's original into a new sealed memfd (*fd, the caller closes it), a
 * slice of at most 1 MiB per statement, so that the worker never holds the whole file
 * (nor its hex form) in memory. *fd is -1 and ALM_OK when the document has no original
 * (gone, or uploaded before files were kept). */
enum alm_err alm_docfile_to_memfd(PGconn *pg, int timeout_ms, int64_t id, int *fd,
                                  struct alm_errbuf *eb) ALM_MUSTCHECK;
