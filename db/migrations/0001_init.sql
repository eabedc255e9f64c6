-- SPDX-License-Identifier: Apache-2.0
-- Users, knowledge bases, documents, chunks and the job outbox.
CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'user')),
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE knowledge_bases (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX knowledge_bases_owner_idx ON knowledge_bases (owner_id, id);

CREATE TABLE documents (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    knowledge_base_id bigint NOT NULL REFERENCES knowledge_bases (id) ON DELETE CASCADE,
    title             text NOT NULL,
    filename          text NOT NULL,
    media_type        text NOT NULL CHECK (media_type IN ('text/plain', 'text/markdown', 'text/html')),
    size_bytes        bigint NOT NULL CHECK (size_bytes >= 0),
    sha256            text NOT NULL CHECK (length(sha256) = 64),
    content           text NOT NULL,
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'processing', 'ready', 'failed')),
    error             text,
    chunk_count       integer NOT NULL DEFAULT 0,
    attempts          integer NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    processed_at      timestamptz
);
-- The same content twice in one knowledge base is a duplicate upload.
CREATE UNIQUE INDEX documents_kb_sha256_key ON documents (knowledge_base_id, sha256);
CREATE INDEX documents_kb_idx ON documents (knowledge_base_id, id);
CREATE INDEX documents_status_idx ON documents (status, updated_at);

CREATE TABLE chunks (
    document_id  bigint NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    chunk_index  integer NOT NULL CHECK (chunk_index >= 0),
    text         text NOT NULL,
    start_offset integer NOT NULL CHECK (start_offset >= 0),
    end_offset   integer NOT NULL CHECK (end_offset >= start_offset),
    section      text,
    PRIMARY KEY (document_id, chunk_index)
);

-- Jobs written in the same transaction as the change that needs them, then moved to the
-- Redis queue by the relay: an upload that committed is never lost, even with Redis down.
CREATE TABLE outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue      text NOT NULL,
    job_type   text NOT NULL,
    payload    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
