DROP INDEX deliveries_fallback_of;
ALTER TABLE deliveries DROP COLUMN fallback;
ALTER TABLE deliveries DROP COLUMN fallback_of;
