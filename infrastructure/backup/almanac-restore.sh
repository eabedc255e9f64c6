#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Restores an Almanac backup (made by almanac-backup.sh) into empty services
# (docs/backup-restore.md):
#
#   infrastructure/backup/almanac-restore.sh [--verify-only] [--force] BACKUP_DIR
#
# 1. checks the backup: every file against SHA256SUMS and the manifest, the dump with
#    pg_restore --list; --verify-only stops here;
# 2. the database: refuses one that holds users or documents unless --force; a freshly
#    migrated empty schema's tables are dropped first; pg_restore --exit-on-error, then
#    `almanac migrate` (the backup may be older than the binaries);
# 3. the vectors: the Qdrant snapshot when the manifest has one for the collection and
#    vector size configured now (uploaded with its checksum, which Qdrant checks), else
#    every document is indexed again (`almanac reindex`);
# 4. queue state: Redis is not restored. Documents the backup caught pending or
#    processing are queued again (`almanac reindex --unfinished`), then documents whose
#    vectors the snapshot lacks (`almanac reindex --missing`). Outbox rows of the dump
#    carry their own random de-duplication keys, so markers left in Redis never make the
#    relay skip new work.
# The workers do the indexing; this script returns once everything is queued and says
# how to follow progress. Where the commands run: infrastructure/backup/lib.sh.
# Exit codes: 0, 1 a step failed, 64 bad usage, 65 the backup is damaged, 69 a service
# is not running, 73 the database is not empty (use --force).
here=$(cd "$(dirname "$0")" && pwd)
verify_only=false force=false src=""
while [ $# -gt 0 ]; do
    case $1 in
    --verify-only) verify_only=true; shift ;;
    --force) force=true; shift ;;
    -h | --help) sed -n '2,25p' "$0"; exit 0 ;;
    -*) echo "almanac-restore: error: unknown argument '$1'" >&2; exit 64 ;;
    *) src=$1; shift ;;
    esac
done
[ -n "$src" ] || { echo "almanac-restore: error: which backup? (a directory made by almanac-backup.sh)" >&2; exit 64; }
# shellcheck source=infrastructure/backup/lib.sh
. "$here/lib.sh"
note() { echo "almanac-restore: $*" >&2; }
die() {
    echo "almanac-restore: error: $2" >&2
    exit "$1"
}

# 1. the backup itself
[ -f "$src/manifest.json" ] || die 64 "$src holds no manifest.json"
manifest=$(cat "$src/manifest.json")
[ "$(json_get "$manifest" format)" = 1 ] || die 65 "unknown manifest format"
(cd "$src" && sha256sum --quiet --strict -c SHA256SUMS) >&2 || die 65 "checksums do not match: the backup is damaged"
[ "$(sha256_of "$src/database.dump")" = "$(json_get "$manifest" database_sha256)" ] ||
    die 65 "the dump does not match its manifest"
vectors_file=$(json_get "$manifest" vectors_file)
if [ -n "$vectors_file" ]; then
    [ "$(sha256_of "$src/$vectors_file")" = "$(json_get "$manifest" vectors_sha256)" ] ||
        die 65 "the vector snapshot does not match its manifest"
fi
in_db 'exec pg_restore --list' <"$src/database.dump" >/dev/null || die 65 "the dump does not read (pg_restore --list)"
note "backup of $(json_get "$manifest" created_at) (almanac $(json_get "$manifest" almanac_version), schema $(json_get "$manifest" schema_version)) is intact"
$verify_only && exit 0

# 2. the database
has_schema=$(in_db 'psql -XAtq -v ON_ERROR_STOP=1 -c "SELECT to_regclass('"'public.users'"') IS NOT NULL"') ||
    die 1 "cannot reach PostgreSQL"
state=0
if [ "$has_schema" = t ]; then
    state=$(in_db 'psql -XAtq -v ON_ERROR_STOP=1 -c "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM documents)"') ||
        die 1 "cannot read the database"
fi
if [ "$state" != 0 ] && ! $force; then
    die 73 "the database holds $state users and documents: restore into an empty one, or pass --force to replace it"
fi
note "restoring the database"
# The schema's tables and functions go, the schema itself stays: its grants and default
# privileges (the application role's rights where the owner and the services are separate
# roles, as in the Kubernetes all-in-one overlay) belong to it and would go with it.
in_db 'psql -XAtq -v ON_ERROR_STOP=1' >/dev/null <<'SQL' || die 1 "cannot empty the database"
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables WHERE schemaname = 'public' LOOP
    EXECUTE 'DROP TABLE IF EXISTS ' || r.t || ' CASCADE';
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'public' LOOP
    EXECUTE 'DROP FUNCTION IF EXISTS ' || r.f || ' CASCADE';
  END LOOP;
END $$;
SQL
# shellcheck disable=SC2016 # PGDATABASE is expanded where the tool runs
in_db 'exec pg_restore --no-owner --no-acl --exit-on-error -d "$PGDATABASE"' <"$src/database.dump" ||
    die 1 "pg_restore failed"
in_app migrate >/dev/null || die 1 "almanac migrate failed after the restore"

# 3. the vectors
info=$(in_app snapshot info) || die 1 "cannot reach Qdrant (almanac snapshot info)"
collection=$(json_get "$info" collection)
rebuild=true
if [ -z "$vectors_file" ]; then
    note "the backup has no vectors: indexing every document again"
elif [ "$(json_get "$manifest" vectors_collection)" != "$collection" ] ||
    [ "$(json_get "$manifest" vectors_dim)" != "$(json_get "$info" configured_dim)" ]; then
    note "the snapshot is of collection $(json_get "$manifest" vectors_collection) with $(json_get "$manifest" vectors_dim) dimensions, the configuration wants $collection with $(json_get "$info" configured_dim): indexing every document again"
else
    note "loading the vector snapshot into $collection"
    in_app snapshot load --sha256 "$(json_get "$manifest" vectors_sha256)" <"$src/$vectors_file" ||
        die 1 "loading the vector snapshot failed"
    rebuild=false
fi

# 4. the queue state, then whatever vectors are missing
rate=${ALMANAC_RESTORE_RATE:-200}
if $rebuild; then
    in_app reindex --no-wait --rate "$rate" >/dev/null || die 1 "queuing documents for indexing failed"
else
    in_app reindex --unfinished --no-wait --rate "$rate" >/dev/null || die 1 "queuing unfinished documents failed"
    in_app reindex --missing --no-wait --rate "$rate" >/dev/null || die 1 "queuing documents with missing vectors failed"
fi
note "restored: $(json_get "$manifest" documents) documents in the backup; the workers index what was queued (progress: the operations view, or 'almanac reindex --missing')"
