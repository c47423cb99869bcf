-- Paced put-backs are claimed before fresh deliveries of their priority (issue 12, Telegram
-- pacing). Identical on both engines.
--
-- `claim_rank` is 1 on a delivery the dispatcher put back `pending` because its destination's
-- pace allowed no message yet (`SendOutcome::Paced`), due at the slot reserved for it; any
-- other recorded outcome sets it back to 0. The claim orders
-- `priority DESC, claim_rank DESC, next_attempt_at, id` among due rows only, so a put-back whose
-- slot has come goes before the fresh rows of its priority (due at their creation, earlier than
-- any slot), and is never ahead before its slot. A SMALLINT rather than a BOOLEAN: the types
-- mapped alike on both engines are Text, SmallInt, Integer, BigInt, Timestamp (AGENTS.md).
ALTER TABLE deliveries ADD COLUMN claim_rank SMALLINT NOT NULL DEFAULT 0;

-- The dispatcher's claim: only rows that may still be due, in claim order.
DROP INDEX deliveries_due_idx;
CREATE INDEX deliveries_due_idx ON deliveries (priority DESC, claim_rank DESC, next_attempt_at)
    WHERE status IN ('pending', 'retrying', 'sending');
