DROP TABLE health_probe;
ALTER TABLE deliveries DROP COLUMN crashes;
ALTER TABLE deliveries DROP COLUMN claim_token;
