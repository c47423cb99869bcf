ALTER TABLE recipients DROP COLUMN token_generation;
