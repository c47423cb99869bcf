DROP INDEX deliveries_batched;
DROP TABLE digests;
