-- compatible-from: 4
-- SPDX-License-Identifier: Apache-2.0
-- The vector collection search reads, and the one being built for another embedding model
-- or dimension (docs/backup-restore.md). No 'active' row: the configured
-- ALMANAC_QDRANT_COLLECTION, model and dimension. Workers write every document to the
-- active collection and, while one is building, to that one too; `almanac reindex
-- --to-collection` fills it and makes it active when every document has its points there.
-- Older binaries ignore the table (they keep to their settings): an expand-only change.
CREATE TABLE vector_collections (
    name         text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_-]{1,200}$'),
    model        text NOT NULL,
    dimension    integer NOT NULL CHECK (dimension BETWEEN 8 AND 8192),
    state        text NOT NULL CHECK (state IN ('building', 'active')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz
);
CREATE UNIQUE INDEX vector_collections_one_per_state ON vector_collections (state);
-- A build is a reindex run of its own scope: resumed like the others.
ALTER TABLE reindex_runs DROP CONSTRAINT reindex_runs_scope_check;
ALTER TABLE reindex_runs ADD CONSTRAINT reindex_runs_scope_check
    CHECK (scope IN ('all', 'kb', 'missing', 'unfinished', 'collection'));
