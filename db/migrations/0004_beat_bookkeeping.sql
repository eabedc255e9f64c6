-- SPDX-License-Identifier: Apache-2.0
-- Bookkeeping for the beat's periodic tasks.
-- Every deleted document leaves a tombstone, whether deleted alone or with its knowledge
-- base: the beat re-issues the vector purge of old tombstones, so vectors of deleted
-- documents go even when their purge job was lost to a long Qdrant outage.
CREATE TABLE deleted_documents (
    document_id       bigint PRIMARY KEY,
    knowledge_base_id bigint NOT NULL,
    deleted_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deleted_documents_at_idx ON deleted_documents (deleted_at);

CREATE FUNCTION remember_deleted_document() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO deleted_documents (document_id, knowledge_base_id)
    VALUES (OLD.id, OLD.knowledge_base_id) ON CONFLICT DO NOTHING;
    RETURN OLD;
END
$$;
CREATE TRIGGER documents_remember_deleted AFTER DELETE ON documents
    FOR EACH ROW EXECUTE FUNCTION remember_deleted_document();

-- When the reconciliation last compared a document's chunks with its vectors.
ALTER TABLE documents ADD COLUMN reconciled_at timestamptz;
CREATE INDEX documents_reconcile_idx ON documents (reconciled_at NULLS FIRST) WHERE status = 'ready';
