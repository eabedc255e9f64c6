-- compatible-from: 4
-- Outbox rows get a random identity for the relay's de-duplication in Redis
-- (almanac:outbox:sent:<uid>). The bigint id starts over when a dump is restored into a
-- fresh database, and would match markers Redis keeps for rows sent before the restore:
-- the relay would then skip new jobs as already sent. A random UUID is never reused.
-- Expand only: binaries of schema 4 insert without naming the column and get a default.
ALTER TABLE outbox ADD COLUMN uid uuid NOT NULL DEFAULT gen_random_uuid();
