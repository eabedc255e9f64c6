-- compatible-from: 4
-- SPDX-License-Identifier: Apache-2.0
-- Conversations of the answers API: one user's questions, the answers and their citations.
-- Citations keep the document, offsets and the title and section as they were; the
-- passage text is read from the document while it exists, so deleting a knowledge base
-- leaves the conversation readable with its citations marked gone, and keeps no copy of
-- the deleted text.
CREATE TABLE conversations (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title      text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversations_user_idx ON conversations (user_id, id);

CREATE TABLE conversation_turns (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id    bigint NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    question           text NOT NULL,
    answer             text,
    answer_unavailable text,
    nothing_relevant   boolean NOT NULL DEFAULT false,
    citations          jsonb NOT NULL DEFAULT '[]',
    dropped_citations  integer NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversation_turns_conversation_idx ON conversation_turns (conversation_id, id);
