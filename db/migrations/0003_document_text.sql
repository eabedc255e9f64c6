-- SPDX-License-Identifier: Apache-2.0
-- The extracted text of each document: what chunks, their offsets and citations refer
-- to (the upload itself stays in documents.content). Offsets of chunks are counted in
-- characters (Unicode code points) of this text.
ALTER TABLE documents ADD COLUMN text text;
COMMENT ON COLUMN chunks.start_offset IS 'first character (code point) of the chunk in documents.text';
COMMENT ON COLUMN chunks.end_offset IS 'character (code point) after the chunk in documents.text';
