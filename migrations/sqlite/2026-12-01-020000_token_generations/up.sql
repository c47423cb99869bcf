-- Revocable recipient tokens (issue 9, item 3): every recipient has a token generation, a
-- random 63-bit number that each recipient token carries (claim `gen`). A token is honoured only
-- while its recipient has that generation: revoking (`POST /api/v1/recipients/{id}/tokens/revoke`)
-- draws a new one, and an erasure deletes the row, so a recipient created later with the same id
-- draws its own, which no older token carries. The application draws it when it inserts a row;
-- SQLite cannot give a column a random default in ALTER TABLE, so existing rows draw theirs
-- here. Column for column the same as the PostgreSQL migration.
ALTER TABLE recipients ADD COLUMN token_generation BIGINT NOT NULL DEFAULT 0;

UPDATE recipients SET token_generation = (random() & 9223372036854775807) | 1;
