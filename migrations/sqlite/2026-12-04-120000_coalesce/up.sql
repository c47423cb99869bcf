-- Coalesced planning changes (issue 13). Identical on both engines.
--
-- `coalesce_key` is the planning id of a held `planning.modified` notice (its outbound
-- deliveries wait for CLAIRON_COALESCE_SECS); a later modification of the same planning for
-- the same recipient looks its earlier notices up by it, with `recipient_id`, and takes in
-- those still open. NULL for every other notification.
ALTER TABLE notifications ADD COLUMN coalesce_key TEXT;
CREATE INDEX notifications_coalesce_key_idx ON notifications (coalesce_key, recipient_id)
    WHERE coalesce_key IS NOT NULL;
