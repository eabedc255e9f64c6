-- SPDX-License-Identifier: Apache-2.0
-- Full-text search over chunks: a stored tsvector (title-free; sections weigh more) and
-- its GIN index, used by keyword search and its ts_rank ordering.
ALTER TABLE chunks
    ADD COLUMN tsv tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', coalesce(section, '')), 'A') ||
        setweight(to_tsvector('english', text), 'B')
    ) STORED;
CREATE INDEX chunks_tsv_idx ON chunks USING gin (tsv);
-- Chunks of one knowledge base are searched together.
ALTER TABLE chunks ADD COLUMN knowledge_base_id bigint;
UPDATE chunks c SET knowledge_base_id = d.knowledge_base_id FROM documents d WHERE d.id = c.document_id;
ALTER TABLE chunks ALTER COLUMN knowledge_base_id SET NOT NULL;
CREATE INDEX chunks_kb_idx ON chunks (knowledge_base_id);
