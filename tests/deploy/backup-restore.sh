# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# shellcheck disable=SC2154,SC2016,SC2034 # sourced by run.sh, whose variables these are
# The backup and restore round of the deployment test, against the running production
# Compose deployment of tests/deploy/run.sh: source this file there, then call
#
#   backup_restore_round
#
# once the stack is up and the test user has ready documents in its knowledge base.
# It uses run.sh's helpers and variables: say, check, cond, compose, cn, wait_healthy,
# http, status_of, body_of, jget, upload, wait_all_ready, count_status, and repo, work,
# project, envfile, email, password, kb, auth (it sets auth again after the restore).
#
# 1. backs up the running system with infrastructure/backup/almanac-backup.sh (compose
#    mode, podman exec -i: PostgreSQL tools in the postgres container, `almanac snapshot`
#    in the api container); checks the manifest and that no secret of the env file is in
#    the backup's names, output or manifest;
# 2. destroys every service and volume (compose down -v) and starts fresh ones as run.sh
#    does (postgres, redis, qdrant; migrate; api, worker, beat; frontend);
# 3. restores with infrastructure/backup/almanac-restore.sh, then through the frontend's
#    port: the same user signs in, the same documents are ready, the same search finds
#    the same first hit, points = chunks, and a new upload becomes ready.
# About 60 to 90 s on top of run.sh.

backup_restore_round() {
    local backups=$work/backups out dir r first_before first_after n_before n_after secret ok s
    local -a env=(ALMANAC_BACKUP_MODE=compose ALMANAC_CONTAINER_ENGINE=podman
        "ALMANAC_COMPOSE_PROJECT=$project"
        "ALMANAC_BACKUP_DB_CONTAINER=$(cn postgres)" "ALMANAC_BACKUP_APP_CONTAINER=$(cn api)")
    say "backup of the running system, destroy everything, restore"

    n_before=$(count_status ready)
    r=$(http POST /api/v1/search "${auth[@]}" -H 'Content-Type: application/json' \
        --data "{\"query\":\"zeppelin2 vacation\",\"knowledge_base_ids\":[$kb]}")
    first_before=$(body_of "$r" | jget results.0.document_id)

    local rc=0
    out=$(env "${env[@]}" "$repo/infrastructure/backup/almanac-backup.sh" --dir "$backups" 2>"$work/backup.err") || rc=$?
    check "almanac-backup.sh exits 0 (got $rc: $(tail -n 1 "$work/backup.err"))" cond '[ "$rc" = 0 ] && [ -n "$out" ]'
    [ "$rc" = 0 ] || return 0
    dir=$out
    check "backup holds a custom-format dump, a snapshot, a manifest and SHA256SUMS" cond \
        '[ "$(head -c 5 "$dir/database.dump")" = PGDMP ] && [ -s "$dir/vectors.snapshot" ] && [ -s "$dir/manifest.json" ] && [ -s "$dir/SHA256SUMS" ]'
    check "manifest counts $n_before documents" cond \
        '[ "$(jget documents <"$dir/manifest.json")" -ge "$n_before" ]'
    ok=true
    while IFS='=' read -r _ secret; do
        [ ${#secret} -ge 12 ] || continue
        if grep -rqF -- "$secret" "$dir" "$work/backup.err" || [[ $dir == *"$secret"* ]]; then ok=false; fi
    done < <(grep -E '^(POSTGRES_PASSWORD|REDIS_PASSWORD|ALMANAC_JWT_SECRET)=' "$envfile")
    check "no secret of the env file in the backup, its name or its output" $ok

    compose down -v -t 2
    check "every container and volume of $project is gone" cond \
        '[ -z "$(podman ps -aq --filter label=io.podman.compose.project=$project)" ] && [ -z "$(podman volume ls -q | grep "^${project}_")" ]'
    compose up -d postgres redis qdrant
    for s in postgres redis qdrant; do check "fresh $s healthy" wait_healthy "$s" 90; done
    compose up -d --no-deps migrate
    check "fresh migrate exited 0" cond '[ "$(timeout 120 podman wait "$(cn migrate)" 2>/dev/null)" = 0 ]'
    compose up -d --no-deps api worker beat
    for s in api worker beat; do check "fresh $s healthy" wait_healthy "$s" 60; done
    compose up -d --no-deps frontend
    check "fresh frontend healthy" wait_healthy frontend 30

    rc=0
    env "${env[@]}" "$repo/infrastructure/backup/almanac-restore.sh" "$dir" 2>"$work/restore.err" || rc=$?
    check "almanac-restore.sh exits 0 (got $rc: $(tail -n 1 "$work/restore.err"))" [ "$rc" = 0 ]
    [ "$rc" = 0 ] || return 0
    check "the vectors came from the snapshot" grep -q 'loading the vector snapshot' "$work/restore.err"

    r=$(http POST /api/v1/auth/login -H 'Content-Type: application/json' \
        --data "{\"email\":\"$email\",\"password\":\"$password\"}")
    check "the restored user signs in: 200 (got $(status_of "$r"))" [ "$(status_of "$r")" = 200 ]
    auth=(-H "Authorization: Bearer $(body_of "$r" | jget access_token)")
    check "the $n_before documents are ready again" wait_all_ready "$n_before" 120
    n_after=$(count_status ready)
    r=$(http POST /api/v1/search "${auth[@]}" -H 'Content-Type: application/json' \
        --data "{\"query\":\"zeppelin2 vacation\",\"knowledge_base_ids\":[$kb]}")
    first_after=$(body_of "$r" | jget results.0.document_id)
    check "same documents ($n_after) and the same first hit ($first_after)" cond \
        '[ "$n_after" = "$n_before" ] && [ "$first_after" = "$first_before" ]'
    local points chunks
    points=$(podman exec -i "$(cn api)" almanac snapshot info | jget points)
    chunks=$(podman exec -i "$(cn postgres)" sh -c 'export PGPASSWORD="$POSTGRES_PASSWORD"
        h=127.0.0.1; for d in /var/run/postgresql /tmp; do [ ! -S "$d/.s.PGSQL.5432" ] || h=$d; done
        psql -XAtq -h "$h" -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "SELECT count(*) FROM chunks"' || echo "?")
    check "points = chunks ($points = $chunks)" [ "$points" = "$chunks" ]
    local id
    id=$(upload after-restore.md "# After the restore

New uploads get a fresh id and a fresh outbox key, and are indexed as before.")
    check "an upload after the restore becomes ready" wait_all_ready "$((n_before + 1))" 60
    [ -n "$id" ]
}
