DROP INDEX deliveries_due_idx;
CREATE INDEX deliveries_due_idx ON deliveries (priority DESC, next_attempt_at)
    WHERE status IN ('pending', 'retrying', 'sending');
ALTER TABLE deliveries DROP COLUMN claim_rank;
