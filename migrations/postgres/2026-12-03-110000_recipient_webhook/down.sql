ALTER TABLE recipients DROP COLUMN webhook_disabled_reason;
ALTER TABLE recipients DROP COLUMN webhook_disabled_url;
ALTER TABLE recipients DROP COLUMN webhook_secret;
ALTER TABLE recipients DROP COLUMN webhook_url;
