-- compatible-from: 4
-- SPDX-License-Identifier: Apache-2.0
-- The uploaded file itself, so that reprocess and later extractors work from the bytes
-- (documents.content keeps the UTF-8 text of text uploads; '' for binary formats).
-- Where a document is: chunks of paged formats carry their page, slide, sheet or chapter.
ALTER TABLE documents ADD COLUMN original bytea;
ALTER TABLE documents ADD COLUMN location_kind text
    CHECK (location_kind IN ('page', 'slide', 'sheet', 'chapter'));
-- The title was made from the file name: the document's own title replaces it.
ALTER TABLE documents ADD COLUMN title_from_filename boolean NOT NULL DEFAULT false;
ALTER TABLE documents DROP CONSTRAINT documents_media_type_check;
ALTER TABLE documents ADD CONSTRAINT documents_media_type_check CHECK (media_type IN (
    'text/plain', 'text/markdown', 'text/html', 'application/pdf',
    'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
    'application/vnd.openxmlformats-officedocument.presentationml.presentation',
    'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    'application/vnd.oasis.opendocument.text',
    'application/vnd.oasis.opendocument.spreadsheet',
    'application/vnd.oasis.opendocument.presentation',
    'application/epub+zip', 'image/png', 'image/jpeg', 'image/tiff'));
-- Already compressed formats gain nothing from TOAST's compression; store them as is.
ALTER TABLE documents ALTER COLUMN original SET STORAGE EXTERNAL;
ALTER TABLE chunks ADD COLUMN location integer CHECK (location > 0);
COMMENT ON COLUMN chunks.location IS 'page, slide, sheet or chapter (documents.location_kind) where the chunk starts';
