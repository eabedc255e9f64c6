/* SPDX-License-Identifier: Apache-2.0 */
/* snapshot.h: Qdrant collection snapshots for backup and restore, streamed.
 *
 * Saving asks Qdrant for a snapshot of one collection (POST .../snapshots?wait=true),
 * streams the file to a FILE (a backup file, or stdout through `docker compose exec
 * -T`) while counting its bytes and its SHA-256, then deletes the snapshot from
 * Qdrant's own disk. Loading streams a snapshot from a FILE (stdin works: the upload
 * is chunked) to POST .../snapshots/upload?priority=snapshot, which replaces the
 * collection; with a checksum Qdrant refuses a file that does not match it. Nothing
 * is held in memory but a reply's JSON. */
#pragma once
#include "compat.h"
#include "config.h"
#include "err.h"

#include <stdio.h>

struct alm_snapshot_info {
    char name[256];  /* Qdrant's name of the snapshot */
    int64_t bytes;   /* of the file as streamed */
    char sha256[65]; /* hex, of the file as streamed */
    int64_t points;  /* of the collection just before the snapshot */
    int64_t dim;     /* vector size of the collection */
};

/* Points and vector size of collection: ALM_ERR_NOT_FOUND when it does not exist. */
enum alm_err alm_snapshot_collection(const struct alm_config *cfg, const char *collection,
                                     int64_t *points, int64_t *dim,
                                     struct alm_errbuf *eb) ALM_MUSTCHECK;
/* Snapshots collection into out (see above); info describes what was written. */
enum alm_err alm_snapshot_save(const struct alm_config *cfg, const char *collection, FILE *out,
                               struct alm_snapshot_info *info, struct alm_errbuf *eb) ALM_MUSTCHECK;
/* Recovers collection from the snapshot read from in; sha256 (64 hex) or NULL. */
enum alm_err alm_snapshot_load(const struct alm_config *cfg, const char *collection, FILE *in,
                               const char *sha256, struct alm_errbuf *eb) ALM_MUSTCHECK;
