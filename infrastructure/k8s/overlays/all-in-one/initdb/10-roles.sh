#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# First start of the all-in-one PostgreSQL only (the image runs initdb.d scripts on an
# empty data folder): the application role `almanac`, which may use rows but not change
# the schema. Its rights are in 20-app-role.sql (run next by the image; the integration
# tests apply the same file to their PostgreSQL).
# The password comes from the mounted Secret through psql's backquote expansion, so it is
# in no argv and no environment.
set -eu
psql -v ON_ERROR_STOP=1 -q --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
\set app_password `cat /run/secrets/almanac/ALMANAC_DATABASE_PASSWORD`
CREATE ROLE almanac LOGIN PASSWORD :'app_password';
\unset app_password
SQL
