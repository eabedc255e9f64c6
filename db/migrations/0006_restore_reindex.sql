-- compatible-from: 4
-- SPDX-License-Identifier: Apache-2.0
-- Outbox rows get a random identity for the relay's de-duplication in Redis
-- (almanac:outbox:sent:<uid>). The bigint id starts over when a dump is restored into a
-- fresh database, and would match markers Redis keeps for rows sent before the restore:
-- the relay would then skip new jobs as already sent. A random UUID is never reused.
-- Expand only: binaries of schema 4 insert without naming the column and get a default.
ALTER TABLE outbox ADD COLUMN uid uuid NOT NULL DEFAULT gen_random_uuid();

-- Bulk re-indexing (`almanac reindex`): one row per run, its cursor (the last document
-- queued, in id order) so that a run stopped half-way resumes, and what it queued.
-- Documents remember the run that queued them last, so a run's progress is a count.
CREATE TABLE reindex_runs (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope             text NOT NULL CHECK (scope IN ('all', 'kb', 'missing', 'unfinished')),
    knowledge_base_id bigint,
    total             integer NOT NULL CHECK (total >= 0),
    queued            integer NOT NULL DEFAULT 0,
    examined          integer NOT NULL DEFAULT 0,
    cursor_id         bigint NOT NULL DEFAULT 0,
    started_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz
);
ALTER TABLE documents ADD COLUMN reindex_run bigint;
CREATE INDEX documents_reindex_run_idx ON documents (reindex_run) WHERE reindex_run IS NOT NULL;
