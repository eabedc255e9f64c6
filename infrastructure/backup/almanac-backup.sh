#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Backs up a running Almanac without stopping it (docs/backup-restore.md):
#
#   infrastructure/backup/almanac-backup.sh [--dir DIR] [--keep N]
#
# 1. the PostgreSQL database: pg_dump in custom format (one consistent snapshot of the
#    whole database, taken while the system keeps serving), checked with pg_restore --list;
# 2. the vectors: a Qdrant snapshot of the chunk collection through Qdrant's API
#    (`almanac snapshot save`), or none when there is no collection yet;
# 3. manifest.json: Almanac's version and commit, the schema version, the time, and each
#    file's size and SHA-256, plus the row counts a restore checks against.
# The backup is written to DIR/.partial-<time> and renamed to DIR/almanac-<UTC time>
# only when every part succeeded; then all but the newest N backups (default 7) are
# removed. Any failure: a message, exit status non-zero, the partial directory removed.
# Redis is not backed up: its queue state is derived again by the restore.
#
# Where the commands run: infrastructure/backup/lib.sh (ALMANAC_BACKUP_MODE).
# Exit codes: 0, 1 a part failed, 64 bad usage, 69 a service is not running.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=infrastructure/backup/lib.sh
. "$here/lib.sh"

dir=${ALMANAC_BACKUP_DIR:-./backups}
keep=${ALMANAC_BACKUP_KEEP:-7}
while [ $# -gt 0 ]; do
    case $1 in
    --dir) dir=${2:?--dir needs a directory}; shift 2 ;;
    --keep) keep=${2:?--keep needs a number}; shift 2 ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) die 64 "unknown argument '$1' (see --help)" ;;
    esac
done
case $keep in '' | *[!0-9]* | 0) die 64 "--keep must be a positive number" ;; esac

t0=$(date +%s)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$dir"
work=$dir/.partial-$stamp
final=$dir/almanac-$stamp
[ ! -e "$final" ] || die 1 "$final exists already"
mkdir "$work"
trap 'rm -rf "$work"' EXIT
fail() {
    die 1 "$1; nothing was kept"
}

note "backing up into $final"
version=$(in_app version --json) || fail "cannot run almanac in the app container"
schema=$(in_db 'psql -XAtq -v ON_ERROR_STOP=1 -c "SELECT max(version) FROM schema_migrations"') ||
    fail "cannot read the schema version from PostgreSQL"
[ -n "$schema" ] || fail "the database has no schema (nothing to back up)"

# 1. the database
in_db 'exec pg_dump --format=custom --compress=6' >"$work/database.dump" || fail "pg_dump failed"
[ "$(head -c 5 "$work/database.dump")" = PGDMP ] || fail "pg_dump wrote no custom-format archive"
in_db 'exec pg_restore --list' <"$work/database.dump" >/dev/null ||
    fail "the dump does not read back (pg_restore --list)"
# Counts taken after the dump: a busy system may have more rows than the dump holds,
# so a restore checks "at least", and the exact figures of the dump itself below.
counts=$(in_db 'psql -XAtq -v ON_ERROR_STOP=1 -F " " -c "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM documents), (SELECT coalesce(sum(chunk_count), 0) FROM documents WHERE status = '"'ready'"')"') ||
    fail "cannot count rows"
read -r users documents chunks <<<"$counts"

# 2. the vectors
info=$(in_app snapshot info) || fail "cannot reach Qdrant (almanac snapshot info)"
vectors_file="" vectors_bytes=0 vectors_sha="" vectors_points=0 vectors_dim=0
collection=$(json_get "$info" collection)
if [ "$(json_get "$info" exists)" = true ]; then
    in_app snapshot save >"$work/vectors.snapshot" 2>"$work/snapshot.log" ||
        fail "the Qdrant snapshot failed: $(tail -n 1 "$work/snapshot.log")"
    saved=$(tail -n 1 "$work/snapshot.log")
    vectors_file=vectors.snapshot
    vectors_bytes=$(size_of "$work/vectors.snapshot")
    vectors_sha=$(sha256_of "$work/vectors.snapshot")
    [ "$vectors_sha" = "$(json_get "$saved" sha256)" ] || fail "the snapshot changed on its way (checksum)"
    [ "$vectors_bytes" -gt 0 ] || fail "the snapshot is empty"
    vectors_points=$(json_get "$saved" points)
    vectors_dim=$(json_get "$saved" dim)
    rm -f "$work/snapshot.log"
else
    note "no Qdrant collection '$collection' yet: no vectors to back up"
fi

# 3. the manifest
cat >"$work/manifest.json" <<EOF
{
  "format": 1,
  "created_at": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "almanac_version": "$(json_get "$version" version)",
  "almanac_commit": "$(json_get "$version" commit)",
  "schema_version": $schema,
  "schema_needs": $(json_get "$version" needs),
  "schema_floor": $(json_get "$version" floor),
  "duration_s": $(($(date +%s) - t0)),
  "database_file": "database.dump",
  "database_bytes": $(size_of "$work/database.dump"),
  "database_sha256": "$(sha256_of "$work/database.dump")",
  "users": $users,
  "documents": $documents,
  "chunks": $chunks,
  "vectors_file": "$vectors_file",
  "vectors_bytes": $vectors_bytes,
  "vectors_sha256": "$vectors_sha",
  "vectors_collection": "$collection",
  "vectors_points": $vectors_points,
  "vectors_dim": $vectors_dim
}
EOF
(cd "$work" && sha256sum database.dump ${vectors_file:+"$vectors_file"} manifest.json >SHA256SUMS)
mv "$work" "$final"
trap - EXIT

# Retention: the newest $keep backups stay.
find "$dir" -mindepth 1 -maxdepth 1 -type d -name "almanac-*" | sort -r | tail -n +$((keep + 1)) | while read -r old; do
    note "retention: removing $old"
    rm -rf "$old"
done
note "done in $(($(date +%s) - t0)) s: $documents documents, $chunks chunks, $vectors_points points"
echo "$final"
