-- Channel failover (issue 12). Identical on both engines.
--
-- A delivery in a fallback chain names the delivery it stands in for (`fallback_of`: the link
-- before it gave up: failed, dead or skipped as unreachable) and the channels still to try
-- after it, in order, comma-separated (`fallback`, e.g. `sms,email`; NULL outside a chain and
-- on its last link). The dispatcher writes the next link in the transaction that records the
-- giving up, so a chain is never lost between two links.
ALTER TABLE deliveries ADD COLUMN fallback_of TEXT;
ALTER TABLE deliveries ADD COLUMN fallback TEXT;
CREATE INDEX deliveries_fallback_of ON deliveries (fallback_of) WHERE fallback_of IS NOT NULL;
